"""Capital structure and taxes (instance section ``financing``; models/formulation.md, "Financing").

Variables (first stage; a scenario-tree node index can be added to their keys later):
- draw[f,u]   $M drawn on project facility f at the end of period u (its availability window);
- issue[n,u]  $M of new notes n issued at the end of period u.
Per scenario w and tax year j (only with a positive tax rate):
- tax_pos[w,j], tax_neg[w,j]   positive and negative parts of taxable income ($M);
- nol_used[w,j]                losses carried forward that offset year j's income;
- nol[w,j]                     losses carried forward at the end of year j;
and, for the deemed sale of terminal values, the same with j = "end". With
``objective: project`` a second set (prefix ``u_``) computes the taxes without debt.

Every debt cash flow is linear in the draws: 1 USD drawn in u has a fixed schedule of interest
and principal (``economics.financing``), so the registered terms superpose those schedules.

Taxes are exact as linear rows: tax = rate x (tax_pos - nol_used) with tax_pos - tax_neg =
taxable income, nol_used <= nol_limit_share x tax_pos, nol_used <= nol[j-1],
nol[j] = nol[j-1] + tax_neg - nol_used. Tax only lowers the NPV and the cash balances, so at an
optimum no year pays more than the law's tax and losses are used as early as the law uses them
(models/formulation.md, "Why the tax rows are exact", has the proof and its one assumption: a
positive discount rate).
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.economics.ledger import CAPEX_ITEMS, LEVERED_ITEMS, PORTFOLIO, TAXABLE_ITEMS, TERMINAL_ITEMS
from optimizer.instance.financing import FINANCED_CLASS
from optimizer.model.common import USD, Term, add_constraints, add_vars, is_const, lin, register


def build_debt(m, data: Data) -> None:
    """Draw and issue variables, their cash-flow terms, and the facility and issue rows."""
    fd = data.fin
    fkeys = [(f, u) for f, fa in fd.facilities.items() for u in fa.draw_periods] if fd else []
    ikeys = [(n, u) for n, iss in fd.issues.items() for u in iss.periods] if fd else []
    caps = {f: fa.facility.commitment_usd / USD for f, fa in fd.facilities.items()} if fd else {}
    icaps = {n: iss.issue.max_usd / USD for n, iss in fd.issues.items()} if fd else {}
    m.draw = add_vars(m, "draw", fkeys, pyo.NonNegativeReals, bounds={k: (0, caps[k[0]]) for k in fkeys})
    m.issue = add_vars(m, "issue", ikeys, pyo.NonNegativeReals, bounds={k: (0, icaps[k[0]]) for k in ikeys})
    if fd is None:
        return
    _debt_cashflows(m, data)
    facility_commitment(m, data)
    facility_loan_to_cost(m, data)
    facility_dscr(m, data)
    issue_cap(m, data)
    btc_repayment(m, data)


def _debt_cashflows(m, data: Data) -> None:
    fd, T = data.fin, data.T
    for f, fa in fd.facilities.items():
        site = fa.facility.site
        fee = fa.facility.upfront_fee_share
        _unit_terms(m, site, [(fa.units[u], m.draw[f, u]) for u in fa.draw_periods], T)
        for u in fa.draw_periods:
            register(m, "debt_draws_usd", site, u, None, lin([1.0], [m.draw[f, u]]))
            if fee > 0:
                register(m, "debt_fees_usd", site, u, None, lin([-fee], [m.draw[f, u]]))
    for n, iss in fd.issues.items():
        fee = iss.issue.fee_share
        _unit_terms(m, PORTFOLIO, [(iss.units[u], m.issue[n, u]) for u in iss.periods], T)
        for u in iss.periods:
            register(m, "debt_draws_usd", PORTFOLIO, u, None, lin([1.0], [m.issue[n, u]]))
            if fee > 0:
                register(m, "debt_fees_usd", PORTFOLIO, u, None, lin([-fee], [m.issue[n, u]]))
    for cd in fd.corporate.values():
        for t in range(T):
            register(m, "interest_usd", PORTFOLIO, t, None, -float(cd.interest[t]) / USD)
            register(m, "principal_usd", PORTFOLIO, t, None, -float(cd.principal[t]) / USD)
        register(m, "terminal_debt_usd", PORTFOLIO, T - 1, None, -cd.end_balance / USD)


def _unit_terms(m, site: str, pairs: list, T: int) -> None:
    """Interest, principal and terminal debt of draws: sum over u of the schedule of 1 USD x draw[u]."""
    for item, attr in (("interest_usd", "interest"), ("principal_usd", "principal")):
        for t in range(T):
            cs, vs = [], []
            for unit, v in pairs:
                c = float(getattr(unit, attr)[t])
                if c != 0.0:
                    cs.append(-c)
                    vs.append(v)
            if vs:
                register(m, item, site, t, None, lin(cs, vs))
    cs = [-unit.end_balance for unit, _ in pairs if unit.end_balance != 0.0]
    vs = [v for unit, v in pairs if unit.end_balance != 0.0]
    if vs:
        register(m, "terminal_debt_usd", site, T - 1, None, lin(cs, vs))


def facility_commitment(m, data: Data) -> None:
    """sum_u draw[f,u] <= commitment_f x signed(lease_f) for a facility tied to a lease, where
    signed(l) = sum over sites and hand-over periods of x[l,s,tau] (0 or 1): an unsigned lease
    makes the facility unavailable. A facility without a lease: sum_u draw[f,u] <= commitment_f
    (one draw period: the variable's upper bound)."""
    rows = {}
    for f, fa in data.fin.facilities.items():
        lease = fa.facility.lease
        if not fa.draw_periods:
            continue
        draws = [m.draw[f, u] for u in fa.draw_periods]
        cap = fa.facility.commitment_usd / USD
        if lease is None:
            if len(draws) > 1:
                rows[f] = lin([1.0] * len(draws), draws) <= cap
            continue
        xs = [m.x[k] for k in m.x_index if k[0] == lease]
        rows[f] = lin([1.0] * len(draws) + [-cap] * len(xs), draws + xs) <= 0
    add_constraints(m, "facility_commitment", rows)


def financed_capex_terms(m, fa) -> list[Term]:
    """The first-stage capex terms a facility finances: its site's conversion and/or grid expansion capex."""
    want = {FINANCED_CLASS[k] for k in fa.facility.finances}
    return [tm for tm in m.cashflow_terms
            if tm.item in CAPEX_ITEMS and tm.scenario is None and tm.site == fa.facility.site and tm.asset in want]


def facility_loan_to_cost(m, data: Data) -> None:
    """sum_{u<=t} draw[f,u] <= LTC_f x (capex f finances, paid in periods <= t), for t in f's window;
    and where several facilities finance one site's projects, they share that capex:
    sum_f (sum_{u<=t} draw[f,u]) / LTC_f <= capex any of them finances, paid by t (no dollar of
    capex backs two loans)."""
    rows = {}
    by_site: dict[str, list] = {}
    for f, fa in data.fin.facilities.items():
        by_site.setdefault(fa.facility.site, []).append((f, fa))
        terms = financed_capex_terms(m, fa)
        ltc = fa.facility.loan_to_cost
        for t in fa.draw_periods:
            spent = [tm.expr for tm in terms if tm.period <= t]  # capex terms are outflows (<= 0)
            us = [u for u in fa.draw_periods if u <= t]
            rows[(f, t)] = lin([1.0] * len(us), [m.draw[f, u] for u in us]) + ltc * sum(spent) <= 0
    for s, group in by_site.items():
        if len(group) < 2:
            continue
        union = {id(tm): tm for _, fa in group for tm in financed_capex_terms(m, fa)}
        for t in sorted({t for _, fa in group for t in fa.draw_periods}):
            cs, vs = [], []
            for f, fa in group:
                for u in fa.draw_periods:
                    if u <= t:
                        cs.append(1.0 / fa.facility.loan_to_cost)
                        vs.append(m.draw[f, u])
            spent = [tm.expr for tm in union.values() if tm.period <= t]
            rows[(s, t)] = lin(cs, vs) + sum(spent) <= 0
    add_constraints(m, "facility_loan_to_cost", rows)


def lease_noi(m, data: Data, keep, w: int | None = None) -> dict[int, object]:
    """t -> NOI ($M) of the lease rows (l, s, tau) for which keep(l, s) holds: rent received minus
    lease opex (NOI-margin leases without a prepayment: margin x rent), linear in x; the same
    arithmetic as the lease lines (scenario w's schedule when the lease's differs by scenario)."""
    out: dict[int, list] = {}
    for (l, s, tau) in m.x_index:
        if not keep(l, s):
            continue
        ld = data.leases[l]
        lease = ld.lease
        sc = ld.sched[(tau, 0)] if w is None else ld.schedule(tau, w)
        rent = sc.rent_usd
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for t in rent.nonzero()[0]:
            if lease.noi_margin is not None and lease.prepayment_share == 0:
                e = (m.lease_rate[l] * (lease.noi_margin * float(rent[t]) * k)) * m.x[l, s, tau]
            elif lease.noi_margin is not None:
                e = (m.lease_rate[l] * ((float(rent[t]) - float(sc.opex_rate_usd[t])) * k)) * m.x[l, s, tau]
            else:
                e = (m.lease_rate[l] * (float(rent[t]) * k)) * m.x[l, s, tau]
                if sc.opex_usd[t] != 0:
                    e = e - (float(sc.opex_usd[t]) / USD) * m.x[l, s, tau]
            out.setdefault(int(t), []).append(e)
    return {t: sum(es) for t, es in out.items()}


def facility_dscr(m, data: Data) -> None:
    """NOI_f[t] >= min_dscr_f x (interest + principal of f in t), for every amortization period t
    inside the horizon; NOI_f = NOI of f's lease (or of every lease at f's site); in every scenario
    when a lease's schedule differs by scenario (rows keyed (f, t, w))."""
    rows = {}
    for f, fa in data.fin.facilities.items():
        fac = fa.facility
        if fac.min_dscr is None or not fa.draw_periods:
            continue
        if fac.lease is not None:
            keep = lambda l, s, lease=fac.lease: l == lease  # noqa: E731
        else:
            keep = lambda l, s, site=fac.site: s == site  # noqa: E731
        varies = any(keep(l, s) and data.leases[l].varies(tau) for (l, s, tau) in m.x_index)
        for w in (range(data.W) if varies else [None]):
            noi = lease_noi(m, data, keep, w)
            for t in fa.dscr_periods:
                cs = [fac.min_dscr * float(fa.units[u].interest[t] + fa.units[u].principal[t]) for u in fa.draw_periods]
                service = lin(cs, [m.draw[f, u] for u in fa.draw_periods])
                rows[(f, t) if w is None else (f, t, w)] = service - noi.get(t, 0.0) <= 0
    add_constraints(m, "facility_dscr", rows)


def issue_cap(m, data: Data) -> None:
    """sum_u issue[n,u] <= max_usd_n (one row per new issue with more than one issue period)."""
    rows = {}
    for n, iss in data.fin.issues.items():
        if len(iss.periods) > 1:
            rows[n] = lin([1.0] * len(iss.periods), [m.issue[n, u] for u in iss.periods]) <= iss.issue.max_usd / USD
    add_constraints(m, "issue_cap", rows)


def btc_repayment(m, data: Data) -> None:
    """Corporate debt repaid from treasury BTC: BTC sold in its maturity period x price >= principal,
    in every scenario."""
    rows = {}
    for d_id, cd in data.fin.corporate.items():
        if cd.debt.repayment_source != "treasury_btc" or cd.maturity_period > data.T - 1:
            continue
        t = cd.maturity_period
        for w in range(data.W):
            rows[(d_id, w)] = (m.btc_price[w, t] / USD) * m.btc_sold[w, t] >= cd.debt.principal_usd / USD
    add_constraints(m, "btc_repayment", rows)


# ---------------------------------------------------------------- taxes


def build_taxes(m, data: Data) -> None:
    """Levered taxes (tax_usd per year, terminal_tax_usd) into the registry; with objective
    ``project`` also the taxes without debt into ``m.unlevered_terms`` (valuation only)."""
    fd = data.fin
    m.unlevered_terms = []
    if fd is None or fd.taxes is None or fd.taxes.rate <= 0:
        return
    terms = list(m.cashflow_terms)  # every term but the taxes themselves
    _tax_system(m, data, terms, levered=True)
    if fd.fin.objective == "project":
        _tax_system(m, data, terms, levered=False)


def _taxable_pieces(m, data: Data, terms: list, levered: bool):
    """First-stage and per-scenario taxable income by tax year, and the terminal gain's pieces."""
    fd, tx = data.fin, data.fin.taxes
    Y = len(fd.years)
    fs = [[] for _ in range(Y)]                       # j -> first-stage expressions
    sc = {}                                           # (w, j) -> scenario expressions
    term_fs, term_sc = [], {}                         # terminal gain pieces
    deductible = {"interest_usd", "debt_fees_usd"} if (levered and tx.interest_deductible) else set()
    for tm in terms:
        if tm.item in TERMINAL_ITEMS:
            if tm.item not in LEVERED_ITEMS and tx.tax_terminal_values:
                (term_fs if tm.scenario is None else term_sc.setdefault(tm.scenario, [])).append(tm.expr)
            continue
        if tm.item in TAXABLE_ITEMS or tm.item in deductible:
            pieces = [tm.expr]
        else:
            pieces = []
        if tm.asset is not None:
            # depreciation: 1 USD paid in period t deducts dep_matrix[t, j] in year j (terms are <= 0)
            row = fd.dep_matrix[tm.asset][tm.period] if 0 <= tm.period < data.T else None
            if row is not None:
                for j in row.nonzero()[0]:
                    target = fs[j] if tm.scenario is None else sc.setdefault((tm.scenario, int(j)), [])
                    target.append(float(row[j]) * tm.expr)
                rem = float(fd.dep_remaining[tm.asset][tm.period])
                if tx.tax_terminal_values and rem != 0.0:
                    (term_fs if tm.scenario is None else term_sc.setdefault(tm.scenario, [])).append(rem * tm.expr)
        if not pieces or not 0 <= tm.period < data.T:
            continue
        j = int(fd.year_of_period[tm.period])
        (fs[j] if tm.scenario is None else sc.setdefault((tm.scenario, j), [])).extend(pieces)
    # basis of assets sold: sites (first stage) and treasury BTC (per scenario)
    for (s, t) in m.sell_index:
        basis = tx.site_tax_basis_usd.get(s, 0.0)
        if basis:
            fs[int(fd.year_of_period[t])].append(lin([-basis / USD], [m.sell[s, t]]))
    if tx.btc_cost_basis_usd:
        for (w, t) in m.btc_sold_index:
            sc.setdefault((w, int(fd.year_of_period[t])), []).append(lin([-tx.btc_cost_basis_usd / USD], [m.btc_sold[w, t]]))
        if tx.tax_terminal_values and data.inst.horizon.terminal.treasury_btc:
            for w in range(data.W):
                held = m.btc_held[w, data.T - 1] if (w, data.T - 1) in m.btc_held else data.inst.treasury.btc_held_start
                term_sc.setdefault(w, []).append(-(tx.btc_cost_basis_usd / USD) * held)
    for j, y in enumerate(fd.years):
        dep = tx.existing_depreciation_usd_per_year.get(y, 0.0)
        if dep:
            fs[j].append(-dep / USD)
    return fs, sc, term_fs, term_sc


def _tax_system(m, data: Data, terms: list, levered: bool) -> None:
    fd, tx = data.fin, data.fin.taxes
    W, Y, T = data.W, len(fd.years), data.T
    p = "" if levered else "u_"
    fs, sc, term_fs, term_sc = _taxable_pieces(m, data, terms, levered)
    # first-stage taxable income of year j: one variable shared by the W scenarios' rows
    fs_keys = [j for j in range(Y) if fs[j]] if W > 1 else []
    fsv = add_vars(m, p + "taxable_first_stage", fs_keys, pyo.Reals)
    add_constraints(m, p + "taxable_first_stage_def", {j: fsv[j] - sum(fs[j]) == 0 for j in fs_keys})
    years = list(range(Y)) + (["end"] if tx.tax_terminal_values else [])
    keys = [(w, j) for w in range(W) for j in years]
    pos = add_vars(m, p + "tax_pos", keys, pyo.NonNegativeReals)
    neg = add_vars(m, p + "tax_neg", keys, pyo.NonNegativeReals)
    used = add_vars(m, p + "nol_used", keys, pyo.NonNegativeReals)
    nol = add_vars(m, p + "nol", [(w, j) for w in range(W) for j in range(Y)], pyo.NonNegativeReals)
    income, cap_rows, avail, balance = {}, {}, {}, {}
    nol0 = tx.nol_start_usd / USD
    for w in range(W):
        for j in years:
            if j == "end":
                ti = sum(term_fs) + sum(term_sc.get(w, []))
                prev = nol[w, Y - 1] if Y else nol0
            else:
                first = [fsv[j]] if j in fsv else fs[j]
                ti = sum(first) + sum(sc.get((w, j), []))
                prev = nol[w, j - 1] if j > 0 else nol0
            income[(w, j)] = pos[w, j] - neg[w, j] - ti == 0
            cap_rows[(w, j)] = used[w, j] - tx.nol_limit_share * pos[w, j] <= 0
            avail[(w, j)] = used[w, j] - prev <= 0 if not is_const(prev) else used[w, j] <= prev
            if j != "end":
                balance[(w, j)] = nol[w, j] - prev - neg[w, j] + used[w, j] == 0
            tax = (-tx.rate) * (pos[w, j] - used[w, j])
            if j == "end":
                tm = Term("terminal_tax_usd", PORTFOLIO, T - 1, w, m.tax_lag_df[0] * tax)
            else:
                tm = Term("tax_usd", PORTFOLIO, fd.pay_period[j], w, tax)
            if levered:
                register(m, tm.item, tm.site, tm.period, tm.scenario, tm.expr)
            else:
                m.unlevered_terms.append(tm)
    add_constraints(m, p + "taxable_income", income)
    add_constraints(m, p + "nol_use_limit", cap_rows)
    add_constraints(m, p + "nol_use_available", avail)
    add_constraints(m, p + "nol_balance", balance)



# ---------------------------------------------------------------- plan and MIP start


def debt_rows(m, data: Data, tol: float) -> list[tuple[str, str, float]]:
    """(instrument, month, USD) of every draw and issue above ``tol`` model units."""
    lab = data.labels
    out = [(f, lab[u], m.draw[f, u].value * USD) for (f, u) in m.draw_index if (m.draw[f, u].value or 0.0) > tol]
    out += [(n, lab[u], m.issue[n, u].value * USD) for (n, u) in m.issue_index if (m.issue[n, u].value or 0.0) > tol]
    return out


def set_debt(m, data: Data, plan, period) -> None:
    """Draw and issue variables from ``plan.debt`` (ValueError for a draw the model does not have)."""
    for v in list(m.draw.values()) + list(m.issue.values()):
        v.set_value(0.0, skip_validation=True)
    for r in plan.debt.itertuples():
        t = period(data, r.month, "plan.debt")
        key = (r.instrument, t)
        var = m.draw if key in m.draw else (m.issue if key in m.issue else None)
        if var is None:
            if abs(r.usd) > 0:
                raise ValueError(f"plan.debt: {r.instrument!r} in {r.month} is not a draw or issue of the model")
            continue
        var[key].set_value((var[key].value or 0.0) + r.usd / USD, skip_validation=True)


def set_taxes(m, data: Data) -> list:
    """Tax variables at the law's values for the model's current values (operations included):
    income split into its parts, losses used as early as allowed. Returns the variables set."""
    fd = data.fin
    out = []
    if fd is None or fd.taxes is None or fd.taxes.rate <= 0:
        return out
    tx = fd.taxes
    for p in ("", "u_"):
        rows = getattr(m, p + "taxable_income", None)
        if rows is None:
            continue
        fsv, fs_def = getattr(m, p + "taxable_first_stage"), getattr(m, p + "taxable_first_stage_def", {})
        for j in fsv:
            fsv[j].set_value(0.0, skip_validation=True)
            fsv[j].set_value(-pyo.value(fs_def[j].body), skip_validation=True)
            out.append(fsv[j])
        pos, neg, used, nol = (getattr(m, p + n) for n in ("tax_pos", "tax_neg", "nol_used", "nol"))
        Y = len(fd.years)
        for w in range(data.W):
            prev = tx.nol_start_usd / USD
            for j in list(range(Y)) + (["end"] if (w, "end") in pos else []):
                for v in (pos[w, j], neg[w, j], used[w, j]):
                    v.set_value(0.0, skip_validation=True)
                ti = -pyo.value(rows[(w, j)].body)
                u = min(prev, tx.nol_limit_share * max(ti, 0.0))
                pos[w, j].set_value(max(ti, 0.0), skip_validation=True)
                neg[w, j].set_value(max(-ti, 0.0), skip_validation=True)
                used[w, j].set_value(u, skip_validation=True)
                out += [pos[w, j], neg[w, j], used[w, j]]
                if j != "end":
                    prev = prev + max(-ti, 0.0) - u
                    nol[w, j].set_value(prev, skip_validation=True)
                    out.append(nol[w, j])
    return out
