"""Results and reliability (issue "Security and reliability hardening", items 6-10): one test per
defect, each named for it. Instances are tiny (instances/tiny.yaml) or built to be infeasible
(tests/instances/infeasible_*.yaml); the expected figures are worked out by hand in comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from optimizer.cli import main
from optimizer.constants import ExitCode
from optimizer.instance import Instance
from optimizer.solve import solve

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny.yaml"
TESTS = ROOT / "tests" / "instances"


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


@pytest.fixture(scope="module")
def tiny() -> Instance:
    return Instance.from_yaml(TINY)


@pytest.fixture(scope="module")
def tiny_optimum(tiny):
    res = solve(tiny, mip_gap=0.0, value_of_information=False)
    assert res.status == "optimal"
    return res


# ---------------------------------------------------------------- 7. a plan that breaks the rules


def test_evaluate_plan_with_violations_has_own_exit_code(tmp_path, capsys, tiny_optimum):
    """The optimal plan of tiny.yaml plus lease L1 (1 MW, 150 $/kW-month) handed over at s1 in
    2026-03 without converting a block: s1 has no HPC rack, so the plan breaks the rack rule, and
    its NPV counts the rent on top of full mining, i.e. above the optimum. The command must say
    so before the NPV and exit with its own code."""
    plan = tiny_optimum.plan.replace(leases=pd.DataFrame([{"lease": "L1", "site": "s1", "month": "2026-03", "share": 1.0}]))
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    code, out, err = cli(capsys, "evaluate", TINY, "--plan", path, "--out", tmp_path / "ev")
    assert code == ExitCode.RULES_BROKEN == 6
    s = json.loads((tmp_path / "ev" / "summary.json").read_text())
    n = len(s["violations"])
    assert n >= 1 and s["npv_usd"] > tiny_optimum.npv_usd       # the headline a reader must not trust
    text = " ".join(out.split())
    assert f"This plan breaks {n} rule" in text
    assert text.index(f"This plan breaks {n} rule") < text.index("NPV by scenario")
    assert err.startswith(f"error: plan {path} breaks {n} rule") and len(err.strip().splitlines()) == 1
    # control: the optimal plan itself breaks nothing and exits 0
    ok = tmp_path / "ok.json"
    ok.write_text(tiny_optimum.plan.to_json())
    code, out, _ = cli(capsys, "evaluate", TINY, "--plan", ok)
    assert code == 0 and "No constraint violations." in out and "breaks" not in out
