"""The allocation MILP built alone (optimizer/model): variables, rows and coefficients counted
and computed by hand on instances/tiny.yaml, fixed decisions, the cash-flow registry.

tiny.yaml, by hand: 6 monthly periods from 2026-01, r = 12 %; one site s1 with 30 mining racks
of 100 ASICs, no HPC racks, conversion blocks of 10 racks, lead 2 months, capex 1 M$/MW,
HPC 100 kW per rack; 3000 m200 units (200 TH/s, 3500 W, salvage 500 $); one index contract
(market 40 $/MWh + 5 adder); lease L1 1 MW at 150 $/kW-month, window 2026-03..2026-05,
12 months, NOI margin 0.9; BTC 100 k$, 1000 EH/s, no fees, height 930,000 (subsidy 3.125).
"""

from __future__ import annotations

from pathlib import Path

import pyomo.environ as pyo
import pytest
import yaml
from pydantic import ValidationError
from pyomo.repn import generate_standard_repn

from optimizer.economics.data import compile_instance
from optimizer.economics.ledger import ITEMS
from optimizer.errors import InputError
from optimizer.instance import Instance
from optimizer.model import USD, build_model, extract_plan, mip_start_values, model_cashflows, update_params
from optimizer.plan import Plan

TINY = Path(__file__).resolve().parents[1] / "instances" / "tiny.yaml"


def tiny_dict() -> dict:
    return yaml.safe_load(TINY.read_text())


def build(d: dict | None = None):
    inst = Instance.from_dict(d if d is not None else tiny_dict())
    data = compile_instance(inst)
    return inst, data, build_model(data)


def coef(expr, var) -> float:
    """Coefficient of ``var`` in a linear expression (Params evaluated)."""
    repn = generate_standard_repn(expr, compute_values=True)
    return sum(c for v, c in zip(repn.linear_vars, repn.linear_coefs) if v is var)


def terms(m, item, period=None, scenario="any"):
    return [t for t in m.cashflow_terms if t.item == item and (period is None or t.period == period)
            and (scenario == "any" or t.scenario == scenario)]


# ---------------------------------------------------------------- sizes by hand


def test_variables_counted_by_hand():
    _, _, m = build()
    # conversion starts t with t + 2 <= 5 (must finish inside the horizon): t = 0..3 -> 4
    assert sorted(m.conv_index) == [("s1", t) for t in range(4)]
    assert all(m.conv[k].is_integer() and m.conv[k].ub == 3 for k in m.conv_index)  # 30 racks / 10 per block
    # cumulative blocks from the first start period to the end: 6
    assert len(m.nb) == 6
    # L1 needs ceil(1000 kW / 100 kW) = 10 racks > 0 HPC racks at start, so tau >= 0 + lead 2;
    # window 2026-03..2026-05 = periods 2, 3, 4 -> 3 binaries
    assert sorted(m.x_index) == [("L1", "s1", 2), ("L1", "s1", 3), ("L1", "s1", 4)]
    assert all(m.x[k].is_binary() for k in m.x_index)
    # retirements allowed: installed units vary -> inst and ret for 6 periods; op 1 site x 1 model x 6 x 1
    assert len(m.inst) == len(m.ret) == len(m.op) == 6
    # one index contract active in all 6 periods, 1 scenario; no sell-back, no take-or-pay
    assert len(m.deliv) == 6 and len(m.used) == 0 and len(m.shortfall) == 0
    # nothing optional, no sale or acquisition, no grid expansion, sell_monthly with 0 BTC held
    for name in ("sign", "signed_owned", "sell", "acq", "own", "hpc_own", "gx", "gcum", "buy", "btc_sold", "btc_held", "y"):
        assert len(getattr(m, name)) == 0, name
    assert not hasattr(m, "cash")
    # hpc_gwh where some hand-over makes L1 run: periods 2..5
    assert sorted(m.hpc_gwh_index) == [("s1", t) for t in range(2, 6)]
    n_vars = sum(1 for _ in m.component_data_objects(pyo.Var))
    assert n_vars == 4 + 6 + 3 + 6 * 3 + 6 + 4  # conv, nb, x, inst/ret/op, deliv, hpc_gwh = 41


def test_constraints_counted_by_hand():
    _, _, m = build()
    counts = {c.name: len(c) for c in m.component_objects(pyo.Constraint)}
    # max load = 30 racks x 100 x 3.5 kW x PUE 1.0 = 10.5 MW mining + 30 racks x 0.1 MW x PUE 1.2
    # = 3.6 MW HPC = 14.1 MW > 12 MW interconnect, so the grid rows exist (6 periods x 1 scenario)
    assert counts == {
        "nb_balance": 6, "fleet_balance": 6, "operating_le_installed": 6, "rack_positions": 6,
        "lease_once": 1,              # one unsplittable lease with 3 candidate hand-overs
        "lease_racks": 4,             # periods 2..5 in which L1 may run
        # 10 racks needed, 0 HPC racks, 10 racks per block: k = 1 block by tau - 2, one row per tau 2, 3, 4
        "lease_conversion_rounding": 3,
        "hpc_energy": 4, "energy_balance": 6, "grid_interconnect": 6,
    }


def test_lease_that_cannot_fit_gets_no_variable():
    d = tiny_dict()
    d["leases"][0]["it_mw"] = 5.0  # 50 racks > 30 racks even fully converted
    _, _, m = build(d)
    assert len(m.x) == 0 and not hasattr(m, "lease_racks")


def test_sale_option_creates_ownership_variables():
    d = tiny_dict()
    d["sites"][0]["sale"] = {"price_usd": 2_000_000, "earliest_month": "2026-04"}
    _, _, m = build(d)
    # sale in periods 3, 4, 5 (2026-04..06); own is a variable from period 3 on, 1 before
    assert sorted(m.sell_index) == [("s1", 3), ("s1", 4), ("s1", 5)]
    assert sorted(m.own_index) == [("s1", 3), ("s1", 4), ("s1", 5)]
    assert len(m.fleet_needs_ownership) == 3
    # conversion starts 0..3; only the one in period 3 can meet an unowned site
    assert list(m.project_needs_ownership_index) == [("conv", "s1", "", 3)]


# ---------------------------------------------------------------- coefficients by hand


def test_coefficients_from_hand_calculation():
    _, _, m = build()
    op0 = m.op["s1", "m200", 0, 0]
    # hashprice 3.125 BTC x 144 blocks/day / (1000 EH/s x 1000 PH/EH) = 4.5e-4 BTC/PH/day;
    # 1000 units x 0.2 PH x 4.5e-4 x 31 days = 2.79 BTC x 100,000 $ = 279,000 $ = 0.279 $M
    (rev,) = terms(m, "mining_revenue_usd", 0)
    assert coef(rev.expr, op0) == pytest.approx(0.279, rel=1e-12)
    # energy of 1000 units in January: 3.5 kW x 1000 x 744 h x PUE 1.0 = 2604 MWh = 2.604 GWh
    assert coef(m.energy_balance["s1", 0, 0].body, op0) == pytest.approx(-2.604, rel=1e-12)
    # index power: (40 + 5) $/MWh x 1000 MWh/GWh = 45,000 $/GWh = 0.045 $M/GWh
    (cost,) = terms(m, "power_cost_usd", 0)
    assert coef(cost.expr, m.deliv["idx", 0, 0]) == pytest.approx(-0.045, rel=1e-12)
    # rent: 1 MW x 1000 kW x 150 $ = 150,000 $/month = 0.15 $M while running; NOI margin 0.9 -> opex 0.015
    (rent,) = terms(m, "lease_revenue_usd", 3)
    assert coef(rent.expr, m.x["L1", "s1", 2]) == pytest.approx(0.15, rel=1e-12)
    assert coef(rent.expr, m.x["L1", "s1", 3]) == pytest.approx(0.15, rel=1e-12)
    lease_opex = [t for t in terms(m, "opex_usd", 3) if coef(t.expr, m.x["L1", "s1", 2]) != 0]
    assert coef(lease_opex[0].expr, m.x["L1", "s1", 2]) == pytest.approx(-0.015, rel=1e-12)
    # capex: 1 block = 10 racks x 100 kW = 1 MW x 1 M$ = 1 $M spread over 2 periods:
    # capex(t) = -0.5 (nb[t] - nb[t-2])
    (cap3,) = terms(m, "capex_usd", 3)
    assert coef(cap3.expr, m.nb["s1", 3]) == pytest.approx(-0.5) and coef(cap3.expr, m.nb["s1", 1]) == pytest.approx(0.5)
    # HPC energy of L1 in April (720 h): 1 MW x PUE 1.2 x 720 h = 864 MWh = 0.864 GWh
    assert coef(m.hpc_energy["s1", 3].body, m.x["L1", "s1", 3]) == pytest.approx(0.864, rel=1e-12)
    # terminal salvage: 1000 units x 500 $ = 0.5 $M per thousand installed at the end
    (sal,) = terms(m, "terminal_asic_salvage_usd", 5)
    assert coef(sal.expr, m.inst["s1", "m200", 5]) == pytest.approx(0.5, rel=1e-12)
    # grid row: 12 MW x 744 h = 8928 MWh = 8.928 GWh in January
    assert pyo.value(m.grid_interconnect["s1", 0, 0].upper) == pytest.approx(8.928, rel=1e-12)


def test_update_params_moves_coefficients():
    inst, _, m = build()
    d2 = compile_instance(inst.with_overrides({"scenarios[*].btc_price_usd": 150_000, "leases[L1].rate_usd_per_kw_month": 200}))
    update_params(m, d2)
    # 0.279 $M x 150/100 = 0.4185; rent 1 MW x 1000 x 200 $ = 0.2 $M
    (rev,) = terms(m, "mining_revenue_usd", 0)
    assert coef(rev.expr, m.op["s1", "m200", 0, 0]) == pytest.approx(0.4185, rel=1e-12)
    (rent,) = terms(m, "lease_revenue_usd", 3)
    assert coef(rent.expr, m.x["L1", "s1", 2]) == pytest.approx(0.2, rel=1e-12)


def test_update_params_rejects_another_structure():
    inst, _, m = build()
    d = tiny_dict()
    d["horizon"]["periods"] = 7
    with pytest.raises(ValueError, match="rebuild"):
        update_params(m, compile_instance(Instance.from_dict(d)))


# ---------------------------------------------------------------- fixed decisions


def with_fixed(*decisions) -> dict:
    d = tiny_dict()
    d["policy"] = {"fixed_decisions": list(decisions)}
    return d


def test_fixed_conversion_fixes_the_variable():
    _, _, m = build(with_fixed({"kind": "conversion", "site": "s1", "month": "2026-02", "blocks": 2}))
    v = m.conv["s1", 1]
    assert v.fixed and v.value == 2
    assert not m.conv["s1", 0].fixed


def test_fixed_lease_fixes_the_binary_and_unsigned_lease_fixes_all():
    _, _, m = build(with_fixed({"kind": "lease", "lease": "L1", "signed": True, "site": "s1", "month": "2026-04"}))
    assert m.x["L1", "s1", 3].fixed and m.x["L1", "s1", 3].value == 1
    _, _, m = build(with_fixed({"kind": "lease", "lease": "L1", "signed": False}))
    assert all(m.x[k].fixed and m.x[k].value == 0 for k in m.x_index)


def test_bad_fixed_decision_gives_one_line_error():
    # bad input (InputError: exit 2 on the command line), not an internal error
    # 2026-06 is period 5: 5 + 2 > 5, the conversion would finish after the horizon
    with pytest.raises(InputError) as e:
        build(with_fixed({"kind": "conversion", "site": "s1", "month": "2026-06", "blocks": 1}))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == "policy.fixed_decisions[0]: site 's1' cannot start a conversion in 2026-06 (allowed months: 2026-01..2026-04)"
    with pytest.raises(InputError, match=r"^policy.fixed_decisions\[0\]: lease 'L1' cannot be delivered handed over in 2026-02"):
        build(with_fixed({"kind": "lease", "lease": "L1", "signed": True, "month": "2026-02"}))
    # a non-optional contract left unsigned is refused by the instance itself, before any model
    with pytest.raises(ValidationError, match=r"contract 'idx' is not optional"):
        build(with_fixed({"kind": "contract", "contract": "idx", "signed": False}))
    # conversions allowed from earliest_month to 2026-04 (lead 2): one month names it alone, two a range
    for earliest, allowed in (("2026-04", "2026-04"), ("2026-03", "2026-03..2026-04")):
        d = with_fixed({"kind": "conversion", "site": "s1", "month": "2026-06", "blocks": 1})
        d["sites"][0]["conversion"]["earliest_month"] = earliest
        with pytest.raises(InputError) as e:
            build(d)
        assert str(e.value) == f"policy.fixed_decisions[0]: site 's1' cannot start a conversion in 2026-06 (allowed months: {allowed})"


# ---------------------------------------------------------------- registry and objective


def test_objective_has_one_summand_per_registered_term():
    _, data, m = build()
    assert m.expected_npv.expr.nargs() == len(m.cashflow_terms) > 0
    assert {t.item for t in m.cashflow_terms} <= set(ITEMS)
    for v in m.component_data_objects(pyo.Var):
        v.set_value(1.0 if v.ub is None else min(1.0, v.ub), skip_validation=True)
    by_hand = sum((1.0 if t.scenario is None else data.prob[t.scenario]) * data.df[t.period] * pyo.value(t.expr)
                  for t in m.cashflow_terms)
    assert pyo.value(m.objective) == pytest.approx(by_hand, rel=1e-12)
    cf = model_cashflows(m, data)
    assert list(cf.columns) == ["scenario", "month", "period", "site", "item", "usd"]
    assert (cf["usd"] * data.df[cf["period"].to_numpy()]).sum() / USD == pytest.approx(by_hand, rel=1e-12)


def keep_mining_plan(data) -> Plan:
    ops = [("base", "s1", "m200", lab, 3000.0) for lab in data.labels]
    mwh = [3000 * 3.5 * 24 * d / 1000 for d in data.days]  # 3000 units x 3.5 kW x hours
    energy = [("base", "idx", lab, e, e, 0.0) for lab, e in zip(data.labels, mwh)]
    import pandas as pd
    return Plan(operations=pd.DataFrame(ops, columns=["scenario", "site", "model", "month", "units"]),
                energy=pd.DataFrame(energy, columns=["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]))


def keep_mining_npv_by_hand() -> float:
    # per day: revenue 3000 x 0.2 PH x 4.5e-4 BTC x 100,000 $ = 27,000 $; power 3000 x 3.5 kW x 24 h
    # x 45 $/MWh = 11,340 $; margin 15,660 $/day; months Jan..Jun 2026 have 31, 28, 31, 30, 31, 30 days;
    # discounted at the end of month k with 1.12^(-k/12); ASIC salvage 3000 x 500 $ at the end (k = 6)
    days = [31, 28, 31, 30, 31, 30]
    return sum(15_660 * dd * 1.12 ** (-(k + 1) / 12) for k, dd in enumerate(days)) + 1_500_000 * 1.12 ** (-0.5)


def test_mip_start_of_a_hand_plan_reproduces_its_npv():
    _, data, m = build()
    start = mip_start_values(m, data, keep_mining_plan(data))
    assert start[m.inst["s1", "m200", 5]] == pytest.approx(3.0)  # thousand units, nothing retired
    assert start[m.nb["s1", 5]] == 0 and start[m.x["L1", "s1", 2]] == 0
    assert m.op["s1", "m200", 0, 0].value is None  # the model's own values are untouched
    for v, x in start.items():
        v.set_value(x)
    assert pyo.value(m.objective) * USD == pytest.approx(keep_mining_npv_by_hand(), rel=1e-12)
    for c in m.component_data_objects(pyo.Constraint):
        body = pyo.value(c.body)
        assert (c.lower is None or body >= pyo.value(c.lower) - 1e-9) and (c.upper is None or body <= pyo.value(c.upper) + 1e-9), c.name


def test_mip_start_rejects_a_decision_the_model_lacks():
    _, data, m = build()
    import pandas as pd
    plan = Plan(conversions=pd.DataFrame([("s1", "2026-06", 1.0)], columns=["site", "month", "blocks"]))
    with pytest.raises(ValueError, match="plan.conversions"):
        mip_start_values(m, data, plan)


def test_solved_tiny_keeps_mining_and_extracts_the_plan():
    from optimizer.solve.backend import HighsBackend

    inst, data, m = build()
    hb = HighsBackend(m)
    res = hb.solve(mip_gap=1e-9)
    assert res.status == "optimal"
    hb.load_solution()
    # converting one block loses 1000 units' margin (15,660/3 $/day for ~181 days, ~0.95 M$) and
    # costs 1 M$ of capex against ~0.5 M$ of NOI inside the horizon plus ~1 M$ of terminal NOI
    assert pyo.value(m.objective) * USD == pytest.approx(keep_mining_npv_by_hand(), rel=1e-9)
    plan = extract_plan(m, data)
    assert len(plan.conversions) == 0 and len(plan.leases) == 0 and len(plan.retirements) == 0
    assert plan.operations["units"].to_numpy() == pytest.approx([3000.0] * 6)


def test_model_lines_equal_the_evaluators_lines_on_a_forced_tiny_plan():
    """Force a conversion and the lease so every tiny line is non-zero; the model's lines and the
    evaluator's (independent arithmetic) must agree line by line, and so must the NPVs."""
    from optimizer.evaluate import evaluate
    from optimizer.solve.backend import HighsBackend

    inst, data, m = build(with_fixed({"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1},
                                     {"kind": "lease", "lease": "L1", "signed": True, "site": "s1", "month": "2026-03"}))
    hb = HighsBackend(m)
    assert hb.solve(mip_gap=1e-9).status == "optimal"
    hb.load_solution()
    plan = extract_plan(m, data)
    assert plan.conversions.to_dict("records") == [{"site": "s1", "month": "2026-01", "blocks": 1.0}]
    ev = evaluate(inst, plan, data=data)
    assert ev.violations == []
    assert ev.npv_usd == pytest.approx(pyo.value(m.objective) * USD, rel=1e-9)
    key = ["scenario", "period", "site", "item"]
    mine = model_cashflows(m, data).groupby(key)["usd"].sum()
    theirs = ev.cashflows.groupby(key)["usd"].sum()
    joined = mine.to_frame("model").join(theirs.to_frame("eval"), how="outer").fillna(0.0)
    assert {"capex_usd", "lease_revenue_usd", "salvage_usd", "terminal_lease_noi_usd"} <= set(joined.index.get_level_values("item"))
    assert joined["model"].to_numpy() == pytest.approx(joined["eval"].to_numpy(), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("options, message", [
    ({"cvar_weight": 1.5}, "cvar_weight: must be in [0, 1], got 1.5"),
    ({"cvar_weight": -0.5}, "cvar_weight: must be in [0, 1], got -0.5"),
    ({"cvar_weight": 0.5, "cvar_alpha": 1.0}, "cvar_alpha: must be in [0, 1), got 1.0"),
    ({"cvar_weight": 0.5, "cvar_alpha": -0.1}, "cvar_alpha: must be in [0, 1), got -0.1"),
])
def test_risk_options_out_of_range_are_one_line_errors(options, message):
    _, data, _ = build()
    with pytest.raises(ValueError) as e:
        build_model(data, options)
    assert str(e.value) == message


def test_weight_one_cvar_of_one_scenario_is_its_npv():
    # one scenario: CVaR_alpha = eta - E[max(eta - NPV, 0)] / (1 - alpha) is maximised at eta = NPV,
    # so at the keep-mining plan the objective with weight 1 is that plan's NPV (hand value above)
    _, data, _ = build()
    m = build_model(data, {"cvar_weight": 1.0, "cvar_alpha": 0.5})
    for v, x in mip_start_values(m, data, keep_mining_plan(data)).items():
        v.set_value(x)
    npv = keep_mining_npv_by_hand() / USD
    m.cvar_eta.set_value(npv)
    m.cvar_excess[0].set_value(0.0)
    assert pyo.value(m.objective) * USD == pytest.approx(keep_mining_npv_by_hand(), rel=1e-12)
    # eta 1 (M$) above the NPV: excess 1, objective eta - 1 / 0.5 = NPV - 1 M$
    m.cvar_eta.set_value(npv + 1.0)
    m.cvar_excess[0].set_value(1.0)
    assert pyo.value(m.objective) * USD == pytest.approx(keep_mining_npv_by_hand() - 1e6, rel=1e-12)


# ---------------------------------------------------------------- objective.py: weights, rate classes, valuation


def test_discount_rate_classes_value_mining_revenue_at_its_own_rate():
    # financing.discount_rates.merchant_mining 20 %, the others at the horizon's 12 %: at the
    # keep-mining plan mining revenue 27,000 $/day is discounted at 1.20^(-k/12), power 11,340 $/day
    # (class other) at 1.12^(-k/12), the ASIC salvage 1.5 M$ (other) at 1.12^(-6/12) (hand values above)
    d = tiny_dict()
    d["financing"] = {"discount_rates": {"merchant_mining": 0.20}}
    _, data, m = build(d)
    for v, x in mip_start_values(m, data, keep_mining_plan(data)).items():
        v.set_value(x)
    days = [31, 28, 31, 30, 31, 30]
    by_hand = (sum(27_000 * dd * 1.20 ** (-(k + 1) / 12) - 11_340 * dd * 1.12 ** (-(k + 1) / 12) for k, dd in enumerate(days))
               + 1_500_000 * 1.12 ** (-0.5))
    assert pyo.value(m.objective) * USD == pytest.approx(by_hand, rel=1e-12)
    assert by_hand < keep_mining_npv_by_hand() - 10_000       # the 20 % rate visibly lowers the NPV


def _facility_tiny(objective: str) -> dict:
    d = tiny_dict()
    d["financing"] = {"objective": objective, "project_facilities": [
        {"id": "pf", "site": "s1", "commitment_usd": 2_000_000, "loan_to_cost": 1.0, "interest_rate_per_year": 0.12,
         "draw_first_month": "2026-01", "draw_last_month": "2026-03", "amortization_start_month": "2026-05",
         "tenor_months": 12}]}
    return d


def test_project_objective_leaves_the_debt_out_and_equity_values_it():
    # financing.objective project values the unlevered NPV: no debt line (draws, fees, interest,
    # principal, debt at the end) enters it, so a draw's objective coefficient is exactly 0 (no
    # taxes section: no tax shield either). The equity objective values the loan: a 1 M$ draw repaid
    # at 1 %/month against a discount of 1.12^(1/12) - 1 = 0.949 %/month has a non-zero (negative)
    # present value.
    _, _, m = build(_facility_tiny("project"))
    assert len(m.draw) == 3                                   # one draw a month, 2026-01..03
    assert all(coef(m.objective.expr, m.draw[k]) == 0.0 for k in m.draw)
    _, _, m = build(_facility_tiny("equity"))
    assert all(coef(m.objective.expr, m.draw[k]) < -1e-4 for k in m.draw)


def test_every_cvar_row_has_a_diagnosis_family():
    # solve/diagnose.py looks each constraint family up by name (FAMILIES); the CVaR rows are
    # tier-0 definitions there: the model must build them under that name
    from optimizer.solve.diagnose import FAMILIES

    _, data, _ = build()
    m = build_model(data, {"cvar_weight": 0.5, "cvar_alpha": 0.9})
    names = {c.local_name for c in m.component_objects(pyo.Constraint)}
    assert "cvar_excess_def" in names
    assert names <= set(FAMILIES), names - set(FAMILIES)
    assert FAMILIES["cvar_excess_def"].tier == 0


def test_every_term_is_weighted_by_its_nodes_probability():
    # E[NPV] = sum_w p_w NPV_w: with one scenario of probability p = 1 - 1e-9 (check_probabilities
    # accepts a sum within 1e-9 of 1) every coefficient of the objective, first-stage ones (the
    # conversion's capex) included, is p times its value at p = 1, as in the evaluator
    def objective_coefs(p: float) -> dict:
        d = tiny_dict()
        d["scenarios"][0]["probability"] = p
        _, _, m = build(d)
        repn = generate_standard_repn(m.objective.expr, compute_values=True)
        return {v.name: c for v, c in zip(repn.linear_vars, repn.linear_coefs)}, repn.constant

    (one, c1), (p, cp) = objective_coefs(1.0), objective_coefs(1 - 1e-9)
    assert set(one) == set(p) and "nb[s1,0]" in one
    for name, c in one.items():
        assert p[name] == pytest.approx((1 - 1e-9) * c, rel=1e-12, abs=0), name
    assert cp == pytest.approx((1 - 1e-9) * c1, rel=1e-12, abs=0)


def test_class_rates_equal_to_the_horizon_rate_change_nothing():
    # financing.discount_rates with every class at the horizon's 12 % must give the horizon's own
    # factors: df[t] for each period and, for terminal lines, df_end = 1.12^(-6/12) at the horizon's
    # end. Quarterly periods (2 x 3 months), where a period's factor (the mean of its months'
    # end-of-month factors) differs from the horizon-end factor, so terminal lines tell them apart.
    def objective_coefs(rates: dict | None) -> tuple[dict, float]:
        d = tiny_dict()
        d["horizon"]["period_months"], d["horizon"]["periods"] = 3, 2
        if rates is not None:
            d["financing"] = {"discount_rates": rates}
        _, _, m = build(d)
        repn = generate_standard_repn(m.objective.expr, compute_values=True)
        return {v.name: c for v, c in zip(repn.linear_vars, repn.linear_coefs)}, repn.constant

    plain, c0 = objective_coefs(None)
    classed, c1 = objective_coefs({"contracted_lease": 0.12, "merchant_mining": 0.12, "other": 0.12})
    assert set(plain) == set(classed)
    for name, c in plain.items():
        assert classed[name] == pytest.approx(c, rel=1e-12, abs=0), name
    assert c1 == pytest.approx(c0, rel=1e-12, abs=1e-12)


def test_project_objective_without_debt_values_the_same_taxes_as_equity():
    # with a 21 % tax and no debt, the unlevered taxes (the project objective's, variables named
    # u_...) are the levered ones (the equity objective's): there is no interest to deduct, so both
    # objectives are the same function of the decisions, tax variables matched by name
    def objective_coefs(objective: str) -> tuple[dict, float]:
        d = tiny_dict()
        d["financing"] = {"objective": objective, "taxes": {"rate": 0.21}}
        _, _, m = build(d)
        repn = generate_standard_repn(m.objective.expr, compute_values=True)
        return {v.name.removeprefix("u_"): c for v, c in zip(repn.linear_vars, repn.linear_coefs)}, repn.constant

    (equity, c0), (project, c1) = objective_coefs("equity"), objective_coefs("project")
    assert any(name.startswith("tax") for name in equity)   # the taxes are in the objective
    assert set(project) == set(equity)
    for name, c in equity.items():
        assert project[name] == pytest.approx(c, rel=1e-12, abs=0), name
    assert c1 == pytest.approx(c0, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- survivors of the evening's model sample
# (benchmarks/MUTATION.md): Acc.add_const, fix_first_stage with ``until`` (no solve)


def test_acc_keeps_a_keys_pieces_when_a_constant_is_added():
    from optimizer.model.common import Acc

    m = pyo.ConcreteModel()
    m.x = pyo.Var(initialize=1.5)
    acc = Acc()
    acc.add("k", 2.0, m.x)
    acc.add_const("k", 3.0)
    acc.add("k", 4.0, 0.5)      # a number: into the constant
    acc.add_const("j", 1.0)     # a new key
    # k: 2 x + 3 + 4 x 0.5 = 2 x 1.5 + 5 = 8; j: the constant 1
    assert pyo.value(acc.expr("k")) == 8.0 and acc.expr("j") == 1.0 and acc.expr("none") == 0.0


def test_fix_first_stage_until_fixes_the_commitments_of_the_earlier_periods_only():
    import pandas as pd

    from optimizer.model.fix import fix_first_stage

    # tiny (monthly 2026-01..06) with two optional contracts starting in 2026-01 (period 0) and
    # 2026-04 (period 3); the plan converts one block in 2026-01 and one in 2026-03 and signs both.
    # Fixing until period 2 fixes the decisions of periods 0 and 1 to the plan's (conversion 1 then 0,
    # the contract starting in period 0 signed, no retirement) and leaves periods 2.. free (the
    # conversion of 2026-03, the contract starting in 2026-04, lease L1's hand-overs from 2026-03)
    d = tiny_dict()
    d["contracts"] += [{"id": "early", "site": "s1", "kind": "index", "adder_usd_per_mwh": 1, "optional": True, "start_month": "2026-01"},
                       {"id": "late", "site": "s1", "kind": "index", "adder_usd_per_mwh": 1, "optional": True, "start_month": "2026-04"}]
    _, data, m = build(d)
    plan = Plan(conversions=pd.DataFrame({"site": ["s1", "s1"], "month": ["2026-01", "2026-03"], "blocks": [1.0, 1.0]}),
                contracts=pd.DataFrame({"contract": ["early", "late"], "signed": [True, True]}))
    fix_first_stage(m, data, plan, until=2)
    assert {k[1]: (m.conv[k].fixed, m.conv[k].value) for k in m.conv_index} == {
        0: (True, 1.0), 1: (True, 0.0), 2: (False, None), 3: (False, None)}
    assert (m.sign["early"].fixed, m.sign["early"].value) == (True, 1.0) and not m.sign["late"].fixed
    assert [m.ret[k].fixed for k in m.ret_index if k[1] == "m200"] == [True, True, False, False, False, False]
    assert not any(m.x[k].fixed for k in m.x_index)


def test_a_fixed_lease_that_cannot_fit_names_the_site_asked_for():
    # L1 at 5 MW needs 50 racks, more than s1's 30 even fully converted: no hand-over variable at all;
    # fixing it signed at site s1 (any month) is bad input naming the site only
    d = with_fixed({"kind": "lease", "lease": "L1", "signed": True, "site": "s1"})
    d["leases"][0]["it_mw"] = 5.0
    with pytest.raises(InputError) as e:
        build(d)
    assert str(e.value) == ("policy.fixed_decisions[0]: lease 'L1' cannot be delivered at site 's1' (outside its window, "
                            "site not eligible, or HPC racks cannot be ready)")


def test_fix_first_stage_frees_a_split_leases_share_within_1e_12_and_never_above_1():
    import pandas as pd

    from optimizer.model.fix import fix_first_stage

    # L1 splittable: one lease_split row per hand-over period (sum over sites of x = y). A solved plan's
    # share 0.9999999999999998 at s1 in 2026-03 would make that row infeasible with x fixed: the largest
    # share of each row is freed within 1e-12 of its value, capped at 1 (a share above 1 is no share)
    d = tiny_dict()
    d["leases"][0]["splittable"] = True
    _, data, m = build(d)
    share = 0.9999999999999998
    fix_first_stage(m, data, Plan(leases=pd.DataFrame({"lease": ["L1"], "site": ["s1"], "month": ["2026-03"], "share": [share]})))
    x = m.x["L1", "s1", 2]
    assert not x.fixed and (x.lb, x.ub) == (share - 1e-12, 1.0)
    assert all(not m.x["L1", "s1", t].fixed and (m.x["L1", "s1", t].lb, m.x["L1", "s1", t].ub) == (0.0, 1e-12) for t in (3, 4))


def test_a_splittable_lease_waits_for_the_first_converted_racks():
    # tiny's s1 has no HPC rack at the start and a conversion takes 2 months: the first racks are
    # ready in 2026-03 (period 2). L1 with its window opened from 2026-01: hand-overs 2, 3, 4 only
    # (window end 2026-05), split or not
    for splittable in (True, False):
        d = tiny_dict()
        d["leases"][0].update(window_start="2026-01", splittable=splittable)
        _, _, m = build(d)
        assert sorted({k[2] for k in m.x_index}) == [2, 3, 4]


def test_hedge_cap_counts_the_companys_share_of_a_joint_venture_sites_hashrate():
    from test_levers import _two_scenarios, make

    # levers.yaml with forward f1 (max 0.5 of the expected hashrate) and two scenarios of probability
    # 0.5: the cap row of May is 1000 hv - 0.5 x sum_w 0.5 x 100 PH/s per thousand units op_w <= 0,
    # i.e. -25 per op variable; at a 50 % joint-venture site the company's hashrate is half: -12.5
    def jv(raw):
        _two_scenarios(raw, 0.0)
        raw["sites"][0]["ownership_share"] = 0.5

    for edit, c in ((lambda raw: _two_scenarios(raw, 0.0), -25.0), (jv, -12.5)):
        m = build_model(compile_instance(make(edit)))
        row = m.hedge_cap["f1", 1]
        repn = generate_standard_repn(row.body, compute_values=True)
        assert {v.name: co for v, co in zip(repn.linear_vars, repn.linear_coefs)} == pytest.approx(
            {"hv[f1,1]": 1000.0, "op[s1,a100,1,0]": c, "op[s1,a100,1,1]": c})
        assert row.upper == 0.0


def test_the_treasury_holds_the_companys_share_of_a_joint_venture_sites_btc():
    from test_levers import make

    # levers.yaml with mined BTC held: May's balance row btc_held[May] - btc_held[April] + btc_sold[May]
    # - mined = 0, mined = 0.000045 BTC per unit-day x 1000 units x 31 days = 1.395 BTC per thousand
    # units operating; at a 50 % joint-venture site the company holds half of it: 0.6975
    def hold(share):
        def edit(raw):
            raw.setdefault("treasury", {})["mined_btc"] = "hold"
            raw["sites"][0]["ownership_share"] = share
        return edit

    for share in (1.0, 0.5):
        m = build_model(compile_instance(make(hold(share))))
        repn = generate_standard_repn(m.treasury_balance[0, 1].body, compute_values=True)
        assert {v.name: c for v, c in zip(repn.linear_vars, repn.linear_coefs)} == pytest.approx(
            {"btc_held[0,1]": 1.0, "btc_held[0,0]": -1.0, "btc_sold[1]": 1.0, "op[s1,a100,1,0]": -1.395 * share}, rel=1e-12)


def test_mip_start_names_the_table_of_a_row_at_an_unknown_node():
    import pandas as pd

    # tiny with a grid expansion option g1: a plan row of plan.grid_expansions at a node the tree does
    # not have is refused naming the table, the node and the reason
    d = tiny_dict()
    d["sites"][0]["grid_expansions"] = [{"id": "g1", "mw": 5, "capex_usd": 100_000, "lead_months": 0}]
    _, data, m = build(d)
    plan = Plan(grid_expansions=pd.DataFrame({"site": ["s1"], "option": ["g1"], "month": ["2026-02"], "node": ["nowhere"]}))
    with pytest.raises(ValueError, match=r"^plan\.grid_expansions: unknown tree node 'nowhere'$"):
        mip_start_values(m, data, plan)
