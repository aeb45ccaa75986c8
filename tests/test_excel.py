"""The Excel workbook: the analyst's sheets first (Decisions, Headline, annual views, charts),
then one sheet per table whose cells equal the CSV (months as Excel dates), bold frozen
header, autofilter, number formats from the column units. Read back with openpyxl.

Changed by the analyst-workbook issue (months are real Excel dates, a Decisions sheet comes
first): the sheet order, the month cells (dates, format yyyy-mm, where they were text) and
which sheets the frozen-header/width check covers (the table sheets; the Headline and Annual
sheets have their own layout)."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from fixtures.make_report_dir import seal

from optimizer.cli import excel_command
from optimizer.errors import InputError
from optimizer.output.excel import FMT_COUNT, FMT_DATE, FMT_MW, FMT_PCT, FMT_RATE, FMT_USD, number_format, write_workbook

FIX = Path(__file__).parent / "fixtures" / "report_dir"
CSV_SHEETS = {  # sheet -> CSV file of the result directory
    "plan": "plan.csv", "cashflows": "cashflows.csv", "kpis": "kpis.csv", "npv_breakdown": "npv_breakdown.csv",
    "leases": "leases.csv", "contracts": "contracts.csv", "shadow_prices": "shadow_prices.csv",
    "plan_conversions": "plan/conversions.csv", "plan_retirements": "plan/retirements.csv",
    "points": "points.csv", "tornado": "tornado.csv", "frontier": "frontier.csv",
}


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    return write_workbook(FIX, tmp_path_factory.mktemp("xl") / "result.xlsx")


ANALYST = ["Decisions", "Headline", "Annual", "Annual by site", "Cash flow", "MW by use"]
TABLE_SHEETS = ["summary", "plan", "cashflows", "kpis", "npv_breakdown", "leases", "contracts",
                "shadow_prices", "plan_conversions", "plan_retirements", "points", "tornado", "frontier"]


def _dated(df: pd.DataFrame) -> pd.DataFrame:
    """The CSV's month columns as the first day of the month (what the workbook stores)."""
    for c in df.columns:
        if c == "month":
            df[c] = pd.to_datetime(df[c].astype(str) + "-01")
    return df


def test_sheets_in_order(book):
    wb = openpyxl.load_workbook(book)
    assert wb.sheetnames == ANALYST + TABLE_SHEETS


@pytest.mark.parametrize("sheet", list(CSV_SHEETS))
def test_sheet_equals_csv(book, sheet):
    want = _dated(pd.read_csv(FIX / CSV_SHEETS[sheet], dtype={"month": str}))
    got = pd.read_excel(book, sheet_name=sheet, engine="openpyxl")
    assert list(got.columns) == list(want.columns)
    # xlsxwriter stores numbers with 16 significant digits (Excel itself shows 15), so a value
    # may lose its 17th digit: relative error < 1e-15. Text, booleans and NaN <-> empty cell exact.
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-15, atol=0.0, check_dtype=False)


def test_empty_cost_to_mine_cells_stay_empty(book):
    # kpis.csv has cost_to_mine blank where a scenario mines nothing: exactly those cells are empty
    csv = pd.read_csv(FIX / "kpis.csv", dtype={"month": str})
    blank = set(zip(csv.loc[csv["cost_to_mine_usd_per_btc"].isna(), "scenario"], csv.loc[csv["cost_to_mine_usd_per_btc"].isna(), "month"]))
    assert blank                                          # the fixture has some (bear months without mining)
    ws = openpyxl.load_workbook(book)["kpis"]
    head = [c.value for c in ws[1]]
    col, sc, mo = head.index("cost_to_mine_usd_per_btc"), head.index("scenario"), head.index("month")
    got = {(r[sc], r[mo].strftime("%Y-%m")) for r in ws.iter_rows(min_row=2, values_only=True) if r[col] is None}
    assert got == blank


def test_header_bold_frozen_and_widths(book):
    wb = openpyxl.load_workbook(book)
    for ws in (wb[n] for n in TABLE_SHEETS):
        assert ws.freeze_panes == "A2", ws.title
        assert all(c.font.b for c in ws[1] if c.value is not None), ws.title
        for letter, dim in ws.column_dimensions.items():
            if dim.width:
                assert 8 <= dim.width <= 80, (ws.title, letter, dim.width)
    cf = wb["cashflows"]
    widths = {cf.cell(1, i + 1).value: cf.column_dimensions[openpyxl.utils.get_column_letter(i + 1)].width
              for i in range(cf.max_column)}
    # 'discount_factor' is 15 characters: width header + 2 = 17; USD values like -15,000,000.00 need >= 16
    assert widths["discount_factor"] >= 17 and widths["pv_usd"] >= 16


def _formats(ws) -> dict[str, str]:
    return {h.value: c.number_format for h, c in zip(ws[1], ws[2])}


def test_number_formats(book):
    wb = openpyxl.load_workbook(book)
    cf, plan, kpis = _formats(wb["cashflows"]), _formats(wb["plan"]), _formats(wb["kpis"])
    assert cf["usd"] == cf["pv_usd"] == FMT_USD == "#,##0;[Red]-#,##0"
    assert cf["month"] == FMT_DATE == "yyyy-mm" and cf["period"] == FMT_COUNT
    assert wb["cashflows"]["B2"].is_date and wb["cashflows"]["B2"].value.day == 1   # 2028-01 -> 2028-01-01
    assert plan["mining_mw"] == plan["hpc_mw"] == FMT_MW == "#,##0.0"
    assert plan["mining_racks"] == plan["racks_L1"] == plan["units_s21"] == FMT_COUNT
    assert kpis["hpc_mw_online"] == FMT_MW
    assert kpis["cost_to_mine_usd_per_btc"] == kpis["hashprice_usd_per_ph_day"] == FMT_RATE
    assert _formats(wb["leases"])["share"] == FMT_PCT == "0.0%"
    assert _formats(wb["frontier"])["weight"] == FMT_PCT
    assert _formats(wb["points"])["horizon.discount_rate"] == FMT_PCT


def test_summary_sheet_key_values(book):
    s = json.loads((FIX / "summary.json").read_text())
    ws = openpyxl.load_workbook(book)["summary"]
    assert [c.value for c in ws[1]] == ["key", "value"]
    kv = {r[0].value: r[1] for r in ws.iter_rows(min_row=2)}
    assert kv["status"].value == s["status"]
    close = lambda a, b: abs(a - b) <= 1e-15 * abs(b)   # 16 significant digits, as above
    assert close(kv["npv_usd"].value, s["npv_usd"]) and kv["npv_usd"].number_format == FMT_USD
    assert close(kv["baselines.keep_mining"].value, s["baselines"]["keep_mining"])
    assert close(kv["npv_usd_by_scenario.bear"].value, s["npv_usd_by_scenario"]["bear"])
    assert kv["mip_gap"].number_format == "0.000%"
    assert kv["n_variables"].value == s["n_variables"] and kv["n_constraints"].value == s["n_constraints"]
    assert s["violations"] == [] and s["message"] == ""
    assert kv["violations"].value is None and kv["message"].value is None     # empty list, empty string
    # one row per top-level non-dict key (lists included), one per entry of each (flat) dict, one for an empty dict
    assert not any(isinstance(x, dict) for v in s.values() if isinstance(v, dict) for x in v.values())
    flat = sum(max(len(v), 1) if isinstance(v, dict) else 1 for v in s.values())
    assert len(kv) == flat


def test_workbook_npv_agrees_with_the_summary(book):
    # independent of how the sheets were copied: the cashflows sheet's present values add up, per
    # scenario, to summary.json's NPVs, the npv_breakdown sheet to its E[NPV], and each row's pv_usd
    # is its usd x discount_factor
    s = json.loads((FIX / "summary.json").read_text())
    cf = pd.read_excel(book, sheet_name="cashflows", engine="openpyxl", dtype={"month": str})
    by = cf.groupby("scenario")["pv_usd"].sum()
    assert set(by.index) == set(s["npv_usd_by_scenario"])
    for name, npv in s["npv_usd_by_scenario"].items():
        assert by[name] == pytest.approx(npv, rel=1e-12)
    assert (cf["pv_usd"] - cf["usd"] * cf["discount_factor"]).abs().max() <= 1e-6
    nb = pd.read_excel(book, sheet_name="npv_breakdown", engine="openpyxl")
    assert nb["pv_usd"].sum() == pytest.approx(s["npv_usd"], rel=1e-12)


def test_number_format_rules():
    assert number_format("terminal_lease_noi_usd") == FMT_USD
    assert number_format("shadow_price_usd_per_mw") == FMT_RATE
    assert number_format("grid_interconnect_mw") == FMT_MW
    assert number_format("take_or_pay_min_share") == FMT_PCT
    assert number_format("btc_mined") == "#,##0.0000"
    assert number_format("hashrate_eh_s") == "#,##0.000"
    assert number_format("solve_s") == "0.000"
    assert number_format("btc_price_scale") is None


def test_dict_of_tables_and_errors(tmp_path, capsys):
    df = pd.DataFrame({"site": ["a"], "month": ["2026-01"], "capex_usd": [-1.5e6]})
    p = write_workbook({"summary": {"status": "optimal"}, "cashflows": df}, tmp_path / "t.xlsx")
    wb = openpyxl.load_workbook(p)
    assert wb.sheetnames == ["summary", "cashflows"]
    assert wb["cashflows"]["C2"].value == -1.5e6 and wb["cashflows"]["C2"].number_format == FMT_USD
    with pytest.raises(InputError, match="must end in .xlsx"):
        write_workbook(FIX, tmp_path / "t.xls")
    assert excel_command(tmp_path / "missing") == 2
    assert "result directory not found" in capsys.readouterr().err
    assert excel_command(FIX, tmp_path / "c.xlsx") == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "c.xlsx")


def test_empty_decision_tables_get_no_sheet_and_plan_leases_are_used(tmp_path):
    import shutil

    d = tmp_path / "ev"
    shutil.copytree(FIX, d)
    (d / "leases.csv").unlink()                       # an evaluation directory keeps leases under plan/ only
    pd.DataFrame(columns=["option", "site", "month", "units"]).to_csv(d / "plan" / "purchases.csv", index=False)
    seal(d)
    wb = openpyxl.load_workbook(write_workbook(d, tmp_path / "ev.xlsx"))
    assert "plan_purchases" not in wb.sheetnames
    want = pd.read_csv(d / "plan" / "leases.csv", dtype={"month": str})
    got = [[c.value.strftime("%Y-%m") if c.is_date else c.value for c in r] for r in wb["leases"].iter_rows(min_row=2)]
    assert got == want.values.tolist() and len(got) == 2
