"""The financing rows and lines of the model (optimizer/model/financing.py) at a plan's values, no
solve: a plan within each rule satisfies every row and its model cash-flow lines equal the
independent evaluator's line by line; a plan that breaks one rule by a hand-computed amount breaks
exactly that row by that amount (model units: M$, common.USD).

Instance: instances/tiny.yaml over 24 months (test_financing's ``_tiny``): site s1, one conversion
block of 10 racks = 1 MW at 1,000,000 USD/MW with a 2-month lead (500,000 USD in each of
2026-01 and 2026-02), lease L1 (1 MW, 150 USD/kW-month, NOI margin 0.9, hand-over 2026-03..05).
"""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
import pytest
from test_financing import FACILITY, _loan_plan, _tiny

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.evaluate.operations import complete_operations
from optimizer.instance import Instance
from optimizer.model import USD, build_model, mip_start_values, model_cashflows
from optimizer.plan import Plan
from optimizer.solve.diagnose import FAMILIES


def at_plan(d: dict | Instance, plan: Plan):
    """(model at the plan's MIP start, the instance, the completed plan)."""
    inst = d if isinstance(d, Instance) else Instance.from_dict(d)
    data = compile_instance(inst)
    m = build_model(data)
    full = complete_operations(inst, plan, data)
    for v, x in mip_start_values(m, data, full).items():
        v.set_value(x)
    for v in m.deliv.values():   # a contract with no energy row in the plan delivers nothing
        if v.value is None:
            v.set_value(0.0)
    # every row family built is one the infeasibility diagnosis knows by name (solve/diagnose.py)
    families = {c.local_name for c in m.component_objects(pyo.Constraint)}
    assert families <= set(FAMILIES), families - set(FAMILIES)
    return m, inst, full


def broken(m) -> dict[str, float]:
    """Violated rows -> by how much (model units), beyond 1e-9."""
    out = {}
    for c in m.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        if c.upper is not None and body > pyo.value(c.upper) + 1e-9:
            out[c.name] = body - pyo.value(c.upper)
        elif c.lower is not None and body < pyo.value(c.lower) - 1e-9:
            out[c.name] = pyo.value(c.lower) - body
    return out


def same_lines(m, inst: Instance, plan: Plan) -> pd.DataFrame:
    """The model's lines equal the evaluator's (USD, 1e-6); returns the evaluator's."""
    key = ["scenario", "period", "site", "item"]
    ev = evaluate(inst, plan)
    assert ev.violations == []
    mo = model_cashflows(m, compile_instance(inst)).groupby(key)["usd"].sum()
    e = ev.cashflows.groupby(key)["usd"].sum()
    j = pd.concat([e, mo], axis=1, keys=["ev", "mo"]).fillna(0.0)
    assert j[(j["ev"] - j["mo"]).abs() > 1e-6].empty, j[(j["ev"] - j["mo"]).abs() > 1e-6].head()
    return ev.cashflows


def line(cf: pd.DataFrame, item: str) -> dict[int, float]:
    s = cf[cf["item"] == item].groupby("period")["usd"].sum()
    return {int(t): float(v) for t, v in s.items() if v != 0}


def debt(*rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=["instrument", "month", "usd"])


# ---------------------------------------------------------------- new issues: fees and the cap


ISSUE = {"id": "n1", "max_usd": 1_000_000, "coupon_per_year": 0.06, "fee_share": 0.02, "tenor_months": 12,
         "first_month": "2026-02", "last_month": "2026-03"}


def test_new_issue_in_two_months_pays_its_fee_on_each_and_stays_under_the_cap():
    m, inst, plan = at_plan(_tiny(financing={"new_issues": [ISSUE]}), Plan(debt=debt(("n1", "2026-02", 400_000.0), ("n1", "2026-03", 600_000.0))))
    assert broken(m) == {}
    cf = same_lines(m, inst, plan)
    assert line(cf, "debt_draws_usd") == {1: 400_000, 2: 600_000}
    assert line(cf, "debt_fees_usd") == pytest.approx({1: -8_000, 2: -12_000})      # 2 % of each
    # bullet repayment 12 months after each issue: periods 13 and 14
    assert line(cf, "principal_usd") == pytest.approx({13: -400_000, 14: -600_000})


def test_issuing_past_the_cap_breaks_the_issue_cap_row_by_the_excess():
    m, _, _ = at_plan(_tiny(financing={"new_issues": [ISSUE]}), Plan(debt=debt(("n1", "2026-02", 700_000.0), ("n1", "2026-03", 600_000.0))))
    assert broken(m) == {"issue_cap[n1]": pytest.approx(300_000 / USD)}


# ---------------------------------------------------------------- two facilities share one site's capex


def two_facilities() -> dict:
    return _tiny(financing={"project_facilities": [{**FACILITY, "id": "a", "loan_to_cost": 0.5},
                                                   {**FACILITY, "id": "b", "loan_to_cost": 0.8}]})


@pytest.mark.parametrize("b_usd, excess", [(400_000.0, 0.0), (480_000.0, 0.0), (560_000.0, 100_000.0)])
def test_two_facilities_draw_within_one_share_of_the_capex(b_usd, excess):
    # by 2026-02 the block's 1,000,000 USD is spent; a draws 200,000 (needs 200,000 / 0.5 = 400,000 of
    # capex) and b draws b_usd (needs b_usd / 0.8): together at most 1,000,000 of capex. b = 560,000
    # needs 700,000: 100,000 too much, and only the shared rows see it (each alone is within its share)
    p = _loan_plan()
    plan = Plan(conversions=p.conversions, retirements=p.retirements, debt=debt(("a", "2026-02", 200_000.0), ("b", "2026-02", b_usd)))
    m, inst, full = at_plan(two_facilities(), plan)
    if excess == 0:
        assert broken(m) == {}
        cf = same_lines(m, inst, full)
        assert line(cf, "debt_draws_usd") == pytest.approx({1: 200_000 + b_usd})
    else:
        # cumulative rows in each draw month from 2026-02 (period 1) to the window's end 2026-03 (2)
        assert broken(m) == {f"facility_loan_to_cost[s1,{t}]": pytest.approx(excess / USD) for t in (1, 2)}


# ---------------------------------------------------------------- DSCR on the site's leases


def dscr_case(min_dscr: float) -> tuple[dict, Plan]:
    # facility without a lease: its DSCR is tested on the NOI of every lease at s1. L1 (120 months
    # from 2026-03): NOI 0.9 x 150 x 1,000 = 135,000 USD a month. 1,000,000 drawn in 2026-02 at 12 %
    # (1 % a month), annuity over 12 months from 2026-05: 1,000,000 x 0.01 / (1 - 1.01^-12) = 88,848.79
    d = _tiny(financing={"project_facilities": [{**FACILITY, "min_dscr": min_dscr}]})
    d["leases"][0]["term_months"] = 120
    p = _loan_plan()
    plan = Plan(conversions=p.conversions, retirements=p.retirements, debt=p.debt,
                leases=pd.DataFrame({"lease": ["L1"], "site": ["s1"], "month": ["2026-03"], "share": [1.0]}))
    return d, plan


def test_dscr_of_a_site_facility_holds_at_1_3_and_breaks_at_1_6_by_the_hand_shortfall():
    service = 1_000_000 * 0.01 / (1 - 1.01 ** -12)
    m, inst, full = at_plan(*dscr_case(1.3))           # 1.3 x 88,848.79 = 115,503 <= 135,000
    assert broken(m) == {}
    same_lines(m, inst, full)
    m, _, _ = at_plan(*dscr_case(1.6))                 # 1.6 x 88,848.79 = 142,158 > 135,000 in each of 12 months
    short = broken(m)
    assert set(short) == {f"facility_dscr[pf,{t}]" for t in range(4, 16)}   # 2026-05 .. 2027-04
    assert list(short.values()) == pytest.approx([(1.6 * service - 135_000) / USD] * 12, rel=1e-9)


# ---------------------------------------------------------------- debt the model has no variable for


def test_plan_debt_outside_the_draw_window_is_refused_by_name():
    p = _loan_plan()
    with pytest.raises(ValueError) as e:
        at_plan(_tiny(financing={"project_facilities": [FACILITY]}), Plan(conversions=p.conversions, retirements=p.retirements,
                                                                          debt=debt(("pf", "2026-09", 1.0))))
    assert str(e.value) == "plan.debt: 'pf' in 2026-09 is not a draw or issue of the model"


def test_btc_repayment_row_only_for_debt_maturing_inside_the_horizon():
    def corp(maturity: str) -> dict:
        return _tiny(treasury={"btc_held_start": 100},
                     financing={"corporate_debt": [{"id": "cv", "kind": "convertible", "principal_usd": 3_000_000,
                                                    "coupon_per_year": 0.0, "maturity_month": maturity, "repayment_source": "treasury_btc"}]})
    m, _, _ = at_plan(corp("2026-06"), Plan())
    assert len(m.btc_repayment) == 1
    m, _, _ = at_plan(corp("2028-06"), Plan())        # after the 24-month horizon: repaid at par at its end
    assert not hasattr(m, "btc_repayment")                      # no row: the block is not even added


# ---------------------------------------------------------------- taxes: existing depreciation and a site's basis


def taxed(**tax) -> dict:
    d = _tiny(financing={"taxes": {"rate": 0.21, "tax_terminal_values": False, "nol_limit_share": 0.8, **tax}})
    d["horizon"]["terminal"] = {"asic_salvage": False, "lease_remaining_noi": False, "treasury_btc": False}
    d["sites"][0]["sale"] = {"price_usd": 5_000_000, "earliest_month": "2026-06"}
    return d


def sale_plan() -> Plan:
    # s1 sold in 2026-06 with its 3,000 ASICs retired then
    return Plan(site_events=pd.DataFrame({"site": ["s1"], "event": ["sale"], "month": ["2026-06"]}),
                retirements=pd.DataFrame({"site": ["s1"], "model": ["m200"], "month": ["2026-06"], "units": [3000.0]}))


def test_existing_depreciation_and_site_basis_lower_the_tax_by_the_rate_times_each():
    # 2026's taxable income is positive (mining margin and the 5 M$ sale) and no loss is carried (the
    # 80 % limit on using losses never binds): 100,000 of depreciation of assets owned before the
    # horizon saves 21,000 of 2026 tax, a 2,000,000 basis of s1 saves 420,000
    m, inst, full = at_plan(taxed(), sale_plan())
    assert broken(m) == {}
    base = sum(line(same_lines(m, inst, full), "tax_usd").values())
    m, inst, full = at_plan(taxed(existing_depreciation_usd_per_year={2026: 100_000}), sale_plan())
    assert broken(m) == {}
    assert sum(line(same_lines(m, inst, full), "tax_usd").values()) == pytest.approx(base + 21_000, rel=1e-12)
    m, inst, full = at_plan(taxed(site_tax_basis_usd={"s1": 2_000_000}), sale_plan())
    assert broken(m) == {}
    assert sum(line(same_lines(m, inst, full), "tax_usd").values()) == pytest.approx(base + 420_000, rel=1e-12)
