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
refused, different solve options only warn. It says ``complete: true`` (and ``n_stored``)
once every point of the grid is stored; readers (``optimizer.solve.resultdir``) refuse the
store until then.

Several sweeps on one store (two terminals, two cluster jobs): appends and reads of the file
go under ``DIR/.points.csv.lock`` and each point is solved under an exclusive per-point claim
(``DIR/.claims/``), both OS file locks (``filelock``) that die with their process; a sweep
leaves a point another one holds to it and skips points stored meanwhile, so every point is
solved and stored once, and the runs share the work.

Stopping: Ctrl-C stops at once (a HiGHS solve in progress is interrupted through its callbacks,
``optimizer.solve.backend.run_interruptible``); the points in flight are abandoned, never stored
as failed, and the sweep raises KeyboardInterrupt (exit 130). Pool workers ignore Ctrl-C (the
parent ends them) and exit by themselves when their parent dies. A worker that dies raises
:class:`WorkerDied` (exit 7); the points finished before are stored and a rerun resumes.
"""

from __future__ import annotations

import contextlib
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
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from optimizer import manifest
from optimizer.analysis.digest import DIGEST_COLUMNS, DIGEST_STR_COLUMNS, first_stage_summary, param_label
from optimizer.constants import Reporter, reporter
from optimizer.errors import InputError, one_line
from optimizer.instance.overrides import apply_overrides
from optimizer.solve import PersistentSolver, solve
from optimizer.solve.resultdir import STORE_COMPLETE, STORE_META, read_store_meta

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


def _pool_init(job: Job, parent_pid: int) -> None:
    """A pool worker: leaves Ctrl-C to the parent (which stops the sweep and ends its workers)
    and exits by itself when the parent is gone (killed): never an orphan solving for nobody."""
    global _POOL_JOB
    _POOL_JOB = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C pending since the spawn is discarded
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by _Pool.submit's spawn
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True, name="sweep-parent-watch").start()


def _exit_with_parent(parent_pid: int, every_s: float = 0.5) -> None:
    while True:  # HiGHS releases the GIL while it solves, so this thread runs during a solve too
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(every_s)


def _pool_task(pid: str, overrides: dict) -> dict:
    return worker_task(_POOL_JOB, pid, overrides)


# ---------------------------------------------------------------- store


class Store:
    """``DIR/points.csv``: header once, then one fsync'ed line per finished point.
    Without a directory the rows are kept in memory only.

    Several sweeps may share a store (two terminals, two cluster jobs on one --out): every
    read-modify-write of the file (header, repair, append, reading the lines others appended)
    happens under ``DIR/.points.csv.lock`` (``filelock``), and each point is solved under its
    claim (:class:`Claims`), so every point is solved and stored once."""

    def __init__(self, out_dir: str | Path | None, columns: list[str], name: str = "points.csv", lock: FileLock | None = None,
                 text_columns: set[str] | None = None):
        self.columns = columns
        self.text = _STR_COLUMNS | set(text_columns or ())  # kept as text when read back
        self.rows: list[dict] = []
        self.path = None if out_dir is None else Path(out_dir) / name
        self.done: set[str] = set()
        self.failed: set[str] = set()       # stored with an error
        self.added: set[str] = set()        # stored since this Store was opened (by anyone)
        self._offset = 0
        self.lock = None
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = lock if lock is not None else FileLock(self.path.with_name(f".{name}.lock"))
        with self.lock:
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
            self._offset = self.path.stat().st_size

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

    def _tail(self) -> None:
        """Take in the lines appended since the last look (under the lock: whole lines only)."""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for rec in csv.reader(io.StringIO(data[:end].decode())):
            if rec and rec[0] not in ("", "point_id"):
                self.done.add(rec[0])
                self.added.add(rec[0])
        self._offset += end

    def refresh(self) -> None:
        """Learn the points other sweeps stored since the last look."""
        if self.path is not None:
            with self.lock:
                self._tail()

    def append(self, row: dict) -> None:
        values = ["" if _missing(row.get(c)) else row.get(c) for c in self.columns]
        if self.path is None:
            self.rows.append(dict(zip(self.columns, values)))
        else:
            with self.lock:
                self._repair()      # a sweep killed mid-line must not glue its fragment to this row
                self._tail()
                self._write(values)
                self._offset = self.path.stat().st_size
        self.done.add(row["point_id"])
        self.added.add(row["point_id"])

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


class Claims:
    """Which sweep solves which point, when several share a store: an exclusive lock per point
    (``DIR/.claims/<store>-<point_id>.lock``, ``filelock``) held while the point is solved and
    until its row is stored. An OS file lock dies with its process, so a killed sweep leaves
    no claim behind; a claim file is deleted once its row is stored (a sweep that takes a
    deleted claim's place then finds the point stored and skips it)."""

    def __init__(self, store: Store):
        self.dir = None if store.path is None else store.path.parent / ".claims"
        self.stem = "" if store.path is None else store.path.stem
        self.held: dict[str, FileLock] = {}

    def _path(self, pid: str) -> Path:
        return self.dir / f"{self.stem}-{pid}.lock"

    def take(self, pid: str) -> bool:
        """Claim ``pid`` now if no other sweep holds it."""
        if self.dir is None:
            return True
        self.dir.mkdir(exist_ok=True)
        lock = FileLock(self._path(pid), blocking=False)
        try:
            lock.acquire()
        except Timeout:
            return False
        self.held[pid] = lock
        return True

    def release(self, pid: str, stored: bool) -> None:
        lock = self.held.pop(pid, None)
        if lock is None:
            return
        if stored:
            with contextlib.suppress(OSError):
                self._path(pid).unlink()
        lock.release()

    def release_all(self) -> None:
        for pid in list(self.held):
            self.release(pid, stored=False)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _to_numeric(s: pd.Series) -> pd.Series:
    """Numbers where every non-empty cell is one (empty -> NaN); strings (months) otherwise."""
    num = pd.to_numeric(s.replace("", np.nan), errors="coerce")
    return num if num.notna().sum() == (s != "").sum() else s


# ---------------------------------------------------------------- execution


class WorkerDied(RuntimeError):
    """A worker process died while solving (killed, out of memory): the points finished before
    are stored and the point it was solving is not; rerunning the sweep resumes."""

    def __init__(self, what: str):
        super().__init__(f"{what}; finished points are saved, rerun to resume")


class _InProcess:
    """Points solved one after the other in this process (one persistent model)."""

    def __init__(self, job: Job, workers: int | None = None, scheduler_address: str | None = None):
        self.job, self.state, self.pending = job, {}, []
        self.capacity = 1

    def submit(self, p: Point) -> None:
        self.pending.append(p)

    def finished(self, timeout: float | None) -> list[dict]:
        p = self.pending.pop(0)
        return [run_point(self.job, self.state, p.id, p.overrides)]

    def close(self, abort: bool) -> None:
        self.pending.clear()


class _Pool:
    """A spawned process pool; at most ``workers`` points in flight, so an interrupted sweep
    has little to cancel. Workers ignore Ctrl-C and exit with their parent (``_pool_init``)."""

    def __init__(self, job: Job, workers: int | None = None, scheduler_address: str | None = None):
        self.capacity = workers or os.cpu_count() or 1
        self.ex = ProcessPoolExecutor(max_workers=self.capacity, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_pool_init, initargs=(job, os.getpid()))
        self.futures: dict = {}

    def submit(self, p: Point) -> None:
        # A submit may spawn a worker: it must start deaf to Ctrl-C, so that a Ctrl-C while it
        # is still importing cannot kill it noisily. SIGINT is *blocked* (not ignored) in this
        # thread meanwhile: the signal mask is inherited across fork and exec, so the worker
        # starts with SIGINT blocked until _pool_init ignores it; and a Ctrl-C reaching this
        # process in the window stays pending (or is taken by another thread) and is raised
        # when the mask is restored, never lost, as it was when SIGINT was ignored here. The
        # standard library starts its resource tracker the same way (multiprocessing.resource_tracker).
        prev = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.futures[self.ex.submit(_pool_task, p.id, p.overrides)] = p.id
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, prev)  # a pending Ctrl-C is raised here

    def finished(self, timeout: float | None) -> list[dict]:
        done, _ = wait_futures(list(self.futures), timeout=timeout, return_when=FIRST_COMPLETED)
        rows = []
        for f in done:
            self.futures.pop(f)
            try:
                rows.append(f.result())
            except BrokenProcessPool as e:
                raise WorkerDied(f"a worker process died ({one_line(e) or 'BrokenProcessPool'})") from None
        return rows

    def close(self, abort: bool) -> None:
        if not abort:
            self.ex.shutdown(wait=True)
            return
        for f in self.futures:
            f.cancel()
        # the points in flight are not stored: end their solves now rather than after minutes
        # (ProcessPoolExecutor has no public kill before Python 3.14)
        for proc in list((getattr(self.ex, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                proc.kill()
        self.ex.shutdown(wait=False, cancel_futures=True)


class _Dask:
    """dask.distributed: a scheduler address, or a LocalCluster of ``workers`` (default 2).
    A task dask gave up on after killing its workers (KilledWorker) is stored as a failed point
    (it is the point's doing); any other lost task (cancelled, connection lost) stops the sweep."""

    def __init__(self, job: Job, workers: int | None = None, scheduler_address: str | None = None):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler_address:
            self.client = Client(scheduler_address)
        else:
            self.cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                        dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.job, self.job_f = job, self.client.scatter(job, broadcast=True)
        self.capacity = max(1, sum(self.client.nthreads().values()))
        self.futures: dict = {}

    def submit(self, p: Point) -> None:
        f = self.client.submit(worker_task, self.job_f, p.id, p.overrides, pure=False, key=f"sweep-point-{self.job.token}-{p.id}")
        self.futures[f] = p.id

    def finished(self, timeout: float | None) -> list[dict]:
        from distributed import KilledWorker
        from distributed import wait as dask_wait

        try:
            done = dask_wait(list(self.futures), timeout=timeout, return_when="FIRST_COMPLETED").done
        except TimeoutError:
            return []
        rows = []
        for f in done:
            pid = self.futures.pop(f)
            try:
                rows.append(f.result())
            except KilledWorker as e:
                rows.append({"point_id": pid, "status": "error", "error": one_line(f"KilledWorker: {e}")})
            except Exception as e:  # noqa: BLE001 - lost, not failed: the point is not stored
                raise WorkerDied(f"a dask task was lost ({one_line(f'{type(e).__name__}: {e}')})") from None
        return rows

    def close(self, abort: bool) -> None:
        if abort:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.futures))
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


_RUNNERS = {"inprocess": _InProcess, "processes": _Pool, "dask": _Dask}


def check_executor(executor: str, workers: int | None) -> None:
    if executor not in EXECUTORS:
        raise InputError(f"sweep: executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputError(f"sweep: workers must be a whole number >= 1, got {workers!r}")


def execute(job: Job, todo: list[Point], store: Store, *, executor: str = "inprocess", workers: int | None = None,
            scheduler_address: str | None = None, progress: Reporter | None = None, label: str = "sweep",
            poll_s: float = 0.5) -> None:
    """Solve ``todo`` and append each row to ``store`` as it finishes; ``progress`` hears of each point.

    Each point is solved under its claim (:class:`Claims`); a point another sweep on the same
    store holds is left to it (and taken over if that sweep dies without storing it); a point
    another sweep stored meanwhile is skipped. Ctrl-C (KeyboardInterrupt) stops at once: points
    in flight are abandoned, never stored as failed; a dead worker raises :class:`WorkerDied`."""
    check_executor(executor, workers)
    if not todo:
        return
    rep = reporter(progress)
    claims = Claims(store)
    by_id = {p.id: p for p in todo}
    queue, waiting, in_flight = list(todo), [], set()
    n_err, told = 0, False
    rep.start(label, len(todo))
    runner, finished = None, False

    def stored_elsewhere(p: Point) -> bool:
        return p.id in store.added and p.id not in in_flight

    def next_point() -> Point | None:
        while queue:
            p = queue.pop(0)
            if not claims.take(p.id):
                waiting.append(p)
                continue
            store.refresh()
            if stored_elsewhere(p):          # stored by another sweep just before our claim
                claims.release(p.id, stored=True)
                rep.advance(1)
                continue
            return p
        for p in list(waiting):              # a sweep that held it has stored it, or died
            if claims.take(p.id):
                waiting.remove(p)
                store.refresh()
                if stored_elsewhere(p):
                    claims.release(p.id, stored=True)
                    rep.advance(1)
                    continue
                return p
        return None

    try:
        runner = _RUNNERS[executor](job, workers, scheduler_address)
        while queue or waiting or in_flight:
            while len(in_flight) < runner.capacity and (p := next_point()) is not None:
                runner.submit(p)
                in_flight.add(p.id)
            if not in_flight:
                if not told:
                    rep.note(f"{label}: {len(waiting)} point(s) are being solved by another sweep on {store.path.parent}; waiting for them")
                    told = True
                time.sleep(poll_s)
                continue
            for row in runner.finished(poll_s if waiting else None):
                pid = row["point_id"]
                store.append({**by_id[pid].values, **row})
                claims.release(pid, stored=True)
                in_flight.discard(pid)
                n_err += bool(row.get("error"))
                rep.advance(1, f"{label} ({n_err} failed)" if n_err else label)
        finished = True
    finally:
        claims.release_all()
        if runner is not None:
            runner.close(abort=not finished)
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
    """Check ``{prefix}sweep.json`` against ``meta`` (same instance), open ``{prefix}points.csv``
    and write ``meta`` marked incomplete, all under the store's lock."""
    if out_dir is None:
        return Store(None, columns, f"{prefix}points.csv")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    lock = FileLock(out / f".{prefix}points.csv.lock")
    with lock:
        old = read_store_meta(out, prefix) or {}
        if "instance_fingerprint" in old and old["instance_fingerprint"] != meta["instance_fingerprint"]:
            raise InputError(f"{out}: holds a sweep of a different instance; use another output directory or delete it")
        if "solve_options" in old and old["solve_options"] != meta["solve_options"]:
            reporter(progress).note(f"warning: {out} holds points solved with other solve options ({old['solve_options']}); "
                                    "they are kept (retry_failed re-solves failed ones)")
        store = Store(out_dir, columns, f"{prefix}points.csv", lock=lock)
        _write_meta(out, prefix, {**meta, STORE_COMPLETE: False})
    return store


def _write_meta(out: Path, prefix: str, meta: dict) -> None:
    manifest.write_text(out / f"{prefix}{STORE_META}", json.dumps(meta, indent=1, default=repr))


def close_store(store: Store, points: list[Point], meta: dict, prefix: str = "") -> None:
    """Record in ``{prefix}sweep.json`` how many of the grid's points are stored, and whether
    all are (then ``STORE_COMPLETE`` is true and readers accept the store)."""
    if store.path is None:
        return
    with store.lock:
        store.refresh()
        n = sum(p.id in store.done for p in points)
        _write_meta(store.path.parent, prefix, {**meta, "n_stored": n, STORE_COMPLETE: n == len(points)})


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
    try:
        execute(job, todo, store, executor=executor, workers=workers, scheduler_address=scheduler_address,
                progress=progress, label=label)
    finally:  # also when interrupted: sweep.json then tells how many points are stored
        close_store(store, points, meta, store_prefix)
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
