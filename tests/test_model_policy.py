"""Fixed decisions of every kind, and the policy rows' refusals, on the model built alone
(optimizer/model/policy.py; no solve): which variables each ``policy.fixed_decisions`` entry pins
and to what, which rows it adds, what ``m.fixed_by_decision`` records for the infeasibility
diagnosis, and the one-line error of each decision the model has no variable for.

The instance is instances/tiny.yaml (6 monthly periods 2026-01..2026-06; site s1, 30 mining racks,
conversion lead 2 months; lease L1, window 2026-03..2026-05) with, where a test needs it:
- a grid expansion g1 on s1, lead 1 month, earliest 2026-03: it can start in a month t with
  t + 1 <= 5 (it must be in service inside the horizon), so in 2026-03..2026-05 (periods 2..4);
- a sale option on s1 from 2026-04: periods 3..5 (a sale needs no lead);
- a second site s2 (20 mining racks) that is bought: acquisition available from 2026-02, periods 1..5;
- a purchase option p1 of m200 units, first month 2026-02, last 2026-05, lead 2 months: orders in
  t = 1..3 (t + 2 <= 5), quantities in thousands of units in the model (common.UNITS);
- an optional index contract opt on s1.
Each allowed set above follows from the rule in the data layer's docstrings (delivery, start or
service inside the horizon), worked by hand here, not read from the code.
"""

from __future__ import annotations

import pandas as pd
import pytest
from pyomo.repn import generate_standard_repn
from test_model import tiny_dict

from optimizer.economics.data import compile_instance
from optimizer.errors import InputError
from optimizer.instance import Instance
from optimizer.model import build_model
from optimizer.plan import Plan


def tiny(**extra) -> dict:
    d = tiny_dict()
    s1 = d["sites"][0]
    if "gx" in extra:
        s1["grid_expansions"] = [{"id": "g1", "mw": 5, "capex_usd": 1_000_000, "lead_months": 1, "earliest_month": "2026-03"}]
    if "sale" in extra:
        s1["sale"] = {"price_usd": 2_000_000, "earliest_month": "2026-04"}
    if "acq" in extra:
        d["sites"].append({**{k: v for k, v in s1.items() if k not in ("grid_expansions", "sale")}, "id": "s2",
                           "halls": [{"id": "h2", "use": "mining", "racks": 20}],
                           "acquisition": {"price_usd": 3_000_000, "available_from": "2026-02"}})
    if "buy" in extra:
        d["fleet"]["purchase_options"] = [{"id": "p1", "model": "m200", "usd_per_th": 15, "first_month": "2026-02",
                                           "last_month": "2026-05", "lead_months": 2, "sites": ["s1"]}]
    if "opt" in extra:
        d["contracts"].append({"id": "opt", "site": "s1", "kind": "index", "adder_usd_per_mwh": 2, "optional": True})
    return d


def build(d: dict, *decisions):
    d["policy"] = {**d.get("policy", {}), "fixed_decisions": list(decisions)}
    return build_model(compile_instance(Instance.from_dict(d)))


def pinned(var) -> dict:
    """{period: fixed value} of a variable indexed (..., t) on a two-stage model (one root node)."""
    return {k[-1]: var[k].value for k in var.index_set() if var[k].fixed}


def error(d: dict, *decisions) -> str:
    with pytest.raises(InputError) as e:
        build(d, *decisions)
    return str(e.value)


# ---------------------------------------------------------------- each kind pins its variables


def test_grid_expansion_that_happens_is_pinned_to_one_in_its_month_only():
    m = build(tiny(gx=1), {"kind": "grid_expansion", "site": "s1", "option": "g1", "month": "2026-04"})
    assert sorted(k[-1] for k in m.gx_index) == [2, 3, 4]
    assert pinned(m.gx) == {3: 1}
    assert [v.name for v in m.fixed_by_decision[0]] == [m.gx["s1", "g1", 3].name]


def test_grid_expansion_that_does_not_happen_in_a_month_frees_the_others_and_without_a_month_never_happens():
    m = build(tiny(gx=1), {"kind": "grid_expansion", "site": "s1", "option": "g1", "month": "2026-04", "happens": False})
    assert pinned(m.gx) == {3: 0}
    m = build(tiny(gx=1), {"kind": "grid_expansion", "site": "s1", "option": "g1", "happens": False})
    assert pinned(m.gx) == {2: 0, 3: 0, 4: 0}
    assert len(m.fixed_by_decision[0]) == 3


def test_grid_expansion_outside_its_months_is_one_line_naming_them():
    # 2026-06 (period 5): in service only after the horizon's end
    assert error(tiny(gx=1), {"kind": "grid_expansion", "site": "s1", "option": "g1", "month": "2026-06"}) == (
        "policy.fixed_decisions[0]: grid expansion 'g1' of site 's1' cannot happen in 2026-06 (allowed months: 2026-03..2026-05)")


def test_an_event_with_no_variable_at_all_names_what_is_missing():
    # lead 5 months from 2026-03: in service in 2026-08, after the horizon, so the model has no gx at all
    d = tiny(gx=1)
    d["sites"][0]["grid_expansions"][0]["lead_months"] = 5
    assert error(d, {"kind": "grid_expansion", "site": "s1", "option": "g1", "happens": False}) == (
        "policy.fixed_decisions[0]: the model has no grid expansion 'g1' of site 's1' to fix "
        "(no such option, or no allowed month in the horizon)")


def test_sale_and_acquisition_pin_their_binaries():
    m = build(tiny(sale=1), {"kind": "sale", "site": "s1", "month": "2026-05"})
    assert sorted(k[-1] for k in m.sell.index_set()) == [3, 4, 5]
    assert pinned(m.sell) == {4: 1}
    m = build(tiny(sale=1), {"kind": "sale", "site": "s1", "happens": False})
    assert pinned(m.sell) == {3: 0, 4: 0, 5: 0}
    m = build(tiny(acq=1), {"kind": "acquisition", "site": "s2", "month": "2026-02"})
    assert sorted(k[-1] for k in m.acq.index_set()) == [1, 2, 3, 4, 5]
    assert pinned(m.acq) == {1: 1}
    assert [v.name for v in m.fixed_by_decision[0]] == [m.acq["s2", 1].name]
    assert error(tiny(sale=1), {"kind": "sale", "site": "s1", "month": "2026-02"}) == (
        "policy.fixed_decisions[0]: sale of site 's1' cannot happen in 2026-02 (allowed months: 2026-04..2026-06)")


def test_purchase_pins_thousands_of_units():
    m = build(tiny(buy=1), {"kind": "purchase", "option": "p1", "site": "s1", "month": "2026-03", "units": 250})
    assert sorted(k[-1] for k in m.buy_index) == [1, 2, 3]
    assert pinned(m.buy) == {2: 0.25}
    assert [v.name for v in m.fixed_by_decision[0]] == [m.buy["p1", "s1", 2].name]
    # ordered in 2026-05 (period 4) the units would arrive in period 6, after the horizon
    assert error(tiny(buy=1), {"kind": "purchase", "option": "p1", "site": "s1", "month": "2026-05", "units": 1}) == (
        "policy.fixed_decisions[0]: purchase option 'p1' cannot deliver to site 's1' when ordered in 2026-05 "
        "(allowed months: 2026-02..2026-04)")


def test_contract_decision_pins_an_optional_contract_and_ignores_a_mandatory_one_signed():
    m = build(tiny(opt=1), {"kind": "contract", "contract": "opt", "signed": False})
    assert m.sign["opt"].fixed and m.sign["opt"].value == 0
    assert [v.name for v in m.fixed_by_decision[0]] == [m.sign["opt"].name]
    m = build(tiny(opt=1), {"kind": "contract", "contract": "opt", "signed": True})
    assert m.sign["opt"].fixed and m.sign["opt"].value == 1
    # idx is always signed: it has no sign variable, and fixing it signed fixes nothing
    m = build(tiny(opt=1), {"kind": "contract", "contract": "idx", "signed": True})
    assert not m.sign["opt"].fixed and m.fixed_by_decision == {}


def test_a_site_with_no_conversion_month_in_the_horizon_says_none():
    # earliest 2026-05 (period 4) with a 2-month lead: 4 + 2 > 5, no start month at all
    d = tiny()
    d["sites"][0]["conversion"]["earliest_month"] = "2026-05"
    assert error(d, {"kind": "conversion", "site": "s1", "month": "2026-05", "blocks": 1}) == (
        "policy.fixed_decisions[0]: site 's1' cannot start a conversion in 2026-05 (allowed months: none)")


# ---------------------------------------------------------------- leases: pinned binaries or one row per path


def test_lease_signed_without_site_and_month_is_one_equality_row_over_its_hand_overs():
    m = build(tiny(), {"kind": "lease", "lease": "L1", "signed": True})
    assert not any(m.x[k].fixed for k in m.x_index)
    rows = list(m.fixed_lease.values())
    assert len(rows) == 1 and rows[0].lower == rows[0].upper == 1
    # the row sums every hand-over variable of L1 with coefficient 1
    repn = generate_standard_repn(rows[0].body)
    assert sorted(v.name for v in repn.linear_vars) == sorted(m.x[k].name for k in m.x_index if k[0] == "L1")
    assert list(repn.linear_coefs) == [1.0] * len(repn.linear_vars)
    assert list(m.fixed_lease_decision.values()) == [0]
    assert m.fixed_by_decision == {}  # a row, not a fixed variable: the diagnosis relaxes the row


def test_lease_signed_in_a_month_only_sums_that_months_hand_overs():
    m = build(tiny(), {"kind": "lease", "lease": "L1", "signed": True, "month": "2026-04"})
    (row,) = m.fixed_lease.values()
    assert sorted(v.name for v in generate_standard_repn(row.body).linear_vars) == [m.x["L1", "s1", 3].name]


def test_second_decision_is_recorded_under_its_own_index():
    m = build(tiny(gx=1, opt=1), {"kind": "contract", "contract": "opt", "signed": True},
              {"kind": "grid_expansion", "site": "s1", "option": "g1", "month": "2026-03"})
    assert sorted(m.fixed_by_decision) == [0, 1]
    assert [v.name for v in m.fixed_by_decision[1]] == [m.gx["s1", "g1", 2].name]


# ---------------------------------------------------------------- share rules


def test_min_mining_share_the_start_already_breaks_is_refused_by_name():
    # 30 mining + 20 HPC racks at the start: 0.7 x 50 = 35 > 30 mining racks
    d = tiny()
    d["sites"][0]["halls"].append({"id": "h2", "use": "hpc", "racks": 20})
    d["policy"] = {"min_mining_share": 0.7}
    with pytest.raises(ValueError) as e:
        build_model(compile_instance(Instance.from_dict(d)))
    assert str(e.value) == ("policy.min_mining_share: 0.7 x 50 rack positions of the initially owned sites must stay mining, "
                            "but they have only 30 mining racks")


def test_max_converted_share_counts_a_conversion_started_in_the_last_month():
    # conversion lead 0: a block (10 racks) started in 2026-06, the last period, counts; 0.3 x 30
    # initial mining racks = 9 racks may be converted: the plan breaks the row by 1 rack
    from test_model_financing_rows import at_plan, broken
    d = tiny()
    d["sites"][0]["conversion"]["lead_months"] = 0
    d["policy"] = {"max_converted_share": 0.3}
    plan = Plan(conversions=pd.DataFrame({"site": ["s1"], "month": ["2026-06"], "blocks": [1.0]}),
                retirements=pd.DataFrame({"site": ["s1"], "model": ["m200"], "month": ["2026-06"], "units": [1000.0]}))
    m, _, _ = at_plan(d, plan)
    assert broken(m) == {"max_converted_share[0]": pytest.approx(1.0)}
