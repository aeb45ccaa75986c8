"""Flexibility income and charges of curtailable mining load (instance section ``markets``).

The variables are the fleet's (``fleet.py``): dr[s,m,t,w] operating units enrolled in the market's
demand-response program and pk[s,m,t,w] operating units off around the transmission peak (each
<= op). Their lost hashprice and saved energy are already in the mining revenue and the energy
balance (``m.ph_op``, ``m.curtailed_gwh``). This part registers:

- ``demand_response_usd`` (s,t,w) = dr_pay[t] x sum_m MW per unit x dr (MW enrolled at the meter);
- ``peak_charge_usd`` = -peak_usd_per_mw[t] x the site's load at the peak: the firm HPC load
  (first stage: hpc_gwh x MWH / hours_t, its average MW) plus the mining MW running at the peak
  (per scenario: sum_m MW per unit x (op - pk)).
"""

from __future__ import annotations

from optimizer.economics.data import Data
from optimizer.model.common import MWH, UNITS, USD, Acc, inv_at, isplit, register


def build(m, data: Data) -> None:
    pay, peak = Acc(), Acc()
    for (s, mod, t, w) in m.dr_index:
        pay.add((s, t, w), float(data.flex(s).dr_pay_usd_per_mw[t]) * data.mw_per_unit(s, mod) * UNITS / USD, m.dr[s, mod, t, w])
    for (s, mod, t, w) in m.op_index:
        fx = data.flex(s)
        if fx is None or fx.peak_usd_per_mw[t] <= 0:
            continue
        c = -float(fx.peak_usd_per_mw[t]) * data.mw_per_unit(s, mod) * UNITS / USD
        peak.add((s, t, w), c, m.op[s, mod, t, w])
        if (s, mod, t, w) in m.pk:
            peak.add((s, t, w), -c, m.pk[s, mod, t, w])
    for (s, t, w), e in pay.items():
        register(m, "demand_response_usd", s, t, w, e)
    for (s, t, w), e in peak.items():
        register(m, "peak_charge_usd", s, t, w, e)
    for k in m.hpc_gwh_index:  # (s, t) in the two-stage form the levers are built in (instance.checks)
        (s,), t, r = isplit(m, k, 1)
        fx = data.flex(s)
        if fx is not None and fx.peak_usd_per_mw[t] > 0:
            register(m, "peak_charge_usd", s, t, inv_at(m, t, r),
                     (-float(fx.peak_usd_per_mw[t]) * MWH / float(data.hours[t]) / USD) * m.hpc_gwh[k])
