"""Mutable Params: the coefficients sweeps change, so a persistent solver can update them.

Each Param is a factor that multiplies a float-coefficient linear expression, so there are few
of them (per period and scenario, per lease, per site) and building stays fast:

- ``df[t]``                discount factor of period t (each month's share at its end)
- ``df_end[0]``            discount factor of the horizon's end (terminal lines)
- ``btc_price[w, t]``      USD per BTC
- ``btc_per_ph[w, t]``     BTC one PH/s of operating hashrate earns in period t, after the pool
                           fee (hashprice in BTC/PH/day x days x (1 - pool fee))
- ``power_price[k, w, t]`` USD/MWh of market k
- ``site_price[s, w, t]``  USD/MWh the site pays for energy (``Data.site_energy_price``): pass-through
                           reimbursement and after-power NOI margins
- ``hpc_value[s, w]``      USD per unleased HPC MW at the end (``Data.hpc_value_usd_per_mw``)
- ``mining_price[s, w]``   USD/MWh of the terminal mining margin (``Data.terminal_mining_price``)
- ``lease_reversion[l, tau, k]`` reversion factor of the months tranche k of lease l handed over in tau
                           is reserved past the end
- ``lease_rate[l]``        USD per kW-month of lease l (rent and NOI-margin opex scale with it)
- ``lease_terminal[l, tau, s, w]`` USD, the terminal_lease_noi of lease l handed over in tau at s
                           (``Data.lease_terminal_usd``: contracted NOI net of fixed HPC opex and power)
- ``capex_per_mw[s]``      conversion capex USD per MW of critical IT at site s
- ``build_capex_per_mw[s, b]``  capex USD per MW of new-build option b at site s
- ``df_class[c, t]``       discount factor of rate class c (financing.discount_rates; only when given)
- ``df_end_class[c]``      horizon-end discount factor of rate class c (terminal lines; only when given)
- ``tax_lag_df[0]``        discount of the terminal tax, due 12 months after the horizon end (taxes only)
- ``fuel_price[f, w, t]``  USD/MMBtu of fuel f (only with ``fuels``)
- ``hp_btc_days[w, t]``    hashprice in BTC per PH/s per day x the period's days, before the pool fee
                           (the settlement of hashprice forwards; only with ``hedges.forwards``)

``update_params(model, data)`` copies these from a freshly compiled Data of the same shape.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from optimizer.economics.data import Data

# The instance fields whose numbers reach the model only through the Params below: a variant of
# an instance that differs from the built model only in these is re-solved in place by
# ``optimizer.solve.PersistentSolver`` (series fields: every number of the series).
PARAM_SERIES_FIELDS = ("btc_price_usd", "network_hashrate_eh_s", "fees_btc_per_block",
                       "power_price_usd_per_mwh", "hpc_lease_rate_index", "fuel_price_usd_per_mmbtu", "price_usd_per_mmbtu")
PARAM_NUMBER_FIELDS = ("rate_usd_per_kw_month", "capex_usd_per_mw", "discount_rate")


def _btc_per_ph(data: Data) -> np.ndarray:
    fee = data.inst.bitcoin.pool_fee
    return data.hashprice_btc_per_ph_day * data.days[None, :] * (1.0 - fee)


def _values(data: Data) -> dict[str, dict]:
    T, W = data.T, data.W
    pp = _btc_per_ph(data)
    v = {
        "df": {t: float(data.df[t]) for t in range(T)},
        "btc_price": {(w, t): float(data.btc_price_usd[w, t]) for w in range(W) for t in range(T)},
        "btc_per_ph": {(w, t): float(pp[w, t]) for w in range(W) for t in range(T)},
        "power_price": {(k, w, t): float(a[w, t]) for k, a in data.power_price.items() for w in range(W) for t in range(T)},
        "df_end": {0: float(data.df_end)},
        "site_price": {(s, w, t): float(a[w, t]) for s, a in data.site_energy_price.items() for w in range(W) for t in range(T)},
        "hpc_value": {(s, w): float(a[w]) for s, a in data.hpc_value_usd_per_mw.items() for w in range(W)},
        "mining_price": {(s, w): float(a[w]) for s, a in data.terminal_mining_price.items() for w in range(W)},
        "lease_rate": {l.id: float(l.rate_usd_per_kw_month) for l in data.inst.leases},
        "lease_reversion": {(lid, tau, k): data.reversion_factor(int(n))
                            for lid, ld in data.leases.items() for tau in ld.handover_periods if ld.runs_past_horizon[tau]
                            for k, n in enumerate(ld.tranche_months_after[tau])},
        "lease_terminal": {(lid, tau, s, w): float(data.lease_terminal_usd(lid, tau, s)[w])
                           for lid, ld in data.leases.items() for tau in ld.handover_periods if ld.runs_past_horizon[tau]
                           for s in data.inst.eligible_sites(ld.lease) for w in range(W)},
        "capex_per_mw": {s.id: float(s.conversion.capex_usd_per_mw) for s in data.inst.sites if s.conversion is not None},
        "build_capex_per_mw": {k: float(b.option.capex_usd_per_mw) for k, b in data.builds.items()},
    }
    if data.lev.fuel_price:
        v["fuel_price"] = {(f, w, t): float(a[w, t]) for f, a in data.lev.fuel_price.items() for w in range(W) for t in range(T)}
    if data.lev.forwards:
        hd = data.hashprice_btc_per_ph_day * data.days[None, :]
        v["hp_btc_days"] = {(w, t): float(hd[w, t]) for w in range(W) for t in range(T)}
    fin = data.fin
    if fin is not None and fin.fin.discount_rates is not None:
        v["df_class"] = {(c, t): float(a[t]) for c, a in fin.df_class.items() for t in range(T)}
        v["df_end_class"] = {c: float(x) for c, x in fin.df_end_class.items()}
    if fin is not None and fin.taxes is not None:
        v["tax_lag_df"] = {0: fin.terminal_tax_df}
    return v


class StructureChanged(ValueError):
    """The new data needs another model (raised by ``update_params``; rebuild instead)."""


def _structure(data: Data) -> tuple:
    """What the Params cannot carry: which scenarios share a lease schedule (delays and holder-mode
    renewals, which the HPC lease-rate index decides)."""
    return tuple((lid, tau, tuple(int(v) for v in vo)) for lid, ld in data.leases.items() for tau, vo in ld.variant_of.items())


def build(m, data: Data) -> None:
    for name, vals in _values(data).items():
        setattr(m, name, pyo.Param(list(vals), initialize=vals, mutable=True, within=pyo.Reals))
    m.param_structure = _structure(data)


def update_params(m, data: Data) -> None:
    """Set every mutable Param from ``data``; the instance must have the model's structure
    (same periods, scenarios, markets, leases and hand-over windows, sites with conversions, the
    same scenarios sharing each lease schedule), else ``StructureChanged``."""
    if getattr(m, "param_structure", None) != _structure(data):
        raise StructureChanged("update_params: the scenarios sharing a lease schedule differ from the built model's; rebuild the model")
    for name, vals in _values(data).items():
        p = getattr(m, name)
        if set(vals) != set(p.keys()):
            raise StructureChanged(f"update_params: {name} has a different index than the built model; rebuild the model")
        for k, x in vals.items():
            p[k].set_value(x)
