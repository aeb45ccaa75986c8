"""Treasury: BTC held (mined BTC kept under ``hold``, treasury sales) and the cash balance.

Variables: btc_sold[t] (BTC, when treasury sales are allowed): a commitment, taken at the node
taking the commitments of t (``common.ik``: one sales schedule for every scenario in the
two-stage form, per node on a staged tree), so a sale never depends on prices not yet seen;
btc_held[w,t] (BTC at the end of t, when it can change) and cash[w,t] ($M, when
treasury.cash_start_usd is set), per operations node (``w`` its representative).
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.economics.ledger import PORTFOLIO, TERMINAL_ITEMS
from optimizer.model.common import USD, add_constraints, add_vars, ik, inv_at, is_const, lin, register


def held_key(m, t: int, w: int) -> tuple:
    """Index of btc_held / cash of period t on scenario w's path: (operations node rep, t)."""
    return (m.tree.op(t, w), t)


def build(m, data: Data) -> None:
    tr = data.inst.treasury
    T, tree = data.T, m.tree
    hold = tr.mined_btc == "hold"
    b0 = tr.btc_held_start
    sales = tr.allow_treasury_sales and (hold or b0 > 0)
    varying = hold or sales
    sold_keys = [ik(m, (), t, r) for t in range(T) for r in tree.inv_reps(t)]
    held_keys = sorted({held_key(m, t, w) for t in range(T) for w in tree.op_reps(t)})
    m.btc_sold = add_vars(m, "btc_sold", sold_keys if sales else [], pyo.NonNegativeReals)
    m.btc_held = add_vars(m, "btc_held", held_keys if varying else [], pyo.NonNegativeReals)
    ph = {}
    if hold:
        by_tw: dict = {}
        for (s, t, w), e in m.ph_op.items():
            c, v = by_tw.setdefault((t, w), ([], []))
            share = data.share(s)  # a joint-venture site's BTC: the company's share enters the treasury
            for a in e.args:
                c.append(a.args[0] if share == 1.0 else share * a.args[0])
                v.append(a.args[1])
        ph = by_tw
    if varying:
        treasury_balance(m, data, ph, sales, b0)
    for w in range(data.W):
        for t in range(T):
            if tree.op(t, w) != w:  # one set of terms per operations node (w its representative)
                continue
            P = m.btc_price[w, t]
            if sales:
                register(m, "treasury_sales_usd", PORTFOLIO, t, w, (P / USD) * m.btc_sold[ik(m, (), t, w)])
            if hold and (t, w) in ph:
                c, v = ph[(t, w)]
                register(m, "btc_retained_usd", PORTFOLIO, t, w, (-P * m.btc_per_ph[w, t] / USD) * lin(c, v))
        if data.inst.horizon.terminal.treasury_btc and tree.op(T - 1, w) == w:
            held = m.btc_held[held_key(m, T - 1, w)] if varying else b0
            if not (is_const(held) and held == 0):
                register(m, "terminal_treasury_usd", PORTFOLIO, T - 1, w, (m.btc_price[w, T - 1] / USD) * held)


def treasury_balance(m, data: Data, ph: dict, sales: bool, b0: float) -> None:
    """btc_held[w,t] = btc_held[w,t-1] + BTC mined in t (under hold) - btc_sold[t]; held(-1) = start
    (on a tree: the previous period of the same path, and the sale of the commitments' node)."""
    rows = {}
    for (w, t) in m.btc_held_index:
        prev = m.btc_held[held_key(m, t - 1, w)] if t > 0 else b0
        e = m.btc_held[w, t] - prev
        if sales:
            e = e + m.btc_sold[ik(m, (), t, w)]
        if (t, w) in ph:
            c, v = ph[(t, w)]
            e = e - m.btc_per_ph[w, t] * lin(c, v)
        rows[(w, t)] = e == 0
    add_constraints(m, "treasury_balance", rows)


def cash_balance(m, data: Data) -> None:
    """cash[w,t] = cash[w,t-1] + net cash flow of t (every registered non-terminal term of t whose
    node holds scenario w: commitments and operations) >= min_cash; cash[w,-1] = cash_start.
    Must run after every module has registered its terms."""
    tr = data.inst.treasury
    if tr.cash_start_usd is None:
        return
    T, W, tree = data.T, data.W, m.tree
    first: dict = {}  # commitment-node key -> terms (shared by the cash rows below the node)
    per: dict[tuple[int, int], list] = {}  # (op rep, t) -> the other terms
    for term in m.cashflow_terms:
        if term.item in TERMINAL_ITEMS:
            continue
        t, node = term.period, term.node
        if node.depth == tree.inv_depth[t]:
            first.setdefault(ik(m, (), t, node.rep), []).append(term.expr)
        else:
            for w in sorted({tree.op(t, x) for x in node.scenarios}):
                per.setdefault((w, t), []).append(term.expr)
    keys = sorted({held_key(m, t, w) for w in range(W) for t in range(T)})
    m.cash = add_vars(m, "cash", keys, pyo.Reals)
    for k in keys:
        m.cash[k].setlb(tr.min_cash_usd / USD)
    # net cash flow of a commitment node in t: one variable shared by the cash rows below it
    # (with one scenario the terms sit in its row directly)
    fs_keys = sorted(first) if W > 1 else []
    m.first_stage_net = add_vars(m, "first_stage_net", fs_keys, pyo.Reals)
    add_constraints(m, "first_stage_net_def", {k: m.first_stage_net[k] - sum(first[k]) == 0 for k in fs_keys})
    rows = {}
    for (w, t) in keys:
        prev = m.cash[held_key(m, t - 1, w)] if t > 0 else tr.cash_start_usd / USD
        fk = ik(m, (), t, w)
        flows = ([m.first_stage_net[fk]] if fk in m.first_stage_net else first.get(fk, [])) + per.get((w, t), [])
        rows[(w, t)] = m.cash[w, t] - prev - sum(flows) == 0
    add_constraints(m, "cash_balance", rows)


__all__ = ["build", "cash_balance", "held_key", "inv_at", "treasury_balance"]
