"""Capital structure and taxes (instance section ``financing``): loan schedules, DSCR, taxes with
depreciation and loss carry-forward, financed feasibility, valuation, and switched-off identity.

Every expected number is hand arithmetic written next to it (closed-form annuity, the IRS MACRS
table, a year-by-year tax table), never a number read from the product's output.
"""

from __future__ import annotations

import calendar
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from optimizer import Instance
from optimizer.economics.financing import facility_unit
from optimizer.evaluate import evaluate
from optimizer.evaluate.evaluator import evaluate_as_given
from optimizer.evaluate.financing import _amortize
from optimizer.kernel.tax import MACRS_HALF_YEAR_PERCENT, depreciation_fractions
from optimizer.output.excel import write_workbook
from optimizer.output.report import render_report
from optimizer.plan import Plan
from optimizer.solve import solve

ROOT = Path(__file__).parents[1]
TINY = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())


def _tiny(**over) -> dict:
    d = copy.deepcopy(TINY)
    d["horizon"]["periods"] = 24
    for k, v in over.items():
        d[k] = v
    return d


def _line(cf: pd.DataFrame, item: str, site: str | None = None) -> pd.Series:
    """USD of one item per period (summed over sites unless one is named), first scenario."""
    cf = cf[(cf["item"] == item) & (cf["scenario"] == cf["scenario"].iloc[0])]
    if site is not None:
        cf = cf[cf["site"] == site]
    return cf.groupby("period")["usd"].sum()


def _same_lines(res, tol: float = 1e-6) -> None:
    """The model's cash-flow lines equal the evaluator's, line by line (USD)."""
    key = ["scenario", "period", "site", "item"]
    ev = res.evaluation.cashflows.groupby(key)["usd"].sum()
    mo = res.model_cashflows.groupby(key)["usd"].sum()
    j = pd.concat([ev, mo], axis=1, keys=["ev", "mo"]).fillna(0.0)
    bad = j[(j["ev"] - j["mo"]).abs() > tol]
    assert bad.empty, bad.head(10)


# ---------------------------------------------------------------- a level-payment loan

FACILITY = {"id": "pf", "site": "s1", "commitment_usd": 2_000_000, "loan_to_cost": 1.0, "interest_rate_per_year": 0.12,
            "draw_first_month": "2026-01", "draw_last_month": "2026-03", "amortization_start_month": "2026-05",
            "tenor_months": 12}


def _loan_instance(**fac) -> Instance:
    return Instance.from_dict(_tiny(financing={"project_facilities": [{**FACILITY, **fac}]}))


def _loan_plan() -> Plan:
    # one conversion block (10 racks x 100 kW = 1 MW at 1,000,000 USD/MW, lead 2): capex 500,000 in
    # 2026-01 and 2026-02, so 1,000,000 drawn in 2026-02 is within loan-to-cost 1.0
    # (the block's 10 racks held 1,000 of the 3,000 ASICs: they are retired)
    return Plan(conversions=pd.DataFrame({"site": ["s1"], "month": ["2026-01"], "blocks": [1.0]}),
                retirements=pd.DataFrame({"site": ["s1"], "model": ["m200"], "month": ["2026-01"], "units": [1000.0]}),
                debt=pd.DataFrame({"instrument": ["pf"], "month": ["2026-02"], "usd": [1_000_000.0]}))


def test_level_payment_loan_equals_the_annuity_formula():
    ev = evaluate(_loan_instance(), _loan_plan())
    assert ev.violations == []
    cf = ev.cashflows
    interest, principal = _line(cf, "interest_usd", "s1"), _line(cf, "principal_usd", "s1")
    B, i, n, a = 1_000_000.0, 0.12 / 12, 12, 4        # i = 1 % a month; amortization from period 4 (2026-05)
    A = B * i / (1 - (1 + i) ** -n)                    # = 88,848.79 USD a month
    assert A == pytest.approx(88_848.7887, abs=1e-3)
    g = 1 + i
    for k in range(n):
        owed = B * (g ** n - g ** k) / (g ** n - 1)    # balance before payment k (closed form)
        assert -interest[a + k] == pytest.approx(i * owed, rel=1e-12, abs=1e-6)
        assert -principal[a + k] == pytest.approx(A - i * owed, rel=1e-12, abs=1e-6)
    # first payment by hand: interest 1 % x 1,000,000 = 10,000; principal 88,848.79 - 10,000
    assert -principal[a] == pytest.approx(78_848.7887, abs=1e-3)
    assert -principal.sum() == pytest.approx(B, rel=1e-12)      # fully repaid by 2027-04
    sched = ev.debt_schedule.set_index("period")
    assert sched.loc[a + n - 1, "balance_usd"] == pytest.approx(0.0, abs=1e-6)
    assert sched.loc[a, "balance_usd"] == pytest.approx(B - 78_848.7887, abs=1e-3)


def test_interest_only_construction_then_amortization_hand_schedule():
    # drawn 1,000,000 at the end of 2026-02 (period 1); interest-only at 1 % a month in 2026-03
    # and 2026-04 (periods 2, 3): 10,000 each; nothing in period 1 (the draw is at its end)
    ev = evaluate(_loan_instance(), _loan_plan())
    interest = _line(ev.cashflows, "interest_usd", "s1")
    assert 1 not in interest.index and 0 not in interest.index
    assert -interest[2] == pytest.approx(10_000.0, abs=1e-9)
    assert -interest[3] == pytest.approx(10_000.0, abs=1e-9)
    assert 2 not in _line(ev.cashflows, "principal_usd", "s1").index
    # then 12 level payments of 88,848.79 from 2026-05 (periods 4..15): debt service per period
    sched = ev.debt_schedule.set_index("period")
    assert np.allclose(sched.loc[4:15, "debt_service_usd"], 88_848.7887, atol=1e-3)
    assert (sched.loc[16:, "debt_service_usd"] == 0).all()
    # capitalized: the balance grows 1 % a month through 2026-04: 1,000,000 x 1.01^2 = 1,020,100,
    # no interest paid before 2026-05; then 12 payments of 1,020,100 x 0.0888487887
    # = 88,848.7887 + 20,100 x 0.0888487887 = 88,848.7887 + 1,785.8607 = 90,634.6494
    ev2 = evaluate(_loan_instance(construction_interest="capitalized"), _loan_plan())
    s2 = ev2.debt_schedule.set_index("period")
    assert s2.loc[3, "balance_usd"] == pytest.approx(1_020_100.0, abs=1e-6)
    assert (s2.loc[:3, "interest_usd"] == 0).all()
    assert np.allclose(s2.loc[4:15, "debt_service_usd"], 1_020_100 * 0.01 / (1 - 1.01 ** -12), rtol=1e-12)
    assert 1_020_100 * 0.01 / (1 - 1.01 ** -12) == pytest.approx(90_634.6494, abs=1e-3)


def test_model_schedule_equals_evaluator_schedule():
    # the MILP superposes closed-form schedules of 1 USD drawn in each period; the evaluator runs a
    # balance loop on the actual draws: they must agree for every amortization kind
    T, L, i = 40, 1, 0.0075
    draws = np.zeros(T)
    draws[[1, 3, 4]] = [300_000.0, 125_000.0, 575_000.0]
    for kind, cap in [("annuity", False), ("annuity", True), ("level_principal", False), ("sculpted", True)]:
        g = 0.03 if kind == "sculpted" else 0.0
        a, n = 6, 48  # amortization runs past the horizon: the end balance is what is owed then
        interest, principal, balance = _amortize(draws, i, a, n, kind, cap, g, L, T)
        units = {u: facility_unit(i, u, a, n, kind, cap, g, L, T) for u in (1, 3, 4)}
        sup_i = sum(draws[u] * units[u].interest for u in units)
        sup_p = sum(draws[u] * units[u].principal for u in units)
        sup_end = sum(draws[u] * units[u].end_balance for u in units)
        assert np.allclose(interest, sup_i, rtol=1e-10, atol=1e-6), kind
        assert np.allclose(principal, sup_p, rtol=1e-10, atol=1e-6), kind
        assert balance[-1] == pytest.approx(sup_end, rel=1e-10), kind


def test_solver_schedule_line_by_line_and_verify():
    inst = _loan_instance()
    res = solve(inst, first_stage=_loan_plan(), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    _same_lines(res)


# ---------------------------------------------------------------- DSCR binds


def test_dscr_binding_draw_equals_noi_over_dscr_times_debt_service_factor():
    d = _tiny(policy={"fixed_decisions": [{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1},
                                          {"kind": "lease", "lease": "L1", "signed": True, "site": "s1", "month": "2026-03"}]},
              financing={"project_facilities": [{
                  "id": "pf", "site": "s1", "lease": "L1", "commitment_usd": 10_000_000, "loan_to_cost": 0.8,
                  "interest_rate_per_year": 0.12, "draw_first_month": "2026-01", "draw_last_month": "2026-06",
                  "amortization_start_month": "2026-07", "tenor_months": 60, "min_dscr": 2.0}]})
    d["horizon"]["discount_rate"] = 0.20          # borrowing at 12 % is worth it when equity discounts at 20 %
    d["sites"][0]["conversion"]["capex_usd_per_mw"] = 5_000_000   # LTC room 0.8 x 5,000,000 = 4,000,000
    d["leases"][0]["term_months"] = 120
    res = solve(Instance.from_dict(d), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    # NOI = 1 MW x 1000 kW x 150 USD/kW-month x 0.9 margin = 135,000 USD a month, level;
    # debt service factor of a 60-month annuity at 1 %: k = 0.01 / (1 - 1.01^-60) = 0.0222444477;
    # DSCR 2: B x k x 2 <= 135,000  ->  B = 135,000 / (2 x 0.0222444477) = 3,034,465.1 (< 4,000,000 LTC)
    k = 0.01 / (1 - 1.01 ** -60)
    assert k == pytest.approx(0.0222444477, abs=1e-10)
    assert res.plan.debt["usd"].sum() == pytest.approx(135_000 / (2.0 * k), rel=1e-7)
    assert 135_000 / (2.0 * k) == pytest.approx(3_034_465.1, abs=0.1)
    _same_lines(res)


# ---------------------------------------------------------------- taxes


def _tax_instance(**tax) -> dict:
    taxes = {"rate": 0.21, "nol_limit_share": 0.8, "tax_terminal_values": False,
             "depreciation": {"hpc_conversion": {"method": "straight_line", "years": 2},
                              "asics": {"method": "macrs", "years": 5, "bonus_share": 1.0}}}
    taxes.update(tax)
    site = {"market": "m", "pue_mining": 1.0, "pue_hpc": 1.0, "asics_per_rack": 100, "hpc_kw_per_rack": 100}
    return {
        "name": "tax_hand",
        "horizon": {"start_month": "2026-01", "periods": 16, "period_months": 3, "discount_rate": 0.10,
                    "terminal": {"lease_remaining_noi": False, "asic_salvage": False, "treasury_btc": False}},
        "bitcoin": {"start_height": 930000},
        "scenarios": [{"name": "base", "probability": 1.0, "btc_price_usd": 100000, "network_hashrate_eh_s": 1000,
                       "power_price_usd_per_mwh": {"m": 0.0}}],
        "sites": [{"id": "dc", "grid_interconnect_mw": 10, **site,
                   "halls": [{"id": "h1", "use": "hpc", "racks": 10}, {"id": "h2", "use": "mining", "racks": 10}],
                   "conversion": {"racks_per_block": 10, "capex_usd_per_mw": 3_000_000, "lead_months": 0}},
                  {"id": "mine", "grid_interconnect_mw": 5, **site, "halls": [{"id": "h", "use": "mining", "racks": 10}]}],
        "fleet": {"asic_models": [{"name": "a", "hashrate_th_s": 200, "power_w": 3500}],
                  "purchase_options": [{"id": "p", "model": "a", "usd_per_th": 15, "first_month": "2026-01", "sites": ["mine"]}]},
        "contracts": [{"id": "c", "site": "dc", "kind": "index"}],
        "leases": [{"id": "L", "it_mw": 2, "rate_usd_per_kw_month": 100, "term_months": 120, "window_start": "2026-01",
                    "window_end": "2026-01", "eligible_sites": ["dc"], "noi_margin": 0.75}],
        "financing": {"taxes": taxes},
    }


def _tax_plan() -> Plan:
    hours = []
    for q in range(16):  # HPC load 2 MW x PUE 1 x hours of each quarter, bought at price 0
        y, m0 = 2026 + q // 4, 3 * (q % 4) + 1
        hours.append(24 * sum(calendar.monthrange(y, m)[1] for m in range(m0, m0 + 3)))
    labels = [f"{2026 + q // 4}-{3 * (q % 4) + 1:02d}" for q in range(16)]
    mwh = [2.0 * h for h in hours]
    return Plan(
        conversions=pd.DataFrame({"site": ["dc"], "month": ["2026-01"], "blocks": [1.0]}),
        purchases=pd.DataFrame({"option": ["p"], "site": ["mine"], "month": ["2026-01"], "units": [500.0]}),
        leases=pd.DataFrame({"lease": ["L"], "site": ["dc"], "month": ["2026-01"], "share": [1.0]}),
        energy=pd.DataFrame({"scenario": "base", "contract": "c", "month": labels, "delivered_mwh": mwh, "used_mwh": mwh,
                             "sold_mwh": 0.0}),
    )


def test_tax_with_depreciation_and_loss_carry_forward_hand_table():
    ev = evaluate_as_given(Instance.from_dict(_tax_instance()), _tax_plan())
    assert ev.violations == []
    # taxable lines per year: rent 2 MW x 1000 x 100 x 12 = 2,400,000 minus opex 25 % = 1,800,000
    # depreciation: conversion 1 MW x 3,000,000 straight line over 2 years = 1,500,000 in 2026 and 2027;
    #               ASICs 500 x 200 TH x 15 USD/TH = 1,500,000, MACRS 5-year with 100 % bonus: all in 2026
    # year  income   deprec.   taxable   NOL in   NOL used                         NOL out   tax (21 %)
    # 2026  1.8M     3.0M      -1.2M     0        0                                1.2M      0
    # 2027  1.8M     1.5M       0.3M     1.2M     min(1.2M, 0.8 x 0.3M) = 0.24M   0.96M     0.21 x 0.06M = 12,600
    # 2028  1.8M     0          1.8M     0.96M    min(0.96M, 1.44M) = 0.96M        0         0.21 x 0.84M = 176,400
    # 2029  1.8M     0          1.8M     0        0                                0         0.21 x 1.8M = 378,000
    expected = {"2026": (-1_200_000, 0, 1_200_000, 0.0), "2027": (300_000, 240_000, 960_000, 12_600.0),
                "2028": (1_800_000, 960_000, 0, 176_400.0), "2029": (1_800_000, 0, 0, 378_000.0)}
    tab = ev.tax_schedule[ev.tax_schedule["system"] == "levered"].set_index("year")
    for y, (ti, used, nol, tax) in expected.items():
        assert tab.loc[y, "taxable_income_usd"] == pytest.approx(ti, abs=1e-6)
        assert tab.loc[y, "nol_used_usd"] == pytest.approx(used, abs=1e-6)
        assert tab.loc[y, "nol_end_usd"] == pytest.approx(nol, abs=1e-6)
        assert tab.loc[y, "tax_usd"] == pytest.approx(tax, abs=1e-6)
    assert tab.loc["2026", "depreciation_usd"] == pytest.approx(3_000_000, abs=1e-6)
    # paid at the end of each year's last quarter (periods 3, 7, 11, 15); 2026 pays nothing
    tax = -_line(ev.cashflows, "tax_usd")
    assert list(tax.index) == [7, 11, 15]
    assert tax.to_numpy() == pytest.approx([12_600.0, 176_400.0, 378_000.0], abs=1e-6)


def test_macrs_five_year_with_full_bonus_is_all_in_year_one():
    assert depreciation_fractions("macrs", 5, 1.0) == pytest.approx([1.0, 0, 0, 0, 0, 0], abs=0)
    # without bonus: IRS Pub. 946 Table A-1 for 5-year property, 20 / 32 / 19.2 / 11.52 / 11.52 / 5.76 %
    assert depreciation_fractions("macrs", 5, 0.0) == pytest.approx([0.20, 0.32, 0.192, 0.1152, 0.1152, 0.0576], abs=1e-12)
    # 60 % bonus: 0.6 + 0.4 x 0.20 = 0.68 in year one, 0.4 x 0.32 = 0.128 in year two
    assert depreciation_fractions("macrs", 5, 0.6)[:2] == pytest.approx([0.68, 0.128], abs=1e-12)
    # the ASICs of the hand case: 1,500,000 deducted in 2026 only (3,000,000 with the conversion's 1,500,000)
    ev = evaluate_as_given(Instance.from_dict(_tax_instance()), _tax_plan())
    tab = ev.tax_schedule[ev.tax_schedule["system"] == "levered"].set_index("year")
    assert tab["depreciation_usd"].to_dict() == pytest.approx({"2026": 3_000_000, "2027": 1_500_000, "2028": 0, "2029": 0})


def test_macrs_table_follows_the_declining_balance_rule():
    # re-derive each IRS table: 200 % (150 % for 15, 20 years) declining balance, half-year
    # convention, switching to straight line over the remaining life when larger; rounded to 2
    # decimals (3 for 20-year) the table may differ by one unit of the last digit
    for n, table in MACRS_HALF_YEAR_PERCENT.items():
        f = 2.0 if n <= 10 else 1.5
        basis, life, out = 1.0, float(n), []
        for year in range(n + 1):
            part = 0.5 if year == 0 else 1.0
            d = min(basis, max(basis * f / n * part, basis / life * part if life > 0 else basis))
            out.append(100 * d)
            basis -= d
            life -= part
        assert len(out) == len(table)
        assert np.allclose(out, table, atol=0.011 if n < 20 else 0.0011), n
        assert sum(table) == pytest.approx(100.0, abs=1e-9)


def test_model_taxes_equal_the_evaluator_line_by_line():
    inst = Instance.from_dict(_tax_instance(tax_terminal_values=True))
    res = solve(inst, first_stage=_tax_plan(), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    _same_lines(res)
    assert (res.model_cashflows["item"] == "tax_usd").any()


# ---------------------------------------------------------------- financed conversion


def _conversion_case(with_facility: bool, **fin) -> Instance:
    d = _tiny(treasury={"cash_start_usd": 500_000, "min_cash_usd": 0},
              policy={"fixed_decisions": [{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1},
                                          {"kind": "lease", "lease": "L1", "signed": True, "site": "s1", "month": "2026-03"}]})
    d["sites"][0]["conversion"]["capex_usd_per_mw"] = 5_000_000  # 5,000,000 for 1 MW, paid 2026-01 and 2026-02
    d["leases"][0]["term_months"] = 120
    f = {"taxes": {"rate": 0.21}, **fin}
    if with_facility:
        f["project_facilities"] = [{"id": "pf", "site": "s1", "lease": "L1", "commitment_usd": 5_000_000, "loan_to_cost": 0.85,
                                    "interest_rate_per_year": 0.075, "upfront_fee_share": 0.01, "draw_last_month": "2026-06",
                                    "amortization_start_month": "2026-07", "tenor_months": 60, "min_dscr": 1.3}]
    d["financing"] = f
    return Instance.from_dict(d)


def test_financed_conversion_feasible_only_with_the_facility():
    cash_only = solve(_conversion_case(False), mip_gap=1e-6)
    # 5,000,000 of capex in two months against 500,000 of cash and about two months of mining margin
    assert cash_only.status == "infeasible"
    res = solve(_conversion_case(True), mip_gap=1e-6)
    assert res.solved
    res.verify(rtol=1e-9)
    _same_lines(res)
    drawn = res.plan.debt["usd"].sum()
    assert 0 < drawn <= 0.85 * 5_000_000 + 1e-6
    v = res.evaluation.valuation
    # the project earns more than the 7.5 % coupon (tiny discounts at 12 %): borrowing adds equity value
    assert v["equity_npv_usd"] > v["project_npv_usd"]
    assert v["equity_npv_usd"] == pytest.approx(res.npv_usd, rel=1e-12)
    # the difference is the debt's own flows plus the interest tax shield, at the 12 % rate
    cf = res.evaluation.cashflows
    debt_pv = cf[cf["item"].isin(["debt_draws_usd", "debt_fees_usd", "interest_usd", "principal_usd", "terminal_debt_usd"])]["pv_usd"].sum()
    assert debt_pv > 0
    s = res.summary()
    assert {"project_npv_usd", "equity_npv_usd", "equity_irr"} <= set(s)


def test_project_objective_matches_the_evaluator():
    res = solve(_conversion_case(True, objective="project"), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    assert res.objective_usd == pytest.approx(res.evaluation.valuation["project_npv_usd"], rel=1e-9)


def test_discount_rates_by_class():
    res = solve(_conversion_case(True, discount_rates={"contracted_lease": 0.08, "merchant_mining": 0.20}), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    cf = res.evaluation.cashflows
    lease = cf[cf["item"] == "lease_revenue_usd"].iloc[0]
    mining = cf[cf["item"] == "mining_revenue_usd"].iloc[0]
    opex = cf[cf["item"] == "opex_usd"].iloc[0]
    # end of period p (monthly): months p + 1; contracted 8 %, merchant 20 %, other: the horizon's 12 %
    assert lease["discount_factor"] == pytest.approx(1.08 ** (-(lease["period"] + 1) / 12), rel=1e-12)
    assert mining["discount_factor"] == pytest.approx(1.20 ** (-(mining["period"] + 1) / 12), rel=1e-12)
    assert opex["discount_factor"] == pytest.approx(1.12 ** (-(opex["period"] + 1) / 12), rel=1e-12)


def test_corporate_convertible_repaid_from_treasury_btc():
    d = _tiny(treasury={"btc_held_start": 100, "cash_start_usd": 0, "min_cash_usd": 0},
              financing={"corporate_debt": [{"id": "cv", "kind": "convertible", "principal_usd": 3_000_000, "coupon_per_year": 0.0,
                                             "maturity_month": "2026-06", "conversion_price_usd_per_share": 19.16,
                                             "repayment_source": "treasury_btc"}]})
    res = solve(Instance.from_dict(d), mip_gap=1e-9)
    assert res.solved
    res.verify(rtol=1e-9)
    # 3,000,000 due in 2026-06 (period 5) at 100,000 USD/BTC: at least 30 BTC sold that month
    sold = res.plan.btc_sales.set_index("month")["btc"]
    assert sold.get("2026-06", 0.0) >= 30 - 1e-6
    assert -_line(res.evaluation.cashflows, "principal_usd")[5] == pytest.approx(3_000_000)
    assert "interest_usd" not in set(res.evaluation.cashflows["item"])  # zero coupon


def test_bad_financing_input_names_the_field():
    from pydantic import ValidationError

    from optimizer.errors import InputError  # noqa: F401  (the CLI maps ValidationError to one line)
    from optimizer.instance import format_validation_error

    d = _tiny(financing={"project_facilities": [{**FACILITY, "lease": "nope"}]})
    with pytest.raises(ValidationError) as e:
        Instance.from_dict(d)
    msg = format_validation_error(e.value)
    assert "financing.project_facilities[0].lease" in msg and "nope" in msg and "\n" not in msg
    d = _tiny(financing={"project_facilities": [{**FACILITY, "amortization_start_month": "2026-02"}]})
    with pytest.raises(ValidationError) as e:
        Instance.from_dict(d)
    assert "amortization_start_month" in format_validation_error(e.value)


# ---------------------------------------------------------------- switched off


def _no_debt(raw: dict) -> bool:
    """No financing section and no debt assumed with a plant (contracts[*].assumed_debt): equity = project."""
    return "financing" not in raw and not any("assumed_debt" in c for c in raw.get("contracts", []))


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in sorted((ROOT / "instances").glob("*.yaml"))
                                  if _no_debt(yaml.safe_load(p.read_text())) and "tree" not in yaml.safe_load(p.read_text())], ids=lambda p: p.stem)
def test_zero_tax_no_debt_reproduces_todays_npv(path):
    # (tree instances: a 27-leaf tree does not reach a 1e-6 gap in 120 s; the identity on a tree
    # is tests/test_trees.py::test_financing_on_a_tree)
    base = Instance.from_yaml(path)
    zero = base.model_copy(update={"financing": Instance.from_dict(_tiny(financing={"taxes": {"rate": 0.0}})).financing})
    zero = Instance.from_dict(zero.model_dump(exclude_unset=True), base_dir=path.parent)
    opts = {"mip_gap": 1e-6, "time_limit_s": 120, "value_of_information": False, "baselines": False, "shadow_prices": False}
    a, b = solve(base, **opts), solve(zero, **opts)
    assert a.status == b.status
    assert b.objective_usd == pytest.approx(a.objective_usd, rel=1e-9, abs=1e-6)
    assert b.npv_usd == pytest.approx(a.npv_usd, rel=1e-9, abs=1e-6)
    assert b.evaluation.valuation["project_npv_usd"] == pytest.approx(b.npv_usd, rel=1e-12)
    b.verify(rtol=1e-9)


# ---------------------------------------------------------------- the case


def test_case_financed_conversion(tmp_path):
    inst = Instance.from_yaml(ROOT / "instances" / "case_financed_conversion.yaml")
    res = solve(inst, mip_gap=0.005, time_limit_s=300)
    assert res.solved
    res.verify(rtol=1e-9)
    res.write(tmp_path)
    import json

    s = json.loads((tmp_path / "summary.json").read_text())
    assert {"project_npv_usd", "equity_npv_usd", "equity_irr"} <= set(s)
    items = set(pd.read_csv(tmp_path / "cashflows.csv")["item"])
    assert {"interest_usd", "principal_usd", "tax_usd", "debt_draws_usd"} <= items
    assert (tmp_path / "debt_schedule.csv").is_file() and (tmp_path / "tax_schedule.csv").is_file()
    debt = pd.read_csv(tmp_path / "debt_schedule.csv")
    # 2026-03 converts: 1,000,000,000 principal repaid in 2026, nothing drawn on them
    row = debt[(debt["instrument"] == "converts-2026") & (debt["year"] == 2026)].iloc[0]
    assert row["principal_usd"] == pytest.approx(1e9) and row["balance_usd"] == pytest.approx(0.0)
    html = render_report(tmp_path).read_text()
    assert '<section id="financing">' in html and "Debt schedule per year" in html and "Tax schedule per year" in html
    book = write_workbook(tmp_path, tmp_path / "book.xlsx")
    import openpyxl

    names = openpyxl.load_workbook(book, read_only=True).sheetnames
    assert "debt_schedule" in names and "tax_schedule" in names
    # the 2026-03 converts are repaid by selling treasury BTC: 1,000,000,000 / 67,000 USD = 14,925.4 BTC at least
    sold = res.plan.btc_sales.set_index("month")["btc"]
    assert sold.get("2026-03", 0.0) >= 1e9 / 67_000 - 1e-6
    # the same conversions and leases with cash only (no facility, no new issue) break the cash floor
    d = yaml.safe_load((ROOT / "instances" / "case_financed_conversion.yaml").read_text())
    d["financing"]["project_facilities"], d["financing"]["new_issues"] = [], []
    conv = res.plan.conversions
    d["policy"] = {"fixed_decisions": [{"kind": "conversion", "site": r.site, "month": r.month, "blocks": int(r.blocks)}
                                       for r in conv.itertuples()]
                   + [{"kind": "lease", "lease": l, "signed": True} for l in res.plan.leases["lease"]]}
    assert conv["blocks"].sum() * 50 >= 650 - 1e-9   # 13 blocks of 50 MW of IT
    cash_only = solve(Instance.from_dict(d), mip_gap=0.005, time_limit_s=120, baselines=False)
    assert cash_only.status == "infeasible"
