"""Compiled coefficients of the ``financing`` section: debt schedules per unit borrowed, tax years,
depreciation by asset class, discount factors by cash-flow class.

The MILP reads these as coefficients (a loan's interest and principal are linear in the amounts
drawn, so one schedule per dollar drawn in each period, superposed, gives the whole schedule);
the evaluator does not: it runs each loan period by period on the plan's actual draws
(``optimizer.evaluate.financing``), so the two agree only if the closed forms here are right.

Conventions (models/economics.md, "Financing and taxes"):
- a draw, an issue, a repayment and interest all happen at the END of their period, like every
  other cash flow; interest of period t is rate x L / 12 x the balance at the end of t - 1;
- amortization payments fall at the end of each of n = tenor / L periods from the period holding
  ``amortization_start_month``; before that interest is paid (interest-only) or capitalized;
- corporate debt outstanding at the start pays its coupon each period through its maturity
  period and its principal at the end of that period;
- new notes issued in period u pay interest in u+1 .. u+m and the principal at u+m, m = tenor / L;
- a balance still owed at the end of the horizon is repaid at par there (terminal_debt_usd);
- tax years are calendar years (the year of a period's first month); a year's tax is paid at the
  end of its last period inside the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from optimizer.instance.financing import ASSET_CLASSES, Financing
from optimizer.kernel import finance
from optimizer.kernel.tax import depreciation_fractions
from optimizer.kernel.timeline import Timeline, month_ordinal


@dataclass
class LoanUnit:
    """Cash flows of one dollar drawn (or issued) in period u: arrays over the horizon's T periods."""

    interest: np.ndarray     # [T] interest paid
    principal: np.ndarray    # [T] principal repaid
    end_balance: float       # owed at the end of the horizon (repaid at par: terminal debt)


@dataclass
class FacilityData:
    facility: object
    rate: float                       # per period
    draw_periods: list[int]           # periods a draw is allowed
    amort_start: int                  # period index of the first amortization payment (may be >= T)
    n_amort: int                      # amortization periods
    growth: float                     # sculpted: yearly growth of debt service
    units: dict[int, LoanUnit]        # u -> schedule of 1 USD drawn in u

    @property
    def dscr_periods(self) -> list[int]:
        """Amortization periods inside the horizon (where the DSCR is tested)."""
        T = len(next(iter(self.units.values())).interest) if self.units else 0
        return list(range(max(self.amort_start, 0), min(self.amort_start + self.n_amort, T)))


@dataclass
class IssueData:
    issue: object
    rate: float
    periods: list[int]
    tenor_periods: int
    units: dict[int, LoanUnit]


@dataclass
class CorporateDebtData:
    debt: object
    maturity_period: int              # may be >= T (matures after the horizon)
    interest: np.ndarray              # [T]
    principal: np.ndarray             # [T]
    end_balance: float


@dataclass
class FinancingData:
    fin: Financing
    T: int
    period_months: int
    years: list[int]                         # tax years (calendar years with a period in the horizon)
    year_of_period: np.ndarray               # [T] index into years
    pay_period: list[int]                    # tax year index -> period whose end pays its tax
    dep_fraction: dict[str, np.ndarray]      # asset class -> share of cost deducted k years after the year spent
    dep_matrix: dict[str, np.ndarray]        # asset class -> [T, Y]: deduction in tax year j of 1 USD spent in t
    dep_remaining: dict[str, np.ndarray]     # asset class -> [T]: tax basis of 1 USD spent in t left after the last tax year
    df_class: dict[str, np.ndarray]          # rate class -> [T] period discount factors (each month's share at its end)
    terminal_tax_df: float                   # discount of the terminal tax, due 12 months after the horizon end
    facilities: dict[str, FacilityData] = field(default_factory=dict)
    df_end_class: dict[str, float] = field(default_factory=dict)  # rate class -> discount factor of the horizon's end
    issues: dict[str, IssueData] = field(default_factory=dict)
    corporate: dict[str, CorporateDebtData] = field(default_factory=dict)

    @property
    def taxes(self):
        return self.fin.taxes

    @property
    def has_debt(self) -> bool:
        return bool(self.facilities or self.issues or self.corporate)

    def other_rate_class_df(self) -> np.ndarray:
        return self.df_class["other"]


def _period(tl: Timeline, month: str) -> int:
    return tl.period_of_month(month_ordinal(month))


def facility_unit(rate: float, u: int, a: int, n: int, kind: str, capitalized: bool, growth: float,
                  period_months: int, T: int) -> LoanUnit:
    """Schedule of 1 USD drawn at the end of period u < a (closed forms; see the module docstring)."""
    interest, principal = np.zeros(T), np.zeros(T)
    g = 1.0 + rate
    # construction: periods u+1 .. a-1
    for t in range(u + 1, min(a, T)):
        if not capitalized:
            interest[t] = rate
    B = g ** (a - 1 - u) if capitalized else 1.0  # balance when amortization starts
    if a > T - 1:  # no amortization payment inside the horizon
        end = g ** (T - 1 - u) if capitalized else 1.0
        return LoanUnit(interest, principal, float(end))
    share = _balance_shares(rate, n, kind, growth, period_months)  # owed after k payments, k = 0..n
    for k in range(n):
        t = a + k
        if t > T - 1:
            break
        interest[t] = rate * B * share[k]
        principal[t] = B * (share[k] - share[k + 1])
    k_end = min(T - 1 - a + 1, n)  # payments made by the end of the horizon
    return LoanUnit(interest, principal, float(B * share[k_end]))


def _balance_shares(rate: float, n: int, kind: str, growth: float, period_months: int) -> np.ndarray:
    """Share of the amortizing balance owed after k = 0..n payments."""
    k = np.arange(n + 1)
    if kind == "annuity":
        return np.array([finance.annuity_balance_share(rate, n, int(j)) for j in k])
    if kind == "level_principal":
        return (n - k) / n
    # sculpted: payment k is A (1 + growth)^(whole years since the first payment); A repays 1 USD
    steps = (1.0 + growth) ** np.floor(np.arange(n) * period_months / 12.0)
    v = (1.0 + rate) ** -(np.arange(n) + 1.0)
    A = 1.0 / float(np.sum(steps * v))
    # owed after k payments = PV at the loan rate of the payments still to come
    return np.array([float(np.sum(A * steps[j:] * (1.0 + rate) ** -(np.arange(n - j) + 1.0))) for j in k])


def bullet_unit(rate: float, u: int, m: int, T: int) -> LoanUnit:
    """1 USD of notes issued at the end of u: interest in u+1 .. u+m, principal at u+m."""
    interest, principal = np.zeros(T), np.zeros(T)
    for t in range(u + 1, min(u + m, T - 1) + 1):
        interest[t] = rate
    if u + m <= T - 1:
        principal[u + m] = 1.0
        return LoanUnit(interest, principal, 0.0)
    return LoanUnit(interest, principal, 1.0)


def compile_financing(fin: Financing, inst, tl: Timeline, df: np.ndarray, period_years: np.ndarray,
                      df_end: float | None = None) -> FinancingData:
    T, L = tl.n_periods, tl.period_months
    years = sorted({int(y) for y in period_years})
    yidx = {y: j for j, y in enumerate(years)}
    year_of_period = np.array([yidx[int(y)] for y in period_years])
    pay = [int(np.nonzero(year_of_period == j)[0][-1]) for j in range(len(years))]
    dep_fraction, dep_matrix, dep_remaining = {}, {}, {}
    if fin.taxes is not None:
        for k in ASSET_CLASSES:
            rule = getattr(fin.taxes.depreciation, k)
            f = depreciation_fractions(rule.method, rule.years, rule.bonus_share)
            dep_fraction[k] = f
            M = np.zeros((T, len(years)))
            for t in range(T):
                for j, y in enumerate(years):
                    age = y - int(period_years[t])
                    if 0 <= age < len(f):
                        M[t, j] = f[age]
            dep_matrix[k] = M
            dep_remaining[k] = (1.0 if len(f) else 0.0) - M.sum(axis=1)
    r = inst.horizon.discount_rate
    rates = fin.discount_rates
    df_class, df_end_class = {}, {}
    if df_end is None:
        df_end = float(finance.discount_factors(r, [tl.n_months])[0])
    for c in ("contracted_lease", "merchant_mining", "other"):
        rc = None if rates is None else getattr(rates, c)
        same = rc is None or rc == r
        # each month's share of a period discounted at the month's end; terminal lines at the horizon's end
        df_class[c] = df if same else finance.period_discount_factors(rc, T, L)
        df_end_class[c] = df_end if same else float(finance.discount_factors(rc, [tl.n_months])[0])
    r_other = r if rates is None or rates.other is None else rates.other
    out = FinancingData(fin, T, L, years, year_of_period, pay, dep_fraction, dep_matrix, dep_remaining, df_class,
                        terminal_tax_df=float(finance.discount_factors(r_other, np.array([12.0]))[0]),
                        df_end_class=df_end_class)
    leases = {l.id: l for l in inst.leases}
    for f in fin.project_facilities:
        i = finance.period_rate(f.interest_rate_per_year, L)
        first = 0 if f.draw_first_month is None else max(_period(tl, f.draw_first_month), 0)
        last = min(_period(tl, f.draw_last_month), T - 1)
        a = _period(tl, f.amortization_start_month)
        n = f.tenor_months // L
        growth = f.sculpt_growth_per_year
        if growth is None:
            growth = leases[f.lease].escalator_per_year if f.lease is not None else 0.0
        periods = list(range(first, last + 1))
        units = {u: facility_unit(i, u, a, n, f.amortization, f.construction_interest == "capitalized", growth, L, T)
                 for u in periods}
        out.facilities[f.id] = FacilityData(f, i, periods, a, n, growth, units)
    for s in fin.new_issues:
        i = finance.period_rate(s.coupon_per_year, L)
        first = max(_period(tl, s.first_month), 0)
        last = T - 1 if s.last_month is None else min(_period(tl, s.last_month), T - 1)
        m = s.tenor_months // L
        periods = list(range(first, last + 1))
        out.issues[s.id] = IssueData(s, i, periods, m, {u: bullet_unit(i, u, m, T) for u in periods})
    for d in fin.corporate_debt:
        i = finance.period_rate(d.coupon_per_year, L)
        mp = _period(tl, d.maturity_month)
        interest, principal = np.zeros(T), np.zeros(T)
        interest[: min(mp, T - 1) + 1] = d.principal_usd * i
        end = d.principal_usd
        if mp <= T - 1:
            principal[mp] = d.principal_usd
            end = 0.0
        out.corporate[d.id] = CorporateDebtData(d, mp, interest, principal, end)
    return out
