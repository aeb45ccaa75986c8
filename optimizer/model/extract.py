"""Read a Plan from a solved model, and map a Plan to variable values for a MIP start."""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap

from optimizer.economics.data import Data
from optimizer.instance.schema import FixedContract
from optimizer.model import financing, power, sites
from optimizer.model.common import MWH, UNITS
from optimizer.plan import Plan

TOL = 1e-9  # model-unit values below this are read as 0


def _v(var) -> float:
    x = var.value
    return 0.0 if x is None else float(x)


def extract_plan(m, data: Data) -> Plan:
    """The Plan of the model's current variable values (after a solve): integers and binaries
    rounded, first-stage continuous values below 1e-9 model units read as 0, operations,
    energy and BTC sales as solved (negative noise clipped to 0) for every scenario."""
    lab, names = data.labels, data.scenario_names
    conv = [(s, lab[t], float(round(_v(m.conv[s, t])))) for (s, t) in m.conv_index if round(_v(m.conv[s, t])) > 0]
    gx = [(s, g, lab[t]) for (s, g, t) in m.gx_index if _v(m.gx[s, g, t]) > 0.5]
    builds = [(s, b, lab[t], float(round(_v(m.nbuild[s, b, t])))) for (s, b, t) in m.nbuild_index if round(_v(m.nbuild[s, b, t])) > 0]
    gpus = [(o, s, lab[t], _v(m.gbuy[o, s, t])) for (o, s, t) in m.gbuy_index if _v(m.gbuy[o, s, t]) > TOL]
    buy = [(o, s, lab[t], _v(m.buy[o, s, t]) * UNITS) for (o, s, t) in m.buy_index if _v(m.buy[o, s, t]) > TOL]
    ret = [(s, mod, lab[t], _v(m.ret[s, mod, t]) * UNITS) for (s, mod, t) in m.ret_index if _v(m.ret[s, mod, t]) > TOL]
    split = {l.id: l.splittable for l in data.inst.leases}
    leases = []
    for (l, s, tau) in m.x_index:
        x = _v(m.x[l, s, tau])
        if split[l] and x > TOL:
            leases.append((l, s, lab[tau], min(x, 1.0)))
        elif not split[l] and x > 0.5:
            leases.append((l, s, lab[tau], 1.0))
    contracts = [(c, _v(m.sign[c]) > 0.5) for c in m.sign_index]
    events = [(s, "sale", lab[t]) for (s, t) in m.sell_index if _v(m.sell[s, t]) > 0.5]
    events += [(s, "acquisition", lab[t]) for (s, t) in m.acq_index if _v(m.acq[s, t]) > 0.5]
    ops = [(names[w], s, mod, lab[t], max(_v(m.op[s, mod, t, w]), 0.0) * UNITS) for (s, mod, t, w) in m.op_index]
    energy = []
    for (c, t, w) in m.deliv_index:
        d = max(_v(m.deliv[c, t, w]), 0.0)
        u = min(max(_v(power.used_var(m, c, t, w)), 0.0), d)
        energy.append((names[w], c, lab[t], d * MWH, u * MWH, (d - u) * MWH))
    sales = [(names[w], lab[t], max(_v(m.btc_sold[w, t]), 0.0)) for (w, t) in m.btc_sold_index]
    debt = financing.debt_rows(m, data, TOL)
    df = pd.DataFrame
    return Plan(
        conversions=df(conv, columns=["site", "month", "blocks"]),
        grid_expansions=df(gx, columns=["site", "option", "month"]),
        new_builds=df(builds, columns=["site", "option", "month", "blocks"]),
        gpu_purchases=df(gpus, columns=["option", "site", "month", "mw"]),
        purchases=df(buy, columns=["option", "site", "month", "units"]),
        retirements=df(ret, columns=["site", "model", "month", "units"]),
        leases=df(leases, columns=["lease", "site", "month", "share"]),
        contracts=df(contracts, columns=["contract", "signed"]),
        site_events=df(events, columns=["site", "event", "month"]),
        debt=df(debt, columns=["instrument", "month", "usd"]),
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
    first_stage = [m.conv, m.gx, m.nbuild, m.gbuy, m.buy, m.ret, m.x, m.y, m.sign, m.sell, m.acq, m.draw, m.issue]
    for var in first_stage:
        for v in var.values():
            v.set_value(0.0, skip_validation=True)
    for r in plan.conversions.itertuples():
        _set(m.conv, (r.site, _period(data, r.month, "plan.conversions")), float(r.blocks), "plan.conversions")
    for r in plan.grid_expansions.itertuples():
        _set(m.gx, (r.site, r.option, _period(data, r.month, "plan.grid_expansions")), 1.0, "plan.grid_expansions")
    for r in plan.new_builds.itertuples():
        k = (r.site, r.option, _period(data, r.month, "plan.new_builds"))
        _set(m.nbuild, k, _v(m.nbuild[k]) + float(r.blocks) if k in m.nbuild else float(r.blocks), "plan.new_builds")
    for r in plan.gpu_purchases.itertuples():
        k = (r.option, r.site, _period(data, r.month, "plan.gpu_purchases"))
        _set(m.gbuy, k, _v(m.gbuy[k]) + float(r.mw) if k in m.gbuy else float(r.mw), "plan.gpu_purchases")
    for r in plan.purchases.itertuples():
        k = (r.option, r.site, _period(data, r.month, "plan.purchases"))
        _set(m.buy, k, _v(m.buy[k]) + r.units / UNITS if k in m.buy else r.units / UNITS, "plan.purchases")
    for r in plan.retirements.itertuples():
        k = (r.site, r.model, _period(data, r.month, "plan.retirements"))
        _set(m.ret, k, _v(m.ret[k]) + r.units / UNITS if k in m.ret else r.units / UNITS, "plan.retirements")
    for r in plan.leases.itertuples():
        t = _period(data, r.month, "plan.leases")
        _set(m.x, (r.lease, r.site, t), float(r.share), "plan.leases")
        if (r.lease, t) in m.y:
            m.y[r.lease, t].set_value(1.0, skip_validation=True)
    for r in plan.contracts.itertuples():
        _set(m.sign, r.contract, 1.0 if r.signed else 0.0, "plan.contracts")
    for r in plan.site_events.itertuples():
        var = m.sell if r.event == "sale" else m.acq
        _set(var, (r.site, _period(data, r.month, "plan.site_events")), 1.0, "plan.site_events")
    financing.set_debt(m, data, plan, _period)
    # variables defined by the first stage, in period order
    for (s, t) in m.nb_index:
        m.nb[s, t].set_value(pyo.value(sites.nb(m, s, t - 1)) + (_v(m.conv[s, t]) if (s, t) in m.conv else 0.0), skip_validation=True)
    for (s, g, t) in m.gcum_index:
        prev = _v(m.gcum[s, g, t - 1]) if (s, g, t - 1) in m.gcum else 0.0
        m.gcum[s, g, t].set_value(prev + (_v(m.gx[s, g, t]) if (s, g, t) in m.gx else 0.0), skip_validation=True)
    for (s, b, t) in m.nbcum_index:
        prev = _v(m.nbcum[s, b, t - 1]) if (s, b, t - 1) in m.nbcum else 0.0
        m.nbcum[s, b, t].set_value(prev + (_v(m.nbuild[s, b, t]) if (s, b, t) in m.nbuild else 0.0), skip_validation=True)
    for (s, t) in m.own_index:
        prev = pyo.value(sites.own(m, s, t - 1))
        d = -_v(m.sell[s, t]) if (s, t) in m.sell else (_v(m.acq[s, t]) if (s, t) in m.acq else 0.0)
        m.own[s, t].set_value(prev + d, skip_validation=True)
    for (s, mod, t) in m.inst_index:
        m.inst[s, mod, t].set_value(0.0, skip_validation=True)
    for k in m.inst_index:  # fleet_balance rows: inst = prev + deliveries - retirements (in period order)
        con = m.fleet_balance[k]
        body = pyo.value(con.body) - _v(m.inst[k])  # body with inst[k] = 0 ... lin == prev
        m.inst[k].set_value(pyo.value(con.upper) - body, skip_validation=True)
    for k in m.hpc_gwh_index:  # hpc_energy rows: sum(...) - hpc_gwh == 0
        m.hpc_gwh[k].set_value(0.0, skip_validation=True)
        m.hpc_gwh[k].set_value(pyo.value(m.hpc_energy[k].body), skip_validation=True)
    for (s, t) in m.hpc_own_index:
        m.hpc_own[s, t].set_value(pyo.value(sites.hpc_racks(m, s, t)) * _v(m.own[s, t]), skip_validation=True)
    for (c, t) in m.signed_owned_index:
        site = data.inst.contracts[[x.id for x in data.inst.contracts].index(c)].site
        m.signed_owned[c, t].set_value(_v(m.sign[c]) * pyo.value(sites.own(m, site, t)), skip_validation=True)
    out = ComponentMap()
    defined = [m.nb, m.gcum, m.nbcum, m.own, m.inst, m.hpc_gwh, m.hpc_own, m.signed_owned]
    for var in first_stage + defined:
        for v in var.values():
            out[v] = _v(v)
    if plan.has_operations:
        _operations(m, data, plan, names, out)
    return out


def _operations(m, data: Data, plan: Plan, names: dict, out: ComponentMap) -> None:
    for v in m.op.values():
        v.set_value(0.0, skip_validation=True)
    for r in plan.operations.itertuples():
        if r.scenario in names:
            _set(m.op, (r.site, r.model, _period(data, r.month, "plan.operations"), names[r.scenario]), r.units / UNITS, "plan.operations")
    for v in m.op.values():
        out[v] = _v(v)
    for (s, w), e in getattr(m, "tmine_margin", {}).items():  # terminal mining floor: keep iff the margin pays
        val = pyo.value(e)
        m.tkeep[s, w].set_value(1.0 if val > 0 else 0.0, skip_validation=True)
        m.tmine[s, w].set_value(max(val, 0.0), skip_validation=True)
        out[m.tkeep[s, w]], out[m.tmine[s, w]] = _v(m.tkeep[s, w]), _v(m.tmine[s, w])
    if not len(plan.energy):
        return
    for var in (m.deliv, m.used, m.shortfall):
        for v in var.values():
            v.set_value(0.0, skip_validation=True)
    for r in plan.energy.itertuples():
        if r.scenario not in names:
            continue
        k = (r.contract, _period(data, r.month, "plan.energy"), names[r.scenario])
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
            q = c.take_or_pay_min_share * c.mw_cap * hours[t] / MWH * pyo.value(power.signed_and_owned(m, c, t))
            d = m.deliv[cid, t, w]
            if lift:  # the model takes at least the minimum and sells the rest back (never worse)
                d.set_value(max(_v(d), q), skip_validation=True)
            else:  # shortfall = max(0, minimum - delivered)
                m.shortfall[cid, t, w].set_value(max(0.0, q - _v(d)), skip_validation=True)
    for var in (m.deliv, m.used, m.shortfall):
        for v in var.values():
            out[v] = _v(v)
    for v in m.btc_sold.values():
        v.set_value(0.0, skip_validation=True)
    for r in plan.btc_sales.itertuples():
        if r.scenario in names:
            _set(m.btc_sold, (names[r.scenario], _period(data, r.month, "plan.btc_sales")), float(r.btc), "plan.btc_sales")
    for k in m.btc_held_index:  # treasury_balance: held - prev + sold - mined == 0, in period order
        m.btc_held[k].set_value(0.0, skip_validation=True)
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
            m.cash[k].set_value(-pyo.value(m.cash_balance[k].body), skip_validation=True)
    for var in [m.btc_sold, m.btc_held] + ([m.cash] if hasattr(m, "cash") else []):
        for v in var.values():
            out[v] = _v(v)
