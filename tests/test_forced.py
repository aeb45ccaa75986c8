"""Forced-optimum instances (GenX-style analytic tests): the optimum is unique and known by hand.

Each instance under tests/instances/forced_*.yaml explains its economics in its header; the
arithmetic is repeated here next to every expected number. The MILP is solved to a zero gap,
its decisions are read from the Plan and its NPV (the evaluator's) is compared, line by line,
with the hand computation.
"""

from __future__ import annotations

from pathlib import Path

import pyomo.environ as pyo
import pytest

from optimizer.economics.data import compile_instance
from optimizer.instance import Instance
from optimizer.model import USD, build_model, mip_start_values
from optimizer.solve import solve

HERE = Path(__file__).parent / "instances"
DAYS = [31, 28, 31, 30, 31, 30]  # 2026-01 .. 2026-06
MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]


def load(name: str, **overrides) -> Instance:
    inst = Instance.from_yaml(HERE / f"{name}.yaml")
    return inst.with_overrides(overrides) if overrides else inst


def run(inst: Instance):
    res = solve(inst, mip_gap=0.0, time_limit_s=60, shadow_prices=False)
    assert res.status == "optimal", res.message
    res.verify()
    return res


def units_by_month(res, model: str = "m100") -> list[float]:
    """Operating units of ``model`` at s1 per month (0 where the plan has no row)."""
    op = res.plan.operations
    op = op[(op["site"] == "s1") & (op["model"] == model)]
    by = op.groupby("month")["units"].sum()
    months = res.evaluation.kpis["month"].unique().tolist()  # the horizon's months
    return [float(by.get(m, 0.0)) for m in months]


def lines(res) -> dict[tuple[str, str], float]:
    """(item, month) -> USD of the evaluator's cash flows (all sites)."""
    cf = res.evaluation.cashflows
    return {k: float(v) for k, v in cf.groupby(["item", "month"])["usd"].sum().items()}


def assert_lines(res, expected: dict[tuple[str, str], float]) -> None:
    """Every non-zero cash-flow line equals the hand value, and no other line exists."""
    got = lines(res)
    got = {k: v for k, v in got.items() if abs(v) > 1e-6}
    assert set(got) == set(expected), f"lines differ: extra {set(got) - set(expected)}, missing {set(expected) - set(got)}"
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-6), k


# ---------------------------------------------------------------- (a) the profitable lease


def test_profitable_lease_signed_at_earliest_month_with_just_in_time_conversion():
    res = run(load("forced_lease"))
    plan = res.plan
    # signed once, at s1, handed over at window_start 2026-04
    assert plan.leases[["lease", "site", "month"]].values.tolist() == [["L1", "s1", "2026-04"]]
    assert plan.leases["share"].tolist() == [1.0]
    # one block, started in 2026-02 = hand-over 2026-04 (t = 3) minus the 2-month lead: just in
    # time (a January start pays the 2 M$ capex one month earlier for nothing)
    assert plan.conversions[plan.conversions["blocks"] > 0][["site", "month", "blocks"]].values.tolist() == [["s1", "2026-02", 1.0]]
    # mining keeps all 1000 units running (10 racks of ASICs left of 20 - 10 converted)
    assert units_by_month(res) == pytest.approx([1000.0] * 6)

    exp: dict[tuple[str, str], float] = {}
    for m, d in zip(MONTHS, DAYS):
        exp[("mining_revenue_usd", m)] = 1000 * 10.0 * d      # 1000 units x 10 USD a day
        exp[("power_cost_usd", m)] = -1000 * 6.0 * d           # 1000 units x 0.048 MWh x 125
    for m, d in zip(MONTHS[3:], DAYS[3:]):                      # L1 runs Apr-Jun inside the horizon
        exp[("lease_revenue_usd", m)] = 1.0 * 1000 * 300       # 1 MW x 1000 kW/MW x 300 USD/kW-month
        exp[("opex_usd", m)] = -(1 - 0.9) * 300_000            # NOI margin 0.9
        hpc_usd = 1.0 * 1.0 * 24 * d * 125                      # 1 MW x PUE 1 x hours x 125 USD/MWh
        exp[("power_cost_usd", m)] -= hpc_usd
        exp[("power_passthrough_usd", m)] = hpc_usd            # the tenant reimburses it at market price
    exp[("capex_usd", "2026-02")] = -1_000_000                 # 1 MW x 2 M$/MW over 2 lead months
    exp[("capex_usd", "2026-03")] = -1_000_000
    # 24-month term from 2026-04: 3 months inside the horizon, 21 after it; NOI 270,000 a month,
    # month k after the horizon end discounted by (1 + r)^(-k/12) = 1.01^-k
    terminal = sum(270_000 * 1.01 ** -k for k in range(1, 22))
    exp[("terminal_lease_noi_usd", "2026-06")] = terminal
    assert_lines(res, exp)

    # net cash per month (the rows above), each discounted at 1.01^-(t+1)
    net = [124_000, 112_000 - 1_000_000, 124_000 - 1_000_000, 120_000 + 270_000, 124_000 + 270_000, 120_000 + 270_000]
    npv = sum(x * 1.01 ** -(t + 1) for t, x in enumerate(net)) + terminal * 1.01 ** -6
    assert res.npv_usd == pytest.approx(npv, rel=1e-9)
    assert res.objective_usd == pytest.approx(npv, rel=1e-9)


def test_lease_dropped_when_rate_makes_it_unprofitable():
    """Control: at 30 USD/kW-month, NOI 27,000 a month x 24 < 2 M$ capex: not signed, nothing converted,
    NPV = mining alone = 4 USD x 1000 units x days, discounted."""
    res = run(load("forced_lease", **{"leases[0].rate_usd_per_kw_month": 30}))
    assert len(res.plan.leases) == 0
    assert float(res.plan.conversions["blocks"].sum()) == 0
    npv = sum(4.0 * 1000 * d * 1.01 ** -(t + 1) for t, d in enumerate(DAYS))
    assert res.npv_usd == pytest.approx(npv, rel=1e-9)


# ---------------------------------------------------------------- (b) hashprice too low


def test_low_hashprice_curtails_every_asic():
    res = run(load("forced_curtail"))
    assert units_by_month(res, "m100") == [0.0, 0.0, 0.0]
    assert units_by_month(res, "m200") == [0.0, 0.0, 0.0]
    assert float(res.plan.energy[["delivered_mwh", "used_mwh"]].to_numpy().sum()) == pytest.approx(0.0, abs=1e-9)
    exp = {
        ("contract_fees_usd", "2026-01"): -5_000,                 # mandatory contract's signing fee
        ("opex_usd", "2026-01"): -35_000,                          # 10,000 USD/MW-month x 3.5 MW installed
        ("opex_usd", "2026-02"): -35_000,
        ("opex_usd", "2026-03"): -35_000,
        ("terminal_asic_salvage_usd", "2026-03"): 1000 * 300 + 500 * 500,  # 550,000
    }
    assert_lines(res, exp)
    assert res.npv_usd == pytest.approx(-5_000 - 3 * 35_000 + 550_000, rel=1e-12)  # 440,000 (no discounting)


def test_low_hashprice_with_retirement_retires_everything_at_once():
    """Same instance with retirement allowed: salvage now (550,000) equals salvage at the end
    (no discounting), and retiring in 2026-01 saves the 3 x 35,000 opex: every unit goes at once."""
    res = run(load("forced_curtail", **{"fleet.allow_retirement": True}))
    ret = res.plan.retirements.groupby(["model", "month"])["units"].sum()
    assert ret.to_dict() == pytest.approx({("m100", "2026-01"): 1000.0, ("m200", "2026-01"): 500.0})
    exp = {("contract_fees_usd", "2026-01"): -5_000, ("salvage_usd", "2026-01"): 550_000}
    assert_lines(res, exp)
    assert res.npv_usd == pytest.approx(545_000, rel=1e-12)


# ---------------------------------------------------------------- (c) the halving


def test_halving_stops_mining_from_its_month_on():
    res = run(load("forced_halving"))
    # margins +4 (Jan, Feb), +1.5 (March, the mixed month), -1 USD a day (Apr-Jun)
    assert units_by_month(res) == pytest.approx([1000.0, 1000.0, 1000.0, 0.0, 0.0, 0.0], abs=1e-9)
    kp = res.evaluation.kpis.set_index("month")["hashprice_usd_per_ph_day"]
    # hashprice = 100,000 x subsidy x 144 / 450,000 = 32 x subsidy USD/PH/day
    assert kp.tolist() == pytest.approx([100.0, 100.0, 75.0, 50.0, 50.0, 50.0], rel=1e-12)
    exp = {}
    for m, d, rev in zip(MONTHS[:3], DAYS[:3], (10.0, 10.0, 7.5)):
        exp[("mining_revenue_usd", m)] = 1000 * rev * d
        exp[("power_cost_usd", m)] = -1000 * 6.0 * d
    assert_lines(res, exp)
    # 1000 x (4 x 31 + 4 x 28 + 1.5 x 31) = 124,000 + 112,000 + 46,500
    assert res.npv_usd == pytest.approx(282_500, rel=1e-12)


# ---------------------------------------------------------------- (d) take-or-pay


def test_full_take_or_pay_makes_curtailing_pointless():
    res = run(load("forced_take_or_pay"))
    assert units_by_month(res) == pytest.approx([1000.0] * 3)
    exp = {}
    for m, d in zip(MONTHS[:3], DAYS[:3]):
        exp[("mining_revenue_usd", m)] = 1000 * 5.0 * d        # 5 USD per unit-day
        exp[("power_cost_usd", m)] = -2 * 24 * d * 150          # the whole 2 MW x hours at 150, taken or not
    assert_lines(res, exp)
    # 90 days x (5,000 - 7,200) = -198,000
    assert res.npv_usd == pytest.approx(-198_000, rel=1e-12)


@pytest.mark.parametrize("share, units, npv", [
    # no minimum: each unit loses 7.2 - 5 = 2.2 USD a day, nothing runs, nothing is paid
    (0.0, 0.0, 0.0),
    # half the cap (1 MW = 500 units) is paid anyway: 500 units run on it, the rest would pay 150
    # revenue 500 x 5 x 90 = 225,000; paid 1 MW x 24 x 90 x 150 = 324,000
    (0.5, 500.0, 225_000 - 324_000),
])
def test_take_or_pay_share_sets_how_many_units_run(share, units, npv):
    res = run(load("forced_take_or_pay", **{"contracts[0].take_or_pay_min_share": share}))
    assert units_by_month(res) == pytest.approx([units] * 3, abs=1e-6)
    assert res.npv_usd == pytest.approx(npv, abs=1e-6)


# ---------------------------------------------------------------- (e) treasury timing


def test_held_btc_sold_at_the_price_peak_and_mining_stops_when_coins_are_worth_less_than_power():
    res = run(load("forced_treasury"))
    assert units_by_month(res) == pytest.approx([1000.0, 1000.0, 1000.0, 0.0], abs=1e-9)
    sales = res.plan.btc_sales.groupby("month")["btc"].sum()
    sales = {m: float(v) for m, v in sales.items() if v > 1e-9}
    # Feb: 10 held + 0.1 x 31 (Jan) + 0.1 x 28 (Feb) = 15.9 BTC; Mar: 0.1 x 31 = 3.1 BTC
    assert sales == pytest.approx({"2026-02": 15.9, "2026-03": 3.1})
    exp = {}
    for m, d, p in zip(MONTHS[:3], DAYS[:3], (50_000, 80_000, 60_000)):
        exp[("mining_revenue_usd", m)] = 0.1 * d * p      # mined BTC at the month's price ...
        exp[("btc_retained_usd", m)] = -0.1 * d * p       # ... kept in the treasury (hold)
        exp[("power_cost_usd", m)] = -4_800 * d
    exp[("treasury_sales_usd", "2026-02")] = 15.9 * 80_000  # 1,272,000
    exp[("treasury_sales_usd", "2026-03")] = 3.1 * 60_000   # 186,000
    assert_lines(res, exp)
    # 1,272,000 + 186,000 - 4,800 x (31 + 28 + 31)
    assert res.npv_usd == pytest.approx(1_026_000, rel=1e-12)


# ---------------------------------------------------------------- (f) ASIC purchase


def test_asics_bought_in_the_only_month_they_pay_back():
    res = run(load("forced_purchase"))
    buys = res.plan.purchases
    assert buys[["option", "site", "month"]].values.tolist() == [["p1", "s1", "2026-01"]]
    assert buys["units"].tolist() == pytest.approx([500.0])
    assert units_by_month(res) == pytest.approx([1000.0] + [1500.0] * 5)  # installed from Feb
    exp = {("asic_purchases_usd", "2026-01"): -500 * 1_000, ("terminal_asic_salvage_usd", "2026-06"): 1500 * 500}
    for m, d, n in zip(MONTHS, DAYS, [1000] + [1500] * 5):
        exp[("mining_revenue_usd", m)] = n * 10.0 * d
        exp[("power_cost_usd", m)] = -n * 6.0 * d
    assert_lines(res, exp)
    # 1000 x 4 x 181 + 500 x 4 x 150 - 500,000 + 750,000
    assert res.npv_usd == pytest.approx(1_274_000, rel=1e-12)


# ---------------------------------------------------------------- (g) policy limits and the cash floor
# forced_lease again (see (a)): signing L1 in 2026-04 needs one 10-rack block converted in Feb-Mar
# (capex 1 M$ in each month, 2 M$ in 2026). Each limit below is set once just at the block (the lease
# is signed as in (a)) and once just under it (nothing converts: NPV = mining alone).

LEASE_NET = [124_000, 112_000 - 1_000_000, 124_000 - 1_000_000, 390_000, 394_000, 390_000]
LEASE_TERMINAL = sum(270_000 * 1.01 ** -k for k in range(1, 22))   # 21 months after the horizon
LEASE_NPV = sum(x * 1.01 ** -(t + 1) for t, x in enumerate(LEASE_NET)) + LEASE_TERMINAL * 1.01 ** -6
MINING_NPV = sum(4.0 * 1000 * d * 1.01 ** -(t + 1) for t, d in enumerate(DAYS))


def assert_lease_in_april(res) -> None:
    assert res.plan.leases[["lease", "site", "month"]].values.tolist() == [["L1", "s1", "2026-04"]]
    assert res.plan.conversions[res.plan.conversions["blocks"] > 0][["month", "blocks"]].values.tolist() == [["2026-02", 1.0]]
    assert res.npv_usd == pytest.approx(LEASE_NPV, rel=1e-9)
    assert res.objective_usd == pytest.approx(LEASE_NPV, rel=1e-9)


def assert_mining_only(res) -> None:
    assert len(res.plan.leases) == 0
    assert float(res.plan.conversions["blocks"].sum()) == 0
    assert res.npv_usd == pytest.approx(MINING_NPV, rel=1e-9)
    assert res.objective_usd == pytest.approx(MINING_NPV, rel=1e-9)


@pytest.mark.parametrize("budget, signed", [(2_000_000, True), (1_990_000, False)])
def test_capex_budget_decides_whether_the_block_is_built(budget, signed):
    # the block's capex, 1 MW x 2 M$/MW = 2 M$, all falls in 2026 (Feb + Mar)
    res = run(load("forced_lease", **{"policy.capex_budget_usd_per_year": budget}))
    (assert_lease_in_april if signed else assert_mining_only)(res)


def test_capex_budget_of_another_year_does_not_bind_2026():
    # a budget given for 2027 only: 2026 has no limit, the block is built as in (a)
    res = run(load("forced_lease", **{"policy.capex_budget_usd_per_year": {2027: 0}}))
    assert_lease_in_april(res)


@pytest.mark.parametrize("share, signed", [(0.5, True), (0.55, False)])
def test_min_mining_share_decides_whether_the_block_is_built(share, signed):
    # s1 owned from the start with 20 mining racks and no HPC rack: converting the 10-rack block
    # leaves 10 mining racks; 0.5 x 20 = 10 allows it, 0.55 x 20 = 11 does not
    res = run(load("forced_lease", **{"policy.min_mining_share": share}))
    (assert_lease_in_april if signed else assert_mining_only)(res)


@pytest.mark.parametrize("share, signed", [(0.5, True), (0.45, False)])
def test_max_converted_share_decides_whether_the_block_is_built(share, signed):
    # 10 racks converted of 20 mining racks at the start: 0.5 x 20 = 10 allows it, 0.45 x 20 = 9 not
    res = run(load("forced_lease", **{"policy.max_converted_share": share}))
    (assert_lease_in_april if signed else assert_mining_only)(res)


def _two_equal_scenarios(inst: Instance) -> Instance:
    # the same scenario twice at probability 0.5: the model keeps one cash row per scenario and
    # shares each month's first-stage cash flow between them (first_stage_net); NPVs are unchanged
    raw = inst.model_dump(mode="json", exclude_none=True)
    sc = raw["scenarios"][0]
    raw["scenarios"] = [{**sc, "name": "a", "probability": 0.5}, {**sc, "name": "b", "probability": 0.5}]
    return Instance.from_dict(raw)


# Hand-over in May (conversion Mar + Apr): 2 months of NOI inside the horizon, 22 after it
MAY_NET = [124_000, 112_000, 124_000 - 1_000_000, 120_000 - 1_000_000, 394_000, 390_000]
MAY_NPV = (sum(x * 1.01 ** -(t + 1) for t, x in enumerate(MAY_NET))
           + sum(270_000 * 1.01 ** -k for k in range(1, 23)) * 1.01 ** -6)


def cash_instance(cash: float, scenarios: int) -> Instance:
    i = load("forced_lease", **{"treasury.cash_start_usd": cash, "treasury.min_cash_usd": 100_000})
    return _two_equal_scenarios(i) if scenarios == 2 else i


def test_cash_floor_delays_the_lease_until_the_capex_can_be_paid():
    # Cash starts at C, floor 100,000. Hand-over in April (capex Feb + Mar): cumulative net cash
    # 124,000, -764,000, -1,640,000 (Jan..Mar) needs C >= 1,740,000. Hand-over in May (capex Mar +
    # Apr): 124,000, 236,000, -640,000, -1,520,000 (Jan..Apr) needs C >= 1,620,000. May beats no
    # lease by far (NOI 270,000 a month), and beats June (a month more of NOI).
    # (the two-scenario cash rows are checked by the MIP start of (h))
    assert_lease_in_april(run(cash_instance(1_741_000, 1)))
    res = run(cash_instance(1_739_000, 1))
    assert res.plan.leases[["lease", "site", "month"]].values.tolist() == [["L1", "s1", "2026-05"]]
    assert res.plan.conversions[res.plan.conversions["blocks"] > 0][["month", "blocks"]].values.tolist() == [["2026-03", 1.0]]
    assert res.npv_usd == pytest.approx(MAY_NPV, rel=1e-9)
    assert res.objective_usd == pytest.approx(MAY_NPV, rel=1e-9)


# ---------------------------------------------------------------- (h) the optimum as a MIP start
# optimizer.model.mip_start_values turns a plan (first stage, operations, energy, BTC sales) back
# into model values: the optimum's own plan must give the hand NPV and satisfy every row.


@pytest.mark.parametrize("case", ["take_or_pay", "treasury", "cash"])
def test_mip_start_of_a_forced_optimum_reproduces_its_hand_npv(case):
    inst, npv = {
        "take_or_pay": (load("forced_take_or_pay", **{"contracts[0].take_or_pay_min_share": 0.5}), 225_000 - 324_000),  # see (d)
        "treasury": (load("forced_treasury"), 1_026_000),                                                                 # see (e)
        "cash": (cash_instance(1_739_000, 2), MAY_NPV),                                                                  # see (g)
    }[case]
    res = run(inst)
    data = compile_instance(inst)
    m = build_model(data)
    start = mip_start_values(m, data, res.plan)
    for v, x in start.items():
        v.set_value(x)
    assert pyo.value(m.objective) * USD == pytest.approx(npv, rel=1e-9)
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body, tol = pyo.value(c.body), 1e-7 * max(1.0, abs(pyo.value(c.body)))
        assert (c.lower is None or body >= pyo.value(c.lower) - tol) and (c.upper is None or body <= pyo.value(c.upper) + tol), c.name


# ---------------------------------------------------------------- (i) a site never bought


def test_site_never_acquired_pays_no_hpc_opex():
    # forced_lease at 30 USD/kW-month (the lease is not worth its block, see (a)) plus s2: 10 HPC
    # racks with HPC fixed opex 10,000 USD per MW-month, for sale from 2026-04 at 50 M$, worth
    # nothing to this company (no lease pays for it). It is never bought, so its HPC opex is never
    # paid, before the option opens nor after: NPV = mining at s1 alone.
    inst = load("forced_lease", **{"leases[0].rate_usd_per_kw_month": 30})
    raw = inst.model_dump(mode="json", exclude_none=True)
    s2 = {**raw["sites"][0], "id": "s2", "halls": [{"id": "h2", "use": "hpc", "racks": 10}],
          "fixed_opex_hpc_usd_per_mw_month": 10_000, "acquisition": {"price_usd": 50_000_000, "available_from": "2026-04"}}
    s2.pop("conversion")
    raw["sites"].append(s2)
    res = run(Instance.from_dict(raw))
    assert len(res.plan.site_events) == 0
    assert res.npv_usd == pytest.approx(MINING_NPV, rel=1e-9)
    assert res.objective_usd == pytest.approx(MINING_NPV, rel=1e-9)
