"""Power: contracts (fixed with take-or-pay and sell-back, index, owned generation, optional
signing), the site energy balance and the grid interconnect. An owned plant may burn a fuel on a
price path (fuel_cost_usd), earn capacity revenue, feed other sites and carry assumed debt.

Variables (energy in GWh): sign[c] (binary, optional contracts; a commitment of the contract's
start period: one per node taking the commitments of that period, ``sign[c, rep]`` on a staged
tree), signed_owned[c,t] (sign x own, exact McCormick; only for optional contracts at sites that
may be sold or bought), and per operations node deliv[c,t,w] (fixed: delivered; index: taken;
owned generation: generated), used[c,t,w] (only where energy may be sold back / exported, or a
plant feeds other sites; else used = deliv), shortfall[c,t,w] (take-or-pay energy paid but not
delivered) and feed[c,s,t,w] (a plant's energy used at another site s it may feed; two-stage only).
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.instance.schema import FixedContract, IndexContract, OwnedGeneration
from optimizer.model import sites
from optimizer.model.common import MWH, USD, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, register, rk


def _periods(m, data: Data, c) -> list[int]:
    """Periods the contract can deliver: inside its term and the site not known to be unowned."""
    h = data.contracts[c.id].active_hours
    return [t for t in range(data.T) if h[t] > 0 and not (is_const(sites.own(m, c.site, t, 0)) and sites.own(m, c.site, t, 0) == 0)]


def take_minimum(data: Data, c) -> bool:
    """Take-or-pay with sell-back at a market whose price is never negative: taking at least the
    minimum and selling the rest back is never worse than paying for energy not taken, so the
    shortfall variable is dropped and delivered >= minimum instead (same optimum, smaller model)."""
    if not (isinstance(c, FixedContract) and c.take_or_pay_min_share > 0 and c.sell_back_allowed):
        return False
    return bool((data.site_power_price(c.site) >= 0).all())


def can_sell(c) -> bool:
    """Energy taken (fixed with sell-back) or generated (a plant that may export) and not used may be sold."""
    return (isinstance(c, FixedContract) and c.sell_back_allowed) or (isinstance(c, OwnedGeneration) and c.can_export)


def _has_used(c) -> bool:
    """A separate `used` variable: where energy may be sold, or a plant's energy may go to other sites."""
    return can_sell(c) or (isinstance(c, OwnedGeneration) and bool(c.feeds))


def build(m, data: Data) -> None:
    inst, tree = data.inst, m.tree
    m.contract_periods = {c.id: _periods(m, data, c) for c in inst.contracts}
    m.sign_period = {c.id: sign_period(data, c.id) for c in inst.contracts}
    m.sign = add_vars(m, "sign", [sign_key(m, c.id, r) for c in inst.contracts if c.optional
                                  for r in tree.inv_reps(m.sign_period[c.id])], pyo.Binary)
    so_keys = [ik(m, (c.id,), t, r) for c in inst.contracts if c.optional for t in m.contract_periods[c.id]
               if not is_const(sites.own(m, c.site, t, 0)) for r in tree.inv_reps(t)]
    m.signed_owned = add_vars(m, "signed_owned", so_keys, pyo.NonNegativeReals, ub=1)
    signed_owned_mccormick(m, data)
    d_keys, d_b, u_keys, k_keys = [], {}, [], []
    for c in inst.contracts:
        h = data.contracts[c.id].active_hours
        for t in m.contract_periods[c.id]:
            ub = _cap_gwh(m, data, c, t, h[t])
            for w in tree.op_reps(t):
                d_keys.append((c.id, t, w))
                d_b[(c.id, t, w)] = (0.0, ub)
                if _has_used(c):
                    u_keys.append((c.id, t, w))
                if isinstance(c, FixedContract) and c.take_or_pay_min_share > 0 and not take_minimum(data, c):
                    k_keys.append((c.id, t, w))
    m.deliv = add_vars(m, "deliv", d_keys, pyo.NonNegativeReals, bounds=d_b)
    m.used = add_vars(m, "used", u_keys, pyo.NonNegativeReals, bounds={k: d_b[k] for k in u_keys})
    m.shortfall = add_vars(m, "shortfall", k_keys, pyo.NonNegativeReals)
    f_keys, f_b = [], {}
    for c in inst.contracts:
        if not isinstance(c, OwnedGeneration):
            continue
        for s2 in c.feeds:
            for t in m.contract_periods[c.id]:
                o = sites.own(m, s2, t, 0)
                if is_const(o) and o == 0:
                    continue
                for w in tree.op_reps(t):
                    f_keys.append((c.id, s2, t, w))
                    f_b[(c.id, s2, t, w)] = d_b[(c.id, t, w)]
    m.feed = add_vars(m, "feed", f_keys, pyo.NonNegativeReals, bounds=f_b)
    m.feeds_of = {}  # (c, t, w) -> [feed vars]; (s, t, w) -> [feed vars into s]
    m.feeds_into = {}
    for (cid, s2, t, w) in f_keys:
        m.feeds_of.setdefault((cid, t, w), []).append(m.feed[cid, s2, t, w])
        m.feeds_into.setdefault((s2, t, w), []).append(m.feed[cid, s2, t, w])
    contract_delivery(m, data)
    take_or_pay(m, data)
    energy_balance(m, data)
    grid_interconnect(m, data)
    _cashflows(m, data)


# ---------------------------------------------------------------- helpers


def sign_period(data: Data, cid: str) -> int:
    """The period whose commitments include signing contract ``cid``: its start period (the
    horizon start for a contract already running)."""
    return min(max(data.contracts[cid].start_period, 0), data.T - 1)


def sign_key(m, cid: str, r: int):
    """Index of sign for contract ``cid`` on scenario r's path: ``cid`` in the two-stage form,
    ``(cid, rep)`` on a staged tree."""
    return cid if m.tree.two_stage else (cid, m.tree.inv(m.sign_period[cid], r))


def sign_var(m, cid: str, r: int):
    return m.sign[sign_key(m, cid, r)]


def signed_and_owned(m, c, t: int, r: int):
    """1 / sign[c] / own[s,t] / signed_owned[c,t]: whether contract c may deliver in t (on r's path)."""
    o = sites.own(m, c.site, t, r)
    if is_const(o):
        return (sign_var(m, c.id, r) if c.optional else 1) if o else 0
    return m.signed_owned[ik(m, (c.id,), t, r)] if c.optional else o


def used_var(m, cid: str, t: int, w: int):
    return m.used[cid, t, w] if (cid, t, w) in m.used else m.deliv[cid, t, w]


def _cap_gwh(m, data: Data, c, t: int, hours: float) -> float:
    if isinstance(c, FixedContract):
        mw = c.mw_cap
    elif isinstance(c, OwnedGeneration):
        mw = data.lev.plants[c.id].cap_mw  # mw x availability
    else:
        mw = c.mw_cap if c.mw_cap is not None else sites.max_grid_mw(m, c.site)
    return mw * hours / MWH


# ---------------------------------------------------------------- constraints


def signed_owned_mccormick(m, data: Data) -> None:
    """signed_owned = sign x own for binaries: <= sign, <= own, >= sign + own - 1."""
    rows = {}
    cons = {c.id: c for c in data.inst.contracts}
    for k in m.signed_owned_index:
        (cid,), t, r = isplit(m, k, 1)
        o, z, p = sites.own(m, cons[cid].site, t, r), sign_var(m, cid, r), m.signed_owned[k]
        rows[rk(m, (cid, t, "sign"), r)] = p <= z
        rows[rk(m, (cid, t, "own"), r)] = p <= o
        rows[rk(m, (cid, t, "both"), r)] = p >= z + o - 1
    add_constraints(m, "signed_owned_mccormick", rows)


def contract_delivery(m, data: Data) -> None:
    """deliv <= cap x hours x (signed and owned); used (+ energy fed to other sites) <= deliv where
    energy can be sold back or exported, = deliv for a plant that feeds other sites but cannot export."""
    rows, used = {}, {}
    for c in data.inst.contracts:
        h = data.contracts[c.id].active_hours
        for t in m.contract_periods[c.id]:
            cap = _cap_gwh(m, data, c, t, h[t])
            for w in m.tree.op_reps(t):
                so = signed_and_owned(m, c, t, w)
                d = m.deliv[c.id, t, w]
                if not is_const(so):
                    rows[(c.id, t, w)] = d <= cap * so
                if (c.id, t, w) in m.used:
                    fs = m.feeds_of.get((c.id, t, w), [])
                    lhs = lin([1.0] * (1 + len(fs)), [m.used[c.id, t, w], *fs]) if fs else m.used[c.id, t, w]
                    used[(c.id, t, w)] = lhs <= d if can_sell(c) else lhs == d
    add_constraints(m, "contract_delivery", rows)
    add_constraints(m, "used_le_delivered", used)


def take_or_pay(m, data: Data) -> None:
    """shortfall + delivered >= min_share x cap x hours x (signed and owned); where `take_minimum`
    holds there is no shortfall: delivered >= the minimum (a bound when signed-and-owned is 1)."""
    rows = {}
    for c in data.inst.contracts:
        if not (isinstance(c, FixedContract) and c.take_or_pay_min_share > 0):
            continue
        h = data.contracts[c.id].active_hours
        for t in m.contract_periods[c.id]:
            q = c.take_or_pay_min_share * c.mw_cap * h[t] / MWH
            for w in m.tree.op_reps(t):
                so = signed_and_owned(m, c, t, w)
                d = m.deliv[c.id, t, w]
                if (c.id, t, w) in m.shortfall:
                    rows[(c.id, t, w)] = m.shortfall[c.id, t, w] + d >= q * so
                elif is_const(so):
                    d.setlb(q * so)
                else:
                    rows[(c.id, t, w)] = d >= q * so
    add_constraints(m, "take_or_pay", rows)


def _load(m, s: str, t: int, w: int, sign: float = 1.0) -> tuple[list, list]:
    """Site load in GWh (mining + HPC: the first-stage hpc_gwh and, for leases whose schedule
    differs by scenario, their scenario-w load) as (coefs x sign, vars)."""
    r = m.mining_gwh.rows.get((s, t, w))
    coefs, vs = ([sign * a for a in r[0]], list(r[1])) if r is not None else ([], [])
    k = ik(m, (s,), t, w)
    if k in m.hpc_gwh:
        coefs.append(sign)
        vs.append(m.hpc_gwh[k])
    rw = m.hpc_gwh_w.rows.get((s, t, w))
    if rw is not None:
        coefs += [sign * a for a in rw[0]]
        vs += list(rw[1])
    return coefs, vs


def energy_balance(m, data: Data) -> None:
    """Energy used from the site's contracts (+ energy fed by plants of other sites) = mining GWh
    - GWh curtailment saves + HPC GWh, per (s,t,w)."""
    by_site: dict[str, list] = {}
    for c in data.inst.contracts:
        by_site.setdefault(c.site, []).append(c)
    rows = {}
    for site in data.inst.sites:
        s = site.id
        for t in range(data.T):
            for w in m.tree.op_reps(t):
                coefs, vs = _load(m, s, t, w, -1.0)
                for c in by_site.get(s, []):
                    if (c.id, t, w) in m.deliv:
                        coefs.append(1.0)
                        vs.append(used_var(m, c.id, t, w))
                for v in m.feeds_into.get((s, t, w), []):
                    coefs.append(1.0)
                    vs.append(v)
                r = m.curtailed_gwh.rows.get((s, t, w))
                if r is not None:
                    coefs += list(r[0])
                    vs += list(r[1])
                if vs:
                    rows[(s, t, w)] = lin(coefs, vs) == 0
    add_constraints(m, "energy_balance", rows)


def _max_load_mw(m, data: Data, s: str) -> float:
    site = data.inst.site_by_id[s]
    si = m.site_info[s]
    w_max = max([data.inst.model_by_name[mod].power_w for (ss, mod) in m.fleet_pairs if ss == s], default=0.0)
    mining = site.asics_per_rack * si.Rmax * w_max * site.pue_mining / 1e6
    hpc = si.Hmax * site.hpc_mw_per_rack * site.pue_hpc
    return mining + hpc


def grid_interconnect(m, data: Data) -> None:
    """Mining GWh + HPC GWh <= (grid MW + expansions online) x hours; skipped where the site's
    largest possible load fits the base interconnect."""
    rows = {}
    for site in data.inst.sites:
        s = site.id
        if _max_load_mw(m, data, s) <= site.grid_interconnect_mw * (1 - 1e-12):
            continue
        for t in range(data.T):
            hk = float(data.hours[t]) / MWH
            for w in m.tree.op_reps(t):
                coefs, vs = _load(m, s, t, w)
                if vs:
                    rows[(s, t, w)] = lin(coefs, vs) <= hk * sites.grid_mw(m, s, t, w)
    add_constraints(m, "grid_interconnect", rows)


# ---------------------------------------------------------------- cash flows


def _cashflows(m, data: Data) -> None:
    inst, tree = data.inst, m.tree
    k = MWH / USD
    for c in inst.contracts:
        cd = data.contracts[c.id]
        s, market = c.site, inst.site_by_id[c.site].market
        sp = sign_period(data, c.id)
        for r in tree.inv_reps(sp):
            z = sign_var(m, c.id, r) if c.optional else 1
            # fees and the plant's price fall in the start period (a later start than the horizon's)
            if c.signing_fee_usd > 0:
                register(m, "contract_fees_usd", s, cd.start_period, inv_at(m, cd.start_period, r), -c.signing_fee_usd / USD * z)
            if isinstance(c, OwnedGeneration) and c.optional and c.acquisition_price_usd > 0:
                register(m, "acquisitions_usd", s, cd.start_period, inv_at(m, cd.start_period, r), -c.acquisition_price_usd / USD * z,
                         asset="owned_generation")
        if (isinstance(c, OwnedGeneration) and c.residual_value_usd > 0 and cd.runs_to_horizon_end
                and data.T - 1 in m.contract_periods[c.id]):
            for r in tree.inv_reps(data.T - 1):
                register(m, "terminal_generation_usd", s, data.T - 1, inv_at(m, data.T - 1, r),
                         c.residual_value_usd / USD * signed_and_owned(m, c, data.T - 1, r))
        pd_ = data.lev.plants.get(c.id)
        if pd_ is not None and pd_.debt is not None:  # levers: two-stage only (instance.checks)
            _assumed_debt(m, data, c, pd_, sign_var(m, c.id, 0) if c.optional else 1)
        for t in m.contract_periods[c.id]:
            if isinstance(c, OwnedGeneration) and c.fixed_cost_usd_per_month > 0:
                for r in tree.inv_reps(t):
                    so = signed_and_owned(m, c, t, r)
                    register(m, "power_cost_usd", s, t, inv_at(m, t, r), -c.fixed_cost_usd_per_month * float(cd.months_active[t]) / USD * so)
            if pd_ is not None and pd_.capacity_usd[t] > 0:
                for r in tree.inv_reps(t):
                    register(m, "capacity_revenue_usd", s, t, inv_at(m, t, r),
                             float(pd_.capacity_usd[t]) / USD * signed_and_owned(m, c, t, r))
            for w in tree.op_reps(t):
                d = m.deliv[c.id, t, w]
                pi = m.power_price[market, w, t]
                if isinstance(c, FixedContract):
                    p = float(cd.price_usd_per_mwh[t]) * k
                    cost = lin([-p, -p], [d, m.shortfall[c.id, t, w]]) if (c.id, t, w) in m.shortfall else lin([-p], [d])
                    register(m, "power_cost_usd", s, t, w, cost)
                elif isinstance(c, IndexContract):
                    register(m, "power_cost_usd", s, t, w, (-(pi + c.adder_usd_per_mwh) * k) * d)
                else:
                    register(m, "power_cost_usd", s, t, w, lin([-c.variable_cost_usd_per_mwh * k], [d]))
                    if c.fuel is not None:
                        register(m, "fuel_cost_usd", s, t, w, (-c.heat_rate_mmbtu_per_mwh * k * m.fuel_price[c.fuel, w, t]) * d)
                if (c.id, t, w) in m.used and can_sell(c):
                    fs = m.feeds_of.get((c.id, t, w), [])
                    register(m, "power_sold_usd", s, t, w, (pi * k) * lin([1.0, -1.0] + [-1.0] * len(fs), [d, m.used[c.id, t, w], *fs]))


def _assumed_debt(m, data: Data, c, pd_, z) -> None:
    """The debt assumed with an optional plant, x sign[c]: drawn in the purchase period (it pays that
    part of the price), then interest and principal of its schedule, the balance owed at the end."""
    s, T, debt = c.site, data.T, pd_.debt
    register(m, "debt_draws_usd", s, pd_.debt_period, None, c.assumed_debt.principal_usd / USD * z)
    for t in range(T):
        if debt.interest[t]:
            register(m, "interest_usd", s, t, None, -float(debt.interest[t]) / USD * z)
        if debt.principal[t]:
            register(m, "principal_usd", s, t, None, -float(debt.principal[t]) / USD * z)
    if debt.end_balance:
        register(m, "terminal_debt_usd", s, T - 1, None, -debt.end_balance / USD * z)
