"""The command line on the demo instance: validate, evaluate (baselines and plans), solve, doctor.

Expected figures come from instances/demo.yaml by hand (arithmetic in the comments).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import optimizer.cli as cli
from optimizer.cli import main

ROOT = Path(__file__).parent.parent
DEMO = ROOT / "instances" / "demo.yaml"
TINY = ROOT / "instances" / "tiny.yaml"
PROB = {"bear": 0.3, "base": 0.5, "bull": 0.2}   # demo.yaml scenario probabilities
DF_END = 1.12 ** -5                               # 60 months at 12%/yr, end of the horizon


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_validate_demo(capsys):
    code, out, err = run(capsys, "validate", DEMO)
    assert code == 0, err
    assert out.startswith("OK demo: 3 site(s)")
    # grid 120 + 100 + 60 = 280 MW; racks 4x250 + 3x200 + 2x200 = 2,000 mining, 50 HPC
    assert "280.0 MW of grid interconnect" in out
    assert "2,000 mining and 50 HPC rack positions" in out
    # 20,000 x 270 + 6,000 x 100 + 16,000 x 234 + 10,000 x 100 + 2,000 x 234 TH/s = 11,212,000 TH/s = 11.21 EH/s
    assert "11.21 EH/s" in out
    # 32.5 + 48 + 30 + 16 = 126.5 MW IT of lease offers
    assert "4 lease offer(s) totalling 126.5 MW IT" in out
    assert "60 monthly periods 2026-01..2030-12" in out


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "optimizer", "validate", str(DEMO)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("OK demo")


def test_evaluate_keep_mining_writes_outputs(capsys, tmp_path):
    out_dir = tmp_path / "km"
    code, out, err = run(capsys, "evaluate", DEMO, "--baseline", "keep-mining", "--out", out_dir)
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text())
    assert set(summary["npv_usd_by_scenario"]) == set(PROB)
    assert summary["violations"] == []
    # expected NPV = probability-weighted scenario NPVs
    expected = sum(PROB[w] * v for w, v in summary["npv_usd_by_scenario"].items())
    assert summary["npv_usd"] == pytest.approx(expected, rel=1e-12)
    # terminal treasury: 2,000 BTC x E[P(2030-12)] x DF_END,
    # E[P] = 0.3 x 75,000 + 0.5 x 160,000 + 0.2 x 350,000 = 172,500 -> 345.0 M$ x 0.567427 = 195.76 M$
    bd = summary["npv_breakdown_usd"]
    assert bd["terminal_treasury_usd"] == pytest.approx(2000 * 172_500 * DF_END, rel=1e-9)
    # unleased HPC at the end: hall nd-hpc 50 racks x 130 kW = 6.5 MW x 800,000 / 0.08 = 65 M$ x DF_END
    assert bd["terminal_hpc_usd"] == pytest.approx(6.5 * 800_000 / 0.08 * DF_END, rel=1e-9)
    # keeping mining: no lease, no capex
    assert bd["lease_revenue_usd"] == 0 and bd["capex_usd"] == 0
    cf = pd.read_csv(out_dir / "cashflows.csv")
    assert {"scenario", "month", "site", "item", "usd", "pv_usd"} <= set(cf.columns)
    assert (cf["scenario"].map(PROB) * cf["pv_usd"]).sum() == pytest.approx(summary["npv_usd"], rel=1e-9)
    assert (out_dir / "plan" / "conversions.csv").exists()
    assert len(pd.read_csv(out_dir / "plan" / "conversions.csv")) == 0
    assert "expected" in out and "No constraint violations." in out


def test_evaluate_written_plan_round_trips(capsys, tmp_path):
    """A plan written by --out reads back with --plan and gives the same NPV."""
    first = tmp_path / "greedy"
    assert run(capsys, "evaluate", DEMO, "--baseline", "greedy", "--out", first)[0] == 0
    again = tmp_path / "again"
    code, _, err = run(capsys, "evaluate", DEMO, "--plan", first / "plan", "--out", again)
    assert code == 0, err
    a = json.loads((first / "summary.json").read_text())
    b = json.loads((again / "summary.json").read_text())
    assert b["npv_usd"] == pytest.approx(a["npv_usd"], rel=1e-9)
    assert b["violations"] == a["violations"]


@pytest.mark.parametrize("args, fragment", [
    (["evaluate", DEMO], "give exactly one of --plan PLAN or --baseline NAME"),
    (["evaluate", DEMO, "--baseline", "keep-mining", "--plan", "x"], "give exactly one of"),
    (["evaluate", DEMO, "--baseline", "hodl"], "unknown baseline 'hodl' (choose from keep-mining, convert-asap, greedy)"),
    (["evaluate", DEMO, "--plan", "/nonexistent/plan"], "--plan: /nonexistent/plan: file or directory not found"),
    (["evaluate", ROOT / "no_such.yaml", "--baseline", "greedy"], "no_such.yaml: file not found"),
    (["solve", DEMO], "Missing option '--out'"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_bad_usage_is_one_line_exit_2(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert fragment in err


def test_bad_plan_file_is_one_line_exit_2(capsys, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text('{"conversions": [{"site": "tx-1", "month": "2026-03", "blocks": "two"}]}')
    code, _, err = run(capsys, "evaluate", DEMO, "--plan", plan)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "plan.conversions.blocks: must be numbers" in err


def test_internal_error_is_one_line_exit_1(capsys, monkeypatch):
    def boom(_inst):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "describe_instance", boom)
    monkeypatch.delenv("OPTIMIZER_DEBUG", raising=False)
    code, out, err = run(capsys, "validate", DEMO)
    assert code == 1
    assert err.strip() == "error: internal error: RuntimeError: kaboom (rerun with OPTIMIZER_DEBUG=1 for the traceback)"


def test_solve_tiny_writes_summary(capsys, tmp_path):
    code, out, err = run(capsys, "solve", TINY, "--out", tmp_path, "--time-limit", "60")
    assert code == 0, err
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] in ("optimal", "feasible_within_gap")
    assert s["npv_usd"] == pytest.approx(s["evaluator_npv_usd"], rel=1e-9)
    assert s["objective_usd"] == pytest.approx(s["npv_usd"], rel=1e-6)
    assert s["violations"] == []
    # the optimum is never below a baseline it could have chosen
    assert all(s["npv_usd"] >= v - 1e-6 * abs(v) for v in s["baselines"].values())
    for name in ("plan.csv", "cashflows.csv"):
        assert (tmp_path / name).exists()


def test_solve_infeasible_exit_3(capsys, tmp_path):
    """tiny.yaml with every rack kept mining (min_mining_share 1) but lease L1 forced signed:
    L1 needs converted racks, so no plan satisfies both."""
    import yaml

    data = yaml.safe_load(TINY.read_text())
    data["policy"] = {"min_mining_share": 1.0, "fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": True}]}
    path = tmp_path / "infeasible.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = run(capsys, "solve", path, "--out", tmp_path / "out", "--no-baselines")
    assert code == 3
    assert "Traceback" not in err
    assert err.startswith("error: ") and "infeasible" in err and "L1" in err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["status"] == "infeasible"


@pytest.mark.parametrize("args, fragment", [
    (["--time-limit", "0"], "--time-limit: must be > 0 seconds, got 0"),
    (["--gap", "1.5"], "--gap: must be a fraction in [0, 1), got 1.5"),
    (["--threads", "0"], "--threads"),
])
def test_solve_bad_options_exit_2(capsys, tmp_path, args, fragment):
    code, _, err = run(capsys, "solve", TINY, "--out", tmp_path, *args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert fragment in err


def test_doctor(capsys):
    code, out, err = run(capsys, "doctor")
    assert code == 0, out + err
    assert "highspy tiny MILP: objective 11 (expected 11) OK" in out
    assert "pyomo + highs tiny MILP: objective 11 (expected 11) OK" in out


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for cmd in ("validate", "schema", "evaluate", "solve", "doctor"):
        assert cmd in out
