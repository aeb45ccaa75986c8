"""Brute force on tiny instances: enumerate every first-stage combination, evaluate each plan
with the evaluator, keep the best one without violations, and compare it with the MILP.

The enumeration is written here from the instance (not from the model): conversion blocks
started per month (any multiset of at most ``max_blocks`` starts over the months a conversion
may start: ``earliest_month <= month`` and ``month + lead <= last month``, models/economics.md),
each lease unsigned or handed over at each eligible site in each month of its window (or any
later month when it has a late penalty), each optional contract signed or not, each site sale or
acquisition in any month from its option's first month or never, each grid expansion started in
any month it can start and finish or never. Operations are left to the evaluator's operating rule, which
is optimal per period and scenario once the first stage is fixed (optimizer/operations.py:
one site-period is a single-market clearing); the instances hold no other first-stage choice
(no ASIC purchases; no cash or treasury link between periods). Retirement is the one continuous
first-stage decision: see ``_fit_fleet``.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.kernel.timeline import month_label, month_ordinal
from optimizer.plan import Plan
from optimizer.solve import solve

ROOT = Path(__file__).resolve().parents[1]
# name -> (instance file, overrides). tiny.yaml as shipped keeps mining (L1 at 150 USD/kW-month
# does not pay for the ASICs it displaces); at 600 it signs L1, and its conversion forces retirements.
CASES = {
    "tiny_rate600": (ROOT / "instances" / "tiny.yaml", {"leases[L1].rate_usd_per_kw_month": 600}),
    "two_leases": (ROOT / "tests" / "instances" / "brute_two_leases.yaml", {}),
    "two_sites": (ROOT / "tests" / "instances" / "brute_two_sites.yaml", {}),
    "site_options": (ROOT / "tests" / "instances" / "brute_site_options.yaml", {}),
}


def load(case: str) -> Instance:
    path, overrides = CASES[case]
    inst = Instance.from_yaml(path)
    return inst.with_overrides(overrides) if overrides else inst


def _months(inst: Instance) -> list[str]:
    h = inst.horizon
    assert h.period_months == 1, "the enumeration below assumes monthly periods"
    s = month_ordinal(h.start_month)
    return [month_label(s + t) for t in range(h.periods)]


def _conversion_options(inst: Instance) -> list[list[tuple[str, str, int]]]:
    """Every combination of conversion starts: a list of (site, month, blocks) rows."""
    months = _months(inst)
    per_site = []
    for s in inst.sites:
        c = s.conversion
        if c is None:
            continue
        first = months.index(c.earliest_month) if c.earliest_month else 0
        starts = [t for t in range(first, len(months)) if t + c.lead_months <= len(months) - 1]
        cap = s.mining_racks // c.racks_per_block if c.max_blocks is None else min(c.max_blocks, s.mining_racks // c.racks_per_block)
        opts = []
        for k in range(cap + 1):
            for combo in itertools.combinations_with_replacement(starts, k):
                rows = {}
                for t in combo:
                    rows[t] = rows.get(t, 0) + 1
                opts.append([(s.id, months[t], b) for t, b in sorted(rows.items())])
        per_site.append(opts)
    return [sum(p, []) for p in itertools.product(*per_site)] if per_site else [[]]


def _lease_options(inst: Instance) -> list[list[tuple[str, str, str, float]]]:
    per_lease = []
    for l in inst.leases:
        ws, we = month_ordinal(l.window_start), month_ordinal(l.window_end)
        if l.late_penalty_usd_per_mw_month is not None:
            we = month_ordinal(_months(inst)[-1])
        sites = l.eligible_sites or [s.id for s in inst.sites]
        opts = [[]] + [[(l.id, sid, month_label(m), 1.0)] for sid in sites for m in range(ws, we + 1)]
        per_lease.append(opts)
    return [sum(p, []) for p in itertools.product(*per_lease)]


def _contract_options(inst: Instance) -> list[list[tuple[str, bool]]]:
    optional = [c.id for c in inst.contracts if c.optional]
    return [list(zip(optional, signs)) for signs in itertools.product([False, True], repeat=len(optional))]


def _event_options(inst: Instance) -> list[list[tuple[str, str, str]]]:
    """Every combination of site sales / acquisitions: (site, event, month) rows."""
    months = _months(inst)
    per_site = []
    for s in inst.sites:
        for event, opt, first in (("sale", s.sale, s.sale and s.sale.earliest_month), ("acquisition", s.acquisition, s.acquisition and s.acquisition.available_from)):
            if opt is not None:
                t0 = months.index(first) if first else 0
                per_site.append([[]] + [[(s.id, event, months[t])] for t in range(t0, len(months))])
    return [sum(p, []) for p in itertools.product(*per_site)]


def _expansion_options(inst: Instance) -> list[list[tuple[str, str, str]]]:
    """Every combination of grid-expansion starts: (site, option, month) rows."""
    months = _months(inst)
    per_option = []
    for s in inst.sites:
        for g in s.grid_expansions:
            t0 = months.index(g.earliest_month) if g.earliest_month else 0
            per_option.append([[]] + [[(s.id, g.id, months[t])] for t in range(t0, len(months)) if t + g.lead_months <= len(months) - 1])
    return [sum(p, []) for p in itertools.product(*per_option)]


def _fit_fleet(inst: Instance, conversions, events) -> list[tuple[str, str, str, float]]:
    """Retirements forced by the first stage: units that no longer fit the mining racks leave at
    the start of the month they stop fitting, all units leave at the start of their site's sale
    month, and no others.

    Optimal here: in tiny.yaml a unit earns 200 TH/s x 0.00045 BTC/PH/day x 100,000 USD = 9 USD a
    day and its power costs 3.5 kW x 24 h x 45 USD/MWh = 3.78 USD, a margin of ~160 USD a month,
    while retiring a month early only gains the discounting of its 500 USD salvage (~5 USD);
    brute_site_options.yaml has no salvage and no fixed mining opex, so retiring a unit earlier
    than forced never gains anything. Instances without retirement get none."""
    if not inst.fleet.allow_retirement:
        return []
    months = _months(inst)
    rows = []
    for s in inst.sites:
        units = [u for u in inst.fleet.installed if u.site == s.id]
        if not units:
            continue
        assert len(units) == 1, "the rule below handles one ASIC model per site"
        have, model = units[0].units, units[0].model
        sold = [m for sid, e, m in events if sid == s.id and e == "sale"]
        started = 0
        for m in months:
            if s.conversion is not None:
                started += sum(b for sid, mm, b in conversions if sid == s.id and mm == m)
            fit = s.asics_per_rack * (s.mining_racks - (s.conversion.racks_per_block * started if s.conversion else 0))
            if sold and m >= sold[0]:
                fit = 0
            if have > fit:
                rows.append((s.id, model, m, have - fit))
                have = fit
    return rows


def brute_force(inst: Instance):
    """(best NPV, best plan's first stage, NPVs of all feasible plans, number of plans)."""
    data = compile_instance(inst)
    feasible = []
    n = 0
    for conv, leases, contracts, events, grid in itertools.product(
            _conversion_options(inst), _lease_options(inst), _contract_options(inst), _event_options(inst), _expansion_options(inst)):
        n += 1
        plan = Plan(
            conversions=pd.DataFrame(conv, columns=["site", "month", "blocks"]),
            leases=pd.DataFrame(leases, columns=["lease", "site", "month", "share"]),
            contracts=pd.DataFrame(contracts, columns=["contract", "signed"]),
            site_events=pd.DataFrame(events, columns=["site", "event", "month"]),
            grid_expansions=pd.DataFrame(grid, columns=["site", "option", "month"]),
            retirements=pd.DataFrame(_fit_fleet(inst, conv, events), columns=["site", "model", "month", "units"]),
        )
        ev = evaluate(inst, plan, data=data)
        if not ev.violations:
            key = (tuple(conv), tuple((l, s, m) for l, s, m, _ in leases), tuple(c for c, signed in contracts if signed),
                   tuple(events), tuple(grid))
            feasible.append((ev.npv_usd, key))
    feasible.sort(key=lambda x: -x[0])
    return feasible, n


def _milp_key(res):
    p = res.plan
    conv = tuple((r.site, r.month, int(round(r.blocks))) for r in p.conversions.itertuples() if r.blocks > 0)
    leases = tuple(sorted((r.lease, r.site, r.month) for r in p.leases.itertuples()))
    signed = tuple(sorted(r.contract for r in p.contracts.itertuples() if r.signed))
    events = tuple(sorted((r.site, r.event, r.month) for r in p.site_events.itertuples()))
    grid = tuple(sorted((r.site, r.option, r.month) for r in p.grid_expansions.itertuples()))
    return conv, leases, signed, events, grid


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.slow
def test_milp_equals_brute_force(case):
    inst = load(case)
    feasible, n = brute_force(inst)
    assert len(feasible) >= 2, f"{case}: only {len(feasible)} feasible plans out of {n}"
    best_npv, best_key = feasible[0]
    assert best_key[1], f"{case}: the best plan signs no lease, the case exercises nothing"
    res = solve(inst, mip_gap=0.0, time_limit_s=120, baselines=False, shadow_prices=False, value_of_information=False)
    assert res.status == "optimal", res.message
    res.verify()
    assert res.npv_usd == pytest.approx(best_npv, rel=1e-6), (best_key, _milp_key(res))
    # when the best combination is unique (the runner-up is worse by more than the tolerance),
    # the MILP must have chosen it
    if feasible[1][0] < best_npv - 1e-6 * abs(best_npv):
        assert _milp_key(res) == tuple(tuple(sorted(x)) for x in best_key)


def test_enumeration_is_not_trivial():
    """The count of combinations enumerated matches the hand count."""
    # tiny_rate600: conversion starts in months 0..3 (lead 2, 6 months), up to 3 blocks: C(4 + 3, 3) = 35
    # multisets; L1 unsigned or one of 3 months: 4; no optional contract -> 140
    # two_leases: starts 0..2 (lead 1, 4 months), up to 3 blocks: C(3 + 3, 3) = 20; L1 1 + 2,
    # L2 1 + 2; PPA 2 -> 20 x 3 x 3 x 2 = 360
    # two_sites: b starts 0..2, up to 2 blocks: C(3 + 2, 2) = 10; L 1 + 2 sites x 2 months = 5;
    # PPA 2 -> 100
    # site_options: L unsigned, or at b or c in 2026-02 (window), 03 or 04 (late): 7; sale of a
    # never or in 03, 04: 3; acquisition of c never or in 03, 04: 3; expansion never or started in
    # 02 (online 03) or 03 (online 04): 3 -> 189
    counts = {"tiny_rate600": 140, "two_leases": 360, "two_sites": 100, "site_options": 189}
    for case in CASES:
        inst = load(case)
        n = (len(_conversion_options(inst)) * len(_lease_options(inst)) * len(_contract_options(inst))
             * len(_event_options(inst)) * len(_expansion_options(inst)))
        assert n == counts[case], case
