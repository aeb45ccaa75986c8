"""HPC leases: signing, hand-over period and site(s), racks taken, lease cash flows.

Variables (commitments, at the node taking the commitments of tau; ``common.ik``): x[l,s,tau]
share of lease l handed over in period tau at site s (binary for unsplittable leases; in [0, 1]
for splittable ones, with y[l,tau] binary choosing the hand-over period). Combinations that can
never be delivered (site too small even fully converted and built, HPC racks (or a GPU cloud
contract's GPUs) not in service by tau at the earliest) get no variable. Rows that sum a lease's
hand-overs over time (signed at most once) hold along every path of the tree.

A lease's schedule (``economics.leases``) may differ by scenario (construction delays, holder-mode
renewals): its cash flows and its tenant's load are then registered per scenario, still linear in
the first-stage x; rack positions (and a GPU contract's GPUs) are reserved first stage for every
scenario's schedule. These levers (tranches, delays, credit, renewals, GPU contracts, tenant
capex and limits) are two-stage only (``instance.checks.check_levers_two_stage``).
"""

from __future__ import annotations

import math

import numpy as np
import pyomo.environ as pyo

from optimizer.economics.data import Data, lease_credit_price
from optimizer.model import sites
from optimizer.model.common import MWH, USD, Acc, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, register, rk


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
    inst, tree = data.inst, m.tree
    keys, y_keys = [], []
    m.lease_need = {}
    m.lease_taus = {}  # (lease, site) -> hand-over periods with a variable
    for l in inst.leases:
        ld = data.leases[l.id]
        taus_l: set[int] = set()
        for s in inst.eligible_sites(l):
            if l.gpu_option is not None:
                e = _earliest_gpu(m, data, l, s)
            else:
                need = data.lease_racks_needed[(l.id, s)]
                e = _earliest(m.site_info[s], need, data.first_tranche_racks(l.id, s), l.splittable)
            if e is None:
                continue
            m.lease_need[(l.id, s)] = data.lease_racks_needed[(l.id, s)]
            m.lease_taus[(l.id, s)] = [tau for tau in ld.handover_periods if tau >= e]
            keys += [ik(m, (l.id, s), tau, r) for tau in m.lease_taus[(l.id, s)] for r in tree.inv_reps(tau)]
            taus_l.update(m.lease_taus[(l.id, s)])
        if l.splittable:
            y_keys += [ik(m, (l.id,), tau, r) for tau in ld.handover_periods if tau in taus_l for r in tree.inv_reps(tau)]
    split = {l.id: l.splittable for l in inst.leases}
    m.x = add_vars(m, "x", keys, domain=lambda _m, *k: pyo.UnitInterval if split[k[0]] else pyo.Binary)
    m.x_at = {k: m.x[k] for k in keys}  # xvar's one lookup (it runs ~770k times on the large benchmark)
    m.y = add_vars(m, "y", y_keys, pyo.Binary)
    lease_once(m, data)
    lease_racks(m, data)
    lease_conversion_rounding(m, data)
    lease_needs_ownership(m, data)
    tenant_limits(m, data)
    hpc_energy(m, data)
    _cashflows(m, data)


def xvar(m, l: str, s: str, tau: int, r: int):
    """x of lease l at site s handed over in tau, on scenario r's path (None: no such variable)."""
    return m.x_at.get(ik(m, (l, s), tau, r))


def lease_once(m, data: Data) -> None:
    """Unsplittable: sum_{s,tau} x[l,s,tau] <= 1. Splittable: sum_s x[l,s,tau] = y[l,tau],
    sum_tau y[l,tau] <= 1. On a tree the sums run along each path."""
    tree = m.tree
    once, split = {}, {}
    for l in data.inst.leases:
        sites_l = [s for (ll, s) in m.lease_taus if ll == l.id]
        taus = sorted({tau for s in sites_l for tau in m.lease_taus[(l.id, s)]})
        if not taus:
            continue
        if l.splittable:
            for tau in taus:
                for r in tree.inv_reps(tau):
                    xs = [x for x in (xvar(m, l.id, s, tau, r) for s in sites_l) if x is not None]
                    split[rk(m, (l.id, tau), r)] = lin([1.0] * len(xs) + [-1.0], xs + [m.y[ik(m, (l.id,), tau, r)]]) == 0
            if len(taus) > 1:
                for w in tree.path_reps(taus):
                    once[rk(m, l.id, w)] = sum(m.y[ik(m, (l.id,), tau, w)] for tau in taus) <= 1
        else:
            n = sum(len(m.lease_taus[(l.id, s)]) for s in sites_l)
            if n > 1:
                for w in tree.path_reps(taus):
                    xs = [xvar(m, l.id, s, tau, w) for s in sites_l for tau in m.lease_taus[(l.id, s)]]
                    once[rk(m, l.id, w)] = lin([1.0] * len(xs), xs) <= 1
    add_constraints(m, "lease_once", once)
    add_constraints(m, "lease_split", split)


def _running(m, data: Data) -> dict:
    """(s, t) -> [(racks held, lease, hand-over tau, runs past the horizon)] of the leases that may hold racks there."""
    out: dict = {}
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        for tau in taus:
            need = data.lease_rack_need(l, s, tau)
            for t in need.nonzero()[0]:
                out.setdefault((s, int(t)), []).append((float(need[t]), l, tau, ld.runs_past_horizon[tau]))
    return out


def racks_taken(m, data: Data, s: str, t: int, r: int, past_horizon_only: bool = False):
    """Rack positions at s in t taken by running leases on scenario r's path (linear in x)."""
    rows = [(c, xvar(m, l, s, tau, r)) for c, l, tau, past in m.lease_running.get((s, t), []) if past or not past_horizon_only]
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
        g = gpu.expr((s, t))  # GPUs: two-stage only, keys (s, t)
        for r in m.tree.inv_reps(t):
            used = racks_taken(m, data, s, t, r)
            if not is_const(g):
                used = g if is_const(used) else used + g
            rows[rk(m, (s, t, "racks"), r)] = used <= sites.hpc_racks(m, s, t, r)
            o = sites.own(m, s, t, r)
            if not (is_const(o) and o == 1):
                rows[rk(m, (s, t, "owned"), r)] = used <= si.Hmax * o
    add_constraints(m, "lease_racks", rows)


def lease_conversion_rounding(m, data: Data) -> None:
    """Valid inequality tightening the LP: an unsplittable lease l handed over at s by t needs at
    least k = ceil((need_1 - H0) / rpb) blocks started by t - lead (blocks only accumulate;
    need_1 = the racks of its first tranche): k x sum_{tau <= t} x[l,s,tau] <= nb[s, t - lead], for
    t in l's hand-over window (later t are implied). Without it the LP converts need/rpb of a block
    for x = 1 and less for x < 1. Only at sites whose HPC racks come from conversions alone (a
    new-build option could supply the racks instead)."""
    leases = {l.id: l for l in data.inst.leases}
    rows = {}
    for (l, s), taus in m.lease_taus.items():
        si = m.site_info[s]
        lease = leases[l]
        first = data.first_tranche_racks(l, s)
        if lease.splittable or lease.gpu_option is not None or first <= si.H0 + 1e-9 or si.has_hpc_builds or si.rpb == 0 or not taus:
            continue
        k = math.ceil((first - si.H0) / si.rpb - 1e-9)
        taus = sorted(taus)
        for t in taus:
            for r in m.tree.inv_reps(t):
                b = sites.nb(m, s, t - si.lead, r)
                xs = [xvar(m, l, s, tau, r) for tau in taus if tau <= t]
                rows[rk(m, (l, s, t), r)] = lin([float(k)] * len(xs), xs) <= b
    add_constraints(m, "lease_conversion_rounding", rows)


def lease_needs_ownership(m, data: Data) -> None:
    """Valid inequality, per lease, at sites that may be sold or bought: the share of lease l
    holding capacity at s in t <= own(s,t). Implied at integer points by the aggregated
    `lease_racks[s,t,"owned"]` row but much tighter in the LP (Hmax x own vs need x own)."""
    rows = {}
    for (l, s), taus in m.lease_taus.items():
        if m.site_info[s].own_first is None:
            continue
        for tau in taus:
            for t in data.leases[l].reserved_any(tau).nonzero()[0]:
                rows.setdefault((l, s, int(t)), []).append(tau)
    out = {}
    for (l, s, t), taus in rows.items():
        for r in m.tree.inv_reps(t):
            xs = [xvar(m, l, s, tau, r) for tau in taus]
            out[rk(m, (l, s, t), r)] = lin([1.0] * len(xs), xs) <= sites.own(m, s, t, r)
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
    """hpc_gwh[s,t] = HPC load in GWh that is the same in every scenario below its node (leases with
    one schedule, GPUs in service; a commitment-node variable), one variable per (s,t) and node so
    that the per-scenario energy-balance and grid rows carry one term for it; m.hpc_gwh_w[(s,t,w)]:
    the load of leases whose schedule differs by scenario (expressions; two-stage only);
    m.credit_gwh[(key, price, item, w)]: the HPC GWh credited to the landlord (an expression, keyed
    by the hpc_gwh key; w None: in every scenario below the node, else in scenario w only):
    pass-through leases (item power_passthrough_usd) and after-power NOI margins (item opex_usd), at
    the site's energy price (price "site") or the market price ("market") (economics.md, "Leases").
    A GPU cloud contract's load is its GPUs' (counted with them)."""
    allg, credit, perw = Acc(), Acc(), Acc()
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        lease = ld.lease
        kind = lease_credit_price(lease)
        item = "power_passthrough_usd" if lease.power_passthrough else "opex_usd"
        for tau in taus:
            if not ld.varies(tau):
                c = _tenant_gwh(data, l, s, tau, None)
                for t in c.nonzero()[0]:
                    t = int(t)
                    for r in m.tree.inv_reps(t):
                        k, v = ik(m, (s,), t, r), xvar(m, l, s, tau, r)
                        if lease.gpu_option is None:
                            allg.add(k, float(c[t]), v)
                        if kind is not None:
                            credit.add((k, kind, item, None), float(c[t]), v)
                continue
            x = xvar(m, l, s, tau, 0)  # a schedule varying by scenario: two-stage only
            for w in range(data.W):
                c = _tenant_gwh(data, l, s, tau, w)
                for t in c.nonzero()[0]:
                    if lease.gpu_option is None:
                        perw.add((s, int(t), w), float(c[t]), x)
                    if kind is not None:
                        credit.add((ik(m, (s,), int(t), 0), kind, item, w), float(c[t]), x)
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
    inst, T, tree = data.inst, data.T, m.tree
    # (s, t, r, w) -> per-lease accumulator of rent / rate (rate-proportional); w None: the schedule of
    # every scenario below the node of (t, r); else scenario w's (two-stage only)
    rent: dict[tuple, Acc] = {}
    prepay: dict[tuple, Acc] = {}
    loss: dict[tuple, Acc] = {}
    opex_rate: dict[tuple, Acc] = {}
    opex_fix, pen, dmg, fund = Acc(), Acc(), Acc(), {}
    tnoi: dict[tuple, list] = {}  # (s, r at T-1) -> [(lease, tau, x)] of leases holding capacity past the horizon
    term = inst.horizon.terminal
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        lease = ld.lease
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for tau in taus:
            for w, sc in _scenario_groups(data, ld, tau):
                def reps(t: int, w=w) -> list[int]:
                    return tree.inv_reps(t) if w is None else [w]
                for arr, target in ((sc.rent_usd, rent), (sc.prepayment_usd, prepay), (sc.credit_loss_usd, loss)):
                    for t in arr.nonzero()[0]:
                        for r in reps(int(t)):
                            target.setdefault((s, int(t), r, w), Acc()).add(l, float(arr[t]) * k, xvar(m, l, s, tau, r))
                if lease.noi_margin is not None and lease.prepayment_share > 0:
                    for t in sc.opex_rate_usd.nonzero()[0]:
                        for r in reps(int(t)):
                            opex_rate.setdefault((s, int(t), r, w), Acc()).add(l, float(sc.opex_rate_usd[t]) * k, xvar(m, l, s, tau, r))
                if lease.noi_margin is None:
                    for t in sc.opex_usd.nonzero()[0]:
                        for r in reps(int(t)):
                            opex_fix.add((s, int(t), r, w), -float(sc.opex_usd[t]) / USD, xvar(m, l, s, tau, r))
                for t in sc.damages_usd.nonzero()[0]:
                    for r in reps(int(t)):
                        dmg.add((s, int(t), r, w), -float(sc.damages_usd[t]) / USD, xvar(m, l, s, tau, r))
            if term.lease_remaining_noi and ld.runs_past_horizon[tau]:
                for r in tree.inv_reps(T - 1):
                    tnoi.setdefault((s, r), []).append((l, tau, xvar(m, l, s, tau, r)))
            late = ld.months_late[tau]
            if late > 0:
                for r in tree.inv_reps(tau):
                    pen.add((s, tau, r), -lease.late_penalty_usd_per_mw_month * lease.it_mw * late / USD, xvar(m, l, s, tau, r))
            if lease.tenant_capex_share > 0:  # two-stage only
                src = data.tenant_capex(lease, s)
                if src is not None:
                    _, lead, asset, bid = src
                    f = data.tenant_capex_fractions(tau, lead)
                    v = xvar(m, l, s, tau, 0)
                    for t in f.nonzero()[0]:
                        fund.setdefault((s, int(t), asset, bid), []).append((lease.tenant_capex_share * lease.it_mw * float(f[t]) / USD, v))
    margin = {l.id: l.noi_margin for l in inst.leases}
    prepaid = {l.id: l.prepayment_share > 0 for l in inst.leases}

    def at(t: int, r: int, w):
        """The node of a term: the commitment node of (t, r), or scenario w's operations node."""
        return inv_at(m, t, r) if w is None else w
    for (s, t, r, w), acc in rent.items():
        per_lease = [(l, m.lease_rate[l] * e) for l, e in acc.items()]
        register(m, "lease_revenue_usd", s, t, at(t, r, w), sum(e for _, e in per_lease))
        # NOI-margin leases without a prepayment: opex = (1 - margin) x rent, the same expression scaled
        opex = [-(1.0 - margin[l]) * e for l, e in per_lease if margin[l] is not None and margin[l] < 1 and not prepaid[l]]
        if opex:
            register(m, "opex_usd", s, t, at(t, r, w), sum(opex))
    for (s, t, r, w), acc in opex_rate.items():
        register(m, "opex_usd", s, t, at(t, r, w), sum(-m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, r, w), acc in prepay.items():
        register(m, "lease_prepayment_usd", s, t, at(t, r, w), sum(m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, r, w), acc in loss.items():
        register(m, "tenant_credit_loss_usd", s, t, at(t, r, w), sum(-m.lease_rate[l] * e for l, e in acc.items()))
    for (s, t, r, w), e in opex_fix.items():
        register(m, "opex_usd", s, t, at(t, r, w), e)
    for (s, t, r, w), e in dmg.items():
        register(m, "lease_delay_damages_usd", s, t, at(t, r, w), e)
    for (s, t, r), e in pen.items():
        register(m, "lease_penalty_usd", s, t, inv_at(m, t, r), e)
    for (s, t, asset, bid), pairs in fund.items():
        price = m.capex_per_mw[s] if bid is None else m.build_capex_per_mw[s, bid]
        register(m, "tenant_capex_funding_usd", s, t, None, price * lin([c for c, _ in pairs], [v for _, v in pairs]), asset=asset)
    for (s, r), items in tnoi.items():
        # NOI after the horizon net of the site's fixed HPC opex and of the power the landlord still
        # bears: one Param per (lease, hand-over, site, scenario), Data.lease_terminal_usd; it reads
        # the scenario's prices, so it sits at each leaf below the node r holding the leases
        for w in tree.op_reps(T - 1):
            if tree.inv(T - 1, w) != r:
                continue
            register(m, "terminal_lease_noi_usd", s, T - 1, w,
                     lin([m.lease_terminal[l, tau, s, w] / USD for (l, tau, _v) in items], [v for (_l, _t, v) in items]))
    for (k, kind, item, wv), e in m.credit_gwh.items():
        (s,), t, r = isplit(m, k, 1)
        market = inst.site_by_id[s].market
        for w in tree.op_reps(t):
            if tree.inv(t, w) == r and (wv is None or wv == w):
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
    gpu = getattr(m, "gpu_racks", Acc())  # two-stage only, keys (s, t)
    past: dict[str, list] = {}  # s -> [(racks of tranche k, reversion, lease, tau)]; x on each leaf's path below
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        need = data.tranche_racks(ld.lease, s)
        for tau in taus:
            if not ld.runs_past_horizon[tau]:
                continue
            for k in range(len(need)):
                if ld.tranche_months_after[tau][k] > 0 and need[k] > 0:   # held past the end
                    past.setdefault(s, []).append((float(need[k]), m.lease_reversion[l, tau, k], l, tau))
    for si in m.site_info.values():
        if si.Hmax <= 0:
            continue
        s = si.id
        g = gpu.expr((s, T - 1))
        for w in m.tree.op_reps(T - 1):
            owned = sites.hpc_owned(m, s, T - 1, w)
            rows = [(need, rho, xvar(m, l, s, tau, w)) for need, rho, l, tau in past.get(s, [])]
            rows = [(need, rho, x) for need, rho, x in rows if x is not None]
            kept = lin([-need * (1.0 - rho) for need, rho, _x in rows], [x for _n, _r, x in rows]) if rows else 0.0
            racks = owned + kept
            if not is_const(g):
                racks = racks - g
            if is_const(racks) and racks == 0:
                continue
            mw = si.site.hpc_mw_per_rack * racks
            register(m, "terminal_hpc_usd", s, T - 1, w, (m.hpc_value[s, w] / USD) * mw)
