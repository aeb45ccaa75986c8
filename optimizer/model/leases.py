"""HPC leases: signing, hand-over period and site(s), racks taken, lease cash flows.

Variables (first stage): x[l,s,tau] share of lease l handed over in period tau at site s
(binary for unsplittable leases; in [0, 1] for splittable ones, with y[l,tau] binary choosing
the hand-over period). Combinations that can never be delivered (site too small even fully
converted and built, HPC racks (or a GPU cloud contract's GPUs) not in service by tau at the
earliest) get no variable.

A lease's schedule (``economics.leases``) may differ by scenario (construction delays, holder-mode
renewals): its cash flows and its tenant's load are then registered per scenario, still linear in
the first-stage x; rack positions (and a GPU contract's GPUs) are reserved first stage for every
scenario's schedule.
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from optimizer.economics.data import Data, lease_credit_price
from optimizer.model import sites
from optimizer.model.common import MWH, USD, Acc, add_constraints, add_vars, is_const, lin, register


def _ready(si) -> int | None:
    """First period new HPC racks can be in service at site si (conversion or new build; None: never)."""
    cands = [] if si.first_conv is None else [si.first_conv + si.lead]
    cands += [ps[0] + b.lead for b in si.builds if b.use == "hpc" for ps in [si.build_periods.get(b.option.id)] if ps]
    return min(cands) if cands else None


def _earliest(si, need: float, first: float, splittable: bool) -> int | None:
    """First hand-over period at which site si could have the racks (None: never).
    A splittable lease needs only some HPC racks at a site; an unsplittable one all of ``need``
    (``first``: the racks of its first tranche, needed at the hand-over)."""
    if splittable:
        if si.Hmax <= 0:
            return None
        ready_now = si.H0 > 0
    else:
        if need > si.Hmax + 1e-9:
            return None
        ready_now = first <= si.H0 + 1e-9
    e = 0 if ready_now else _ready(si)
    if e is not None and not si.owned0:
        e = None if si.own_first is None else max(e, si.own_first)
    return e


def _earliest_gpu(m, data: Data, l, s: str) -> int | None:
    """First hand-over period a GPU cloud contract could be covered at s (GPUs of its option in
    service there); None when the site cannot host its MW of GPUs or buy them."""
    si = m.site_info[s]
    if l.it_mw > si.Hmax * si.kw / 1000.0 + 1e-9:
        return None
    us = [u for (o, ss, u) in m.gbuy_index if o == l.gpu_option and ss == s]
    if not us:
        return None
    return min(us) + data.gpus[l.gpu_option].lead


def build(m, data: Data) -> None:
    inst = data.inst
    keys, y_keys = [], []
    m.lease_need = {}
    for l in inst.leases:
        ld = data.leases[l.id]
        for s in inst.eligible_sites(l):
            if l.gpu_option is not None:
                e = _earliest_gpu(m, data, l, s)
            else:
                need = data.lease_racks_needed[(l.id, s)]
                e = _earliest(m.site_info[s], need, data.first_tranche_racks(l.id, s), l.splittable)
            if e is None:
                continue
            m.lease_need[(l.id, s)] = data.lease_racks_needed[(l.id, s)]
            keys += [(l.id, s, tau) for tau in ld.handover_periods if tau >= e]
        if l.splittable:
            taus = {k[2] for k in keys if k[0] == l.id}
            y_keys += [(l.id, tau) for tau in ld.handover_periods if tau in taus]
    split = {l.id: l.splittable for l in inst.leases}
    m.x = add_vars(m, "x", keys, domain=lambda _m, l, s, tau: pyo.UnitInterval if split[l] else pyo.Binary)
    m.y = add_vars(m, "y", y_keys, pyo.Binary)
    lease_once(m, data)
    lease_racks(m, data)
    lease_conversion_rounding(m, data)
    lease_needs_ownership(m, data)
    tenant_limits(m, data)
    hpc_energy(m, data)
    _cashflows(m, data)


def lease_once(m, data: Data) -> None:
    """Unsplittable: sum_{s,tau} x[l,s,tau] <= 1. Splittable: sum_s x[l,s,tau] = y[l,tau],
    sum_tau y[l,tau] <= 1."""
    by_lease: dict[str, list] = {}
    for k in m.x_index:
        by_lease.setdefault(k[0], []).append(k)
    once, split = {}, {}
    for l in data.inst.leases:
        ks = by_lease.get(l.id, [])
        if not ks:
            continue
        if l.splittable:
            taus = sorted({k[2] for k in ks})
            for tau in taus:
                kt = [k for k in ks if k[2] == tau]
                split[(l.id, tau)] = lin([1.0] * len(kt) + [-1.0], [m.x[k] for k in kt] + [m.y[l.id, tau]]) == 0
            if len(taus) > 1:
                once[l.id] = sum(m.y[l.id, tau] for tau in taus) <= 1
        elif len(ks) > 1:
            once[l.id] = lin([1.0] * len(ks), [m.x[k] for k in ks]) <= 1
    add_constraints(m, "lease_once", once)
    add_constraints(m, "lease_split", split)


def _running(m, data: Data) -> dict:
    """(s, t) -> [(racks held, x var, runs past the horizon)] of the leases that may hold racks there."""
    out: dict = {}
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        need = data.lease_rack_need(l, s, tau)
        for t in need.nonzero()[0]:
            out.setdefault((s, int(t)), []).append((float(need[t]), m.x[l, s, tau], ld.runs_past_horizon[tau]))
    return out


def racks_taken(m, data: Data, s: str, t: int, past_horizon_only: bool = False):
    """Rack positions at s in t taken by running leases (linear in x)."""
    rows = [(c, v) for c, v, past in m.lease_running.get((s, t), []) if past or not past_horizon_only]
    return lin([c for c, _ in rows], [v for _, v in rows]) if rows else 0.0


def lease_racks(m, data: Data) -> None:
    """Racks held by leases + racks of GPUs in service <= hpc_racks[s,t]; <= Hmax x own[s,t] where
    the site may be sold or bought (an unowned site runs no lease and holds no GPU)."""
    m.lease_running = _running(m, data)
    gpu = getattr(m, "gpu_racks", Acc())
    rows = {}
    keys = set(m.lease_running) | set(gpu.rows)
    order = list(m.site_info)
    for (s, t) in sorted(keys, key=lambda k: (order.index(k[0]), k[1])):
        si = m.site_info[s]
        used = racks_taken(m, data, s, t)
        g = gpu.expr((s, t))
        if not is_const(g):
            used = g if is_const(used) else used + g
        rows[(s, t, "racks")] = used <= sites.hpc_racks(m, s, t)
        o = sites.own(m, s, t)
        if not (is_const(o) and o == 1):
            rows[(s, t, "owned")] = used <= si.Hmax * o
    add_constraints(m, "lease_racks", rows)


def lease_conversion_rounding(m, data: Data) -> None:
    """Valid inequality tightening the LP: an unsplittable lease l handed over at s by t needs at
    least k = ceil((need_1 - H0) / rpb) blocks started by t - lead (blocks only accumulate;
    need_1 = the racks of its first tranche): k x sum_{tau <= t} x[l,s,tau] <= nb[s, t - lead], for
    t in l's hand-over window (later t are implied). Without it the LP converts need/rpb of a block
    for x = 1 and less for x < 1. Only at sites whose HPC racks come from conversions alone (a
    new-build option could supply the racks instead)."""
    by_ls: dict = {}
    for (l, s, tau) in m.x_index:
        by_ls.setdefault((l, s), []).append(tau)
    leases = {l.id: l for l in data.inst.leases}
    rows = {}
    for (l, s), taus in by_ls.items():
        si = m.site_info[s]
        lease = leases[l]
        first = data.first_tranche_racks(l, s)
        if lease.splittable or lease.gpu_option is not None or first <= si.H0 + 1e-9 or si.has_hpc_builds or si.rpb == 0:
            continue
        k = math.ceil((first - si.H0) / si.rpb - 1e-9)
        taus = sorted(taus)
        for t in taus:
            b = sites.nb(m, s, t - si.lead)
            xs = [m.x[l, s, tau] for tau in taus if tau <= t]
            rows[(l, s, t)] = lin([float(k)] * len(xs), xs) <= b
    add_constraints(m, "lease_conversion_rounding", rows)


def lease_needs_ownership(m, data: Data) -> None:
    """Valid inequality, per lease, at sites that may be sold or bought: the share of lease l
    holding capacity at s in t <= own(s,t). Implied at integer points by the aggregated
    `lease_racks[s,t,"owned"]` row but much tighter in the LP (Hmax x own vs need x own)."""
    rows = {}
    for (l, s, tau) in m.x_index:
        si = m.site_info[s]
        if si.own_first is None:
            continue
        for t in data.leases[l].reserved_any(tau).nonzero()[0]:
            rows.setdefault((l, s, int(t)), []).append(m.x[l, s, tau])
    out = {}
    for (l, s, t), xs in rows.items():
        o = sites.own(m, s, t)
        out[(l, s, t)] = lin([1.0] * len(xs), xs) <= o
    add_constraints(m, "lease_needs_ownership", out)


def tenant_limits(m, data: Data) -> None:
    """policy.tenant_limits: sum over the tenant's leases of it_mw x signed share <= max_it_mw;
    sum over its leases of R[l,tau] x <= max_rent_share x sum over every lease of R[l,tau] x, with
    R the probability-weighted rent (incl. prepayment, less expected default loss) inside the horizon."""
    lims = data.inst.policy.tenant_limits
    if not lims:
        return
    leases = {l.id: l for l in data.inst.leases}
    rent = {}
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        rent[(l, s, tau)] = float(np.sum(ld.expected(tau, data.prob).rate_usd)) / USD
    rows = {}
    for lim in lims:
        ks = [k for k in m.x_index if leases[k[0]].tenant_id == lim.tenant]
        if not ks:
            continue
        if lim.max_it_mw is not None:
            rows[(lim.tenant, "mw")] = lin([leases[k[0]].it_mw for k in ks], [m.x[k] for k in ks]) <= lim.max_it_mw
        if lim.max_rent_share is not None:
            mine = set(ks)
            coefs = [rent[k] * ((1.0 if k in mine else 0.0) - lim.max_rent_share) for k in m.x_index]
            rows[(lim.tenant, "rent")] = lin(coefs, [m.x[k] for k in m.x_index]) <= 0
    add_constraints(m, "tenant_limits", rows)


def _tenant_gwh(data: Data, l: str, s: str, tau: int, w: int | None):
    """[T] GWh coefficient of x[l,s,tau]: the tenant's IT load x PUE (scenario w's schedule, or the
    lease's one schedule for w None)."""
    ld = data.leases[l]
    sc = ld.sched[(tau, 0)] if w is None else ld.schedule(tau, w)
    pue = data.inst.site_by_id[s].pue_hpc
    out = np.zeros(data.T)
    for k, mw in enumerate(ld.tranche_mw):
        h = sc.hours[k]
        for t in h.nonzero()[0]:
            out[t] += float(mw) * pue * float(h[t]) / MWH
    return out


def hpc_energy(m, data: Data) -> None:
    """hpc_gwh[s,t] = first-stage HPC load in GWh (leases with one schedule, GPUs in service), one
    variable per (s,t) so that the per-scenario energy-balance and grid rows carry one term for it;
    m.hpc_gwh_w[(s,t,w)]: the load of leases whose schedule differs by scenario (expressions);
    m.credit_gwh[(s,t,w,price,item)]: the HPC GWh credited to the landlord (an expression):
    pass-through leases (item power_passthrough_usd) and after-power NOI margins (item opex_usd), at
    the site's energy price (price "site") or the market price ("market") (economics.md, "Leases").
    A GPU cloud contract's load is its GPUs' (counted with them)."""
    allg, credit, perw = Acc(), Acc(), Acc()
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        lease = ld.lease
        x = m.x[l, s, tau]
        kind = lease_credit_price(lease)
        item = "power_passthrough_usd" if lease.power_passthrough else "opex_usd"
        if not ld.varies(tau):
            c = _tenant_gwh(data, l, s, tau, None)
            for t in c.nonzero()[0]:
                if lease.gpu_option is None:
                    allg.add((s, int(t)), float(c[t]), x)
                if kind is not None:
                    for w in range(data.W):
                        credit.add((s, int(t), w, kind, item), float(c[t]), x)
            continue
        for w in range(data.W):
            c = _tenant_gwh(data, l, s, tau, w)
            for t in c.nonzero()[0]:
                if lease.gpu_option is None:
                    perw.add((s, int(t), w), float(c[t]), x)
                if kind is not None:
                    credit.add((s, int(t), w, kind, item), float(c[t]), x)
    gpu = getattr(m, "gpu_gwh", Acc())
    for k, (c, v, _) in gpu.rows.items():
        for a, var in zip(c, v):
            allg.add(k, a, var)
    keys = list(allg.rows)
    m.hpc_gwh = add_vars(m, "hpc_gwh", keys, pyo.NonNegativeReals)
    rows = {}
    for k in keys:
        c, v, _ = allg.rows[k]
        rows[k] = lin(c + [-1.0], v + [m.hpc_gwh[k]]) == 0
    add_constraints(m, "hpc_energy", rows)
    m.hpc_gwh_w = perw
    m.credit_gwh = dict(credit.items())


def _scenario_groups(data: Data, ld, tau: int):
    """[(scenario or None, schedule)]: one first-stage schedule, or one per scenario."""
    if not ld.varies(tau):
        return [(None, ld.sched[(tau, 0)])]
    return [(w, ld.schedule(tau, w)) for w in range(data.W)]


def _cashflows(m, data: Data) -> None:
    inst, T, W = data.inst, data.T, data.W
    rent: dict[tuple, Acc] = {}  # (s, t, w) -> per-lease accumulator of rent / rate (rate-proportional)
    prepay: dict[tuple, Acc] = {}
    loss: dict[tuple, Acc] = {}
    opex_rate: dict[tuple, Acc] = {}
    opex_fix, pen, dmg, fund = Acc(), Acc(), Acc(), {}
    tnoi: dict[str, list] = {}  # s -> [(l, tau, x)] of leases holding capacity past the horizon
    term = inst.horizon.terminal
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        lease = ld.lease
        v = m.x[l, s, tau]
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for w, sc in _scenario_groups(data, ld, tau):
            for arr, target in ((sc.rent_usd, rent), (sc.prepayment_usd, prepay), (sc.credit_loss_usd, loss)):
                for t in arr.nonzero()[0]:
                    target.setdefault((s, int(t), w), Acc()).add(l, float(arr[t]) * k, v)
            if lease.noi_margin is not None and lease.prepayment_share > 0:
                for t in sc.opex_rate_usd.nonzero()[0]:
                    opex_rate.setdefault((s, int(t), w), Acc()).add(l, float(sc.opex_rate_usd[t]) * k, v)
            if lease.noi_margin is None:
                for t in sc.opex_usd.nonzero()[0]:
                    opex_fix.add((s, int(t), w), -float(sc.opex_usd[t]) / USD, v)
            for t in sc.damages_usd.nonzero()[0]:
                dmg.add((s, int(t), w), -float(sc.damages_usd[t]) / USD, v)
        if term.lease_remaining_noi and ld.runs_past_horizon[tau]:
            tnoi.setdefault(s, []).append((l, tau, v))
        late = ld.months_late[tau]
        if late > 0:
            pen.add((s, tau), -lease.late_penalty_usd_per_mw_month * lease.it_mw * late / USD, v)
        if lease.tenant_capex_share > 0:
            src = data.tenant_capex(lease, s)
            if src is not None:
                _, lead, asset, bid = src
                f = data.tenant_capex_fractions(tau, lead)
                for t in f.nonzero()[0]:
                    fund.setdefault((s, int(t), asset, bid), []).append((lease.tenant_capex_share * lease.it_mw * float(f[t]) / USD, v))
    margin = {l.id: l.noi_margin for l in inst.leases}
    prepaid = {l.id: l.prepayment_share > 0 for l in inst.leases}
    for (s, t, w), acc in rent.items():
        per_lease = [(l, m.lease_rate[l] * e) for l, e in acc.items()]
        register(m, "lease_revenue_usd", s, t, w, sum(e for _, e in per_lease))
        # NOI-margin leases without a prepayment: opex = (1 - margin) x rent, the same expression scaled
        opex = [-(1.0 - margin[l]) * e for l, e in per_lease if margin[l] is not None and margin[l] < 1 and not prepaid[l]]
        if opex:
            register(m, "opex_usd", s, t, w, sum(opex))
    for (s, t, w), acc in opex_rate.items():
        register(m, "opex_usd", s, t, w, sum(-m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, w), acc in prepay.items():
        register(m, "lease_prepayment_usd", s, t, w, sum(m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, w), acc in loss.items():
        register(m, "tenant_credit_loss_usd", s, t, w, sum(-m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, w), e in opex_fix.items():
        register(m, "opex_usd", s, t, w, e)
    for (s, t, w), e in dmg.items():
        register(m, "lease_delay_damages_usd", s, t, w, e)
    for (s, t), e in pen.items():
        register(m, "lease_penalty_usd", s, t, None, e)
    for (s, t, asset, bid), pairs in fund.items():
        price = m.capex_per_mw[s] if bid is None else m.build_capex_per_mw[s, bid]
        register(m, "tenant_capex_funding_usd", s, t, None, price * lin([c for c, _ in pairs], [v for _, v in pairs]), asset=asset)
    for s, items in tnoi.items():
        # NOI after the horizon net of the site's fixed HPC opex and of the power the landlord still
        # bears: one Param per (lease, hand-over, site, scenario), Data.lease_terminal_usd
        for w in range(W):
            register(m, "terminal_lease_noi_usd", s, T - 1, w,
                     lin([m.lease_terminal[l, tau, s, w] / USD for (l, tau, _v) in items], [v for (_l, _t, v) in items]))
    for (s, t, w, kind, item), e in m.credit_gwh.items():
        market = inst.site_by_id[s].market
        price = m.site_price[s, w, t] if kind == "site" else m.power_price[market, w, t]
        register(m, item, s, t, w, (price * (MWH / USD)) * e)
    _terminal_hpc(m, data)


def _terminal_hpc(m, data: Data) -> None:
    """terminal_hpc_usd[s,w] = hpc_value[s,w] x kW/1000 x (owned HPC racks at T-1 - sum over the
    tranches of leases holding racks past the horizon of need_k x (1 - reversion[l,tau,k]) x
    x[l,s,tau] - racks of GPUs in service at the end): the unleased racks at the market value, the
    leased ones at the market value times the reversion factor of the months their tranche is
    still reserved (economics.md, "Terminal values"); GPUs in service are valued by their book value."""
    term = data.inst.horizon.terminal
    if term.hpc_unleased_noi_usd_per_mw_year <= 0:
        return
    T = data.T
    gpu = getattr(m, "gpu_racks", Acc())
    past: dict[str, list] = {}
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        if not ld.runs_past_horizon[tau]:
            continue
        need = data.tranche_racks(ld.lease, s)
        for k in range(len(need)):
            if ld.reserved[tau][k, T - 1] and need[k] > 0:
                past.setdefault(s, []).append((float(need[k]), m.lease_reversion[l, tau, k], m.x[l, s, tau]))
    for si in m.site_info.values():
        if si.Hmax <= 0:
            continue
        s = si.id
        owned = sites.hpc_owned(m, s, T - 1)
        rows = past.get(s, [])
        kept = lin([-need * (1.0 - rho) for need, rho, _x in rows], [x for _n, _r, x in rows]) if rows else 0.0
        racks = owned + kept
        g = gpu.expr((s, T - 1))
        if not is_const(g):
            racks = racks - g
        if is_const(racks) and racks == 0:
            continue
        mw = si.site.hpc_mw_per_rack * racks
        for w in range(data.W):
            register(m, "terminal_hpc_usd", s, T - 1, w, (m.hpc_value[s, w] / USD) * mw)
