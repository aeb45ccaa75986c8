"""Cheap infeasibility pre-checks that name the entities involved.

Each check returns sentences; an empty list means nothing obviously infeasible (the
elastic re-solve in ``solve`` is the fallback for what these miss).
"""

from __future__ import annotations

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.economics.data import Data
from optimizer.instance.schema import FixedConversion, FixedLease, FixedPurchase, Instance
from optimizer.kernel.timeline import month_label
from optimizer.solve.backend import HighsBackend, run_interruptible


def precheck(inst: Instance, data: Data) -> list[str]:
    out: list[str] = []
    out += _cash(inst)
    out += _mining_share(inst)
    out += _forced_leases(inst, data)
    out += _fixed_conversions(inst, data)
    out += _fixed_purchases(inst, data)
    return out


def _cash(inst: Instance) -> list[str]:
    t = inst.treasury
    if t.cash_start_usd is not None and t.cash_start_usd < t.min_cash_usd:
        return [f"treasury: cash_start_usd {t.cash_start_usd:,.0f} is below min_cash_usd {t.min_cash_usd:,.0f}"]
    return []


def _mining_share(inst: Instance) -> list[str]:
    p = inst.policy
    owned = [s for s in inst.sites if s.acquisition is None]
    total = sum(s.mining_racks + s.hpc_racks for s in owned)
    mining = sum(s.mining_racks for s in owned)
    if total and mining < p.min_mining_share * total - 1e-9:
        return [f"policy.min_mining_share {p.min_mining_share:g} exceeds the mining share at the start "
                f"({mining} of {total} rack positions = {mining / total:.3f})"]
    return []


def _lease_capability(inst: Instance, data: Data, lease_id: str, site_id: str, last_tau: int) -> str | None:
    """None if the site could host the whole lease by period ``last_tau``, else the reason."""
    s = inst.site_by_id[site_id]
    need = data.lease_racks_needed[(lease_id, site_id)]
    if s.hpc_racks >= need:
        return None
    conv = s.conversion
    if conv is None:
        return f"{site_id} has {s.hpc_racks} HPC racks, needs {need:g}, and no conversion option"
    reachable = s.hpc_racks + s.max_conversion_blocks * conv.racks_per_block
    if reachable < need:
        return f"{site_id} reaches at most {reachable} HPC racks, needs {need:g}"
    periods = data.conversion_periods(site_id)
    lead = data.lead_periods(conv.lead_months)
    if not periods or periods[0] + lead > last_tau:
        return f"{site_id} conversion lead time {conv.lead_months} months"
    return None


def _forced_leases(inst: Instance, data: Data) -> list[str]:
    out = []
    for d in inst.policy.fixed_decisions:
        if not (isinstance(d, FixedLease) and d.signed):
            continue
        ld = data.leases[d.lease]
        taus = ld.handover_periods if d.month is None else [data.tl.period_of(d.month)]
        sites = [d.site] if d.site else inst.eligible_sites(ld.lease)
        if d.site and d.site not in inst.eligible_sites(ld.lease):
            out.append(f"lease {d.lease} is fixed at site {d.site}, which is not among its eligible sites")
            continue
        if d.month is not None and taus[0] not in ld.handover_periods:
            out.append(f"lease {d.lease} is fixed to hand over in {d.month}, outside its window "
                       f"{ld.lease.window_start}..{ld.lease.window_end}")
            continue
        last = max(taus)
        reasons = [r for r in (_lease_capability(inst, data, d.lease, sid, last) for sid in sites) if r]
        if ld.lease.splittable and len(reasons) < len(sites):
            continue
        if len(reasons) == len(sites):
            out.append(f"lease {d.lease} cannot be delivered by {month_label(int(data.tl.period_start_months[last]))} "
                       f"at any eligible site: {'; '.join(reasons)}")
    return out


def _fixed_conversions(inst: Instance, data: Data) -> list[str]:
    out = []
    total: dict[str, int] = {}
    for d in inst.policy.fixed_decisions:
        if isinstance(d, FixedConversion):
            s = inst.site_by_id[d.site]
            if s.conversion is None and d.blocks > 0:
                out.append(f"site {d.site} is fixed to convert {d.blocks} block(s) in {d.month} but has no conversion option")
                continue
            total[d.site] = total.get(d.site, 0) + d.blocks
            if d.blocks > 0 and data.tl.period_of(d.month) not in data.conversion_periods(d.site):
                out.append(f"site {d.site} is fixed to convert in {d.month}, when no conversion can start "
                           f"and finish inside the horizon")
    for sid, n in total.items():
        cap = inst.site_by_id[sid].max_conversion_blocks
        if n > cap:
            out.append(f"site {sid} is fixed to convert {n} blocks but at most {cap} are possible")
    return out


def _fixed_purchases(inst: Instance, data: Data) -> list[str]:
    out = []
    opts = {o.id: o for o in inst.fleet.purchase_options}
    for d in inst.policy.fixed_decisions:
        if isinstance(d, FixedPurchase) and d.units > 0:
            o = opts[d.option]
            if data.tl.period_of(d.month) not in data.purchase_periods(o):
                out.append(f"purchase option {d.option} cannot order in {d.month} (window {o.first_month}.."
                           f"{o.last_month or 'horizon end'}, delivery {o.lead_months} months)")
            if o.sites is not None and d.site not in o.sites:
                out.append(f"purchase option {d.option} cannot deliver to site {d.site}")
    return out


# ---------------------------------------------------------------- elastic re-solve


def elastic_diagnosis(backend: HighsBackend, data: Data, time_limit_s: float | None = None, top: int = 5) -> list[str]:
    """Re-solve with a penalised slack on every row (minimise total slack, integrality kept)
    and name the constraints that had to give."""
    sf = backend._sf
    n, m = len(sf.columns), len(sf.rows)
    lo_rows = np.flatnonzero(np.isfinite(sf.row_lower))
    up_rows = np.flatnonzero(np.isfinite(sf.row_upper))
    A = sf.A.tocsc()

    s_lo = sp.csc_array((np.ones(len(lo_rows)), (lo_rows, np.arange(len(lo_rows)))), shape=(m, len(lo_rows)))
    s_up = sp.csc_array((-np.ones(len(up_rows)), (up_rows, np.arange(len(up_rows)))), shape=(m, len(up_rows)))
    A2 = sp.hstack([A, s_lo, s_up], format="csc")
    k = len(lo_rows) + len(up_rows)
    cost = np.concatenate([np.zeros(n), np.ones(k)])
    lower = np.concatenate([sf.col_lower, np.zeros(k)])
    upper = np.concatenate([sf.col_upper, np.full(k, np.inf)])
    integ = np.concatenate([sf.integrality, np.zeros(k, dtype=sf.integrality.dtype)])
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if time_limit_s:
        h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(n + k, m, A2.nnz, 1, 1, 0.0, cost, lower, upper, sf.row_lower, sf.row_upper,
                A2.indptr.astype(np.int32), A2.indices.astype(np.int32), A2.data, integ.astype(np.int32))
    run_interruptible(h)
    if h.getInfo().primal_solution_status != 2:
        return ["the elastic re-solve found no point either: the bounds of some variable contradict each other"]
    x = np.asarray(h.getSolution().col_value)
    slack = x[n:]
    rows_hit: dict[int, float] = {}
    for j, r in enumerate(np.concatenate([lo_rows, up_rows])):
        if slack[j] > 1e-6:
            rows_hit[int(r)] = rows_hit.get(int(r), 0.0) + float(slack[j])
    out = []
    for r, v in sorted(rows_hit.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"constraint {_describe(sf.rows[r].name, data)} must be relaxed by {v:.4g} (model units)")
    return out


def _describe(name: str, data: Data) -> str:
    """'grid_interconnect[s1,3,0]' -> 'grid_interconnect[s1, 2026-04, base]' when the index looks like (site, t, w)."""
    if "[" not in name:
        return name
    base, idx = name.split("[", 1)
    parts = [p.strip().strip("'\"()") for p in idx.rstrip("]").split(",")]
    labels, names = data.labels, data.scenario_names
    out = []
    ints = [i for i, p in enumerate(parts) if p.lstrip("-").isdigit()]
    for i, p in enumerate(parts):
        if p.lstrip("-").isdigit():
            v = int(p)
            if len(ints) >= 2 and i == ints[-1] and 0 <= v < len(names) and base not in ("capex_budget",):
                out.append(names[v])
            elif 0 <= v < len(labels):
                out.append(labels[v])
            else:
                out.append(p)
        else:
            out.append(p)
    return f"{base}[{', '.join(out)}]"
