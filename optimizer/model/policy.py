"""Policy: capex budget per calendar year, minimum mining share, maximum converted share,
and user-fixed decisions. On a staged tree the limits hold along every path and a fixed
decision is pinned at every node that could take it."""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from optimizer.economics.data import Data
from optimizer.economics.ledger import CAPEX_ITEMS
from optimizer.errors import InputError
from optimizer.model import sites
from optimizer.model.common import USD, Acc, add_constraints, ik, is_const, isplit, lin, rk


def build(m, data: Data) -> None:
    capex_budget(m, data)
    min_mining_share(m, data)
    max_converted_share(m, data)
    fix_decisions(m, data)


def capex_budget(m, data: Data) -> None:
    """-(conversion + grid-expansion capex + ASIC purchases) in a calendar year's periods <= budget."""
    if data.inst.policy.capex_budget_usd_per_year is None:
        return
    tree = m.tree
    by_year: dict[int, list] = {}
    for term in m.cashflow_terms:
        if term.item in CAPEX_ITEMS and term.node.depth == tree.inv_depth[term.period]:
            by_year.setdefault(int(data.period_years[term.period]), []).append(term)
    rows = {}
    for y, terms in sorted(by_year.items()):
        b = data.capex_budget(y)
        if b is None:
            continue
        for w in tree.path_reps(sorted({t.period for t in terms})):
            rows[rk(m, y, w)] = -sum(t.expr for t in terms if w in t.node.members) <= b / USD
    add_constraints(m, "capex_budget", rows)


def _own0_sites(m):
    return [si for si in m.site_info.values() if si.owned0]


def min_mining_share(m, data: Data) -> None:
    """sum over initially owned sites of mining racks >= share x their racks (mining + HPC) at the
    start. Mining racks never grow without mining new-build options, so the last period is the
    binding one: one row; with them, one row per period."""
    share = data.inst.policy.min_mining_share
    if share <= 0:
        return
    T = data.T
    own0 = _own0_sites(m)
    total = sum(si.R0 + si.H0 for si in own0)
    const = sum(si.R0 for si in own0)
    if const < share * total - 1e-9:
        raise ValueError(f"policy.min_mining_share: {share:g} x {total} rack positions of the initially owned sites must stay "
                         f"mining, but they have only {const} mining racks")
    grows = any(b.use == "mining" and si.build_periods.get(b.option.id) for si in own0 for b in si.builds)
    rows = {}
    for t in (range(T) if grows else [T - 1]):
        for r in m.tree.inv_reps(t):
            acc = Acc()
            for si in own0:
                e = sites.mining_racks(m, si.id, t, r)
                acc.add(0, 1.0, e) if is_const(e) else _add_expr(acc, e)
            lhs = acc.expr(0)
            if not is_const(lhs):
                rows[rk(m, t if grows else 0, r)] = lhs >= share * total
    add_constraints(m, "min_mining_share", rows)


def _add_expr(acc: Acc, e) -> None:
    """Add a linear expression (sum of coefficient x variable plus a constant) to ``acc`` key 0."""
    repn = generate_standard_repn(e, compute_values=False)
    acc.add_const(0, float(repn.constant))
    for c, v in zip(repn.linear_coefs, repn.linear_vars):
        acc.add(0, float(c), v)


def max_converted_share(m, data: Data) -> None:
    """sum_s racks converted by t <= share x sum_s mining racks at start (all sites); conversions
    only accumulate, so the last period is the binding one: one row."""
    share = data.inst.policy.max_converted_share
    if share >= 1:
        return
    T = data.T
    rows = {}
    for r in m.tree.inv_reps(T - 1):
        coefs, vs = [], []
        for si in m.site_info.values():
            b = sites.nb(m, si.id, T - 1, r)
            if not isinstance(b, (int, float)):
                coefs.append(si.rpb)
                vs.append(b)
        if vs:
            rows[rk(m, 0, r)] = lin(coefs, vs) <= share * sum(si.R0 for si in m.site_info.values())
    add_constraints(m, "max_converted_share", rows)


# ---------------------------------------------------------------- fixed decisions


def _months(data: Data, periods) -> str:
    ps = sorted(periods)
    if not ps:
        return "none"
    lab = data.tl.labels
    return lab[ps[0]] if len(ps) == 1 else f"{lab[ps[0]]}..{lab[ps[-1]]}"


def _keys(m, var, nbase: int, match) -> list:
    """Keys of a commitment variable whose (base, t) satisfy ``match``."""
    out = []
    for k in var.index_set():
        base, t, _ = isplit(m, k, nbase)
        if match(base, t):
            out.append(k)
    return out


def fix_decisions(m, data: Data) -> None:
    """Pin the decisions of policy.fixed_decisions (at every tree node that could take them); a
    decision the model has no variable for raises InputError naming it (one line: bad input, exit
    2; the instance's checks catch most such decisions before, ``instance.checks.check_fixed_decisions``).
    ``m.fixed_by_decision`` records, per decision index, the variables it fixed, and
    ``m.fixed_lease_decision`` the decision behind each ``fixed_lease`` row (one per path on a
    staged tree): the infeasibility diagnosis relaxes them one decision at a time."""
    rows = {}
    m.fixed_lease_decision = {}
    already = {id(v) for v in m.component_data_objects(pyo.Var) if v.fixed}
    for i, d in enumerate(data.inst.policy.fixed_decisions):
        where = f"policy.fixed_decisions[{i}]"
        t = data.tl.period_of(d.month) if getattr(d, "month", None) is not None else None
        if d.kind == "conversion":
            ks = _keys(m, m.conv, 1, lambda b, tt, d=d, t=t: b == (d.site,) and tt == t)
            if not ks:
                allowed = [tt for tt in {isplit(m, k, 1)[1] for k in _keys(m, m.conv, 1, lambda b, tt, d=d: b == (d.site,))}]
                raise InputError(f"{where}: site {d.site!r} cannot start a conversion in {d.month} (allowed months: {_months(data, allowed)})")
            if d.blocks > m.conv[ks[0]].ub:
                raise InputError(f"{where}.blocks: {d.blocks} exceeds the {m.conv[ks[0]].ub} blocks site {d.site!r} can convert")
            for k in ks:
                m.conv[k].fix(d.blocks)
        elif d.kind == "grid_expansion":
            _fix_event(m, m.gx, 2, (d.site, d.option), t, d, where, f"grid expansion {d.option!r} of site {d.site!r}", data)
        elif d.kind in ("sale", "acquisition"):
            var = m.sell if d.kind == "sale" else m.acq
            _fix_event(m, var, 1, (d.site,), t, d, where, f"{d.kind} of site {d.site!r}", data)
        elif d.kind == "purchase":
            ks = _keys(m, m.buy, 2, lambda b, tt, d=d, t=t: b == (d.option, d.site) and tt == t)
            if not ks:
                allowed = sorted({isplit(m, k, 2)[1] for k in _keys(m, m.buy, 2, lambda b, tt, d=d: b == (d.option, d.site))})
                raise InputError(f"{where}: purchase option {d.option!r} cannot deliver to site {d.site!r} when ordered in {d.month} (allowed months: {_months(data, allowed)})")
            for k in ks:
                m.buy[k].fix(d.units / 1e3)  # model units are thousands (common.UNITS)
        elif d.kind == "contract":
            ks = [k for k in m.sign_index if (k if isinstance(k, str) else k[0]) == d.contract]
            if ks:
                for k in ks:
                    m.sign[k].fix(1 if d.signed else 0)
            elif not d.signed:
                raise InputError(f"{where}: contract {d.contract!r} is not optional, so it cannot be left unsigned")
        elif d.kind == "lease":
            for key in _fix_lease(m, data, d, t, where, rows):
                m.fixed_lease_decision[key] = i
    add_constraints(m, "fixed_lease", rows)
    m.fixed_by_decision = {}
    for i, d in enumerate(data.inst.policy.fixed_decisions):
        for v in _decision_vars(m, d, data):
            if v.fixed and id(v) not in already:
                m.fixed_by_decision.setdefault(i, []).append(v)
                already.add(id(v))


def _decision_vars(m, d, data: Data) -> list:
    """The variables a fixed decision may have fixed (those it did are fixed now)."""
    if d.kind == "conversion":
        return [m.conv[k] for k in m.conv_index if k[0] == d.site]
    if d.kind == "grid_expansion":
        return [m.gx[k] for k in m.gx_index if k[0] == d.site and k[1] == d.option]
    if d.kind in ("sale", "acquisition"):
        var = m.sell if d.kind == "sale" else m.acq
        return [var[k] for k in var.index_set() if k[0] == d.site]
    if d.kind == "purchase":
        return [m.buy[k] for k in m.buy_index if k[0] == d.option and k[1] == d.site]
    if d.kind == "contract":  # sign[c], or sign[c, node] on a staged tree
        return [m.sign[k] for k in m.sign.index_set() if (k if isinstance(k, str) else k[0]) == d.contract]
    return [m.x[k] for k in m.x_index if k[0] == d.lease] + [m.y[k] for k in m.y_index if (k if isinstance(k, str) else k[0]) == d.lease]


def _fix_event(m, var, nbase: int, base: tuple, t, d, where, what, data: Data) -> None:
    keys = _keys(m, var, nbase, lambda b, tt: b == base)
    if not keys:
        raise InputError(f"{where}: the model has no {what} to fix (no such option, or no allowed month in the horizon)")
    at_t = [k for k in keys if isplit(m, k, nbase)[1] == t]
    if d.happens:
        if not at_t:
            raise InputError(f"{where}: {what} cannot happen in {d.month} (allowed months: {_months(data, [isplit(m, k, nbase)[1] for k in keys])})")
        for k in at_t:
            var[k].fix(1)
    else:
        for k in keys:
            if d.month is None or k in at_t:
                var[k].fix(0)


def _fix_lease(m, data: Data, d, t, where, rows) -> list:
    """Fix a lease decision; returns the keys of the ``fixed_lease`` rows it added."""
    ks = [k for k in m.x_index if k[0] == d.lease]
    lease = data.leases[d.lease].lease
    if not d.signed:
        for k in ks:
            m.x[k].fix(0)
        for k in m.y_index:
            if (k if isinstance(k, str) else k[0]) == d.lease:
                m.y[k].fix(0)
        return []
    sel = [k for k in ks if (d.site is None or k[1] == d.site) and (t is None or isplit(m, k, 2)[1] == t)]
    if not sel:
        what = " ".join(x for x in [f"at site {d.site!r}" if d.site else "", f"handed over in {d.month}" if d.month else ""] if x)
        raise InputError(f"{where}: lease {d.lease!r} cannot be delivered {what or 'at all'} (outside its window, site not eligible, or HPC racks cannot be ready)")
    if d.site is not None and t is not None:
        for k in sel:  # splittable: the whole lease at that site
            m.x[k].fix(1)
            if lease.splittable:
                m.y[ik(m, (d.lease,), t, isplit(m, k, 2)[2])].fix(1)
        return []
    added = []
    periods = sorted({isplit(m, k, 2)[1] for k in sel})
    for w in m.tree.path_reps(periods):
        on_path = [k for k in sel if isplit(m, k, 2)[2] == m.tree.inv(isplit(m, k, 2)[1], w)]
        rows[rk(m, d.lease, w)] = lin([1.0] * len(on_path), [m.x[k] for k in on_path]) == 1
        added.append(rk(m, d.lease, w))
    return added
