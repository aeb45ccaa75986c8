"""GPU cloud: GPU purchases, GPUs in service, their racks, load and cash flows (models/formulation.md,
"GPU cloud"; economics: models/economics.md, "GPU cloud").

Variables (first stage): gbuy[o,s,u] MW of critical IT of GPUs of option o ordered for site s in
period u (continuous, like ASIC units). GPUs in service are an expression:
online(o,s,t) = sum_{u: t in u + lead .. u + lead + life - 1} gbuy[o,s,u]. They take
online x 1000 / hpc_kw_per_rack HPC rack positions (``leases.lease_racks`` adds them to the leases'
racks, so racks serving GPU cloud are not available to leases) and draw online x PUE_hpc x hours
of firm load (added to ``hpc_gwh`` by ``leases.hpc_energy``). GPU cloud contracts
(``leases[*].gpu_option``) must be covered by GPUs in service (``gpu_cover``); the rest is sold at the
merchant price of each scenario.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.model.common import MWH, USD, Acc, add_constraints, add_vars, ik, lin, register


def _sites(data: Data, o, m) -> list[str]:
    ids = o.sites if o.sites is not None else [s.id for s in data.inst.sites]
    return [s for s in ids if m.site_info[s].Hmax > 0]


def build(m, data: Data) -> None:
    """Purchase variables, the purchase cap, and the online / racks / load expressions."""
    keys, bounds = [], {}
    m.gpu_sites = {}
    for oid, g in data.gpus.items():
        o = g.option
        sites = []
        for s in _sites(data, o, m):
            si = m.site_info[s]
            ps = [u for u in g.periods if si.owned0 or (si.own_first is not None and u + g.lead >= si.own_first)]
            if not ps:
                continue
            sites.append(s)
            cap = o.max_mw / 1.0 if o.max_mw is not None else si.Hmax * si.kw / 1000.0
            for u in ps:
                keys.append((oid, s, u))
                bounds[(oid, s, u)] = (0.0, min(cap, si.Hmax * si.kw / 1000.0))
        m.gpu_sites[oid] = sites
    m.gbuy = add_vars(m, "gbuy", keys, pyo.NonNegativeReals, bounds=bounds)
    gpu_cap(m, data)
    online, racks, gwh = Acc(), Acc(), Acc()
    for (oid, s, u) in m.gbuy_index:
        g = data.gpus[oid]
        si = m.site_info[s]
        pue = si.site.pue_hpc
        for t in g.online(u):
            online.add((oid, s, t), 1.0, m.gbuy[oid, s, u])
            racks.add((s, t), 1000.0 / si.kw, m.gbuy[oid, s, u])
            gwh.add((s, t), pue * float(data.hours[t]) / MWH, m.gbuy[oid, s, u])
    m.gpu_online = online
    m.gpu_racks = racks
    m.gpu_gwh = gwh


def gpu_cap(m, data: Data) -> None:
    """sum_{s,u} gbuy[o,s,u] <= max_mw_o (all sites together)."""
    rows = {}
    for oid, g in data.gpus.items():
        if g.option.max_mw is None:
            continue
        ks = [k for k in m.gbuy_index if k[0] == oid]
        if len(ks) > 1:
            rows[oid] = lin([1.0] * len(ks), [m.gbuy[k] for k in ks]) <= g.option.max_mw
    add_constraints(m, "gpu_cap", rows)


def online(m, oid: str, s: str, t: int):
    """MW of GPUs of option oid in service at s in t (a linear expression, or 0)."""
    return m.gpu_online.expr((oid, s, t))


def contracted(m, data: Data) -> Acc:
    """(option, site, t) -> MW held for GPU cloud contracts (leases with gpu_option) reserved in t."""
    acc = Acc()
    for (l, s), taus in m.lease_taus.items():
        ld = data.leases[l]
        oid = ld.lease.gpu_option
        if oid is None:
            continue
        for tau in taus:  # GPU contracts are two-stage only: x at the root
            mw = ld.mw_reserved(tau)
            for t in mw.nonzero()[0]:
                acc.add((oid, s, int(t)), float(mw[t]), m.x[ik(m, (l, s), tau, 0)])
    return acc


def gpu_cover(m, data: Data) -> None:
    """MW held for GPU cloud contracts of option o at s in t <= GPUs of o in service there."""
    m.gpu_contracted = contracted(m, data)
    rows = {}
    for key, held in m.gpu_contracted.items():
        rows[key] = held - online(m, *key) <= 0
    add_constraints(m, "gpu_cover", rows)


def cashflows(m, data: Data) -> None:
    """GPU purchases (asset class gpus), salvage at retirement, opex of GPUs in service, merchant
    revenue per scenario (GPUs in service not held for contracts), book value at the horizon end.
    Runs after leases.build (the contracted MW)."""
    T, W = data.T, data.W
    buy, salv, term = Acc(), Acc(), Acc()
    for (oid, s, u) in m.gbuy_index:
        g = data.gpus[oid]
        v = m.gbuy[oid, s, u]
        buy.add((s, u), -g.capex_usd_per_mw / USD, v)
        r = g.retire_period(u)
        if r <= T - 1 and g.salvage_usd_per_mw() > 0:
            salv.add((s, r), g.salvage_usd_per_mw() / USD, v)
        if data.inst.gpu_cloud.terminal_book_value:
            bv = g.book_value_end_usd_per_mw(u)
            if bv > 0:
                term.add(s, bv / USD, v)
    for (s, u), e in buy.items():
        register(m, "gpu_purchases_usd", s, u, None, e, asset="gpus")
    for (s, r), e in salv.items():
        register(m, "gpu_salvage_usd", s, r, None, e)
    for s, e in term.items():
        register(m, "terminal_gpu_usd", s, T - 1, None, e)
    opex = Acc()
    for (oid, s, t), _e in m.gpu_online.items():
        g = data.gpus[oid]
        if g.opex_usd_per_mw > 0:
            c, vs, _ = m.gpu_online.rows[(oid, s, t)]
            for a, v in zip(c, vs):
                opex.add((s, t), -g.opex_usd_per_mw * a / USD, v)
    for (s, t), e in opex.items():
        register(m, "opex_usd", s, t, None, e)
    # merchant revenue: (online - contracted) x revenue per MW of the scenario
    for (oid, s, t), _e in m.gpu_online.items():
        g = data.gpus[oid]
        c, vs, _ = m.gpu_online.rows[(oid, s, t)]
        held = m.gpu_contracted.rows.get((oid, s, t))
        coefs, variables = list(c), list(vs)
        if held is not None:
            coefs += [-a for a in held[0]]
            variables += list(held[1])
        for w in range(W):
            k = float(g.merchant_usd_per_mw[w, t]) / USD
            if k != 0.0:
                register(m, "gpu_cloud_revenue_usd", s, t, w, lin([k * a for a in coefs], variables))
