"""DESIGN section 12's mining and power levers against hand calculations (issue 14): demand
response and transmission peak charges, an owned plant on a gas price path with capacity revenue
and assumed debt, site mining overhead with exits and a G&A staff cut, hashprice forwards, and
joint-venture shares. Each solve is checked line by line against the evaluator (``verify``).

Base instance: tests/instances/levers.yaml (one site, Apr-Jun 2026: 720, 744, 720 h; 1000 units of
100 TH/s and 2 kW: 100 PH/s, 2 MW; hashprice 0.00045 BTC per PH/s per day = 45 USD at 100 kUSD/BTC).
One unit mines 0.000045 BTC a day: 1000 units mine 1.35 BTC in April (30 d), 1.395 BTC in May (31 d).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from optimizer.analysis.risk import risk_frontier
from optimizer.errors import InputError
from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import Plan
from optimizer.solve import PersistentSolver, solve

HERE = Path(__file__).parent / "instances"
BASE = yaml.safe_load((HERE / "levers.yaml").read_text())
MONTHS = ["2026-04", "2026-05", "2026-06"]


def make(edit) -> Instance:
    raw = copy.deepcopy(BASE)
    edit(raw)
    return Instance.from_dict(raw, base_dir=HERE)


def lines(ev, site: str | None = None, scenario: str | None = None) -> pd.DataFrame:
    """item x month table of the evaluator's lines (USD, undiscounted), zeros filled."""
    cf = ev.cashflows
    if site is not None:
        cf = cf[cf["site"] == site]
    if scenario is not None:
        cf = cf[cf["scenario"] == scenario]
    return cf.pivot_table(index="item", columns="month", values="usd", aggfunc="sum").fillna(0.0)


def at(tab: pd.DataFrame, item: str, month: str) -> float:
    return float(tab.loc[item, month]) if item in tab.index and month in tab.columns else 0.0


def df(rows, cols) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=cols)


def dfac(k: int) -> float:
    """Discount factor at the end of the k-th monthly period at 12 %/yr."""
    return 1.12 ** (-k / 12)


# ---------------------------------------------------------------- 1. demand response and peak charges

DR = {"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10},
      "transmission_peak": {"charge_usd_per_mw": 20000, "months": [6], "curtail_hours_per_month": 4}}


def _dr(raw):
    raw["markets"] = [copy.deepcopy(DR)]


def test_demand_response_by_hand():
    inst = make(_dr)
    ev = evaluate(inst, Plan())  # operations by the operating rule
    assert ev.violations == []
    tab = lines(ev)
    # Enrolling a unit pays 5000 USD/MW x 2 kW = 10 USD a month; its 10 curtailed hours lose 10/720
    # of its BTC (1000 units: 1.35 BTC x 10/720 = 0.01875 BTC = 1,875 USD in April) and save
    # 2 MW x 10 h x 40 = 800 USD: 10,000 - 1,875 + 800 > 0, so all 1000 units (2 MW) enroll.
    for mo in MONTHS:
        assert at(tab, "demand_response_usd", mo) == pytest.approx(2 * 5000, abs=1e-6)
    # April: revenue 1.35 BTC x 100,000 = 135,000 less 1,875 = 133,125;
    # power (2 MW x 720 h - 20 MWh) x 40 = 1,420 x 40 = 56,800.
    assert at(tab, "mining_revenue_usd", "2026-04") == pytest.approx(133_125, abs=1e-6)
    assert at(tab, "power_cost_usd", "2026-04") == pytest.approx(-56_800, abs=1e-6)
    # May (744 h, 31 d): 139,500 - 139,500 x 10/744 = 139,500 - 1,875 = 137,625; (1,488 - 20) x 40 = 58,720.
    assert at(tab, "mining_revenue_usd", "2026-05") == pytest.approx(137_625, abs=1e-6)
    assert at(tab, "power_cost_usd", "2026-05") == pytest.approx(-58_720, abs=1e-6)
    # June: the 4CP-like peak costs 20,000 USD/MW x 2 MW = 40,000 if mining runs through it; curtailing
    # the 4 h around it loses 135,000 x 4/720 = 750 USD and saves 2 x 4 x 40 = 320: curtail, no charge.
    # Revenue 135,000 x (1 - 14/720) = 132,375; power (1,440 - 28) x 40 = 56,480.
    assert at(tab, "peak_charge_usd", "2026-06") == 0.0
    assert at(tab, "mining_revenue_usd", "2026-06") == pytest.approx(132_375, abs=1e-6)
    assert at(tab, "power_cost_usd", "2026-06") == pytest.approx(-56_480, abs=1e-6)
    cur = ev.plan.curtailment.set_index("month")
    assert cur.loc["2026-06", "dr_units"] == pytest.approx(1000) and cur.loc["2026-06", "peak_units"] == pytest.approx(1000)
    hand = sum(dfac(k + 1) * v for k, v in enumerate([133_125 + 10_000 - 56_800, 137_625 + 10_000 - 58_720,
                                                      132_375 + 10_000 - 56_480]))
    assert ev.npv_usd == pytest.approx(hand, abs=1e-3)
    # the MILP finds the same plan and value
    res = solve(inst, mip_gap=1e-9)
    res.verify(1e-9)
    assert res.npv_usd == pytest.approx(hand, abs=1e-3)


def test_peak_not_avoided_when_curtailing_costs_more():
    # A 100 USD/MW peak charge: running costs 2 MW x 100 = 200, curtailing 4 h loses 750 - 320 = 430:
    # mining runs through the peak and pays 200 USD in June.
    def edit(raw):
        _dr(raw)
        raw["markets"][0]["transmission_peak"]["charge_usd_per_mw"] = 100
    inst = make(edit)
    ev = evaluate(inst, Plan())
    assert at(lines(ev), "peak_charge_usd", "2026-06") == pytest.approx(-200, abs=1e-6)
    res = solve(inst, mip_gap=1e-9)
    res.verify(1e-9)
    assert res.npv_usd == pytest.approx(ev.npv_usd, abs=1e-3)


def test_converting_forfeits_demand_response_and_firm_hpc_pays_the_peak():
    def edit(raw):
        _dr(raw)
        raw["sites"][0]["conversion"] = {"racks_per_block": 10, "capex_usd_per_mw": 0, "lead_months": 0}
        raw["leases"] = [{"id": "L1", "it_mw": 0.5, "rate_usd_per_kw_month": 100, "term_months": 3,
                          "window_start": "2026-04", "window_end": "2026-04", "noi_margin": 1.0}]
    inst = make(edit)
    plan = Plan(conversions=df([("s1", "2026-04", 1)], ["site", "month", "blocks"]),
                retirements=df([("s1", "a100", "2026-04", 1000)], ["site", "model", "month", "units"]),
                leases=df([("L1", "s1", "2026-04", 1.0)], ["lease", "site", "month", "share"]))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    tab = lines(ev)
    # no mining load left to enroll: the payment is forfeited
    assert "demand_response_usd" not in tab.index
    # the firm HPC load, 0.5 MW IT x PUE 1.5 = 0.75 MW, pays the June peak: 20,000 x 0.75 = 15,000
    assert at(tab, "peak_charge_usd", "2026-06") == pytest.approx(-15_000, abs=1e-6)
    assert at(tab, "peak_charge_usd", "2026-05") == 0.0


def test_demand_response_in_a_quarterly_period():
    # One quarter, Apr-Jun (91 days, 2,184 h); the program runs in May and June only: 2 months x
    # 5,000 x 2 MW = 20,000, and 2 x 10 h = 20 h off: 1000 units mine 0.000045 x 91 x 1000 = 4.095 BTC
    # = 409,500 USD in the quarter, 187.5 USD an hour, so 20 h lose 3,750.
    def edit(raw):
        raw["horizon"].update(periods=1, period_months=3)
        raw["markets"] = [{"id": "m", "demand_response": {"payment_usd_per_mw_month": 5000, "curtailment_hours_per_month": 10,
                                                          "months": [5, 6]}}]
    ev = evaluate(make(edit), Plan())
    tab = lines(ev)
    assert at(tab, "demand_response_usd", "2026-04") == pytest.approx(20_000)
    assert at(tab, "mining_revenue_usd", "2026-04") == pytest.approx(409_500 - 3_750)
    # energy: 2 MW x (2,184 - 20) h x 40
    assert at(tab, "power_cost_usd", "2026-04") == pytest.approx(-2 * 2_164 * 40)


def test_enrolling_more_than_operates_is_a_violation():
    inst = make(_dr)
    plan = Plan(operations=df([("base", "s1", "a100", "2026-04", 500)], ["scenario", "site", "model", "month", "units"]),
                curtailment=df([("base", "s1", "a100", "2026-04", 600, 0)],
                               ["scenario", "site", "model", "month", "dr_units", "peak_units"]))
    ev = evaluate(inst, plan, complete=False)
    assert any("600 units of model a100 enrolled in demand response exceed the 500 operating" in v for v in ev.violations)


# ---------------------------------------------------------------- 2. owned plant on a gas path

PLANT = {"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 2,
         "fixed_cost_usd_per_month": 10000, "heat_rate_mmbtu_per_mwh": 7, "fuel": "gas", "availability": 0.9,
         "capacity_revenue_usd_per_mw_year": 60000}


def _plant(raw):
    raw["fuels"] = [{"id": "gas", "price_usd_per_mmbtu": {"points": {"2026-04": 3, "2026-05": 6, "2026-06": 3}}}]
    raw["contracts"].append(copy.deepcopy(PLANT))


def test_plant_dispatches_when_market_beats_heat_rate_times_gas():
    inst = make(_plant)
    ev = evaluate(inst, Plan())
    assert ev.violations == []
    tab = lines(ev)
    # Marginal cost = 7 MMBtu/MWh x gas + 2: April and June 7 x 3 + 2 = 23 < 40 (market): run at
    # 5 MW x 0.9 availability = 4.5 MW x 720 h = 3,240 MWh; May 7 x 6 + 2 = 44 > 40: idle.
    en = ev.plan.energy.set_index(["contract", "month"])
    assert en.loc[("plant", "2026-04"), "delivered_mwh"] == pytest.approx(3240)
    assert ("plant", "2026-05") not in en.index or en.loc[("plant", "2026-05"), "delivered_mwh"] == pytest.approx(0)
    # fuel 3,240 x 21 = 68,040 in April and June, none in May
    assert at(tab, "fuel_cost_usd", "2026-04") == pytest.approx(-68_040, abs=1e-6)
    assert at(tab, "fuel_cost_usd", "2026-05") == 0.0
    # capacity revenue 4.5 MW x 60,000 / 12 = 22,500 a month, generating or not
    for mo in MONTHS:
        assert at(tab, "capacity_revenue_usd", mo) == pytest.approx(22_500, abs=1e-6)
    # April: mining 1,440 MWh from the index at 40 = 57,600; plant 3,240 x 2 + O&M 10,000 = 16,480;
    # the plant's 3,240 MWh exported at 40 = 129,600. May: 1,488 x 40 + 10,000 = 69,520.
    assert at(tab, "power_cost_usd", "2026-04") == pytest.approx(-(57_600 + 16_480), abs=1e-6)
    assert at(tab, "power_sold_usd", "2026-04") == pytest.approx(129_600, abs=1e-6)
    assert at(tab, "power_cost_usd", "2026-05") == pytest.approx(-69_520, abs=1e-6)
    # NPV: mining margin + plant margin (40 - 23) x 3,240 = 55,080 in Apr/Jun, capacity - O&M every month
    mining = [135_000 - 57_600, 139_500 - 59_520, 135_000 - 57_600]
    plant = [55_080, 0, 55_080]
    hand = sum(dfac(k + 1) * (mining[k] + plant[k] + 22_500 - 10_000) for k in range(3))
    assert ev.npv_usd == pytest.approx(hand, abs=1e-3)
    res = solve(inst, mip_gap=1e-9)
    res.verify(1e-9)
    assert res.npv_usd == pytest.approx(hand, abs=1e-3)
    gen = res.plan.energy.set_index(["contract", "month"])["delivered_mwh"]
    assert gen.get(("plant", "2026-05"), 0.0) == pytest.approx(0.0, abs=1e-6)
    assert gen[("plant", "2026-06")] == pytest.approx(3240)


def test_plant_gas_path_per_scenario():
    # A scenario's own gas path overrides the fuel's: at 1 USD/MMBtu in May (7 + 2 = 9 < 40) the plant runs.
    def edit(raw):
        _plant(raw)
        raw["scenarios"][0]["fuel_price_usd_per_mmbtu"] = {"gas": 1}
    ev = evaluate(make(edit), Plan())
    # 3,240 MWh x 9 USD... fuel part: 3,240 x 7 x 1 = 22,680 in April; May 4.5 x 744 = 3,348 MWh x 7 = 23,436
    tab = lines(ev)
    assert at(tab, "fuel_cost_usd", "2026-04") == pytest.approx(-22_680, abs=1e-6)
    assert at(tab, "fuel_cost_usd", "2026-05") == pytest.approx(-23_436, abs=1e-6)


def _bought_plant(raw, residual: float):
    raw["contracts"].append({"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "optional": True,
                             "variable_cost_usd_per_mwh": 30, "acquisition_price_usd": 2_000_000,
                             "residual_value_usd": residual,
                             "assumed_debt": {"principal_usd": 1_200_000, "interest_rate_per_year": 0.12, "tenor_months": 12}})


def test_assumed_debt_of_a_bought_plant_by_hand():
    inst = make(lambda raw: _bought_plant(raw, 1_900_000))
    plan = Plan(contracts=df([("plant", True)], ["contract", "signed"]))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    tab = lines(ev)
    # price 2.0M paid in April, 1.2M of it by the assumed debt (a draw in the purchase period);
    # bullet at 12 %/yr: interest 1 % a month x 1.2M = 12,000 from May; maturity after the horizon:
    # the 1.2M still owed is repaid at par at the end (terminal_debt_usd).
    assert at(tab, "acquisitions_usd", "2026-04") == pytest.approx(-2_000_000)
    assert at(tab, "debt_draws_usd", "2026-04") == pytest.approx(1_200_000)
    assert at(tab, "interest_usd", "2026-04") == 0.0
    assert at(tab, "interest_usd", "2026-05") == pytest.approx(-12_000)
    assert at(tab, "interest_usd", "2026-06") == pytest.approx(-12_000)
    assert at(tab, "terminal_debt_usd", "2026-06") == pytest.approx(-1_200_000)
    # The debt's value: +1.2M DF1 - 12,000 (DF2 + DF3) - 1.2M DF3 against the plant's own flows:
    # -2.0M DF1 + 1.9M DF3 + (40 - 30) x 5 MW x hours (exported; mining still buys at 40).
    debt = 1_200_000 * dfac(1) - 12_000 * (dfac(2) + dfac(3)) - 1_200_000 * dfac(3)
    plant = -2_000_000 * dfac(1) + 1_900_000 * dfac(3) + sum(dfac(k + 1) * 10 * 5 * h for k, h in enumerate([720, 744, 720]))
    base = evaluate(make(lambda raw: _bought_plant(raw, 1_900_000)), Plan())
    assert ev.npv_usd - base.npv_usd == pytest.approx(debt + plant, abs=1e-3)
    # bought when the residual value makes it worth it; the MILP books the same debt lines
    res = solve(make(lambda raw: _bought_plant(raw, 2_100_000)), mip_gap=1e-9)
    res.verify(1e-9)
    assert bool(res.plan.contracts.set_index("contract").loc["plant", "signed"])
    assert at(lines(res.evaluation), "interest_usd", "2026-06") == pytest.approx(-12_000)
    # its schedule is a result table even without a financing section: 1.2M drawn, 24,000 of
    # interest in 2026, 1.2M still owed at the end of the year's last period
    ds = res.tables()["debt_schedule"].set_index("instrument")
    assert ds.loc["plant", "drawn_usd"] == pytest.approx(1_200_000)
    assert ds.loc["plant", "interest_usd"] == pytest.approx(24_000)
    assert ds.loc["plant", "balance_usd"] == pytest.approx(1_200_000)


def plant_feeding_s2(raw) -> None:
    """The plant (5 MW, 20 USD/MWh, no export) sits at s1, which has no ASICs; s2 mines 1000 units
    (2 MW) and may take the plant's energy (feeds: [s2]) instead of its index contract at 60."""
    s2 = copy.deepcopy(raw["sites"][0])
    s2["id"] = "s2"
    raw["sites"][0]["halls"][0]["racks"] = 0
    raw["sites"].append(s2)
    raw["fleet"]["installed"] = [{"site": "s2", "model": "a100", "units": 1000}]
    raw["scenarios"][0]["power_price_usd_per_mwh"] = {"m": 60}
    raw["contracts"] = [{"id": "ix2", "site": "s2", "kind": "index", "adder_usd_per_mwh": 0},
                        {"id": "plant", "site": "s1", "kind": "owned_generation", "mw": 5, "variable_cost_usd_per_mwh": 20,
                         "can_export": False, "feeds": ["s2"]}]


def test_plant_feeds_another_site_behind_the_meter():
    inst = make(plant_feeding_s2)  # the plant at s1 may feed s2 instead of s2's index contract at 60
    ev = evaluate(inst, Plan())
    assert ev.violations == []
    # s2's 2 MW x 720 h = 1,440 MWh come from the plant at 20 (booked at the plant's site s1):
    # 28,800 in April (May 1,488 MWh: 29,760); s2 buys nothing at 60.
    fed = ev.plan.plant_feeds.set_index("month")["mwh"]
    assert fed["2026-04"] == pytest.approx(1440) and fed["2026-05"] == pytest.approx(1488)
    assert at(lines(ev, site="s1"), "power_cost_usd", "2026-04") == pytest.approx(-28_800)
    assert at(lines(ev, site="s2"), "power_cost_usd", "2026-04") == 0.0
    hand = sum(dfac(k + 1) * (rev - 20 * mwh) for k, (rev, mwh) in enumerate([(135_000, 1440), (139_500, 1488), (135_000, 1440)]))
    assert ev.npv_usd == pytest.approx(hand, abs=1e-3)
    res = solve(inst, mip_gap=1e-9)
    res.verify(1e-9)
    assert res.npv_usd == pytest.approx(hand, abs=1e-3)
    # feeding a site not listed is a violation
    bad = Plan(plant_feeds=df([("base", "plant", "s1", "2026-04", 10.0)], ["scenario", "contract", "site", "month", "mwh"]))
    assert any("which it may not feed" in v for v in evaluate(inst, bad, complete=False).violations)


def test_the_contracts_that_may_supply_each_site():
    from optimizer.evaluate.operations import site_contracts

    inst = make(plant_feeding_s2)  # s1 holds the plant; s2 its index contract, and the plant feeds it
    assert [c.id for c in site_contracts(inst, "s1")] == ["plant"]
    assert [c.id for c in site_contracts(inst, "s2")] == ["ix2", "plant"]  # instance order


def test_assumed_debt_needs_an_optional_plant():
    def edit(raw):
        _bought_plant(raw, 0)
        raw["contracts"][-1]["optional"] = False
    with pytest.raises((InputError, ValueError), match="only a plant bought by the plan"):
        make(edit)


# ---------------------------------------------------------------- 3. overhead and site exits


def _exit(raw):
    raw["horizon"]["periods"] = 4  # Apr-Jul: 30, 31, 30, 31 days
    raw["scenarios"][0]["power_price_usd_per_mwh"] = {
        "m": {"points": {"2026-04": 40, "2026-05": 70, "2026-06": 40, "2026-07": 70}}}
    raw["sites"][0]["mining_overhead"] = {"usd_per_month": 50_000, "exit_cost_usd": 10_000}
    raw["overhead"] = {"g_and_a_usd_per_month": 100_000, "reductions": [
        {"id": "cut15", "staff_cost_usd_per_year": 600_000, "cut_share": 0.15, "severance_weeks": 13}]}


def test_site_exits_when_margin_less_overhead_turns_negative_for_good():
    inst = make(_exit)
    res = solve(inst, mip_gap=1e-9)
    res.verify(1e-9)
    # Margin of the 1000 units less the 50,000 site overhead, per month:
    #   Apr 135,000 - 1,440 x 40 - 50,000 = +27,400;  May 139,500 - 1,488 x 70 - 50,000 = -14,660;
    #   Jun +27,400;                                  Jul -14,660.
    # (Without the overhead the units would run every month: 139,500 > 104,160.)
    # Exit in July: + 14,660 - 10,000 exit cost = +4,660 (x DF4). Exit in May: +14,660 - 27,400
    # + 14,660 - 10,000 < 0. Never: 0. So the site mines until June and exits in July.
    exits = res.plan.mining_exits
    assert list(exits.itertuples(index=False, name=None)) == [("s1", "2026-07")]
    tab = lines(res.evaluation)
    assert at(tab, "site_overhead_usd", "2026-06") == pytest.approx(-50_000)
    assert at(tab, "site_overhead_usd", "2026-07") == 0.0
    assert at(tab, "mining_revenue_usd", "2026-07") == 0.0
    # A 15 % cut of a 600,000/yr payroll saves 7,500 a month from the month taken (lag 0) and pays
    # 13 weeks of it: 90,000 x 13/52 = 22,500. Taken in April it saves 4 x 7,500 = 30,000 > 22,500.
    assert list(res.plan.overhead_cuts.itertuples(index=False, name=None)) == [("cut15", "2026-04")]
    for mo in ["2026-04", "2026-05", "2026-06", "2026-07"]:
        assert at(tab, "g_and_a_usd", mo) == pytest.approx(-92_500)
    # severance and exit cost each counted once
    assert tab.loc["restructuring_usd"].sum() == pytest.approx(-32_500)
    assert at(tab, "restructuring_usd", "2026-04") == pytest.approx(-22_500)
    assert at(tab, "restructuring_usd", "2026-07") == pytest.approx(-10_000)
    margin = [27_400, 139_500 - 104_160 - 50_000, 27_400, -10_000]
    hand = sum(dfac(k + 1) * (margin[k] - 92_500) for k in range(4)) - dfac(1) * 22_500
    assert res.npv_usd == pytest.approx(hand, abs=1e-3)


def test_exit_costs_more_than_it_saves():
    # A 30,000 exit cost exceeds July's 14,660 saving: the site keeps mining to the end.
    def edit(raw):
        _exit(raw)
        raw["sites"][0]["mining_overhead"]["exit_cost_usd"] = 30_000
    res = solve(make(edit), mip_gap=1e-9)
    res.verify(1e-9)
    assert len(res.plan.mining_exits) == 0
    assert at(lines(res.evaluation), "site_overhead_usd", "2026-07") == pytest.approx(-50_000)


def test_mining_after_the_exit_is_a_violation():
    inst = make(_exit)
    plan = Plan(mining_exits=df([("s1", "2026-05")], ["site", "month"]),
                operations=df([("base", "s1", "a100", "2026-06", 1000)], ["scenario", "site", "model", "month", "units"]))
    ev = evaluate(inst, plan, complete=False)
    assert any("after exiting mining" in v for v in ev.violations)


def test_g_and_a_escalates_and_a_cut_saves_after_its_lag():
    def edit(raw):
        raw["horizon"]["periods"] = 14  # 2026-04 .. 2027-05
        raw["overhead"] = {"g_and_a_usd_per_month": 100_000, "escalator_per_year": 0.10, "reductions": [
            {"id": "cut15", "staff_cost_usd_per_year": 600_000, "cut_share": 0.15, "severance_weeks": 13,
             "other_cost_usd": 1_000, "saving_lag_months": 2}]}
    ev = evaluate(make(edit), Plan(overhead_cuts=df([("cut15", "2026-05")], ["reduction", "month"])))
    assert ev.violations == []
    tab = lines(ev, site="portfolio")
    # cut in 2026-05: 90,000 x 13/52 + 1,000 = 23,500 then; 7,500 a month saved from 2026-07 (lag 2)
    assert at(tab, "restructuring_usd", "2026-05") == pytest.approx(-23_500)
    assert at(tab, "g_and_a_usd", "2026-06") == pytest.approx(-100_000)
    assert at(tab, "g_and_a_usd", "2026-07") == pytest.approx(-92_500)
    # from 2027-04 (12 months after the start) G&A and the saving grow 10 %: -110,000 + 8,250
    assert at(tab, "g_and_a_usd", "2027-03") == pytest.approx(-92_500)
    assert at(tab, "g_and_a_usd", "2027-04") == pytest.approx(-101_750)
    # a second cut of the same reduction is refused
    twice = evaluate(make(edit), Plan(overhead_cuts=df([("cut15", "2026-05"), ("cut15", "2026-08")], ["reduction", "month"])))
    assert any("taken twice" in v for v in twice.violations)


def test_reductions_cannot_save_more_than_g_and_a():
    def edit(raw):
        raw["overhead"] = {"g_and_a_usd_per_month": 1_000, "reductions": [
            {"id": "big", "staff_cost_usd_per_year": 600_000, "cut_share": 0.5}]}
    with pytest.raises((InputError, ValueError), match="more than g_and_a_usd_per_month"):
        make(edit)


# ---------------------------------------------------------------- 4. hashprice forwards


def _two_scenarios(raw, weight: float):
    sc = raw["scenarios"][0]
    raw["scenarios"] = [dict(sc, name="high", probability=0.5), dict(sc, name="low", probability=0.5, btc_price_usd=50_000)]
    raw["hedges"] = {"forwards": [{"id": "f1", "price_usd_per_ph_day": 33, "first_month": "2026-05", "last_month": "2026-06",
                                   "max_share_of_expected_hashrate": 0.5, "collateral_share": 0.1}]}
    raw["risk"] = {"weight": weight, "alpha": 0.5}


def test_forward_payoff_per_scenario_by_hand():
    inst = make(lambda raw: _two_scenarios(raw, 0.0))
    plan = Plan(hedges=df([("f1", "2026-05", 40.0), ("f1", "2026-06", 40.0)], ["forward", "month", "ph_s"]))
    ev = evaluate(inst, plan)
    assert ev.violations == []
    hi, lo = lines(ev, scenario="high"), lines(ev, scenario="low")
    # hashprice 45 USD/PH/day at 100k USD/BTC, 22.5 at 50k. May (31 d): 40 PH/s x (33 - 45) x 31 = -14,880;
    # low: 40 x (33 - 22.5) x 31 = +13,020. June (30 d): -14,400 / +12,600.
    assert at(hi, "hedge_payoff_usd", "2026-05") == pytest.approx(-14_880)
    assert at(lo, "hedge_payoff_usd", "2026-05") == pytest.approx(13_020)
    assert at(hi, "hedge_payoff_usd", "2026-06") == pytest.approx(-14_400)
    assert at(lo, "hedge_payoff_usd", "2026-06") == pytest.approx(12_600)
    # collateral 10 % of the notional (40 x 33 x 31 = 40,920; 40 x 33 x 30 = 39,600), posted in April
    # (the trade month), returned at each settlement
    assert at(hi, "hedge_collateral_usd", "2026-04") == pytest.approx(-(4_092 + 3_960))
    assert at(hi, "hedge_collateral_usd", "2026-05") == pytest.approx(4_092)
    assert at(lo, "hedge_collateral_usd", "2026-06") == pytest.approx(3_960)
    # above the cap: 0.5 x the 100 PH/s expected = 50 PH/s
    over = evaluate(inst, Plan(hedges=df([("f1", "2026-05", 60.0)], ["forward", "month", "ph_s"])))
    assert any("60 PH/s sold exceed max_share_of_expected_hashrate 0.5 x the 100 PH/s expected" in v for v in over.violations)


def test_cvar_weight_one_hedges_to_the_cap():
    # The forward (33) sits below the expected hashprice (33.75): risk-neutral, it loses
    # 0.75 USD per PH/s-day and is not sold. CVaR_0.5 is the low scenario's NPV, which gains
    # 10.5 per PH/s-day: with weight 1 the optimizer sells the cap, 0.5 x 100 = 50 PH/s, in May and June.
    neutral = solve(make(lambda raw: _two_scenarios(raw, 0.0)), mip_gap=1e-9, value_of_information=False)
    neutral.verify(1e-9)
    assert len(neutral.plan.hedges) == 0
    averse = solve(make(lambda raw: _two_scenarios(raw, 1.0)), mip_gap=1e-9, value_of_information=False)
    averse.verify(1e-9)
    h = averse.plan.hedges.set_index("month")["ph_s"]
    assert h["2026-05"] == pytest.approx(50.0) and h["2026-06"] == pytest.approx(50.0)
    # CVaR rises by the low scenario's payoff less the collateral's time value:
    # 50 x 10.5 x (31 DF2 + 30 DF3) + collateral 5,115 (DF2 - DF1) + 4,950 (DF3 - DF1)
    gain = 50 * 10.5 * (31 * dfac(2) + 30 * dfac(3)) + 5_115 * (dfac(2) - dfac(1)) + 4_950 * (dfac(3) - dfac(1))
    assert averse.cvar_usd - neutral.cvar_usd == pytest.approx(gain, abs=1e-3)


def test_risk_frontier_shows_the_hedge():
    # weight 0: no forward sold; weight 1: 50 PH/s in May (31 d) and June (30 d) = 50 x 61 = 3,050 PH/s-days,
    # with CVaR (the low scenario) higher and E[NPV] lower (the forward sits 0.75 USD under the mean)
    fr = risk_frontier(make(lambda raw: _two_scenarios(raw, 0.0)), weights=(0.0, 1.0), mip_gap=1e-9,
                       value_of_information=False).set_index("weight")
    assert fr.loc[0.0, "hashprice_sold_ph_days"] == 0.0
    assert fr.loc[1.0, "hashprice_sold_ph_days"] == pytest.approx(3050.0)
    assert fr.loc[1.0, "cvar_usd"] > fr.loc[0.0, "cvar_usd"] and fr.loc[1.0, "expected_npv_usd"] < fr.loc[0.0, "expected_npv_usd"]


# ---------------------------------------------------------------- 5. joint ventures


def test_joint_venture_halves_the_site_lines():
    def both(share):
        def edit(raw):
            _dr(raw)
            raw["overhead"] = {"g_and_a_usd_per_month": 100_000}
            raw["sites"][0]["ownership_share"] = share
        return make(edit)
    whole, half = evaluate(both(1.0), Plan()), evaluate(both(0.5), Plan())
    assert half.violations == []
    w, h = lines(whole, site="s1"), lines(half, site="s1")
    pd.testing.assert_frame_equal(h, 0.5 * w)
    # by hand: April's revenue 133,125 / 2 = 66,562.5; demand response 10,000 / 2 = 5,000
    assert at(h, "mining_revenue_usd", "2026-04") == pytest.approx(66_562.5)
    assert at(h, "demand_response_usd", "2026-04") == pytest.approx(5_000)
    # corporate G&A is the company's own
    pd.testing.assert_frame_equal(lines(half, site="portfolio"), lines(whole, site="portfolio"))
    res = solve(both(0.5), mip_gap=1e-9)
    res.verify(1e-9)
    assert res.npv_usd == pytest.approx(half.npv_usd, abs=1e-3)


# ---------------------------------------------------------------- the bundled case

CASE = Path(__file__).parents[1] / "instances" / "case_plant_and_flex.yaml"


def test_bundled_case(tmp_path):
    """instances/case_plant_and_flex.yaml solves, verifies line by line, and every lever's line is in
    cashflows.csv and the NPV breakdown the waterfall draws."""
    inst = Instance.from_yaml(CASE)
    res = solve(inst, mip_gap=0.005, time_limit_s=300, value_of_information=False)
    res.verify()
    res.write(tmp_path / "out")
    cf = pd.read_csv(tmp_path / "out" / "cashflows.csv")
    items = set(cf.loc[cf["usd"].abs() > 1.0, "item"])
    for item in ("demand_response_usd", "capacity_revenue_usd", "fuel_cost_usd", "site_overhead_usd", "g_and_a_usd",
                 "restructuring_usd", "debt_draws_usd", "interest_usd", "terminal_debt_usd", "hedge_payoff_usd"):
        assert item in items, item
        assert abs(float(res.npv_breakdown.set_index("item").loc[item, "pv_usd"])) > 0, item
    # the Q3 forward is settled a quarter after the trade: its collateral is posted in Q2, returned in Q3
    assert "hedge_collateral_usd" in items
    # the 15 % staff cut: 40 M$/yr x 0.15 = 6 M$/yr saved for 13 weeks' severance (1.5 M$) + 0.5 M$:
    # it pays for itself in 4 months, so it is taken in the first quarter
    assert list(res.plan.overhead_cuts["month"]) == ["2026-04"]
    # 4CP: a peak costs 15,000 USD/MW; an S21 XP (3.645 kW x PUE 1.05 = 3.83 kW) pays 57 USD in a peak
    # month, while its 12 h off lose 0.27 PH/s x ~31 USD/PH/day / 24 h x 12 h = ~4.2 USD: every running
    # unit is off at the peaks, so the charge is (numerically) zero
    assert abs(cf.loc[cf["item"] == "peak_charge_usd", "usd"].sum()) < 1.0
    # the free choice declines the plant at this price (fixed_decisions removed): a lower NPV with it
    raw = yaml.safe_load(CASE.read_text())
    raw["policy"]["fixed_decisions"] = []
    free = solve(Instance.from_dict(raw, base_dir=CASE.parent), mip_gap=0.005, time_limit_s=300, value_of_information=False)
    free.verify()
    assert not bool(free.plan.contracts.set_index("contract")["signed"].get("long-ridge", False))
    assert free.npv_usd > res.npv_usd


# ---------------------------------------------------------------- bad input: one clear line each


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.update(markets=[{"id": "nowhere", "demand_response": {"payment_usd_per_mw_month": 1}}]),
     "markets[0].id: no site is in market 'nowhere'"),
    (lambda raw: raw.update(markets=[{"id": "m", "demand_response": {"payment_usd_per_mw_month": 1, "curtailment_hours_per_month": 600},
                                      "transmission_peak": {"charge_usd_per_mw": 1, "months": [6], "curtail_hours_per_month": 100}}]),
     "exceeds the 672 h of the shortest month"),
    (lambda raw: raw["contracts"].append({"id": "p", "site": "s1", "kind": "owned_generation", "mw": 1, "variable_cost_usd_per_mwh": 1,
                                          "heat_rate_mmbtu_per_mwh": 7}),
     "give fuel and heat_rate_mmbtu_per_mwh together"),
    (lambda raw: raw["contracts"].append({"id": "p", "site": "s1", "kind": "owned_generation", "mw": 1, "variable_cost_usd_per_mwh": 1,
                                          "feeds": ["elsewhere"]}),
     "contracts[1].feeds: unknown site 'elsewhere'"),
    (lambda raw: raw.update(hedges={"forwards": [{"id": "f", "price_usd_per_ph_day": 40, "first_month": "2027-01", "last_month": "2027-02",
                                                  "max_share_of_expected_hashrate": 0.5}]}),
     "hedges.forwards[0].first_month"),
    (lambda raw: raw.update(hedges={"forwards": [{"id": "f", "price_usd_per_ph_day": 40, "first_month": "2026-06", "last_month": "2026-05",
                                                  "max_share_of_expected_hashrate": 0.5}]}),
     "last_month 2026-05 is before first_month 2026-06"),
    (lambda raw: raw["sites"][0].update(ownership_share=0), "ownership_share"),
])
def test_bad_lever_input_is_one_clear_line(edit, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make(edit)


def test_joint_venture_with_project_finance_verifies():
    # case_financed_conversion with its campus held at 50 %: the facilities' loan-to-cost compares
    # the whole project's draws with its whole capex, while the lines count the company's half.
    path = Path(__file__).parents[1] / "instances" / "case_financed_conversion.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["sites"][0]["ownership_share"] = 0.5
    res = solve(Instance.from_dict(raw, base_dir=path.parent), mip_gap=0.005, time_limit_s=300, value_of_information=False)
    res.verify()
    cf = res.evaluation.cashflows
    site = raw["sites"][0]["id"]
    drawn = res.plan.debt[res.plan.debt["instrument"].str.startswith("pf-")]["usd"].sum()
    booked = cf[(cf["site"] == site) & (cf["item"] == "debt_draws_usd")].groupby("scenario")["usd"].sum()
    assert drawn > 0
    assert booked.to_numpy() == pytest.approx(0.5 * drawn)
    conv_capex = cf[(cf["site"] == site) & (cf["item"] == "capex_usd")].groupby("scenario")["usd"].sum()
    # the 85 % loan-to-cost holds on the whole project: draws <= 0.85 x whole capex = 0.85 x 2 x booked capex
    assert drawn <= 0.85 * 2 * -conv_capex.min() * (1 + 1e-9)


def test_fuel_price_is_updated_in_place():
    # The persistent route updates the fuel price Param: doubling gas (April 7 x 6 + 2 = 44 > 40) idles
    # the plant, and the warm re-solve equals a cold one.
    base = make(_plant)
    ps = PersistentSolver(base, mip_gap=1e-9, baselines=False, shadow_prices=False)
    ps.solve()
    dear = base.with_overrides({"fuels[*].price_usd_per_mmbtu": {"mul": 2.0}})
    assert ps._solver.same_structure(dear)
    warm = ps.solve_with(dear)
    cold = solve(dear, mip_gap=1e-9, baselines=False, shadow_prices=False)
    warm.verify(1e-9)
    assert warm.objective_usd == pytest.approx(cold.objective_usd, abs=1e-3)
    assert "fuel_cost_usd" not in set(warm.evaluation.cashflows["item"])


# ---------------------------------------------------------------- 6. scenario trees


def _staged_tree(raw):
    """Two scenarios with the same history under a tree branching in 2026-04 and 2026-05 (two stages
    of commitments: a staged tree, not the two-stage form)."""
    sc = raw["scenarios"][0]
    raw["scenarios"] = [dict(sc, name="a", probability=0.5), dict(sc, name="b", probability=0.5)]
    raw["tree"] = {"branch_months": ["2026-04", "2026-05"], "paths": {"a": ["1", "1"], "b": ["1", "2"]}}


def test_levers_refused_on_a_staged_tree():
    make(_staged_tree)  # the same instance without a lever loads: the refusal is the levers', not the tree's

    def edit(raw):
        _staged_tree(raw)
        raw["hedges"] = {"forwards": [{"id": "f1", "price_usd_per_ph_day": 33, "first_month": "2026-05", "last_month": "2026-06",
                                       "max_share_of_expected_hashrate": 0.5, "collateral_share": 0.1}]}
        raw["sites"][0]["ownership_share"] = 0.5
    with pytest.raises((InputError, ValueError), match=r"hedges: not supported on multistage trees yet") as e:
        make(edit)
    assert "sites[0].ownership_share: not supported on multistage trees yet" in str(e.value)

    def two_stage(raw):  # one branch month at the horizon start is the two-stage form: levers allowed
        edit(raw)
        raw["tree"] = {"branch_months": ["2026-04"], "paths": {"a": ["1"], "b": ["2"]}}
    assert make(two_stage).hedges is not None
