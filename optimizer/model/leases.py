"""HPC leases: signing, hand-over period and site(s), racks taken, lease cash flows.

Variables (commitments, at the node taking the commitments of tau; ``common.ik``): x[l,s,tau]
share of lease l handed over in period tau at site s (binary for unsplittable leases; in [0, 1]
for splittable ones, with y[l,tau] binary choosing the hand-over period). Combinations that can
never be delivered (site too small even fully converted, or HPC racks not online by tau at the
earliest) get no variable. Rows that sum a lease's hand-overs over time (signed at most once)
hold along every path of the tree.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.model import sites
from optimizer.model.common import MWH, USD, Acc, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, register, rk


def _earliest(si, need: float, splittable: bool) -> int | None:
    """First hand-over period at which site si could have the racks (None: never).
    A splittable lease needs only some HPC racks at a site; an unsplittable one all of ``need``."""
    if splittable:
        if si.Hmax <= 0:
            return None
        ready_now = si.H0 > 0
    else:
        if need > si.Hmax + 1e-9:
            return None
        ready_now = need <= si.H0 + 1e-9
    e = 0 if ready_now else (None if si.first_conv is None else si.first_conv + si.lead)
    if e is not None and not si.owned0:
        e = None if si.own_first is None else max(e, si.own_first)
    return e


def build(m, data: Data) -> None:
    inst, tree = data.inst, m.tree
    keys, y_keys = [], []
    m.lease_need = {}
    m.lease_taus = {}  # (lease, site) -> hand-over periods with a variable
    for l in inst.leases:
        ld = data.leases[l.id]
        taus_l: set[int] = set()
        for s in inst.eligible_sites(l):
            need = data.lease_racks_needed[(l.id, s)]
            e = _earliest(m.site_info[s], need, l.splittable)
            if e is None:
                continue
            m.lease_need[(l.id, s)] = need
            m.lease_taus[(l.id, s)] = [tau for tau in ld.handover_periods if tau >= e]
            keys += [ik(m, (l.id, s), tau, r) for tau in m.lease_taus[(l.id, s)] for r in tree.inv_reps(tau)]
            taus_l.update(m.lease_taus[(l.id, s)])
        if l.splittable:
            y_keys += [ik(m, (l.id,), tau, r) for tau in ld.handover_periods if tau in taus_l for r in tree.inv_reps(tau)]
    split = {l.id: l.splittable for l in inst.leases}
    m.x = add_vars(m, "x", keys, domain=lambda _m, *k: pyo.UnitInterval if split[k[0]] else pyo.Binary)
    m.y = add_vars(m, "y", y_keys, pyo.Binary)
    lease_once(m, data)
    lease_racks(m, data)
    lease_conversion_rounding(m, data)
    lease_needs_ownership(m, data)
    hpc_energy(m, data)
    _cashflows(m, data)


def xvar(m, l: str, s: str, tau: int, r: int):
    """x of lease l at site s handed over in tau, on scenario r's path (None: no such variable)."""
    k = ik(m, (l, s), tau, r)
    return m.x[k] if k in m.x else None


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
    """(s, t) -> [(racks taken, lease, hand-over tau, runs past the horizon)] of the leases that may run there."""
    out: dict = {}
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        for tau in taus:
            for t in ld.active[tau].nonzero()[0]:
                out.setdefault((s, int(t)), []).append((m.lease_need[(l, s)], l, tau, ld.runs_past_horizon[tau]))
    return out


def racks_taken(m, data: Data, s: str, t: int, r: int, past_horizon_only: bool = False):
    """Rack positions at s in t taken by running leases on scenario r's path (linear in x)."""
    rows = [(c, xvar(m, l, s, tau, r)) for c, l, tau, past in m.lease_running.get((s, t), []) if past or not past_horizon_only]
    return lin([c for c, _ in rows], [v for _, v in rows]) if rows else 0.0


def lease_racks(m, data: Data) -> None:
    """Racks taken by running leases <= hpc_racks[s,t]; <= Hmax x own[s,t] where the site
    may be sold or bought (an unowned site runs no lease)."""
    m.lease_running = _running(m, data)
    rows = {}
    for (s, t) in sorted(m.lease_running, key=lambda k: (list(m.site_info).index(k[0]), k[1])):
        si = m.site_info[s]
        for r in m.tree.inv_reps(t):
            used = racks_taken(m, data, s, t, r)
            rows[rk(m, (s, t, "racks"), r)] = used <= sites.hpc_racks(m, s, t, r)
            o = sites.own(m, s, t, r)
            if not (is_const(o) and o == 1):
                rows[rk(m, (s, t, "owned"), r)] = used <= si.Hmax * o
    add_constraints(m, "lease_racks", rows)


def lease_conversion_rounding(m, data: Data) -> None:
    """Valid inequality tightening the LP: an unsplittable lease l handed over at s by t needs at
    least k = ceil((need - H0) / rpb) blocks started by t - lead (blocks only accumulate):
    k x sum_{tau <= t} x[l,s,tau] <= nb[s, t - lead], for t in l's hand-over window (later t
    are implied). Without it the LP converts need/rpb of a block for x = 1 and less for x < 1."""
    import math

    split = {l.id: l.splittable for l in data.inst.leases}
    rows = {}
    for (l, s), taus in m.lease_taus.items():
        si = m.site_info[s]
        need = m.lease_need[(l, s)]
        if split[l] or need <= si.H0 + 1e-9 or not taus:
            continue
        k = math.ceil((need - si.H0) / si.rpb - 1e-9)
        taus = sorted(taus)
        for t in taus:
            for r in m.tree.inv_reps(t):
                b = sites.nb(m, s, t - si.lead, r)
                xs = [xvar(m, l, s, tau, r) for tau in taus if tau <= t]
                rows[rk(m, (l, s, t), r)] = lin([float(k)] * len(xs), xs) <= b
    add_constraints(m, "lease_conversion_rounding", rows)


def lease_needs_ownership(m, data: Data) -> None:
    """Valid inequality, per lease, at sites that may be sold or bought: the share of lease l
    running at s in t <= own(s,t). Implied at integer points by the aggregated
    `lease_racks[s,t,"owned"]` row but much tighter in the LP (Hmax x own vs need x own)."""
    rows = {}
    for (l, s), taus in m.lease_taus.items():
        if m.site_info[s].own_first is None:
            continue
        for tau in taus:
            for t in data.leases[l].active[tau].nonzero()[0]:
                rows.setdefault((l, s, int(t)), []).append(tau)
    out = {}
    for (l, s, t), taus in rows.items():
        for r in m.tree.inv_reps(t):
            xs = [xvar(m, l, s, tau, r) for tau in taus]
            out[rk(m, (l, s, t), r)] = lin([1.0] * len(xs), xs) <= sites.own(m, s, t, r)
    add_constraints(m, "lease_needs_ownership", out)


def hpc_energy(m, data: Data) -> None:
    """hpc_gwh[s,t] = HPC load in GWh (firm; a commitment-node variable), one variable per
    (s,t) and node so that the per-scenario energy-balance and grid rows carry one term for it;
    m.passthrough_gwh[key]: the pass-through part (an expression, for the pass-through line)."""
    allg, pt = Acc(), Acc()
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        lease = ld.lease
        pue = data.inst.site_by_id[s].pue_hpc
        for tau in taus:
            h = ld.active_hours[tau]
            for t in h.nonzero()[0]:
                t = int(t)
                c = lease.it_mw * pue * float(h[t]) / MWH
                for r in m.tree.inv_reps(t):
                    k, v = ik(m, (s,), t, r), xvar(m, l, s, tau, r)
                    allg.add(k, c, v)
                    if lease.power_passthrough:
                        pt.add(k, c, v)
    keys = list(allg.rows)
    m.hpc_gwh = add_vars(m, "hpc_gwh", keys, pyo.NonNegativeReals)
    rows = {}
    for k in keys:
        c, v, _ = allg.rows[k]
        rows[k] = lin(c + [-1.0], v + [m.hpc_gwh[k]]) == 0
    add_constraints(m, "hpc_energy", rows)
    m.passthrough_gwh = dict(pt.items())


def _cashflows(m, data: Data) -> None:
    inst, T, tree = data.inst, data.T, m.tree
    rent: dict[tuple, Acc] = {}  # (s, t, r) -> per-lease accumulator of rent / rate (rate-proportional)
    opex_fix, pen = Acc(), Acc()
    tnoi: dict[tuple, list] = {}  # (s, r at T-1) -> [(lease, tau, x)]
    term = inst.horizon.terminal
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        lease = ld.lease
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for tau in taus:
            r_usd, ox = ld.rent_usd[tau], ld.opex_usd[tau]
            for t in r_usd.nonzero()[0]:
                for r in tree.inv_reps(int(t)):
                    rent.setdefault((s, int(t), r), Acc()).add(l, float(r_usd[t]) * k, xvar(m, l, s, tau, r))
            if lease.noi_margin is None:
                for t in ox.nonzero()[0]:
                    for r in tree.inv_reps(int(t)):
                        opex_fix.add((s, int(t), r), -float(ox[t]) / USD, xvar(m, l, s, tau, r))
            late = ld.months_late[tau]
            if late > 0:
                for r in tree.inv_reps(tau):
                    pen.add((s, tau, r), -lease.late_penalty_usd_per_mw_month * lease.it_mw * late / USD, xvar(m, l, s, tau, r))
            if term.lease_remaining_noi and ld.runs_past_horizon[tau]:
                for r in tree.inv_reps(T - 1):
                    tnoi.setdefault((s, r), []).append((l, tau, xvar(m, l, s, tau, r)))
    margin = {l.id: l.noi_margin for l in inst.leases}
    for (s, t, r), acc in rent.items():
        per_lease = [(l, m.lease_rate[l] * e) for l, e in acc.items()]
        node = inv_at(m, t, r)
        register(m, "lease_revenue_usd", s, t, node, sum(e for _, e in per_lease))
        # NOI-margin leases: opex = (1 - margin) x rent, the same expression scaled
        opex = [-(1.0 - margin[l]) * e for l, e in per_lease if margin[l] is not None and margin[l] < 1]
        if opex:
            register(m, "opex_usd", s, t, node, sum(opex))
    for (s, t, r), e in opex_fix.items():
        register(m, "opex_usd", s, t, inv_at(m, t, r), e)
    for (s, t, r), e in pen.items():
        register(m, "lease_penalty_usd", s, t, inv_at(m, t, r), e)
    for (s, r), items in tnoi.items():
        register(m, "terminal_lease_noi_usd", s, T - 1, inv_at(m, T - 1, r),
                 sum((m.lease_terminal_noi[l, tau] / USD) * v for (l, tau, v) in items))
        # leases without pass-through: power after the horizon at the last period's market price
        site = inst.site_by_id[s]
        own_power = [(l, tau) for (l, tau, _) in items if not data.leases[l].lease.power_passthrough]
        if own_power:
            for w in tree.op_reps(T - 1):
                if tree.inv(T - 1, w) != r:
                    continue
                mwh = [(data.leases[l].lease.it_mw * site.pue_hpc / USD * m.lease_terminal_hours[l, tau], xvar(m, l, s, tau, w))
                       for (l, tau) in own_power]
                p = m.power_price[site.market, w, T - 1]
                register(m, "terminal_lease_noi_usd", s, T - 1, w, -p * sum(c * v for c, v in mwh))
    for k, e in m.passthrough_gwh.items():
        (s,), t, r = isplit(m, k, 1)
        market = inst.site_by_id[s].market
        for w in tree.op_reps(t):
            if tree.inv(t, w) == r:
                register(m, "power_passthrough_usd", s, t, w, (m.power_price[market, w, t] * (MWH / USD)) * e)
    _terminal_hpc(m, data)


def _terminal_hpc(m, data: Data) -> None:
    """Unleased HPC MW at the end x NOI/MW-year / cap rate x idx[w,T-1]; 'unleased' = owned HPC
    racks minus racks taken by leases running past the horizon, times kW per rack."""
    term = data.inst.horizon.terminal
    if term.hpc_unleased_noi_usd_per_mw_year <= 0:
        return
    T = data.T
    per_mw = term.hpc_unleased_noi_usd_per_mw_year / term.hpc_cap_rate / USD
    for si in m.site_info.values():
        if si.Hmax <= 0:
            continue
        s = si.id
        for w in m.tree.op_reps(T - 1):
            owned = sites.hpc_owned(m, s, T - 1, w)
            taken = racks_taken(m, data, s, T - 1, w, past_horizon_only=True)
            racks = owned - taken
            if is_const(racks) and racks == 0:
                continue
            mw = si.site.hpc_mw_per_rack * racks
            register(m, "terminal_hpc_usd", s, T - 1, w, (m.hpc_index[w] * per_mw) * mw)
