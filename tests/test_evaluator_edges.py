"""The evaluator's first-stage checks and allocation tables on their edges (optimizer/evaluate):
a bad plan row does not hide the rows after it, a check at its limit is not a violation, each
site's allocation counts its own leases and GPUs, and an empty allocation keeps its column types.
Each case was a surviving mutant of benchmarks/MUTATION.md (2 December); the expected values are
worked by hand from the instance in the test.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_hpc_levers import _base, _gpu_vs_colo, _index, _site
from test_model import tiny_dict

from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import Plan

tiny = tiny_dict  # instances/tiny.yaml as a dict


def test_a_conversion_row_for_an_unknown_site_does_not_hide_the_next_row():
    # tiny: one block = 10 racks x 100 kW = 1 MW at 1,000,000 USD/MW over a 2-month lead (500,000 a month)
    plan = Plan(conversions=pd.DataFrame({"site": ["nowhere", "s1"], "month": ["2026-01", "2026-01"], "blocks": [1.0, 1.0]}))
    ev = evaluate(Instance.from_dict(tiny()), plan)
    assert ev.violations[0] == "plan.conversions row 0: unknown site 'nowhere'"
    capex = ev.cashflows[ev.cashflows["item"] == "capex_usd"].groupby("period")["usd"].sum()
    assert capex.to_dict() == {0: pytest.approx(-500_000), 1: pytest.approx(-500_000)}


def test_retiring_units_within_the_tolerance_of_none_is_not_a_violation():
    # a second ASIC model with no unit installed at s1: retiring 1e-6 units leaves -1e-6, exactly the
    # tolerance (1e-6 below 1 unit) and not below it; 2e-6 is a violation
    d = tiny()
    d["fleet"]["asic_models"].append({"name": "m300", "hashrate_th_s": 300, "power_w": 5000})
    inst = Instance.from_dict(d)

    def retire(units: float) -> list[str]:
        return evaluate(inst, Plan(retirements=pd.DataFrame({"site": ["s1"], "model": ["m300"], "month": ["2026-01"],
                                                             "units": [units]}))).violations
    assert not any("m300" in v for v in retire(1e-6))
    assert any("m300" in v for v in retire(2e-6))


def two_hpc_sites() -> dict:
    # sites h and g, 10 HPC racks (1 MW) each; lease C (1 MW) handed over at h; GPUs gb bought at g
    d = _gpu_vs_colo(0.0)
    d["sites"].append(_site("g", halls=[{"id": "hpc", "use": "hpc", "racks": 10}]))
    d["contracts"].append(_index("g"))
    return d


def test_each_sites_allocation_counts_its_own_leased_racks_and_gpus():
    plan = Plan(leases=pd.DataFrame({"lease": ["C"], "site": ["h"], "month": ["2026-01"], "share": [1.0]}),
                gpu_purchases=pd.DataFrame({"option": ["gb"], "site": ["g"], "month": ["2026-01"], "mw": [0.5]}))
    ev = evaluate(Instance.from_dict(two_hpc_sites()), plan)
    assert ev.violations == []
    first = ev.allocation[ev.allocation["month"] == "2026-01"].set_index("site")
    assert first.loc["h", "hpc_racks_leased"] == 10 and first.loc["g", "hpc_racks_leased"] == 0
    assert first.loc["h", "gpu_mw"] == 0 and first.loc["g", "gpu_mw"] == 0.5


def test_an_empty_allocation_keeps_numeric_columns():
    # a site with no racks yet (only a new-build option, not taken) and no units: nothing to allocate
    d = _base()
    d["sites"] = [_site("e", new_builds=[{"id": "nb", "use": "hpc", "racks_per_block": 10, "capex_usd_per_mw": 1_000_000,
                                          "lead_months": 1, "max_blocks": 1}])]
    d["contracts"] = [_index("e")]
    long = evaluate(Instance.from_dict(d), Plan()).allocation_long
    assert len(long) == 0
    assert {c: str(long[c].dtype) for c in ("racks", "mw", "units")} == {"racks": "float64", "mw": "float64", "units": "float64"}


# ---------------------------------------------------------------- new builds at their limits


def shed(**option) -> Instance:
    # test_hpc_levers' mining shed: blocks of 10 mining racks (1,000 ASIC positions), lead 2 months
    d = _base()
    d["sites"] = [_site("m", new_builds=[{"id": "shed", "use": "mining", "racks_per_block": 10, "capex_usd_per_mw": 200_000,
                                          "mining_kw_per_rack": 350, "lead_months": 2, "max_blocks": 2, **option}])]
    d["contracts"] = [_index("m")]
    return Instance.from_dict(d)


def builds(*rows) -> Plan:
    return Plan(new_builds=pd.DataFrame(list(rows), columns=["site", "option", "month", "blocks"]))


def test_new_builds_at_their_limits_are_not_violations():
    # earliest month = the horizon's first month: a start then is allowed; exactly max_blocks (2) too
    assert evaluate(shed(earliest_month="2026-01"), builds(("m", "shed", "2026-01", 1.0))).violations == []
    assert evaluate(shed(), builds(("m", "shed", "2026-01", 1.0), ("m", "shed", "2026-02", 1.0))).violations == []
    over = evaluate(shed(), builds(("m", "shed", "2026-01", 2.0), ("m", "shed", "2026-02", 1.0))).violations
    assert over == ["new build shed at site m: 3 blocks started, more than max_blocks 2"]


def test_a_new_build_row_with_a_bad_number_names_the_column():
    ev = evaluate(shed(), builds(("m", "shed", "2026-01", float("nan"))))
    assert ev.violations == ["plan.new_builds row 0: blocks is not a number"]


def test_grid_expansion_capex_is_depreciated_as_its_own_asset_class():
    # tiny + a 1,000,000 USD grid expansion started in 2026-02 (lead 1 month); tax 21 %, no terminal
    # values; 2026's taxable income (about 2.8 M$ of mining margin) absorbs the deduction: writing the
    # expansion off in full in 2026 (bonus 100 %) instead of not at all lowers the tax by 210,000
    def tax(rule: dict) -> float:
        d = tiny()
        d["horizon"]["terminal"] = {"asic_salvage": False}
        d["sites"][0]["grid_expansions"] = [{"id": "g1", "mw": 5, "capex_usd": 1_000_000, "lead_months": 1}]
        d["financing"] = {"taxes": {"rate": 0.21, "tax_terminal_values": False, "depreciation": {"grid_expansion": rule}}}
        ev = evaluate(Instance.from_dict(d), Plan(grid_expansions=pd.DataFrame({"site": ["s1"], "option": ["g1"], "month": ["2026-02"]})))
        assert ev.violations == []
        return float(ev.cashflows.loc[ev.cashflows["item"] == "tax_usd", "usd"].sum())
    assert tax({"method": "straight_line", "years": 1, "bonus_share": 1.0}) - tax({"method": "none"}) == pytest.approx(210_000, rel=1e-12)


def test_cashflows_have_exactly_the_documented_columns():
    ev = evaluate(Instance.from_dict(tiny()), Plan())
    assert list(ev.cashflows.columns) == ["scenario", "month", "period", "site", "item", "usd", "discount_factor", "pv_usd"]
    assert list(ev.cashflows.index) == list(range(len(ev.cashflows)))


def test_a_grid_expansion_adds_its_mw_once_its_lead_has_passed():
    # tiny (12 MW) + g1: 5 MW, lead 2 months, started in 2026-02 (period 1): 17 MW from 2026-04 (period 3)
    d = tiny()
    d["sites"][0]["grid_expansions"] = [{"id": "g1", "mw": 5, "capex_usd": 1_000_000, "lead_months": 2}]
    ev = evaluate(Instance.from_dict(d), Plan(grid_expansions=pd.DataFrame({"site": ["s1"], "option": ["g1"], "month": ["2026-02"]})))
    assert ev.violations == []
    assert ev.allocation["grid_mw"].tolist() == [12, 12, 12, 17, 17, 17]


def test_lease_rows_with_an_unknown_site_or_a_bad_share_are_named():
    lease = {"lease": ["L1"], "site": ["s9"], "month": ["2026-03"], "share": [1.0]}
    ev = evaluate(Instance.from_dict(tiny()), Plan(leases=pd.DataFrame(lease)))
    assert ev.violations[0] == "plan.leases row 0: unknown site 's9'"
    ev = evaluate(Instance.from_dict(tiny()), Plan(leases=pd.DataFrame({**lease, "site": ["s1"], "share": [float("nan")]})))
    assert ev.violations[0] == "plan.leases row 0: share is not a number"


def test_hashrate_kpi_counts_only_the_hours_not_curtailed():
    # test_levers' demand-response case: 1000 units of 100 TH/s (0.1 EH/s) all enrolled; curtailed 10 h
    # of April's 720 (demand response), and 10 + 4 h of June's 720 (the peak too): average EH/s
    from test_levers import _dr, make
    ev = evaluate(make(_dr), Plan())
    k = ev.kpis.set_index("month")["hashrate_eh_s"]
    assert k["2026-04"] == pytest.approx(0.1 * (1 - 10 / 720), rel=1e-12)
    assert k["2026-06"] == pytest.approx(0.1 * (1 - 14 / 720), rel=1e-12)


def test_cost_to_mine_nets_the_power_sold_back():
    # tiny with a fixed 12 MW contract at 50 USD/MWh, 50 % take-or-pay, sell-back allowed; 1,000 units
    # (3.5 MW) mine in 2026-01: the site takes the 6 MW minimum (6 x 744 x 50 = 223,200) and sells the
    # 2.5 MW it does not use at the 40 market (2.5 x 744 x 40 = 74,400): net 148,800 for
    # 1000 x 0.2 PH/s x 0.00045 BTC per PH-day x 31 days = 2.79 BTC
    d = tiny()
    d["contracts"] = [{"id": "fx", "site": "s1", "kind": "fixed", "mw_cap": 12, "price_usd_per_mwh": 50,
                       "take_or_pay_min_share": 0.5, "sell_back_allowed": True}]
    plan = Plan(retirements=pd.DataFrame({"site": ["s1"], "model": ["m200"], "month": ["2026-01"], "units": [2000.0]}))
    ev = evaluate(Instance.from_dict(d), plan)
    jan = ev.kpis.set_index("month").loc["2026-01"]
    assert jan["btc_mined"] == pytest.approx(2.79, rel=1e-12)
    assert jan["cost_to_mine_usd_per_btc"] == pytest.approx((223_200 - 74_400) / 2.79, rel=1e-12)
