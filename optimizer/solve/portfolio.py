"""A second search on the other core: the full model solved in a child process next to the lazy rounds.

Why. HiGHS's MIP search runs on one worker (its log: "Using 1 max workers"), so on a 2-core
machine one core idles through most of a solve. And the two routes to the cash floor find
different plans: row generation (`HighsBackend._solve_lazy`: rounds with only some floors) is
far ahead on some instances, the full model (every floor at once) on others. Measured at 60 s on
the medium benchmark (benchmarks/README.md): seed 0 2,088 M$ by row generation and 1,595 M$ by
the full model, seed 1 1,458 M$ and 2,162 M$; small seed 0: row generation 13.3 % at 10 s, the
full model 0.10 % in 5.5 s. Running both, on both cores, and keeping the better answer is a
portfolio (as a commercial solver's "concurrent" MIP): what the slower route would have found
is never lost, and neither is the time.

Why the answer stays exact. The child solves the full model: the same columns, rows, costs and
bounds the parent handed to its own HiGHS object (`HighsBackend._sf`), every lazy bound a plain
bound. So its incumbent is feasible for the model, and its best bound is a valid bound on the
model's optimum, like every round's bound (each round is a relaxation of the model). The parent
keeps the better of its own and the child's incumbent and the tighter of the bounds; the gap is
computed from those two, and a plan within the requested gap of either bound stops both searches.

How. The child is a plain Python process running ``_portfolio_worker.py`` as a file (numpy and
highspy only: ~0.3 s to start, no Pyomo, and never a re-import of the caller's ``__main__`` as
multiprocessing's spawn would do in an embedding service). It gets the arrays in a temporary
.npz file and writes its answer to another one. It starts only once the parent's search has run
``PORTFOLIO_DELAY_S`` (a model that HiGHS solves in a second is not worth a process), with the
time left to the parent's rounds as its limit, one HiGHS thread, and the best plan known so far as
its MIP start. The parent polls it from its MIP callbacks (non-blocking), waits for it at the end
at most ``PORTFOLIO_GRACE_S`` past its limit, and then stops it (SIGTERM: HiGHS stops at its next
check and the incumbent is still written) or kills it. A child whose parent dies (killed before it
could stop it) removes its temporary folder and exits within 0.5 s: never an orphan solving for
nobody, nor files left in the temporary directory.

The child's neighbourhood search. The parent offers the child every plan of the full model it
keeps (`Companion.offer`, from the rounds and their repairs). Once the child has run a third of
its limit it compares the best plan known with its bound; when they are more than 10 % apart it
stops, searches a RINS neighbourhood of that plan, then runs the full MIP again from the best plan
(`_portfolio_worker.py` has the rule and the measurements behind it). Given `blocks`, it re-plans
the sites two at a time instead when RINS finds nothing, and for all its time when its root LP did
not finish by then (fix-and-optimize, `fixopt.py`). Its plans stay the full
model's and its bound the tighter of its two full runs', so the parent merges them as before.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PORTFOLIO_DELAY_S = 2.0  # the child starts once the parent's search has run this long
PORTFOLIO_MIN_LEFT_S = 2.0  # ... and only if at least this much of the time limit is left
PORTFOLIO_GRACE_S = 1.0  # the parent waits at most this long past the child's limit, then stops it
PORTFOLIO_STOP_S = 2.0  # ... and this long after SIGTERM before killing it
WORKER = Path(__file__).with_name("_portfolio_worker.py")


@dataclass(frozen=True)
class CompanionAnswer:
    """What the child found: HiGHS's model status name, its incumbent (objective, values; nan and
    None without one) and its best bound (objective units; inf or nan when it has none)."""

    status: str
    objective: float
    bound: float
    x: np.ndarray | None
    neighbourhood: bool = False  # the child split its time for a neighbourhood search (_portfolio_worker.py)

    @property
    def has_solution(self) -> bool:
        return self.x is not None


class Companion:
    """The full model of `sf` (a `standard_form.StandardForm`) solved by HiGHS in a child process.

    `time_limit_s`: the child's limit (None: none); `start`: an optional MIP start as
    (column indices, values); `neighbourhood`: let the child search a RINS neighbourhood of the
    best plan known when, a third of the way in, it is still more than 10 % from the child's bound
    (then the MIP again; `_portfolio_worker.py`); `blocks`: a block label per column (as
    `HighsBackend.solve`'s) for the child's fix-and-optimize when that neighbourhood search cannot
    run or finds nothing. Use as a context manager, or call `close()`."""

    def __init__(self, sf, time_limit_s: float | None, mip_gap: float, highs_options: dict | None = None,
                 start: tuple[np.ndarray, np.ndarray] | None = None, threads: int = 1, neighbourhood: bool = False,
                 blocks: np.ndarray | None = None):
        self._dir = tempfile.mkdtemp(prefix="mhpo-portfolio-")
        model, self._out = os.path.join(self._dir, "model.npz"), os.path.join(self._dir, "answer.npz")
        A = sf.A
        arrays = {
            "cost": sf.cost, "col_lower": sf.col_lower, "col_upper": sf.col_upper,
            "row_lower": sf.row_lower, "row_upper": sf.row_upper,
            "indptr": A.indptr.astype(np.int32, copy=False), "indices": A.indices.astype(np.int32, copy=False),
            "data": A.data, "integrality": sf.integrality, "sense": np.asarray(sf.sense),
            "offset": np.asarray(sf.offset), "mip_gap": np.asarray(float(mip_gap)), "threads": np.asarray(int(threads)),
            "time_limit_s": np.asarray(math.inf if time_limit_s is None else float(time_limit_s)),
            "highs_options": np.asarray(json.dumps(highs_options or {})), "neighbourhood": np.asarray(bool(neighbourhood)),
        }  # fmt: skip
        if blocks is not None:
            arrays["blocks"] = np.asarray(blocks, dtype=np.int32)
        if start is not None:
            arrays["start_index"] = np.asarray(start[0], dtype=np.int32)
            arrays["start_value"] = np.asarray(start[1], dtype=np.float64)
        np.savez(model, **arrays)
        self._answer: CompanionAnswer | None = None
        self._proc = subprocess.Popen([sys.executable, str(WORKER), model, self._out, str(os.getpid())], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def offer(self, objective: float, x: np.ndarray) -> None:
        """Offer the child a plan feasible for the full model (the parent's best so far): it reads
        it when it decides whether to search a neighbourhood (`_portfolio_worker.py`). Written to a
        temporary name and renamed, so the child never reads half a file; a failure is ignored (the
        child then decides on its own plans)."""
        if self._answer is not None or self._proc.poll() is not None:
            return
        tmp = os.path.join(self._dir, "offer.part.npz")
        try:
            np.savez(tmp, objective=np.asarray(float(objective)), x=np.asarray(x, dtype=np.float64))
            os.replace(tmp, os.path.join(self._dir, "offer.npz"))
        except OSError:
            pass

    def answer(self, wait_s: float | None = 0.0) -> CompanionAnswer | None:
        """The child's answer once it has finished (waiting at most `wait_s` seconds, None: until it
        has), else None."""
        if self._answer is None:
            try:
                self._proc.wait(timeout=None if wait_s is None else max(wait_s, 0.0))
            except subprocess.TimeoutExpired:
                return None
            self._answer = self._read()
        return self._answer

    def stop(self, wait_s: float = PORTFOLIO_STOP_S) -> CompanionAnswer | None:
        """Ask the child to stop (it still writes its incumbent) and wait at most `wait_s` for it."""
        if self._answer is None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        return self.answer(wait_s)

    def close(self) -> None:
        """Kill the child if it still runs, and remove its files."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Companion:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self) -> CompanionAnswer:
        try:
            with np.load(self._out) as z:
                x = z["x"] if bool(z["has_solution"]) else None
                return CompanionAnswer(str(z["status"]), float(z["objective"]), float(z["bound"]), x,
                                       bool(z["neighbourhood"]) if "neighbourhood" in z.files else False)
        except (OSError, KeyError, ValueError):  # the child died before writing (killed, out of memory)
            return CompanionAnswer(f"child exited with code {self._proc.returncode}", math.nan, math.nan, None)
