"""Policy: capex budget per calendar year, minimum mining share, maximum converted share,
and user-fixed decisions."""

from __future__ import annotations

import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from optimizer.economics.data import Data
from optimizer.economics.ledger import CAPEX_ITEMS
from optimizer.errors import InputError
from optimizer.model import sites
from optimizer.model.common import USD, Acc, add_constraints, is_const, lin


def build(m, data: Data) -> None:
    capex_budget(m, data)
    min_mining_share(m, data)
    max_converted_share(m, data)
    fix_decisions(m, data)


def capex_budget(m, data: Data) -> None:
    """-(conversion + grid-expansion capex + ASIC purchases) in a calendar year's periods <= budget."""
    if data.inst.policy.capex_budget_usd_per_year is None:
        return
    by_year: dict[int, list] = {}
    for term in m.cashflow_terms:
        if term.item in CAPEX_ITEMS and term.scenario is None:
            by_year.setdefault(int(data.period_years[term.period]), []).append(term.expr)
    rows = {}
    for y, exprs in sorted(by_year.items()):
        b = data.capex_budget(y)
        if b is not None:
            rows[y] = -sum(exprs) <= b / USD
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
        acc = Acc()
        for si in own0:
            r = sites.mining_racks(m, si.id, t)
            acc.add(0, 1.0, r) if is_const(r) else _add_expr(acc, r)
        lhs = acc.expr(0)
        if not is_const(lhs):
            rows[t if grows else 0] = lhs >= share * total
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
    coefs, vs = [], []
    for si in m.site_info.values():
        b = sites.nb(m, si.id, T - 1)
        if not isinstance(b, (int, float)):
            coefs.append(si.rpb)
            vs.append(b)
    if vs:
        add_constraints(m, "max_converted_share", {0: lin(coefs, vs) <= share * sum(si.R0 for si in m.site_info.values())})


# ---------------------------------------------------------------- fixed decisions


def _months(data: Data, periods) -> str:
    ps = sorted(periods)
    if not ps:
        return "none"
    lab = data.tl.labels
    return lab[ps[0]] if len(ps) == 1 else f"{lab[ps[0]]}..{lab[ps[-1]]}"


def fix_decisions(m, data: Data) -> None:
    """Pin the decisions of policy.fixed_decisions; a decision the model has no variable for
    raises InputError naming it (one line: bad input, exit 2; the instance's checks catch most
    such decisions before, ``instance.checks.check_fixed_decisions``). ``m.fixed_by_decision``
    records, per decision index, the variables it fixed, and ``m.fixed_lease_decision`` the
    decision behind each ``fixed_lease`` row: the infeasibility diagnosis relaxes them one
    decision at a time."""
    rows = {}
    m.fixed_lease_decision = {}
    already = {id(v) for v in m.component_data_objects(pyo.Var) if v.fixed}
    for i, d in enumerate(data.inst.policy.fixed_decisions):
        where = f"policy.fixed_decisions[{i}]"
        t = data.tl.period_of(d.month) if getattr(d, "month", None) is not None else None
        if d.kind == "conversion":
            if (d.site, t) not in m.conv:
                allowed = [tt for (s, tt) in m.conv_index if s == d.site]
                raise InputError(f"{where}: site {d.site!r} cannot start a conversion in {d.month} (allowed months: {_months(data, allowed)})")
            if d.blocks > m.conv[d.site, t].ub:
                raise InputError(f"{where}.blocks: {d.blocks} exceeds the {m.conv[d.site, t].ub} blocks site {d.site!r} can convert")
            m.conv[d.site, t].fix(d.blocks)
        elif d.kind == "grid_expansion":
            _fix_event(m.gx, [(s, g, tt) for (s, g, tt) in m.gx_index if s == d.site and g == d.option],
                       (d.site, d.option, t), d, where, f"grid expansion {d.option!r} of site {d.site!r}", data)
        elif d.kind in ("sale", "acquisition"):
            var = m.sell if d.kind == "sale" else m.acq
            _fix_event(var, [(s, tt) for (s, tt) in var.index_set() if s == d.site], (d.site, t), d, where,
                       f"{d.kind} of site {d.site!r}", data)
        elif d.kind == "purchase":
            if (d.option, d.site, t) not in m.buy:
                allowed = [tt for (o, s, tt) in m.buy_index if o == d.option and s == d.site]
                raise InputError(f"{where}: purchase option {d.option!r} cannot deliver to site {d.site!r} when ordered in {d.month} (allowed months: {_months(data, allowed)})")
            m.buy[d.option, d.site, t].fix(d.units / 1e3)  # model units are thousands (common.UNITS)
        elif d.kind == "contract":
            if d.contract in m.sign:
                m.sign[d.contract].fix(1 if d.signed else 0)
            elif not d.signed:
                raise InputError(f"{where}: contract {d.contract!r} is not optional, so it cannot be left unsigned")
        elif d.kind == "lease":
            if _fix_lease(m, data, d, t, where, rows):
                m.fixed_lease_decision[d.lease] = i
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
    if d.kind == "contract":
        return [m.sign[d.contract]] if d.contract in m.sign else []
    return [m.x[k] for k in m.x_index if k[0] == d.lease] + [m.y[k] for k in m.y_index if k[0] == d.lease]


def _fix_event(var, keys, key, d, where, what, data: Data) -> None:
    if not keys:
        raise InputError(f"{where}: the model has no {what} to fix (no such option, or no allowed month in the horizon)")
    if d.happens:
        if key not in var:
            raise InputError(f"{where}: {what} cannot happen in {d.month} (allowed months: {_months(data, [k[-1] for k in keys])})")
        var[key].fix(1)
    else:
        for k in keys:
            if d.month is None or k == key:
                var[k].fix(0)


def _fix_lease(m, data: Data, d, t, where, rows) -> bool:
    ks = [k for k in m.x_index if k[0] == d.lease]
    lease = data.leases[d.lease].lease
    if not d.signed:
        for k in ks:
            m.x[k].fix(0)
        for k in m.y_index:
            if k[0] == d.lease:
                m.y[k].fix(0)
        return False
    sel = [k for k in ks if (d.site is None or k[1] == d.site) and (t is None or k[2] == t)]
    if not sel:
        what = " ".join(x for x in [f"at site {d.site!r}" if d.site else "", f"handed over in {d.month}" if d.month else ""] if x)
        raise InputError(f"{where}: lease {d.lease!r} cannot be delivered {what or 'at all'} (outside its window, site not eligible, or HPC racks cannot be ready)")
    if d.site is not None and t is not None:
        m.x[d.lease, d.site, t].fix(1)  # splittable: the whole lease at that site
        if lease.splittable:
            m.y[d.lease, t].fix(1)
        return False
    rows[d.lease] = lin([1.0] * len(sel), [m.x[k] for k in sel]) == 1
    return True
