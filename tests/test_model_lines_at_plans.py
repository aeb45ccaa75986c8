"""Model cash-flow lines at a plan's values against the independent evaluator, line by line (site,
period, item), and the objective against the evaluator's NPV, on the lines the solved cases of the
model subset leave unchecked (each was a surviving mutant, benchmarks/MUTATION.md, 2 December):
corporate debt still owed at the horizon's end, GPUs retiring in the last period or held past it,
a G&A cut's restructuring line, take-or-pay with and without sell-back, a plant that feeds another
site and exports the rest, a bought site with mining overhead. No solve; see
test_model_financing_rows for the method (``at_plan``, ``same_lines``).
"""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
import pytest
from test_financing import _tiny
from test_hpc_levers import _base, _index, _site
from test_levers import make, plant_feeding_s2
from test_model import keep_mining_plan, tiny_dict
from test_model_financing_rows import at_plan, broken, line, same_lines

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.model import USD
from optimizer.plan import Plan


def check(d, plan: Plan, model: list | None = None) -> pd.DataFrame:
    """Rows hold, lines equal the evaluator's, objective = the evaluator's NPV; returns the lines
    (and appends the model to ``model`` when given)."""
    m, inst, full = at_plan(d, plan)
    assert broken(m) == {}
    cf = same_lines(m, inst, full)
    assert pyo.value(m.objective) * USD == pytest.approx(evaluate(inst, full).npv_usd, rel=1e-12, abs=1e-6)
    if model is not None:
        model.append(m)
    return cf


def test_corporate_debt_owed_at_the_end_is_repaid_at_par_then():
    # 3,000,000 of notes maturing after the 24-month horizon, 6 % coupon: repaid at par in the last
    # period as terminal_debt_usd = -3,000,000 (an outflow)
    d = _tiny(financing={"corporate_debt": [{"id": "n", "principal_usd": 3_000_000, "coupon_per_year": 0.06,
                                             "maturity_month": "2028-06"}]})
    cf = check(d, Plan())
    assert line(cf, "terminal_debt_usd") == pytest.approx({23: -3_000_000})


def gpu_site(life_months: int) -> dict:
    d = _base()
    d["sites"] = [_site("h", halls=[{"id": "hpc", "use": "hpc", "racks": 20}])]
    d["contracts"] = [_index("h")]
    d["gpu_cloud"] = {"options": [{"id": "gb", "kw_per_gpu": 2.0, "usd_per_mw": 1_200_000, "price_usd_per_mw_month": 100_000,
                                   "useful_life_months": life_months, "salvage_share": 0.25, "first_month": "2026-01"}]}
    return d


def test_gpus_retiring_in_the_last_period_are_salvaged_then_and_gpus_held_past_the_end_keep_a_book_value():
    buy = Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0]}))
    # 11 months of life from 2026-01: in service to 2026-11, retired in 2026-12 (period 11, the last):
    # 25 % of 1,200,000 = 300,000 salvage then
    cf = check(gpu_site(11), buy)
    assert line(cf, "gpu_salvage_usd") == pytest.approx({11: 300_000})
    # 24 months of life: 12 left at the end; book value straight line from cost to salvage,
    # 1,200,000 x (0.25 + 0.75 x 12 / 24) = 750,000 at site h
    cf = check(gpu_site(24), buy)
    assert line(cf, "terminal_gpu_usd") == pytest.approx({11: 750_000})
    assert set(cf.loc[cf["item"] == "terminal_gpu_usd", "site"]) == {"h"}


def test_a_g_and_a_cuts_restructuring_is_a_portfolio_line():
    d = tiny_dict()
    d["overhead"] = {"g_and_a_usd_per_month": 100_000, "reductions": [
        {"id": "cut15", "staff_cost_usd_per_year": 600_000, "cut_share": 0.15, "severance_weeks": 13,
         "other_cost_usd": 1_000, "saving_lag_months": 2}]}
    base = keep_mining_plan(compile_instance(Instance.from_dict(d)))
    plan = Plan(operations=base.operations, energy=base.energy,
                overhead_cuts=pd.DataFrame({"reduction": ["cut15"], "month": ["2026-02"]}))
    cf = check(d, plan)
    assert cf.loc[cf["item"] == "restructuring_usd", ["site", "period", "usd"]].values.tolist() == [["portfolio", 1, -23_500.0]]


@pytest.mark.parametrize("sell_back", [False, True])
def test_take_or_pay_below_the_minimum_at_a_plans_values(sell_back):
    # tiny's index contract replaced by a fixed one: 12 MW at 50 USD/MWh, 50 % take-or-pay; the plan
    # retires 2,000 of the 3,000 units in 2026-01, so the site draws 3.5 MW, below the 6 MW minimum:
    # without sell-back the 2.5 MW not taken are paid for (take_or_pay_shortfall), with sell-back
    # they are taken and sold at the market's 40 USD/MWh
    d = tiny_dict()
    d["contracts"] = [{"id": "fx", "site": "s1", "kind": "fixed", "mw_cap": 12, "price_usd_per_mwh": 50,
                       "take_or_pay_min_share": 0.5, "sell_back_allowed": sell_back}]
    plan = Plan(retirements=pd.DataFrame({"site": ["s1"], "model": ["m200"], "month": ["2026-01"], "units": [2000.0]}))
    built: list = []
    cf = check(d, plan, built)
    # with sell-back at a market never below 0, taking the minimum and selling the rest is never worse
    # than paying for energy not taken: the model drops the shortfall variable (power.take_minimum)
    assert (len(built[0].shortfall) == 0) == sell_back
    jan_mwh = 24 * 31
    if sell_back:
        assert line(cf, "power_sold_usd")[0] == pytest.approx(2.5 * jan_mwh * 40)
    else:
        assert sum(v for (t, v) in line(cf, "power_cost_usd").items() if t == 0) == pytest.approx(-6 * jan_mwh * 50)


def test_a_plant_feeding_another_site_exports_only_what_is_left():
    # test_levers' plant (5 MW at s1, 20 USD/MWh) feeding s2 (2 MW of ASICs), here allowed to export;
    # s2's index contract costs 60 + 10 USD/MWh: the plant runs flat out (the 60 market beats its 20),
    # feeds s2 (70 saved beats 60 earned) and sells the other 3 MW at 60
    def edit(raw):
        plant_feeding_s2(raw)
        raw["contracts"][0]["adder_usd_per_mwh"] = 10
        raw["contracts"][1]["can_export"] = True
    cf = check(make(edit), Plan())
    hours_apr = 24 * 30
    assert line(cf, "power_sold_usd")[0] == pytest.approx(3 * hours_apr * 60)


def test_a_bought_site_with_mining_overhead_pays_no_exit_cost_when_never_bought():
    # site b (10 mining racks, no units) may be bought from 2026-04 for 1 M$; its mining overhead is
    # 50,000 a month with a 200,000 exit cost. Never bought: no overhead, no exit cost
    d = tiny_dict()
    d["sites"].append({**{k: v for k, v in d["sites"][0].items() if k != "conversion"}, "id": "b",
                       "acquisition": {"price_usd": 1_000_000, "available_from": "2026-04"},
                       "mining_overhead": {"usd_per_month": 50_000, "exit_cost_usd": 200_000}})
    d["contracts"].append({"id": "idx_b", "site": "b", "kind": "index", "adder_usd_per_mwh": 5})
    cf = check(d, keep_mining_plan(compile_instance(Instance.from_dict(d))))
    assert line(cf, "restructuring_usd") == {} and line(cf, "site_overhead_usd") == {}


def test_racks_holding_gpus_at_the_end_are_not_also_valued_as_unleased_hpc():
    # 1 MW of GPUs (10 of h's 20 racks) still in service at the end are valued by their book value;
    # with a terminal value of unleased HPC (1 M$ per MW-year at a 10 % cap rate, index 1) only the
    # other 10 racks (1 MW) count: 1 x 1,000,000 / 0.1 = 10,000,000 at h
    d = gpu_site(24)
    d["horizon"]["terminal"].update(hpc_unleased_noi_usd_per_mw_year=1_000_000, hpc_cap_rate=0.1)
    buy = Plan(gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.0]}))
    cf = check(d, buy)
    assert line(cf, "terminal_hpc_usd") == pytest.approx({11: 10_000_000})


def test_a_bought_plants_assumed_debt_is_repaid_at_its_site():
    # test_levers' plant (5 MW at s1) bought for 2.0 M$ with 1.2 M$ of debt assumed, still owed at the
    # end: repaid at par there, a line of site s1 (the plant's)
    from test_levers import _bought_plant
    cf = check(make(lambda raw: _bought_plant(raw, 1_900_000)), Plan(contracts=pd.DataFrame({"contract": ["plant"], "signed": [True]})))
    assert cf.loc[cf["item"] == "terminal_debt_usd", ["site", "period", "usd"]].values.tolist() == [["s1", 2, -1_200_000.0]]


def test_gpus_beyond_a_contract_earn_the_merchant_price():
    # 1.5 MW of GPUs bought in 2026-01, 1 MW of them held for contract K: the other 0.5 MW earn the
    # merchant 300,000 USD per MW-month, 150,000 a month for 12 months
    from test_hpc_levers import _gpu_vs_colo
    d = _gpu_vs_colo(300_000)
    d["sites"][0]["halls"][0]["racks"] = 20
    d["gpu_cloud"]["options"][0].update(useful_life_months=24, last_month="2026-12")
    d["leases"] = [{"id": "K", "it_mw": 1.0, "rate_usd_per_kw_month": 700, "term_months": 12, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "gpu_option": "gb"}]
    plan = Plan(leases=pd.DataFrame({"lease": ["K"], "site": ["h"], "month": ["2026-01"], "share": [1.0]}),
                gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["h"], "month": ["2026-01"], "mw": [1.5]}))
    cf = check(d, plan)
    assert line(cf, "gpu_cloud_revenue_usd") == pytest.approx({t: 150_000 for t in range(12)})


def test_a_fleet_that_cannot_change_has_the_evaluators_terminal_mining_value():
    # tiny with 1,000 units (one thousand: the model's unit) and no retirement allowed: installed is
    # a constant, and the terminal value of mining them counts
    d = tiny_dict()
    d["fleet"]["installed"][0]["units"] = 1000
    d["fleet"]["allow_retirement"] = False
    d["horizon"]["terminal"] = {"mining_margin_multiple": 2.0}
    cf = check(d, Plan())
    assert line(cf, "terminal_mining_usd")[5] > 0


def test_cash_balance_at_a_plan_is_the_hand_running_total():
    # tiny keep-mining with 1,000,000 USD of cash at the start: every month adds its margin, 15,660 USD
    # a day (test_model's hand values); the ASIC salvage at the end is a terminal value, not cash
    d = tiny_dict()
    d["treasury"] = {"cash_start_usd": 1_000_000}
    m, _, _ = at_plan(d, keep_mining_plan(compile_instance(Instance.from_dict(d))))
    days = [31, 28, 31, 30, 31, 30]
    assert [m.cash[k].value * USD for k in m.cash_index] == pytest.approx([1_000_000 + 15_660 * sum(days[:t + 1]) for t in range(6)])


def test_a_plan_curtailing_units_the_model_cannot_curtail_is_refused_by_name():
    from test_model import build
    _, data, m = build()
    plan = keep_mining_plan(data)
    curt = pd.DataFrame({"scenario": ["base"], "site": ["s1"], "model": ["m200"], "month": ["2026-01"], "dr_units": [0.0],
                         "peak_units": [100.0]})
    from optimizer.model import mip_start_values
    with pytest.raises(ValueError) as e:
        mip_start_values(m, data, Plan(operations=plan.operations, energy=plan.energy, curtailment=curt))
    assert str(e.value).startswith("plan.curtailment: ")


def test_treasury_sales_on_a_staged_tree_have_the_evaluators_lines_on_every_path():
    # test_trees' treasury instance (100 BTC; up: 100k, 120k, 140k; down: 100k, 70k, 40k) as a staged
    # tree: both scenarios in node "a" in 2026-01, apart from 2026-02; every commitment, treasury sales
    # included, is taken one stage ahead, at "a": 10 BTC sold in 2026-01 and 5 in 2026-03 on both
    # paths, worth 5 x 140,000 (up) and 5 x 40,000 (down) then, the operations of the two nodes
    from test_trees import treasury_instance
    d = treasury_instance().model_dump(mode="json", exclude_none=True)
    d["tree"] = {"branch_months": ["2026-01", "2026-02"], "paths": {"up": ["a", "up"], "down": ["a", "down"]}}
    d["fleet"]["installed"] = [{"site": "a", "model": "x", "units": 1}]   # one unit mining, so the plan has operations
    sales = pd.DataFrame({"scenario": ["up", "down", "up", "down"], "month": ["2026-01", "2026-01", "2026-03", "2026-03"],
                          "btc": [10.0, 10.0, 5.0, 5.0]})
    cf = check(d, Plan(btc_sales=sales))
    got = cf[cf["item"] == "treasury_sales_usd"].groupby(["scenario", "period"])["usd"].sum().to_dict()
    assert got == pytest.approx({("down", 0): 1_000_000, ("down", 2): 200_000, ("up", 0): 1_000_000, ("up", 2): 700_000})
