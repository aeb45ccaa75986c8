"""Results and reliability (issue "Security and reliability hardening", items 6-10): one test per
defect, each named for it. Instances are tiny (instances/tiny.yaml) or built to be infeasible
(tests/instances/infeasible_*.yaml); the expected figures are worked out by hand in comments.
"""

from __future__ import annotations

import json
import re
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
RATE = "leases[L1].rate_usd_per_kw_month"


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


# ---------------------------------------------------------------- 6. a killed run leaves no complete-looking directory


def _killed_write(write, patch_target: str, k: int) -> int:
    """Run ``write()`` in a forked child that dies like kill -9 (os._exit: no cleanup, no finally)
    at the ``k``-th call of ``patch_target`` (before that call writes anything); return the
    child's exit status (9 when it died there, 0 when the write finished first)."""
    import importlib
    import os

    mod_name, cls_name, meth = patch_target.rsplit(".", 2)
    cls = getattr(importlib.import_module(mod_name), cls_name)
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            real, calls = getattr(cls, meth), [0]

            def dying(*a, **kw):
                calls[0] += 1
                if calls[0] >= k:
                    os._exit(9)
                return real(*a, **kw)

            setattr(cls, meth, dying)
            write()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _refused(capsys, d: Path) -> None:
    """Every reader refuses ``d`` with one line: the report, the workbook, ``evaluate --plan``."""
    from optimizer.cli import excel_command, report_command
    from optimizer.errors import InputError
    from optimizer.solve.resultdir import read_result_dir

    refusal = "incomplete"
    with pytest.raises(InputError, match=refusal):
        read_result_dir(d)
    assert report_command(d) == ExitCode.INPUT
    assert excel_command(d) == ExitCode.INPUT
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(re.search(refusal, x) for x in lines), lines
    if (d / "plan").is_dir():
        code, _, err = cli(capsys, "evaluate", TINY, "--plan", d / "plan")
        assert code == ExitCode.INPUT and len(err.strip().splitlines()) == 1 and "incomplete" in err, err


def test_killed_solve_leaves_no_complete_looking_directory(tmp_path, capsys, tiny_optimum):
    """A solve's result directory written by a process killed after each possible number of
    table writes (every DataFrame.to_csv call of a full write: the result tables and the plan
    tables), into a fresh directory and over a previous complete result: every reader
    refuses every one of them in one line, and accepts the directory a full write leaves."""
    from optimizer.cli import report_command

    res = tiny_optimum
    n = [0]
    real = pd.DataFrame.to_csv

    def counting(self, *a, **kw):
        n[0] += 1
        return real(self, *a, **kw)

    pd.DataFrame.to_csv = counting
    try:
        res.write(tmp_path / "full")
    finally:
        pd.DataFrame.to_csv = real
    from optimizer.plan import COLUMNS

    # one call per result table (plan, cashflows, kpis, shadow_prices, npv_breakdown, leases,
    # contracts) and one per plan table
    assert n[0] == sum(t is not None for t in res.tables().values()) + len(COLUMNS) >= 17, n[0]
    assert report_command(tmp_path / "full") == 0
    capsys.readouterr()
    code, _, err = cli(capsys, "evaluate", TINY, "--plan", tmp_path / "full" / "plan")
    assert code == 0, err
    for k in range(1, n[0] + 1):
        d = tmp_path / f"killed-{k}"
        assert _killed_write(lambda d=d: res.write(d), "pandas.DataFrame.to_csv", k) == 9
        _refused(capsys, d)
    # a re-run into a directory holding a complete result, killed half-way: not the old result either
    over = tmp_path / "over"
    res.write(over)
    assert _killed_write(lambda: res.write(over), "pandas.DataFrame.to_csv", 9) == 9
    _refused(capsys, over)


def test_killed_frontier_and_tornado_outputs_are_refused(tmp_path, capsys):
    """`optimizer frontier --out` and `optimizer tornado --out` killed while drawing their figure
    (their table already written): every reader refuses the directory; written whole, it is
    read. A sweep store left by an interrupted sweep is refused too (sweep.json says how many
    points are stored)."""
    import functools

    from _sweep_standins import standin

    import optimizer.cli as cli_mod
    from optimizer.analysis.sweep import sweep as run_sweep
    from optimizer.cli import report_command
    from optimizer.errors import InputError
    from optimizer.solve.resultdir import read_result_dir

    two = TESTS / "risk_two.yaml"
    tornado = functools.partial(cli_mod.tornado_command, TINY, [f"{RATE}=x0.8,1.2"], solver=standin, progress=False)
    runs = {"frontier": lambda d: main(["frontier", str(two), "--weights", "0,1", "--out", str(d)]),
            "tornado": lambda d: tornado(d)}
    for kind, run in runs.items():
        d = tmp_path / kind
        assert _killed_write(lambda d=d, run=run: run(d), "matplotlib.figure.Figure.savefig", 1) == 9
        assert (d / f"{kind}.csv").is_file() and not (d / f"{kind}.png").is_file()   # killed between the two
        _refused(capsys, d)
        assert run(d) == 0
        capsys.readouterr()
        assert report_command(d) == 0
        capsys.readouterr()
    d = tmp_path / "store"
    run_sweep(Instance.from_yaml(TINY), [f"{RATE}=100,110"], solver=standin, out_dir=d)
    assert report_command(d) == 0
    capsys.readouterr()
    meta = json.loads((d / "sweep.json").read_text())
    # as a run of a 3-point grid interrupted after 2 points leaves it
    (d / "sweep.json").write_text(json.dumps({**meta, "complete": False, "n_points": 3, "n_stored": 2}))
    _refused(capsys, d)
    with pytest.raises(InputError, match=r"incomplete sweep store \(2 of 3 points stored\)"):
        read_result_dir(d)


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


# ---------------------------------------------------------------- 8. infeasibility in the instance's words


def _infeasible_cash_two_scenarios() -> Instance:
    """infeasible_cash.yaml with two scenarios, a 0.1 M$ floor and the fixed conversion moved to
    2026-02. Site s1 holds no ASIC and no BTC, so no plan earns anything: cash is 0.4 M$ until
    the 1-block conversion (10 racks x 100 kW = 1 MW x 0.5 M$/MW, lead 0) takes 0.5 M$ in
    2026-02, leaving -0.1 M$: 0.2 M$ under the 0.1 M$ floor from 2026-02 on, in both scenarios."""
    import yaml

    d = yaml.safe_load((TESTS / "infeasible_cash.yaml").read_text())
    d["treasury"]["min_cash_usd"] = 100_000
    d["policy"]["fixed_decisions"][0]["month"] = "2026-02"
    base = d["scenarios"][0]
    d["scenarios"] = [dict(base, name="hi", probability=0.5), dict(base, name="lo", probability=0.5, btc_price_usd=50_000)]
    return Instance.from_dict(d)


def _built(inst: Instance):
    from optimizer.economics.data import compile_instance
    from optimizer.model.build import build_model
    from optimizer.solve.backend import HighsBackend

    data = compile_instance(inst)
    return HighsBackend(build_model(data)), data


class Recorder:
    """A Reporter that keeps what it is told."""

    def __init__(self):
        self.events = []

    def start(self, label, total=None):
        self.events.append(("start", label))

    def advance(self, n=1, label=None):
        self.events.append(("advance", label))

    def note(self, message):
        self.events.append(("note", message))

    def finish(self):
        self.events.append(("finish", None))


def test_infeasible_cash_floor_diagnosed_in_usd_and_months():
    """The cash floor in USD, months and scenarios (hand figures in _infeasible_cash_two_scenarios):
    the cheap check before the MIP says "at least", the elastic diagnosis (tier 1: only the policy
    and treasury limits relaxed, the fixed conversion kept) gives the exact shortfall."""
    from optimizer.solve.diagnose import elastic_diagnosis

    inst = _infeasible_cash_two_scenarios()
    res = solve(inst, value_of_information=False)
    assert res.status == "infeasible"
    assert res.diagnosis[0].startswith("cash falls below treasury.min_cash_usd ($100k) from 2026-02 by at least $200k in "
                                       "every scenario, whatever the plan"), res.diagnosis
    assert res.message.startswith("the instance is infeasible: cash falls below")
    backend, data = _built(inst)
    rec = Recorder()
    lines = elastic_diagnosis(backend, data, progress=rec)
    assert lines[0] == "cash falls below treasury.min_cash_usd ($100k) from 2026-02 by up to $200k in every scenario"
    assert lines[1].startswith("found by relaxing the policy and treasury limits (every fixed decision and physical limit kept)")
    assert "model units" not in " ".join(lines)
    # progress through the solve's Reporter: step labels only (the solve owns start and finish)
    labels = [label for kind, label in rec.events if kind == "advance"]
    assert labels[0] == "diagnosing infeasibility (at most 60 s)" and labels[-1].startswith("diagnosis done in")
    assert any(x.startswith("diagnosing: relaxing the policy and treasury limits") for x in labels)
    assert {kind for kind, _ in rec.events} == {"advance"}


def test_policy_shares_contradicting_fixed_decisions_are_named():
    """tiny.yaml (30 mining racks at s1, no HPC rack; a block is 10 racks): keeping every rack
    mining (min_mining_share 1) contradicts lease L1 fixed as signed (1 MW at 100 kW/rack = 10
    racks, so one block must convert: 20 of 30 left, below 30); max_converted_share 0.2 allows
    0.2 x 30 = 6 converted racks, fewer than the 10 of one fixed block. Both caught before the build."""
    import yaml

    base = yaml.safe_load(TINY.read_text())
    d = dict(base, policy={"min_mining_share": 1.0, "fixed_decisions": [{"kind": "lease", "lease": "L1", "signed": True}]})
    res = solve(Instance.from_dict(d), value_of_information=False)
    assert res.status == "infeasible" and res.n_variables == 0
    assert res.diagnosis == ["policy.min_mining_share 1 contradicts policy.fixed_decisions[0] (lease L1 signed): L1 needs 10 "
                             "HPC racks and s1 has 0, so at least 10 mining racks must convert, leaving 20 of 30, below "
                             "1 x 30 = 30"]
    d = dict(base, policy={"max_converted_share": 0.2,
                           "fixed_decisions": [{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1}]})
    res = solve(Instance.from_dict(d), value_of_information=False)
    assert res.diagnosis == ["policy.max_converted_share 0.2 contradicts the fixed conversions policy.fixed_decisions[0]: "
                             "they convert 10 racks, more than 0.2 x 30 initial mining racks = 6"]


def test_capex_budget_shortfall_in_usd():
    """tiny.yaml with one block fixed to start in 2026-01 (1 MW x 1 M$/MW = 1 M$, paid over the
    2-month lead, both in 2026) and a 0.6 M$ yearly budget: 0.4 M$ over, found by the elastic
    diagnosis (no pre-check covers budgets) in USD and by year."""
    import yaml

    d = yaml.safe_load(TINY.read_text())
    d["policy"] = {"capex_budget_usd_per_year": 600_000,
                   "fixed_decisions": [{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1}]}
    res = solve(Instance.from_dict(d), value_of_information=False)
    assert res.status == "infeasible" and res.n_variables > 0
    assert res.diagnosis[0] == "capex and ASIC purchases in 2026 exceed policy.capex_budget_usd_per_year ($600k) by $400k"


def test_diagnosis_stops_at_its_time_limit_and_says_so():
    """With a diagnosis limit too short for any solve, the diagnosis ends at once and says where
    it stopped and which option sets the limit; the solve still reports the instance infeasible."""
    res = solve(Instance.from_yaml(TESTS / "infeasible_two_leases.yaml"), diagnosis_time_limit_s=1e-9,
                value_of_information=False, progress=Recorder())
    assert res.status == "infeasible"
    assert res.diagnosis == ["the diagnosis stopped at its 1e-09 s limit (SolveOptions.diagnosis_time_limit_s) before "
                             "relaxing the policy and treasury limits (every fixed decision and physical limit kept)"]


def test_every_row_family_maps_to_instance_fields():
    """Every constraint family the model builds on the shipped and test instances (CVaR rows
    included) has an entry in diagnose.FAMILIES: a tier, and for the relaxable ones the
    instance fields and the business unit of its slack; none falls back to model units."""
    import pyomo.environ as pyo

    from optimizer.economics.data import compile_instance
    from optimizer.model.build import ModelOptions, build_model
    from optimizer.solve.diagnose import FAMILIES

    seen = set()
    for path in sorted((ROOT / "instances").glob("*.yaml")) + sorted(TESTS.glob("*.yaml")):
        if path.name == "infeasible_lease_lead.yaml":      # refused at build: its lease has no variable
            continue
        m = build_model(compile_instance(Instance.from_yaml(path)), ModelOptions(0.5, 0.9))
        seen |= {c.local_name for c in m.component_objects(pyo.Constraint)}
    assert len(seen) >= 29
    assert seen <= set(FAMILIES), seen - set(FAMILIES)
    for name in seen:
        f = FAMILIES[name]
        assert f.tier in (0, 1, 2, 3) and (f.tier == 0 or (f.fields and f.unit)), name


# ---------------------------------------------------------------- 9. a time limit hit without a bound


@pytest.mark.slow
def test_time_limit_reports_highs_bound(tmp_path, capsys, monkeypatch):
    """Whatever the limit, the Result carries HiGHS's own dual bound (read from HiGHS's info after
    the run) whenever HiGHS has one, and says plainly that there is none otherwise. On the 4x demo
    (~15k columns) HiGHS is still in presolve after 0.05 s (no bound: measured, every run) and has
    its root bound after a few seconds (retried with more time on a loaded machine)."""
    from test_solve import big_demo

    from optimizer.constants import NO_BOUND_NOTE
    from optimizer.solve.backend import HighsBackend

    seen = []
    real = HighsBackend._solve_once

    def spy(self, *a, **k):
        r = real(self, *a, **k)
        info = self.highs.getInfo()
        seen.append((float(info.mip_dual_bound), float(info.mip_gap)))
        return r

    monkeypatch.setattr(HighsBackend, "_solve_once", spy)
    path = big_demo(tmp_path)
    inst = Instance.from_yaml(path)
    with_bound = False
    for limit in (0.05, 3, 10, 30):
        seen.clear()
        # the baseline MIP start (computed without the baselines' report too) is the incumbent at 0.05 s
        res = solve(inst, time_limit_s=limit, mip_gap=0.0, baselines=False, mip_start=True, shadow_prices=False,
                    value_of_information=False)
        assert res.status == "time_limit_with_incumbent" and len(seen) == 1
        bound, gap = seen[0]
        if bound < float("inf"):
            assert res.best_bound_usd == pytest.approx(bound * 1e6, rel=1e-12)   # model money is $M
            assert res.mip_gap == pytest.approx(gap, rel=1e-12)
            assert NO_BOUND_NOTE not in res.message
            with_bound = True
            break
        assert res.best_bound_usd is None and res.mip_gap is None
        assert res.message.endswith(NO_BOUND_NOTE), res.message
    assert with_bound, "HiGHS found no bound within 30 s"
    # the command line says it in the table and in the message
    code, out, _ = cli(capsys, "solve", path, "--out", tmp_path / "out", "--time-limit", "0.05", "--gap", "0", "--no-voi",
                       "--no-baselines", "--mip-start")
    assert code == 0
    text = " ".join(out.split())
    assert NO_BOUND_NOTE in text and "best bound" not in text           # the solver note says it, no made-up bound
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["best_bound_usd"] is None and s["mip_gap"] is None and s["message"].endswith(NO_BOUND_NOTE)


# ---------------------------------------------------------------- 10. sweeps: Ctrl-C, two sweeps, dead and orphaned workers
SWEEP_SCRIPT = """
import functools, sys
sys.path.insert(0, {tests!r})
from _sweep_standins import standin
import optimizer.cli as cli
cli.sweep_command = functools.partial(cli.sweep_command, solver=standin)
sys.exit(cli.main({args!r}))
"""


def _start_sweep(out: Path, log: Path, rates: str, *extra: str, env_extra: dict | None = None):
    """`optimizer sweep` (tiny.yaml, the closed-form stand-in of tests/_sweep_standins.py) in its
    own process group, as a terminal runs it."""
    import os
    import subprocess
    import sys

    args = ["sweep", str(TINY), "--param", f"{RATE}={rates}", "--out", str(out), *extra]
    env = {**os.environ, "STANDIN_CALL_LOG": str(log), **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-c", SWEEP_SCRIPT.format(tests=str(ROOT / "tests"), args=args)], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(pred, timeout_s: float, what: str) -> None:
    import time

    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _slow_pids(log: Path) -> list[int]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [int(x.split()[0]) for x in lines if x.endswith(" slow")]


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _stored(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "points.csv", dtype={"point_id": str}, keep_default_na=False)


@pytest.mark.parametrize("workers", [None, "2"], ids=["in-process", "process-pool"])
def test_sigint_stops_a_sweep_at_once_and_stores_no_failed_point(tmp_path, workers):
    """Ctrl-C while a point is inside a HiGHS solve that would run 60 s (a market-split MILP): the
    sweep stops within seconds with exit 130, the points in flight are not stored (neither as
    failed nor as time-limited), no worker is left running, and a rerun solves exactly the rest.
    Points 100 and 110 are instant; 120 and 130 start the long solve."""
    import os
    import signal

    out, log = tmp_path / "out", tmp_path / "calls.log"
    extra = ("--workers", workers) if workers else ()
    p = _start_sweep(out, log, "100,110,120,130", *extra, env_extra={"STANDIN_SLOW_ABOVE": "115"})
    _wait_for(lambda: _slow_pids(log), 120, "a point to start its HiGHS solve")
    os.killpg(p.pid, signal.SIGINT)                    # a terminal's Ctrl-C reaches the whole group
    _, err = p.communicate(timeout=30)                 # the solve would take 60 s
    assert p.returncode == ExitCode.INTERRUPTED == 130, err
    assert "interrupted; finished points are saved" in err and "Traceback" not in err
    _wait_for(lambda: not any(_alive(pid) for pid in _slow_pids(log)), 10, "the solving workers to end")
    stored = _stored(out)
    assert (stored["error"] == "").all() and (stored["status"] == "optimal").all(), stored
    assert set(stored[RATE]) <= {100, 110} and stored["point_id"].is_unique
    assert json.loads((out / "sweep.json").read_text())["complete"] is False
    # the rerun (no slow points now) solves only what is missing, and the store is complete
    p = _start_sweep(out, log, "100,110,120,130", *extra)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    final = _stored(out)
    assert sorted(final[RATE]) == [100, 110, 120, 130] and final["point_id"].is_unique
    assert json.loads((out / "sweep.json").read_text())["complete"] is True


def test_ctrl_c_while_the_pool_spawns_a_worker_is_not_lost(tiny):
    """Ctrl-C arriving while the sweep hands a point to its pool (which spawns the worker then):
    the worker must start deaf to Ctrl-C, but the parent must still hear it. It once ignored
    SIGINT around the submit, so a Ctrl-C in that window was discarded and the sweep went on
    (seen as a 30 s hang of the test above on a loaded machine). Here the Ctrl-C is sent from
    inside the submit, deterministically; the parent must raise KeyboardInterrupt by the time
    the submit returns (at most a moment later), and the worker it spawned must not have died of it."""
    import os
    import signal
    import time

    from _sweep_standins import standin

    from optimizer.analysis.sweep import Point, _Pool, make_job

    pool = _Pool(make_job(tiny, standin, False, {}), workers=1)
    real = pool.ex.submit

    def submit_with_ctrl_c(*a, **k):
        future = real(*a, **k)                  # the worker is spawned here
        # a terminal's Ctrl-C reaches the whole process group: this process and the starting worker
        for pid in [os.getpid(), *(p.pid for p in pool.ex._processes.values())]:
            os.kill(pid, signal.SIGINT)
        return future

    pool.ex.submit = submit_with_ctrl_c
    point = Point("p", {RATE: 100.0}, {RATE: 100.0})
    interrupted = False
    try:
        pool.submit(point)
        for _ in range(50):                     # a signal another thread caught is raised at the next bytecode
            time.sleep(0.01)
    except KeyboardInterrupt:
        interrupted = True
    try:
        assert interrupted, "the Ctrl-C sent during the submit was lost"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        # the worker ignored it: it solves the point (closed form 12_000 x 100 - 200_000 = 1.0 M$)
        rows = []
        while not rows:
            rows = pool.finished(60)
        assert rows[0]["status"] == "optimal" and rows[0]["npv_usd"] == pytest.approx(1_000_000.0, rel=1e-12)
    finally:
        pool.close(abort=True)


def test_killed_sweep_parent_leaves_no_worker_running(tmp_path):
    """kill -9 of the sweep while its two pool workers are inside 60 s HiGHS solves: the workers
    notice their parent is gone and exit (they poll every 0.5 s) instead of solving for nobody."""
    import os
    import signal

    out, log = tmp_path / "out", tmp_path / "calls.log"
    p = _start_sweep(out, log, "120,130", "--workers", "2", env_extra={"STANDIN_SLOW_ABOVE": "115"})
    _wait_for(lambda: len(_slow_pids(log)) == 2, 120, "both workers to start their HiGHS solve")
    os.kill(p.pid, signal.SIGKILL)
    p.communicate(timeout=30)
    _wait_for(lambda: not any(_alive(pid) for pid in _slow_pids(log)), 10, "the orphaned workers to exit")


def test_dead_worker_exit_code_is_not_bad_input(tmp_path, capsys, monkeypatch):
    """A pool worker dies (os._exit, like the OOM killer) inside its 2nd solve: the command exits 7
    (ExitCode.WORKER_DIED, README), not 2 (bad input), and says the finished points are saved."""
    import functools

    from _sweep_standins import standin

    import optimizer.cli as cli_mod

    monkeypatch.setenv("STANDIN_EXIT_AFTER", "2")
    monkeypatch.setattr(cli_mod, "sweep_command", functools.partial(cli_mod.sweep_command, solver=standin, progress=False))
    code, _, err = cli(capsys, "sweep", TINY, "--param", f"{RATE}=100,110,120", "--out", tmp_path / "out", "--workers", "1")
    assert code == ExitCode.WORKER_DIED == 7
    assert err.startswith("error: a worker process died") and "finished points are saved, rerun to resume" in err
    assert len(_stored(tmp_path / "out")) == 1               # the first point made it to the store


def test_two_sweeps_on_one_store_solve_each_point_once(tmp_path):
    """Two `optimizer sweep` runs of the same 8-point grid on one --out at the same time (each
    solve takes 0.3 s): every point is solved once in all (the call log counts solves across both
    processes), stored once, both runs exit 0 with the full table, and the store is complete."""
    out, log = tmp_path / "out", tmp_path / "calls.log"
    env = {"STANDIN_SLEEP_S": "0.3"}
    runs = [_start_sweep(out, log, "100:170:8", env_extra=env) for _ in range(2)]
    for p in runs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    calls = [float(x.split()[1]) for x in log.read_text().splitlines()]
    assert sorted(calls) == [100, 110, 120, 130, 140, 150, 160, 170]
    stored = _stored(out)
    assert len(stored) == 8 and stored["point_id"].is_unique and (stored["error"] == "").all()
    assert json.loads((out / "sweep.json").read_text())["complete"] is True
