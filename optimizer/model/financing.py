"""Capital structure and taxes (instance section ``financing``; models/formulation.md, "Financing").

Variables (commitments, at the node taking the commitments of u; ``common.ik``: ``[f, u]`` in the
two-stage form, ``[f, u, rep]`` on a scenario tree):
- draw[f,u]   $M drawn on project facility f at the end of period u (its availability window);
- issue[n,u]  $M of new notes n issued at the end of period u.
Per tax node w and tax year j (only with a positive tax rate): the node running the operations
of the year's last period (the year's income is known there), ``w`` its representative (scenario
w in the two-stage form):
- tax_pos[w,j], tax_neg[w,j]   positive and negative parts of taxable income ($M);
- nol_used[w,j]                losses carried forward that offset year j's income;
- nol[w,j]                     losses carried forward at the end of year j;
and, for the deemed sale of terminal values, the same with j = "end" (at the leaves). With
``objective: project`` a second set (prefix ``u_``) computes the taxes without debt. Rows that
sum draws over time hold along every path of the tree.

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
from optimizer.model import leases
from optimizer.model.common import USD, Term, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, make_term, register, rk


def build_debt(m, data: Data) -> None:
    """Draw and issue variables, their cash-flow terms, and the facility and issue rows."""
    fd, tree = data.fin, m.tree
    fkeys = [ik(m, (f,), u, r) for f, fa in fd.facilities.items() for u in fa.draw_periods for r in tree.inv_reps(u)] if fd else []
    ikeys = [ik(m, (n,), u, r) for n, iss in fd.issues.items() for u in iss.periods for r in tree.inv_reps(u)] if fd else []
    caps = {f: fa.facility.commitment_usd / USD for f, fa in fd.facilities.items()} if fd else {}
    icaps = {n: iss.issue.max_usd / USD for n, iss in fd.issues.items()} if fd else {}
    m.draw = add_vars(m, "draw", fkeys, pyo.NonNegativeReals, bounds={k: (0, caps[_name(k)]) for k in fkeys})
    m.issue = add_vars(m, "issue", ikeys, pyo.NonNegativeReals, bounds={k: (0, icaps[_name(k)]) for k in ikeys})
    if fd is None:
        return
    _debt_cashflows(m, data)
    facility_commitment(m, data)
    facility_loan_to_cost(m, data)
    facility_dscr(m, data)
    issue_cap(m, data)
    btc_repayment(m, data)


def _name(key) -> str:
    return key[0] if isinstance(key, tuple) else key


def _dv(var, name: str, u: int, m, r: int):
    """draw / issue of instrument ``name`` in period u on scenario r's path."""
    return var[ik(m, (name,), u, r)]


def _debt_cashflows(m, data: Data) -> None:
    fd, T, tree = data.fin, data.T, m.tree
    for f, fa in fd.facilities.items():
        site = fa.facility.site
        fee = fa.facility.upfront_fee_share
        _unit_terms(m, site, m.draw, f, [(fa.units[u], u) for u in fa.draw_periods], T)
        for u in fa.draw_periods:
            for r in tree.inv_reps(u):
                v = _dv(m.draw, f, u, m, r)
                register(m, "debt_draws_usd", site, u, inv_at(m, u, r), lin([1.0], [v]))
                if fee > 0:
                    register(m, "debt_fees_usd", site, u, inv_at(m, u, r), lin([-fee], [v]))
    for n, iss in fd.issues.items():
        fee = iss.issue.fee_share
        _unit_terms(m, PORTFOLIO, m.issue, n, [(iss.units[u], u) for u in iss.periods], T)
        for u in iss.periods:
            for r in tree.inv_reps(u):
                v = _dv(m.issue, n, u, m, r)
                register(m, "debt_draws_usd", PORTFOLIO, u, inv_at(m, u, r), lin([1.0], [v]))
                if fee > 0:
                    register(m, "debt_fees_usd", PORTFOLIO, u, inv_at(m, u, r), lin([-fee], [v]))
    root = tree.nodes[0]  # constants: the same in every scenario
    for cd in fd.corporate.values():
        for t in range(T):
            register(m, "interest_usd", PORTFOLIO, t, root, -float(cd.interest[t]) / USD)
            register(m, "principal_usd", PORTFOLIO, t, root, -float(cd.principal[t]) / USD)
        register(m, "terminal_debt_usd", PORTFOLIO, T - 1, root, -cd.end_balance / USD)


def _unit_terms(m, site: str, var, name: str, pairs: list, T: int) -> None:
    """Interest, principal and terminal debt of draws: sum over u of the schedule of 1 USD x
    draw[u], on each path (a draw's cash flows come after it: only draws at ancestor nodes)."""
    tree = m.tree
    for item, attr in (("interest_usd", "interest"), ("principal_usd", "principal")):
        for t in range(T):
            for r in tree.inv_reps(t):
                cs, vs = [], []
                for unit, u in pairs:
                    c = float(getattr(unit, attr)[t])
                    if c != 0.0 and u <= t:
                        cs.append(-c)
                        vs.append(_dv(var, name, u, m, r))
                if vs:
                    register(m, item, site, t, inv_at(m, t, r), lin(cs, vs))
    for r in tree.inv_reps(T - 1):
        cs = [-unit.end_balance for unit, _ in pairs if unit.end_balance != 0.0]
        vs = [_dv(var, name, u, m, r) for unit, u in pairs if unit.end_balance != 0.0]
        if vs:
            register(m, "terminal_debt_usd", site, T - 1, inv_at(m, T - 1, r), lin(cs, vs))


def _lease_xs(m, lease: str, r: int) -> list:
    """The hand-over variables of ``lease`` on scenario r's path (signed = their sum, 0 or 1)."""
    return [x for (l, s), taus in m.lease_taus.items() if l == lease for tau in taus
            for x in [leases.xvar(m, l, s, tau, r)] if x is not None]


def facility_commitment(m, data: Data) -> None:
    """sum_u draw[f,u] <= commitment_f x signed(lease_f) for a facility tied to a lease, where
    signed(l) = sum over sites and hand-over periods of x[l,s,tau] (0 or 1): an unsigned lease
    makes the facility unavailable. A facility without a lease: sum_u draw[f,u] <= commitment_f
    (one draw period: the variable's upper bound). On a tree: along every path."""
    rows = {}
    for f, fa in data.fin.facilities.items():
        lease = fa.facility.lease
        if not fa.draw_periods:
            continue
        cap = fa.facility.commitment_usd / USD
        if lease is None:
            if len(fa.draw_periods) > 1:
                for w in m.tree.path_reps(sorted(fa.draw_periods)):
                    draws = [_dv(m.draw, f, u, m, w) for u in fa.draw_periods]
                    rows[rk(m, f, w)] = lin([1.0] * len(draws), draws) <= cap
            continue
        taus = sorted({tau for (l, s), ts in m.lease_taus.items() if l == lease for tau in ts})
        for w in m.tree.path_reps(sorted(set(fa.draw_periods) | set(taus))):
            xs = _lease_xs(m, lease, w)
            draws = [_dv(m.draw, f, u, m, w) for u in fa.draw_periods]
            rows[rk(m, f, w)] = lin([1.0] * len(draws) + [-cap] * len(xs), draws + xs) <= 0
    add_constraints(m, "facility_commitment", rows)


def financed_capex_terms(m, fa) -> list[Term]:
    """The capex terms (commitments) a facility finances: its site's conversion, grid expansion,
    new-build and/or GPU capex."""
    want = {FINANCED_CLASS[k] for k in fa.facility.finances}
    inv_depth = m.tree.inv_depth
    return [tm for tm in m.cashflow_terms
            if tm.item in CAPEX_ITEMS and tm.node.depth == inv_depth[tm.period] and tm.site == fa.facility.site and tm.asset in want]


def _whole(tm: Term):
    """A term's expression for the whole project (a joint-venture site books only its share)."""
    return tm.expr if tm.share == 1.0 else (1.0 / tm.share) * tm.expr


def facility_loan_to_cost(m, data: Data) -> None:
    """sum_{u<=t} draw[f,u] <= LTC_f x (capex f finances, paid in periods <= t), for t in f's window
    (draws and capex of the whole project: at a joint-venture site the capex terms, booked at the
    company's share, are divided by it);
    and where several facilities finance one site's projects, they share that capex:
    sum_f (sum_{u<=t} draw[f,u]) / LTC_f <= capex any of them finances, paid by t (no dollar of
    capex backs two loans). On a tree: at each node taking the commitments of t, along its path."""
    rows = {}
    by_site: dict[str, list] = {}
    tree = m.tree
    for f, fa in data.fin.facilities.items():
        by_site.setdefault(fa.facility.site, []).append((f, fa))
        terms = financed_capex_terms(m, fa)
        ltc = fa.facility.loan_to_cost
        for t in fa.draw_periods:
            for r in tree.inv_reps(t):
                spent = [_whole(tm) for tm in terms if tm.period <= t and r in tm.node.members]  # capex terms are outflows (<= 0)
                us = [u for u in fa.draw_periods if u <= t]
                rows[rk(m, (f, t), r)] = lin([1.0] * len(us), [_dv(m.draw, f, u, m, r) for u in us]) + ltc * sum(spent) <= 0
    for s, group in by_site.items():
        if len(group) < 2:
            continue
        union = {id(tm): tm for _, fa in group for tm in financed_capex_terms(m, fa)}
        for t in sorted({t for _, fa in group for t in fa.draw_periods}):
            for r in tree.inv_reps(t):
                cs, vs = [], []
                for f, fa in group:
                    for u in fa.draw_periods:
                        if u <= t:
                            cs.append(1.0 / fa.facility.loan_to_cost)
                            vs.append(_dv(m.draw, f, u, m, r))
                spent = [_whole(tm) for tm in union.values() if tm.period <= t and r in tm.node.members]
                rows[rk(m, (s, t), r)] = lin(cs, vs) + sum(spent) <= 0
    add_constraints(m, "facility_loan_to_cost", rows)


def lease_noi(m, data: Data, keep, r: int = 0, w: int | None = None) -> dict[int, object]:
    """t -> NOI ($M) of the lease rows (l, s, tau) for which keep(l, s) holds, on scenario r's
    path: rent received minus lease opex (NOI-margin leases without a prepayment: margin x rent),
    linear in x; the same arithmetic as the lease lines (scenario w's schedule when the lease's
    differs by scenario; such leases are two-stage only, ``instance.checks``)."""
    out: dict[int, list] = {}
    for (l, s), taus in m.lease_taus.items():
        if not keep(l, s):
            continue
        ld = data.leases[l]
        lease = ld.lease
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for tau in taus:
            x = leases.xvar(m, l, s, tau, r)
            sc = ld.sched[(tau, 0)] if w is None else ld.schedule(tau, w)
            rent = sc.rent_usd
            for t in rent.nonzero()[0]:
                if lease.noi_margin is not None and lease.prepayment_share == 0:
                    e = (m.lease_rate[l] * (lease.noi_margin * float(rent[t]) * k)) * x
                elif lease.noi_margin is not None:
                    e = (m.lease_rate[l] * ((float(rent[t]) - float(sc.opex_rate_usd[t])) * k)) * x
                else:
                    e = (m.lease_rate[l] * (float(rent[t]) * k)) * x
                    if sc.opex_usd[t] != 0:
                        e = e - (float(sc.opex_usd[t]) / USD) * x
                out.setdefault(int(t), []).append(e)
    return {t: sum(es) for t, es in out.items()}


def facility_dscr(m, data: Data) -> None:
    """NOI_f[t] >= min_dscr_f x (interest + principal of f in t), for every amortization period t
    inside the horizon; NOI_f = NOI of f's lease (or of every lease at f's site); in every scenario
    when a lease's schedule differs by scenario (rows keyed (f, t, w)). On a tree: at each node
    taking the commitments of t, with the draws and leases of its path."""
    rows = {}
    tree = m.tree
    for f, fa in data.fin.facilities.items():
        fac = fa.facility
        if fac.min_dscr is None or not fa.draw_periods:
            continue
        if fac.lease is not None:
            keep = lambda l, s, lease=fac.lease: l == lease  # noqa: E731
        else:
            keep = lambda l, s, site=fac.site: s == site  # noqa: E731
        varies = any(keep(l, s) and data.leases[l].varies(tau) for (l, s), taus in m.lease_taus.items() for tau in taus)
        cache: dict[tuple, dict] = {}
        for t in fa.dscr_periods:
            for r in tree.inv_reps(t):
                for w in (range(data.W) if varies else [None]):
                    noi = cache.setdefault((r, w), lease_noi(m, data, keep, r, w))
                    cs = [fac.min_dscr * float(fa.units[u].interest[t] + fa.units[u].principal[t]) for u in fa.draw_periods]
                    service = lin(cs, [_dv(m.draw, f, u, m, r) for u in fa.draw_periods])
                    rows[rk(m, (f, t) if w is None else (f, t, w), r)] = service - noi.get(t, 0.0) <= 0
    add_constraints(m, "facility_dscr", rows)


def issue_cap(m, data: Data) -> None:
    """sum_u issue[n,u] <= max_usd_n (one row per new issue with more than one issue period; on a
    tree per path)."""
    rows = {}
    for n, iss in data.fin.issues.items():
        if len(iss.periods) > 1:
            for w in m.tree.path_reps(iss.periods):
                rows[rk(m, n, w)] = lin([1.0] * len(iss.periods), [_dv(m.issue, n, u, m, w) for u in iss.periods]) <= iss.issue.max_usd / USD
    add_constraints(m, "issue_cap", rows)


def btc_repayment(m, data: Data) -> None:
    """Corporate debt repaid from treasury BTC: BTC sold in its maturity period x price >= principal,
    at every node running that period's operations (the sale is its commitment node's)."""
    rows = {}
    for d_id, cd in data.fin.corporate.items():
        if cd.debt.repayment_source != "treasury_btc" or cd.maturity_period > data.T - 1:
            continue
        t = cd.maturity_period
        for w in m.tree.op_reps(t):
            rows[(d_id, w)] = (m.btc_price[w, t] / USD) * m.btc_sold[ik(m, (), t, w)] >= cd.debt.principal_usd / USD
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
    """Taxable income by tax year as (node, expression) pieces, and the terminal gain's pieces: a
    piece counts for every scenario through its node (a root piece for every scenario)."""
    fd, tx = data.fin, data.fin.taxes
    Y = len(fd.years)
    root = m.tree.nodes[0]
    year = [[] for _ in range(Y)]                     # j -> [(node, expr)]
    term = []                                         # terminal gain pieces [(node, expr)]
    deductible = {"interest_usd", "debt_fees_usd"} if (levered and tx.interest_deductible) else set()
    for tm in terms:
        if tm.item in TERMINAL_ITEMS:
            if tm.item not in LEVERED_ITEMS and tx.tax_terminal_values:
                term.append((tm.node, tm.expr))
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
                    year[int(j)].append((tm.node, float(row[j]) * tm.expr))
                rem = float(fd.dep_remaining[tm.asset][tm.period])
                if tx.tax_terminal_values and rem != 0.0:
                    term.append((tm.node, rem * tm.expr))
        if not pieces or not 0 <= tm.period < data.T:
            continue
        year[int(fd.year_of_period[tm.period])] += [(tm.node, e) for e in pieces]
    # basis of assets sold: sites and treasury BTC (commitments, at their nodes)
    for k in m.sell_index:
        (s,), t, r = isplit(m, k, 1)
        basis = tx.site_tax_basis_usd.get(s, 0.0)
        if basis:
            year[int(fd.year_of_period[t])].append((inv_at(m, t, r), lin([-basis / USD], [m.sell[k]])))
    if tx.btc_cost_basis_usd:
        for k in m.btc_sold_index:
            _, t, r = isplit(m, k, 0)
            year[int(fd.year_of_period[t])].append((inv_at(m, t, r), lin([-tx.btc_cost_basis_usd / USD], [m.btc_sold[k]])))
        if tx.tax_terminal_values and data.inst.horizon.terminal.treasury_btc:
            for w in m.tree.op_reps(data.T - 1):
                key = (w, data.T - 1)
                held = m.btc_held[key] if key in m.btc_held else data.inst.treasury.btc_held_start
                term.append((m.tree.op_node(data.T - 1, w), -(tx.btc_cost_basis_usd / USD) * held))
    for j, y in enumerate(fd.years):
        dep = tx.existing_depreciation_usd_per_year.get(y, 0.0)
        if dep:
            year[j].append((root, -dep / USD))
    return year, term


def tax_keys(m, data: Data) -> list:
    """(w, j) of the tax variables: w the representative of the node running the operations of
    year j's last period (j = "end": of the last period)."""
    fd, tx = data.fin, data.fin.taxes
    Y = len(fd.years)
    out = {(w, j) for j in range(Y) for w in m.tree.op_reps(fd.pay_period[j])}
    if tx.tax_terminal_values:
        out |= {(w, "end") for w in m.tree.op_reps(data.T - 1)}
    return sorted(out, key=lambda k: (k[0], Y if k[1] == "end" else k[1]))  # node-major, as scenario-major in the two-stage form


def _prev_key(m, data: Data, w: int, j):
    """The nol key of the tax year before j on scenario w's path (None before the first year)."""
    fd = data.fin
    Y = len(fd.years)
    pj = Y - 1 if j == "end" else j - 1
    if pj < 0:
        return None
    return (m.tree.op(fd.pay_period[pj], w), pj)


def _tax_system(m, data: Data, terms: list, levered: bool) -> None:
    fd, tx = data.fin, data.fin.taxes
    W, Y, T, tree = data.W, len(fd.years), data.T, m.tree
    p = "" if levered else "u_"
    year, term = _taxable_pieces(m, data, terms, levered)
    # root taxable income of year j: one variable shared by the rows below it (two-stage, W > 1)
    fs_keys = [j for j in range(Y) if any(n.depth == 0 for n, _ in year[j])] if (W > 1 and tree.two_stage) else []
    fsv = add_vars(m, p + "taxable_first_stage", fs_keys, pyo.Reals)
    add_constraints(m, p + "taxable_first_stage_def", {j: fsv[j] - sum(e for n, e in year[j] if n.depth == 0) == 0 for j in fs_keys})
    keys = tax_keys(m, data)
    pos = add_vars(m, p + "tax_pos", keys, pyo.NonNegativeReals)
    neg = add_vars(m, p + "tax_neg", keys, pyo.NonNegativeReals)
    used = add_vars(m, p + "nol_used", keys, pyo.NonNegativeReals)
    nol = add_vars(m, p + "nol", [k for k in keys if k[1] != "end"], pyo.NonNegativeReals)
    income, cap_rows, avail, balance = {}, {}, {}, {}
    nol0 = tx.nol_start_usd / USD
    for (w, j) in keys:
        if j == "end":
            ti = sum(e for n, e in term if n.depth == 0) + sum(e for n, e in term if n.depth > 0 and w in n.members)
        else:
            first = [fsv[j]] if j in fsv else [e for n, e in year[j] if n.depth == 0]
            ti = sum(first) + sum(e for n, e in year[j] if n.depth > 0 and w in n.members)
        pk = _prev_key(m, data, w, j)
        prev = nol[pk] if pk is not None else nol0
        income[(w, j)] = pos[w, j] - neg[w, j] - ti == 0
        cap_rows[(w, j)] = used[w, j] - tx.nol_limit_share * pos[w, j] <= 0
        avail[(w, j)] = used[w, j] - prev <= 0 if not is_const(prev) else used[w, j] <= prev
        if j != "end":
            balance[(w, j)] = nol[w, j] - prev - neg[w, j] + used[w, j] == 0
        tax = (-tx.rate) * (pos[w, j] - used[w, j])
        if j == "end":
            tm = make_term(m, "terminal_tax_usd", PORTFOLIO, T - 1, w, m.tax_lag_df[0] * tax)
        else:
            tm = make_term(m, "tax_usd", PORTFOLIO, fd.pay_period[j], w, tax)
        if levered:
            register(m, tm.item, tm.site, tm.period, tm.node, tm.expr)
        else:
            m.unlevered_terms.append(tm)
    add_constraints(m, p + "taxable_income", income)
    add_constraints(m, p + "nol_use_limit", cap_rows)
    add_constraints(m, p + "nol_use_available", avail)
    add_constraints(m, p + "nol_balance", balance)



# ---------------------------------------------------------------- plan and MIP start


def debt_rows(m, data: Data, tol: float) -> list[tuple]:
    """(instrument, month, USD[, node]) of every draw and issue above ``tol`` model units (the
    node on a staged tree)."""
    lab, tree = data.labels, m.tree
    out = []
    for var in (m.draw, m.issue):
        for k in var.index_set():
            (name,), u, r = isplit(m, k, 1)
            v = var[k].value or 0.0
            if v > tol:
                out.append((name, lab[u], v * USD) + (() if tree.two_stage else (tree.inv_node(u, r).name,)))
    return out


def set_debt(m, data: Data, plan, period, reps=None) -> None:
    """Draw and issue variables from ``plan.debt`` (ValueError for a draw the model does not have);
    ``reps(row, t)``: the commitment nodes a row applies to (default: every node of its period)."""
    for v in list(m.draw.values()) + list(m.issue.values()):
        v.set_value(0.0, skip_validation=True)
    for r in plan.debt.itertuples():
        t = period(data, r.month, "plan.debt")
        ws = reps(r, t) if reps is not None else m.tree.inv_reps(t)
        for w in ws:
            key = ik(m, (r.instrument,), t, w)
            var = m.draw if key in m.draw else (m.issue if key in m.issue else None)
            if var is None:
                if abs(r.usd) > 0:
                    raise ValueError(f"plan.debt: {r.instrument!r} in {r.month} is not a draw or issue of the model")
                continue
            var[key].set_value((var[key].value or 0.0) + r.usd / USD, skip_validation=True)


def set_taxes(m, data: Data) -> list:
    """Tax variables at the law's values for the model's current values (operations included):
    income split into its parts, losses used as early as allowed (year by year along each path).
    Returns the variables set."""
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
        for (w, j) in sorted(pos.index_set(), key=lambda k: Y if k[1] == "end" else k[1]):  # a year's previous one first
            pk = _prev_key(m, data, w, j)
            prev = tx.nol_start_usd / USD if pk is None else (nol[pk].value or 0.0)
            for v in (pos[w, j], neg[w, j], used[w, j]):
                v.set_value(0.0, skip_validation=True)
            ti = -pyo.value(rows[(w, j)].body)
            u = min(prev, tx.nol_limit_share * max(ti, 0.0))
            pos[w, j].set_value(max(ti, 0.0), skip_validation=True)
            neg[w, j].set_value(max(-ti, 0.0), skip_validation=True)
            used[w, j].set_value(u, skip_validation=True)
            out += [pos[w, j], neg[w, j], used[w, j]]
            if j != "end":
                nol[w, j].set_value(prev + max(-ti, 0.0) - u, skip_validation=True)
                out.append(nol[w, j])
    return out
