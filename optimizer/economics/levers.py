"""Compiled coefficients of the mining and power levers (instance sections ``markets``, ``fuels``,
``overhead``, ``hedges`` and the plant and site fields of DESIGN section 12).

Both the MILP and the evaluator read these arrays; the formulas are in models/economics.md,
"Mining and power levers". Per period ``t`` (``L`` months, ``hours_t`` hours):

- demand response of market k: ``dr_pay[t] = payment_usd_per_mw_month x months of t in the
  program`` (USD per MW enrolled), ``phi_dr[t] = curtailment_hours_per_month x those months /
  hours_t`` (the share of the period the enrolled MW are off);
- transmission peak: ``peak_usd_per_mw[t] = charge_usd_per_mw x peak months of t``,
  ``phi_peak[t] = curtail_hours_per_month x peak months of t / hours_t``;
- a plant: ``cap_mw = mw x availability``; ``fuel_usd_per_mwh[w,t] = heat rate x the period mean of
  the scenario's fuel price``; ``capacity_usd[t] = capacity_revenue_usd_per_mw_year x cap_mw x months
  active / 12``; the assumed debt's schedule for its principal (``economics.financing`` closed forms);
- G&A: ``g_and_a_usd[t] = sum over the months of t of g_and_a x (1 + e)^floor(months since start / 12)``;
  a reduction saves ``saving_usd[t]`` (the same escalation of staff x cut / 12) in every period from
  ``lag`` periods after the cut (``lag = ceil(saving_lag_months / L)``);
- a forward: ``days[t]`` = days of the delivery months in period t, ``notional_usd_per_ph[t] =
  price x days[t]`` (the notional of 1 PH/s sold for t).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from optimizer.economics.financing import LoanUnit, bullet_unit, facility_unit
from optimizer.instance.levers import HashpriceForward, OverheadReduction
from optimizer.instance.schema import Instance, OwnedGeneration
from optimizer.kernel import finance
from optimizer.kernel.timeline import Timeline, month_ordinal


@dataclass
class MarketFlex:
    dr_pay_usd_per_mw: np.ndarray     # [T] demand-response payment per MW enrolled for the period
    phi_dr: np.ndarray                # [T] share of the period's hours enrolled MW are curtailed
    peak_usd_per_mw: np.ndarray       # [T] peak charge per MW of load at the peak interval(s) of the period
    phi_peak: np.ndarray              # [T] share of the period's hours mining is off to avoid the peak

    @property
    def has_dr(self) -> bool:
        return bool((self.dr_pay_usd_per_mw > 0).any() or (self.phi_dr > 0).any())

    @property
    def has_peak(self) -> bool:
        return bool((self.peak_usd_per_mw > 0).any())


@dataclass
class PlantData:
    plant: OwnedGeneration
    cap_mw: float                      # mw x availability
    fuel_usd_per_mwh: np.ndarray | None  # [W, T] heat rate x fuel price (None without a fuel)
    capacity_usd: np.ndarray           # [T] capacity revenue of a period the plant is owned throughout
    debt: LoanUnit | None              # schedule of the whole assumed principal, drawn at the purchase period
    debt_period: int                   # the purchase period (start period of the contract)


@dataclass
class ReductionData:
    reduction: OverheadReduction
    periods: list[int]                 # periods the cut may be taken in
    lag: int                           # periods from the cut to the first period saved
    saving_usd: np.ndarray             # [T] G&A saved in t once in effect
    one_off_usd: float                 # severance + other one-off cost, paid in the period of the cut


@dataclass
class ForwardData:
    forward: HashpriceForward
    periods: list[int]                 # delivery periods
    trade_period: int
    days: np.ndarray                   # [T] days of the delivery months in each period
    notional_usd_per_ph: np.ndarray    # [T] price x days: notional of 1 PH/s sold for the period


@dataclass
class LeverData:
    fuel_price: dict[str, np.ndarray] = field(default_factory=dict)      # fuel -> [W, T] USD/MMBtu
    markets: dict[str, MarketFlex] = field(default_factory=dict)          # markets with a program
    plants: dict[str, PlantData] = field(default_factory=dict)            # every owned-generation contract
    g_and_a_usd: np.ndarray | None = None                                 # [T], None without an overhead section
    reductions: dict[str, ReductionData] = field(default_factory=dict)
    forwards: dict[str, ForwardData] = field(default_factory=dict)
    site_share: dict[str, float] = field(default_factory=dict)            # sites held at a share < 1

    def share(self, site: str) -> float:
        """The company's share of the cash flows booked at ``site`` (1 for the portfolio and wholly owned sites)."""
        return self.site_share.get(site, 1.0)


def _period_sum(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    return monthly.reshape(monthly.shape[:-1] + (tl.n_periods, tl.period_months)).sum(axis=-1)


def _month_count(tl: Timeline, calendar_months) -> np.ndarray:
    """[T] months of each period whose calendar month (1-12) is in ``calendar_months``."""
    cal = tl.month_ordinals % 12 + 1
    return _period_sum(np.isin(cal, list(calendar_months)).astype(float), tl)


def compile_levers(inst: Instance, tl: Timeline, series: Callable, contracts: dict, period: Callable) -> LeverData:
    """``series(getter)``: [W, T] period means of a scenario series; ``contracts``: ContractData by id;
    ``period(month, default)``: period index of a month."""
    T, L = tl.n_periods, tl.period_months
    hours = tl.hours
    out = LeverData()
    for f in inst.fuels:
        out.fuel_price[f.id] = series(lambda sc, f=f: sc.fuel_price_usd_per_mmbtu.get(f.id, f.price_usd_per_mmbtu))
    for mk in inst.markets:
        z = np.zeros(T)
        flex = MarketFlex(z.copy(), z.copy(), z.copy(), z.copy())
        if mk.demand_response is not None:
            dr = mk.demand_response
            n = _month_count(tl, dr.months or range(1, 13))
            flex.dr_pay_usd_per_mw = dr.payment_usd_per_mw_month * n
            flex.phi_dr = dr.curtailment_hours_per_month * n / hours
        if mk.transmission_peak is not None:
            pk = mk.transmission_peak
            n = _month_count(tl, pk.months)
            flex.peak_usd_per_mw = pk.charge_usd_per_mw * n
            flex.phi_peak = pk.curtail_hours_per_month * n / hours
        out.markets[mk.id] = flex
    for c in inst.contracts:
        if not isinstance(c, OwnedGeneration):
            continue
        cd = contracts[c.id]
        cap = c.mw * c.availability
        fuel = None if c.fuel is None else c.heat_rate_mmbtu_per_mwh * out.fuel_price[c.fuel]
        capacity = c.capacity_revenue_usd_per_mw_year * cap * cd.months_active / 12.0
        debt, u = None, cd.start_period
        if c.assumed_debt is not None:
            a = c.assumed_debt
            i = finance.period_rate(a.interest_rate_per_year, L)
            n = max(tl.lead_periods(a.tenor_months), 1)
            unit = (bullet_unit(i, u, n, T) if a.amortization == "bullet"
                    else facility_unit(i, u, u + 1, n, a.amortization, False, 0.0, L, T))
            P = a.principal_usd
            debt = LoanUnit(unit.interest * P, unit.principal * P, unit.end_balance * P)
        out.plants[c.id] = PlantData(c, cap, fuel, capacity, debt, u)
    o = inst.overhead
    if o is not None:
        since = tl.month_ordinals - tl.start
        factor = finance.escalated(1.0, o.escalator_per_year, since)
        out.g_and_a_usd = _period_sum(o.g_and_a_usd_per_month * factor, tl)
        for r in o.reductions:
            first = max(period(r.earliest_month, 0), 0)
            last = min(period(r.latest_month, T - 1), T - 1)
            out.reductions[r.id] = ReductionData(r, list(range(first, last + 1)), tl.lead_periods(r.saving_lag_months),
                                                 _period_sum(r.saving_usd_per_month * factor, tl), r.one_off_cost_usd)
    if inst.hedges is not None:
        for f in inst.hedges.forwards:
            a, b = month_ordinal(f.first_month), month_ordinal(f.last_month)
            inside = (tl.month_ordinals >= a) & (tl.month_ordinals <= b)
            days = _period_sum(tl.month_days * inside, tl)
            periods = [t for t in range(T) if days[t] > 0]
            out.forwards[f.id] = ForwardData(f, periods, max(period(f.trade_month, 0), 0), days, f.price_usd_per_ph_day * days)
    out.site_share = {s.id: float(s.ownership_share) for s in inst.sites if s.ownership_share < 1}
    return out


__all__ = ["ForwardData", "LeverData", "MarketFlex", "PlantData", "ReductionData", "compile_levers"]
