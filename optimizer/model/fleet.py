"""Fleet: ASIC purchases, retirements, installed and operating units, rack positions, mining lines.

Variables (units in thousands, see common.UNITS): buy[o,s,t] ordered and ret[s,m,t] retired
(commitments), inst[s,m,t] installed (defined by a balance), each at the node taking the
commitments of t (``common.ik``); op[s,m,t,w] operating, at the node running the operations of
t (``w`` its representative; scenario w's own in the two-stage form), and where the site's market
has a program (``markets``; two-stage only) dr[s,m,t,w] operating units enrolled in demand
response and pk[s,m,t,w] operating units off around the transmission peak (each <= op); with a terminal mining
multiple, tmine[s,w] >= 0 (the terminal mining line) and tkeep[s,w] binary (keep mining after
the horizon, else retire) at each leaf w, which make tmine = max(0, k x margin - salvage)
exactly (``terminal_mining_floor``). Racks are pooled per site (economics.md), so there are no
identical halls and no hall symmetry to break.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.model import sites
from optimizer.model.common import MWH, UNITS, USD, Acc, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, register, rk


def build(m, data: Data) -> None:
    inst, T, tree = data.inst, data.T, m.tree
    init = data.initial_units

    # purchases: order periods whose delivery falls in an owned period of a site with mining racks
    buy_keys, deliveries = [], {}  # deliveries[(s, model, t)] -> [(o, order period)]
    for o in inst.fleet.purchase_options:
        lead = data.lead_periods(o.lead_months)
        for s in (o.sites if o.sites is not None else [x.id for x in inst.sites]):
            si = m.site_info[s]
            if si.Rmax == 0:
                continue
            for t in data.purchase_periods(o):
                if not si.owned0 and (si.own_first is None or t + lead < si.own_first):
                    continue
                buy_keys += [ik(m, (o.id, s), t, r) for r in tree.inv_reps(t)]
                deliveries.setdefault((s, o.model, t + lead), []).append((o, t))
    m.buy = add_vars(m, "buy", buy_keys, pyo.NonNegativeReals)
    purchase_cap(m, data, buy_keys)

    # (site, model) pairs that can hold units, and the first period they can
    first: dict[tuple[str, str], int] = {}
    for (s, mod), u in init.items():
        if u > 0:
            first[(s, mod)] = 0
    for (s, mod, t) in deliveries:
        first[(s, mod)] = min(first.get((s, mod), T), t)
    pairs = sorted(first, key=lambda p: ([x.id for x in inst.sites].index(p[0]), p[1]))
    m.fleet_pairs = pairs
    m.fleet_first = first
    retire = inst.fleet.allow_retirement
    varying = {p for p in pairs if retire or any(k[0] == p[0] and k[1] == p[1] for k in deliveries)}
    ret_keys = [ik(m, (s, mod), t, r) for (s, mod) in pairs if retire for t in range(first[(s, mod)], T) for r in tree.inv_reps(t)]
    m.ret = add_vars(m, "ret", ret_keys, pyo.NonNegativeReals)
    inst_keys = [ik(m, (s, mod), t, r) for (s, mod) in pairs if (s, mod) in varying for t in range(first[(s, mod)], T)
                 for r in tree.inv_reps(t)]
    cap = {s.id: s.asics_per_rack * m.site_info[s.id].Rmax / UNITS for s in inst.sites}
    m.inst = add_vars(m, "inst", inst_keys, pyo.NonNegativeReals, bounds={k: (0, cap[k[0]]) for k in inst_keys})
    m.const_units = {p: init.get(p, 0.0) / UNITS for p in pairs if p not in varying}

    fleet_balance(m, data, deliveries)
    op_keys, op_b = [], {}
    for (s, mod) in pairs:
        for t in range(first[(s, mod)], T):
            for w in tree.op_reps(t):
                ub = installed(m, s, mod, t, w)
                ub = min(ub, cap[s]) if is_const(ub) else cap[s]
                if ub <= 0:
                    continue
                op_keys.append((s, mod, t, w))
                op_b[(s, mod, t, w)] = (0.0, ub)
    m.op = add_vars(m, "op", op_keys, pyo.NonNegativeReals, bounds=op_b)
    operating_le_installed(m)
    dr_keys = [k for k in op_keys if (fx := data.flex(k[0])) is not None and fx.dr_pay_usd_per_mw[k[2]] > 0]
    pk_keys = [k for k in op_keys if (fx := data.flex(k[0])) is not None and fx.peak_usd_per_mw[k[2]] > 0]
    m.dr = add_vars(m, "dr", dr_keys, pyo.NonNegativeReals, bounds={k: op_b[k] for k in dr_keys})
    m.pk = add_vars(m, "pk", pk_keys, pyo.NonNegativeReals, bounds={k: op_b[k] for k in pk_keys})
    curtail_le_operating(m)
    rack_positions(m, data)
    fleet_needs_ownership(m, data)
    _mining_expressions(m, data)
    _cashflows(m, data)


def purchase_cap(m, data: Data, buy_keys) -> None:
    """sum_{s,t} buy[o,s,t] <= max_units_o (all sites together, along each path of the tree);
    each variable also bounded by it."""
    rows = {}
    tree = m.tree
    for o in data.inst.fleet.purchase_options:
        if o.max_units is None:
            continue
        ks = [k for k in buy_keys if k[0] == o.id]
        for k in ks:
            m.buy[k].setub(o.max_units / UNITS)
        periods = sorted({isplit(m, k, 2)[1] for k in ks})
        for w in tree.path_reps(periods):
            on_path = [k for k in ks if isplit(m, k, 2)[2] == tree.inv(isplit(m, k, 2)[1], w)]
            if len(on_path) > 1:
                rows[rk(m, o.id, w)] = lin([1.0] * len(on_path), [m.buy[k] for k in on_path]) <= o.max_units / UNITS
    add_constraints(m, "purchase_cap", rows)


def installed(m, s: str, mod: str, t: int, r: int):
    """Installed units (thousands) of model mod at site s in period t on scenario r's path: a
    constant or inst[s,mod,t]."""
    first = m.fleet_first.get((s, mod))
    if first is None or t < first:
        return 0.0
    if (s, mod) in m.const_units:
        return m.const_units[(s, mod)]
    return m.inst[ik(m, (s, mod), t, r)]


def fleet_balance(m, data: Data, deliveries) -> None:
    """inst[s,m,t] = inst[s,m,t-1] + units delivered in t (ordered lead periods before) - ret[s,m,t];
    inst[s,m,-1] = initial units."""
    init = data.initial_units
    rows = {}
    for k in m.inst_index:
        (s, mod), t, r = isplit(m, k, 2)
        prev = installed(m, s, mod, t - 1, r) if t > 0 else init.get((s, mod), 0.0) / UNITS
        coefs, vs = [1.0], [m.inst[k]]
        for o, tau in deliveries.get((s, mod, t), []):
            coefs.append(-1.0)
            vs.append(m.buy[ik(m, (o.id, s), tau, r)])
        if k in m.ret:
            coefs.append(1.0)
            vs.append(m.ret[k])
        if not is_const(prev):
            coefs.append(-1.0)
            vs.append(prev)
            prev = 0.0
        rows[k] = lin(coefs, vs) == prev
    add_constraints(m, "fleet_balance", rows)


def operating_le_installed(m) -> None:
    """op[s,m,t,w] <= inst[s,m,t] (the rest is curtailed); a bound when inst is a constant."""
    rows = {}
    for (s, mod, t, w) in m.op_index:
        i = installed(m, s, mod, t, w)
        if not is_const(i):
            rows[(s, mod, t, w)] = m.op[s, mod, t, w] <= i
    add_constraints(m, "operating_le_installed", rows)


def curtail_le_operating(m) -> None:
    """dr[s,m,t,w] <= op[s,m,t,w] (units enrolled in demand response) and pk[s,m,t,w] <= op
    (units off around the transmission peak): only operating units can be curtailed."""
    rows = {}
    for name, var in (("dr", m.dr), ("peak", m.pk)):
        for k in var.index_set():
            rows[(*k, name)] = var[k] - m.op[k] <= 0
    add_constraints(m, "curtail_le_operating", rows)


def rack_positions(m, data: Data) -> None:
    """sum_m inst[s,m,t] <= asics_per_rack x mining_racks[s,t] (units in thousands)."""
    rows = {}
    for site in data.inst.sites:
        s = site.id
        mods = [mod for (ss, mod) in m.fleet_pairs if ss == s]
        if not mods:
            continue
        for t in range(data.T):
            for r in m.tree.inv_reps(t):
                acc = Acc()
                for mod in mods:
                    acc.add(0, 1.0, installed(m, s, mod, t, r))
                lhs, rhs = acc.expr(0), sites.mining_racks(m, s, t, r)
                if is_const(lhs) and is_const(rhs):
                    continue
                rows[rk(m, (s, t), r)] = lhs <= site.asics_per_rack / UNITS * rhs
    add_constraints(m, "rack_positions", rows)


def fleet_needs_ownership(m, data: Data) -> None:
    """An unowned site holds no ASICs: sum_m inst[s,m,t] <= asics_per_rack x Rmax x own[s,t]
    (Rmax: the mining racks at the start plus every mining rack its new-build options can add)
    (with rack_positions this is exactly inst <= capacity x own)."""
    rows = {}
    for site in data.inst.sites:
        s = site.id
        si = m.site_info[s]
        if si.own_first is None:
            continue
        mods = [mod for (ss, mod) in m.fleet_pairs if ss == s]
        for t in range(si.own_first, data.T):
            for r in m.tree.inv_reps(t):
                acc = Acc()
                for mod in mods:
                    acc.add(0, 1.0, installed(m, s, mod, t, r))
                lhs = acc.expr(0)
                if is_const(lhs) and lhs == 0:
                    continue
                rows[rk(m, (s, t), r)] = lhs <= site.asics_per_rack * si.Rmax / UNITS * sites.own(m, s, t, r)
    add_constraints(m, "fleet_needs_ownership", rows)


def _mining_expressions(m, data: Data) -> None:
    """Per (s,t,w): PH/s produced on average (m.ph_op: operating units less the curtailed share of
    the units enrolled in demand response, phi_dr dr, and off around the peak, phi_peak pk), the
    operating PH/s before curtailment (m.ph_full: terminal mining value), mining energy in GWh
    before curtailment (m.mining_gwh: the grid row) and the energy curtailment saves
    (m.curtailed_gwh: the energy balance)."""
    models = data.inst.model_by_name
    full, gwh, cut = Acc(), Acc(), Acc()
    for (s, mod, t, w) in m.op_index:
        v = m.op[s, mod, t, w]
        full.add((s, t, w), models[mod].hashrate_th_s / 1000.0 * UNITS, v)
        gwh.add((s, t, w), float(data.mwh_per_unit(s, mod)[t]) * UNITS / MWH, v)
    m.ph_full = dict(full.items())
    m.mining_gwh = gwh
    m.curtailed_gwh = cut
    if not (len(m.dr_index) or len(m.pk_index)):
        m.ph_op = m.ph_full
        return
    ph = Acc()
    for k, (c, v, _) in full.rows.items():
        for a, x in zip(c, v):
            ph.add(k, a, x)
    for var, attr in ((m.dr, "phi_dr"), (m.pk, "phi_peak")):
        for (s, mod, t, w) in var.index_set():
            phi = float(getattr(data.flex(s), attr)[t])
            if phi > 0:
                x = var[s, mod, t, w]
                ph.add((s, t, w), -phi * models[mod].hashrate_th_s / 1000.0 * UNITS, x)
                cut.add((s, t, w), phi * float(data.mwh_per_unit(s, mod)[t]) * UNITS / MWH, x)
    m.ph_op = dict(ph.items())


def mining_revenue(m, s: str, t: int, w: int, full: bool = False):
    """$M: P[w,t] x BTC per PH[w,t] x PH produced (``full``: operating PH before curtailment)."""
    e = (m.ph_full if full else m.ph_op).get((s, t, w))
    return 0.0 if e is None else (m.btc_price[w, t] * m.btc_per_ph[w, t] / USD) * e


def _mining_fixed_opex(m, data: Data, s: str, t: int, r: int, scale: float = 1.0):
    """scale x $M: fixed_opex_mining x installed ASIC nameplate MW x months."""
    acc = Acc()
    if data.inst.site_by_id[s].fixed_opex_mining_usd_per_mw_month > 0:
        for (ss, mod) in m.fleet_pairs:
            if ss == s:
                acc.add(0, scale * data.mining_opex_usd_per_unit(s, mod) * UNITS / USD, installed(m, s, mod, t, r))
    return acc.expr(0)


def _cashflows(m, data: Data) -> None:
    inst, T, tree = data.inst, data.T, m.tree
    models = inst.model_by_name
    opts = {o.id: o for o in inst.fleet.purchase_options}
    buy = Acc()
    for k in m.buy_index:
        (o, s), t, r = isplit(m, k, 2)
        opt = opts[o]
        buy.add((s, t, r), -opt.usd_per_th * models[opt.model].hashrate_th_s * UNITS / USD, m.buy[k])
    for (s, t, r), e in buy.items():
        register(m, "asic_purchases_usd", s, t, inv_at(m, t, r), e, asset="asics")
    salv = Acc()
    for k in m.ret_index:
        (s, mod), t, r = isplit(m, k, 2)
        if models[mod].salvage_usd_per_unit > 0:
            salv.add((s, t, r), models[mod].salvage_usd_per_unit * UNITS / USD, m.ret[k])
    for (s, t, r), e in salv.items():
        register(m, "salvage_usd", s, t, inv_at(m, t, r), e)
    sites_with_fleet = list(dict.fromkeys(s for s, _ in m.fleet_pairs))
    for s in sites_with_fleet:
        for t in range(T):
            for r in tree.inv_reps(t):
                register(m, "opex_usd", s, t, inv_at(m, t, r), _mining_fixed_opex(m, data, s, t, r, -1.0))
            for w in tree.op_reps(t):
                register(m, "mining_revenue_usd", s, t, w, mining_revenue(m, s, t, w))
    term = inst.horizon.terminal
    if term.asic_salvage:
        for r in tree.inv_reps(T - 1):
            acc = Acc()
            for (s, mod) in m.fleet_pairs:
                acc.add(s, models[mod].salvage_usd_per_unit * UNITS / USD, installed(m, s, mod, T - 1, r))
            for s, e in acc.items():
                register(m, "terminal_asic_salvage_usd", s, T - 1, inv_at(m, T - 1, r), e)
    if term.mining_margin_multiple > 0:
        # the terminal mining line reads the last month's prices: one (tmine, tkeep) per site and
        # leaf (the operations node of T-1; scenario w's own in the two-stage form)
        keys = [(s, w) for s in sites_with_fleet for w in tree.op_reps(T - 1)]
        m.tmine = add_vars(m, "tmine", keys, pyo.NonNegativeReals)
        m.tkeep = add_vars(m, "tkeep", keys, pyo.Binary)
        terminal_mining_floor(m, data, keys)
        for (s, w) in keys:
            register(m, "terminal_mining_usd", s, T - 1, w, lin([1.0], [m.tmine[s, w]]))


def terminal_margin_terms(m, data: Data, s: str, w: int) -> list:
    """[(mod, a, op, c, inst)] per ASIC model at site s on the path of the leaf w, such that
    M[s,w] = sum a x op - c x inst ($M): a = k x (P[w,T-1] x BTC per PH x PH per unit - mining
    GWh per unit x mining_price[s,w]) the kept value of an operating unit (before curtailment),
    c = k x fixed mining opex per unit + salvage per unit (what an installed unit costs to keep
    and what retiring it gives). op is the operating-units Var of T-1 (None where the model cannot
    run there); inst is installed(): a Var or a constant."""
    T, k = data.T, data.terminal_mining_factor
    t = T - 1
    models = data.inst.model_by_name
    terms = []
    for (ss, mod) in m.fleet_pairs:
        if ss != s:
            continue
        inst = installed(m, s, mod, t, w)
        if is_const(inst) and inst == 0:
            continue
        key = (s, mod, t, w)
        op = m.op[key] if key in m.op_index else None
        a = k * (m.btc_price[w, t] * m.btc_per_ph[w, t] / USD * models[mod].hashrate_th_s / 1000.0 * UNITS
                 - m.mining_price[s, w] * (MWH / USD) * float(data.mwh_per_unit(s, mod)[t]) * UNITS / MWH)
        c = (k * data.mining_opex_usd_per_unit(s, mod) + data.mining_salvage_usd_per_unit(mod)) * UNITS / USD
        terms.append((mod, a, op, c, inst))
    return terms


def terminal_margin(m, data: Data, s: str, w: int):
    """$M: k x (mining revenue - mining GWh x mining_price[s,w] - fixed mining opex) of the last
    period - the salvage of the units installed then (what retiring them gives), on the path of
    the leaf w (its fleet: the commitments along that path): sum over terminal_margin_terms."""
    return sum((a * op if op is not None else 0.0) - c * inst for _, a, op, c, inst in terminal_margin_terms(m, data, s, w))


def terminal_mining_floor(m, data: Data, keys) -> None:
    """tmine[s,w] = max(0, M[s,w]) exactly, M = sum_m a_m op_m - c_m inst_m (terminal_margin_terms),
    by the convex hull of the disjunction "keep (tkeep = 1): tmine <= M" or "retire (tkeep = 0):
    tmine <= 0" in the space of (op, inst) of the last period. Each model's units split into a
    kept part (tmop, tminst) and a retired part (op - tmop, inst - tminst), each keeping op <= inst:
      "margin"  tmine <= sum_m a_m tmop_m - c_m tminst_m
      "kept_op"   tmop <= op              (retired operating units >= 0)
      "kept_ratio" tmop <= tminst         (kept operating <= kept installed)
      "retired_ratio" op - tmop <= inst - tminst
      "kept_cap"  tminst <= U_s tkeep     (U_s = asics_per_rack x Rmax_s: the most the site holds)
      "retired_cap" inst - tminst <= U_s (1 - tkeep)
    tkeep = 1 puts every unit in the kept part (tmine <= M), tkeep = 0 every unit in the retired
    part (tmine <= 0); the maximisation picks max(0, M). Exact for integer tkeep like the big-M
    form it replaced, and much tighter for a fractional one: its LP value is at most sum_m
    max(0, a_m op_m - c_m inst_m), where the big-M chord gave up to U_max x U_min / (U_max - U_min)
    at M = 0 (medium benchmark seed 0: 250.9 M$ of terminal mining in the LP against 14.1 M$ of
    max(0, M) at the same point; benchmarks/README.md)."""
    rows = {}
    m.tmine_margin = {}
    hull_keys = []
    terms = {}
    for (s, w) in keys:
        terms[(s, w)] = terminal_margin_terms(m, data, s, w)
        hull_keys += [(s, mod, w) for mod, *_ in terms[(s, w)]]
    m.tmop = add_vars(m, "tmop", [k for k in hull_keys if terms_op(terms, k) is not None], pyo.NonNegativeReals)
    m.tminst = add_vars(m, "tminst", hull_keys, pyo.NonNegativeReals)
    for (s, w) in keys:
        v, z = m.tmine[s, w], m.tkeep[s, w]
        m.tmine_margin[(s, w)] = terminal_margin(m, data, s, w)
        cap = data.inst.site_by_id[s].asics_per_rack * m.site_info[s].Rmax / UNITS
        kept = 0.0
        for mod, a, op, c, inst in terms[(s, w)]:
            i1 = m.tminst[s, mod, w]
            kept = kept - c * i1
            if op is not None:
                o1 = m.tmop[s, mod, w]
                kept = kept + a * o1
                rows[(s, w, mod, "kept_op")] = o1 - op <= 0
                rows[(s, w, mod, "kept_ratio")] = o1 - i1 <= 0
                rows[(s, w, mod, "retired_ratio")] = op - o1 - inst + i1 <= 0
            else:
                rows[(s, w, mod, "retired_ratio")] = i1 - inst <= 0
            rows[(s, w, mod, "kept_cap")] = i1 - cap * z <= 0
            rows[(s, w, mod, "retired_cap")] = inst - i1 + cap * z <= cap
        rows[(s, w, "", "margin")] = v - kept <= 0
    add_constraints(m, "terminal_mining_floor", rows)


def settle_terminal_mining(m, data: Data, tol: float = 1e-9) -> list:
    """The changes [(VarData, value)] that make each leaf's keep-or-retire the better choice for
    the fleet the model's current Var values hold (a loaded plan): where the terminal margin M[s,w]
    (``terminal_margin`` at those values) is above `tol` and the plan retires the fleet (tkeep = 0)
    or books less than M (tmine < M), keep it: tkeep = 1, tmine = M, every unit in the kept part
    (tmop = op, tminst = inst). Nothing else changes, so the plan stays feasible for every other
    row (tmine, tkeep, tmop and tminst appear only in the rows of ``terminal_mining_floor`` and in
    the terminal mining line, which is not a cash flow of the cash balance) and its value rises by
    what the kept fleet is worth. The independent evaluator books max(0, M) for a plan's fleet; a
    heuristic plan that retired a fleet worth keeping (or kept less than M) would otherwise be
    valued below it: the solver's objective would not be the evaluator's NPV."""
    if not hasattr(m, "tkeep"):
        return []
    changes = []
    for (s, w), z in m.tkeep.items():
        margin = pyo.value(m.tmine_margin[(s, w)])
        if margin <= tol or (round(pyo.value(z)) == 1 and pyo.value(m.tmine[s, w]) >= margin - tol):
            continue
        changes += [(z, 1.0), (m.tmine[s, w], margin)]
        for mod, _a, op, _c, inst in terminal_margin_terms(m, data, s, w):
            if op is not None:
                changes.append((m.tmop[s, mod, w], pyo.value(op)))
            changes.append((m.tminst[s, mod, w], pyo.value(inst)))
    return changes


def terms_op(terms: dict, key: tuple):
    """The operating-units Var of the hull key (s, mod, w), None where the model cannot run in T-1."""
    s, mod, w = key
    return next(op for md, _, op, _, _ in terms[(s, w)] if md == mod)
