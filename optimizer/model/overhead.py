"""Overhead: corporate G&A with reduction options, and the per-site fixed cost of mining with exits.

Variables (first stage):
- cut[r,t] (binary): G&A reduction r taken in period t (at most once: ``overhead_cut_once``);
- mine_on[s,t] (binary): site s runs mining in t (sites with ``mining_overhead``);
- exit[s,t] in [0, 1]: site s stops mining in t while still owned (only where the exit costs money).

Rows (no big-M beyond natural bounds):
- ``mining_on_monotone[s,t]``: mine_on[s,t] <= mine_on(s,t-1) + acq[s,t]: once a site stops
  mining it never restarts (an acquired site may start when bought); mine_on(s,-1) = 1 for a site
  owned at the start, 0 otherwise;
- ``mining_on_owned[s,t]``: mine_on[s,t] <= own(s,t) (an unowned site pays no overhead);
- ``mining_exit[s,t]``: exit[s,t] >= mine_on(s,t-1) - mine_on[s,t] - sell[s,t]: stopping while owned
  costs the exit cost; a sale ends mining without it. exit is continuous: its cost is positive,
  so at an optimum exit = max(0, that), which is 0 or 1 at integer mine_on and sell;
- ``mining_needs_on[s,t,w]``: sum_m op[s,m,t,w] <= U[s,t] x mine_on[s,t], U = the sum of the op
  variables' own upper bounds (installed units or rack capacity: a natural bound, not a big-M).

Terms: ``g_and_a_usd`` (portfolio, t) = -G&A[t] + sum_r saving_r[t] x cut started by t - lag_r;
``restructuring_usd`` = -one-off_r x cut[r,t] (portfolio) and -exit_cost_s x exit[s,t] (site);
``site_overhead_usd`` (s,t) = -usd_per_month x L x mine_on[s,t].
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.economics.ledger import PORTFOLIO
from optimizer.model import sites
from optimizer.model.common import USD, add_constraints, add_vars, is_const, lin, register


def build(m, data: Data) -> None:
    _g_and_a(m, data)
    _site_exits(m, data)


# ---------------------------------------------------------------- corporate G&A


def _g_and_a(m, data: Data) -> None:
    lev = data.lev
    keys = [(r, t) for r, rd in lev.reductions.items() for t in rd.periods]
    m.cut = add_vars(m, "cut", keys, pyo.Binary)
    overhead_cut_once(m, data)
    if lev.g_and_a_usd is None:
        return
    for t in range(data.T):
        cs, vs = [], []
        for r, rd in lev.reductions.items():
            for u in rd.periods:
                if u + rd.lag <= t and rd.saving_usd[t] > 0:
                    cs.append(float(rd.saving_usd[t]) / USD)
                    vs.append(m.cut[r, u])
        const = -float(lev.g_and_a_usd[t]) / USD
        register(m, "g_and_a_usd", PORTFOLIO, t, None, lin(cs, vs, const) if vs else const)
    for (r, u) in keys:
        cost = lev.reductions[r].one_off_usd
        if cost > 0:
            register(m, "restructuring_usd", PORTFOLIO, u, None, lin([-cost / USD], [m.cut[r, u]]))


def overhead_cut_once(m, data: Data) -> None:
    """sum_t cut[r,t] <= 1: each G&A reduction is taken at most once."""
    rows = {}
    for r, rd in data.lev.reductions.items():
        if len(rd.periods) > 1:
            rows[r] = lin([1.0] * len(rd.periods), [m.cut[r, u] for u in rd.periods]) <= 1
    add_constraints(m, "overhead_cut_once", rows)


# ---------------------------------------------------------------- site mining overhead and exits


def mine_on(m, s: str, t: int):
    """1 / 0 / the variable mine_on[s,t] (before the horizon: 1 if the site is owned at the start)."""
    if t < 0:
        return 1 if m.site_info[s].owned0 else 0
    return m.mine_on[s, t] if (s, t) in m.mine_on else 0


def _site_exits(m, data: Data) -> None:
    T = data.T
    on_keys, exit_keys = [], []
    for site in data.inst.sites:
        if site.mining_overhead is None:
            continue
        for t in range(T):
            o = sites.own(m, site.id, t, 0)
            if is_const(o) and o == 0:
                continue
            on_keys.append((site.id, t))
            if site.mining_overhead.exit_cost_usd > 0:
                exit_keys.append((site.id, t))
    m.mine_on = add_vars(m, "mine_on", on_keys, pyo.Binary)
    m.mine_exit = add_vars(m, "mine_exit", exit_keys, pyo.NonNegativeReals, ub=1)
    mining_on_rows(m, data)
    mining_needs_on(m, data)
    L = data.tl.period_months
    for (s, t) in on_keys:
        mo = data.inst.site_by_id[s].mining_overhead
        if mo.usd_per_month > 0:
            register(m, "site_overhead_usd", s, t, None, lin([-mo.usd_per_month * L / USD], [m.mine_on[s, t]]))
    for (s, t) in exit_keys:
        register(m, "restructuring_usd", s, t, None,
                 lin([-data.inst.site_by_id[s].mining_overhead.exit_cost_usd / USD], [m.mine_exit[s, t]]))


def mining_on_rows(m, data: Data) -> None:
    """``mining_on_monotone``, ``mining_on_owned`` and ``mining_exit`` (module docstring)."""
    mono, owned, ex = {}, {}, {}
    for (s, t) in m.mine_on_index:
        x, prev = m.mine_on[s, t], mine_on(m, s, t - 1)
        acq = m.acq[s, t] if (s, t) in m.acq else None
        if acq is not None or not is_const(prev) or prev == 0:
            mono[(s, t)] = (x <= prev + acq) if acq is not None else (x <= prev)
        o = sites.own(m, s, t, 0)
        if not is_const(o):
            owned[(s, t)] = x <= o
        if (s, t) in m.mine_exit:
            sell = m.sell[s, t] if (s, t) in m.sell else 0
            ex[(s, t)] = m.mine_exit[s, t] >= prev - x - sell
    add_constraints(m, "mining_on_monotone", mono)
    add_constraints(m, "mining_on_owned", owned)
    add_constraints(m, "mining_exit", ex)


def mining_needs_on(m, data: Data) -> None:
    """sum_m op[s,m,t,w] <= (sum of the op variables' upper bounds) x mine_on[s,t]."""
    by: dict = {}
    for (s, mod, t, w) in m.op_index:
        if (s, t) in m.mine_on:
            by.setdefault((s, t, w), []).append(m.op[s, mod, t, w])
    rows = {}
    for (s, t, w), ops in by.items():
        U = sum(float(v.ub) for v in ops)
        rows[(s, t, w)] = lin([1.0] * len(ops) + [-U], ops + [m.mine_on[s, t]]) <= 0
    add_constraints(m, "mining_needs_on", rows)
