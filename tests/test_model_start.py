"""A plan turned back into model values (optimizer.model.mip_start_values) and a plan's first stage
pinned in a built model (optimizer.model.fix), for the decisions the forced optima do not use:
new builds, GPU purchases, overhead cuts, treasury sales; and the refusals of a plan the model
cannot hold. No solve: the values are set on the model and the objective read off.

The relation checked: with the values ``mip_start_values`` gives for a plan (operations filled by
``evaluate.operations.complete_operations``), every row of the model holds and the objective
equals the plan's NPV worked by hand (or, where a test says so, the independent evaluator's).
"""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
import pytest
from test_hpc_levers import _gpu_vs_colo, mining_shed
from test_model import build, keep_mining_npv_by_hand, keep_mining_plan, tiny_dict

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.evaluate.operations import complete_operations
from optimizer.instance import Instance
from optimizer.model import USD, build_model, mip_start_values
from optimizer.model.fix import FIRST_STAGE_VARS, first_stage_vars, fix_first_stage
from optimizer.plan import Plan


def start_and_read(inst: Instance, plan: Plan):
    """Set the model to the plan's MIP start; return (model, start, objective in USD); assert every row holds."""
    data = compile_instance(inst)
    m = build_model(data)
    start = mip_start_values(m, data, complete_operations(inst, plan, data))
    for v, x in start.items():
        v.set_value(x)
    broken = [c.name for c in m.component_data_objects(pyo.Constraint, active=True)
              if (c.lower is not None and pyo.value(c.body) < pyo.value(c.lower) - 1e-7 * max(1.0, abs(pyo.value(c.lower))))
              or (c.upper is not None and pyo.value(c.body) > pyo.value(c.upper) + 1e-7 * max(1.0, abs(pyo.value(c.upper))))]
    assert broken == []
    return m, start, pyo.value(m.objective) * USD


def test_gpu_purchase_and_its_contract_start_at_the_hand_npv():
    # test_hpc_levers' GPU cloud contract: 1 MW of GPUs (1.2 M$, 24-month life, half left at the
    # end: 0.6 M$ book value) serving lease K, 700 USD/kW-month for 12 months; the GPUs' power
    # 1.2 MW x 8,760 h x 40 USD/MWh = 420,480 USD paid by the landlord; rate 0
    d = _gpu_vs_colo(0.0)
    d["gpu_cloud"]["options"][0].update(useful_life_months=24, last_month="2026-12")
    d["leases"] = [{"id": "K", "it_mw": 1.0, "rate_usd_per_kw_month": 700, "term_months": 12, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "gpu_option": "gb"}]
    plan = Plan(leases=pd.DataFrame({"lease": ["K"], "site": ["h"], "month": ["2026-01"], "share": [1.0]}),
                gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0]}))
    m, start, npv = start_and_read(Instance.from_dict(d), plan)
    assert start[m.gbuy["gb", "h", 0]] == 1.0                    # MW
    assert start[m.x["K", "h", 0]] == 1.0
    assert npv == pytest.approx(12 * 700_000 - 1_200_000 + 600_000 - 420_480, rel=1e-12)


def test_a_new_build_and_the_units_it_houses_start_at_the_evaluators_npv():
    # test_hpc_levers' mining shed: 1 block of 10 racks (1,000 ASIC positions), capex 0.7 M$ over
    # 2026-01 and 02, holding 1,000 m200 units bought in 2026-01 (lead 2); NPV from the evaluator
    inst, plan = mining_shed()
    m, start, npv = start_and_read(inst, plan)
    assert start[m.nbuild["m", "shed", 0]] == 1.0
    assert start[m.buy["p", "m", 0]] == 1.0                      # thousand units
    ev = evaluate(inst, plan)
    assert ev.violations == []
    assert npv == pytest.approx(ev.npv_usd, rel=1e-12)


def test_an_overhead_cut_starts_at_the_hand_npv():
    # tiny.yaml keep-mining (hand NPV in test_model) + G&A 100,000 USD a month, cut in 2026-02:
    # severance 600,000 x 0.15 x 13/52 = 22,500 + 1,000 other = 23,500 in 2026-02, then 7,500 a month
    # saved from 2026-04 (lag 2); each month's flows discounted at its end, 1.12^(-(k+1)/12)
    d = tiny_dict()
    d["overhead"] = {"g_and_a_usd_per_month": 100_000, "reductions": [
        {"id": "cut15", "staff_cost_usd_per_year": 600_000, "cut_share": 0.15, "severance_weeks": 13,
         "other_cost_usd": 1_000, "saving_lag_months": 2}]}
    inst = Instance.from_dict(d)
    data = compile_instance(inst)
    plan = keep_mining_plan(data)
    plan = Plan(operations=plan.operations, energy=plan.energy,
                overhead_cuts=pd.DataFrame({"reduction": ["cut15"], "month": ["2026-02"]}))
    m, start, npv = start_and_read(inst, plan)
    assert start[m.cut["cut15", 1]] == 1.0 and start[m.cut["cut15", 0]] == 0.0
    disc = [1.12 ** (-(k + 1) / 12) for k in range(6)]
    by_hand = keep_mining_npv_by_hand() - 100_000 * sum(disc) - 23_500 * disc[1] + 7_500 * sum(disc[3:])
    assert npv == pytest.approx(by_hand, rel=1e-12)


# ---------------------------------------------------------------- what the model cannot hold


def test_a_plan_month_outside_the_horizon_is_refused_by_name():
    _, data, m = build()
    plan = Plan(conversions=pd.DataFrame({"site": ["s1"], "month": ["2026-07"], "blocks": [1.0]}))
    with pytest.raises(ValueError) as e:
        mip_start_values(m, data, plan)
    assert str(e.value) == "plan.conversions: month 2026-07 is outside the horizon"


def test_a_signed_contract_the_model_lacks_is_refused_and_an_unsigned_one_ignored():
    _, data, m = build()
    with pytest.raises(ValueError) as e:
        mip_start_values(m, data, Plan(contracts=pd.DataFrame({"contract": ["ghost"], "signed": [True]})))
    assert str(e.value) == "plan.contracts: ghost is not a decision of the model (not allowed by the instance)"
    mip_start_values(m, data, Plan(contracts=pd.DataFrame({"contract": ["ghost"], "signed": [False]})))  # no error


# ---------------------------------------------------------------- fix.py


def test_first_stage_vars_lists_every_decision_variable_once_in_declaration_order():
    _, _, m = build()
    vs = first_stage_vars(m)
    expected = [getattr(m, n)[k] for n in FIRST_STAGE_VARS for k in getattr(m, n + "_index")]
    assert [v.name for v in vs] == [v.name for v in expected]
    # tiny.yaml: 4 conversion starts (s1, 2026-01..04) first, then retirements of m200 at s1 in
    # each of the 6 months, then L1's hand-overs in its window 2026-03..05
    assert [v.name for v in vs[:4]] == [m.conv["s1", t].name for t in range(4)]
    assert [v.name for v in vs if v.parent_component() is m.x] == [m.x["L1", "s1", t].name for t in (2, 3, 4)]
    assert len({id(v) for v in vs}) == len(vs)


def test_fix_first_stage_with_sales_pins_each_months_largest_sale_until_the_cut_off():
    # treasury sales allowed: btc_sold[t] is a first-stage-like commitment per month; the plan's
    # two scenarios sell 2 and 5 BTC in 2026-01 and 1 BTC in 2026-03: the fix takes the larger
    d = tiny_dict()
    d["treasury"] = {"btc_held_start": 10, "mined_btc": "hold"}
    _, data, m = build(d)
    assert len(m.btc_sold) > 0
    sales = pd.DataFrame({"scenario": ["base", "other", "base"], "month": ["2026-01", "2026-01", "2026-03"], "btc": [2.0, 5.0, 1.0]})
    fix_first_stage(m, data, Plan(btc_sales=sales), until=3, sales=True)
    fixed = {k: m.btc_sold[k].value for k in m.btc_sold_index if m.btc_sold[k].fixed}
    key = lambda t: next(k for k in m.btc_sold_index if (k if isinstance(k, int) else k[0]) == t)  # noqa: E731
    assert fixed == {key(0): 5.0, key(1): 0.0, key(2): 1.0}
    assert not m.btc_sold[key(3)].fixed


def test_a_new_build_the_model_lacks_is_refused_by_its_table_name():
    _, data, m = build()
    with pytest.raises(ValueError) as e:
        mip_start_values(m, data, Plan(new_builds=pd.DataFrame({"site": ["s1"], "option": ["nb"], "month": ["2026-01"], "blocks": [1.0]})))
    assert str(e.value) == "plan.new_builds: ('s1', 'nb', 0) is not a decision of the model (not allowed by the instance)"


def test_a_gpu_purchase_row_naming_an_unknown_node_is_refused():
    d = _gpu_vs_colo(0.0)
    data = compile_instance(Instance.from_dict(d))
    m = build_model(data)
    rows = pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0], "node": ["nowhere"]})
    with pytest.raises(ValueError) as e:
        mip_start_values(m, data, Plan(gpu_purchases=rows))
    assert str(e.value) == "plan.gpu_purchases: unknown tree node 'nowhere'"


def test_a_site_sale_on_a_tree_node_starts_only_below_that_node():
    # test_trees' real-option instance (up/down known from 2026-03) with a sale option on site a from
    # 2026-03: a sale in 2026-03 at node "up" sets sell at up's commitment node (rep 0) only
    from test_trees import option_instance
    d = option_instance(True).model_dump(mode="json", exclude_none=True)
    d["sites"][0]["sale"] = {"price_usd": 5_000_000, "earliest_month": "2026-03"}
    data = compile_instance(Instance.from_dict(d))
    m = build_model(data)
    plan = Plan(site_events=pd.DataFrame({"site": ["a"], "event": ["sale"], "month": ["2026-03"], "node": ["up"]}))
    start = mip_start_values(m, data, plan)
    assert {k: start[m.sell[k]] for k in m.sell.index_set()} == {("a", 2, 0): 1.0, ("a", 2, 1): 0.0, ("a", 3, 0): 0.0, ("a", 3, 1): 0.0}


def test_fix_first_stage_until_a_period_pins_facility_draws_before_it_only():
    # test_financing's facility pf (draws 2026-01..03) and its loan plan: 1,000,000 drawn in 2026-02
    from test_financing import _loan_instance, _loan_plan
    inst = _loan_instance()
    data = compile_instance(inst)
    m = build_model(data)
    fix_first_stage(m, data, _loan_plan(), until=2)
    assert {k: (m.draw[k].fixed, m.draw[k].value) for k in m.draw_index} == {
        ("pf", 0): (True, 0.0), ("pf", 1): (True, 1.0), ("pf", 2): (False, None)}   # M$


def test_fix_first_stage_with_sales_on_a_tree_reads_each_keys_period():
    # test_trees' treasury instance (100 BTC) as a staged tree, up/down known from 2026-02: a sale's key
    # is (period, node rep); the plan sells 10 BTC in 2026-01 in both scenarios and 5 / 20 in 2026-02
    from test_trees import treasury_instance
    d = treasury_instance().model_dump(mode="json", exclude_none=True)
    d["tree"] = {"branch_months": ["2026-01", "2026-02"], "paths": {"up": ["a", "up"], "down": ["a", "down"]}}
    data = compile_instance(Instance.from_dict(d))
    m = build_model(data)
    sales = pd.DataFrame({"scenario": ["up", "down", "up", "down"], "month": ["2026-01", "2026-01", "2026-02", "2026-02"],
                          "btc": [10.0, 10.0, 5.0, 20.0]})
    fix_first_stage(m, data, Plan(btc_sales=sales), until=1, sales=True)
    assert {k: m.btc_sold[k].value for k in m.btc_sold_index if m.btc_sold[k].fixed} == {(0, 0): 10.0}
