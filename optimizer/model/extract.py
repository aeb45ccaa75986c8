"""Read a Plan from a solved model, and map a Plan to variable values for a MIP start."""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optimizer.economics.data import Data
from optimizer.instance.schema import FixedContract
from optimizer.model import financing, overhead, power, sites
from optimizer.model.common import MWH, PHS, UNITS, ik, isplit
from optimizer.model.fleet import terminal_margin_terms
from optimizer.plan import Plan

TOL = 1e-9  # model-unit values below this are read as 0


def _v(var) -> float:
    x = var.value
    return 0.0 if x is None else float(x)


def extract_plan(m, data: Data) -> Plan:
    """The Plan of the model's current variable values (after a solve): integers and binaries
    rounded, first-stage continuous values below 1e-9 model units read as 0, operations,
    energy and BTC sales as solved (negative noise clipped to 0) for every scenario.

    On a staged tree every commitment row carries the ``node`` that takes it; the operation
    tables (and the treasury sales) hold one row per scenario, equal across the scenarios of a node."""
    lab, names, tree = data.labels, data.scenario_names, m.tree
    staged = not tree.two_stage

    def fs(var, nbase: int, keep, value, cols: list[str]) -> pd.DataFrame:
        """Rows (base..., month[, value][, node]) of the variable's indices whose value ``keep``s."""
        rows = []
        for k in var.index_set():
            base, t, r = isplit(m, k, nbase)
            if keep(var[k]):
                rows.append((*base, lab[t]) + ((value(var[k]),) if value else ()) + ((tree.inv_node(t, r).name,) if staged else ()))
        return pd.DataFrame(rows, columns=cols + (["node"] if staged else []))

    conv = fs(m.conv, 1, lambda x: round(_v(x)) > 0, lambda x: float(round(_v(x))), ["site", "month", "blocks"])
    gx = fs(m.gx, 2, lambda x: _v(x) > 0.5, None, ["site", "option", "month"])
    buy = fs(m.buy, 2, lambda x: _v(x) > TOL, lambda x: _v(x) * UNITS, ["option", "site", "month", "units"])
    builds = fs(m.nbuild, 2, lambda x: round(_v(x)) > 0, lambda x: float(round(_v(x))), ["site", "option", "month", "blocks"])
    gpus = fs(m.gbuy, 2, lambda x: _v(x) > TOL, _v, ["option", "site", "month", "mw"])
    ret = fs(m.ret, 2, lambda x: _v(x) > TOL, lambda x: _v(x) * UNITS, ["site", "model", "month", "units"])
    split = {l.id: l.splittable for l in data.inst.leases}
    leases = []
    for k in m.x_index:
        (l, s), tau, r = isplit(m, k, 2)
        x = _v(m.x[k])
        node = (tree.inv_node(tau, r).name,) if staged else ()
        if split[l] and x > TOL:
            leases.append((l, s, lab[tau], min(x, 1.0)) + node)
        elif not split[l] and x > 0.5:
            leases.append((l, s, lab[tau], 1.0) + node)
    contracts = []
    for k in m.sign_index:
        cid = k if isinstance(k, str) else k[0]
        node = (tree.inv_node(m.sign_period[cid], k[1]).name,) if staged else ()
        contracts.append((cid, _v(m.sign[k]) > 0.5) + node)
    events = []
    for var, what in ((m.sell, "sale"), (m.acq, "acquisition")):
        for k in var.index_set():
            (s,), t, r = isplit(m, k, 1)
            if _v(var[k]) > 0.5:
                events.append((s, what, lab[t]) + ((tree.inv_node(t, r).name,) if staged else ()))
    ops = []
    for (s, mod, t, w) in m.op_index:
        u = max(_v(m.op[s, mod, t, w]), 0.0) * UNITS
        ops += [(names[x], s, mod, lab[t], u) for x in tree.op_node(t, w).scenarios]
    energy = []
    for (c, t, w) in m.deliv_index:
        d = max(_v(m.deliv[c, t, w]), 0.0)
        u = min(max(_v(power.used_var(m, c, t, w)), 0.0), d)
        fed = sum(max(_v(v), 0.0) for v in m.feeds_of.get((c, t, w), []))
        energy += [(names[x], c, lab[t], d * MWH, u * MWH, max(d - u - fed, 0.0) * MWH) for x in tree.op_node(t, w).scenarios]
    # the levers' tables (two-stage only, instance.checks: operation keys are scenario indices)
    feeds = [(names[w], c, s, lab[t], max(_v(m.feed[c, s, t, w]), 0.0) * MWH) for (c, s, t, w) in m.feed_index
             if _v(m.feed[c, s, t, w]) > TOL]
    curt: dict = {}
    for var, col in ((m.dr, 0), (m.pk, 1)):
        for (s, mod, t, w) in var.index_set():
            x = max(_v(var[s, mod, t, w]), 0.0) * UNITS
            if x > TOL * UNITS:
                curt.setdefault((names[w], s, mod, lab[t]), [0.0, 0.0])[col] = x
    curtailment = [(*k, a, b) for k, (a, b) in curt.items()]
    exits = []
    for s in dict.fromkeys(s for (s, _t) in m.mine_on_index):
        for t in range(data.T):
            if _v(overhead.mine_on(m, s, t)) < 0.5 and pyo.value(sites.own(m, s, t, 0)) > 0.5:
                exits.append((s, lab[t]))
                break
    cuts = [(r, lab[t]) for (r, t) in m.cut_index if _v(m.cut[r, t]) > 0.5]
    hedges = [(f, lab[t], _v(m.hv[f, t]) * PHS) for (f, t) in m.hv_index if _v(m.hv[f, t]) > TOL]
    sales = []
    for w in range(data.W):  # the sale of the node taking the commitments of t, in every scenario through it
        for t in range(data.T):
            k = ik(m, (), t, w)
            if k in m.btc_sold:
                sales.append((names[w], lab[t], max(_v(m.btc_sold[k]), 0.0)))
    debt = financing.debt_rows(m, data, TOL)
    df = pd.DataFrame
    node = ["node"] if staged else []
    return Plan(
        conversions=conv, grid_expansions=gx, new_builds=builds, gpu_purchases=gpus, purchases=buy, retirements=ret,
        leases=df(leases, columns=["lease", "site", "month", "share"] + node),
        contracts=df(contracts, columns=["contract", "signed"] + node),
        site_events=df(events, columns=["site", "event", "month"] + node),
        debt=df(debt, columns=["instrument", "month", "usd"] + node),
        mining_exits=df(exits, columns=["site", "month"]),
        overhead_cuts=df(cuts, columns=["reduction", "month"]),
        hedges=df(hedges, columns=["forward", "month", "ph_s"]),
        curtailment=df(curtailment, columns=["scenario", "site", "model", "month", "dr_units", "peak_units"]),
        plant_feeds=df(feeds, columns=["scenario", "contract", "site", "month", "mwh"]),
        operations=df(ops, columns=["scenario", "site", "model", "month", "units"]),
        energy=df(energy, columns=["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]),
        btc_sales=df(sales, columns=["scenario", "month", "btc"]),
        name="optimum",
    )


# ---------------------------------------------------------------- MIP start


def _period(data: Data, month: str, where: str) -> int:
    t = data.tl.period_of(str(month))
    if not 0 <= t < data.T:
        raise ValueError(f"{where}: month {month} is outside the horizon")
    return t


def _set(var, key, value: float, where: str) -> None:
    if key not in var:
        if abs(value) > TOL:
            raise ValueError(f"{where}: {key} is not a decision of the model (not allowed by the instance)")
        return
    var[key].set_value(value, skip_validation=True)


def _reps(m, data: Data, r, t: int, where: str) -> list[int]:
    """Representatives of the commitment nodes of period ``t`` a plan row applies to: all of them
    for a row without node (the same decision in every scenario), else those below its node."""
    reps = m.tree.inv_reps(t)
    node = getattr(r, "node", None)
    if node is None or (isinstance(node, float) and node != node) or str(node) in ("", "root"):
        return reps
    n = m.tree.by_name.get(str(node))
    if n is None:
        raise ValueError(f"{where}: unknown tree node {node!r}")
    return [w for w in reps if w in n.members]


def mip_start_values(m, data: Data, plan: Plan) -> ComponentMap:
    """Variable values (ComponentMap VarData -> value, model units) that reproduce ``plan``:
    every first-stage variable, the variables they define (cumulative blocks and expansions,
    ownership, installed units, McCormick products) and, when the plan has them, operations,
    energy, treasury sales, BTC held and cash. The model's own values are left unchanged.
    Raises ValueError if the plan uses a decision the model does not have."""
    saved = ComponentMap((v, v.value) for v in m.component_data_objects(pyo.Var, descend_into=True))
    try:
        return _start(m, data, plan)
    finally:
        for v, x in saved.items():
            v.set_value(x, skip_validation=True)


def _start(m, data: Data, plan: Plan) -> ComponentMap:
    names = {n: i for i, n in enumerate(data.scenario_names)}
    first_stage = [m.conv, m.gx, m.nbuild, m.gbuy, m.buy, m.ret, m.x, m.y, m.sign, m.sell, m.acq, m.draw, m.issue, m.cut, m.hv, m.mine_on]
    for var in first_stage:
        for v in var.values():
            v.set_value(0.0, skip_validation=True)
    for r in plan.conversions.itertuples():
        t = _period(data, r.month, "plan.conversions")
        for w in _reps(m, data, r, t, "plan.conversions"):
            _set(m.conv, ik(m, (r.site,), t, w), float(r.blocks), "plan.conversions")
    for r in plan.grid_expansions.itertuples():
        t = _period(data, r.month, "plan.grid_expansions")
        for w in _reps(m, data, r, t, "plan.grid_expansions"):
            _set(m.gx, ik(m, (r.site, r.option), t, w), 1.0, "plan.grid_expansions")
    for r in plan.new_builds.itertuples():
        t = _period(data, r.month, "plan.new_builds")
        for w in _reps(m, data, r, t, "plan.new_builds"):
            k = ik(m, (r.site, r.option), t, w)
            _set(m.nbuild, k, _v(m.nbuild[k]) + float(r.blocks) if k in m.nbuild else float(r.blocks), "plan.new_builds")
    for r in plan.gpu_purchases.itertuples():
        t = _period(data, r.month, "plan.gpu_purchases")
        for w in _reps(m, data, r, t, "plan.gpu_purchases"):
            k = ik(m, (r.option, r.site), t, w)
            _set(m.gbuy, k, _v(m.gbuy[k]) + float(r.mw) if k in m.gbuy else float(r.mw), "plan.gpu_purchases")
    for r in plan.purchases.itertuples():
        t = _period(data, r.month, "plan.purchases")
        for w in _reps(m, data, r, t, "plan.purchases"):
            k = ik(m, (r.option, r.site), t, w)
            _set(m.buy, k, _v(m.buy[k]) + r.units / UNITS if k in m.buy else r.units / UNITS, "plan.purchases")
    for r in plan.retirements.itertuples():
        t = _period(data, r.month, "plan.retirements")
        for w in _reps(m, data, r, t, "plan.retirements"):
            k = ik(m, (r.site, r.model), t, w)
            _set(m.ret, k, _v(m.ret[k]) + r.units / UNITS if k in m.ret else r.units / UNITS, "plan.retirements")
    for r in plan.leases.itertuples():
        t = _period(data, r.month, "plan.leases")
        for w in _reps(m, data, r, t, "plan.leases"):
            _set(m.x, ik(m, (r.lease, r.site), t, w), float(r.share), "plan.leases")
            ky = ik(m, (r.lease,), t, w)
            if ky in m.y:
                m.y[ky].set_value(1.0, skip_validation=True)
    for r in plan.contracts.itertuples():
        if r.contract not in m.sign_period:
            _set(m.sign, r.contract, 1.0 if r.signed else 0.0, "plan.contracts")
            continue
        for w in _reps(m, data, r, m.sign_period[r.contract], "plan.contracts"):
            _set(m.sign, power.sign_key(m, r.contract, w), 1.0 if r.signed else 0.0, "plan.contracts")
    for r in plan.site_events.itertuples():
        var = m.sell if r.event == "sale" else m.acq
        t = _period(data, r.month, "plan.site_events")
        for w in _reps(m, data, r, t, "plan.site_events"):
            _set(var, ik(m, (r.site,), t, w), 1.0, "plan.site_events")
    financing.set_debt(m, data, plan, _period, lambda r, t: _reps(m, data, r, t, "plan.debt"))
    for r in plan.overhead_cuts.itertuples():  # the levers: two-stage only (instance.checks)
        _set(m.cut, (r.reduction, _period(data, r.month, "plan.overhead_cuts")), 1.0, "plan.overhead_cuts")
    for r in plan.hedges.itertuples():
        k = (r.forward, _period(data, r.month, "plan.hedges"))
        _set(m.hv, k, (_v(m.hv[k]) if k in m.hv else 0.0) + r.ph_s / PHS, "plan.hedges")
    # variables defined by the first stage, in period order (keys are built period by period)
    for k in m.nb_index:
        (s,), t, w = isplit(m, k, 1)
        m.nb[k].set_value(pyo.value(sites.nb(m, s, t - 1, w)) + (_v(m.conv[k]) if k in m.conv else 0.0), skip_validation=True)
    for k in m.gcum_index:
        (s, g), t, w = isplit(m, k, 2)
        pk = ik(m, (s, g), t - 1, w) if t > 0 else None
        prev = _v(m.gcum[pk]) if pk is not None and pk in m.gcum else 0.0
        m.gcum[k].set_value(prev + (_v(m.gx[k]) if k in m.gx else 0.0), skip_validation=True)
    for k in m.nbcum_index:
        (s, b), t, w = isplit(m, k, 2)
        pk = ik(m, (s, b), t - 1, w) if t > 0 else None
        prev = _v(m.nbcum[pk]) if pk is not None and pk in m.nbcum else 0.0
        m.nbcum[k].set_value(prev + (_v(m.nbuild[k]) if k in m.nbuild else 0.0), skip_validation=True)
    for k in m.own_index:
        (s,), t, w = isplit(m, k, 1)
        prev = pyo.value(sites.own(m, s, t - 1, w))
        d = -_v(m.sell[k]) if k in m.sell else (_v(m.acq[k]) if k in m.acq else 0.0)
        m.own[k].set_value(prev + d, skip_validation=True)
    for k in m.inst_index:
        m.inst[k].set_value(0.0, skip_validation=True)
    for k in m.inst_index:  # fleet_balance rows: inst = prev + deliveries - retirements (in period order)
        con = m.fleet_balance[k]
        body = pyo.value(con.body) - _v(m.inst[k])  # body with inst[k] = 0 ... lin == prev
        m.inst[k].set_value(pyo.value(con.upper) - body, skip_validation=True)
    for k in m.hpc_gwh_index:  # hpc_energy rows: sum(...) - hpc_gwh == 0
        m.hpc_gwh[k].set_value(0.0, skip_validation=True)
        m.hpc_gwh[k].set_value(pyo.value(m.hpc_energy[k].body), skip_validation=True)
    for k in m.hpc_own_index:
        (s,), t, w = isplit(m, k, 1)
        m.hpc_own[k].set_value(pyo.value(sites.hpc_racks(m, s, t, w)) * _v(m.own[k]), skip_validation=True)
    cons = {c.id: c for c in data.inst.contracts}
    for k in m.signed_owned_index:
        (c,), t, w = isplit(m, k, 1)
        m.signed_owned[k].set_value(_v(power.sign_var(m, c, w)) * pyo.value(sites.own(m, cons[c].site, t, w)), skip_validation=True)
    exit_at = {r.site: _period(data, r.month, "plan.mining_exits") for r in plan.mining_exits.itertuples()}
    for (s, t) in m.mine_on_index:  # mining runs while owned, until the exit month
        on = pyo.value(sites.own(m, s, t, 0)) if t < exit_at.get(s, data.T) else 0.0
        m.mine_on[s, t].set_value(on, skip_validation=True)
    for (s, t) in m.mine_exit_index:  # mining_exit rows: exit = max(0, on(t-1) - on(t) - sell(t))
        sell = _v(m.sell[s, t]) if (s, t) in m.sell else 0.0
        m.mine_exit[s, t].set_value(max(0.0, pyo.value(overhead.mine_on(m, s, t - 1)) - _v(m.mine_on[s, t]) - sell),
                                    skip_validation=True)
    out = ComponentMap()
    defined = [m.nb, m.gcum, m.nbcum, m.own, m.inst, m.hpc_gwh, m.hpc_own, m.signed_owned, m.mine_exit]
    for var in first_stage + defined:
        for v in var.values():
            out[v] = _v(v)
    if plan.has_operations:
        _operations(m, data, plan, names, out)
    return out


def _operations(m, data: Data, plan: Plan, names: dict, out: ComponentMap) -> None:
    tree = m.tree
    for v in m.op.values():
        v.set_value(0.0, skip_validation=True)
    for r in plan.operations.itertuples():
        if r.scenario in names:
            t = _period(data, r.month, "plan.operations")
            _set(m.op, (r.site, r.model, t, tree.op(t, names[r.scenario])), r.units / UNITS, "plan.operations")
    for var in (m.dr, m.pk):
        for v in var.values():
            v.set_value(0.0, skip_validation=True)
    for r in plan.curtailment.itertuples():  # the levers: two-stage only (instance.checks)
        if r.scenario in names:
            k = (r.site, r.model, _period(data, r.month, "plan.curtailment"), names[r.scenario])
            _set(m.dr, k, r.dr_units / UNITS, "plan.curtailment")
            _set(m.pk, k, r.peak_units / UNITS, "plan.curtailment")
    for v in list(m.op.values()) + list(m.dr.values()) + list(m.pk.values()):
        out[v] = _v(v)
    for (s, w), e in getattr(m, "tmine_margin", {}).items():  # terminal mining floor: keep iff the margin pays
        val = pyo.value(e)
        m.tkeep[s, w].set_value(1.0 if val > 0 else 0.0, skip_validation=True)
        m.tmine[s, w].set_value(max(val, 0.0), skip_validation=True)
        out[m.tkeep[s, w]], out[m.tmine[s, w]] = _v(m.tkeep[s, w]), _v(m.tmine[s, w])
        for mod, _, op, _, inst in terminal_margin_terms(m, data, s, w):  # the hull's kept part: all or nothing
            keep = val > 0
            if op is not None:
                m.tmop[s, mod, w].set_value(_v(op) if keep else 0.0, skip_validation=True)
                out[m.tmop[s, mod, w]] = _v(m.tmop[s, mod, w])
            m.tminst[s, mod, w].set_value(pyo.value(inst) if keep else 0.0, skip_validation=True)
            out[m.tminst[s, mod, w]] = _v(m.tminst[s, mod, w])
    if not len(plan.energy) and len(m.deliv):
        return  # operations without their energy: the treasury and cash rows read the energy, left to the solver
    for var in (m.deliv, m.used, m.shortfall, m.feed):
        for v in var.values():
            v.set_value(0.0, skip_validation=True)
    for r in plan.plant_feeds.itertuples():
        if r.scenario in names:
            _set(m.feed, (r.contract, r.site, _period(data, r.month, "plan.plant_feeds"), names[r.scenario]), r.mwh / MWH,
                 "plan.plant_feeds")
    for r in plan.energy.itertuples():
        if r.scenario not in names:
            continue
        t = _period(data, r.month, "plan.energy")
        k = (r.contract, t, tree.op(t, names[r.scenario]))
        _set(m.deliv, k, r.delivered_mwh / MWH, "plan.energy")
        if k in m.used:
            m.used[k].set_value(r.used_mwh / MWH, skip_validation=True)
    for c in data.inst.contracts:
        if not (isinstance(c, FixedContract) and c.take_or_pay_min_share > 0):
            continue
        hours, lift = data.contracts[c.id].active_hours, power.take_minimum(data, c)
        for (cid, t, w) in m.deliv_index:
            if cid != c.id:
                continue
            q = c.take_or_pay_min_share * c.mw_cap * hours[t] / MWH * pyo.value(power.signed_and_owned(m, c, t, w))
            d = m.deliv[cid, t, w]
            if lift:  # the model takes at least the minimum and sells the rest back (never worse)
                d.set_value(max(_v(d), q), skip_validation=True)
            else:  # shortfall = max(0, minimum - delivered)
                m.shortfall[cid, t, w].set_value(max(0.0, q - _v(d)), skip_validation=True)
    for var in (m.deliv, m.used, m.shortfall, m.feed):
        for v in var.values():
            out[v] = _v(v)
    for v in m.btc_sold.values():
        v.set_value(0.0, skip_validation=True)
    for r in plan.btc_sales.itertuples():
        if r.scenario in names:
            t = _period(data, r.month, "plan.btc_sales")
            _set(m.btc_sold, ik(m, (), t, names[r.scenario]), float(r.btc), "plan.btc_sales")
    for k in m.btc_held_index:  # treasury_balance: held - prev + sold - mined == 0, in period order
        m.btc_held[k].set_value(0.0, skip_validation=True)
    for k in sorted(m.btc_held_index, key=lambda k: k[1]):
        m.btc_held[k].set_value(-pyo.value(m.treasury_balance[k].body), skip_validation=True)
    for v in financing.set_taxes(m, data):  # tax rows read the operations; the cash rows read the taxes
        out[v] = _v(v)
    if hasattr(m, "cash"):
        for k in m.first_stage_net_index:  # first_stage_net - sum(...) == 0
            m.first_stage_net[k].set_value(0.0, skip_validation=True)
            m.first_stage_net[k].set_value(-pyo.value(m.first_stage_net_def[k].body), skip_validation=True)
            out[m.first_stage_net[k]] = _v(m.first_stage_net[k])
        for k in m.cash_index:
            m.cash[k].set_value(0.0, skip_validation=True)
        for k in sorted(m.cash_index, key=lambda k: k[1]):
            m.cash[k].set_value(-pyo.value(m.cash_balance[k].body), skip_validation=True)
    for var in [m.btc_sold, m.btc_held] + ([m.cash] if hasattr(m, "cash") else []):
        for v in var.values():
            out[v] = _v(v)


__all__ = ["extract_plan", "mip_start_values"]
