"""Scenario trees: structure, the node-indexed MILP against hand values and against the two-stage
form, the evaluator's non-anticipativity checks (models/trees.md)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from optimizer import Instance
from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.evaluate.treeplan import describe_node
from optimizer.plan import Plan
from optimizer.solve import solve

HERE = Path(__file__).parent
RULES = yaml.safe_load((HERE / "instances" / "rules.yaml").read_text())
HAND2 = yaml.safe_load((HERE / "instances" / "hand2.yaml").read_text())
SMALL = yaml.safe_load((HERE / "instances" / "stochastic_small.yaml").read_text())
EXACT = dict(mip_gap=0.0, value_of_information=False, value_of_flexibility=False, shadow_prices=False)


def run(inst: Instance, **kw):
    res = solve(inst, **{**EXACT, **kw})
    assert res.solved, res.message
    res.verify(rtol=1e-9)  # solver objective == evaluator NPV, and no violation (non-anticipativity included)
    return res


def rules(**changes) -> dict:
    d = copy.deepcopy(RULES)
    d.update(changes)
    return d


# ---------------------------------------------------------------- structure


def test_two_stage_default_is_one_root_and_one_leaf_per_scenario():
    data = compile_instance(Instance.from_dict(copy.deepcopy(HAND2), base_dir=HERE / "instances"))
    tree = data.tree
    assert tree.two_stage and tree.form == "two-stage"
    assert [n.name for n in tree.nodes] == ["root", "bull", "bear"]
    assert tree.nodes[0].scenarios == (0, 1) and tree.nodes[1].scenarios == (0,) and tree.nodes[2].scenarios == (1,)
    # every commitment at the root (representative 0), operations of scenario w at leaf w
    assert (tree.inv_rep == 0).all() and (tree.op_rep == np.arange(2)[None, :]).all()


def test_declared_paths_build_nodes_whose_probabilities_multiply_down_the_tree():
    scen = RULES["scenarios"][0]
    d = rules(scenarios=[{**scen, "name": f"s{i}", "probability": p} for i, p in enumerate([0.12, 0.18, 0.28, 0.42])],
              tree={"branch_months": ["2026-01", "2026-03"],
                    "paths": {"s0": ["a", "x"], "s1": ["a", "y"], "s2": ["b", "x"], "s3": ["b", "y"]}})
    tree = compile_instance(Instance.from_dict(d)).tree
    assert not tree.two_stage and tree.K == 2
    by = tree.by_name
    assert sorted(by) == ["a", "a/x", "a/y", "b", "b/x", "b/y", "root"]
    # node a = 0.12 + 0.18 = 0.30; its children 0.12 / 0.30 = 0.4 and 0.6 conditionally: 0.3 x 0.4 = 0.12
    assert by["a"].probability == pytest.approx(0.30) and by["b"].probability == pytest.approx(0.70)
    assert by["a/x"].probability / by["a"].probability == pytest.approx(0.4)
    # periods 0, 1 (Jan, Feb): commitments at the root, operations at depth 1; from March (period 2):
    # commitments at depth 1 (a or b), operations at the leaves
    assert list(tree.depth) == [1, 1, 2, 2, 2, 2] and list(tree.inv_depth) == [0, 0, 1, 1, 1, 1]
    assert tree.inv_node(3, 1).name == "a" and tree.op_node(3, 1).name == "a/y" and tree.op_node(0, 3).name == "b"


def test_scenarios_sharing_a_node_must_share_its_history():
    scen = RULES["scenarios"][0]
    up = {**scen, "name": "up", "probability": 0.5, "btc_price_usd": {"points": {"2026-01": 100000, "2026-02": 100000, "2026-03": 120000}}}
    down = {**scen, "name": "down", "probability": 0.5, "btc_price_usd": {"points": {"2026-01": 100000, "2026-02": 90000, "2026-03": 80000}}}
    # sharing node "n" (depth 1: January and February seen) although their February prices differ
    d = rules(scenarios=[up, down], tree={"branch_months": ["2026-01", "2026-03"], "paths": {"up": ["n", "u"], "down": ["n", "d"]}})
    with pytest.raises(ValueError, match=r"scenarios 'up' and 'down' share node 'n' but their btc_price_usd differs in 2026-02"):
        Instance.from_dict(d)
    # distinct depth-1 nodes: valid
    d["tree"]["paths"] = {"up": ["u", "u"], "down": ["d", "d"]}
    Instance.from_dict(d)
    # listed scenarios need paths; branch months must lie in the horizon
    with pytest.raises(ValueError, match="tree.paths: required"):
        Instance.from_dict(rules(scenarios=[up, down], tree={"branch_months": ["2026-01"]}))
    with pytest.raises(ValueError, match=r"tree.branch_months\[1\]: month 2027-01 is outside the horizon"):
        Instance.from_dict(rules(tree={"branch_months": ["2026-01", "2027-01"], "paths": {"base": ["a", "b"]}}))


def small_tree(children=(2, 2), samples=None, seed=7) -> dict:
    d = copy.deepcopy(SMALL)
    g = d["scenario_generator"]
    g["n_scenarios"] = int(np.prod(children))
    g["seed"] = seed
    g.pop("reduce_to", None)
    d["tree"] = {"branch_months": ["2026-01", "2027-01"], "children": list(children)}
    if samples:
        d["tree"]["samples_per_node"] = samples
    return d


def test_generated_tree_shares_history_within_nodes_and_is_reproducible():
    inst = Instance.from_dict(small_tree((3, 2), samples=12), base_dir=HERE / "instances")
    again = Instance.from_dict(small_tree((3, 2), samples=12), base_dir=HERE / "instances")
    assert [s.name for s in inst.scenarios] == ["s1-1", "s1-2", "s2-1", "s2-2", "s3-1", "s3-2"]
    assert sum(s.probability for s in inst.scenarios) == pytest.approx(1.0, abs=1e-12)
    tl = inst.timeline
    prices = {s.name: s.btc_price_usd.monthly(tl.start, tl.n_months) for s in inst.scenarios}
    for s in inst.scenarios:  # same seed, same tree
        assert np.array_equal(prices[s.name], again.scenarios[[x.name for x in again.scenarios].index(s.name)].btc_price_usd.monthly(tl.start, tl.n_months))
    # s1-1 and s1-2 share node 1 (2026) and part from 2027-01 (month 12); s1-* and s2-* part from month 1
    diff = np.nonzero(prices["s1-1"] != prices["s1-2"])[0]
    assert diff[0] == 12
    assert np.nonzero(prices["s1-1"] != prices["s2-1"])[0][0] == 1
    # children are labelled by increasing BTC price at the end of their stage (2026-12, month 11)
    assert prices["s1-1"][11] < prices["s2-1"][11] < prices["s3-1"][11]
    # the tree's own check passes on the generated paths; the 12 samples per node are reduced to 3 children
    # whose conditional probabilities sum to 1
    tree = compile_instance(inst).tree
    assert sum(n.probability for n in tree.nodes if n.depth == 1) == pytest.approx(1.0)
    assert len({round(n.probability, 12) for n in tree.nodes if n.depth == 1}) > 1  # reduction re-weights


# ---------------------------------------------------------------- the MILP on trees


def test_tree_with_identical_branches_equals_the_deterministic_instance():
    det = run(Instance.from_dict(rules()))
    scen = RULES["scenarios"][0]
    d = rules(scenarios=[{**scen, "name": f"s{i}", "probability": 0.25} for i in range(4)],
              tree={"branch_months": ["2026-01", "2026-03"],
                    "paths": {"s0": ["a", "x"], "s1": ["a", "y"], "s2": ["b", "x"], "s3": ["b", "y"]}})
    tree = run(Instance.from_dict(d))
    assert tree.npv_usd == pytest.approx(det.npv_usd, rel=1e-9)
    assert all(v == pytest.approx(det.npv_usd, rel=1e-9) for v in tree.npv_usd_by_scenario.values())


def test_tree_with_one_branch_per_stage_equals_the_two_stage_solve_of_that_scenario():
    two = run(Instance.from_dict(rules()))
    chain = run(Instance.from_dict(rules(tree={"branch_months": ["2026-01", "2026-03", "2026-05"], "paths": {"base": ["a", "b", "c"]}})))
    assert chain.tree.form == "multistage" and chain.tree.nodes == 4
    assert chain.npv_usd == pytest.approx(two.npv_usd, rel=1e-9)


def hand2_tree() -> dict:
    d = copy.deepcopy(HAND2)
    # bull and bear part in the first quarter; the commitments of 2026-07 on are taken once the
    # first half-year is known (at nodes bull / bear), operations run at one leaf each
    d["tree"] = {"branch_months": ["2026-01", "2026-07"], "paths": {"bull": ["bull", "x"], "bear": ["bear", "x"]}}
    return d


def test_tree_is_worth_at_least_the_two_stage_plan_on_the_same_leaves_and_is_non_anticipative():
    inst = Instance.from_dict(hand2_tree(), base_dir=HERE / "instances")
    tree = solve(inst, mip_gap=0.0, value_of_information=False, shadow_prices=False)  # value of flexibility on
    tree.verify(rtol=1e-9)
    two = run(Instance.from_dict(copy.deepcopy(HAND2), base_dir=HERE / "instances"))
    assert tree.tree.two_stage_npv_usd == pytest.approx(two.npv_usd, rel=1e-9)
    assert tree.npv_usd >= two.npv_usd - 1e-9 * abs(two.npv_usd)
    assert tree.value_of_flexibility_usd == pytest.approx(tree.npv_usd - two.npv_usd, rel=1e-12)
    s = tree.summary()
    assert s["tree"]["form"] == "multistage" and s["value_of_flexibility_usd"] >= -1e-6
    # commitments before 2026-07 are one decision for both scenarios: the root's rows only
    p = tree.plan
    for name in ("conversions", "purchases", "retirements", "leases", "site_events"):
        df = getattr(p, name)
        if len(df) and "node" in df.columns:  # no node column: every row at the root
            early = df[df["month"] < "2026-07"]
            assert set(early["node"]) <= {"root"}, name
    # every cash-flow line of hand2 still shows up, on the tree too
    assert set(tree.cashflows["item"]) >= set(two.cashflows["item"])


def test_generated_tree_beats_two_stage_and_model_lines_equal_the_evaluator():
    inst = Instance.from_dict(small_tree((2, 2)), base_dir=HERE / "instances")
    res = solve(inst, mip_gap=1e-6, value_of_information=False, shadow_prices=False, baselines=False)
    res.verify(rtol=1e-9)
    assert res.npv_usd >= res.tree.two_stage_npv_usd * (1 - 2e-6)
    key = ["scenario", "period", "site", "item"]
    model = res.model_cashflows.groupby(key)["usd"].sum()
    ev = res.cashflows.groupby(key)["usd"].sum()
    both = model.to_frame("m").join(ev.to_frame("e"), how="outer").fillna(0.0)
    assert np.allclose(both["m"], both["e"], rtol=1e-9, atol=1e-3)


def option_instance(tree: bool, p_up: float = 0.3) -> Instance:
    """One conversion block (1 MW IT for 10 M$, no lead time) whose only payoff is the terminal value
    of unleased HPC capacity: 1 M$/MW-yr NOI / 10% cap rate x the HPC index at the end, 1.6 if BTC
    (and AI demand) goes up, 0.6 if it goes down. No mining, no discounting."""
    def series(first, later):
        return {"points": {"2026-01": first, "2026-02": first, "2026-03": later, "2026-04": later}}
    d = {
        "name": "real-option",
        "horizon": {"start_month": "2026-01", "periods": 4, "discount_rate": 0.0,
                    "terminal": {"hpc_unleased_noi_usd_per_mw_year": 1_000_000, "hpc_cap_rate": 0.1, "asic_salvage": False,
                                 "treasury_btc": False}},
        "bitcoin": {"start_height": 940_000},
        "scenarios": [
            {"name": "up", "probability": p_up, "btc_price_usd": series(110_000, 150_000), "network_hashrate_eh_s": 900,
             "hpc_lease_rate_index": series(1.2, 1.6), "power_price_usd_per_mwh": {"m": 40}},
            {"name": "down", "probability": 1 - p_up, "btc_price_usd": series(80_000, 60_000), "network_hashrate_eh_s": 900,
             "hpc_lease_rate_index": series(0.8, 0.6), "power_price_usd_per_mwh": {"m": 40}},
        ],
        "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.0,
                   "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "mining", "racks": 10}],
                   "conversion": {"racks_per_block": 10, "capex_usd_per_mw": 10_000_000, "lead_months": 0}}],
        "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 3000}]},
    }
    if tree:  # up/down is known from the first two months; commitments from March are taken then
        d["tree"] = {"branch_months": ["2026-01", "2026-03"], "paths": {"up": ["up", "up"], "down": ["down", "down"]}}
    return Instance.from_dict(d)


@pytest.mark.parametrize("p_up", [0.3, 0.6])
def test_real_option_now_or_never_vs_wait_and_decide(p_up):
    # V = value of converting = 1 MW x 1 M$/0.1 x index - 10 M$: up 16 - 10 = +6 M$, down 6 - 10 = -4 M$.
    v_up, v_down = 1.0 * 1_000_000 / 0.1 * 1.6 - 10_000_000, 1.0 * 1_000_000 / 0.1 * 0.6 - 10_000_000
    assert (v_up, v_down) == (pytest.approx(6e6), pytest.approx(-4e6))
    now_or_never = max(0.0, p_up * v_up + (1 - p_up) * v_down)    # p=0.3: max(0, -1.0 M$) = 0; p=0.6: 2.0 M$
    tree_value = p_up * max(0.0, v_up) + (1 - p_up) * max(0.0, v_down)  # p=0.3: 1.8 M$; p=0.6: 3.6 M$
    two = run(option_instance(tree=False, p_up=p_up))
    tree = run(option_instance(tree=True, p_up=p_up))
    assert two.npv_usd == pytest.approx(now_or_never, abs=1e-3)
    assert tree.npv_usd == pytest.approx(tree_value, abs=1e-3)
    # the tree converts only on the up branch, decided there (from March)
    conv = tree.plan.conversions
    assert conv[["site", "blocks", "node"]].values.tolist() == [["a", 1.0, "up"]] and conv["month"].iloc[0] >= "2026-03"
    # the outputs say so: nothing to decide now, convert on the up branch, nothing on the down one
    assert two.summary()["tree"]["form"] == "two-stage" and "value_of_flexibility_usd" not in two.summary()
    s = tree.summary()
    assert s["tree"] == {"form": "multistage", "branch_months": ["2026-01", "2026-03"], "nodes": 5, "leaves": 2, "stages": 3}
    assert s["decide_now"] == [] and len(tree.tree.tables["decide_now"]) == 0
    up, down = s["contingent_plan"]["up"], s["contingent_plan"]["down"]
    assert (up["from"], up["probability"], down["probability"]) == ("2026-03", pytest.approx(p_up), pytest.approx(1 - p_up))
    # (March or April: without discounting and lead time both months earn the same terminal value)
    month = conv["month"].iloc[0]
    assert up["decisions"] == [f"start 1 conversion block at a in {month} (1 MW IT)"] and down["decisions"] == ["nothing new"]
    # what each branch has seen by February: BTC 110,000 / 80,000, flat since January; hashprice:
    # 1 PH/s of a 900 EH/s network earns 1/900,000 of 144 blocks x 3.125 BTC = 0.0005 BTC a day
    # (no fees), x 110,000 = 55.0 $/PH/day, x 80,000 = 40.0 $/PH/day
    assert up["description"] == "BTC 110,000 at 2026-02 (+0% since 2026-01), hashprice 55.0 $/PH/day, highest of 2 branches"
    assert down["description"] == "BTC 80,000 at 2026-02 (+0% since 2026-01), hashprice 40.0 $/PH/day, lowest of 2 branches"
    # a leaf's change runs from the last month its parent saw: 150,000 / 110,000 - 1 = +36% since 2026-02
    data = compile_instance(option_instance(tree=True, p_up=p_up))
    assert describe_node(data, data.tree.by_name["up/up"]) == \
        "BTC 150,000 at 2026-04 (+36% since 2026-02), hashprice 75.0 $/PH/day, one branch"
    by_node = tree.tree.tables["decisions_by_node"]
    assert by_node[["node", "decision", "site", "month", "amount"]].values.tolist() == [["up", "conversion", "a", month, 1.0]]


def treasury_instance() -> Instance:
    """100 BTC in treasury, no mining, no discounting; BTC goes up (100k, 120k, 140k) or down
    (100k, 70k, 40k) with probability 1/2 each; coins held at the end count at the last price."""
    def path(*p):
        return {"points": {f"2026-0{i + 1}": v for i, v in enumerate(p)}}
    scen = {"network_hashrate_eh_s": 1000, "power_price_usd_per_mwh": {"m": 40}}
    return Instance.from_dict({
        "horizon": {"start_month": "2026-01", "periods": 3, "discount_rate": 0.0},
        "bitcoin": {"start_height": 940_000},
        "scenarios": [{"name": "up", "probability": 0.5, "btc_price_usd": path(100_000, 120_000, 140_000), **scen},
                      {"name": "down", "probability": 0.5, "btc_price_usd": path(100_000, 70_000, 40_000), **scen}],
        "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 1, "pue_mining": 1.0, "pue_hpc": 1.0, "asics_per_rack": 1,
                   "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "mining", "racks": 1}]}],
        "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 3000}]},
        "treasury": {"btc_held_start": 100, "allow_treasury_sales": True},
    })


def test_treasury_sale_in_month_one_is_the_same_in_both_scenarios():
    inst = treasury_instance()
    res = run(inst)
    # E[P] = 100k, 95k, 90k: one schedule for both scenarios sells all 100 BTC in month 1 at 100k
    # (selling later, or holding to the end at E[P] = 90k, is worth less): 100 x 100,000 = 10 M$.
    assert res.npv_usd == pytest.approx(100 * 100_000, rel=1e-12)
    s = res.plan.btc_sales
    jan = s[s["month"] == "2026-01"].set_index("scenario")["btc"]
    assert jan["up"] == jan["down"] == pytest.approx(100.0)
    # the plan that knows the path (hold in up to sell at 140k, sell at once in down) is worth
    # 0.5 x 14 M$ + 0.5 x 10 M$ = 12 M$, and the evaluator flags it
    peek = res.plan.replace(btc_sales=pd_frame([("up", "2026-03", 100.0), ("down", "2026-01", 100.0)]))
    ev = evaluate(inst, peek)
    assert ev.npv_usd == pytest.approx(0.5 * 14e6 + 0.5 * 10e6, rel=1e-12)
    assert any("non-anticipativity: treasury BTC sales in 2026-01 differ between scenarios up (0) and down (100)" in v
               for v in ev.violations), ev.violations


def pd_frame(rows):
    import pandas as pd

    return pd.DataFrame(rows, columns=["scenario", "month", "btc"])


# ---------------------------------------------------------------- the evaluator on tree plans


@pytest.fixture(scope="module")
def hand2_tree_result():
    return run(Instance.from_dict(hand2_tree(), base_dir=HERE / "instances"))


def test_tree_plan_round_trips_through_its_directory(hand2_tree_result, tmp_path):
    res = hand2_tree_result
    res.write(tmp_path)
    back = Plan.load(tmp_path / "plan")
    assert "node" in back.conversions.columns or not len(back.conversions)
    ev = evaluate(Instance.from_dict(hand2_tree(), base_dir=HERE / "instances"), back)
    assert ev.violations == []
    assert ev.npv_usd == pytest.approx(res.npv_usd, rel=1e-9)
    for name in ("nodes", "decisions_by_node", "decisions_by_scenario", "decide_now"):
        assert (tmp_path / "plan" / f"{name}.csv").is_file()
    # plan.csv stays site x month (the probability-weighted allocation); per scenario beside it
    import pandas as pd

    inst = Instance.from_dict(hand2_tree(), base_dir=HERE / "instances")
    plan = pd.read_csv(tmp_path / "plan.csv")
    assert len(plan) == len(inst.sites) * inst.horizon.periods and "scenario" not in plan.columns
    by = pd.read_csv(tmp_path / "plan_by_scenario.csv")
    assert len(by) == len(inst.sites) * inst.horizon.periods * len(inst.scenarios)
    p = by["scenario"].map({sc.name: sc.probability for sc in inst.scenarios})
    assert np.allclose(plan["hpc_racks"], (by["hpc_racks"] * p).groupby([by["site"], by["month"]], sort=False).sum().to_numpy())


def test_operations_that_differ_inside_a_node_are_reported(hand2_tree_result):
    # on the one-scenario-per-leaf tree of hand2, operations never share a node; a tree whose
    # first-stage node holds both scenarios' first half-year operations: the 2x1 rules tree
    scen = RULES["scenarios"][0]
    d = rules(scenarios=[{**scen, "name": "s0", "probability": 0.5}, {**scen, "name": "s1", "probability": 0.5}],
              tree={"branch_months": ["2026-03", "2026-05"], "paths": {"s0": ["a", "x"], "s1": ["b", "x"]}})
    inst = Instance.from_dict(d)
    res = run(inst)
    ops = res.plan.operations.copy()
    # the root holds the operations of January and February (before the first branch): change s1's
    i = ops.index[(ops["scenario"] == "s1") & (ops["month"] == "2026-02")][0]
    ops.loc[i, "units"] = ops.loc[i, "units"] * 0.5
    ev = evaluate(inst, res.plan.replace(operations=ops))
    assert any(v.startswith("non-anticipativity: units of model a100 operating at site s1 in 2026-02 differ between scenarios")
               and "'root'" in v for v in ev.violations), ev.violations


def test_commitment_at_a_node_that_cannot_know_yet_is_reported(hand2_tree_result):
    import pandas as pd

    inst = Instance.from_dict(hand2_tree(), base_dir=HERE / "instances")
    plan = hand2_tree_result.plan
    # a conversion of 2026-01 decided at node bull, which is only known once the first half-year
    # has been seen: anticipative (the commitments of 2026-01 are the root's)
    conv = pd.DataFrame([("alpha", "2026-01", 1.0, "bull")], columns=["site", "month", "blocks", "node"])
    ev = evaluate(inst, plan.replace(conversions=conv))
    assert any("plan.conversions row 0: decided at tree node 'bull'" in v and "(non-anticipativity)" in v for v in ev.violations), ev.violations
    conv["node"] = "nowhere"
    ev = evaluate(inst, plan.replace(conversions=conv))
    assert any("unknown tree node 'nowhere'" in v for v in ev.violations)


def test_a_two_stage_plan_is_a_valid_policy_on_the_tree():
    # the now-or-never plan (no node column) applies at every node: feasible on the tree, and its
    # value there is what the two-stage solve found
    two_inst = Instance.from_dict(copy.deepcopy(HAND2), base_dir=HERE / "instances")
    two = run(two_inst)
    on_tree = evaluate(Instance.from_dict(hand2_tree(), base_dir=HERE / "instances"), two.plan)
    assert on_tree.violations == []
    assert on_tree.npv_usd == pytest.approx(two.npv_usd, rel=1e-12)


# ---------------------------------------------------------------- out-of-sample simulation


@pytest.mark.parametrize("which", ["option", "hand2", "generated"])
def test_rolling_policy_on_a_tree_scenario_without_resampling_realizes_the_tree_npv(which):
    # Re-planning at each branch month on the instance's own sub-tree ("no re-solve noise") and
    # committing the root's decisions must realize, on each scenario, the NPV the tree solution
    # gives that scenario (the evaluator's), since the optimal policy is time-consistent.
    from optimizer.analysis.simulate import simulate

    inst = {"option": lambda: option_instance(tree=True),
            "hand2": lambda: Instance.from_dict(hand2_tree(), base_dir=HERE / "instances"),
            "generated": lambda: Instance.from_dict(small_tree((2, 2)), base_dir=HERE / "instances")}[which]()
    tree = run(inst)
    names = [s.name for s in inst.scenarios]
    df = simulate(inst, scenarios=names, resample=False, policies=("rolling",), mip_gap=0.0)
    got = df.set_index("path")["realized_npv_usd"]
    for name in names:
        assert got[name] == pytest.approx(tree.npv_usd_by_scenario[name], rel=1e-7, abs=1.0), name


def test_simulation_with_a_fixed_seed_gives_the_same_result_and_resumes(tmp_path):
    from optimizer.analysis.simulate import POLICIES, simulate

    inst = Instance.from_dict(small_tree((2, 2)), base_dir=HERE / "instances")
    a = simulate(inst, 2, seed=11, out_dir=tmp_path / "a", mip_gap=1e-6)
    # the same seed in a spawned pool of 2 processes (parallel over paths): the same rows
    b = simulate(inst, 2, seed=11, mip_gap=1e-6, executor="processes", workers=2)
    cols = [c for c in a.columns if c != "seconds"]
    pd_testing().assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    assert list(a["policy"].unique()) == list(POLICIES) and a["path"].nunique() == 2
    assert (a["error"].astype(str) == "").all() and a["realized_npv_usd"].notna().all()
    # another seed, other paths; the same directory resumes: a third path is the only one simulated
    c = simulate(inst, 2, seed=12, mip_gap=1e-6, policies=("keep-mining",))
    assert not np.allclose(c["btc_price_end_usd"].to_numpy(float), a.drop_duplicates("path")["btc_price_end_usd"].to_numpy(float))
    heard = []

    class Recorder:  # the progress bar's events
        def start(self, label, total=None):
            heard.append(("start", label, total))

        def advance(self, n=1, label=None):
            heard.append(("advance", n))

        def note(self, message):
            heard.append(("note", message.split(":")[0]))

        def finish(self):
            heard.append(("finish",))

    more = simulate(inst, 3, seed=11, out_dir=tmp_path / "a", mip_gap=1e-6, progress=Recorder())
    assert more.attrs["paths_simulated"] == 1 and more["path"].nunique() == 3
    assert [e for e in heard if e[0] != "note" or e[1] == "simulate"][-4:] == [
        ("note", "simulate"), ("start", "simulate", 1), ("advance", 1), ("finish",)]  # 2 of 3 paths resumed, 1 to play
    pd_testing().assert_frame_equal(more[cols].iloc[: len(a)].reset_index(drop=True), a[cols].reset_index(drop=True))
    assert (tmp_path / "a" / "simulation.png").is_file() and (tmp_path / "a" / "simulation_summary.json").is_file()
    with pytest.raises(Exception, match="other settings"):
        simulate(inst, 2, seed=99, out_dir=tmp_path / "a", mip_gap=1e-6)


def pd_testing():
    import pandas.testing

    return pandas.testing


def test_cli_simulate_writes_simulation_csv(tmp_path):
    from optimizer.cli import main

    d = small_tree((2, 2))
    f = tmp_path / "tree.yaml"
    f.write_text(yaml.safe_dump(d))
    out = tmp_path / "sim"
    assert main(["simulate", str(f), "--paths", "1", "--out", str(out), "--gap", "0.001"]) == 0
    import pandas as pd

    df = pd.read_csv(out / "simulation.csv")
    assert {"rolling", "two-stage", "keep-mining"} <= set(df["policy"]) and df["realized_npv_usd"].notna().all()
    assert (out / "simulation.png").is_file()
    assert main(["simulate", str(HERE / "instances" / "hand2.yaml"), "--paths", "1", "--out", str(tmp_path / "x")]) == 2  # no generator: bad input


# ---------------------------------------------------------------- financing and taxes on a tree


def hand2_financed(rate: float, facility: bool = True) -> Instance:
    d = hand2_tree()
    fin = {"taxes": {"rate": rate, "btc_cost_basis_usd": 30_000}}
    if facility:  # alpha's conversion financed at 80% loan-to-cost, drawn in 2026, amortized over 2 years
        fin["project_facilities"] = [{"id": "pf", "site": "alpha", "commitment_usd": 8_000_000, "loan_to_cost": 0.8,
                                      "interest_rate_per_year": 0.08, "draw_first_month": "2026-01", "draw_last_month": "2026-10",
                                      "amortization_start_month": "2027-01", "tenor_months": 6}]
        # a conversion at alpha in 2026-04 (decided at the root) for the facility to finance
        d["policy"] = {**d.get("policy", {}), "fixed_decisions": [{"kind": "conversion", "site": "alpha", "month": "2026-04", "blocks": 2}]}
    d["financing"] = fin
    return Instance.from_dict(d, base_dir=HERE / "instances")


def test_financing_on_a_tree():
    # taxes per tax node (the node running the operations of the year's last quarter), draws at the
    # node taking the commitments of their quarter: solver objective == evaluator NPV, no violation
    res = run(hand2_financed(0.21))
    assert any(c.startswith("tax") for c in set(res.cashflows["item"]))
    # zero tax and no debt: the tree's own NPV (hand2_tree_result's) exactly
    zero = run(hand2_financed(0.0, facility=False))
    base = run(Instance.from_dict(hand2_tree(), base_dir=HERE / "instances"))
    assert zero.npv_usd == pytest.approx(base.npv_usd, rel=1e-9)


def test_value_of_information_on_a_tree():
    # EVPI on the tree (wait-and-see minus the tree optimum) and the tree's value over the
    # mean-value plan are >= 0 up to the gaps; the tree is worth at least the two-stage plan
    inst = Instance.from_dict(small_tree((2, 2)), base_dir=HERE / "instances")
    res = solve(inst, mip_gap=1e-6, shadow_prices=False, baselines=False)
    res.verify(rtol=1e-9)
    s = res.summary()
    tol = 4e-6 * abs(res.npv_usd) + 1.0
    assert s["evpi_usd"] >= -tol and s["value_over_mean_value_plan_usd"] >= -tol
    assert s["value_over_mean_value_plan_usd"] == pytest.approx(res.npv_usd - s["mean_value_plan_npv_usd"], abs=1e-3)
    assert s["value_of_flexibility_usd"] >= -tol
    v = res.voi
    assert v.wait_and_see_usd == pytest.approx(sum(sc.probability * v.wait_and_see_by_scenario_usd[sc.name] for sc in inst.scenarios), rel=1e-12)
    assert s["evpi_usd"] == pytest.approx(v.wait_and_see_usd - res.npv_usd, abs=1e-3)
