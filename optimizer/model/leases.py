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

from optimizer.economics.data import Data, lease_credit_price
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
    m.credit_gwh[(key, price, item)]: the HPC GWh credited to the landlord (an expression, keyed
    by the hpc_gwh key): pass-through leases (item power_passthrough_usd) and after-power NOI
    margins (item opex_usd), at the site's energy price (price "site") or the market price
    ("market") (economics.md, "Leases")."""
    allg, credit = Acc(), Acc()
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        lease = ld.lease
        pue = data.inst.site_by_id[s].pue_hpc
        kind = lease_credit_price(lease)
        item = "power_passthrough_usd" if lease.power_passthrough else "opex_usd"
        for tau in taus:
            h = ld.active_hours[tau]
            for t in h.nonzero()[0]:
                t = int(t)
                c = lease.it_mw * pue * float(h[t]) / MWH
                for r in m.tree.inv_reps(t):
                    k, v = ik(m, (s,), t, r), xvar(m, l, s, tau, r)
                    allg.add(k, c, v)
                    if kind is not None:
                        credit.add((k, kind, item), c, v)
    keys = list(allg.rows)
    m.hpc_gwh = add_vars(m, "hpc_gwh", keys, pyo.NonNegativeReals)
    rows = {}
    for k in keys:
        c, v, _ = allg.rows[k]
        rows[k] = lin(c + [-1.0], v + [m.hpc_gwh[k]]) == 0
    add_constraints(m, "hpc_energy", rows)
    m.credit_gwh = dict(credit.items())


def _cashflows(m, data: Data) -> None:
    inst, T, tree = data.inst, data.T, m.tree
    rent: dict[tuple, Acc] = {}  # (s, t, r) -> per-lease accumulator of rent / rate (rate-proportional)
    opex_fix, pen = Acc(), Acc()
    tnoi: dict[tuple, list] = {}  # (s, r at T-1) -> [(lease, tau, x)] of leases running past the horizon
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
        # contracted NOI after the horizon net of the site's fixed HPC opex and of the power the
        # landlord still bears: one Param per (lease, hand-over, site, scenario), Data.lease_terminal_usd;
        # it reads the scenario's prices, so it sits at each leaf below the node r holding the leases
        for w in tree.op_reps(T - 1):
            if tree.inv(T - 1, w) != r:
                continue
            register(m, "terminal_lease_noi_usd", s, T - 1, w,
                     lin([m.lease_terminal[l, tau, s, w] / USD for (l, tau, _v) in items], [v for (_l, _t, v) in items]))
    for (k, kind, item), e in m.credit_gwh.items():
        (s,), t, r = isplit(m, k, 1)
        market = inst.site_by_id[s].market
        for w in tree.op_reps(t):
            if tree.inv(t, w) == r:
                price = m.site_price[s, w, t] if kind == "site" else m.power_price[market, w, t]
                register(m, item, s, t, w, (price * (MWH / USD)) * e)
    _terminal_hpc(m, data)


def _terminal_hpc(m, data: Data) -> None:
    """terminal_hpc_usd[s,w] = hpc_value[s,w] x kW/1000 x (owned HPC racks at T-1 - sum over leases
    running past the horizon of need x (1 - reversion[l,tau]) x x[l,s,tau]): the unleased racks at
    the market value, the leased ones at the market value times the reversion factor of the
    months their lease still runs (economics.md, "Terminal values")."""
    term = data.inst.horizon.terminal
    if term.hpc_unleased_noi_usd_per_mw_year <= 0:
        return
    T = data.T
    past: dict[str, list] = {}  # s -> [(need, reversion, lease, tau)]; x on each leaf's path below
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        for tau in taus:
            if ld.runs_past_horizon[tau] and ld.active[tau][T - 1]:
                past.setdefault(s, []).append((m.lease_need[(l, s)], m.lease_reversion[l, tau], l, tau))
    for si in m.site_info.values():
        if si.Hmax <= 0:
            continue
        s = si.id
        for w in m.tree.op_reps(T - 1):
            owned = sites.hpc_owned(m, s, T - 1, w)
            rows = [(need, rho, xvar(m, l, s, tau, w)) for need, rho, l, tau in past.get(s, [])]
            rows = [(need, rho, x) for need, rho, x in rows if x is not None]
            kept = lin([-need * (1.0 - rho) for need, rho, _x in rows], [x for _n, _r, x in rows]) if rows else 0.0
            racks = owned + kept
            if is_const(racks) and racks == 0:
                continue
            mw = si.site.hpc_mw_per_rack * racks
            register(m, "terminal_hpc_usd", s, T - 1, w, (m.hpc_value[s, w] / USD) * mw)
