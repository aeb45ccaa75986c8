"""Every script in examples/ runs (as a user would run it, in a subprocess) with small settings,
exits 0 and prints its key line, so none of them rots."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
EX = ROOT / "examples"
INST = ROOT / "instances"


def run(script: str, *args: str, cwd: Path | None = None, timeout: float = 600) -> str:
    p = subprocess.run([sys.executable, str(EX / script), *args], capture_output=True, text=True,
                       timeout=timeout, cwd=cwd or ROOT)
    assert p.returncode == 0, f"{script} exited {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}"
    return p.stdout


def test_every_example_is_tested_and_documented():
    scripts = sorted(p.name for p in EX.glob("*.py"))
    assert scripts == ["embed_service.py", "find_breakeven.py", "risk_frontier.py", "solve_one.py", "sweep_btc_price.py", "tree_policy.py"]
    for name in scripts:
        text = (EX / name).read_text()
        assert text.startswith('"""'), name                       # a docstring saying what it does and how to run it
        assert 'if __name__ == "__main__":' in text and "argparse" in text, name


def test_solve_one(tmp_path):
    out = run("solve_one.py", str(INST / "tiny.yaml"), "--out", str(tmp_path / "res"))
    assert "instance tiny: optimal" in out
    assert re.search(r"^expected NPV: [\d,.-]+ M\$", out, flags=re.M)
    for name in ("keep-mining", "convert-asap", "greedy"):
        assert f"baseline {name}:" in out
    assert "NPV breakdown (expected PV, M$):" in out
    assert (tmp_path / "res" / "summary.json").is_file() and (tmp_path / "res" / "plan" / "leases.csv").is_file()


def test_solve_one_bad_file_is_one_line(tmp_path):
    p = subprocess.run([sys.executable, str(EX / "solve_one.py"), str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "file not found" in p.stderr


def test_sweep_btc_price(tmp_path):
    png = tmp_path / "npv.png"
    out = run("sweep_btc_price.py", "--points", "2", "--lo", "0.5", "--hi", "1.5", "--png", str(png))
    rows = re.findall(r"^\s+([\d.]+)\s+([-\d,.]+)\s+([\d,.]+)\s+(\S+)$", out, flags=re.M)
    assert [float(r[0]) for r in rows] == [0.5, 1.5]
    # a higher BTC price can only raise the NPV of the best plan (the plan at 0.5 is still
    # feasible at 1.5 and earns more from any BTC it mines); 1% slack for the two MIP gaps
    npv = [float(r[1].replace(",", "")) for r in rows]
    assert npv[1] >= npv[0] * 0.99
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_find_breakeven():
    out = run("find_breakeven.py", "--tol", "4")
    m = re.search(r"breakeven: tx-denton converts when leases\[L-colo-200\]\.rate_usd_per_kw_month >= ([\d.]+) "
                  r"and not when <= ([\d.]+)", out)
    assert m, out
    hi, lo = float(m.group(1)), float(m.group(2))
    assert 0 < hi - lo <= 4
    # Hand bound (tests/test_cases.py, colocation case): the lease's NOI is worth 1,812.1 M$ at
    # 121 $/kW-month, i.e. 14.98 M$ per $/kW-month; capex 1,495.5 M$ needs 99.8 $/kW-month (the
    # tenant repays its power at the campus's price, adder included), and mining given up (0 to
    # 55 M$) up to 103.5: the flip lies in [99.8, 103.5], so the final bracket must overlap it.
    assert lo <= 103.6 and hi >= 99.7, (lo, hi)


def test_embed_service_prints_and_refuses_bad_input(tmp_path):
    out = run("embed_service.py", str(INST / "tiny.yaml"), cwd=tmp_path)
    assert "service answer for tiny: ok=True status=optimal" in out
    assert "checks: objective equals evaluator NPV, no violation" in out
    assert "bad input answer: ok=False error=horizon.periods: must be > 0, got -3" in out
    assert list(tmp_path.iterdir()) == []                 # no files written


def test_plan_service_returns_json_of_summary_and_plan(tmp_path, monkeypatch):
    import yaml

    monkeypatch.syspath_prepend(str(EX))
    monkeypatch.chdir(tmp_path)
    from embed_service import plan_service

    data = yaml.safe_load((INST / "tiny.yaml").read_text())
    a = json.loads(plan_service(data))
    b = json.loads(plan_service(data))
    assert a["ok"] is True and a["checks"] == []
    assert a["summary"]["status"] == "optimal"
    assert set(a["plan"]) >= {"conversions", "leases", "contracts", "operations", "energy"}
    # the breakdown adds up to the NPV it reports
    assert sum(a["npv_breakdown_usd"].values()) == pytest.approx(a["summary"]["npv_usd"], rel=1e-9)
    # no state kept between calls: the same dict gives the same answer, and the dict is not modified
    assert a["summary"]["npv_usd"] == b["summary"]["npv_usd"] and a["plan"] == b["plan"]
    assert data == yaml.safe_load((INST / "tiny.yaml").read_text())
    err = json.loads(plan_service({**data, "sites": [{**data["sites"][0], "pue_hcp": 1.2}]}))
    assert err["ok"] is False and "pue_hcp" in err["error"] and "\n" not in err["error"]
    assert json.loads(plan_service(["not", "a", "dict"]))["ok"] is False
    assert list(tmp_path.iterdir()) == []


def test_risk_frontier():
    out = run("risk_frontier.py", "--weights", "0,1", "--alpha", "0.9")
    rows = re.findall(r"^\s+([\d.]+)\s+([-\d,.]+)\s+([-\d,.]+)\s", out, flags=re.M)
    assert [float(r[0]) for r in rows] == [0.0, 1.0]
    e = [float(r[1].replace(",", "")) for r in rows]
    c = [float(r[2].replace(",", "")) for r in rows]
    # w = 0 maximises E[NPV] and w = 1 maximises CVaR, so each is at least as good as the other
    # plan on its own measure (0.5% gap each; figures printed in M$ with 2 decimals)
    assert e[0] >= e[1] - 0.006 * abs(e[0])
    assert c[1] >= c[0] - 0.006 * abs(e[0])
    assert all(ci <= ei + 0.01 for ci, ei in zip(c, e))     # a tail mean never exceeds the mean


def test_tree_policy():
    out = run("tree_policy.py", "--small", "--paths", "1")
    assert re.search(r"multistage tree with 7 nodes and 4 leaves", out)
    flex = float(re.search(r"^value of flexibility: ([-\d,.]+) M\$", out, flags=re.M).group(1).replace(",", ""))
    assert flex >= -0.01 * abs(float(re.search(r"^tree E\[NPV\]: ([-\d,.]+) M\$", out, flags=re.M).group(1).replace(",", "")))
    assert "decide now:" in out
    for policy in ("rolling", "two-stage", "keep-mining"):
        assert re.search(rf"^  {policy}\s+[-\d,.]+$", out, flags=re.M), policy

