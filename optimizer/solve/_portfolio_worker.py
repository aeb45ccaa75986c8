"""Child process of `optimizer.solve.portfolio.Companion`: solve one MIP given as arrays, write the answer.

    python _portfolio_worker.py MODEL.npz OUT.npz PARENT_PID

Run as a file, not as a module of the package, so that it imports numpy and highspy only (no
Pyomo, no pandas: ~0.3 s to start), and heap.py from its folder (the standard library only: what
HiGHS frees goes back to the system while it runs). MODEL.npz holds the standard form the parent handed to its
own HiGHS object (`HighsBackend._sf`: column-wise matrix, bounds, costs, integrality, sense,
offset) plus the options: ``time_limit_s`` (inf for none), ``mip_gap``, ``threads``,
``highs_options`` (JSON), and an optional MIP start (``start_index``, ``start_value``).
SIGTERM or SIGINT (the parent asking it to stop, or a Ctrl-C sent to the whole process group)
stops HiGHS at its next check; the incumbent found so far is still written. A parent
(PARENT_PID, given: it may be gone before this starts) that dies without stopping it (killed) is
noticed within 0.5 s: this process then removes MODEL.npz's folder (the parent's temporary folder
for it, which the dead parent cannot remove) and exits. OUT.npz is written to a temporary name and
renamed, so the parent never reads half a file: ``status`` (HiGHS model status name),
``has_solution``, ``objective``, ``bound``, ``x``, ``neighbourhood`` (whether it searched one).

A neighbourhood search when the plans are the weak side (``neighbourhood``, time limit at least
``NEIGHBOURHOOD_MIN_LIMIT_S``). Once ``NEIGHBOURHOOD_AT_SHARE`` of the limit has run, the best
plan known (this search's incumbent or the parent's, which the parent offers in offer.npz next to
MODEL.npz: ``objective``, ``x``, rewritten whenever it improves) is compared with this search's
bound. Within ``NEIGHBOURHOOD_GAP`` of it, the search simply goes on (its bound keeps improving).
Farther, the search stops there and (2) the LP relaxation is solved, then the MIP with every
integer column fixed where that plan and the LP agree (RINS), from that plan, for
``NEIGHBOURHOOD_SHARE`` of the time left; (3) the MIP runs again from the best plan for the rest.
Why: on the medium benchmark (seed 1) HiGHS spends minutes in root cutting rounds before its own
sub-MIP heuristics run (its 2,406 M$ plan came at 387 s), while this neighbourhood of the
1,402 M$ start and the plain LP gives 2,371 M$ within 60 s. Every plan kept is feasible for the
full model (a sub-MIP only fixes columns at values within their bounds); the bound written is
the tighter of the two full runs' (a sub-MIP's bound is only a restriction's). The cost: the
second full run starts its bound from the root again, so where the plans are already close to
the bound the search is not split.

HiGHS calls none of our callbacks inside the MIP's own LP solves, so a root LP still running at
the decision could not be stopped: the first run therefore has a time limit, ``DECISION_GRACE_SHARE``
of the limit after the decision. A run that reaches it having decided to go on is continued from
its best plan (a second full run); one that reaches it undecided (its root LP never finished) is
"far" from a bound it does not have, and searches.

Fix-and-optimize (``blocks`` in MODEL.npz: a site label per column, `fixopt.py`). When RINS finds
nothing, fix-and-optimize from the best plan takes its share of the time. When the first run
never finished its root LP, there is neither an LP for RINS nor hope that a second full run gets
further, so fix-and-optimize takes all the time left and no second full run is made. Why: on the
large benchmark (30 sites, 207k columns) the full model's LP relaxation takes HiGHS ~10 minutes,
so this child used to spend its whole limit in it and answer the root's plan, while steps that
re-plan two sites at a time climb from the parent's plan (benchmarks/README.md, ninth pass). The parent's own fix-and-optimize visits the
sites in another order (``FIXOPT_SEED``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import threading
import time

import highspy
import numpy as np

try:  # run as a file, this folder is sys.path[0]; heap.py imports the standard library only, fixopt.py numpy
    from fixopt import fix_and_optimize
    from heap import trimming
except ImportError:  # loaded from its file by a process that has the package (the tests)
    from optimizer.solve.fixopt import fix_and_optimize
    from optimizer.solve.heap import trimming

NEIGHBOURHOOD_AT_SHARE = 0.35  # the plans are compared with the bound after this share of the limit
NEIGHBOURHOOD_GAP = 0.10  # ... and a neighbourhood search starts when the best is farther than this from it
NEIGHBOURHOOD_SHARE = 0.6  # the RINS sub-MIP's share of the time left
NEIGHBOURHOOD_MIN_LIMIT_S = 10.0  # shorter limits: one plain MIP run
FIXOPT_SEED = 1  # the parent's fix-and-optimize visits the blocks in another order (fixopt.SEED)
DECISION_GRACE_SHARE = 0.05  # the first run ends at the latest this share of the limit after the decision
_FEASIBLE = 2  # kSolutionStatusFeasible


def _exit_with_parent(parent_pid: int, folder: str, every_s: float = 0.5) -> None:
    """Never an orphan solving for nobody: when the parent is gone (killed before it could stop
    this process or remove the files), remove the temporary folder it made for this process and
    exit at once. HiGHS releases the GIL while it runs, so this thread runs."""
    while True:
        if os.getppid() != parent_pid:
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(1)
        time.sleep(every_s)


def main(model_path: str, out_path: str, parent_pid: int) -> int:
    threading.Thread(target=_exit_with_parent, args=(parent_pid, os.path.dirname(os.path.abspath(model_path))), daemon=True,
                     name="portfolio-parent-watch").start()
    stop = [False]

    def on_signal(signum, frame) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with np.load(model_path) as z:
        d = {k: z[k] for k in z.files}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    n_col, n_row = int(d["cost"].size), int(d["row_lower"].size)
    h.passModel(n_col, n_row, int(d["data"].size), int(highspy.MatrixFormat.kColwise), int(d["sense"]),
                float(d["offset"]), d["cost"], d["col_lower"], d["col_upper"], d["row_lower"], d["row_upper"],
                d["indptr"], d["indices"], d["data"], d["integrality"])
    h.setOptionValue("time_limit", float(d["time_limit_s"]))
    h.setOptionValue("mip_rel_gap", float(d["mip_gap"]))
    h.setOptionValue("threads", int(d["threads"]))
    for name, value in json.loads(str(d["highs_options"])).items():
        h.setOptionValue(name, value)
    if "start_index" in d:
        h.setSolution(int(d["start_index"].size), d["start_index"], d["start_value"])

    limit = float(d["time_limit_s"])
    search = bool(d.get("neighbourhood", False)) and math.isfinite(limit) and limit >= NEIGHBOURHOOD_MIN_LIMIT_S
    offer_path = os.path.join(os.path.dirname(model_path), "offer.npz")
    maximize = int(d["sense"]) == -1
    t0 = time.monotonic()
    decided, switch, offered = [not search], [False], [None]

    def decide(primal: float, dual: float) -> bool:
        """At NEIGHBOURHOOD_AT_SHARE of the limit: whether to stop and search a neighbourhood."""
        if decided[0] or time.monotonic() - t0 < NEIGHBOURHOOD_AT_SHARE * limit:
            return False
        decided[0] = True
        offered[0] = _read_offer(offer_path, int(d["cost"].size))
        switch[0] = _gap(_better(primal, None if offered[0] is None else offered[0][0], maximize), dual) > NEIGHBOURHOOD_GAP
        return switch[0]

    def on_check(e) -> None:
        e.interrupt(stop[0])

    def on_mip_check(e) -> None:
        if stop[0] or decide(float(e.data_out.mip_primal_bound), float(e.data_out.mip_dual_bound)):
            e.interrupt()

    h.cbMipInterrupt.subscribe(on_mip_check)
    for ev in (h.cbSimplexInterrupt, h.cbIpmInterrupt):
        ev.subscribe(on_check)
    if search:  # HiGHS calls no callback of ours inside the MIP's own LPs: a root LP that runs past the
        # decision ends on this limit instead (DECISION_GRACE_SHARE later than the decision)
        h.setOptionValue("time_limit", min(limit, (NEIGHBOURHOOD_AT_SHARE + DECISION_GRACE_SHARE) * limit))
    with trimming():  # what HiGHS frees goes back to the system as it runs (heap.py)
        h.run()
        status, obj, bound, x = _answer(h)
        limited = search and not stop[0] and h.getModelStatus() == highspy.HighsModelStatus.kTimeLimit
        if limited and not decided[0]:  # no bound to compare with: the plans are "far" from it
            decided[0], switch[0] = True, True
            offered[0] = _read_offer(offer_path, int(d["cost"].size))
        left = limit - (time.monotonic() - t0)
        if switch[0] and not stop[0]:
            status, obj, bound, x = _search(h, d, left, (obj, bound, x), offered[0], stop)
        elif limited and left > 1.0:  # the plans were close to the bound: go on, from the best
            if x is not None:
                h.setSolution(x.size, np.arange(x.size, dtype=np.int32), x)
            h.setOptionValue("time_limit", left)
            h.run()
            status, obj2, bound2, x2 = _answer(h)
            bound = _tighter(bound, bound2, maximize)
            if x2 is not None and (x is None or _better(obj2, obj, maximize) == obj2):
                obj, x = obj2, x2
    tmp = out_path + ".part.npz"
    np.savez(tmp, status=np.asarray(status), has_solution=np.asarray(x is not None),
             objective=np.asarray(obj), bound=np.asarray(bound), x=np.zeros(0) if x is None else x,
             neighbourhood=np.asarray(switch[0]))
    os.replace(tmp, out_path)
    return 0


def _read_offer(path: str, n: int) -> tuple[float, np.ndarray] | None:
    """The parent's best plan (objective, values), if it offered one of the right size."""
    try:
        with np.load(path) as z:
            x = np.asarray(z["x"], dtype=np.float64)
            return (float(z["objective"]), x) if x.size == n else None
    except (OSError, KeyError, ValueError):
        return None


def _better(a: float, b: float | None, maximize: bool) -> float:
    """The better of two objectives (nan, inf or None: no plan); nan when neither is one."""
    vals = [v for v in (a, b) if v is not None and math.isfinite(v)]
    if not vals:
        return math.nan
    return max(vals) if maximize else min(vals)


def _gap(obj: float, bound: float) -> float:
    """HiGHS's relative gap |bound - obj| / |obj| (inf without both), as `backend._rel_gap`, written
    again here because this file imports no part of the package (start-up, module docstring)."""
    if not (math.isfinite(obj) and math.isfinite(bound)):
        return math.inf
    return abs(bound - obj) / max(abs(obj), 1e-9)


def _tighter(a: float, b: float, maximize: bool) -> float:
    """The tighter of two bounds (a non-finite one is no bound)."""
    if not math.isfinite(b):
        return a
    return b if not math.isfinite(a) else (min(a, b) if maximize else max(a, b))


def _answer(h) -> tuple[str, float, float, np.ndarray | None]:
    """(status name, objective, bound, values or None) of the last MIP run."""
    info = h.getInfo()
    has_sol = info.primal_solution_status == _FEASIBLE
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_sol else None
    return (h.modelStatusToString(h.getModelStatus()), float(info.objective_function_value) if has_sol else math.nan,
            float(info.mip_dual_bound), x)


def _search(h, d: dict, time_left: float, first: tuple, offered: tuple | None, stop: list) -> tuple[str, float, float, np.ndarray | None]:
    """Phases 2 and 3 (module docstring) after the first run stopped with `first` = (objective,
    bound, values or None); `offered`: the parent's plan (objective, values) or None."""
    t0 = time.monotonic()
    maximize = int(d["sense"]) == -1
    ints = np.flatnonzero(d["integrality"]).astype(np.int32)
    status = "Interrupted by user"
    obj, bound, x = first
    blocks = d.get("blocks")
    rooted = math.isfinite(bound)  # the first run's root LP finished (else it would not in the rest either)

    def take(o: float, v: np.ndarray | None) -> bool:
        nonlocal obj, x
        if v is not None and (x is None or _better(o, obj, maximize) == o != obj):
            obj, x = o, v
            return True
        return False

    if offered is not None:
        take(*offered)

    def left() -> float:
        return time_left - (time.monotonic() - t0)

    if x is None or stop[0] or left() < 1.0 or not ints.size:
        return status, obj, bound, x
    every = np.arange(x.size, dtype=np.int32)

    def sub_mip(fix: np.ndarray, val: np.ndarray, limit: float, start: np.ndarray) -> tuple[float, np.ndarray] | None:
        """The MIP with the columns `fix` fixed at `val` (given back after), from `start`."""
        h.changeColsBounds(fix.size, fix, val, val)
        try:
            h.setSolution(start.size, every, start)
            h.setOptionValue("time_limit", max(limit, 0.1))
            h.run()
            _s, o, _b, v = _answer(h)
            return None if v is None else (o, v)
        finally:
            h.changeColsBounds(fix.size, fix, d["col_lower"][fix], d["col_upper"][fix])

    def relaxed(limit: float, start: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
        """The LP relaxation (every integer fixed at `start` when given), or None when not solved
        in `limit` seconds; integrality and bounds are given back after."""
        if start is not None:
            val = np.round(start[ints])
            h.changeColsBounds(ints.size, ints, val, val)
        h.changeColsIntegrality(ints.size, ints, np.zeros(ints.size, dtype=np.uint8))
        try:
            h.setOptionValue("time_limit", h.getRunTime() + max(limit, 0.1))  # an LP's limit counts on the run clock
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                return None
            return float(h.getInfo().objective_function_value), np.asarray(h.getSolution().col_value, dtype=np.float64)
        finally:
            h.changeColsIntegrality(ints.size, ints, d["integrality"][ints].astype(np.uint8))
            if start is not None:
                h.changeColsBounds(ints.size, ints, d["col_lower"][ints], d["col_upper"][ints])

    found = False
    if rooted or blocks is None:
        r = relaxed(left())
        lp = None if r is None else r[1]
        if lp is not None and not stop[0] and left() > 1.0:
            fix = ints[np.abs(x[ints] - lp[ints]) <= 1e-6]
            if 0 < fix.size < ints.size:
                r = sub_mip(fix, np.round(x[fix]), NEIGHBOURHOOD_SHARE * left(), x)
                found = r is not None and take(*r)
    if not found and blocks is not None and not stop[0] and left() > 1.0:
        # RINS found nothing, or there is no LP for it: fix-and-optimize from the best plan, for
        # RINS's share of the time, or all of it when the full model's root never finished
        r = fix_and_optimize(sub_mip, x, obj, blocks, d["col_lower"], d["col_upper"], d["integrality"] > 0,
                             (NEIGHBOURHOOD_SHARE if rooted else 1.0) * left(), maximize, lambda: stop[0], FIXOPT_SEED,
                             lambda start, limit: relaxed(limit, start))
        if r is not None:
            take(*r)
    if (rooted or blocks is None) and not stop[0] and left() > 1.0:
        h.setSolution(x.size, every, x)
        h.setOptionValue("time_limit", left())
        h.run()
        status, obj3, bound3, x3 = _answer(h)
        bound = _tighter(bound, bound3, maximize)
        take(obj3, x3)
    return status, obj, bound, x


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
