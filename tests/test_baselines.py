"""Baseline plans: feasible on every shipped and test instance, and built by their documented
rules (decisions checked against hand reasoning on small instances)."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from optimizer.evaluate import BASELINES, baseline_plan, baseline_plans, evaluate, evaluate_baselines
from optimizer.instance import Instance

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).parent / "instances"
# infeasible_*.yaml are built to be infeasible (tests/test_solve.py): no plan can be feasible there
ALL_INSTANCES = sorted((ROOT / "instances").glob("*.yaml")) + sorted(
    p for p in HERE.glob("*.yaml") if not p.name.startswith("infeasible_"))


def load(name: str, edit=None) -> Instance:
    raw = copy.deepcopy(yaml.safe_load((HERE / f"{name}.yaml").read_text()))
    if edit is not None:
        edit(raw)
    return Instance.from_dict(raw, base_dir=HERE)


def rows(df: pd.DataFrame) -> list[tuple]:
    return [tuple(r) for r in df.itertuples(index=False)]


@pytest.mark.parametrize("path", ALL_INSTANCES, ids=[p.name for p in ALL_INSTANCES])
def test_every_baseline_is_feasible(path):
    inst = Instance.from_yaml(path)
    evs = evaluate_baselines(inst)
    assert set(evs) == set(BASELINES)
    for name, ev in evs.items():
        assert ev.violations == [], (path.name, name, ev.violations)
        # a baseline's operations are the operating rule's: re-completing its first stage alone by
        # the rule (and the rule's treasury sales) must price to the same NPV
        assert ev.plan.has_operations, (path.name, name)
        again = evaluate(inst, ev.plan.first_stage())
        assert again.npv_usd == pytest.approx(ev.npv_usd, rel=1e-9, abs=1e-6), (path.name, name)


def test_unknown_baseline_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^unknown baseline 'best'; choose one of: keep-mining, convert-asap, greedy$"):
        baseline_plan(load("rules"), "best")


def test_keep_mining_changes_nothing():
    p = baseline_plan(load("rules"), "keep-mining")
    for table in ("conversions", "leases", "purchases", "retirements", "site_events", "grid_expansions"):
        assert len(getattr(p, table)) == 0, table
    assert not p.contracts["signed"].any()   # the optional contract 'opt' stays unsigned
    assert p.has_operations


def test_convert_asap_on_tiny():
    # tiny.yaml: 30 mining racks, blocks of 10, lead 2 months, no earliest month -> all 3 blocks
    # start in 2026-01 (ready 2026-03 <= last period 2026-06); the 3000 units lose their racks and
    # are retired in 2026-01; L1 (1 MW = 10 racks of 100 kW) is handed over at the first month of
    # its window 2026-03..05 with HPC racks online: 2026-03.
    p = baseline_plan(Instance.from_yaml(ROOT / "instances" / "tiny.yaml"), "convert-asap")
    assert rows(p.conversions) == [("s1", "2026-01", 3.0)]
    assert rows(p.retirements) == [("s1", "m200", "2026-01", 3000.0)]
    assert rows(p.leases) == [("L1", "s1", "2026-03", 1.0)]


def test_convert_asap_on_rules():
    # rules.yaml: s1 may convert 1 block (max_blocks) from 2026-02 -> 1 block in 2026-02, mining
    # racks 20 -> 10 = 1000 positions, 500 of the 1500 units retired in 2026-02. Leases by rent
    # per MW (tie at 100 USD/kW-month: instance order): L1 (5 racks) at s1 in 2026-02 on the
    # 10-rack HPC hall; L2 (10 racks) needs 10 free racks in every month it runs: s1 has 5 free
    # until the block arrives in 2026-04 (15 free), s2 is never owned -> L2 at s1 in 2026-04.
    p = baseline_plan(load("rules"), "convert-asap")
    assert rows(p.conversions) == [("s1", "2026-02", 1.0)]
    assert rows(p.retirements) == [("s1", "a100", "2026-02", 500.0)]
    assert sorted(rows(p.leases)) == [("L1", "s1", "2026-02", 1.0), ("L2", "s1", "2026-04", 1.0)]


def test_convert_asap_respects_capex_budget_and_shares():
    # tiny.yaml with a budget of 1,000,000 USD a year: one block (1 MW x 1,000,000 USD) fits in
    # 2026, the next one does not -> exactly one block
    def edit(raw):
        raw["policy"] = {"capex_budget_usd_per_year": 1_000_000}

    raw = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    edit(raw)
    p = baseline_plan(Instance.from_dict(raw), "convert-asap")
    assert rows(p.conversions) == [("s1", "2026-01", 1.0)]
    # min_mining_share 0.5 of 30 racks keeps 15 mining racks -> one block (20 left), not two (10)
    raw["policy"] = {"min_mining_share": 0.5}
    p = baseline_plan(Instance.from_dict(raw), "convert-asap")
    assert rows(p.conversions) == [("s1", "2026-01", 1.0)]
    assert rows(p.retirements) == [("s1", "m200", "2026-01", 1000.0)]


def test_greedy_keeps_mining_when_mining_margin_beats_the_lease():
    # tiny.yaml: L1 needs one block (10 racks) that displaces 1000 m200 units. Per unit and 30-day
    # month: revenue 0.2 PH x 0.00045 x 30 x 100,000 = 270 USD, power 3.5 kW x 720 h x 45 USD
    # (index 40 + 5; the rule uses the market 40) ~ 100 USD -> margin ~170 USD x 1000 units
    # = 170,000 USD a month, above L1's NOI 0.9 x 150,000 = 135,000 before its energy, and
    # the block costs 1,000,000 USD on top -> no conversion, no lease.
    p = baseline_plan(Instance.from_yaml(ROOT / "instances" / "tiny.yaml"), "greedy")
    assert len(p.conversions) == 0 and len(p.leases) == 0


def test_greedy_converts_just_in_time_when_the_lease_pays():
    # same with rent 1,500 USD/kW-month: NOI 1,350,000 a month dwarfs the ~170,000 margin of the
    # 1000 displaced units and the 1,000,000 capex -> L1 is signed. Among its hand-overs
    # (2026-03..05, block started 2 months before each), every month of delay keeps the 1000
    # units mining (~170,000) and moves a month of the 12-month term past the horizon, where its
    # NOI still counts (terminal_lease_noi_usd) -> the largest V - C is the latest, 2026-05, with
    # the block started just in time in 2026-03 and the 1000 units retired then.
    raw = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    raw["leases"][0]["rate_usd_per_kw_month"] = 1500
    p = baseline_plan(Instance.from_dict(raw), "greedy")
    assert rows(p.conversions) == [("s1", "2026-03", 1.0)]
    assert rows(p.leases) == [("L1", "s1", "2026-05", 1.0)]
    assert rows(p.retirements) == [("s1", "m200", "2026-03", 1000.0)]


def test_greedy_signs_a_lease_on_existing_hpc_racks_when_it_adds_value():
    # hand.yaml has a built 10-rack HPC hall: L1 (1 MW, 24 months) fits without conversion. Its
    # NOI (80,000 a month, 84,000 from month 13) exceeds its energy (1.5 MW x 720 h x 40 =
    # 43,200 a month) -> signed. Hand-over 2026-04 rather than 2026-06: handing over in June gives
    # up April and May in the horizon, netting (80,000 - 1.5 x 720 x 40) x 1.12^(-1/12)
    # + (80,000 - 1.5 x 744 x 40) x 1.12^(-2/12) = 36,455 + 34,699 = ~71,150, for Apr and May 2028
    # after the horizon (k = 22, 23), netting 84,000 NOI - the landlord's power at 40 USD/MWh
    # (43,200 and 44,640) - the fixed HPC opex on its 1 MW (5,000) each, x 1.12^(-22/12) and
    # x 1.12^(-23/12): 29,070 + 27,660 = ~56,730. (Before the power and the fixed HPC opex after the
    # horizon counted, the later hand-over looked better.)
    p = baseline_plan(load("hand"), "greedy")
    assert rows(p.leases) == [("L1", "s1", "2026-04", 1.0)]
    assert len(p.conversions) == 0


def fixed(*decisions):
    def edit(raw):
        raw["policy"] = {"fixed_decisions": list(decisions)}
    return edit


def test_fixed_conversion_forces_retirements_in_keep_mining():
    # a pinned block at s1 in 2026-03 leaves 1000 positions for 1500 units: keep-mining follows
    # the pin and retires 500 units in 2026-03
    inst = load("rules", fixed({"kind": "conversion", "site": "s1", "month": "2026-03", "blocks": 1}))
    for name in BASELINES:
        ev = evaluate(inst, baseline_plan(inst, name))
        assert ev.violations == [], (name, ev.violations)
        assert ("s1", "2026-03", 1.0) in rows(ev.plan.conversions)
    p = baseline_plan(inst, "keep-mining")
    assert rows(p.retirements) == [("s1", "a100", "2026-03", 500.0)]


def test_fixed_lease_without_site_or_month_gets_the_earliest_hand_over():
    # L2 pinned as signed: keep-mining places it at the first month of its window (2026-02) at the
    # first eligible site with 10 free HPC racks (s1)
    inst = load("rules", fixed({"kind": "lease", "lease": "L2", "signed": True}))
    ev = evaluate(inst, baseline_plan(inst, "keep-mining"))
    assert ev.violations == []
    assert rows(ev.plan.leases) == [("L2", "s1", "2026-02", 1.0)]


def test_fixed_sale_acquisition_and_contract_are_followed():
    # s1 sold in 2026-04 (its 1500 units retired then), s2 bought in 2026-03, 'opt' signed
    inst = load("rules", fixed({"kind": "sale", "site": "s1", "month": "2026-04"},
                               {"kind": "acquisition", "site": "s2", "month": "2026-03"},
                               {"kind": "contract", "contract": "opt", "signed": True}))
    plans = baseline_plans(inst)
    for name, p in plans.items():
        ev = evaluate(inst, p)
        assert ev.violations == [], (name, ev.violations)
    p = plans["keep-mining"]
    assert sorted(rows(p.site_events)) == [("s1", "sale", "2026-04"), ("s2", "acquisition", "2026-03")]
    assert rows(p.retirements) == [("s1", "a100", "2026-04", 1500.0)]
    assert ("opt", True) in rows(p.contracts)


def test_fixed_unsigned_lease_is_never_signed():
    inst = load("rules", fixed({"kind": "lease", "lease": "L1", "signed": False}))
    p = baseline_plan(inst, "convert-asap")
    assert "L1" not in set(p.leases["lease"])


def test_pinned_lease_without_racks_gets_a_just_in_time_conversion():
    # tiny.yaml with L1 pinned as signed: no HPC racks exist, so keep-mining converts one block
    # (10 racks = 1 MW) started lead 2 months before the first hand-over 2026-03, i.e. 2026-01,
    # and retires the 1000 units those racks held
    raw = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    raw["policy"] = {"fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": True}]}
    inst = Instance.from_dict(raw)
    p = baseline_plan(inst, "keep-mining")
    assert evaluate(inst, p).violations == []
    assert rows(p.conversions) == [("s1", "2026-01", 1.0)]
    assert rows(p.leases) == [("L1", "s1", "2026-03", 1.0)]
    assert rows(p.retirements) == [("s1", "m200", "2026-01", 1000.0)]


def test_convert_asap_keeps_the_cash_minimum():
    # tiny.yaml with 500,000 USD cash, minimum 0, no treasury sales. A block costs 1,000,000 USD
    # (500,000 in each of 2 months) and frees 1000 units salvaged at 500 USD = 500,000. Mining
    # margin of 1000 units: Jan 1000 x 0.2 PH x 0.00045 x 31 d x 100,000 = 279,000 - 2604 MWh x 45
    # = 161,820; Feb 252,000 - 2352 x 45 = 146,160; Mar 161,820; Apr 270,000 - 2520 x 45 = 156,600.
    # 2 blocks in Jan: Jan 500,000 + 1,000,000 - 1,000,000 + 161,820 = 661,820;
    #   Feb 661,820 + 146,160 - 1,000,000 = -192,020 < 0 -> rejected; 1 block in Jan:
    #   Jan 500,000 + 500,000 - 500,000 + 323,640 = 823,640, Feb 823,640 + 292,320 - 500,000 >= 0.
    # A 2nd block in Feb: Feb 823,640 + 146,160 + 500,000 - 500,000 - 500,000 = 469,800,
    #   Mar 469,800 + 161,820 - 500,000 = 131,620 >= 0 -> kept.
    # A 3rd block in Mar: 469,800 + 500,000 - 500,000 - 500,000 = -30,200 < 0; in Apr: 131,620 +
    #   500,000 - 500,000 = 131,620, May - 500,000 < 0; from May it cannot finish -> 2 blocks.
    # (Without the cash rule all 3 start in Jan, see test_convert_asap_on_tiny.)
    raw = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
    raw["treasury"] = {"cash_start_usd": 500_000, "min_cash_usd": 0, "allow_treasury_sales": False}
    inst = Instance.from_dict(raw)
    p = baseline_plan(inst, "convert-asap")
    assert evaluate(inst, p).violations == []
    assert rows(p.conversions) == [("s1", "2026-01", 1.0), ("s1", "2026-02", 1.0)]
    assert rows(p.leases) == [("L1", "s1", "2026-03", 1.0)]
