"""Decisions that lean on the horizon's end: the NPV with and without terminal values, the flags,
and the terminal check, on tests/instances/terminal_only.yaml (built so that its only investments
are paid for by terminal values; its header gives the figures).

Hand figures (monthly, r = 10 %, DF(k) = 1.1^(-k/12), k months from 2026-01; 2027-01 is period 12):
- conversion of 2 blocks (2 MW) started 2027-06 (period 17), lead 6: capex 2 x 3,000,000 = 6,000,000
  spread as 1,000,000 over 2027-06 .. 2027-11 (DF(18) .. DF(23)); online 2027-12; terminal HPC value
  2 MW x 600,000 / 0.10 = 12,000,000 at the end, x DF(24) = 1.1^-2.
- 1,000 units bought in 2027-01 at 100 TH x 15 USD = 1,500 each: 1,500,000 x DF(13); each earns
  4.5 - 0.048 x 60 = 1.62 USD a day; with the 500 installed units, terminal mining = 36 x
  (December's margin 1,500 x 1.62 x 31) = 2,711,880 at the end (salvage 0).
- the 500 installed units earn 500 x 1.62 USD a day throughout: INSTALLED below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from optimizer.analysis.horizon import first_stage_changes, terminal_check
from optimizer.cli import main
from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import Plan
from optimizer.solve import solve

FILE = Path(__file__).parent / "instances" / "terminal_only.yaml"
DAYS_2027 = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def DF(k: int) -> float:
    return 1.1 ** (-k / 12)


# the 500 installed units' margin over the 24 months (2026 has the same month lengths as 2027)
INSTALLED = sum(500 * 1.62 * d * DF(k) for k, d in enumerate(DAYS_2027 * 2, start=1))


@pytest.fixture(scope="module")
def inst() -> Instance:
    return Instance.from_yaml(FILE)


@pytest.fixture(scope="module")
def result(inst):
    res = solve(inst, mip_gap=1e-9, value_of_information=False)
    assert res.status == "optimal", res.message
    res.verify(rtol=1e-9)
    return res


def test_the_optimum_invests_only_for_terminal_values(result):
    conv = result.plan.conversions
    assert list(zip(conv["site"], conv["month"], conv["blocks"])) == [("a", "2027-06", 2.0)]
    buy = result.plan.purchases
    assert list(zip(buy["option"], buy["month"], buy["units"])) == [("p", "2027-01", pytest.approx(1000.0))]


def test_npv_with_and_without_terminal_values(result):
    term = result.summary()["terminal"]
    hpc = 12_000_000 * DF(24)
    mining = 36 * 1_500 * 1.62 * 31 * DF(24)
    assert term["lines_usd"]["terminal_hpc_usd"] == pytest.approx(hpc, rel=1e-9)
    assert term["lines_usd"]["terminal_mining_usd"] == pytest.approx(mining, rel=1e-9)
    assert term["terminal_usd"] == pytest.approx(hpc + mining, rel=1e-9)
    # without terminal values: the capex, the purchase and a year of margin, nothing else
    capex = sum(1_000_000 * DF(k) for k in range(18, 24))
    margin = sum(1_000 * 1.62 * d * DF(12 + m) for m, d in enumerate(DAYS_2027, start=1))
    inside = -capex - 1_500_000 * DF(13) + margin + INSTALLED
    assert term["npv_without_terminal_usd"] == pytest.approx(inside, rel=1e-9)
    assert term["npv_usd"] == pytest.approx(result.npv_usd) == pytest.approx(inside + hpc + mining, rel=1e-9)
    assert term["npv_without_terminal_usd"] < INSTALLED < term["npv_usd"]


def test_flags_name_the_decisions_only_terminal_values_pay_for(result):
    flags = result.summary()["terminal"]["flags"]
    assert [(f["kind"], f["site"], f["month"]) for f in flags] == [("conversion", "a", "2027-06"), ("purchase", "a", "2027-01")]
    conv = next(f for f in flags if f["kind"] == "conversion")
    assert "2 MW online 2027-12, 1 month before the horizon's end" in conv["sentence"]
    assert "no lease uses its racks" in conv["sentence"]
    buy = next(f for f in flags if f["kind"] == "purchase")
    # inside: 1.62 x days x DF over 2027 per unit vs 1,500 x DF(13): 38 %
    share = sum(1.62 * d * DF(12 + m) for m, d in enumerate(DAYS_2027, start=1)) / (1_500 * DF(13))
    assert f"repays {share:.0%} of their price" in buy["sentence"] and share < 1


def test_a_conversion_a_lease_needs_is_not_flagged(inst):
    raw = inst.model_dump(mode="json", exclude_unset=True)
    raw["leases"] = [{"id": "L", "it_mw": 2.0, "rate_usd_per_kw_month": 150, "term_months": 24,
                      "window_start": "2027-12", "window_end": "2027-12", "noi_margin": 0.9}]
    leased = Instance.from_dict(raw, base_dir=FILE.parent)
    plan = Plan(conversions=pd.DataFrame([("a", "2027-06", 2)], columns=["site", "month", "blocks"]),
                leases=pd.DataFrame([("L", "a", "2027-12", 1.0)], columns=["lease", "site", "month", "share"]))
    ev = evaluate(leased, plan)
    assert ev.violations == []
    assert [f.kind for f in ev.terminal_flags] == []
    # without the lease the same conversion is flagged
    assert [f.kind for f in evaluate(inst, Plan(conversions=plan.conversions)).terminal_flags] == ["conversion"]


def test_terminal_check_lists_the_decisions_that_change(inst, result):
    tc = terminal_check(inst, result, mip_gap=1e-9)
    assert tc.status == "optimal"
    got = tc.changes.to_dict(orient="records")
    assert got == [
        {"decision": "conversion", "key": "site a 2027-06", "with_terminal": "2 blocks", "without_terminal": "-"},
        {"decision": "purchase", "key": "option p for site a 2027-01", "with_terminal": "1000 units", "without_terminal": "-"},
    ]
    # without terminal values only the installed units pay: the optimum just runs them
    assert tc.alternative_npv_without_terminal_usd == pytest.approx(INSTALLED, rel=1e-9)
    assert tc.alternative_npv_usd == pytest.approx(INSTALLED + 36 * 500 * 1.62 * 31 * DF(24), rel=1e-9)
    assert tc.sentences()[0] == "conversion site a 2027-06: 2 blocks with terminal values, - without"


def test_first_stage_changes_compares_every_kind():
    a = Plan(contracts=pd.DataFrame([("c", True)], columns=["contract", "signed"]),
             site_events=pd.DataFrame([("s", "sale", "2026-05")], columns=["site", "event", "month"]),
             leases=pd.DataFrame([("L", "s", "2026-02", 1.0)], columns=["lease", "site", "month", "share"]))
    b = Plan(site_events=pd.DataFrame([("s", "sale", "2026-07")], columns=["site", "event", "month"]),
             leases=pd.DataFrame([("L", "s", "2026-02", 1.0)], columns=["lease", "site", "month", "share"]))
    got = first_stage_changes(a, b).to_dict(orient="records")
    assert got == [{"decision": "contract", "key": "c", "with_terminal": "signed", "without_terminal": "not signed"},
                   {"decision": "site sale", "key": "site s", "with_terminal": "2026-05", "without_terminal": "2026-07"}]


def test_cli_solve_terminal_check(capsys, tmp_path):
    code = main(["solve", str(FILE), "--out", str(tmp_path), "--gap", "0", "--no-baselines", "--terminal-check", "--report"])
    assert code == 0
    text = capsys.readouterr().out
    assert "NPV without terminal values" in text and "Terminal value: terminal HPC" in text
    assert "2 decision(s) only terminal values pay for" in text
    assert text.count("only terminal values pay for it") == 2          # the two decisions, in the decision list
    assert "Terminal check" in text and "2 first-stage decision(s) change" in text
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["terminal"]["npv_without_terminal_usd"] < INSTALLED < summary["npv_usd"]
    assert summary["terminal_check"]["decisions_changed"] == 2
    assert list(pd.read_csv(tmp_path / "terminal_check.csv")["decision"]) == ["conversion", "purchase"]
    # the report's headline shows both NPVs, the terminal lines, the flags and the terminal check
    html = (tmp_path / "report.html").read_text()
    assert "NPV without terminal values" in html and "Terminal value: terminal HPC" in html
    assert "2 decision(s) are paid for only by terminal values" in html
    assert "conversion site a 2027-06 (2 blocks with, - without)" in html
    # decisions.md marks the two decisions
    md = (tmp_path / "decisions.md").read_text()
    assert md.count("only terminal values pay for it") == 2
