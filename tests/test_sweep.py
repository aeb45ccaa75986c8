"""Sweeps: spec parsing, grids, the resumable store, executors, and (once the MILP exists) the real solver.

Expected values come from the stand-in's closed form (tests/_sweep_standins.py):
on tiny.yaml npv_usd = 1000 * it_mw(1) * rate * term(12) + 1e6 * btc_scale - 1e7 * discount_rate.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _sweep_standins import StandinPersistent, standin

from optimizer.analysis.sweep import Param, grid_points, params_from, parse_param_spec, point_id, sweep
from optimizer.cli import sweep_command
from optimizer.errors import InputError
from optimizer.instance import Instance

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny.yaml"
RATE = "leases[L1].rate_usd_per_kw_month"
GRID = [f"{RATE}=100:150:6", "horizon.discount_rate=x1,2"]   # 6 x 2 = 12 points




@pytest.fixture(scope="module")
def tiny() -> Instance:
    return Instance.from_yaml(TINY)


def expected_npv(rate: float, r_mul: float) -> float:
    # 1000 kW x rate x 12 months + 1e6 x scale 1 - 1e7 x (0.12 x multiplier)
    return 12_000.0 * rate + 1_000_000.0 - 10_000_000.0 * 0.12 * r_mul


def _calls(path: Path) -> list[float]:
    return [float(line.split()[1]) for line in path.read_text().splitlines()] if path.exists() else []


# ---------------------------------------------------------------- specs and grids


def test_parse_list_range_and_kinds():
    p = parse_param_spec("horizon.discount_rate=0.08,0.10,0.12")
    assert (p.path, p.kind, p.values) == ("horizon.discount_rate", "value", (0.08, 0.10, 0.12))
    # 0.08:0.12:5 -> step (0.12 - 0.08) / 4 = 0.01, both ends included
    assert parse_param_spec("horizon.discount_rate=0.08:0.12:5").values == (0.08, 0.09, 0.10, 0.11, 0.12)
    m = parse_param_spec(f"{RATE}=x0.8,1,1.2")
    assert (m.kind, m.values, m.column) == ("mul", (0.8, 1, 1.2), f"{RATE}:mul")
    assert m.override(0.8) == {"mul": 0.8}
    assert parse_param_spec(f"{RATE}=x0.5:1.5:3").values == (0.5, 1.0, 1.5)
    a = parse_param_spec(f"{RATE}=add:-20,0,20")
    assert (a.kind, a.values, a.override(-20)) == ("add", (-20, 0, 20), {"add": -20})
    s = parse_param_spec("leases[L1].window_start=shift:-2,0,2")
    assert (s.kind, s.values, s.override(-2)) == ("shift", (-2, 0, 2), {"shift_months": -2})
    assert parse_param_spec("leases[L1].window_start=shift:-2:2:5").values == (-2, -1, 0, 1, 2)
    assert parse_param_spec("leases[L1].window_start=2026-03,2026-04").values == ("2026-03", "2026-04")


@pytest.mark.parametrize("spec, words", [
    ("horizon.discount_rate", "expected PATH=SPEC"),
    ("horizon.discount_rate=0.1:0.2:1", "N must be a whole number >= 2"),
    ("horizon.discount_rate=0.1:0.2:2.5", "N must be a whole number >= 2"),
    ("horizon.discount_rate=xabc", "'abc' is not a number"),
    ("leases[L1].window_start=shift:0.5,1", "whole numbers"),
    ("horizon.discount_rate=0.1,,0.2", "empty value"),
    ("horizon.discount_rate=1:2", "comma list or START:STOP:N"),
])
def test_parse_errors_are_one_line(spec, words):
    with pytest.raises(InputError) as e:
        parse_param_spec(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_product_zip_lhs_counts():
    a = Param("a", (1.0, 2.0, 3.0))
    b = Param("b", (10.0, 20.0))
    c = Param("c", (5.0, 6.0, 7.0))
    assert len(grid_points([a, b], "product")) == 6          # 3 x 2
    prod = grid_points([a, b], "product")
    assert [p.values for p in prod[:2]] == [{"a": 1.0, "b": 10.0}, {"a": 1.0, "b": 20.0}]  # first parameter slowest
    assert len(grid_points([a, c], "zip")) == 3
    with pytest.raises(InputError, match="zip needs equally many values"):
        grid_points([a, b], "zip")
    assert len(grid_points([a, b], "lhs", n_samples=7, seed=1)) == 7
    with pytest.raises(InputError, match="lhs needs n_samples"):
        grid_points([a, b], "lhs")


def test_lhs_one_sample_per_stratum_and_seeded():
    a = Param("a", (0.0, 10.0))           # range [0, 10]
    b = Param("b", (100.0, 150.0, 200.0))  # range [100, 200] (min, max of the values)
    n = 20
    pts = grid_points([a, b], "lhs", n_samples=n, seed=42)
    for col, lo, hi in (("a", 0.0, 10.0), ("b", 100.0, 200.0)):
        x = np.array([p.values[col] for p in pts])
        assert ((x >= lo) & (x <= hi)).all()
        strata = np.floor((x - lo) / (hi - lo) * n).astype(int)
        assert sorted(strata) == list(range(n))            # each of the n strata exactly once
    again = grid_points([a, b], "lhs", n_samples=n, seed=42)
    assert [p.id for p in again] == [p.id for p in pts]
    assert [p.id for p in grid_points([a, b], "lhs", n_samples=n, seed=43)] != [p.id for p in pts]


def test_point_id_is_stable_and_value_based():
    assert point_id({"a": 1, "b": 0.5}) == point_id({"b": 0.5, "a": 1.0})   # order and int/float do not matter
    assert point_id({"a": 1}) != point_id({"a": 2})
    assert point_id({"a": 1, "b": math.nan}) == point_id({"a": 1})          # NaN = not overridden


def test_grid_mapping_forms():
    ps = params_from({RATE: [100, 120], "horizon.discount_rate": "x1,2"})
    assert [(p.column, p.values) for p in ps] == [(RATE, (100, 120)), ("horizon.discount_rate:mul", (1, 2))]
    with pytest.raises(InputError, match="given twice"):
        params_from([f"{RATE}=1,2", f"{RATE}=3"])


# ---------------------------------------------------------------- sweeps with the stand-in


def test_sweep_rows_match_closed_form(tiny, tmp_path):
    df = sweep(tiny, GRID, solver=standin, out_dir=tmp_path, progress=False)
    assert len(df) == 12 and df["point_id"].is_unique
    assert list(df.columns[:3]) == ["point_id", RATE, "horizon.discount_rate:mul"]
    assert (df["status"] == "optimal").all() and (df["error"] == "").all()
    for r in df.itertuples(index=False):
        rate, mul = r[1], r[2]
        assert r.npv_usd == pytest.approx(expected_npv(rate, mul), rel=1e-12)
        signed = rate >= 125                       # the stand-in signs L1 from 125 USD/kW-month
        assert r.leases_signed == ("L1" if signed else "")
        assert r.converted_mw_s1 == (1.0 if signed else 0.0)
    # point order: rate slowest, multiplier fastest
    assert list(df[RATE]) == [100, 100, 110, 110, 120, 120, 130, 130, 140, 140, 150, 150]
    assert (tmp_path / "points.csv").exists() and (tmp_path / "sweep.json").exists()


def test_invalid_path_rejected_before_any_solve(tiny, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log))
    with pytest.raises(InputError) as e:
        sweep(tiny, [f"{RATE}=100,120", "leases[L9].rate_usd_per_kw_month=1,2"], solver=standin, progress=False)
    assert "L9" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(InputError, match="horizon.discount_rate"):   # a value out of range at one point
        sweep(tiny, ["horizon.discount_rate=0.1,5"], solver=standin, progress=False)
    assert not log.exists()                                           # nothing was solved


def test_failing_point_recorded_and_sweep_goes_on(tiny, tmp_path):
    df = sweep(tiny, [f"{RATE}=100:150:6"], solver=standin, out_dir=tmp_path, progress=False, fail_above_rate=130)
    assert len(df) == 6
    bad = df[df[RATE] > 130]
    assert list(bad[RATE]) == [140, 150]
    assert (bad["status"] == "error").all() and bad["error"].str.contains("ValueError: stand-in refuses rate").all()
    good = df[df[RATE] <= 130]
    assert (good["error"] == "").all() and good["npv_usd"].notna().all()


def test_rerun_skips_done_points(tiny, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log))
    sweep(tiny, [f"{RATE}=100,110"], solver=standin, out_dir=tmp_path / "s", progress=False)
    df = sweep(tiny, [f"{RATE}=100,110,120"], solver=standin, out_dir=tmp_path / "s", progress=False)
    assert _calls(log) == [100, 110, 120]          # 100 and 110 solved once, 120 added by the second run
    assert list(df[RATE]) == [100, 110, 120]


def test_kill_and_resume_subprocess(tiny, tmp_path, monkeypatch):
    """A sweep process dies (os._exit, like kill -9) during its 4th solve; rerunning completes it."""
    out, log1, log2 = tmp_path / "out", tmp_path / "run1.log", tmp_path / "run2.log"
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
              "from _sweep_standins import standin\n"
              "from optimizer.instance import Instance\nfrom optimizer.analysis.sweep import sweep\n"
              f"sweep(Instance.from_yaml({str(TINY)!r}), {GRID!r}, solver=standin, out_dir={str(out)!r}, progress=False)\n")
    env = {**os.environ, "STANDIN_CALL_LOG": str(log1), "STANDIN_EXIT_AFTER": "4"}
    p = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    assert len(_calls(log1)) == 4                                    # died inside the 4th solve
    stored = pd.read_csv(out / "points.csv", dtype={"point_id": str})
    assert len(stored) == 3                                          # the first 3 made it to disk
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log2))
    df = sweep(tiny, GRID, solver=standin, out_dir=out, progress=False)
    assert len(_calls(log2)) == 12 - 3                               # only the missing points were solved
    final = pd.read_csv(out / "points.csv", dtype={"point_id": str})
    assert len(final) == 12 and final["point_id"].is_unique           # every point exactly once
    assert set(final["point_id"]) == set(df["point_id"])
    assert not set(stored["point_id"]) & set(final["point_id"].iloc[3:])  # run 2 appended only new points
    for r in df.itertuples(index=False):
        assert r.npv_usd == pytest.approx(expected_npv(r[1], r[2]), rel=1e-12)


def test_worker_death_then_resume_process_pool(tiny, tmp_path, monkeypatch):
    """A pool worker dies during its 3rd solve: the sweep stops with one line, the rerun finishes."""
    out, log = tmp_path / "out", tmp_path / "calls.log"
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log))
    monkeypatch.setenv("STANDIN_EXIT_AFTER", "3")
    with pytest.raises(RuntimeError, match="worker process died.*rerun to resume"):
        sweep(tiny, [f"{RATE}=100:150:6"], solver=standin, out_dir=out, executor="processes", workers=1, progress=False)
    first = pd.read_csv(out / "points.csv", dtype={"point_id": str})
    assert len(first) == 2
    monkeypatch.delenv("STANDIN_EXIT_AFTER")
    df = sweep(tiny, [f"{RATE}=100:150:6"], solver=standin, out_dir=out, executor="processes", workers=1, progress=False)
    assert list(df[RATE]) == [100, 110, 120, 130, 140, 150]
    final = pd.read_csv(out / "points.csv", dtype={"point_id": str})
    assert len(final) == 6 and final["point_id"].is_unique
    # calls: 3 in run 1 (the 3rd died), then the 4 points not stored
    assert len(_calls(log)) == 3 + 4


def test_partial_last_line_is_repaired(tiny, tmp_path):
    out = tmp_path / "out"
    sweep(tiny, [f"{RATE}=100,110"], solver=standin, out_dir=out, progress=False)
    with open(out / "points.csv", "a") as f:
        f.write("deadbeef0000,120.0,optim")          # a write cut short by a kill
    df = sweep(tiny, [f"{RATE}=100,110,120"], solver=standin, out_dir=out, progress=False)
    assert list(df[RATE]) == [100, 110, 120]
    assert df.loc[2, "npv_usd"] == pytest.approx(expected_npv(120, 1))
    assert len(pd.read_csv(out / "points.csv")) == 3


def test_resume_into_dir_of_another_instance_is_refused(tiny, tmp_path):
    sweep(tiny, [f"{RATE}=100,110"], solver=standin, out_dir=tmp_path, progress=False)
    other = tiny.with_overrides({"horizon.discount_rate": 0.2})
    with pytest.raises(InputError, match="different instance"):
        sweep(other, [f"{RATE}=100,110"], solver=standin, out_dir=tmp_path, progress=False)


def test_persistent_route_one_build_per_worker(tiny, tmp_path, monkeypatch):
    builds = tmp_path / "builds.log"
    monkeypatch.setenv("STANDIN_BUILD_LOG", str(builds))
    df = sweep(tiny, [f"{RATE}=100:150:6"], solver=StandinPersistent, progress=False)
    assert len(builds.read_text().splitlines()) == 1                  # in-process: one model for 6 points
    assert df["npv_usd"].tolist() == [expected_npv(r, 1) for r in (100, 110, 120, 130, 140, 150)]
    builds.unlink()
    sweep(tiny, [f"{RATE}=100:150:6"], solver=StandinPersistent, persistent=False, progress=False)
    assert len(builds.read_text().splitlines()) == 6                  # cold: one build per point
    builds.unlink()
    sweep(tiny, [f"{RATE}=100:170:8"], solver=StandinPersistent, executor="processes", workers=2, progress=False)
    pids = builds.read_text().split()
    assert 1 <= len(pids) <= 2 and len(set(pids)) == len(pids)        # at most one build per worker process


def _comparable(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=["wall_s"]).sort_values("point_id").reset_index(drop=True)


@pytest.mark.slow
def test_process_pool_and_dask_match_inprocess(tiny):
    grid = [f"{RATE}=100:150:3", "scenarios[*].btc_price_usd.scale=0.8,1.2"]
    ref = sweep(tiny, grid, solver=standin, progress=False)
    # hand check of one row: rate 125, scale 1.2 -> 12000*125 + 1.2e6 - 1.2e6 = 1,500,000
    row = ref[(ref[RATE] == 125) & (ref["scenarios[*].btc_price_usd.scale"] == 1.2)]
    assert row["npv_usd"].iloc[0] == pytest.approx(1_500_000.0)
    pool = sweep(tiny, grid, solver=standin, executor="processes", workers=2, progress=False)
    pd.testing.assert_frame_equal(_comparable(pool), _comparable(ref))
    dask = sweep(tiny, grid, solver=standin, executor="dask", workers=2, progress=False)
    pd.testing.assert_frame_equal(_comparable(dask), _comparable(ref))


def test_sweep_command_exit_codes(tmp_path, capsys):
    assert sweep_command(TINY, [f"{RATE}=100,110"], tmp_path / "ok", solver=standin, progress=False) == 0
    out = capsys.readouterr().out
    assert "2 points, 0 failed" in out
    assert sweep_command(TINY, ["leases[nope].rate_usd_per_kw_month=1"], tmp_path / "bad", solver=standin, progress=False) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "nope" in err
    assert sweep_command(TINY, [f"{RATE}=100,200"], tmp_path / "f", solver=standin, progress=False,
                         solve_options={"fail_above_rate": 150}) == 5
    assert sweep_command(tmp_path / "missing.yaml", [f"{RATE}=1"], None, solver=standin, progress=False) == 2


# ---------------------------------------------------------------- the real MILP


def test_real_npv_non_decreasing_in_lease_rate(tiny):
    # a higher rent can only add value: the plan at a lower rate stays feasible at a higher one
    df = sweep(tiny, [f"{RATE}=50:400:8"], progress=False)
    assert (df["error"] == "").all(), df["error"].tolist()
    npv = df["npv_usd"].to_numpy()
    assert np.all(np.diff(npv) >= -1e-6 * np.abs(npv).max()), npv


@pytest.mark.parametrize("spec", [f"{RATE}=60:330:10", "scenarios[*].btc_price_usd.scale=0.6:1.5:10"])
@pytest.mark.slow
def test_real_persistent_equals_cold(tiny, spec):
    # a tight gap, so both routes must reach the same optimum
    warm = sweep(tiny, [spec], persistent=True, progress=False, mip_gap=1e-9)
    cold = sweep(tiny, [spec], persistent=False, progress=False, mip_gap=1e-9)
    assert (warm["error"] == "").all() and (cold["error"] == "").all()
    assert warm["npv_usd"].to_numpy() == pytest.approx(cold["npv_usd"].to_numpy(), rel=1e-6)


def test_summarize_a_result(tiny):
    from optimizer.analysis.sweep import summarize
    from optimizer.plan import Plan
    from optimizer.solve.result import Result, SolverReport

    plan = Plan(conversions=pd.DataFrame({"site": ["s1", "s1"], "month": ["2026-01", "2026-03"], "blocks": [1, 2]}),
                leases=pd.DataFrame({"lease": ["L1"], "site": ["s1"], "month": ["2026-03"], "share": [1.0]}))
    res = Result(SolverReport(status="optimal", objective_usd=123.0, mip_gap=1e-5, build_s=0.5, solve_s=1.5), plan=plan)
    row = summarize(res, tiny, ["s1"])
    # 3 blocks x 10 racks/block x 100 kW/rack / 1000 = 3 MW
    assert row["converted_mw_s1"] == pytest.approx(3.0)
    assert row["leases_signed"] == "L1" and row["status"] == "optimal"
    assert row["npv_usd"] == 123.0      # no evaluation attached: the solver objective
    assert (row["mip_gap"], row["build_s"], row["solve_s"]) == (1e-5, 0.5, 1.5)
    assert "error" not in row
    bad = summarize(Result(SolverReport(status="infeasible", message="site s1: grid too small")), tiny, ["s1"])
    assert bad["error"] == "no solution (status infeasible): site s1: grid too small"
    assert math.isnan(bad["converted_mw_s1"]) and bad["npv_usd"] is None


def test_retry_failed_resolves_only_failed_points(tiny, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log))
    grid = [f"{RATE}=100,140"]
    first = sweep(tiny, grid, solver=standin, out_dir=tmp_path / "s", progress=False, fail_above_rate=130)
    assert list(first["error"] == "") == [True, False]
    again = sweep(tiny, grid, solver=standin, out_dir=tmp_path / "s", progress=False, fail_above_rate=130)
    assert _calls(log) == [100, 140]                     # plain rerun: failed point kept, nothing solved
    assert again["error"].iloc[1] != ""
    retried = sweep(tiny, grid, solver=standin, out_dir=tmp_path / "s", progress=False, fail_above_rate=130,
                    retry_failed=True)
    assert _calls(log) == [100, 140, 140]                # only the failed point re-solved
    assert len(retried) == 2 and retried["point_id"].is_unique


def test_bad_executor_or_workers_rejected_before_writing(tiny, tmp_path):
    with pytest.raises(InputError, match="executor must be one of"):
        sweep(tiny, [f"{RATE}=100"], solver=standin, out_dir=tmp_path / "a", executor="threads", progress=False)
    with pytest.raises(InputError, match="workers must be"):
        sweep(tiny, [f"{RATE}=100"], solver=standin, out_dir=tmp_path / "b", executor="processes", workers=0, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _count_builds(monkeypatch) -> list[int]:
    """Count Pyomo model builds inside optimizer.solve (one per cold solve)."""
    mod = importlib.import_module("optimizer.solve.pipeline")
    calls = [0]
    real = mod.build_model

    def counting(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(mod, "build_model", counting)
    return calls


@pytest.mark.parametrize("spec", [
    "scenarios[*].btc_price_usd.scale=0.6:1.5:10",
    f"{RATE}=60:330:10",
])
@pytest.mark.slow
def test_real_persistent_route_reuses_one_model(tiny, monkeypatch, spec):
    calls = _count_builds(monkeypatch)
    df = sweep(tiny, [spec], persistent=True, progress=False)
    assert (df["error"] == "").all()
    assert calls[0] == 1, f"{calls[0]} model builds for 10 points"   # built on the first point, re-used after
    calls[0] = 0
    sweep(tiny, [spec], persistent=False, progress=False)
    assert calls[0] == 10                                               # cold: one build per point
