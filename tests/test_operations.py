"""The operating rule against hand calculations on one period, and the merit-order dispatch
against an LP solved by scipy on random cases.

tests/instances/dispatch.yaml: April 2026 (720 h); one a100 unit (100 TH/s, 2000 W, PUE 1)
mines 0.1 PH x 0.00045 BTC/PH/day x 30 d = 0.00135 BTC = 135 USD and draws 1.44 MWh:
93.75 USD per MWh. 1500 units installed (2160 MWh if all run).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.optimize import linprog

from optimizer.evaluate import evaluate
from optimizer.evaluate.operations import complete_operations, dispatch
from optimizer.instance import Instance
from optimizer.plan import Plan

HERE = Path(__file__).parent / "instances"


def load(name: str, edit=None) -> Instance:
    raw = copy.deepcopy(yaml.safe_load((HERE / f"{name}.yaml").read_text()))
    if edit is not None:
        edit(raw)
    return Instance.from_dict(raw, base_dir=HERE)


def run(inst: Instance, plan: Plan | None = None):
    p = complete_operations(inst, plan or Plan())
    units = p.operations.groupby("model")["units"].sum().to_dict()
    energy = {r.contract: (r.delivered_mwh, r.used_mwh, r.sold_mwh) for r in p.energy.itertuples()}
    ev = evaluate(inst, p)
    assert ev.violations == [], ev.violations
    return units, energy, ev


def contracts(*cs, price=None):
    def edit(raw):
        raw["contracts"] = list(cs)
        if price is not None:
            raw["scenarios"][0]["power_price_usd_per_mwh"] = {"m": price}
    return edit


def test_index_power_above_revenue_per_mwh_curtails_every_unit():
    # 93.75 USD/MWh of revenue < 100 USD/MWh market price: nothing runs
    units, energy, ev = run(load("dispatch"))
    assert units == {"a100": 0.0}
    assert energy == {}
    assert ev.npv_usd == 0.0


def test_index_power_below_revenue_per_mwh_runs_every_unit():
    # 93.75 > 90: all 1500 units run, 2160 MWh at 90 USD
    units, energy, ev = run(load("dispatch", contracts({"id": "ix", "site": "s1", "kind": "index"}, price=90)))
    assert units == {"a100": pytest.approx(1500)}
    assert energy["ix"] == pytest.approx((2160, 2160, 0))
    assert ev.npv_usd == pytest.approx(1500 * 135 - 2160 * 90)  # 202,500 - 194,400 = 8,100


def test_take_or_pay_minimum_is_sunk_and_mined_through():
    # fixed 2 MW at 120 USD/MWh, minimum 0.5: the first 0.5 x 2 x 720 = 720 MWh cost nothing at the
    # margin -> 720 / 1.44 = 500 units run; beyond it 120 > 93.75 -> stop.
    fx = {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 120, "mw_cap": 2, "take_or_pay_min_share": 0.5}
    units, energy, ev = run(load("dispatch", contracts(fx)))
    assert units == {"a100": pytest.approx(500)}
    assert energy["fx"] == pytest.approx((720, 720, 0))
    assert ev.npv_usd == pytest.approx(500 * 135 - 720 * 120)


def test_sell_back_above_contract_price_sells_everything_when_mining_earns_less():
    # fixed 50 USD/MWh with sell-back, market 100: take the full cap 2 x 720 = 1440 MWh; using a
    # MWh forgoes 100 > 93.75 -> mine nothing, sell 1440 MWh: 1440 x (100 - 50) = 72,000
    fx = {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 50, "mw_cap": 2,
          "take_or_pay_min_share": 0.5, "sell_back_allowed": True}
    units, energy, ev = run(load("dispatch", contracts(fx, price=100)))
    assert units == {"a100": 0.0}
    assert energy["fx"] == pytest.approx((1440, 0, 1440))
    assert ev.npv_usd == pytest.approx(72_000)


def test_sell_back_between_prices_mines_the_cap_then_buys_index():
    # market 60 >= contract 50: fx fully taken, cost of use 60; ix at 60 + 5 = 65; both < 93.75:
    # all 1500 units run on fx 1440 MWh + ix 720 MWh, nothing sold
    fx = {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 50, "mw_cap": 2,
          "take_or_pay_min_share": 0.5, "sell_back_allowed": True}
    ix = {"id": "ix", "site": "s1", "kind": "index", "adder_usd_per_mwh": 5}
    units, energy, ev = run(load("dispatch", contracts(fx, ix, price=60)))
    assert units == {"a100": pytest.approx(1500)}
    assert energy["fx"] == pytest.approx((1440, 1440, 0))
    assert energy["ix"] == pytest.approx((720, 720, 0))
    assert ev.npv_usd == pytest.approx(1500 * 135 - 1440 * 50 - 720 * 65)


def test_sell_back_below_contract_price_takes_only_the_minimum():
    # market 30 < contract 120: the minimum 720 MWh is taken (cost of use 30 < 93.75 -> 500 units
    # run on it), energy above it costs 120 > 93.75 -> not taken; pays 720 x 120
    fx = {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 120, "mw_cap": 2,
          "take_or_pay_min_share": 0.5, "sell_back_allowed": True}
    units, energy, ev = run(load("dispatch", contracts(fx, price=30)))
    assert units == {"a100": pytest.approx(500)}
    assert energy["fx"] == pytest.approx((720, 720, 0))
    assert ev.npv_usd == pytest.approx(500 * 135 - 720 * 120)


def test_negative_market_price_does_not_take_unused_minimum():
    # market -10, contract 120 with sell-back and minimum 720 MWh: the minimum is free at the
    # margin, so mining (93.75 USD/MWh) runs on it up to the 0.25 MW grid (180 MWh -> 125 units);
    # the unused 540 MWh of the minimum are NOT taken (they would sell at -10).
    fx = {"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 120, "mw_cap": 2,
          "take_or_pay_min_share": 0.5, "sell_back_allowed": True}

    def edit(raw):
        contracts(fx, price=-10)(raw)
        raw["sites"][0]["grid_interconnect_mw"] = 0.25

    units, energy, ev = run(load("dispatch", edit))
    assert units == {"a100": pytest.approx(125)}
    assert energy["fx"] == pytest.approx((180, 180, 0))
    # pays the minimum 720 x 120 whatever is taken
    assert ev.npv_usd == pytest.approx(125 * 135 - 720 * 120)


def test_owned_generation_exports_when_market_beats_mining():
    # 3 MW at 20 USD/MWh variable cost, market 100 >= 20: generate 3 x 720 = 2160 MWh; using it
    # forgoes 100 > 93.75 -> export it all: 2160 x (100 - 20) = 172,800
    gen = {"id": "g", "site": "s1", "kind": "owned_generation", "mw": 3, "variable_cost_usd_per_mwh": 20}
    units, energy, ev = run(load("dispatch", contracts(gen, price=100)))
    assert units == {"a100": 0.0}
    assert energy["g"] == pytest.approx((2160, 0, 2160))
    assert ev.npv_usd == pytest.approx(172_800)
    # without export the energy costs 20 < 93.75: every unit runs
    units, energy, ev = run(load("dispatch", contracts(dict(gen, can_export=False), price=100)))
    assert units == {"a100": pytest.approx(1500)}
    assert energy["g"] == pytest.approx((2160, 2160, 0))
    assert ev.npv_usd == pytest.approx(1500 * 135 - 2160 * 20)


def test_firm_hpc_first_then_mining_within_the_grid():
    # lease 1 MW on the 10 HPC racks (PUE 1): 720 MWh firm; grid 2 MW = 1440 MWh leaves 720 MWh
    # for mining = 500 units (index at 90 < 93.75)
    def edit(raw):
        contracts({"id": "ix", "site": "s1", "kind": "index"}, price=90)(raw)
        raw["sites"][0]["grid_interconnect_mw"] = 2
        raw["leases"] = [{"id": "L", "it_mw": 1.0, "rate_usd_per_kw_month": 100, "term_months": 12,
                          "window_start": "2026-04", "window_end": "2026-04"}]

    plan = Plan(leases=pd.DataFrame([("L", "s1", "2026-04", 1.0)], columns=["lease", "site", "month", "share"]))
    units, energy, ev = run(load("dispatch", edit), plan)
    assert units == {"a100": pytest.approx(500)}
    assert energy["ix"] == pytest.approx((1440, 1440, 0))


def test_merit_order_runs_the_best_model_first():
    # b200: 200 TH/s, 3000 W: 0.2 x 0.00045 x 30 x 100,000 = 270 USD per 3 x 720 / 1000 = 2.16 MWh
    # = 125 USD/MWh; a100 93.75. Fixed 3 MW at 110, minimum 0.6: 0.6 x 3 x 720 = 1296 MWh free at
    # the margin. b200 (500 units = 1080 MWh) first, a100 gets the remaining 216 MWh = 150 units;
    # beyond the minimum 110 > 93.75 stops a100 but b200 is already fully running.
    def edit(raw):
        contracts({"id": "fx", "site": "s1", "kind": "fixed", "price_usd_per_mwh": 110, "mw_cap": 3,
                   "take_or_pay_min_share": 0.6})(raw)
        raw["fleet"]["asic_models"].append({"name": "b200", "hashrate_th_s": 200, "power_w": 3000})
        raw["fleet"]["installed"].append({"site": "s1", "model": "b200", "units": 500})

    units, energy, _ = run(load("dispatch", edit))
    assert units == {"a100": pytest.approx(150), "b200": pytest.approx(500)}
    assert energy["fx"] == pytest.approx((1296, 1296, 0))


def test_terminal_mining_value_in_the_last_period():
    # last period with mining_margin_multiple 1 (k = 12): value per MWh 93.75 + 12 x (93.75 - 90)
    # = 138.75 > index cost 90 + 5 = 95 -> run; without it 93.75 < 95 -> curtail.
    ix = {"id": "ix", "site": "s1", "kind": "index", "adder_usd_per_mwh": 5}

    def edit(multiple):
        def f(raw):
            contracts(ix, price=90)(raw)
            raw["horizon"]["terminal"]["mining_margin_multiple"] = multiple
        return f

    assert run(load("dispatch", edit(0.0)))[0] == {"a100": 0.0}
    units, _, ev = run(load("dispatch", edit(1.0)))
    assert units == {"a100": pytest.approx(1500)}
    # cash 1500 x 135 - 2160 x 95 = -2,700; terminal 12 x (202,500 - 2160 x 90) = 97,200
    assert ev.npv_usd == pytest.approx(-2_700 + 97_200)


def test_hold_without_terminal_treasury_value_mines_nothing():
    # under hold the coins are only worth their terminal value, switched off here
    def edit(raw):
        contracts({"id": "ix", "site": "s1", "kind": "index"}, price=1)(raw)
        raw["treasury"] = {"mined_btc": "hold"}

    assert run(load("dispatch", edit))[0] == {"a100": 0.0}


def test_treasury_sells_just_enough_btc_to_keep_the_cash_minimum():
    # rules.yaml without ASICs or take-or-pay: buying s2 in 2026-03 for 500,000 from 100,000 cash
    # leaves -400,000 -> sell 400,000 / 100,000 USD = 4 BTC in 2026-03, nothing else
    def edit(raw):
        raw["fleet"]["installed"] = []
        raw["contracts"] = [c for c in raw["contracts"] if c["id"] != "fx"]
        raw["treasury"] = {"btc_held_start": 10, "cash_start_usd": 100_000, "min_cash_usd": 0}

    plan = Plan(site_events=pd.DataFrame([("s2", "acquisition", "2026-03")], columns=["site", "event", "month"]))
    inst = load("rules", edit)
    p = complete_operations(inst, plan)
    assert p.btc_sales.values.tolist() == [["base", "2026-03", pytest.approx(4.0)]]
    assert evaluate(inst, p).violations == []


def test_plan_with_operations_is_returned_unchanged():
    inst = load("dispatch")
    plan = Plan(operations=pd.DataFrame([("base", "s1", "a100", "2026-04", 3.0)],
                                        columns=["scenario", "site", "model", "month", "units"]))
    assert complete_operations(inst, plan) is plan


# ---------------------------------------------------------------- dispatch vs an LP


@pytest.mark.parametrize("seed", range(40))
def test_dispatch_matches_lp_optimum(seed):
    rng = np.random.default_rng(seed)
    n_d, n_s = rng.integers(1, 4), rng.integers(1, 5)
    demands = [(float(rng.uniform(0, 100)), float(rng.uniform(0, 50))) for _ in range(n_d)]
    segments = [(float(rng.uniform(-10, 100)), float(rng.uniform(0, 60))) for _ in range(n_s)]
    firm = float(rng.uniform(0, 30)) if seed % 2 else 0.0
    grid = float(rng.uniform(firm, firm + 120))
    if sum(q for _, q in segments) < firm:
        segments.append((float(rng.uniform(0, 100)), firm))
    n_s = len(segments)
    served, used = dispatch(firm, grid, demands, segments)
    # LP: max sum v e - sum c x  s.t.  sum x = firm + sum e,  firm + sum e <= grid, bounds
    c = [-v for v, _ in demands] + [cst for cst, _ in segments]
    A_eq = [[-1.0] * n_d + [1.0] * n_s]
    A_ub = [[1.0] * n_d + [0.0] * n_s]
    bounds = [(0, q) for _, q in demands] + [(0, q) for _, q in segments]
    lp = linprog(c, A_ub=A_ub, b_ub=[grid - firm], A_eq=A_eq, b_eq=[firm], bounds=bounds, method="highs")
    assert lp.status == 0
    ours = sum(v * e for (v, _), e in zip(demands, served)) - sum(cst * x for (cst, _), x in zip(segments, used))
    assert ours == pytest.approx(-lp.fun, abs=1e-7)
    assert sum(used) == pytest.approx(firm + sum(served))
    assert firm + sum(served) <= grid + 1e-9
    assert all(0 <= e <= q + 1e-12 for (_, q), e in zip(demands, served))


# ---------------------------------------------------------------- the rule is optimal


@pytest.mark.parametrize("name", ["hand", "rules"])
def test_rule_completion_of_the_milp_first_stage_reproduces_its_objective(name):
    # Operations decouple by (scenario, site, period) once the first stage and the treasury sales
    # are fixed, so the operating rule must reach the MILP's optimum: completing the MILP's first
    # stage (with its BTC sales) by the rule gives the MILP objective (independent check: HiGHS).
    import pyomo.environ as pyo

    from optimizer.economics.data import compile_instance
    from optimizer.model.build import build_model
    from optimizer.model.common import USD
    from optimizer.model.extract import extract_plan

    inst = load(name)
    data = compile_instance(inst)
    m = build_model(data)
    pyo.SolverFactory("highs").solve(m, options={"mip_rel_gap": 1e-9})
    milp = extract_plan(m, data)
    ev = evaluate(inst, milp.first_stage().replace(btc_sales=milp.btc_sales), data=data)
    assert ev.violations == []
    assert ev.npv_usd == pytest.approx(pyo.value(m.expected_npv) * USD, rel=1e-9)
