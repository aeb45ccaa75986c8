"""Why an instance is infeasible, in the instance's own words and units, within a time limit.

Three steps, cheapest first; each returns sentences naming instance fields and amounts in
USD, MW, MWh, racks, ASICs and months (an empty list: nothing found):

1. ``precheck(inst, data)``, before the model is built, by arithmetic on the instance: cash at
   the start below the floor; the mining share at the start below ``policy.min_mining_share``;
   fixed conversions, or the conversions a fixed lease needs at the least, against
   ``policy.min_mining_share`` and ``policy.max_converted_share``; fixed leases that no
   eligible site can deliver in time; fixed conversions and purchases outside their windows.
   Each check is a necessary condition of feasibility: it never flags a feasible instance.
2. ``cash_floor_check(backend, data)``, after the build and before the MIP, when cash is
   modelled and fixed decisions commit spending: the LP relaxation with only the cash floor
   elastic. A positive least shortfall proves no plan keeps ``treasury.min_cash_usd`` (the
   shortfall is a lower bound), and the MIP is skipped.
3. ``elastic_diagnosis(backend, data, time_limit_s, progress)``, once HiGHS proved the model
   infeasible: the requirements are relaxed in tiers, each a slack costing 1 per model unit
   ($M, GWh, rack, thousand ASICs, block), and the least total slack is sought:
   tier 1 the policy and treasury limits (cash floor, yearly capex budget, mining and
   converted shares) with every fixed decision and physical limit kept; if that cannot
   restore feasibility, tier 2 also the fixed decisions (``policy.fixed_decisions[i]``); then
   tier 3 the physical and contract limits too (HPC racks, rack positions, grid MW, contract
   energy, purchase caps, ownership). Definitional rows (balances, McCormick products,
   valid inequalities) are never relaxed: relaxing them has no meaning for the user. Each tier
   solves the elastic LP first (fast; infeasible means the tier cannot help, so the MIP is
   skipped) and then the elastic MIP for exact amounts. Each row family maps to the instance
   fields it comes from (``FAMILIES``), and its slack is converted to business units.
   The whole diagnosis stops after ``time_limit_s`` (``SolveOptions.diagnosis_time_limit_s``,
   default 60 s) and reports what it has: the MIP's best relaxation found so far, else the
   LP's (then amounts are lower bounds, said so). Each step is told to ``progress`` (a Reporter,
   the solve's own: ``advance(0, label)``, no nested start).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from optimizer.constants import Reporter, reporter
from optimizer.economics.data import Data
from optimizer.instance.schema import FixedConversion, FixedLease, FixedPurchase, Instance
from optimizer.kernel.timeline import month_label
from optimizer.model.common import MWH, UNITS, USD
from optimizer.solve.backend import HighsBackend, run_interruptible
from optimizer.solve.standard_form import compile_model

DIAGNOSIS_TIME_LIMIT_S = 60.0   # default of SolveOptions.diagnosis_time_limit_s (README)
_TOL = 1e-6


# ---------------------------------------------------------------- words and units


def usd(x: float) -> str:
    """$1.3B, $200M, $120k, $950 (3 significant digits)."""
    a = abs(x)
    sign = "-" if x < 0 else ""
    if a >= 1e9:
        return f"{sign}${a / 1e9:.3g}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.3g}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:.3g}k"
    return f"{sign}${a:.3g}"


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x - round(x)) < 1e-6 else f"{x:,.3g}"


def _months(data: Data, periods) -> str:
    ps = sorted(set(periods))
    lab = data.labels
    return lab[ps[0]] if len(ps) == 1 else f"{lab[ps[0]]}..{lab[ps[-1]]}"


def _scenarios(data: Data, ws) -> str:
    ws = sorted(set(ws))
    if data.W == 1:
        return ""
    if len(ws) == data.W:
        return " in every scenario"
    names = data.scenario_names
    return f" in scenario{'s' if len(ws) > 1 else ''} {', '.join(names[w] for w in ws)} (of {data.W})"


def describe_decision(inst: Instance, i: int) -> str:
    """``policy.fixed_decisions[i] (conversion of 3 blocks at s1 in 2026-02)``."""
    d = inst.policy.fixed_decisions[i]
    if d.kind == "conversion":
        what = f"conversion of {d.blocks} block{'s' if d.blocks != 1 else ''} at {d.site} in {d.month}"
    elif d.kind == "purchase":
        what = f"purchase of {_num(d.units)} units of {d.option} for {d.site} in {d.month}"
    elif d.kind == "lease":
        where = "".join(x for x in (f" at {d.site}" if d.site else "", f" handed over in {d.month}" if d.month else ""))
        what = f"lease {d.lease} {'signed' if d.signed else 'not signed'}{where}"
    elif d.kind == "contract":
        what = f"contract {d.contract} {'signed' if d.signed else 'not signed'}"
    elif d.kind == "grid_expansion":
        what = f"grid expansion {d.option} of {d.site}{' in ' + d.month if d.month else ''} {'happens' if d.happens else 'does not happen'}"
    else:
        what = f"{d.kind} of {d.site}{' in ' + d.month if d.month else ''} {'happens' if d.happens else 'does not happen'}"
    return f"policy.fixed_decisions[{i}] ({what})"


# ---------------------------------------------------------------- 1. pre-checks on the instance


def precheck(inst: Instance, data: Data) -> list[str]:
    out: list[str] = []
    out += _cash(inst)
    out += _mining_share(inst)
    out += _forced_leases(inst, data)
    out += _fixed_conversions(inst, data)
    out += _fixed_purchases(inst, data)
    if not out:  # the share checks below assume the decisions above are possible at all
        out += _shares(inst, data)
    return out


def _cash(inst: Instance) -> list[str]:
    t = inst.treasury
    if t.cash_start_usd is not None and t.cash_start_usd < t.min_cash_usd:
        return [f"treasury.cash_start_usd ({usd(t.cash_start_usd)}) is below treasury.min_cash_usd ({usd(t.min_cash_usd)}): "
                f"cash starts {usd(t.min_cash_usd - t.cash_start_usd)} under the floor"]
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


def _min_conversion_racks(inst: Instance, data: Data, lease_id: str, site_id: str) -> float | None:
    """Fewest racks a site must convert to host the whole (unsplittable) lease; None if it cannot."""
    s = inst.site_by_id[site_id]
    need = data.lease_racks_needed[(lease_id, site_id)]
    if s.hpc_racks >= need:
        return 0.0
    conv = s.conversion
    if conv is None:
        return None
    blocks = math.ceil((need - s.hpc_racks) / conv.racks_per_block - 1e-9)
    return None if blocks > s.max_conversion_blocks else float(blocks * conv.racks_per_block)


def _shares(inst: Instance, data: Data) -> list[str]:
    """Fixed conversions and the least conversion each fixed lease needs, against the shares.

    min_mining_share: mining racks of initially owned sites at the horizon end >= share x their
    racks; max_converted_share: racks converted (all sites) <= share x initial mining racks.
    Conversions only accumulate, so any conversion fixed or forced counts at the end."""
    p, out = inst.policy, []
    owned = {s.id for s in inst.sites if s.acquisition is None}
    total_owned = sum(s.mining_racks + s.hpc_racks for s in inst.sites if s.id in owned)
    mining_owned = sum(s.mining_racks for s in inst.sites if s.id in owned)
    mining_all = sum(s.mining_racks for s in inst.sites)
    floor = p.min_mining_share * total_owned          # mining racks that must remain (owned sites)
    cap = p.max_converted_share * mining_all          # racks that may be converted (all sites)
    fixed = [(i, d) for i, d in enumerate(p.fixed_decisions) if isinstance(d, FixedConversion) and d.blocks > 0]
    racks = {i: d.blocks * inst.site_by_id[d.site].conversion.racks_per_block for i, d in fixed
             if inst.site_by_id[d.site].conversion is not None}
    conv_owned = sum(r for i, r in racks.items() if p.fixed_decisions[i].site in owned)
    conv_all = sum(racks.values())
    names = ", ".join(f"[{i}]" for i in racks)
    if racks and p.min_mining_share > 0 and mining_owned - conv_owned < floor - 1e-9:
        out.append(f"policy.min_mining_share {p.min_mining_share:g} contradicts the fixed conversions "
                   f"policy.fixed_decisions{names}: they convert {_num(conv_owned)} racks of the initially owned sites, "
                   f"leaving {_num(mining_owned - conv_owned)} mining racks of {_num(total_owned)}, below "
                   f"{p.min_mining_share:g} x {_num(total_owned)} = {_num(floor)}")
    if racks and p.max_converted_share < 1 and conv_all > cap + 1e-9:
        out.append(f"policy.max_converted_share {p.max_converted_share:g} contradicts the fixed conversions "
                   f"policy.fixed_decisions{names}: they convert {_num(conv_all)} racks, more than "
                   f"{p.max_converted_share:g} x {_num(mining_all)} initial mining racks = {_num(cap)}")
    for i, d in enumerate(p.fixed_decisions):
        if not (isinstance(d, FixedLease) and d.signed):
            continue
        lease = next(l for l in inst.leases if l.id == d.lease)
        if lease.splittable:
            continue
        sites = [d.site] if d.site else inst.eligible_sites(lease)
        least = {s: _min_conversion_racks(inst, data, d.lease, s) for s in sites}
        least = {s: r for s, r in least.items() if r is not None}
        if not least:
            continue
        # the mining share only counts initially owned sites: a site bought later costs it nothing
        lost_share = min((r if s in owned else 0.0) for s, r in least.items())
        if p.min_mining_share > 0 and lost_share > 0 and mining_owned - conv_owned - lost_share < floor - 1e-9:
            s = min(least, key=lambda x: least[x])
            out.append(f"policy.min_mining_share {p.min_mining_share:g} contradicts {describe_decision(inst, i)}: "
                       f"{d.lease} needs {_num(data.lease_racks_needed[(d.lease, s)])} HPC racks and {s} has "
                       f"{_num(inst.site_by_id[s].hpc_racks)}, so at least {_num(lost_share)} mining racks must convert, leaving "
                       f"{_num(mining_owned - conv_owned - lost_share)} of {_num(total_owned)}, below "
                       f"{p.min_mining_share:g} x {_num(total_owned)} = {_num(floor)}")
        lost_cap = min(least.values())
        if p.max_converted_share < 1 and lost_cap > 0 and conv_all + lost_cap > cap + 1e-9:
            out.append(f"policy.max_converted_share {p.max_converted_share:g} contradicts {describe_decision(inst, i)}: "
                       f"{d.lease} needs at least {_num(lost_cap)} converted racks"
                       f"{f' on top of the {_num(conv_all)} fixed' if conv_all else ''}, more than "
                       f"{p.max_converted_share:g} x {_num(mining_all)} = {_num(cap)}")
    return out


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


# ---------------------------------------------------------------- 2. the cash floor, before the MIP


def forced_spending(inst: Instance) -> bool:
    """Whether fixed decisions commit the plan to spending (conversions, purchases, site
    acquisitions, grid expansions, optional contracts signed): only then can the cash floor
    fail whatever the plan does, and ``cash_floor_check`` is worth its LP."""
    for d in inst.policy.fixed_decisions:
        if (d.kind == "conversion" and d.blocks > 0) or (d.kind == "purchase" and d.units > 0):
            return True
        if d.kind in ("acquisition", "grid_expansion") and d.happens:
            return True
        if d.kind == "contract" and d.signed:
            return True
    return False


def cash_floor_check(backend: HighsBackend, data: Data, time_limit_s: float | None = None) -> list[str]:
    """Before the MIP: the LP relaxation with only the cash floor made elastic (every fixed
    decision, policy and physical limit kept). Its least shortfall is a lower bound on any
    plan's: if positive, no plan keeps ``treasury.min_cash_usd`` and the MIP need not run.
    One LP, run only when cash is modelled and fixed decisions commit spending; silent when
    the LP proves nothing (zero shortfall, another conflict, or out of time)."""
    m = backend.model
    if data.inst.treasury.cash_start_usd is None or not hasattr(m, "cash") or not forced_spending(data.inst):
        return []
    sf = backend._sf
    col_of = {id(v): j for j, v in enumerate(sf.columns)}
    status, lines, _ = _elastic_tier(sf, m, data, col_of, {}, frozenset({"cash"}),
                                     DIAGNOSIS_TIME_LIMIT_S if time_limit_s is None else time_limit_s, reporter(None), lp_only=True)
    if status != "lp" or not lines:
        return []
    return [lines[0].replace(" by up to ", " by at least ") + ", whatever the plan: the fixed decisions spend more than "
            f"treasury.cash_start_usd ({usd(data.inst.treasury.cash_start_usd)}) and the most the plan can bring in by then "
            "(LP relaxation, before the MIP)"]


# ---------------------------------------------------------------- 3. the elastic diagnosis


@dataclass(frozen=True)
class Family:
    """A row family of the MILP (models/formulation.md) as the user sees it: the tier it is
    relaxed in (0: definitional, never), the instance fields it comes from and the business
    unit its slack is reported in (``_sentences`` turns slacks into words)."""

    tier: int
    fields: str
    unit: str


def _group(entries: dict) -> dict:
    """{key tuple: amount} -> {first key part: {rest: amount}}."""
    out: dict = {}
    for k, v in entries.items():
        k = k if isinstance(k, tuple) else (k,)
        out.setdefault(k[0], {})[k[1:]] = v
    return out


def _s_capex(data: Data, e: dict) -> list[str]:
    return [f"capex and ASIC purchases in {y} exceed policy.capex_budget_usd_per_year ({usd(data.capex_budget(y) or 0)}) "
            f"by {usd(v * USD)}" for (y,), v in sorted(((k if isinstance(k, tuple) else (k,)), v) for k, v in e.items())]


def _s_min_share(data: Data, e: dict) -> list[str]:
    p = data.inst.policy
    total = sum(s.mining_racks + s.hpc_racks for s in data.inst.sites if s.acquisition is None)
    need = p.min_mining_share * total
    v = sum(e.values())
    return [f"policy.min_mining_share {p.min_mining_share:g} needs {_num(need)} of the {_num(total)} rack positions of the "
            f"initially owned sites mining at the horizon end; at most {_num(need - v)} can stay mining "
            f"({_num(v)} racks short)"]


def _s_max_share(data: Data, e: dict) -> list[str]:
    p = data.inst.policy
    allow = p.max_converted_share * sum(s.mining_racks for s in data.inst.sites)
    v = sum(e.values())
    return [f"policy.max_converted_share {p.max_converted_share:g} allows {_num(allow)} converted racks; "
            f"{_num(allow + v)} must convert ({_num(v)} racks over)"]


def _s_lease_once(data: Data, e: dict) -> list[str]:
    return [f"lease {l} would have to be handed over more than once (leases[{l}])" for l in sorted({k if isinstance(k, str) else k[0] for k in e})]


def _per_entity(text: Callable[[str, str, float], str], scale: Callable[[float], float] = float):
    """Sentences for rows indexed (entity, t[, w][, ...]): one per entity with its months, the
    largest amount (model units times ``scale``) and the scenarios: ``text(entity, months, amount)``."""

    def build(data: Data, e: dict) -> list[str]:
        out = []
        for ent, rest in _group(e).items():
            ts = [k[0] for k in rest if k and isinstance(k[0], (int, np.integer))]
            ws = [k[1] for k in rest if len(k) > 1 and isinstance(k[1], (int, np.integer))]
            months = _months(data, ts) if ts else "the horizon"
            out.append(text(ent, months, scale(max(rest.values()))) + (_scenarios(data, ws) if ws else ""))
        return out
    return build


FAMILIES: dict[str, Family] = {
    # tier 1: policy and treasury limits (the cash floor is the lower bound of the cash columns)
    "cash_floor": Family(1, "treasury.min_cash_usd, treasury.cash_start_usd", "USD"),
    "capex_budget": Family(1, "policy.capex_budget_usd_per_year", "USD"),
    "min_mining_share": Family(1, "policy.min_mining_share", "racks"),
    "max_converted_share": Family(1, "policy.max_converted_share", "racks"),
    # tier 2: fixed decisions (fixed variables, and fixed_lease rows)
    "fixed_lease": Family(2, "policy.fixed_decisions", "leases"),
    # tier 3: physical and contract limits
    "lease_racks": Family(3, "sites[].halls, sites[].conversion, leases[].it_mw", "racks"),
    "rack_positions": Family(3, "sites[].halls (mining racks), sites[].asics_per_rack, fleet", "ASICs"),
    "fleet_needs_ownership": Family(3, "sites[].sale, sites[].acquisition, fleet.installed", "ASICs"),
    "project_needs_ownership": Family(3, "sites[].sale, sites[].acquisition", "blocks"),
    "lease_needs_ownership": Family(3, "sites[].sale, sites[].acquisition, leases[]", "leases"),
    "grid_interconnect": Family(3, "sites[].grid_interconnect_mw, sites[].grid_expansions", "MW"),
    "energy_balance": Family(3, "contracts[] at the site", "MWh"),
    "contract_delivery": Family(3, "contracts[].mw_cap / mw, contract term", "MWh"),
    "used_le_delivered": Family(3, "contracts[].sell_back_allowed / can_export", "MWh"),
    "take_or_pay": Family(3, "contracts[].take_or_pay_min_share", "MWh"),
    "purchase_cap": Family(3, "fleet.purchase_options[].max_units", "ASICs"),
    "lease_once": Family(3, "leases[]", "hand-overs"),
    "operating_le_installed": Family(3, "fleet.installed, purchases, retirements", "ASICs"),
    "btc_repayment": Family(1, "financing.corporate_debt[].principal_usd (repayment_source treasury_btc)", "USD"),
    "facility_commitment": Family(3, "financing.facilities[].commitment_usd, lease", "USD"),
    "facility_loan_to_cost": Family(3, "financing.facilities[].loan_to_cost", "USD"),
    "facility_dscr": Family(3, "financing.facilities[].min_dscr", "USD"),
    "issue_cap": Family(3, "financing.new_issues[].max_usd", "USD"),
    "tenant_limits": Family(1, "policy.tenant_limits[].max_it_mw / max_rent_share", "MW (mw rows), M$ of rent (rent rows)"),
    "new_build_needs_ownership": Family(3, "sites[].sale, sites[].acquisition, sites[].new_builds", "blocks"),
    "new_build_requirements": Family(3, "sites[].new_builds[].requires_grid_expansion / requires_contract", "blocks"),
    "gpu_cap": Family(3, "gpu_cloud.options[].max_mw", "MW"),
    "gpu_cover": Family(3, "leases[].gpu_option, gpu_cloud.options[]", "MW"),
    # tier 0: definitions (balances, products, valid inequalities, objective auxiliaries)
    **{name: Family(0, "", "") for name in (
        "nb_balance", "expansion_balance", "new_build_balance", "ownership_balance", "hpc_owned_mccormick", "fleet_balance", "lease_split",
        "hpc_energy", "signed_owned_mccormick", "treasury_balance", "cash_balance", "first_stage_net_def",
        "lease_conversion_rounding", "cvar_excess_def", "terminal_mining_floor",
        # the mining and power levers: each is met by not using the lever (no enrollment, no cut, no
        # forward, mining kept on), so none can make an instance infeasible
        "curtail_le_operating", "overhead_cut_once", "mining_on_monotone", "mining_on_owned", "mining_exit",
        "mining_needs_on", "hedge_cap",
        *(p + name for p in ("", "u_") for name in ("taxable_first_stage_def", "taxable_income", "nol_use_limit",
                                                    "nol_use_available", "nol_balance")))},
}

def _thousand(v: float) -> float:
    return v * UNITS


def _gwh(v: float) -> float:
    return v * MWH


def _million(v: float) -> float:
    return v * USD


def _btc_repayment(data: Data, e: dict) -> list[str]:
    out = []
    for d_id, rest in _group(e).items():
        ws = [k[0] for k in rest]
        out.append(f"corporate debt {d_id}: the treasury BTC that can be sold at its maturity falls short of its principal "
                   f"by up to {usd(max(rest.values()) * USD)}{_scenarios(data, ws)} (financing.corporate_debt[{d_id}])")
    return out


_PER_ENTITY = {
    "lease_racks": _per_entity(lambda s, when, v: f"site {s} lacks {_num(v)} HPC racks in {when} for the leases handed over "
                                                  f"there (sites[{s}] halls and conversion)"),
    "rack_positions": _per_entity(lambda s, when, v: f"site {s} holds up to {_num(v)} more ASICs than its mining racks take "
                                                     f"in {when} (sites[{s}].asics_per_rack x mining racks)", _thousand),
    "fleet_needs_ownership": _per_entity(lambda s, when, v: f"site {s} still holds {_num(v)} ASICs in {when}, when it is "
                                                            "not owned", _thousand),
    "operating_le_installed": _per_entity(lambda s, when, v: f"site {s} would operate {_num(v)} more ASICs than installed "
                                                             f"in {when}", _thousand),
    "energy_balance": _per_entity(lambda s, when, v: f"site {s} needs up to {_num(v)} MWh more than its contracts deliver "
                                                     f"in {when} (contracts at {s})", _gwh),
    "contract_delivery": _per_entity(lambda c, when, v: f"contract {c} would deliver up to {_num(v)} MWh above its capacity "
                                                        f"in {when} (contracts[{c}])", _gwh),
    "used_le_delivered": _per_entity(lambda c, when, v: f"contract {c} would use up to {_num(v)} MWh more than it delivers "
                                                        f"in {when}", _gwh),
    "facility_commitment": _per_entity(lambda f, when, v: f"facility {f} would draw {usd(v)} beyond its commitment "
                                                          f"(financing.facilities[{f}].commitment_usd)", _million),
    "facility_loan_to_cost": _per_entity(lambda f, when, v: f"facility {f} would draw up to {usd(v)} beyond its loan-to-cost "
                                                            f"limit in {when} (financing.facilities[{f}].loan_to_cost)", _million),
    "facility_dscr": _per_entity(lambda f, when, v: f"facility {f}'s lease income misses its debt-service cover by up to "
                                                    f"{usd(v)} in {when} (financing.facilities[{f}].min_dscr)", _million),
    "issue_cap": _per_entity(lambda n, when, v: f"new issue {n} would exceed financing.new_issues[{n}].max_usd by {usd(v)}",
                             _million),
    "btc_repayment": _btc_repayment,
    "take_or_pay": _per_entity(lambda c, when, v: f"contract {c} misses its take-or-pay minimum by up to {_num(v)} MWh in "
                                                  f"{when} (contracts[{c}].take_or_pay_min_share)", _gwh),
}


def _grid_sentences(data: Data, e: dict) -> list[str]:
    out = []
    for s, rest in _group(e).items():
        mw = {k: v * MWH / float(data.hours[k[0]]) for k, v in rest.items()}
        site = data.inst.site_by_id[s]
        out.append(f"site {s} would draw up to {_num(max(mw.values()))} MW more than its grid interconnect "
                   f"(sites[{s}].grid_interconnect_mw {site.grid_interconnect_mw:g} MW with its expansions) in "
                   f"{_months(data, [k[0] for k in mw])}{_scenarios(data, [k[1] for k in mw])}")
    return out


def _purchase_sentences(data: Data, e: dict) -> list[str]:
    return [f"fleet.purchase_options[{o}].max_units would be exceeded by {_num(v * UNITS)} units"
            for o, v in ((k if isinstance(k, str) else k[0], v) for k, v in e.items())]


def _ownership_sentences(data: Data, e: dict) -> list[str]:
    sites = sorted({k[1] for k in e})
    return [f"site {s} would start a conversion or grid expansion when it is not owned (sites[{s}].sale / acquisition)" for s in sites]


def _lease_own_sentences(data: Data, e: dict) -> list[str]:
    pairs = sorted({(k[0], k[1]) for k in e})
    return [f"lease {l} would run at site {s} when the site is not owned" for l, s in pairs]


def _cash_sentence(data: Data, short: dict, qualifier: str = "up to") -> str:
    tr = data.inst.treasury
    first = min(t for (_, t) in short)
    worst = max(short.values()) * USD
    return (f"cash falls below treasury.min_cash_usd ({usd(tr.min_cash_usd)}) from {data.labels[first]} by {qualifier} "
            f"{usd(worst)}{_scenarios(data, [w for (w, _) in short])}")


@dataclass
class _Slack:
    family: str
    key: object          # the row's (or column's) index
    decision: int | None = None


def elastic_diagnosis(backend: HighsBackend, data: Data, time_limit_s: float | None = DIAGNOSIS_TIME_LIMIT_S,
                      progress: Reporter | None = None) -> list[str]:
    """Relax the model's requirements tier by tier (module docstring) and say which must give,
    and by how much, in the instance's terms; at most ``time_limit_s`` seconds."""
    rep = reporter(progress)
    t0 = time.perf_counter()
    limit = DIAGNOSIS_TIME_LIMIT_S if time_limit_s is None else float(time_limit_s)
    m = backend.model
    fixed = {i: [v for v in vs if v.fixed] for i, vs in getattr(m, "fixed_by_decision", {}).items()}
    rep.advance(0, label=f"diagnosing infeasibility (at most {limit:g} s)")
    try:
        sf = _compile_unfixed(m, fixed) if any(fixed.values()) else backend._sf
        col_of = {id(v): j for j, v in enumerate(sf.columns)}
        for relax, what in ((frozenset({1}), "the policy and treasury limits (every fixed decision and physical limit kept)"),
                            (frozenset({1, 2}), "the policy limits and the fixed decisions (physical limits kept)"),
                            (frozenset({1, 2, 3}), "every limit, physical ones included")):
            left = limit - (time.perf_counter() - t0)
            if left <= 0.05:
                return [f"the diagnosis stopped at its {limit:g} s limit (SolveOptions.diagnosis_time_limit_s) before "
                        f"relaxing {what}"]
            rep.advance(0, f"diagnosing: relaxing {what}")
            status, lines, exact = _elastic_tier(sf, m, data, col_of, fixed, relax, left, rep)
            if status == "infeasible":
                continue
            if status == "timeout":
                return [f"the diagnosis stopped at its {limit:g} s limit (SolveOptions.diagnosis_time_limit_s) while "
                        f"relaxing {what}: no answer yet"]
            how = "" if exact else (" (best found within the diagnosis limit of "
                                    f"{limit:g} s; amounts may be larger than needed)" if status == "found" else
                                    f" (lower bounds from the LP relaxation: the MIP found nothing within {limit:g} s)")
            lines = lines + [f"found by relaxing {what}, in {time.perf_counter() - t0:.1f} s{how}"]
            if relax == frozenset({1, 2}):     # which physical limits the fixed decisions run into
                left = limit - (time.perf_counter() - t0)
                if left > 0.05:
                    rep.advance(0, "diagnosing: the limits the fixed decisions run into")
                    st, why, _ = _elastic_tier(sf, m, data, col_of, fixed, frozenset({1, 3}), left, rep)
                    if st in ("found", "lp") and why:
                        lines.insert(len(lines) - 1, "keeping every fixed decision instead: " + "; ".join(why))
            return lines
        return ["no relaxation of the policy limits, fixed decisions or physical limits restores feasibility: the bounds "
                "of some variable contradict each other"]
    finally:
        rep.advance(0, label=f"diagnosis done in {time.perf_counter() - t0:.1f} s")


def _compile_unfixed(m, fixed: dict):
    """The standard form with the fixed decisions' variables free (each gets an elastic row)."""
    values = [(v, v.value) for vs in fixed.values() for v in vs]
    for v, _ in values:
        v.unfix()
    try:
        return compile_model(m)
    finally:
        for v, x in values:
            v.fix(x)


def _elastic_tier(sf, m, data: Data, col_of: dict, fixed: dict, relax: frozenset, time_left: float, rep,
                  lp_only: bool = False) -> tuple[str, list[str], bool]:
    """Build and solve the elastic model relaxing the family tiers in ``relax`` (1 policy and
    treasury limits, 2 fixed decisions, 3 physical limits): (status, sentences, exact). status
    is "infeasible" (these relaxations cannot restore feasibility), "timeout" (no answer in
    time), "found" (the MIP's relaxation, exact when optimal) or "lp" (only the LP's: lower bounds).
    ``relax`` may hold "cash" alone: the cash floor only. ``lp_only``: stop after the LP."""
    n, nrows = len(sf.columns), len(sf.rows)
    row_lower, row_upper = sf.row_lower.copy(), sf.row_upper.copy()
    col_lower, col_upper = sf.col_lower.copy(), sf.col_upper.copy()
    slacks: list[_Slack] = []
    s_rows, s_sign = [], []            # slack k sits in row s_rows[k] with coefficient s_sign[k]
    new_rows: list[tuple[int, float, float]] = []   # (column, lower, upper) rows added below the model's

    def add_slack(row: int, sign: float, info: _Slack) -> None:
        s_rows.append(row)
        s_sign.append(sign)
        slacks.append(info)

    # tier 1: the cash floor (lower bound of the cash columns) and the policy rows
    if (1 in relax or "cash" in relax) and hasattr(m, "cash"):
        for k, v in m.cash.items():
            j = col_of.get(id(v))
            if j is None or not math.isfinite(col_lower[j]):
                continue
            new_rows.append((j, col_lower[j], math.inf))
            col_lower[j] = -math.inf
            add_slack(nrows + len(new_rows) - 1, +1.0, _Slack("cash_floor", k))
    rows_by_family: dict[str, list[int]] = {}
    for r, con in enumerate(sf.rows):
        rows_by_family.setdefault(con.parent_component().local_name, []).append(r)
    for fam, rows in rows_by_family.items():
        f = FAMILIES.get(fam, Family(3, "", ""))     # an unmapped family is treated as a physical limit
        if f.tier not in relax:
            continue
        for r in rows:
            con = sf.rows[r]
            info = _Slack(fam, con.index())
            if fam == "fixed_lease":
                info.decision = getattr(m, "fixed_lease_decision", {}).get(con.index())
            if math.isfinite(row_lower[r]):
                add_slack(r, +1.0, info)
            if math.isfinite(row_upper[r]):
                add_slack(r, -1.0, info)
    for i, vs in fixed.items():
        for v in vs:
            j = col_of.get(id(v))
            if j is None:
                continue
            if 2 not in relax:             # the decision holds: its variable stays at its value
                col_lower[j] = col_upper[j] = float(v.value)
            else:
                new_rows.append((j, float(v.value), float(v.value)))
                r = nrows + len(new_rows) - 1
                add_slack(r, +1.0, _Slack("fixed_decision", v.index(), i))
                add_slack(r, -1.0, _Slack("fixed_decision", v.index(), i))
    k = len(slacks)
    if k == 0:
        return "infeasible", [], False
    m_new = len(new_rows)
    N = sp.csr_array((np.ones(m_new), ([i for i in range(m_new)], [j for j, _, _ in new_rows])), shape=(m_new, n))
    S = sp.csc_array((np.asarray(s_sign), (np.asarray(s_rows), np.arange(k))), shape=(nrows + m_new, k))
    A2 = sp.hstack([sp.vstack([sf.A, N]), S], format="csc")
    lower = np.concatenate([col_lower, np.zeros(k)])
    upper = np.concatenate([col_upper, np.full(k, np.inf)])
    rl = np.concatenate([row_lower, [lo for _, lo, _ in new_rows]])
    ru = np.concatenate([row_upper, [up for _, _, up in new_rows]])
    cost = np.concatenate([np.zeros(n), np.ones(k)])
    t0 = time.perf_counter()
    x_lp, status_lp = _solve(A2, cost, lower, upper, rl, ru, np.zeros(n + k, dtype=np.int32), time_left)
    if x_lp is None:                       # even this tier's relaxed LP is infeasible, or time ran out
        return ("infeasible" if status_lp == "infeasible" else "timeout"), [], False
    left = time_left - (time.perf_counter() - t0)
    best, status, exact = x_lp[n:], "lp", (status_lp == "optimal" and not sf.is_mip)
    if not sf.is_mip and not lp_only:
        status = "found"
    elif left > 0.05 and not lp_only:
        rep.advance(0, f"diagnosing: elastic MIP (its LP relaxation needs {_total(x_lp[n:]):.4g} model units of slack)")
        integ = np.concatenate([sf.integrality, np.zeros(k, dtype=sf.integrality.dtype)]).astype(np.int32)
        x_mip, status_mip = _solve(A2, cost, lower, upper, rl, ru, integ, left)
        if status_mip == "infeasible":
            return "infeasible", [], False
        if x_mip is not None:
            best, status, exact = x_mip[n:], "found", status_mip == "optimal"
    if _total(best) <= _TOL:               # only the LP was solved: its zero slack proves nothing
        return ("timeout" if status == "lp" else "infeasible"), [], False
    return status, _sentences(data, slacks, best), exact


def _total(s: np.ndarray) -> float:
    return float(np.sum(s[s > _TOL])) if len(s) else 0.0


def _solve(A, cost, lower, upper, rl, ru, integrality, time_left: float) -> tuple[np.ndarray | None, str]:
    """Minimise the total slack: (values, "optimal" | "limit"), or (None, "infeasible" | "limit")."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", max(float(time_left), 0.01))
    n, m = A.shape[1], A.shape[0]
    h.passModel(n, m, A.nnz, 1, 1, 0.0, cost, lower, upper, rl, ru,
                A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data, integrality)
    run_interruptible(h)
    ms = h.getModelStatus()
    if ms == highspy.HighsModelStatus.kInfeasible:
        return None, "infeasible"
    status = "optimal" if ms == highspy.HighsModelStatus.kOptimal else "limit"
    if h.getInfo().primal_solution_status != 2:
        return None, status
    return np.asarray(h.getSolution().col_value), status


def _sentences(data: Data, slacks: list[_Slack], values: np.ndarray) -> list[str]:
    """One sentence per relaxed requirement, biggest families first."""
    by_family: dict[str, dict] = {}
    decisions: dict[int, float] = {}
    for s, v in zip(slacks, values):
        if v <= _TOL:
            continue
        if s.family in ("fixed_decision", "fixed_lease") and s.decision is not None:
            decisions[s.decision] = decisions.get(s.decision, 0.0) + float(v)
            continue
        fam = by_family.setdefault(s.family, {})
        fam[s.key] = fam.get(s.key, 0.0) + float(v)
    out: list[str] = []
    if "cash_floor" in by_family:
        out.append(_cash_sentence(data, by_family.pop("cash_floor")))
    for i in sorted(decisions):
        out.append(f"{describe_decision(data.inst, i)} cannot hold together with the other rules")
    builders = {"capex_budget": _s_capex, "min_mining_share": _s_min_share, "max_converted_share": _s_max_share,
                "lease_once": _s_lease_once, "grid_interconnect": _grid_sentences, "purchase_cap": _purchase_sentences,
                "project_needs_ownership": _ownership_sentences, "lease_needs_ownership": _lease_own_sentences, **_PER_ENTITY}
    for fam, e in by_family.items():
        b = builders.get(fam)
        if b is not None:
            out += b(data, e)
        else:  # a family without words yet: name its rows and the model units
            for key, v in sorted(e.items(), key=lambda kv: -kv[1])[:3]:
                out.append(f"constraint {fam}[{key}] must be relaxed by {v:.4g} (model units; see models/formulation.md)")
    return out
