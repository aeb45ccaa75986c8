"""Treasury: BTC held (mined BTC kept under ``hold``, treasury sales) and the cash balance.

Variables (per scenario): btc_sold[w,t] (BTC, when treasury sales are allowed), btc_held[w,t]
(BTC at the end of t, when it can change), cash[w,t] ($M, when treasury.cash_start_usd is set).
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.economics.ledger import PORTFOLIO, TERMINAL_ITEMS
from optimizer.model.common import USD, add_constraints, add_vars, is_const, lin, register


def build(m, data: Data) -> None:
    tr = data.inst.treasury
    T, W = data.T, data.W
    hold = tr.mined_btc == "hold"
    b0 = tr.btc_held_start
    sales = tr.allow_treasury_sales and (hold or b0 > 0)
    varying = hold or sales
    keys = [(w, t) for w in range(W) for t in range(T)]
    m.btc_sold = add_vars(m, "btc_sold", keys if sales else [], pyo.NonNegativeReals)
    m.btc_held = add_vars(m, "btc_held", keys if varying else [], pyo.NonNegativeReals)
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
    for w in range(W):
        for t in range(T):
            P = m.btc_price[w, t]
            if sales:
                register(m, "treasury_sales_usd", PORTFOLIO, t, w, (P / USD) * m.btc_sold[w, t])
            if hold and (t, w) in ph:
                c, v = ph[(t, w)]
                register(m, "btc_retained_usd", PORTFOLIO, t, w, (-P * m.btc_per_ph[w, t] / USD) * lin(c, v))
        if data.inst.horizon.terminal.treasury_btc:
            held = m.btc_held[w, T - 1] if varying else b0
            if not (is_const(held) and held == 0):
                register(m, "terminal_treasury_usd", PORTFOLIO, T - 1, w, (m.btc_price[w, T - 1] / USD) * held)


def treasury_balance(m, data: Data, ph: dict, sales: bool, b0: float) -> None:
    """btc_held[w,t] = btc_held[w,t-1] + BTC mined in t (under hold) - btc_sold[w,t]; held(-1) = start."""
    rows = {}
    for (w, t) in m.btc_held_index:
        prev = m.btc_held[w, t - 1] if t > 0 else b0
        e = m.btc_held[w, t] - prev
        if sales:
            e = e + m.btc_sold[w, t]
        if (t, w) in ph:
            c, v = ph[(t, w)]
            e = e - m.btc_per_ph[w, t] * lin(c, v)
        rows[(w, t)] = e == 0
    add_constraints(m, "treasury_balance", rows)


def cash_balance(m, data: Data) -> None:
    """cash[w,t] = cash[w,t-1] + net cash flow of t (every registered non-terminal term of t, first
    stage or scenario w) >= min_cash; cash[w,-1] = cash_start. Must run after every module has
    registered its terms."""
    tr = data.inst.treasury
    if tr.cash_start_usd is None:
        return
    T, W = data.T, data.W
    first: dict[int, list] = {}
    per: dict[tuple[int, int], list] = {}
    for term in m.cashflow_terms:
        if term.item in TERMINAL_ITEMS:
            continue
        if term.scenario is None:
            first.setdefault(term.period, []).append(term.expr)
        else:
            per.setdefault((term.scenario, term.period), []).append(term.expr)
    keys = [(w, t) for w in range(W) for t in range(T)]
    m.cash = add_vars(m, "cash", keys, pyo.Reals)
    for k in keys:
        m.cash[k].setlb(tr.min_cash_usd / USD)
    # first-stage net cash flow of t: one variable shared by the W scenario rows
    fs_keys = sorted(first) if W > 1 else []
    m.first_stage_net = add_vars(m, "first_stage_net", fs_keys, pyo.Reals)
    add_constraints(m, "first_stage_net_def", {t: m.first_stage_net[t] - sum(first[t]) == 0 for t in fs_keys})
    rows = {}
    for (w, t) in keys:
        prev = m.cash[w, t - 1] if t > 0 else tr.cash_start_usd / USD
        flows = ([m.first_stage_net[t]] if t in m.first_stage_net else first.get(t, [])) + per.get((w, t), [])
        rows[(w, t)] = m.cash[w, t] - prev - sum(flows) == 0
    add_constraints(m, "cash_balance", rows)
