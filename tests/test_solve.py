"""End-to-end solves: every shipped instance through the CLI, infeasible instances (pre-check and
elastic diagnosis), time-limited solves, and the files `optimizer solve` writes.

Exit codes (optimizer/result.py, issue 3): 0 solved (also on a time limit with an incumbent),
2 bad input, 3 infeasible, 4 no solution within the time limit.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import optimizer.solve  # noqa: F401, E402  (loads the subpackage)

solve_mod = sys.modules["optimizer.solve"]  # the subpackage (optimizer.solve, the attribute, is the function)
from optimizer.cli import main
from optimizer.constants import NO_BOUND_NOTE
from optimizer.errors import NoSolutionError
from optimizer.instance import Instance
from optimizer.solve import solve

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "instances"
INSTANCES = sorted(p for p in (ROOT / "instances").iterdir() if p.suffix in (".yaml", ".yml", ".json"))
SUMMARY_KEYS = {"status", "npv_usd", "npv_usd_by_scenario", "best_bound_usd", "mip_gap", "evaluator_npv_usd",
                "baselines", "build_s", "solve_s"}
BASELINES = {"keep-mining", "convert-asap", "greedy"}


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def error_line(err: str) -> str:
    """The one stderr line the CLI prints for an unsolved instance."""
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def captured(monkeypatch):
    """Wrap optimizer.solve.solve (the CLI imports it at call time) to keep the Result objects."""
    results = []
    real = solve_mod.solve

    def wrapper(inst, **kw):
        res = real(inst, **kw)
        results.append(res)
        return res

    monkeypatch.setattr(solve_mod, "solve", wrapper)
    return results


# ---------------------------------------------------------------- every instance under instances/


def test_instances_are_found():
    names = {p.name for p in INSTANCES}
    assert {"tiny.yaml", "demo.yaml"} <= names


@pytest.mark.parametrize("path", INSTANCES, ids=[p.stem for p in INSTANCES])
@pytest.mark.slow
def test_every_instance_solves_within_gap_and_verifies(path, tmp_path, capsys, captured):
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "solve", path, "--out", out, "--time-limit", "120")
    assert code == 0, err
    res = captured[-1]  # EVPI/VSS solves (stochastic instances) run inside it and return first
    assert res.status == json.loads((out / "summary.json").read_text())["status"]
    res.verify()  # objective == evaluator NPV (1e-6 relative), no violation
    inst = Instance.from_yaml(path)

    s = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(s)
    assert s["status"] in ("optimal", "feasible_within_gap"), s["message"]
    assert s["mip_gap"] is not None and s["mip_gap"] <= 0.005 + 1e-9  # the default gap
    assert s["npv_usd"] == s["evaluator_npv_usd"] == pytest.approx(res.npv_usd, rel=1e-12)
    assert s["objective_usd"] == pytest.approx(s["npv_usd"], rel=1e-6)
    assert s["violations"] == []
    # maximisation: the bound is never below the incumbent, and the gap is (bound - obj) / |obj|
    assert s["best_bound_usd"] >= s["objective_usd"] - 1e-6 * abs(s["objective_usd"])
    assert s["best_bound_usd"] - s["objective_usd"] <= (s["mip_gap"] + 1e-9) * abs(s["objective_usd"]) + 1.0
    probs = {sc.name: sc.probability for sc in inst.scenarios}
    assert set(s["npv_usd_by_scenario"]) == set(probs)
    assert sum(probs[k] * v for k, v in s["npv_usd_by_scenario"].items()) == pytest.approx(s["npv_usd"], rel=1e-9)
    assert set(s["baselines"]) == BASELINES
    assert all(isinstance(s[k], (int, float)) and s[k] >= 0 for k in ("build_s", "solve_s"))

    # cashflows.csv: the discounted lines, probability-weighted, sum to the NPV
    cf = pd.read_csv(out / "cashflows.csv")
    assert {"scenario", "month", "site", "item", "usd", "pv_usd"} <= set(cf.columns)
    assert float((cf["pv_usd"] * cf["scenario"].map(probs)).sum()) == pytest.approx(s["npv_usd"], rel=1e-9)
    # plan.csv: one row per site and period
    plan = pd.read_csv(out / "plan.csv", dtype={"month": str})
    assert {"site", "month", "mining_racks", "hpc_racks"} <= set(plan.columns)
    assert len(plan) == len(inst.sites) * inst.horizon.periods
    assert set(plan["site"]) == {x.id for x in inst.sites}
    assert s["status"] in stdout


def test_python_dash_m_solve_writes_the_files(tmp_path):
    out = tmp_path / "tiny"
    proc = subprocess.run([sys.executable, "-m", "optimizer", "solve", str(ROOT / "instances" / "tiny.yaml"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "optimal" and s["npv_usd"] == s["evaluator_npv_usd"]
    assert (out / "plan.csv").exists() and (out / "cashflows.csv").exists()


# ---------------------------------------------------------------- infeasible


def test_precheck_names_the_lease_and_the_lead_time(tmp_path, capsys):
    path = TESTS / "infeasible_lease_lead.yaml"
    res = solve(Instance.from_yaml(path))
    assert res.status == "infeasible" and res.exit_code == 3 and not res.has_plan
    with pytest.raises(NoSolutionError, match="status infeasible: the instance is infeasible: lease L1 cannot be delivered by 2026-04"):
        _ = res.plan   # the choice: an infeasible Result's plan access raises, naming the status and diagnosis
    # window ends 2026-04; a block started in 2026-01 (the first month) is ready 6 months later
    expected = "lease L1 cannot be delivered by 2026-04 at any eligible site: s1 conversion lead time 6 months"
    assert res.diagnosis == [expected]
    assert res.n_variables == 0  # caught before the model was built
    code, _, err = cli(capsys, "solve", path, "--out", tmp_path)
    assert code == 3
    assert error_line(err) == f"error: the instance is infeasible: {expected}"
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "infeasible"


def test_cash_floor_check_names_the_shortfall_in_usd(tmp_path, capsys):
    """infeasible_cash.yaml: 0.5 M$ of fixed capex against 0.4 M$ of cash in 2026-01 and nothing
    that earns money; the instance pre-check passes, the model is built, and the cash-floor check
    (the LP with only the floor elastic, before the MIP) finds the 0.5 - 0.4 = 0.1 M$ shortfall."""
    path = TESTS / "infeasible_cash.yaml"
    res = solve(Instance.from_yaml(path))
    assert res.status == "infeasible" and res.exit_code == 3
    assert res.n_variables > 0  # the model was built
    assert res.diagnosis[0].startswith("cash falls below treasury.min_cash_usd ($0) from 2026-01 by at least $100k, "
                                       "whatever the plan"), res.diagnosis
    code, _, err = cli(capsys, "solve", path, "--out", tmp_path)
    assert code == 3
    assert error_line(err).startswith("error: the instance is infeasible: cash falls below treasury.min_cash_usd ($0) "
                                      "from 2026-01 by at least $100k")


def test_elastic_diagnosis_names_a_fixed_lease_and_the_racks(tmp_path, capsys):
    """infeasible_two_leases.yaml: two leases fixed as signed, each fits the 10 HPC racks alone, not
    both. Relaxing the policy limits cannot help; dropping one of the two fixed leases can; and
    keeping both, s1 lacks 10 racks (1 MW / 100 kW per rack) while both run."""
    path = TESTS / "infeasible_two_leases.yaml"
    res = solve(Instance.from_yaml(path))
    assert res.status == "infeasible" and res.n_variables > 0
    assert re.fullmatch(r"policy\.fixed_decisions\[[01]\] \(lease L[12] signed\) cannot hold together with the other rules",
                        res.diagnosis[0]), res.diagnosis
    assert res.diagnosis[1] == ("keeping every fixed decision instead: site s1 lacks 10 HPC racks in 2026-03..2026-04 for the "
                                "leases handed over there (sites[s1] halls and conversion)"), res.diagnosis
    assert res.diagnosis[2].startswith("found by relaxing the policy limits and the fixed decisions (physical limits kept)")
    code, _, err = cli(capsys, "solve", path, "--out", tmp_path)
    lines = err.strip().splitlines()
    assert code == 3 and "Traceback" not in err
    assert lines[0].startswith("error: the instance is infeasible: policy.fixed_decisions[")
    assert lines[1] == f"diagnosis: {res.diagnosis[1]}"


def test_each_fixed_lease_alone_is_feasible():
    """Control for the case above: dropping either fixed decision makes it solvable."""
    d = yaml.safe_load((TESTS / "infeasible_two_leases.yaml").read_text())
    for keep in (0, 1):
        dd = copy.deepcopy(d)
        dd["policy"]["fixed_decisions"] = [d["policy"]["fixed_decisions"][keep]]
        res = solve(Instance.from_dict(dd), mip_gap=0.0, value_of_information=False)
        assert res.status == "optimal"
        assert res.plan.leases["lease"].tolist() == [f"L{keep + 1}"]


# ---------------------------------------------------------------- time limits


def big_demo(tmp_path: Path, copies: int = 4) -> Path:
    """instances/demo.yaml with its 3 sites, contracts, fleet and leases copied ``copies`` times
    (leases eligible at every copy of their sites, budget scaled): ~15k columns; with a zero gap
    HiGHS does not finish in a few seconds (measured: 12 % gap after 2 s)."""
    d = yaml.safe_load((ROOT / "instances" / "demo.yaml").read_text())
    for sc in d["scenarios"]:  # CSV series must lie in the instance's folder: copy them next to it
        for series in sc["power_price_usd_per_mwh"].values():
            shutil.copy(ROOT / "instances" / series["csv"], tmp_path / series["csv"])
    sites, units, contracts, leases = [], [], [], []
    for i in range(copies):
        suf = f"-{i}"
        for s in d["sites"]:
            s2 = copy.deepcopy(s)
            s2["id"] += suf
            for h in s2["halls"]:
                h["id"] += suf
            sites.append(s2)
        units += [dict(u, site=u["site"] + suf) for u in d["fleet"]["installed"]]
        contracts += [dict(c, id=c["id"] + suf, site=c["site"] + suf) for c in d["contracts"]]
        leases += [dict(copy.deepcopy(l), id=l["id"] + suf,
                        eligible_sites=[x + f"-{j}" for x in l["eligible_sites"] for j in range(copies)]) for l in d["leases"]]
    d.update(name=f"demo_x{copies}", sites=sites, contracts=contracts, leases=leases)
    d["fleet"]["installed"] = units
    d["fleet"]["purchase_options"][0]["sites"] = [s["id"] for s in sites if s["id"].startswith(("tx", "nd"))]
    d["policy"]["capex_budget_usd_per_year"] *= copies
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


@pytest.mark.slow
def test_time_limit_returns_the_incumbent_with_its_gap(tmp_path):
    """HiGHS has a dual bound (so a gap) only once its root LP is solved: on a loaded machine that
    takes more than 2 s here (measured), so the solve is retried with 8 s if the first has none."""
    inst = Instance.from_yaml(big_demo(tmp_path))
    for limit in (2, 8):
        res = solve(inst, time_limit_s=limit, mip_gap=0.0, shadow_prices=False, value_of_information=False)
        assert res.status == "time_limit_with_incumbent", res.status
        assert res.exit_code == 0 and res.plan is not None
        assert f"time limit {limit}" in res.message
        res.verify()
        # the MIP start is the best feasible baseline: the incumbent is never worse
        feasible = [v for k, v in res.baselines.items() if res.baseline_violations[k] == 0]
        assert feasible and res.npv_usd >= max(feasible) - 1e-6 * abs(res.npv_usd)
        if res.best_bound_usd is not None:
            break
        assert res.mip_gap is None  # no bound, no gap (JSON null), never a made-up number
    assert res.best_bound_usd is not None, "no dual bound after 8 s"
    assert res.best_bound_usd > res.objective_usd
    # HiGHS's relative gap: (bound - incumbent) / |incumbent|
    assert res.mip_gap == pytest.approx((res.best_bound_usd - res.objective_usd) / abs(res.objective_usd), rel=1e-6)
    assert res.mip_gap > 0


@pytest.mark.slow
def test_time_limit_cli_exit_0_with_message(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = cli(capsys, "solve", big_demo(tmp_path), "--out", out, "--time-limit", "1", "--gap", "0", "--no-voi")
    assert code == 0, err
    s = json.loads((out / "summary.json").read_text())
    assert s["status"] == "time_limit_with_incumbent"
    assert s["npv_usd"] == s["evaluator_npv_usd"] and s["violations"] == []
    assert "time limit 1.0 s reached; best plan found returned with its gap" in " ".join(stdout.split())
    assert (out / "plan.csv").exists() and (out / "cashflows.csv").exists()


def test_time_limit_without_any_solution_exit_4(tmp_path, capsys, monkeypatch):
    """No MIP start (no baselines) and 0.05 s: HiGHS has not finished presolve, so nothing is found
    (measured: status time_limit_no_solution on this machine, every run)."""
    path = big_demo(tmp_path)
    res = solve(Instance.from_yaml(path), time_limit_s=0.05, mip_gap=0.0, mip_start=False, baselines=False,
                shadow_prices=False, value_of_information=False)
    assert res.status == "time_limit_no_solution"
    assert res.exit_code == 4 and not res.has_plan and res.npv_usd is None
    with pytest.raises(NoSolutionError, match="time_limit_no_solution"):
        _ = res.plan
    with pytest.raises(AssertionError):
        res.verify()
    # the CLI has no switch to drop the MIP start: run it with the solve wrapped to drop it
    real = solve_mod.solve
    monkeypatch.setattr(solve_mod, "solve", lambda inst, **kw: real(inst, **{**kw, "mip_start": False, "baselines": False}))
    code, _, err = cli(capsys, "solve", path, "--out", tmp_path / "out", "--time-limit", "0.05", "--gap", "0")
    assert code == 4
    # presolve was still running after 0.05 s: no bound either, and the line says so
    assert error_line(err) == f"error: time limit 0.05 s reached before any feasible plan was found; {NO_BOUND_NOTE}"
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["status"] == "time_limit_no_solution" and s["npv_usd"] is None
    assert s["mip_gap"] is None or not math.isfinite(s["mip_gap"])


# ---------------------------------------------------------------- a fixed first stage (EEV, user plans)


@pytest.mark.parametrize("shares, status", [
    ([("a", 0.9999999999999999)], "optimal"),              # one site, float noise below 1
    ([("a", 0.3), ("b", 0.7000000000000001)], "optimal"),  # two sites, sum 1 + 1e-16
    ([("a", 0.1), ("b", 0.8)], "infeasible"),              # really 0.9 of the lease: no plan
])
def test_fixed_first_stage_with_float_shares_of_a_splittable_lease(shares, status):
    """solve(first_stage=plan) (the EEV solve of value_of_information) used to raise Pyomo's
    InfeasibleConstraintException on lease_split when the shares summed to 1 only up to rounding
    (seen on benchmarks/generate.py medium: a time-limited EV plan with share 0.9999999999999998)."""
    inst = Instance.from_yaml(ROOT / "tests" / "instances" / "brute_two_sites.yaml").with_overrides({"leases[L].splittable": True})
    from optimizer.plan import Plan
    plan = Plan(leases=pd.DataFrame([("L", s, "2026-02", x) for s, x in shares], columns=["lease", "site", "month", "share"]),
                conversions=pd.DataFrame([("b", "2026-01", 1)], columns=["site", "month", "blocks"]))
    res = solve(inst, first_stage=plan, mip_gap=0.0, shadow_prices=False, baselines=False)
    assert res.status == status
    if status == "optimal":
        res.verify()
        got = dict(zip(res.plan.leases["site"], res.plan.leases["share"]))
        assert got == pytest.approx(dict(shares), abs=1e-9)


def test_search_limit_is_what_the_preparation_left():
    from optimizer.solve.options import MIN_SEARCH_S, search_limit

    assert search_limit(None, 33.0) is None                   # no limit, none for the search
    assert search_limit(120.0, 33.0) == 87.0                  # 120 s, 33 s spent preparing: 87 s left
    assert search_limit(10.0, 0.0) == 10.0
    assert MIN_SEARCH_S == 1.0
    assert search_limit(2.0, 1.5) == 1.0                      # 0.5 s left, but the search gets 1 s
    assert search_limit(120.0, 150.0) == 1.0                  # preparation past the limit: still 1 s
    assert search_limit(0.05, 3.0) == 0.05                    # a limit under 1 s: the whole limit


def test_the_preparation_counts_against_the_time_limit(monkeypatch):
    """A solve limited to 30 s whose compile takes at least 0.5 s (a sleep) gives HiGHS at most
    29.5 s: the limit is the solve's, counted from its start, not the search's alone."""
    import importlib
    import time

    pipeline = importlib.import_module("optimizer.solve.pipeline")
    from optimizer.solve.backend import HighsBackend

    real_compile, real_solve, limits = pipeline.compile_instance, HighsBackend.solve, []

    def slow_compile(inst):
        time.sleep(0.5)
        return real_compile(inst)

    def spy(self, *a, **kw):
        limits.append(kw["time_limit_s"])
        return real_solve(self, *a, **kw)

    monkeypatch.setattr(pipeline, "compile_instance", slow_compile)
    monkeypatch.setattr(HighsBackend, "solve", spy)
    res = solve(Instance.from_yaml(ROOT / "instances" / "demo.yaml"), time_limit_s=30, baselines=False,
                shadow_prices=False, value_of_information=False)
    assert res.solved and len(limits) == 1
    assert 1.0 <= limits[0] <= 30 - 0.5
