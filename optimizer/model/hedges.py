"""Hashprice forwards (instance section ``hedges.forwards``).

Variable (first stage): hv[f,t] >= 0, EH/s (``common.PHS`` PH/s per unit) of hashprice sold forward
on forward f for delivery period t.

Rows:
- ``hedge_cap[f,t]``: PHS x hv[f,t] <= max_share_f x sum_w p_w sum_s share_s x ph_op[s,t,w]: at most
  the forward's share of the plan's expected hashrate produced in t (the company's share at
  joint-venture sites; demand-response and peak curtailment included).

Terms (portfolio):
- ``hedge_payoff_usd`` (t, w) = PHS x hv x (price x days[t] - btc_price[w,t] x hp_btc_days[w,t]
  x days[t] / days_t) / USD: the forward pays price - realised hashprice per PH/s and day of the
  delivery months in t (a swap settled in cash; hashprice before the pool fee);
- ``hedge_collateral_usd`` = -collateral_share x notional in the trade period and + the same in
  the delivery period (notional = PHS x hv x price x days[t]); first stage: it does not depend on
  the scenario. Its cost is the time value of the cash tied up, and it counts in the cash balance.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.economics.ledger import PORTFOLIO
from optimizer.model.common import PHS, USD, add_constraints, add_vars, lin, register


def build(m, data: Data) -> None:
    fwd = data.lev.forwards
    keys = [(f, t) for f, fd in fwd.items() for t in fd.periods]
    m.hv = add_vars(m, "hv", keys, pyo.NonNegativeReals)
    if not keys:
        return
    hedge_cap(m, data)
    for (f, t) in keys:
        fd = fwd[f]
        v = m.hv[f, t]
        share = float(fd.days[t] / data.days[t])  # the delivery months' share of the period's days
        for w in range(data.W):
            coef = (PHS / USD) * (float(fd.notional_usd_per_ph[t]) - share * m.btc_price[w, t] * m.hp_btc_days[w, t])
            register(m, "hedge_payoff_usd", PORTFOLIO, t, w, coef * v)
        c = fd.forward.collateral_share * float(fd.notional_usd_per_ph[t]) * PHS / USD
        if c > 0 and fd.trade_period != t:
            register(m, "hedge_collateral_usd", PORTFOLIO, fd.trade_period, None, lin([-c], [v]))
            register(m, "hedge_collateral_usd", PORTFOLIO, t, None, lin([c], [v]))


def hedge_cap(m, data: Data) -> None:
    """PHS x hv[f,t] <= max_share x expected PH/s produced in t (company's share)."""
    ph: dict[int, tuple[list, list]] = {}
    for (s, t, w), e in m.ph_op.items():
        k = float(data.prob[w]) * data.share(s)
        c, v = ph.setdefault(t, ([], []))
        for a in e.args:
            c.append(k * a.args[0])
            v.append(a.args[1])
    rows = {}
    for (f, t) in m.hv_index:
        share = data.lev.forwards[f].forward.max_share_of_expected_hashrate
        c, v = ph.get(t, ([], []))
        rows[(f, t)] = lin([PHS] + [-share * x for x in c], [m.hv[f, t]] + v) <= 0
    add_constraints(m, "hedge_cap", rows)
