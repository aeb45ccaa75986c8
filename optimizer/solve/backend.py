"""Hand a linear Pyomo model to HiGHS in memory, solve it, and re-solve it after Param changes.

Route: `standard_form.compile_model` gives the matrix as a scipy CSC array (the same arrays as
Pyomo's `LinearStandardFormCompiler`, faster); one `Highs.passModel` call with raw numpy arrays
hands it over.
Generic over any linear model: nothing here knows the allocation MILP.

Status strings (ours, not HiGHS's), decided in `_map_status`:
  optimal                    HiGHS proved optimality: an LP optimum, or a MIP incumbent within the
                             requested relative gap (HiGHS's own stopping rule, kOptimal).
  feasible_within_gap        HiGHS stopped on a limit (time, iterations, ...) or an unclear status
                             but the incumbent's gap is already within the requested gap.
  time_limit_with_incumbent  stopped by a limit with an incumbent whose gap is above the requested one.
  time_limit_no_solution     stopped by a limit with no feasible point.
  infeasible / unbounded     proven; HiGHS's "unbounded or infeasible" is settled by a zero-cost re-solve.
  error                      anything else (load, presolve, solve errors; unknown without a solution).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse  # noqa: F401  imported up front: otherwise the first compile pays ~1 s for it
from pyomo.common.collections import ComponentMap

from optimizer.constants import Status
from optimizer.solve.fixopt import fix_and_optimize
from optimizer.solve.heap import TRIM_AFTER_S, release_free_memory, trimming
from optimizer.solve.portfolio import PORTFOLIO_DELAY_S, PORTFOLIO_GRACE_S, PORTFOLIO_MIN_LEFT_S, Companion
from optimizer.solve.standard_form import Recompiler, StandardForm, compile_model

STATUSES = tuple(s.value for s in Status if s is not Status.EVALUATED)

_MS = highspy.HighsModelStatus
_LIMIT_STATUSES = {  # kInterrupt is not a limit: run_interruptible raises KeyboardInterrupt for it (request_stop: a limit)
    _MS.kTimeLimit,
    _MS.kIterationLimit,
    _MS.kSolutionLimit,
    _MS.kObjectiveBound,
    _MS.kObjectiveTarget,
    _MS.kUnknown,
}
_SOLUTION_FEASIBLE = 2  # HiGHS kSolutionStatusFeasible
_COLWISE = int(highspy.MatrixFormat.kColwise)
_INF = math.inf
LOG_EVERY_S = 2.0  # seconds between two MIP progress reports (HighsBackend.solve's on_log)
# A lazy solve with a time limit keeps this share of it (at most REPAIR_RESERVE_MAX_S) for the repair
# LP of the last round's incumbent and the polish of the answer (`_polish`: about 2 s on the medium
# benchmark): without it a round stopped by the limit with a plan that breaks a lazy bound was never
# repaired, and the answer fell back to an earlier plan or the MIP start. (10 % cost small seed 1 its
# second round: 0.27 % -> 9.4 % gap at 10 s.)
REPAIR_RESERVE_SHARE = 0.05
REPAIR_RESERVE_MAX_S = 30.0
# A round whose latest incumbent breaks a lazy bound is stopped once it has run this share of the
# time limit: its plan is turned into a full-feasible one by the neighbourhood search below
# (`_neighbourhood`) and the next round, with the broken bounds added, starts from that.
ROUND_SHARE = 0.4
# ... unless its own gap is already within this multiple of the requested gap: such a round usually
# ends soon (small benchmark seed 1: 0.68 % at 4.3 s of 10, done at 5 s), and stopping it throws
# away the search the next round would need.
ROUND_SHARE_GAP_FACTOR = 4.0
# The neighbourhood search (RINS on the full model: integers where the round's incumbent agrees with
# the LP relaxation under every lazy bound fixed, the rest free) gets at most this share of the limit.
NEIGHBOURHOOD_SHARE = 0.25
# ... of which the LP relaxation it needs gets at most this share: on the large benchmark that LP
# (every floor) does not finish within any limit we run, and the time is fixed-and-optimize's
# (`fixopt`) when the solve has column blocks; on medium it takes ~4 s of a 15 s search.
RELAXATION_SHARE = 0.5
POLISH_MIN_S = 5.0
# solve(lazy_lp_rounds=True): before the first MIP round, the floors the LP relaxation breaks are
# enforced, round by round (at most LP_ROUNDS_MAX LPs, LP_ROUNDS_SHARE of the time limit). Measured
# (benchmarks/README.md): small benchmark 3/3 within 10 s with it (2/3 without), but on medium the
# first round then rarely finds a plan (median gap at 60 s 34.9 % with it, 6.2 % without): off by default.
LP_ROUNDS_MAX = 10
LP_ROUNDS_SHARE = 0.1


def repair_reserve_s(time_limit_s: float | None) -> float:
    """Seconds of a lazy solve's `time_limit_s` kept for the last repair LP (0 without a limit)."""
    return 0.0 if time_limit_s is None else min(REPAIR_RESERVE_SHARE * time_limit_s, REPAIR_RESERVE_MAX_S)


# HiGHS runs on one process-wide scheduler sized by the first run's "threads" option; a later run
# asking for another size fails unless the scheduler is reset. Not safe while another thread solves.
_scheduler_threads = 0  # HiGHS default: 0 = let HiGHS choose


@dataclass
class BackendResult:
    status: str  # one of STATUSES
    objective: float  # model's own sense and scale, constant included; nan without a solution
    best_bound: float  # MIP dual bound; the objective for a solved LP; nan when unknown
    gap: float  # HiGHS mip_gap: |objective - bound| / |objective|; 0 for a solved LP; inf without one
    solve_s: float
    values: np.ndarray | None  # column values in column order; None without a feasible point
    highs_status: str  # HiGHS model status name, for diagnosis
    lazy_path: str = ""  # solve(lazy_lower=...): "relaxation", "row generation", "repaired" (see _solve_lazy)
    lazy_rounds: int = 0  # solve(lazy_lower=...): MIP rounds run
    lazy_rows: int = 0  # solve(lazy_lower=...): lazy bounds enforced in the last round

    @property
    def has_solution(self) -> bool:
        return self.values is not None


@dataclass
class DualResult:
    status: str
    objective: float
    row_duals: ComponentMap  # ConstraintData -> d(objective)/d(rhs), model's objective sense
    reduced_costs: ComponentMap  # VarData -> d(objective)/d(bound or fixed value)
    row_dual_array: np.ndarray
    col_dual_array: np.ndarray


@dataclass
class UpdateStats:
    full_repass: bool
    changed_costs: int
    changed_col_bounds: int
    changed_row_bounds: int
    changed_coeffs: int
    update_s: float
    recompiled: bool = False  # the arrays came from standard_form.Recompiler (changed rows only)


def _same_structure(old: StandardForm, new: StandardForm) -> bool:
    return (
        len(old.columns) == len(new.columns)
        and len(old.rows) == len(new.rows)
        and all(a is b for a, b in zip(old.columns, new.columns))
        and all(a is b for a, b in zip(old.rows, new.rows))
        and np.array_equal(old.A.indptr, new.A.indptr)
        and np.array_equal(old.A.indices, new.A.indices)
    )


class HighsBackend:
    """One Pyomo model held in one highspy.Highs object; see the module docstring for statuses."""

    def __init__(self, model: pyo.ConcreteModel):
        t0 = time.perf_counter()
        self.model = model
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self._pending_start: tuple[np.ndarray, np.ndarray] | None = None
        self._stop_requested = False  # request_stop() during the current run
        self._x: np.ndarray | None = None
        self.last_result: BackendResult | None = None
        self._extra_options: dict = {}  # raw HiGHS options of the last solve (solve(highs_options=...))
        self._default_options: dict = {}  # their HiGHS defaults, to restore
        self._pass(compile_model(model))
        if time.perf_counter() - t0 >= TRIM_AFTER_S:
            release_free_memory()  # a large model's compile temporaries (solve/heap.py)
        self.handoff_s = time.perf_counter() - t0

    # ---- model hand-off -------------------------------------------------------------------
    def _pass(self, sf: StandardForm) -> None:
        A = sf.A
        status = self.highs.passModel(
            len(sf.columns), len(sf.rows), A.nnz, _COLWISE, sf.sense, sf.offset,
            sf.cost, sf.col_lower, sf.col_upper, sf.row_lower, sf.row_upper,
            A.indptr.astype(np.int32, copy=False), A.indices.astype(np.int32, copy=False),
            A.data, sf.integrality,
        )  # fmt: skip
        if status == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS rejected the model in passModel (see its log with log=True)")
        self._sf = sf
        self._col_of = {id(v): i for i, v in enumerate(sf.columns)}
        self._row_of: dict[int, int] | None = None  # built on first row_index() call
        self._int_idx = np.flatnonzero(sf.integrality).astype(np.int32)
        self._lazy_active: dict[bytes, np.ndarray] = {}  # lazy columns -> those enforced when the last lazy solve ended
        self._recompiler: Recompiler | None = None  # built by the first update(params_only=True) after a full compile

    @property
    def columns(self) -> list:
        return self._sf.columns

    @property
    def rows(self) -> list:
        return self._sf.rows

    @property
    def is_mip(self) -> bool:
        return self._sf.is_mip

    @property
    def integer_columns(self) -> np.ndarray:
        """Indices of the integer columns."""
        return self._int_idx

    def column_index(self, var) -> int | None:
        """Column of a VarData; None when it is not a column (fixed, or in no active expression)."""
        return self._col_of.get(id(var))

    def row_index(self, con) -> int | None:
        """Row of a ConstraintData (a ranged constraint is one row); None when it has no row."""
        if self._row_of is None:
            self._row_of = {id(c): i for i, c in enumerate(self._sf.rows)}
        return self._row_of.get(id(con))

    @property
    def n_cols(self) -> int:
        return len(self._sf.columns)

    @property
    def n_rows(self) -> int:
        return len(self._sf.rows)

    # ---- solving --------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Stop the running HiGHS call at its next check as a limit, not a user interrupt: a MIP
        returns its incumbent and bound like a time limit (status feasible_within_gap when within
        the gap). For HiGHS callbacks: a CPU-time budget, row generation's own stopping rule."""
        self._stop_requested = True

    def _run(self, h: highspy.Highs | None = None) -> highspy.HighsStatus:
        """One HiGHS run of `h` (default: the backend's): Ctrl-C raises KeyboardInterrupt
        (`run_interruptible`), `request_stop` does not. What HiGHS frees goes back to the system
        while a long run goes on and at its end (solve/heap.py, `trimming`), so that neither the
        run's later phases nor the next run grow on top of memory nobody holds."""
        self._stop_requested = False
        with trimming():
            return run_interruptible(self.highs if h is None else h, planned=lambda: self._stop_requested)

    def _on_scratch(self, work):
        """``work(h)`` on a copy of the model as it stands (bounds, integrality, costs) and of the
        options, in its own Highs object ``h``, dropped when ``work`` returns: for an LP between MIP
        rounds. HiGHS keeps an LP's simplex data (factorization, row-wise copies) in its Highs
        object after the run, about 320 MB on the large benchmark, on top of which every later MIP
        round would grow; the copy takes it away with it (a MIP's own working memory is freed at the
        end of its run). ``work`` must not keep ``h``: once it returns, the copy is the last
        reference, and its memory goes back to the system (solve/heap.py)."""
        h = highspy.Highs()
        h.passOptions(self.highs.getOptions())
        h.passModel(self.highs.getLp())
        try:
            return work(h)
        finally:
            del h
            release_free_memory()

    def _set_options(self, time_limit_s, mip_gap, threads, presolve, log, highs_options=None) -> None:
        global _scheduler_threads
        h = self.highs
        # options a previous solve set and this one does not: back to HiGHS's defaults
        for name in set(self._extra_options) - set(highs_options or {}):
            h.setOptionValue(name, self._default_options[name])
        for name, value in (highs_options or {}).items():
            if name not in self._default_options:
                got = h.getOptionValue(name)  # highspy 1.15: (status, value)
                status, default = got if isinstance(got, tuple) else (highspy.HighsStatus.kOk, got)
                if status == highspy.HighsStatus.kError:
                    raise ValueError(f"highs_options.{name}: not a HiGHS option")
                self._default_options[name] = default
            if h.setOptionValue(name, value) == highspy.HighsStatus.kError:
                raise ValueError(f"highs_options.{name}: HiGHS rejected the value {value!r}")
        self._extra_options = dict(highs_options or {})
        h.setOptionValue("output_flag", bool(log))
        h.setOptionValue("time_limit", _INF if time_limit_s is None else float(time_limit_s))
        h.setOptionValue("mip_rel_gap", float(mip_gap))
        h.setOptionValue("presolve", "on" if presolve else "off")
        if threads is not None and int(threads) != _scheduler_threads:
            highspy.Highs.resetGlobalScheduler(True)  # the next run builds it with the new size
            _scheduler_threads = int(threads)
        h.setOptionValue("threads", _scheduler_threads)

    def _start_arrays(self, mip_start) -> tuple[np.ndarray, np.ndarray] | None:
        """Sparse (indices, values) for setSolution; Vars that are not columns (fixed, unused) are skipped."""
        idx, vals = [], []
        pairs = mip_start.items() if hasattr(mip_start, "items") else mip_start
        for v, x in pairs:
            i = self._col_of.get(id(v))
            if i is not None and x is not None:
                idx.append(i)
                vals.append(float(x))
        if not idx:
            return None
        idx = np.asarray(idx, dtype=np.int32)
        # HiGHS rejects a whole start with any value outside its bounds: clip to the bounds
        vals = np.clip(np.asarray(vals), self._sf.col_lower[idx], self._sf.col_upper[idx])
        return idx, vals

    def solve(
        self,
        time_limit_s: float | None = None,
        mip_gap: float = 0.005,
        threads: int | None = None,
        mip_start=None,
        presolve: bool = True,
        log: bool = False,
        highs_options: dict | None = None,
        lazy_lower=None,
        on_log=None,
        lazy_window: int = 1,
        polish_free=None,
        lazy_lp_rounds: bool = False,
        portfolio: bool = False,
        blocks=None,
    ) -> BackendResult:
        """Solve. `mip_start`: a ComponentMap VarData -> value, or (VarData, value) pairs (VarData is
        not hashable, so no plain dict). It may be partial: HiGHS fixes the given integer values and
        completes the rest by an LP / a small sub-MIP (node limit: option mip_max_start_nodes); an
        infeasible start is dropped with a warning. Ignored for an LP.

        `lazy_lower`: column indices whose lower bounds are enforced lazily, by row generation (see
        `_solve_lazy`): a sequence of ints (one chain), or a sequence of chains (e.g. one per scenario,
        months in order). `lazy_window`: neighbours either side in its chain enforced with a violated one.
        `lazy_lp_rounds`: first enforce the lazy bounds the LP relaxation breaks (`_lp_rounds`).
        `portfolio`: with `lazy_lower`, also solve the full model in a child process (`_solve_lazy`).
        `blocks`: with `lazy_lower`, a block label per column (an int >= 0, or -1 for columns every
        block shares) for fix-and-optimize (`fixopt`), the neighbourhood search's fallback.
        `on_log`: called with {seconds, incumbent, bound, gap, nodes} (objective units) at most once
        per ``LOG_EVERY_S`` seconds of the MIP search, for progress reports (HiGHS's MIP interrupt
        callback, which fires whether or not HiGHS prints its log); its errors are ignored.

        `polish_free`: integer column indices of the recourse (decisions a plan's first stage does
        not fix, e.g. keep-or-retire at the end). With it, a MIP answer not proven optimal with gap 0
        is polished (`_polish`): its other integers fixed, those and the continuous part re-optimised,
        so that the plan's recourse is the best for its commitments (a heuristic's incumbent may keep
        a fleet worth less than its salvage; the independent evaluator never does)."""
        if on_log is None or not self.is_mip:
            r = self._solve_dispatch(time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options, lazy_lower,
                                     lazy_window, lazy_lp_rounds, portfolio, blocks)
            return self._polished(r, polish_free, time_limit_s, mip_gap, threads)
        last = [time.perf_counter()]

        def relay(e) -> None:
            now = time.perf_counter()
            if now - last[0] < LOG_EVERY_S:
                return
            last[0] = now
            try:
                d = e.data_out
                on_log({"seconds": float(d.running_time), "incumbent": float(d.mip_primal_bound),
                        "bound": float(d.mip_dual_bound), "gap": float(d.mip_gap), "nodes": int(d.mip_node_count)})
            except Exception:  # noqa: BLE001 - a progress display must never stop a solve
                pass

        self.highs.cbMipInterrupt.subscribe(relay)
        try:
            r = self._solve_dispatch(time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options, lazy_lower,
                                     lazy_window, lazy_lp_rounds, portfolio, blocks)
        finally:
            self.highs.cbMipInterrupt.unsubscribe(relay)
        return self._polished(r, polish_free, time_limit_s, mip_gap, threads)

    def _polished(self, r: BackendResult, free, time_limit_s, mip_gap, threads) -> BackendResult:
        """`r`, or `r` with its recourse re-optimised (`_polish`) when that is better."""
        if free is None or not self.is_mip or not r.has_solution or r.gap == 0:
            return r
        # at least POLISH_MIN_S: the polish is what makes the answer's recourse the evaluator's, so
        # it may overrun a short limit (it takes milliseconds on small models, ~2 s on medium ones)
        budget = None if time_limit_s is None else max(POLISH_MIN_S, repair_reserve_s(time_limit_s))
        t0 = time.perf_counter()
        p = self._polish(r.values, np.asarray(free, dtype=np.int32), budget, threads)
        maximize = self._sf.sense == -1
        if p is not None and (p[0] > r.objective if maximize else p[0] < r.objective):
            self._replace(r, p[0], p[1], mip_gap)
        r.solve_s += time.perf_counter() - t0
        return r

    def adopt(self, r: BackendResult, changes, mip_gap: float) -> bool:
        """Replace `r`'s plan by itself with `changes` [(VarData, value)] applied, when the result
        breaks no column bound or row by more than `r`'s plan does (or than HiGHS's primal
        feasibility tolerance, 1e-7 x the bound's size above 1), keeps its integers whole and is
        strictly better; its gap and status follow. Returns whether it did. For a model layer's
        exact completion of a plan (e.g. `fleet.settle_terminal_mining`), checked here on the
        arrays HiGHS solved."""
        if not changes or not r.has_solution:
            return False
        sf, ints = self._sf, self._int_idx
        x = r.values.copy()
        x[ints] = np.round(x[ints])  # as load_solution writes them
        y = x.copy()
        for v, value in changes:
            j = self.column_index(v)
            if j is None:
                return False
            y[j] = value

        def worse(new, old, lo, hi) -> bool:
            """Whether `new` breaks a bound by more than `old` does and than 1e-7 (x max(1, |bound|))."""
            with np.errstate(invalid="ignore"):
                e_new = np.maximum(np.maximum(lo - new, 0.0), np.maximum(new - hi, 0.0))
                e_old = np.maximum(np.maximum(lo - old, 0.0), np.maximum(old - hi, 0.0))
            scale = np.maximum(1.0, np.maximum(np.abs(np.where(np.isfinite(lo), lo, 0.0)), np.abs(np.where(np.isfinite(hi), hi, 0.0))))
            return bool(np.any(e_new > np.maximum(e_old, 1e-7 * scale)))

        if worse(y, x, sf.col_lower, sf.col_upper) or worse(sf.A @ y, sf.A @ x, sf.row_lower, sf.row_upper):
            return False
        if not np.all(y[ints] == np.round(y[ints])):
            return False
        obj, before = float(sf.cost @ y + sf.offset), float(sf.cost @ x + sf.offset)
        if not (obj > before if sf.sense == -1 else obj < before):
            return False
        self._replace(r, obj, y, mip_gap)
        return True

    def _replace(self, r: BackendResult, objective: float, values: np.ndarray, mip_gap: float) -> None:
        """`r` with the plan `values` (objective `objective`): integers rounded, gap and status anew."""
        r.objective, r.values = objective, values
        r.values[self._int_idx] = np.round(r.values[self._int_idx])
        r.gap = _rel_gap(r.objective, r.best_bound) if math.isfinite(r.best_bound) else r.gap
        if r.status == "time_limit_with_incumbent" and r.gap <= mip_gap:
            r.status = "feasible_within_gap"
        self._x = r.values

    def _polish(self, x: np.ndarray, free: np.ndarray, time_limit_s, threads) -> tuple[float, np.ndarray] | None:
        """The MIP under the current bounds with every integer column except `free` fixed at `x`
        (rounded): (objective, values) of the best plan found, or None.

        Under a time limit, first the LP with every integer fixed at `x` (`_repair_lp`: the best
        continuous part for those integers), then the MIP, started from the better of the two, for
        the time left. Why the LP first: a heuristic's plan can leave much of its continuous part
        (operations, sales, draws) short of the best its integers allow, and on the large benchmark
        the MIP's own root LP does not finish within a polish's budget while this LP takes ~14 s
        (benchmarks/README.md, ninth pass: +248 M$ on a 3,798 M$ plan). Without a limit the MIP
        runs to its optimum, which is at least the LP's (the LP is the MIP with its free integers
        fixed at `x`'s values), so the LP is skipped (sweep points: benchmarks/README.md, tenth pass)."""
        t0 = time.perf_counter()
        maximize = self._sf.sense == -1
        best = self._repair_lp(x, time_limit_s) if time_limit_s is not None else None
        start = x.copy() if best is None else best[1].copy()
        if time_limit_s is not None:
            time_limit_s -= time.perf_counter() - t0
            if time_limit_s < 0.5:
                return best
        ints = self._int_idx
        fix = np.setdiff1d(ints, free).astype(np.int32)
        start[fix] = np.round(start[fix])
        sub = self._sub_mip(fix, start[fix], time_limit_s, 0.0, threads, start)
        if sub is not None and (best is None or (sub[0] > best[0] if maximize else sub[0] < best[0])):
            best = sub
        return best

    def _sub_mip(self, fix: np.ndarray, val: np.ndarray, time_limit_s, mip_gap, threads,
                 start: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
        """The MIP under the current bounds with the columns `fix` fixed at `val` (given back after),
        from `start` when given: (objective, values) of its best plan, or None."""
        h, sf = self.highs, self._sf
        self._set_options(time_limit_s, mip_gap, threads, True, False, self._extra_options)
        h.changeColsBounds(fix.size, fix, val, val)
        try:
            if start is not None:
                h.setSolution(len(start), np.arange(len(start), dtype=np.int32), start)
            self._run()
            info = h.getInfo()
            ok = info.primal_solution_status == _SOLUTION_FEASIBLE
            return (float(info.objective_function_value), np.asarray(h.getSolution().col_value, dtype=np.float64)) if ok else None
        finally:
            h.changeColsBounds(fix.size, fix, sf.col_lower[fix], sf.col_upper[fix])

    def _solve_dispatch(self, time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options, lazy_lower,
                        lazy_window=1, lazy_lp_rounds=False, portfolio=False, blocks=None) -> BackendResult:
        chains = _chains(lazy_lower)
        if chains and self.is_mip:
            if lazy_window < 0:
                raise ValueError(f"lazy_window: must be >= 0, got {lazy_window}")
            if blocks is not None:
                blocks = np.asarray(blocks, dtype=np.int32)
                if blocks.shape != (self.n_cols,):
                    raise ValueError(f"blocks: one label per column ({self.n_cols}), got shape {blocks.shape}")
            return self._solve_lazy(chains, int(lazy_window), time_limit_s, mip_gap, threads, mip_start, presolve, log,
                                    highs_options, lazy_lp_rounds, portfolio, blocks)
        return self._solve_once(time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options)

    def _solve_once(self, time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options) -> BackendResult:
        h = self.highs
        self._set_options(time_limit_s, mip_gap, threads, presolve, log, highs_options)
        start = self._start_arrays(mip_start) if mip_start else self._pending_start
        self._pending_start = None
        if start is not None and self.is_mip:
            idx, vals = start
            h.setSolution(len(idx), idx, vals)  # after all model changes: they discard a stored solution
        t0 = time.perf_counter()
        run_status = self._run()
        solve_s = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        has_sol = info.primal_solution_status == _SOLUTION_FEASIBLE
        if self.is_mip:
            gap = float(info.mip_gap) if has_sol else _INF
            bound = float(info.mip_dual_bound)
        else:
            gap = 0.0 if ms == _MS.kOptimal else _INF
            bound = float(info.objective_function_value) if ms == _MS.kOptimal else math.nan
        if run_status == highspy.HighsStatus.kError:
            # e.g. run() refused to start: model status and info are then stale from the last run
            status, has_sol, gap, bound = "error", False, _INF, math.nan
        else:
            stopped = ms == _MS.kInterrupt and self._stop_requested  # request_stop(): a limit
            status = _map_status(_MS.kSolutionLimit if stopped else ms, has_sol, gap, mip_gap, self.n_cols)
        if status == "unbounded_or_infeasible":
            status = self._settle_unbounded_or_infeasible()
        if status in ("infeasible", "unbounded"):
            has_sol = False
        values = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
        objective = float(info.objective_function_value) if has_sol else math.nan
        if self.n_cols == 0:  # everything fixed: HiGHS reports an empty model, the value is the constant
            objective, bound, gap, values = self._sf.offset, self._sf.offset, 0.0, np.zeros(0)
        self._x = values
        self.last_result = BackendResult(
            status=status,
            objective=objective,
            best_bound=bound,
            gap=gap,
            solve_s=solve_s,
            values=values,
            highs_status=ms.name if run_status != highspy.HighsStatus.kError else "run_error",
        )
        return self.last_result

    def _solve_lazy(self, chains, window, time_limit_s, mip_gap, threads, mip_start, presolve, log, highs_options,
                    lp_rounds: bool = False, portfolio: bool = False, blocks: np.ndarray | None = None) -> BackendResult:
        """Exact solve with the lower bounds of the columns in `chains` enforced by row generation.

        Round k solves the MIP with only a subset A_k of those lower bounds enforced (A_0: the set
        that ended the previous lazy solve of the same columns on this backend, else empty). Each
        round is a relaxation of the full model, so its best bound is valid for the full model, and
        the tightest seen is kept. If the round's incumbent satisfies every lazy bound, it is
        feasible for the full model and within the gap of that bound: the answer. Otherwise the
        bounds it violates join A, with the `window` columns either side of each in its chain (a
        cash balance that dips below the floor in month t is usually close to it in t-1 and t+1),
        and the MIP is solved again; HiGHS keeps the model, only those bounds change. A grows every
        round and is at most every lazy bound (that round is the full model), so the loop ends.

        Between rounds the best full-feasible candidate is kept: improving solutions of a round that
        happen to satisfy every lazy bound, and the incumbent's integers with the continuous part
        re-optimised by an LP under all bounds (`_repair_lp`). It is the MIP start of the next round
        (else the caller's `mip_start`), it answers when it is within `mip_gap` of the tightest
        bound (a round is interrupted as soon as that holds against its running bound or an
        earlier round's: HiGHS alone would go on closing the gap of the round's own incumbent, which
        may break the floor), and when time runs out. A round whose relaxation is unbounded (or fails) is
        followed by the full model.

        With a time limit, a round whose latest incumbent breaks a lazy bound stops after
        `ROUND_SHARE` of the limit unless its own gap is within `ROUND_SHARE_GAP_FACTOR` x `mip_gap`
        (its bound stays valid; HiGHS would otherwise spend the whole limit improving a plan that
        cannot be kept). When the LP repair cannot keep such a round's integers (they commit
        spending the floor cannot carry), a neighbourhood search finds a full-feasible plan near
        them, the next round's start: the MIP under every lazy bound with the integers fixed where
        the incumbent agrees with the LP relaxation under every lazy bound (RINS, `_neighbourhood`;
        the few that disagree stay free). When that finds nothing (or its LP relaxation does not
        finish in `RELAXATION_SHARE` of the search's time) and `blocks` labels the columns, the
        rest of that time goes to fix-and-optimize from the best full-feasible plan (`fixopt`:
        blocks of columns re-optimised in turn, the others held). After a round that finished,
        the next round gets the time instead (small benchmark seed 1: the search's plan was 12 %
        below what that round found).
        Every round stops `repair_reserve_s` before the limit, so a round cut short by the limit
        still has its incumbent repaired.

        `portfolio`: once the rounds have run `PORTFOLIO_DELAY_S`, the full model (every lazy bound
        a bound) is also solved in a child process on the other core (`portfolio.Companion`); its
        plan and its bound join the rounds' (both valid for the full model), a plan within the gap
        of either bound stops both, and the rounds' answer waits for the child until its limit.
        Every plan the rounds keep is offered to the child (`Companion.offer`): the child searches
        its neighbourhood when the plans are still far from the child's bound a third of the way in.

        `lazy_path`: "relaxation" (first round, nothing added), "row generation" (rows added, a
        round's incumbent satisfied them all), "repaired" (the LP repair or the neighbourhood search
        gave the answer), "portfolio" (the child's plan is the answer);
        `lazy_rounds`, `lazy_rows`: rounds run, lazy bounds enforced at the end.
        """
        h, sf, n = self.highs, self._sf, len(self._sf.columns)
        t0 = time.perf_counter()
        idx = np.concatenate(chains).astype(np.int32)
        pos = np.concatenate([np.arange(c.size) for c in chains])
        first = np.repeat(np.cumsum([0] + [c.size for c in chains[:-1]]), [c.size for c in chains])
        size = np.repeat([c.size for c in chains], [c.size for c in chains])
        lb, ub = sf.col_lower[idx].copy(), sf.col_upper[idx].copy()
        tol = 1e-6 * np.maximum(1.0, np.abs(lb))
        maximize = sf.sense == -1
        key = idx.tobytes()
        active = np.isin(idx, self._lazy_active.get(key, np.zeros(0, dtype=np.int32)))
        best: list = []  # [(objective, x, source)]: the best solution seen that satisfies every lazy bound
        bound, rounds, last, path = math.nan, 0, None, "relaxation"

        def better(a: float, b: float) -> bool:
            return a > b if maximize else a < b

        def keep(obj: float, x: np.ndarray, source: str = "incumbent") -> None:
            if (x[idx] >= lb - tol).all() and (not best or better(obj, best[0][0])):
                best[:] = [(obj, x.copy(), source)]
                if companion and source != "portfolio":
                    companion[0].offer(obj, x)  # the child may search around it (portfolio.Companion.offer)

        def tighter(a: float, b: float) -> float:
            """The tighter of two bounds (nan and inf are no bound)."""
            if not math.isfinite(b):
                return a
            return b if not math.isfinite(a) or better(a, b) else a

        breaks = [False]  # the round's latest incumbent breaks a lazy bound
        cut_short = [False]  # the round was stopped after ROUND_SHARE of the limit for that reason
        round_t0 = [t0]
        lp_x: list = []  # the LP relaxation under every lazy bound (computed once, when first needed)

        def on_improving(e) -> None:
            x = np.asarray(e.data_out.mip_solution, dtype=np.float64)
            if x.size == n:
                breaks[0] = not (x[idx] >= lb - tol).all()
                keep(float(e.data_out.objective_function_value), x)

        def on_interrupt(e) -> None:
            launch()
            absorb()
            # stop the round once a plan keeping every lazy bound is within the gap of a valid bound:
            # the round's own running bound (a relaxation's), a previous round's or the child's
            if best and _rel_gap(best[0][0], tighter(bound, float(e.data_out.mip_dual_bound))) <= mip_gap:
                self.request_stop()
                e.interrupt()
            elif (breaks[0] and time_limit_s is not None and not active.all()
                  and time.perf_counter() - round_t0[0] > ROUND_SHARE * time_limit_s
                  and not float(e.data_out.mip_gap) <= ROUND_SHARE_GAP_FACTOR * mip_gap):
                cut_short[0] = True
                self.request_stop()
                e.interrupt()

        reserve = repair_reserve_s(time_limit_s)

        def left() -> float | None:
            return None if time_limit_s is None else time_limit_s - (time.perf_counter() - t0)

        def round_limit() -> float | None:
            return None if time_limit_s is None else max(left() - reserve, 0.5)

        def enforce(mask: np.ndarray) -> None:
            j = np.flatnonzero(mask)
            h.changeColsBounds(j.size, idx[j], np.where(active[j], lb[j], -_INF), ub[j])

        def grow(violated: np.ndarray) -> None:
            """Enforce the violated bounds and the `window` columns either side of each in its chain."""
            g = np.zeros(idx.size, dtype=bool)
            for k in np.flatnonzero(violated).tolist():
                lo, hi = max(pos[k] - window, 0), min(pos[k] + window, size[k] - 1)
                g[first[k] + lo:first[k] + hi + 1] = True
            g &= ~active
            active[:] |= g
            enforce(g)

        companion: list = []  # the full model in a child process (portfolio.Companion), once started
        launched, absorbed = [False], [False]
        child_end = [math.inf]  # when the child's time limit ends (perf_counter seconds)

        def launch() -> None:
            """Start the child once this search has run PORTFOLIO_DELAY_S, with the time left to the
            rounds as its limit and the best plan known so far as its start."""
            if not portfolio or launched[0] or time.perf_counter() - t0 < PORTFOLIO_DELAY_S:
                return
            limit = round_limit()
            if limit is not None and limit < PORTFOLIO_MIN_LEFT_S:
                return
            launched[0] = True
            start = (np.arange(n, dtype=np.int32), best[0][1]) if best else (
                self._start_arrays(mip_start) if mip_start else None)
            try:
                companion.append(Companion(sf, limit, mip_gap, highs_options, start, neighbourhood=True, blocks=blocks))
            except OSError:  # no child here (no temporary space, no Python executable): the rounds alone
                return
            if best:
                companion[0].offer(best[0][0], best[0][1])
            child_end[0] = time.perf_counter() + (math.inf if limit is None else limit)

        def absorb(wait_s: float | None = 0.0) -> None:
            """Take the child's answer once it has one: its plan (feasible for the full model) and its
            bound (valid for the full model)."""
            nonlocal bound
            if not companion or absorbed[0]:
                return
            a = companion[0].answer(wait_s)
            if a is None:
                return
            absorbed[0] = True
            if a.has_solution and a.x.size == n:
                keep(a.objective, a.x, "portfolio")
            bound = tighter(bound, a.bound)

        try:
            enforce(np.ones(idx.size, dtype=bool))
            if lp_rounds and not active.any():
                self._lp_rounds(idx, lb, tol, active, grow, None if time_limit_s is None else LP_ROUNDS_SHARE * time_limit_s)
            try:
                while True:
                    if rounds and left() is not None and left() < 0.5:
                        break
                    launch()
                    absorb()
                    if best and _rel_gap(best[0][0], bound) <= mip_gap:
                        break  # the child's plan is within the gap
                    if best:
                        self._pending_start = (np.arange(n, dtype=np.int32), best[0][1])
                        start = None
                    else:
                        start = mip_start
                    breaks[0] = cut_short[0] = False
                    round_t0[0] = time.perf_counter()
                    h.cbMipImprovingSolution.subscribe(on_improving)
                    h.cbMipInterrupt.subscribe(on_interrupt)
                    try:
                        r = self._solve_once(round_limit(), mip_gap, threads, start, presolve, log, highs_options)
                    finally:
                        h.cbMipInterrupt.unsubscribe(on_interrupt)
                        h.cbMipImprovingSolution.unsubscribe(on_improving)
                    rounds, last = rounds + 1, r
                    if r.status == "infeasible":  # a relaxation is infeasible: so is the model
                        return self._finish_lazy(r, t0, path, rounds, int(active.sum()))
                    if r.status in ("unbounded", "error") and not active.all():
                        active[:] = True  # the relaxation tells nothing: the full model next
                        enforce(np.ones(idx.size, dtype=bool))
                        path = "row generation"
                        continue
                    if r.status in ("unbounded", "error"):
                        return self._finish_lazy(r, t0, path, rounds, int(active.sum()))
                    bound = tighter(bound, r.best_bound)
                    absorb()
                    if not r.has_solution:
                        break
                    violated = (r.values[idx] < lb - tol) & ~active
                    if not violated.any():
                        keep(r.objective, r.values)  # feasible for the full model
                        break
                    rep = None
                    if left() is None or left() >= 0.2:
                        h.changeColsBounds(idx.size, idx, lb, ub)  # the repair LP sees every lazy bound
                        try:
                            rep = self._repair_lp(r.values, left())
                        finally:
                            enforce(np.ones(idx.size, dtype=bool))
                        if rep is not None:
                            keep(*rep, source="repaired")
                    if rep is None and cut_short[0] and left() - reserve >= 0.5:
                        budget = min(NEIGHBOURHOOD_SHARE * time_limit_s, left() - reserve)
                        end = time.perf_counter() + budget
                        h.changeColsBounds(idx.size, idx, lb, ub)  # the search sees every lazy bound
                        try:
                            if not lp_x:
                                lp_x.append(self._relaxation(RELAXATION_SHARE * budget))
                            near = self._neighbourhood(r.values, lp_x[0], end - time.perf_counter(), mip_gap, threads)
                            if near is None and blocks is not None and best:
                                near = self._fix_and_optimize(best[0], blocks, end - time.perf_counter(), mip_gap, threads)
                        finally:
                            enforce(np.ones(idx.size, dtype=bool))
                        if near is not None:
                            keep(*near, source="repaired")
                    if best and _rel_gap(best[0][0], bound) <= mip_gap:
                        path = "repaired" if best[0][2] == "repaired" else path
                        break
                    if r.status not in ("optimal", "feasible_within_gap") and not cut_short[0]:
                        break  # the round stopped on the limit: no time for another
                    grow(violated)
                    path = "row generation"
            finally:
                h.changeColsBounds(idx.size, idx, lb, ub)
                self._lazy_active[key] = idx[active]
            if companion and not absorbed[0] and not (best and _rel_gap(best[0][0], bound) <= mip_gap):
                if math.isinf(child_end[0]):
                    absorb()  # no time limit: the rounds' answer is final; the child's counts only if it is there
                else:
                    # stopped by the limit: the child, with the same deadline, may still have a better
                    # plan or a tighter bound; wait for it until just past its limit, then stop it
                    absorb(child_end[0] - time.perf_counter() + PORTFOLIO_GRACE_S)
                    if not absorbed[0]:
                        companion[0].stop()
                        absorb()
            if best and best[0][2] == "portfolio":
                path = "portfolio"
            if not best:
                status = "time_limit_no_solution" if last is None or last.status != "error" else "error"
                r = BackendResult(status, math.nan, bound, _INF, 0.0, None, last.highs_status if last else "")
                return self._finish_lazy(r, t0, path, rounds, int(active.sum()))
            gap = _rel_gap(best[0][0], bound)
            status = "optimal" if gap <= mip_gap else "time_limit_with_incumbent"
            return self._lazy_result(status, best[0], bound, gap, t0, last.highs_status if last else "", path, rounds,
                                     int(active.sum()))
        finally:
            if companion:
                companion[0].close()

    def _lp_rounds(self, idx, lb, tol, active, grow, time_limit_s) -> int:
        """Row generation on the LP relaxation before the first MIP round: solve the LP with the
        lazy bounds enforced so far, enforce those it breaks (`grow`), repeat until it breaks none
        (at most LP_ROUNDS_MAX times, within `time_limit_s`). Returns the LP rounds run."""
        t0 = time.perf_counter()
        n = 0
        while n < LP_ROUNDS_MAX:
            left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - t0)
            if left is not None and left < 0.2:
                break
            x = self._relaxation(left)
            if x is None:
                break
            n += 1
            violated = (x[idx] < lb - tol) & ~active
            if not violated.any():
                break
            grow(violated)
        return n

    def _lp_time_limit(self, time_limit_s):
        """HiGHS compares an LP's time limit with its run clock, which adds up every earlier run of
        this Highs object (a MIP's limit counts from the MIP's own start): an LP given 10 s after a
        20 s MIP stops at once with "time limit reached". Offset the limit by the clock."""
        return None if time_limit_s is None else self.highs.getRunTime() + time_limit_s

    def _relaxation(self, time_limit_s) -> np.ndarray | None:
        """The LP relaxation (every integer relaxed) under the current bounds: its values, or None.
        Solved on a copy (`_on_scratch`), which leaves the backend's Highs as it was."""
        ints = self._int_idx

        def lp(h: highspy.Highs) -> np.ndarray | None:
            _lp_options(h, time_limit_s)
            h.changeColsIntegrality(ints.size, ints, np.zeros(ints.size, dtype=np.uint8))
            ok = self._run(h) != highspy.HighsStatus.kError and h.getModelStatus() == _MS.kOptimal
            return np.asarray(h.getSolution().col_value, dtype=np.float64) if ok else None

        return self._on_scratch(lp)

    def _neighbourhood(self, x: np.ndarray, lp: np.ndarray | None, time_limit_s, mip_gap, threads) -> tuple[float, np.ndarray] | None:
        """RINS under the current bounds: the MIP with every integer fixed where `x` (an incumbent)
        and `lp` (an LP relaxation) agree to 1e-6, the rest free; (objective, values) of its best
        plan, or None (no LP, nothing left free, or no plan found in `time_limit_s`)."""
        ints = self._int_idx
        if lp is None or (time_limit_s is not None and time_limit_s < 0.5):
            return None
        agree = np.abs(x[ints] - lp[ints]) <= 1e-6
        if agree.all():
            return None  # the incumbent's integers are the LP's: the repair LP already tried them
        return self._sub_mip(ints[agree], np.round(x[ints[agree]]), time_limit_s, mip_gap, threads)

    def _fix_and_optimize(self, best: tuple, blocks: np.ndarray, time_limit_s, mip_gap, threads) -> tuple[float, np.ndarray] | None:
        """Fix-and-optimize (`fixopt`) under the current bounds from `best` = (objective, values,
        ...), a plan feasible under them: (objective, values) of a better plan, or None."""
        sf = self._sf
        if time_limit_s is None or time_limit_s < 0.5:
            return None

        def sub(fix, values, limit, start):
            return self._sub_mip(fix, values, limit, mip_gap, threads, start)

        return fix_and_optimize(sub, best[1], best[0], blocks, sf.col_lower, sf.col_upper, sf.integrality.astype(bool),
                                time_limit_s, sf.sense == -1, continuous=self._repair_lp)

    def _repair_lp(self, x: np.ndarray, time_limit_s) -> tuple[float, np.ndarray] | None:
        """Integers fixed at `x`, the LP of the rest under the current bounds: (objective, values) or
        None. Solved on a copy (`_on_scratch`), which leaves the backend's Highs as it was."""
        ints = self._int_idx
        if time_limit_s is not None and time_limit_s < 0.2:
            return None
        fixed = np.round(x[ints])

        def lp(h: highspy.Highs) -> tuple[float, np.ndarray] | None:
            _lp_options(h, time_limit_s)
            h.changeColsBounds(ints.size, ints, fixed, fixed)
            h.changeColsIntegrality(ints.size, ints, np.zeros(ints.size, dtype=np.uint8))
            ok = self._run(h) != highspy.HighsStatus.kError and h.getModelStatus() == _MS.kOptimal
            return (float(h.getInfo().objective_function_value), np.asarray(h.getSolution().col_value, dtype=np.float64)) if ok else None

        return self._on_scratch(lp)

    def _lazy_result(self, status, cand, bound, gap, t0, highs_status, path, rounds, rows) -> BackendResult:
        obj, x = cand[:2]
        if self._int_idx.size:
            x = x.copy()
            x[self._int_idx] = np.round(x[self._int_idx])
        return self._finish_lazy(BackendResult(status, float(obj), bound, gap, 0.0, x, highs_status), t0, path, rounds, rows)

    def _finish_lazy(self, r: BackendResult, t0: float, path: str, rounds: int, rows: int) -> BackendResult:
        r.solve_s = time.perf_counter() - t0
        r.lazy_path, r.lazy_rounds, r.lazy_rows = path, rounds, rows
        self._x = r.values
        self.last_result = r
        return r

    def _settle_unbounded_or_infeasible(self) -> str:
        """HiGHS's presolve may only know 'unbounded or infeasible': a zero-cost run tells which.

        A feasible model with an unbounded relaxation is unbounded (for a MIP too, with rational data).
        """
        h, n = self.highs, self.n_cols
        all_cols = np.arange(n, dtype=np.int32)
        h.changeColsCost(n, all_cols, np.zeros(n))
        try:
            self._run()
            ms = h.getModelStatus()
        finally:
            h.changeColsCost(n, all_cols, self._sf.cost)
        if ms == _MS.kInfeasible:
            return "infeasible"
        if ms == _MS.kOptimal:
            return "unbounded"
        return "error"

    # ---- reading the solution -------------------------------------------------------------
    def _require_solution(self) -> np.ndarray:
        if self._x is None:
            last = self.last_result.status if self.last_result else "not solved"
            raise RuntimeError(f"no solution to read: last solve status is {last!r}")
        return self._x

    def values(self) -> np.ndarray:
        """Column values of the last solve, in column order (`self.columns`)."""
        return self._require_solution()

    def value_of(self, var) -> float:
        x = self._require_solution()
        i = self._col_of.get(id(var))
        if i is not None:
            return float(x[i])
        if var.fixed:
            return float(var.value)
        raise KeyError(f"{var.name} is not a column: it appears in no active constraint or objective")

    def load_solution(self, round_integers: bool = True) -> None:
        """Write column values into the Pyomo Vars; integer columns rounded (HiGHS leaves ~1e-9 noise)."""
        x = self._require_solution().copy()
        if round_integers and self._int_idx.size:
            x[self._int_idx] = np.round(x[self._int_idx])
        for v, xv in zip(self._sf.columns, x.tolist()):
            v.set_value(xv, skip_validation=True)

    # ---- duals of the fixed-integer LP ----------------------------------------------------
    def fix_integers_and_solve_lp(self, time_limit_s: float | None = None) -> DualResult:
        """Fix integer columns at the incumbent, solve the LP, restore; duals are d(obj)/d(rhs).

        HiGHS reports row_dual and col_dual as the objective's rate of change per unit of the
        active bound, in the model's own sense (checked by hand in the tests), so no sign flip.
        """
        x = self._require_solution()
        h, sf, ints = self.highs, self._sf, self._int_idx
        self._set_options(self._lp_time_limit(time_limit_s), 0.0, None, True, False)
        if ints.size:
            fixed = np.round(x[ints])
            h.changeColsBounds(ints.size, ints, fixed, fixed)
            h.changeColsIntegrality(ints.size, ints, np.zeros(ints.size, dtype=np.uint8))
        try:
            ms = h.getModelStatus() if self._run() != highspy.HighsStatus.kError else _MS.kSolveError
            sol = h.getSolution()
            row_dual = np.asarray(sol.row_dual, dtype=np.float64)
            col_dual = np.asarray(sol.col_dual, dtype=np.float64)
            objective = float(h.getInfo().objective_function_value)
        finally:
            if ints.size:
                h.changeColsIntegrality(ints.size, ints, sf.integrality[ints].astype(np.uint8))
                h.changeColsBounds(ints.size, ints, sf.col_lower[ints], sf.col_upper[ints])
                # the data did not change: the whole incumbent is a feasible start for the next solve
                self._pending_start = (np.arange(len(x), dtype=np.int32), x)
        if ms != _MS.kOptimal:
            status = {_MS.kInfeasible: "infeasible", _MS.kUnbounded: "unbounded"}.get(ms, "error")
            if ms == _MS.kTimeLimit:
                status = "time_limit_no_solution"
            return DualResult(status, math.nan, ComponentMap(), ComponentMap(), row_dual, col_dual)
        row_map = ComponentMap(zip(sf.rows, row_dual.tolist()))
        col_map = ComponentMap(zip(sf.columns, col_dual.tolist()))
        return DualResult("optimal", objective, row_map, col_map, row_dual, col_dual)

    # ---- persistent re-solve --------------------------------------------------------------
    def update(self, params_only: bool = False) -> UpdateStats:
        """Recompile the same model after mutable Param changes and push only the differences.

        `params_only`: the caller guarantees only mutable Param values (and variable bounds or
        fixings) changed since the last compile, as a sweep point's `update_params` does: from the
        second such update on, only the objective and the rows holding a changed Param are walked
        again (`standard_form.Recompiler`; the same arrays as a full compile, which it falls back
        to whenever it cannot be sure). Without it the whole model is compiled again.

        Falls back to a full passModel when columns, rows or the sparsity pattern changed (e.g. a
        Var got fixed, a coefficient became 0). The next MIP solve starts from the previous
        incumbent: all of it when only the objective changed (it is still feasible), else its
        integer values only (HiGHS completes the continuous part by an LP, or drops an infeasible
        start). The previous solution is forgotten: read it before calling update().
        """
        t0 = time.perf_counter()
        old, x_old = self._sf, self._x
        new = self._recompiler.recompile(old) if params_only and self._recompiler is not None else None
        recompiled = new is not None
        if new is None:
            new = compile_model(self.model)
            self._recompiler = Recompiler(self.model, new) if params_only else None
        if not _same_structure(old, new):
            recompiler = self._recompiler
            self._pass(new)
            self._recompiler = recompiler
            stats = UpdateStats(True, 0, 0, 0, 0, 0.0)
            objective_only = False
        else:
            stats = self._push_differences(old, new)
            self._sf = new
            self._int_idx = np.flatnonzero(new.integrality).astype(np.int32)
            objective_only = stats.changed_col_bounds == stats.changed_row_bounds == stats.changed_coeffs == 0
            objective_only = objective_only and np.array_equal(old.integrality, new.integrality)
        if x_old is not None and new.is_mip:
            keep = np.arange(len(old.columns)) if objective_only else np.flatnonzero(old.integrality)
            self._pending_start = self._start_arrays([(old.columns[i], x_old[i]) for i in keep.tolist()])
        self._x, self.last_result = None, None
        stats.update_s = time.perf_counter() - t0
        stats.recompiled = recompiled
        return stats

    def _push_differences(self, old: StandardForm, new: StandardForm) -> UpdateStats:
        h = self.highs
        if new.sense != old.sense:
            h.changeObjectiveSense(highspy.ObjSense.kMaximize if new.sense == -1 else highspy.ObjSense.kMinimize)
        if new.offset != old.offset:
            h.changeObjectiveOffset(new.offset)
        cost_idx = np.flatnonzero(new.cost != old.cost).astype(np.int32)
        if cost_idx.size:
            h.changeColsCost(cost_idx.size, cost_idx, new.cost[cost_idx])
        col_idx = np.flatnonzero((new.col_lower != old.col_lower) | (new.col_upper != old.col_upper))
        col_idx = col_idx.astype(np.int32)
        if col_idx.size:
            h.changeColsBounds(col_idx.size, col_idx, new.col_lower[col_idx], new.col_upper[col_idx])
        int_idx = np.flatnonzero(new.integrality != old.integrality).astype(np.int32)
        if int_idx.size:
            h.changeColsIntegrality(int_idx.size, int_idx, new.integrality[int_idx].astype(np.uint8))
        row_idx = np.flatnonzero((new.row_lower != old.row_lower) | (new.row_upper != old.row_upper))
        row_idx = row_idx.astype(np.int32)
        if row_idx.size:
            h.changeRowsBounds(row_idx.size, row_idx, new.row_lower[row_idx], new.row_upper[row_idx])
        nz_idx = np.flatnonzero(new.A.data != old.A.data)
        if nz_idx.size:
            col_of_nz = np.repeat(np.arange(len(new.columns)), np.diff(new.A.indptr))
            data, row_of_nz = new.A.data, new.A.indices
            for k in nz_idx.tolist():
                h.changeCoeff(int(row_of_nz[k]), int(col_of_nz[k]), float(data[k]))
        return UpdateStats(False, int(cost_idx.size), int(col_idx.size), int(row_idx.size), int(nz_idx.size), 0.0)


def _chains(lazy_lower) -> list[np.ndarray]:
    """`lazy_lower` as a list of non-empty int32 arrays: one chain for a flat sequence of ints."""
    if lazy_lower is None:
        return []
    items = list(lazy_lower)
    if not items:
        return []
    if np.ndim(items[0]) == 0:
        return [np.asarray(items, dtype=np.int32)]
    return [np.asarray(c, dtype=np.int32) for c in items if len(c)]


def run_interruptible(h: highspy.Highs, planned=None) -> highspy.HighsStatus:
    """``h.run()``, stopped cleanly by Ctrl-C, then ``KeyboardInterrupt`` raised.

    HiGHS releases the GIL while it runs, and Python runs signal handlers only between bytecodes
    of the main thread: a plain KeyboardInterrupt would surface only when HiGHS next calls back
    into Python (seconds or minutes later, maybe never), from inside its C++ code. Instead, in the
    main thread, the first SIGINT sets a flag that HiGHS's interrupt callbacks (MIP, simplex,
    IPM) read: HiGHS stops at its next check with a consistent state, and this function raises
    KeyboardInterrupt. A solve stopped by a user interrupt is never reported as a status (a
    sweep would store it as a failed or a time-limited point). A second Ctrl-C restores Python's
    default at once. Elsewhere (a worker thread, a handler other than Python's default, SIGINT
    ignored as in sweep pool workers) the signal handling is left alone. `planned`: a callable
    that is true when the program itself asked HiGHS to stop (`HighsBackend.request_stop`): HiGHS
    is stopped at its next check and no KeyboardInterrupt is raised for it."""
    main = threading.current_thread() is threading.main_thread()
    prev = signal.getsignal(signal.SIGINT) if main else None
    install = prev is signal.default_int_handler
    hit = [False]

    def on_sigint(signum, frame):
        if hit[0]:
            signal.signal(signal.SIGINT, prev)
            raise KeyboardInterrupt
        hit[0] = True

    def on_check(e) -> None:
        # HiGHS keeps the callback's interrupt flag from one run to the next: clear a stale one
        e.interrupt(bool(hit[0] or (planned is not None and planned())))

    events = (h.cbMipInterrupt, h.cbSimplexInterrupt, h.cbIpmInterrupt) if install or planned is not None else ()
    for ev in events:
        ev.subscribe(on_check)
    if install:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        status = h.run()
    finally:
        if install:
            signal.signal(signal.SIGINT, prev)
        for ev in events:
            ev.unsubscribe(on_check)
    if hit[0] or (h.getModelStatus() == _MS.kInterrupt and not (planned is not None and planned())):
        raise KeyboardInterrupt
    return status


def _lp_options(h: highspy.Highs, time_limit_s) -> None:
    """An LP on a copy of the model (`HighsBackend._on_scratch`): its own run clock, presolve on, no log;
    the other options (threads, the caller's raw HiGHS options) are the backend's, copied."""
    h.setOptionValue("time_limit", _INF if time_limit_s is None else float(time_limit_s))
    h.setOptionValue("presolve", "on")
    h.setOptionValue("output_flag", False)


def _rel_gap(objective: float, bound: float) -> float:
    """HiGHS's relative MIP gap: |bound - objective| / |objective| (inf at a zero objective)."""
    if not (math.isfinite(objective) and math.isfinite(bound)):
        return _INF
    if objective == 0:
        return 0.0 if bound == 0 else _INF
    return abs(bound - objective) / abs(objective)


def _map_status(ms, has_sol: bool, gap: float, mip_gap: float, n_cols: int) -> str:
    if ms == _MS.kOptimal or (ms == _MS.kModelEmpty and n_cols == 0):
        return "optimal"
    if ms == _MS.kInfeasible:
        return "infeasible"
    if ms == _MS.kUnbounded:
        return "unbounded"
    if ms == _MS.kUnboundedOrInfeasible:
        return "unbounded_or_infeasible"  # settled by the caller
    if ms in _LIMIT_STATUSES:
        if has_sol and gap <= mip_gap:
            return "feasible_within_gap"
        if ms == _MS.kUnknown:
            return "error"
        return "time_limit_with_incumbent" if has_sol else "time_limit_no_solution"
    return "error"
