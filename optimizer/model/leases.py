"""HPC leases: signing, hand-over period and site(s), racks taken, lease cash flows.

Variables (first stage): x[l,s,tau] share of lease l handed over in period tau at site s
(binary for unsplittable leases; in [0, 1] for splittable ones, with y[l,tau] binary choosing
the hand-over period). Combinations that can never be delivered (site too small even fully
converted, or HPC racks not online by tau at the earliest) get no variable.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data, lease_credit_price
from optimizer.model import sites
from optimizer.model.common import MWH, USD, Acc, add_constraints, add_vars, is_const, lin, register


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
    inst = data.inst
    keys, y_keys = [], []
    m.lease_need = {}
    for l in inst.leases:
        ld = data.leases[l.id]
        for s in inst.eligible_sites(l):
            need = data.lease_racks_needed[(l.id, s)]
            e = _earliest(m.site_info[s], need, l.splittable)
            if e is None:
                continue
            m.lease_need[(l.id, s)] = need
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
    """(s, t) -> [(racks taken, x var, runs past the horizon)] of the leases that may run there."""
    out: dict = {}
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        for t in ld.active[tau].nonzero()[0]:
            out.setdefault((s, int(t)), []).append((m.lease_need[(l, s)], m.x[l, s, tau], ld.runs_past_horizon[tau]))
    return out


def racks_taken(m, data: Data, s: str, t: int, past_horizon_only: bool = False):
    """Rack positions at s in t taken by running leases (linear in x)."""
    rows = [(c, v) for c, v, past in m.lease_running.get((s, t), []) if past or not past_horizon_only]
    return lin([c for c, _ in rows], [v for _, v in rows]) if rows else 0.0


def lease_racks(m, data: Data) -> None:
    """Racks taken by running leases <= hpc_racks[s,t]; <= Hmax x own[s,t] where the site
    may be sold or bought (an unowned site runs no lease)."""
    m.lease_running = _running(m, data)
    rows = {}
    for (s, t) in sorted(m.lease_running, key=lambda k: (list(m.site_info).index(k[0]), k[1])):
        si = m.site_info[s]
        used = racks_taken(m, data, s, t)
        rows[(s, t, "racks")] = used <= sites.hpc_racks(m, s, t)
        o = sites.own(m, s, t)
        if not (is_const(o) and o == 1):
            rows[(s, t, "owned")] = used <= si.Hmax * o
    add_constraints(m, "lease_racks", rows)


def lease_conversion_rounding(m, data: Data) -> None:
    """Valid inequality tightening the LP: an unsplittable lease l handed over at s by t needs at
    least k = ceil((need - H0) / rpb) blocks started by t - lead (blocks only accumulate):
    k x sum_{tau <= t} x[l,s,tau] <= nb[s, t - lead], for t in l's hand-over window (later t
    are implied). Without it the LP converts need/rpb of a block for x = 1 and less for x < 1."""
    import math

    by_ls: dict = {}
    for (l, s, tau) in m.x_index:
        by_ls.setdefault((l, s), []).append(tau)
    split = {l.id: l.splittable for l in data.inst.leases}
    rows = {}
    for (l, s), taus in by_ls.items():
        si = m.site_info[s]
        need = m.lease_need[(l, s)]
        if split[l] or need <= si.H0 + 1e-9:
            continue
        k = math.ceil((need - si.H0) / si.rpb - 1e-9)
        taus = sorted(taus)
        for t in taus:
            b = sites.nb(m, s, t - si.lead)
            xs = [m.x[l, s, tau] for tau in taus if tau <= t]
            rows[(l, s, t)] = lin([float(k)] * len(xs), xs) <= b
    add_constraints(m, "lease_conversion_rounding", rows)


def lease_needs_ownership(m, data: Data) -> None:
    """Valid inequality, per lease, at sites that may be sold or bought: the share of lease l
    running at s in t <= own(s,t). Implied at integer points by the aggregated
    `lease_racks[s,t,"owned"]` row but much tighter in the LP (Hmax x own vs need x own)."""
    rows = {}
    for (l, s, tau) in m.x_index:
        si = m.site_info[s]
        if si.own_first is None:
            continue
        for t in data.leases[l].active[tau].nonzero()[0]:
            rows.setdefault((l, s, int(t)), []).append(m.x[l, s, tau])
    out = {}
    for (l, s, t), xs in rows.items():
        o = sites.own(m, s, t)
        out[(l, s, t)] = lin([1.0] * len(xs), xs) <= o
    add_constraints(m, "lease_needs_ownership", out)


def hpc_energy(m, data: Data) -> None:
    """hpc_gwh[s,t] = HPC load in GWh (firm; first stage), one variable per (s,t) so that the
    per-scenario energy-balance and grid rows carry one term for it; m.credit_gwh[(s,t,price,item)]:
    the HPC GWh credited to the landlord (an expression): pass-through leases (item
    power_passthrough_usd) and after-power NOI margins (item opex_usd), at the site's energy price
    (price "site") or the market price ("market") (economics.md, "Leases")."""
    allg, credit = Acc(), Acc()
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        lease = ld.lease
        pue = data.inst.site_by_id[s].pue_hpc
        h = ld.active_hours[tau]
        kind = lease_credit_price(lease)
        item = "power_passthrough_usd" if lease.power_passthrough else "opex_usd"
        for t in h.nonzero()[0]:
            c = lease.it_mw * pue * float(h[t]) / MWH
            allg.add((s, int(t)), c, m.x[l, s, tau])
            if kind is not None:
                credit.add((s, int(t), kind, item), c, m.x[l, s, tau])
    keys = list(allg.rows)
    m.hpc_gwh = add_vars(m, "hpc_gwh", keys, pyo.NonNegativeReals)
    rows = {}
    for k in keys:
        c, v, _ = allg.rows[k]
        rows[k] = lin(c + [-1.0], v + [m.hpc_gwh[k]]) == 0
    add_constraints(m, "hpc_energy", rows)
    m.credit_gwh = dict(credit.items())


def _cashflows(m, data: Data) -> None:
    inst, T, W = data.inst, data.T, data.W
    rent: dict[tuple, Acc] = {}  # (s, t) -> per-lease accumulator of rent / rate (rate-proportional)
    opex_fix, pen = Acc(), Acc()
    tnoi: dict[str, list] = {}  # s -> [(l, tau, x)] of leases running past the horizon
    term = inst.horizon.terminal
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        lease = ld.lease
        v = m.x[l, s, tau]
        r, ox = ld.rent_usd[tau], ld.opex_usd[tau]
        k = 1.0 / lease.rate_usd_per_kw_month / USD
        for t in r.nonzero()[0]:
            rent.setdefault((s, int(t)), Acc()).add(l, float(r[t]) * k, v)
        if lease.noi_margin is None:
            for t in ox.nonzero()[0]:
                opex_fix.add((s, int(t)), -float(ox[t]) / USD, v)
        late = ld.months_late[tau]
        if late > 0:
            pen.add((s, tau), -lease.late_penalty_usd_per_mw_month * lease.it_mw * late / USD, v)
        if term.lease_remaining_noi and ld.runs_past_horizon[tau]:
            tnoi.setdefault(s, []).append((l, tau, v))
    margin = {l.id: l.noi_margin for l in inst.leases}
    for (s, t), acc in rent.items():
        per_lease = [(l, m.lease_rate[l] * e) for l, e in acc.items()]
        register(m, "lease_revenue_usd", s, t, None, sum(e for _, e in per_lease))
        # NOI-margin leases: opex = (1 - margin) x rent, the same expression scaled
        opex = [-(1.0 - margin[l]) * e for l, e in per_lease if margin[l] is not None and margin[l] < 1]
        if opex:
            register(m, "opex_usd", s, t, None, sum(opex))
    for (s, t), e in opex_fix.items():
        register(m, "opex_usd", s, t, None, e)
    for (s, t), e in pen.items():
        register(m, "lease_penalty_usd", s, t, None, e)
    for s, items in tnoi.items():
        # contracted NOI after the horizon net of the site's fixed HPC opex and of the power the
        # landlord still bears: one Param per (lease, hand-over, site, scenario), Data.lease_terminal_usd
        for w in range(W):
            register(m, "terminal_lease_noi_usd", s, T - 1, w,
                     lin([m.lease_terminal[l, tau, s, w] / USD for (l, tau, _v) in items], [v for (_l, _t, v) in items]))
    for (s, t, kind, item), e in m.credit_gwh.items():
        market = inst.site_by_id[s].market
        for w in range(W):
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
    past: dict[str, list] = {}
    for (l, s, tau) in m.x_index:
        ld = data.leases[l]
        if ld.runs_past_horizon[tau] and ld.active[tau][T - 1]:
            past.setdefault(s, []).append((m.lease_need[(l, s)], m.lease_reversion[l, tau], m.x[l, s, tau]))
    for si in m.site_info.values():
        if si.Hmax <= 0:
            continue
        s = si.id
        owned = sites.hpc_owned(m, s, T - 1)
        rows = past.get(s, [])
        kept = lin([-need * (1.0 - rho) for need, rho, _x in rows], [x for _n, _r, x in rows]) if rows else 0.0
        racks = owned + kept
        if is_const(racks) and racks == 0:
            continue
        mw = si.site.hpc_mw_per_rack * racks
        for w in range(data.W):
            register(m, "terminal_hpc_usd", s, T - 1, w, (m.hpc_value[s, w] / USD) * mw)
