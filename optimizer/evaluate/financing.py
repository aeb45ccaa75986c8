"""The evaluator's financing lines: debt run period by period, taxes year by year, valuation.

Plain arithmetic on the plan's own numbers, independent of the MILP's superposed per-dollar
schedules (``economics.financing``): each loan keeps a balance that draws raise, capitalized
interest raises and repayments lower; the amortization payment is computed once from the
balance when amortization starts (``kernel.finance.annuity_payment``); taxes follow the law as
a loop: tax = rate x max(0, income - losses used), losses used = min(losses carried,
nol_limit_share x income), losses carried grow by every loss (models/economics.md, "Taxes").
Rule breaks (draws outside a window, above the commitment, the loan-to-cost share or the DSCR,
on an unsigned lease, BTC repayment not covered) become sentences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer.economics.ledger import LEVERED_ITEMS, PORTFOLIO, TAXABLE_ITEMS, TERMINAL_ITEMS
from optimizer.evaluate.firststage import fmt, period_of, tol
from optimizer.instance.financing import FINANCED_CLASS
from optimizer.kernel import finance

_FINANCED = FINANCED_CLASS


@dataclass
class TaxRun:
    """Taxes of one system (levered: interest deducted; unlevered: as if there were no debt)."""

    tax: np.ndarray                  # [W, T] tax paid (>= 0), in the pay periods
    terminal_tax: np.ndarray         # [W] tax on the deemed sale of terminal values, valued at the horizon end
    table: pd.DataFrame              # scenario x year schedule


@dataclass
class FinancingReport:
    debt_schedule: pd.DataFrame = field(default_factory=pd.DataFrame)
    tax_schedule: pd.DataFrame = field(default_factory=pd.DataFrame)
    unlevered: TaxRun | None = None


def draws_by_instrument(ev, plan) -> dict[str, np.ndarray]:
    """instrument -> [T] USD drawn / issued per period, from ``plan.debt``; bad rows are sentences."""
    fd, st = ev.d.fin, ev.st
    known = set(fd.facilities) | set(fd.issues) if fd is not None else set()
    out: dict[str, np.ndarray] = {}
    for i, r in enumerate(plan.debt.itertuples(index=False)):
        where = f"plan.debt row {i}"
        if r.instrument not in known:
            what = "is debt outstanding at the start, not drawn" if fd is not None and r.instrument in fd.corporate else "unknown instrument"
            st.violations.append(f"{where}: {r.instrument!r} {what} (draw project facilities and issue new notes only)")
            continue
        t = period_of(st, r.month, where)
        if t is None:
            continue
        x = float(r.usd)
        if not math.isfinite(x) or x < -tol(x):
            st.violations.append(f"{where}: usd {fmt(x)} is negative or not a number")
            continue
        out.setdefault(r.instrument, np.zeros(ev.T))[t] += max(x, 0.0)
    return out


def run_debt(ev, plan) -> FinancingReport:
    """Add the debt lines of the plan to the evaluator and return the debt schedule."""
    fd, st, d = ev.d.fin, ev.st, ev.d
    T, L = ev.T, d.tl.period_months
    draws = draws_by_instrument(ev, plan)
    rows = []
    for f_id, fa in fd.facilities.items():
        fac = fa.facility
        D = draws.get(f_id, np.zeros(T))
        _check_window(ev, f"project facility {f_id}", D, fa.draw_periods)
        if D.sum() > fac.commitment_usd + tol(fac.commitment_usd):
            st.violations.append(f"project facility {f_id}: draws {fmt(D.sum())} USD exceed the commitment {fmt(fac.commitment_usd)} USD")
        if fac.lease is not None and D.sum() > 0 and not any(r.lease == fac.lease for r in st.leases):
            st.violations.append(f"project facility {f_id}: drawn {fmt(D.sum())} USD but lease {fac.lease} is not signed")
        spent = sum((st.assets.get((fac.site, _FINANCED[k]), np.zeros(T)) for k in fac.finances), np.zeros(T))
        over = np.cumsum(D) - fac.loan_to_cost * np.cumsum(spent)
        bad = np.nonzero(over > tol(np.cumsum(D)))[0]
        if len(bad):
            t = bad[0]
            st.violations.append(f"project facility {f_id} {ev.d.labels[t]}: drawn {fmt(np.cumsum(D)[t])} USD by then, more than "
                                 f"loan_to_cost {fac.loan_to_cost:g} x financed capex {fmt(np.cumsum(spent)[t])} USD")
        interest, principal, balance = _amortize(D, fa.rate, fa.amort_start, fa.n_amort, fac.amortization,
                                                 fac.construction_interest == "capitalized", fa.growth, L, T)
        fees = fac.upfront_fee_share * D
        _lines(ev, fac.site, D, fees, interest, principal, balance[-1])
        if fac.min_dscr is not None:
            _check_dscr(ev, f_id, fac, interest + principal, fa.dscr_periods)
        rows.append(_schedule(ev, f_id, "project_facility", D, fees, interest, principal, balance))
    for n_id, iss in fd.issues.items():
        s = iss.issue
        D = draws.get(n_id, np.zeros(T))
        _check_window(ev, f"new issue {n_id}", D, iss.periods)
        if D.sum() > s.max_usd + tol(s.max_usd):
            st.violations.append(f"new issue {n_id}: {fmt(D.sum())} USD issued, more than max_usd {fmt(s.max_usd)} USD")
        interest, principal, balance = np.zeros(T), np.zeros(T), np.zeros(T)
        for u in np.nonzero(D)[0]:  # each issue: coupon while outstanding, principal at u + m
            for t in range(u + 1, min(u + iss.tenor_periods, T - 1) + 1):
                interest[t] += iss.rate * D[u]
            if u + iss.tenor_periods <= T - 1:
                principal[u + iss.tenor_periods] += D[u]
        balance = np.cumsum(D - principal)
        fees = s.fee_share * D
        _lines(ev, PORTFOLIO, D, fees, interest, principal, balance[-1])
        rows.append(_schedule(ev, n_id, s.kind, D, fees, interest, principal, balance))
    for c_id, cd in fd.corporate.items():
        c = cd.debt
        i = finance.period_rate(c.coupon_per_year, L)
        interest, principal, balance = np.zeros(T), np.zeros(T), np.zeros(T)
        bal = c.principal_usd
        for t in range(T):
            interest[t] = i * bal
            if t == cd.maturity_period:
                principal[t] = bal
                bal = 0.0
            balance[t] = bal
        _lines(ev, PORTFOLIO, np.zeros(T), np.zeros(T), interest, principal, balance[-1])
        rows.append(_schedule(ev, c_id, c.kind, np.zeros(T), np.zeros(T), interest, principal, balance))
        if c.repayment_source == "treasury_btc" and cd.maturity_period <= T - 1:
            t = cd.maturity_period
            sold = d.btc_price_usd[:, t] * ev.ops.btc_sold[:, t]
            for w in np.nonzero(sold < c.principal_usd - tol(c.principal_usd))[0]:
                scen = f" (scenario {d.scenario_names[w]})" if ev.W > 1 else ""
                st.violations.append(f"corporate debt {c_id} {d.labels[t]}{scen}: treasury BTC sold {fmt(sold[w])} USD does not cover "
                                     f"the principal {fmt(c.principal_usd)} USD due (repayment_source treasury_btc)")
    _check_shared_capex(ev, draws)
    sched = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return FinancingReport(debt_schedule=sched)


def run_assumed_debt(ev) -> pd.DataFrame:
    """Debt assumed with an owned plant bought by the plan (``contracts[*].assumed_debt``): drawn in
    effect in the purchase period (a debt_draws_usd line that offsets that part of the price), then
    run like any loan: a bullet pays interest each period and the principal at maturity; an annuity
    or level-principal loan amortizes from the next period. Adds the lines at the plant's site and
    returns its debt-schedule rows."""
    d, st = ev.d, ev.st
    T, L = ev.T, d.tl.period_months
    rows = []
    for c in d.inst.contracts:
        debt = getattr(c, "assumed_debt", None)
        if debt is None or not st.signed[c.id]:
            continue
        u = d.contracts[c.id].start_period
        i = finance.period_rate(debt.interest_rate_per_year, L)
        n = max(d.tl.lead_periods(debt.tenor_months), 1)
        D = np.zeros(T)
        D[u] = debt.principal_usd
        if debt.amortization == "bullet":
            interest, principal, balance = np.zeros(T), np.zeros(T), np.zeros(T)
            bal = 0.0
            for t in range(T):
                interest[t] = i * bal
                if t == u + n:
                    principal[t] = bal
                    bal = 0.0
                bal += D[t]
                balance[t] = bal
        else:
            interest, principal, balance = _amortize(D, i, u + 1, n, debt.amortization, False, 0.0, L, T)
        _lines(ev, c.site, D, np.zeros(T), interest, principal, balance[-1])
        rows.append(_schedule(ev, c.id, "assumed_debt", D, np.zeros(T), interest, principal, balance))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _check_shared_capex(ev, draws: dict[str, np.ndarray]) -> None:
    """Facilities of one site share its capex: sum_f cumulative draws_f / LTC_f <= cumulative capex
    that any of them finances."""
    T = ev.T
    by_site: dict[str, list] = {}
    for f_id, fa in ev.d.fin.facilities.items():
        by_site.setdefault(fa.facility.site, []).append((f_id, fa.facility))
    for site, group in by_site.items():
        if len(group) < 2:
            continue
        classes = {_FINANCED[k] for _, fac in group for k in fac.finances}
        spent = np.cumsum(sum((ev.st.assets.get((site, c), np.zeros(T)) for c in classes), np.zeros(T)))
        used = np.cumsum(sum((draws.get(f_id, np.zeros(T)) / fac.loan_to_cost for f_id, fac in group), np.zeros(T)))
        bad = np.nonzero(used > spent + tol(spent))[0]
        if len(bad):
            t = bad[0]
            ev.st.violations.append(f"site {site} {ev.d.labels[t]}: its facilities ({', '.join(f for f, _ in group)}) have drawn "
                                    f"{fmt(used[t])} USD of capex at their loan-to-cost shares, more than the {fmt(spent[t])} USD spent")


def _check_window(ev, what: str, D: np.ndarray, periods: list[int]) -> None:
    allowed = np.zeros(ev.T, dtype=bool)
    allowed[periods] = True
    out = np.nonzero((D > 0) & ~allowed)[0]
    if len(out):
        t = out[0]
        win = f"{ev.d.labels[periods[0]]}..{ev.d.labels[periods[-1]]}" if periods else "none inside the horizon"
        more = f" (and {len(out) - 1} more periods)" if len(out) > 1 else ""
        ev.st.violations.append(f"{what} {ev.d.labels[t]}: {fmt(D[t])} USD outside its window {win}{more}")


def _amortize(D, i, a, n, kind, capitalized, growth, L, T):
    """Balance loop of a project facility: interest, principal, end-of-period balance per period."""
    interest, principal, balance = np.zeros(T), np.zeros(T), np.zeros(T)
    bal, pay0, B = 0.0, 0.0, 0.0
    for t in range(T):
        if t < a:
            if capitalized:
                bal *= 1.0 + i
            else:
                interest[t] = i * bal
            bal += D[t]
        else:
            k = t - a
            if k == 0:
                B = bal
                if kind == "annuity":
                    pay0 = finance.annuity_payment(B, i, n)
                elif kind == "sculpted":
                    pv = sum((1.0 + growth) ** math.floor(j * L / 12.0) / (1.0 + i) ** (j + 1) for j in range(n))
                    pay0 = B / pv
            if k < n:
                interest[t] = i * bal
                if kind == "level_principal":
                    principal[t] = B / n
                elif kind == "annuity":
                    principal[t] = pay0 - interest[t]
                else:
                    principal[t] = pay0 * (1.0 + growth) ** math.floor(k * L / 12.0) - interest[t]
                bal -= principal[t]
            bal += D[t]  # a draw after amortization started is a violation; kept so the lines show it
        balance[t] = bal
    return interest, principal, balance


def _lines(ev, site: str, D, fees, interest, principal, end_balance: float) -> None:
    T = ev.T
    ev.add(site, "debt_draws_usd", D)
    ev.add(site, "debt_fees_usd", -fees)
    ev.add(site, "interest_usd", -interest)
    ev.add(site, "principal_usd", -principal)
    last = np.zeros(T)
    last[-1] = end_balance
    ev.add(site, "terminal_debt_usd", -last)


def _schedule(ev, instrument, kind, D, fees, interest, principal, balance) -> pd.DataFrame:
    return pd.DataFrame({"instrument": instrument, "kind": kind, "month": ev.d.labels, "period": np.arange(ev.T),
                         "drawn_usd": D, "fees_usd": fees, "interest_usd": interest, "principal_usd": principal,
                         "debt_service_usd": interest + principal, "balance_usd": balance})


def _check_dscr(ev, f_id: str, fac, service: np.ndarray, periods: list[int]) -> None:
    """NOI of the facility's lease (or its site's leases) >= min_dscr x debt service."""
    noi = np.zeros((ev.W, ev.T))  # rent received - lease opex, per scenario (schedules may differ: delays)
    for r in ev.st.leases:
        if (fac.lease is not None and r.lease == fac.lease) or (fac.lease is None and r.site == fac.site):
            noi = noi + r.rent_usd - r.opex_usd
    for t in periods:
        need = fac.min_dscr * service[t]
        w = int(np.argmin(noi[:, t]))
        if noi[w, t] < need - tol(need):
            scen = f" (scenario {ev.d.scenario_names[w]})" if ev.W > 1 else ""
            ev.st.violations.append(f"project facility {f_id} {ev.d.labels[t]}{scen}: NOI {fmt(noi[w, t])} USD is below min_dscr "
                                    f"{fac.min_dscr:g} x debt service {fmt(service[t])} USD")
            return


# ---------------------------------------------------------------- taxes


def run_taxes(ev, levered: bool) -> TaxRun:
    """Taxes per scenario and calendar year from the evaluator's lines (see the module docstring)."""
    fd, st, d = ev.d.fin, ev.st, ev.d
    tx = fd.taxes
    W, T = ev.W, ev.T
    Y = len(fd.years)
    deduct = {"interest_usd", "debt_fees_usd"} if (levered and tx.interest_deductible) else set()
    income = np.zeros((W, T))    # taxable lines by period (before depreciation)
    interest = np.zeros((W, T))
    terminal = np.zeros(W)
    for (_site, item), arr in ev.lines.items():
        if item in TERMINAL_ITEMS:
            if item not in LEVERED_ITEMS and tx.tax_terminal_values:
                terminal += arr[:, -1]
        elif item in TAXABLE_ITEMS:
            income += arr
        elif item in deduct:
            interest += arr
    for (sid, ev_kind), ts in st.events.items():  # basis of sites sold
        if ev_kind == "sale":
            for t in ts:
                income[:, t] -= tx.site_tax_basis_usd.get(sid, 0.0)
    income -= tx.btc_cost_basis_usd * ev.ops.btc_sold
    if tx.tax_terminal_values and d.inst.horizon.terminal.treasury_btc:
        terminal -= tx.btc_cost_basis_usd * ev.treasury_btc[:, -1]
    year = fd.year_of_period
    by_year = np.zeros((W, Y))
    int_year = np.zeros((W, Y))
    for t in range(T):
        by_year[:, year[t]] += income[:, t]
        int_year[:, year[t]] += interest[:, t]
    dep = np.zeros(Y)
    remaining = 0.0
    for (site, asset), spent in st.assets.items():
        spent = spent * d.share(site)  # a joint-venture site: the company's share of the basis
        frac = fd.dep_fraction[asset]
        for t in np.nonzero(spent)[0]:
            y0 = int(d.period_years[t])
            taken = 0.0
            for j, y in enumerate(fd.years):
                if 0 <= y - y0 < len(frac):
                    dep[j] += spent[t] * frac[y - y0]
                    taken += frac[y - y0]
            if len(frac):
                remaining += spent[t] * (1.0 - taken)
    dep += np.array([tx.existing_depreciation_usd_per_year.get(y, 0.0) for y in fd.years])
    tax = np.zeros((W, T))
    ttax = np.zeros(W)
    rows = []
    for w in range(W):
        nol = tx.nol_start_usd
        for j, y in enumerate(fd.years):
            ti = by_year[w, j] - dep[j] + int_year[w, j]
            nol_in = nol
            use = min(nol, tx.nol_limit_share * ti) if ti > 0 else 0.0
            nol = nol - use + (-ti if ti < 0 else 0.0)
            paid = tx.rate * max(0.0, ti - use)
            tax[w, fd.pay_period[j]] = paid
            rows.append((d.scenario_names[w], str(y), d.labels[fd.pay_period[j]], by_year[w, j], dep[j], -int_year[w, j],
                         ti, nol_in, use, nol, paid))
        if tx.tax_terminal_values:
            g = terminal[w] - remaining
            use = min(nol, tx.nol_limit_share * g) if g > 0 else 0.0
            ttax[w] = tx.rate * max(0.0, g - use) * fd.terminal_tax_df
            rows.append((d.scenario_names[w], "end", d.labels[-1], terminal[w], remaining, 0.0, g, nol, use, nol - use, ttax[w]))
    table = pd.DataFrame(rows, columns=["scenario", "year", "paid_month", "taxable_lines_usd", "depreciation_usd",
                                        "interest_deducted_usd", "taxable_income_usd", "nol_start_usd", "nol_used_usd",
                                        "nol_end_usd", "tax_usd"])
    if not levered:
        table.insert(0, "system", "unlevered")
    return TaxRun(tax, ttax, table)


def add_tax_lines(ev, run: TaxRun) -> None:
    ev.add(PORTFOLIO, "tax_usd", -run.tax)
    last = np.zeros((ev.W, ev.T))
    last[:, -1] = run.terminal_tax
    ev.add(PORTFOLIO, "terminal_tax_usd", -last)
