"""Finance arithmetic: discounting, annuities, escalators, rents, take-or-pay, CVaR. Pure numpy.

Conventions (models/economics.md, "Time"): NPV is discounted monthly. A period of L months
spreads its cash flows evenly over its months, each month's share discounted at the month's end:
DF_t = (1/L) sum_{j=1..L} (1 + r)^(-(L t + j)/12) (for monthly periods the end-of-month factor);
terminal values sit at the horizon's end, (1 + r)^(-L T/12). Escalators step once per contract
(or lease) year, counted from its own start month.
"""

from __future__ import annotations

import math

import numpy as np
import pyxirr

# ---------------------------------------------------------------- discounting


def monthly_rate(annual_rate: float) -> float:
    """Monthly rate equivalent to an annual rate: (1 + r)^(1/12) - 1."""
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def discount_factors(annual_rate: float, months_elapsed_at_end: np.ndarray) -> np.ndarray:
    """End-of-period discount factors (1 + r)^(-months/12)."""
    return (1.0 + annual_rate) ** (-np.asarray(months_elapsed_at_end, dtype=float) / 12.0)


def period_discount_factors(annual_rate: float, n_periods: int, period_months: int = 1) -> np.ndarray:
    """[n_periods] discount factors of periods of ``period_months`` months whose cash flows are
    spread evenly over their months, each month's share discounted at the month's end:
    DF_t = mean over j = 1..L of (1 + r)^(-(L t + j)/12). Monthly periods: (1 + r)^(-(t+1)/12)."""
    L = int(period_months)
    months = np.arange(1, n_periods * L + 1, dtype=float)
    return discount_factors(annual_rate, months).reshape(n_periods, L).mean(axis=1)


def annuity_pv(payment: float, annual_rate: float, n_months: int) -> float:
    """Present value of ``payment`` at the end of each of ``n_months`` months (closed form)."""
    i = monthly_rate(annual_rate)
    if i == 0:
        return payment * n_months
    return payment * (1.0 - (1.0 + i) ** (-n_months)) / i


# ---------------------------------------------------------------- escalators


def escalated(base: float, escalator_per_year: float, months_since_start: np.ndarray | int) -> np.ndarray:
    """``base`` x (1 + escalator)^(whole contract years since start)."""
    years = np.floor(np.asarray(months_since_start, dtype=float) / 12.0)
    return base * (1.0 + escalator_per_year) ** years


def lease_rent_usd_month(it_mw: float, rate_usd_per_kw_month: float, escalator_per_year: float, months_since_handover) -> np.ndarray:
    """Monthly rent: MW x 1000 kW/MW x rate x escalator step."""
    return it_mw * 1000.0 * escalated(rate_usd_per_kw_month, escalator_per_year, months_since_handover)


# ---------------------------------------------------------------- power


def take_or_pay_charge_usd(price_usd_per_mwh, taken_mwh, cap_mw: float, min_share: float, hours):
    """Payment under a take-or-pay contract: price x max(taken, min share x cap x hours)
    (elementwise on arrays: the evaluator's power-cost line of fixed contracts)."""
    return price_usd_per_mwh * np.maximum(taken_mwh, min_share * cap_mw * np.asarray(hours, dtype=float))


def asic_energy_mwh(units, power_w: float, pue: float, hours):
    """MWh drawn by ``units`` ASICs of ``power_w`` W at a site's ``pue`` over ``hours`` (cooling included)."""
    return units * power_w * pue * np.asarray(hours, dtype=float) / 1e6


def ceil_racks(it_mw: float, kw_per_rack: float) -> int:
    """Whole rack positions needed for ``it_mw`` of critical IT."""
    return int(math.ceil(it_mw * 1000.0 / kw_per_rack - 1e-9))


# ---------------------------------------------------------------- risk


def cvar_usd(npv_usd, probabilities, alpha: float) -> float:
    """CVaR_alpha of the lower tail: the probability-weighted mean of the worst ``1 - alpha``
    mass of NPVs, the scenario at the alpha-quantile counted with the fraction of its mass
    that fits in the tail. alpha = 0 gives E[NPV]; alpha -> 1 gives the worst NPV."""
    v = np.asarray(list(npv_usd), dtype=float)
    p = np.asarray(list(probabilities), dtype=float)
    if v.shape != p.shape or v.size == 0:
        raise ValueError("cvar_usd: give one probability per NPV (at least one)")
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha: must be in [0, 1), got {alpha}")
    beta = 1.0 - alpha
    order = np.argsort(v, kind="stable")
    v, p = v[order], p[order] / p.sum()
    before = np.concatenate([[0.0], np.cumsum(p)[:-1]])  # mass of the worse scenarios
    take = np.clip(beta - before, 0.0, p)                 # mass of each scenario inside the tail
    return float(np.dot(take, v) / beta)


# ---------------------------------------------------------------- debt


def period_rate(annual_rate: float, period_months: int) -> float:
    """Interest rate of one period of a loan quoted at a nominal annual rate (the market
    convention for notes and term loans): annual x months / 12, compounded each period."""
    return annual_rate * period_months / 12.0


def annuity_payment(balance: float, rate: float, n: int) -> float:
    """Level payment that repays ``balance`` with interest ``rate`` per period in ``n`` payments,
    each at the end of a period: B i / (1 - (1 + i)^-n) (B / n at i = 0)."""
    if n <= 0:
        raise ValueError(f"annuity over n={n} periods")
    if rate == 0:
        return balance / n
    return balance * rate / (1.0 - (1.0 + rate) ** (-n))


def annuity_balance_share(rate: float, n: int, k: int) -> float:
    """Share of the original balance still owed after k of n level payments (closed form):
    ((1 + i)^n - (1 + i)^k) / ((1 + i)^n - 1); (n - k) / n at i = 0."""
    if rate == 0:
        return (n - k) / n
    g = 1.0 + rate
    return (g ** n - g ** k) / (g ** n - 1.0)


# ---------------------------------------------------------------- returns


def irr_per_year(flows, period_months: int) -> float | None:
    """Internal rate of return of equally spaced end-of-period cash flows, as an effective annual
    rate ((1 + per-period IRR)^(12/months) - 1), from pyxirr. None when the flows do not change
    sign (no IRR exists) or pyxirr finds no root."""
    v = np.asarray(list(flows), dtype=float)
    if v.size < 2 or not (np.any(v > 0) and np.any(v < 0)):
        return None
    r = pyxirr.irr(v.tolist())
    if r is None or not math.isfinite(r):
        return None
    return float((1.0 + r) ** (12.0 / period_months) - 1.0)
