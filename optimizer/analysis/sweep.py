"""Sensitivity sweeps: parameter grids, a resumable results store, and one solve per point
run in-process, in a local process pool or on a dask.distributed cluster.

Parameter specs, ``PATH=SPEC`` (PATH is a dotted override path, see ``optimizer.overrides``):

====================  ==========================================================
``0.08,0.10,0.12``    absolute values (a comma list; ``YYYY-MM`` strings allowed)
``0.08:0.12:5``       5 evenly spaced values, both ends included
``x0.8,1,1.2``        multipliers of the instance's value (``x0.7:1.3:7`` too)
``add:-20,0,20``      amounts added to the instance's value
``shift:-2,0,2``      month shifts of a ``YYYY-MM`` field (whole numbers)
====================  ==========================================================

Grids: ``product`` (every combination, first parameter slowest), ``zip`` (the i-th value of
each parameter; equal lengths) and ``lhs`` (``n_samples`` Latin-hypercube samples over each
parameter's [min, max], seeded; month shifts are rounded to whole months).

Store: ``DIR/points.csv`` gets one row per finished point (its parameters, status, NPV, gap,
MW converted per site and every other first-stage decision of its plan: ``analysis.digest``), appended and fsync'ed the moment
the point finishes, keyed by ``point_id`` (a hash of the point's parameter values). Running
the same sweep again solves only the points not yet in the store (``retry_failed`` also
re-solves points stored with an error). ``DIR/sweep.json`` records the grid, the instance
fingerprint and the solve options; resuming a different instance into the same DIR is
refused, different solve options only warn.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import itertools
import json
import math
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from optimizer.analysis.digest import DIGEST_COLUMNS, DIGEST_STR_COLUMNS, first_stage_summary, param_label
from optimizer.constants import Reporter, reporter
from optimizer.errors import InputError, one_line
from optimizer.instance.overrides import apply_overrides
from optimizer.solve import PersistentSolver, solve

KINDS = ("value", "mul", "add", "shift")
_SUFFIX = {"value": "", "mul": ":mul", "add": ":add", "shift": ":shift_months"}
MODES = ("product", "zip", "lhs")
EXECUTORS = ("inprocess", "processes", "dask")
RESULT_COLUMNS = ["status", "npv_usd", "mip_gap"]   # then converted_mw_<site>..., then TAIL_COLUMNS
# every first-stage decision of the point's plan (analysis.digest), then timings and the error
TAIL_COLUMNS = [*DIGEST_COLUMNS, "build_s", "solve_s", "wall_s", "error"]
_STR_COLUMNS = {"point_id", "status", *DIGEST_STR_COLUMNS, "error"}
__all__ = ["param_label"]  # re-exported: the CLI and the report label parameter columns with it


# ---------------------------------------------------------------- parameters and specs


@dataclass(frozen=True)
class Param:
    """One swept parameter: a dotted path, how its values apply, and the values."""

    path: str
    values: tuple
    kind: str = "value"
    spec: str = ""

    @property
    def column(self) -> str:
        return self.path + _SUFFIX[self.kind]

    def override(self, v: Any) -> Any:
        """The value ``optimizer.overrides.apply_overrides`` takes for ``v``."""
        if self.kind == "mul":
            return {"mul": v}
        if self.kind == "add":
            return {"add": v}
        if self.kind == "shift":
            return {"shift_months": int(v)}
        return v


_INT = re.compile(r"^[+-]?\d+$")


def _token(tok: str, where: str, numeric: bool) -> Any:
    tok = tok.strip()
    if not tok:
        raise InputError(f"{where}: empty value in the list")
    if _INT.match(tok):
        return int(tok)
    try:
        x = float(tok)
    except ValueError:
        if numeric:
            raise InputError(f"{where}: {tok!r} is not a number") from None
        return tok
    if not math.isfinite(x):
        raise InputError(f"{where}: {tok!r} is not a finite number")
    return x


def _clean(x: float) -> float:
    """12 significant digits: linspace's 0.09000000000000001 becomes 0.09."""
    return float(f"{x:.12g}")


def parse_param_spec(text: str) -> Param:
    """``"PATH=SPEC"`` -> :class:`Param` (see the module docstring for SPEC)."""
    if "=" not in text:
        raise InputError(f"parameter {text!r}: expected PATH=SPEC, e.g. horizon.discount_rate=0.08,0.10,0.12")
    path, spec = (s.strip() for s in text.split("=", 1))
    where = f"parameter {path}={spec}"
    if not path:
        raise InputError(f"{where}: empty path")
    body, kind = spec, "value"
    for prefix, k in (("shift:", "shift"), ("add:", "add"), ("mul:", "mul"), ("x", "mul")):
        if body.startswith(prefix):
            body, kind = body[len(prefix):], k
            break
    if not body.strip():
        raise InputError(f"{where}: no values given")
    numeric = kind != "value"
    if body.count(":") == 2 and "," not in body:
        start, stop, n = body.split(":")
        a, b = _token(start, where, True), _token(stop, where, True)
        n_val = _token(n, where, True)
        if not isinstance(n_val, int) or n_val < 1 or (n_val == 1 and a != b):
            raise InputError(f"{where}: in START:STOP:N, N must be a whole number >= 2 (both ends are included), got {n.strip()!r}")
        values = [_clean(v) for v in np.linspace(float(a), float(b), n_val)]
    elif ":" in body:
        raise InputError(f"{where}: expected a comma list or START:STOP:N")
    else:
        values = [_token(t, where, numeric) for t in body.split(",")]
    if kind == "shift":
        if any(abs(v - round(v)) > 1e-9 for v in values):
            raise InputError(f"{where}: month shifts must be whole numbers, got {values}")
        values = [int(round(v)) for v in values]
    return Param(path, tuple(values), kind, spec)


def params_from(grid: Any) -> list[Param]:
    """Normalise a grid: ``"PATH=SPEC"`` strings, :class:`Param` objects, or a mapping
    ``{path: [values] | "SPEC" | Param}`` (a list means absolute values)."""
    if isinstance(grid, (str, Param)):
        grid = [grid]
    out: list[Param] = []
    if isinstance(grid, Mapping):
        for path, spec in grid.items():
            if isinstance(spec, Param):
                out.append(spec)
            elif isinstance(spec, str):
                out.append(parse_param_spec(f"{path}={spec}"))
            else:
                vals = list(np.atleast_1d(spec).tolist()) if not isinstance(spec, (list, tuple)) else list(spec)
                if not vals:
                    raise InputError(f"parameter {path}: no values given")
                out.append(Param(str(path), tuple(vals), "value", ",".join(map(str, vals))))
    else:
        for item in grid:
            out.append(item if isinstance(item, Param) else parse_param_spec(str(item)))
    if not out:
        raise InputError("sweep: no parameters given")
    cols = [p.column for p in out]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise InputError(f"sweep: parameter {dup[0]} given twice")
    return out


# ---------------------------------------------------------------- points


@dataclass
class Point:
    id: str
    overrides: dict[str, Any]          # path -> value for apply_overrides
    values: dict[str, Any]             # column -> value as swept (NaN: not overridden)


def point_id(values: Mapping[str, Any]) -> str:
    """Stable id of a point: a hash of its (column, value) pairs; numbers hash by float value."""
    items = []
    for col in sorted(values):
        v = values[col]
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        items.append([col, repr(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)])
    return hashlib.sha1(json.dumps(items).encode()).hexdigest()[:12]


def make_point(params: list[Param], values: list[Any]) -> Point:
    vals = {p.column: v for p, v in zip(params, values)}
    ov = {p.path: p.override(v) for p, v in zip(params, values) if not (isinstance(v, float) and math.isnan(v))}
    return Point(point_id(vals), ov, vals)


def lhs_unit(n_samples: int, n_dims: int, seed: int) -> np.ndarray:
    """Latin hypercube on [0, 1)^d: in each dimension exactly one sample per stratum [k/n, (k+1)/n)."""
    rng = np.random.default_rng(seed)
    u = np.empty((n_samples, n_dims))
    for j in range(n_dims):
        u[:, j] = (rng.permutation(n_samples) + rng.random(n_samples)) / n_samples
    return u


def grid_points(params: list[Param], mode: str = "product", n_samples: int | None = None, seed: int = 0) -> list[Point]:
    """The points of a grid, in order, duplicates (same id) dropped."""
    if mode not in MODES:
        raise InputError(f"sweep: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "product":
        rows = list(itertools.product(*(p.values for p in params)))
    elif mode == "zip":
        lengths = {p.column: len(p.values) for p in params}
        if len(set(lengths.values())) > 1:
            raise InputError(f"sweep: zip needs equally many values per parameter, got {lengths}")
        rows = list(zip(*(p.values for p in params)))
    else:
        if not n_samples or n_samples < 1:
            raise InputError("sweep: lhs needs n_samples >= 1")
        for p in params:
            if any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in p.values):
                raise InputError(f"sweep: lhs needs numeric values, parameter {p.column} has {list(p.values)}")
        u = lhs_unit(n_samples, len(params), seed)
        cols = []
        for j, p in enumerate(params):
            lo, hi = float(min(p.values)), float(max(p.values))
            x = lo + u[:, j] * (hi - lo)
            cols.append([int(round(v)) for v in x] if p.kind == "shift" else [float(v) for v in x])
        rows = list(zip(*cols))
    points, seen = [], set()
    for r in rows:
        pt = make_point(params, list(r))
        if pt.id not in seen:
            seen.add(pt.id)
            points.append(pt)
    return points


def check_points(instance, params: list[Param], points: list[Point]) -> None:
    """Apply every point's overrides before any solve: a bad path or value is a one-line InputError."""
    for p in params:  # paths first, so a typo is reported without point noise
        try:
            apply_overrides(instance, {p.path: p.override(p.values[0])})
        except InputError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure here is the user's spec
            raise InputError(f"parameter {p.column}: {one_line(e)}") from None
    for i, pt in enumerate(points):
        try:
            apply_overrides(instance, pt.overrides)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{one_line(e)} (point {i + 1} of {len(points)}: {_describe(pt.values)})") from None


def _describe(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items() if not (isinstance(v, float) and math.isnan(v)))


# ---------------------------------------------------------------- one point


@dataclass
class Job:
    """What every worker needs: the base instance, the solver route and the options."""

    instance: Any
    solver: Any = None                # None: optimizer.solve; a function; or a class with solve_with
    persistent: bool = True
    options: dict = field(default_factory=dict)
    sites: list[str] = field(default_factory=list)
    token: str = ""                   # identifies (instance, options, solver): worker caches key on it
    fingerprint: str = ""             # hash of the instance


def _routes(solver: Any):
    """(cold solve function, persistent-solver class or None) for a solver argument."""
    if solver is None:
        return solve, PersistentSolver
    if inspect.isclass(solver) and hasattr(solver, "solve_with"):
        return (lambda inst, **o: solver(inst, **o).solve_with(inst)), solver
    return solver, None


def solve_point(variant, job: Job, state: dict):
    """Solve one point: on the worker's persistent solver (built on its first point) when the
    route has one and ``job.persistent``; otherwise a cold solve."""
    cold, persistent_cls = _routes(job.solver)
    if not job.persistent or persistent_cls is None:
        return cold(variant, **job.options)
    try:
        if state.get("persistent") is None:
            state["persistent"] = persistent_cls(variant, **job.options)
        return state["persistent"].solve_with(variant)
    except Exception:
        state.pop("persistent", None)  # a failed re-solve may leave the model half-updated: rebuild next time
        raise


def summarize(out: Any, instance, sites: list[str]) -> dict:
    """A store row from a solver's Result (or a stand-in's dict)."""
    row: dict[str, Any] = {f"converted_mw_{s}": math.nan for s in sites}
    if isinstance(out, Mapping):
        for k, v in out.items():
            if k == "converted_mw" and isinstance(v, Mapping):
                row.update({f"converted_mw_{s}": float(x) for s, x in v.items()})
            elif k in RESULT_COLUMNS or k in TAIL_COLUMNS or k.startswith("converted_mw_"):
                row[k] = v
        if isinstance(row.get("leases_signed"), (list, tuple)):
            row["leases_signed"] = ";".join(row["leases_signed"])
        return row
    status = getattr(out, "status", "")
    row["status"] = str(getattr(status, "value", status))
    npv = getattr(out, "npv_usd", None)
    row["npv_usd"] = npv if npv is not None else getattr(out, "objective_usd", None)
    row["mip_gap"] = getattr(out, "mip_gap", None)
    row["build_s"] = getattr(out, "build_s", None)
    row["solve_s"] = getattr(out, "solve_s", None)
    plan = getattr(out, "plan", None) if getattr(out, "has_plan", True) else None  # a Result without a plan raises on .plan
    if plan is not None:
        digest = first_stage_summary(instance, plan)
        row.update({k: v for k, v in digest.items() if k in TAIL_COLUMNS or k.startswith("converted_mw_")})
    if plan is None:  # infeasible, unbounded, no incumbent, solver error: the point failed
        msg = one_line(getattr(out, "message", "") or "")
        row["error"] = f"no solution (status {row['status']}){': ' + msg if msg else ''}"
    return row


def run_point(job: Job, state: dict, pid: str, overrides: dict) -> dict:
    """One point end to end; an exception becomes the row's ``error`` (the sweep goes on)."""
    t0 = time.perf_counter()
    try:
        variant = apply_overrides(job.instance, overrides) if overrides else job.instance
        row = summarize(solve_point(variant, job, state), variant, job.sites)
    except Exception as e:  # noqa: BLE001 - recorded in the store, not raised
        row = {"status": "error", "error": one_line(f"{type(e).__name__}: {e}") or type(e).__name__}
    row["point_id"] = pid
    row["wall_s"] = time.perf_counter() - t0
    return row


# Worker processes (pool or dask) keep their persistent solver here, per job and thread.
_STATES: dict[tuple[str, int], dict] = {}
_POOL_JOB: Job | None = None


def worker_task(job: Job, pid: str, overrides: dict) -> dict:
    key = (job.token, threading.get_ident())
    for k in [k for k in _STATES if k[0] != job.token]:
        del _STATES[k]  # a new sweep on this worker: drop the old model
    return run_point(job, _STATES.setdefault(key, {}), pid, overrides)


def _pool_init(job: Job) -> None:
    global _POOL_JOB
    _POOL_JOB = job


def _pool_task(pid: str, overrides: dict) -> dict:
    return worker_task(_POOL_JOB, pid, overrides)


# ---------------------------------------------------------------- store


class Store:
    """``DIR/points.csv``: header once, then one fsync'ed line per finished point.
    Without a directory the rows are kept in memory only."""

    def __init__(self, out_dir: str | Path | None, columns: list[str], name: str = "points.csv", text_columns: set[str] | None = None):
        self.columns = columns
        self.text = _STR_COLUMNS | set(text_columns or ())  # kept as text when read back
        self.rows: list[dict] = []
        self.path = None if out_dir is None else Path(out_dir) / name
        self.done: set[str] = set()
        self.failed: set[str] = set()       # stored with an error
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._repair()
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, newline="") as f:
                header = next(csv.reader(f), [])
            if header != columns:
                raise InputError(f"{self.path}: written by a sweep with other columns ({', '.join(header)}); use another output directory")
            stored = self.read()
            self.done = set(stored["point_id"])
            self.failed = set(stored.loc[stored["error"] != "", "point_id"])
        else:
            self._write(columns)

    def _repair(self) -> None:
        """Drop a partial last line (the process was killed mid-write)."""
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def _write(self, values: list) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        with open(self.path, "a", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def append(self, row: dict) -> None:
        values = ["" if _missing(row.get(c)) else row.get(c) for c in self.columns]
        if self.path is None:
            self.rows.append(dict(zip(self.columns, values)))
        else:
            self._write(values)
        self.done.add(row["point_id"])

    def read(self) -> pd.DataFrame:
        if self.path is None:
            df = pd.DataFrame(self.rows, columns=self.columns).astype(str)
        else:
            df = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        for c in df.columns:
            if c not in self.text:
                df[c] = _to_numeric(df[c])
        return df.drop_duplicates("point_id", keep="last")

    def frame(self, points: list[Point]) -> pd.DataFrame:
        """The stored rows of ``points``, in point order."""
        df = self.read()
        order = pd.DataFrame({"point_id": [p.id for p in points]})
        return order.merge(df, on="point_id", how="inner")[self.columns].reset_index(drop=True)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _to_numeric(s: pd.Series) -> pd.Series:
    """Numbers where every non-empty cell is one (empty -> NaN); strings (months) otherwise."""
    num = pd.to_numeric(s.replace("", np.nan), errors="coerce")
    return num if num.notna().sum() == (s != "").sum() else s


# ---------------------------------------------------------------- execution


def _inprocess(job: Job, todo: list[Point], **_) -> Iterator[dict]:
    state: dict = {}
    for p in todo:
        yield run_point(job, state, p.id, p.overrides)


def _processes(job: Job, todo: list[Point], workers: int | None = None, **_) -> Iterator[dict]:
    ex = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_pool_init, initargs=(job,))
    try:
        futures = [ex.submit(_pool_task, p.id, p.overrides) for p in todo]
        for f in as_completed(futures):
            try:
                yield f.result()
            except BrokenProcessPool as e:
                raise RuntimeError(f"a worker process died ({one_line(e) or 'BrokenProcessPool'}); finished points are saved, rerun to resume") from None
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _dask(job: Job, todo: list[Point], workers: int | None = None, scheduler_address: str | None = None, **_) -> Iterator[dict]:
    import logging

    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if scheduler_address:
        client = Client(scheduler_address)
    else:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        job_f = client.scatter(job, broadcast=True)
        futures = {client.submit(worker_task, job_f, p.id, p.overrides, pure=False, key=f"sweep-point-{job.token}-{p.id}"): p.id
                   for p in todo}
        for f in dask_completed(futures):
            try:
                yield f.result()
            except Exception as e:  # noqa: BLE001 - a task that kills its workers (KilledWorker): record and go on
                yield {"point_id": futures[f], "status": "error", "error": one_line(f"{type(e).__name__}: {e}")}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


_EXECUTE = {"inprocess": _inprocess, "processes": _processes, "dask": _dask}


def check_executor(executor: str, workers: int | None) -> None:
    if executor not in EXECUTORS:
        raise InputError(f"sweep: executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError(f"sweep: workers must be a whole number >= 1, got {workers!r}")


def execute(job: Job, todo: list[Point], store: Store, *, executor: str = "inprocess", workers: int | None = None,
            scheduler_address: str | None = None, progress: Reporter | None = None, label: str = "sweep") -> None:
    """Solve ``todo`` and append each row to ``store`` as it finishes; ``progress`` hears of each point."""
    check_executor(executor, workers)
    if not todo:
        return
    rep = reporter(progress)
    n_err = 0
    by_id = {p.id: p for p in todo}
    rep.start(label, len(todo))
    try:
        for row in _EXECUTE[executor](job, todo, workers=workers, scheduler_address=scheduler_address):
            store.append({**by_id[row["point_id"]].values, **row})
            n_err += bool(row.get("error"))
            rep.advance(1, f"{label} ({n_err} failed)" if n_err else label)
    finally:
        rep.finish()


def instance_fingerprint(instance) -> str:
    return hashlib.sha256(instance.model_dump_json().encode()).hexdigest()[:16]


def _solver_name(solver: Any) -> str:
    if solver is None:
        return "optimizer.solve"
    return f"{getattr(solver, '__module__', '?')}.{getattr(solver, '__qualname__', type(solver).__name__)}"


# A sweep row reports neither the baselines, nor shadow prices, nor EVPI/VSS: skip them unless
# asked for. (With the MIP start on, a cold solve still evaluates the baselines to pick its start.)
LEAN_DEFAULTS = {"baselines": False, "shadow_prices": False, "value_of_information": False}


def make_job(instance, solver: Any, persistent: bool, options: dict) -> Job:
    if solver is None:
        options = {**LEAN_DEFAULTS, **options}
    fp = instance_fingerprint(instance)
    opts = json.dumps(options, sort_keys=True, default=repr)
    token = hashlib.sha256(f"{fp}|{opts}|{_solver_name(solver)}|{persistent}".encode()).hexdigest()[:16]
    return Job(instance, solver, persistent, dict(options), [s.id for s in instance.sites], token, fp)


def result_columns(sites: list[str]) -> list[str]:
    return RESULT_COLUMNS + [f"converted_mw_{s}" for s in sites] + TAIL_COLUMNS


def open_store(out_dir: str | Path | None, columns: list[str], meta: dict, prefix: str = "",
               progress: Reporter | None = None) -> Store:
    """Check ``{prefix}sweep.json`` against ``meta`` (same instance), write it, open ``{prefix}points.csv``."""
    if out_dir is not None:
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a directory")
        old_path = out / f"{prefix}sweep.json"
        if old_path.exists():
            try:
                old = json.loads(old_path.read_text())
            except json.JSONDecodeError:
                old = {}
            if "instance_fingerprint" in old and old["instance_fingerprint"] != meta["instance_fingerprint"]:
                raise InputError(f"{out}: holds a sweep of a different instance; use another output directory or delete it")
            if "solve_options" in old and old["solve_options"] != meta["solve_options"]:
                reporter(progress).note(f"warning: {out} holds points solved with other solve options ({old['solve_options']}); "
                                        "they are kept (retry_failed re-solves failed ones)")
    store = Store(out_dir, columns, f"{prefix}points.csv")
    if out_dir is not None:
        tmp = Path(out_dir) / f"{prefix}sweep.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1, default=repr))
        os.replace(tmp, Path(out_dir) / f"{prefix}sweep.json")
    return store


def run_points(instance, points: list[Point], param_columns: list[str], meta: dict, *, solver: Any = None,
               out_dir: str | Path | None = None, executor: str = "inprocess", workers: int | None = None,
               scheduler_address: str | None = None, persistent: bool = True, progress: Reporter | None = None,
               label: str = "sweep", retry_failed: bool = False, store_prefix: str = "", **solve_options) -> pd.DataFrame:
    """Solve the points not yet in the store, then return the stored rows of ``points`` in order."""
    check_executor(executor, workers)
    job = make_job(instance, solver, persistent, solve_options)
    columns = ["point_id", *param_columns, *result_columns(job.sites)]
    meta = {**meta, "instance": instance.name, "instance_fingerprint": job.fingerprint,
            "solve_options": json.loads(json.dumps(job.options, sort_keys=True, default=repr)),
            "solver": _solver_name(solver), "n_points": len(points), "columns": columns}
    store = open_store(out_dir, columns, meta, store_prefix, progress)
    todo = [p for p in points if p.id not in store.done or (retry_failed and p.id in store.failed)]
    if len(todo) < len(points):
        reporter(progress).note(f"{label}: {len(points) - len(todo)} of {len(points)} points already in {store.path}")
    execute(job, todo, store, executor=executor, workers=workers, scheduler_address=scheduler_address,
            progress=progress, label=label)
    return store.frame(points)


def sweep(instance, grid, *, solver: Any = None, out_dir: str | Path | None = None, mode: str = "product",
          n_samples: int | None = None, seed: int = 0, executor: str = "inprocess", workers: int | None = None,
          scheduler_address: str | None = None, persistent: bool = True, progress: Reporter | None = None,
          retry_failed: bool = False, **solve_options) -> pd.DataFrame:
    """Solve ``instance`` at every point of ``grid``; one row per point (see the module docstring).

    ``grid``: ``"PATH=SPEC"`` strings, :class:`Param` objects or ``{path: values | "SPEC"}``.
    ``solver``: None (``optimizer.solve``; its ``PersistentSolver`` when available and
    ``persistent``), a function ``f(instance, **solve_options)`` returning a Result or a dict
    row, or a class ``C(instance, **solve_options)`` with ``.solve_with(instance)``.
    ``executor``: ``inprocess``, ``processes`` (spawned pool of ``workers``) or ``dask``
    (``scheduler_address``, or a LocalCluster of ``workers``, default 2). ``retry_failed``:
    also re-solve points stored with an error (the new row supersedes the old one). Functions passed to
    ``processes``/``dask`` must be importable by the workers (defined in a module).
    """
    params = params_from(grid)
    points = grid_points(params, mode, n_samples, seed)
    check_points(instance, params, points)
    meta = {"mode": mode, "n_samples": n_samples, "seed": seed,
            "params": [{"path": p.path, "kind": p.kind, "column": p.column, "spec": p.spec, "values": list(p.values)} for p in params]}
    return run_points(instance, points, [p.column for p in params], meta, solver=solver, out_dir=out_dir,
                      executor=executor, workers=workers, scheduler_address=scheduler_address,
                      persistent=persistent, progress=progress, label="sweep", retry_failed=retry_failed,
                      **solve_options)


# ---------------------------------------------------------------- executor choice


def pick_executor(executor: str | None, workers: int | None, scheduler: str | None) -> str:
    """CLI default: a scheduler address or ``--workers`` means dask; else in-process."""
    if executor:
        return executor
    return "dask" if scheduler or workers else "inprocess"
