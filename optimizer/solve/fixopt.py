"""Fix-and-optimize over blocks of columns: a primal heuristic for plans far from the bound.

Given a plan `x` feasible for the model and a block label per column (`blocks`: a site's index,
or -1 for columns shared by every site: cash, debt, taxes, company overhead), the first step fixes
every integer column at `x` and re-optimises the continuous part (the LP HiGHS is left with after
presolve), for at most `CONTINUOUS_SHARE` of the time (and at least `STEP_LIMIT_S`); each next step picks
`BLOCKS_PER_STEP` blocks, fixes every column of the other blocks at its value in `x` (integers
rounded, values clipped into the column's bounds) and solves the MIP that is left, from `x`, for
at most `STEP_LIMIT_S`. A better plan replaces `x`. Blocks are visited in a random order (a fixed
seed: the same steps every run), reshuffled after each pass; the search ends when its time is up
or a whole pass improved nothing.

Why it is exact where it matters. Every step is a restriction of the model (columns fixed at values
inside their bounds) that `x` satisfies, so each plan it returns is feasible for the model, and its
objective is never worse than `x`'s. It gives no bound: the caller's bound stays the search's.
A label that puts a column in the "wrong" block only changes which neighbourhood a step searches.

Why sites. Sites share only the company's cash (and its debt, taxes and overhead): a step that
frees two sites' conversions, leases, fleet and power and every shared column re-plans those two
sites under every cash floor with the others' cash flows held. On the large benchmark the full
model's LP relaxation does not finish within a 300 s limit (so no RINS neighbourhood there), while
a step with 2 of 30 sites free is solved or stopped in 2-10 s (presolve removes the fixed
columns). Measured (benchmarks/README.md, ninth pass): from the 3,633.7 M$ plan of large seed 0,
steps of 2 sites for at most 10 s reached 4,121 M$ in 90 s; steps of 3 sites for 20 s 3,957 M$ in
82 s. Why the continuous step first: a heuristic incumbent's operations, sales and draws can be far
from the best its integers allow (a 3,798 M$ plan of large seed 0: +248 M$ from that LP alone, 14 s),
and the later steps hold the other sites' continuous columns where the start has them.

Imports numpy only: the portfolio's child process (`_portfolio_worker.py`, which imports no part
of the package) loads this file from its folder as it loads heap.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

BLOCKS_PER_STEP = 2  # blocks freed together in one step
STEP_LIMIT_S = 10.0  # a step's sub-MIP stops after this long (or when the search's time is up)
CONTINUOUS_SHARE = 0.3  # the first step (every integer fixed) may take this share of the search's time
MIN_STEP_S = 0.5  # no step starts with less time left than this
SEED = 0

# sub_mip(fix, values, time_limit_s, start) -> (objective, x) of the MIP with columns `fix` fixed at
# `values`, started from `start`, or None when it found no plan
SubMip = Callable[[np.ndarray, np.ndarray, float, np.ndarray], "tuple[float, np.ndarray] | None"]
# continuous(x, time_limit_s) -> (objective, values) of the LP with every integer column fixed at x,
# or None (not solved in time)
Continuous = Callable[[np.ndarray, float], "tuple[float, np.ndarray] | None"]


def fix_and_optimize(sub_mip: SubMip, x: np.ndarray, objective: float, blocks: np.ndarray, lower: np.ndarray,
                     upper: np.ndarray, integer: np.ndarray, time_limit_s: float, maximize: bool,
                     stop: Callable[[], bool] = lambda: False, seed: int = SEED,
                     continuous: Continuous | None = None) -> tuple[float, np.ndarray] | None:
    """The best plan found from `x` (objective `objective`) by fix-and-optimize over `blocks`
    (module docstring): (objective, values) when it is better than `x`, else None. `integer`: a
    boolean mask of the integer columns; `stop()`: True ends the search after the current step;
    `seed`: the order in which blocks are visited (two searches from one plan: two seeds);
    `continuous`: the first step's LP (default: `sub_mip` with every integer fixed, which HiGHS
    solves through its MIP solver: slower than an LP on large models)."""
    t0 = time.monotonic()
    best = None

    def gain(r) -> bool:
        return r is not None and (r[0] - objective if maximize else objective - r[0]) > 1e-9 * max(1.0, abs(objective))

    ints = np.flatnonzero(integer).astype(np.int32)
    if ints.size and time_limit_s >= MIN_STEP_S and not stop():  # the continuous part for x's integers
        limit = min(time_limit_s, max(STEP_LIMIT_S, CONTINUOUS_SHARE * time_limit_s))
        r = continuous(x, limit) if continuous is not None else sub_mip(ints, np.round(x[ints]), limit, x)
        if gain(r):
            objective, x = r
            best = (objective, x)
    labels = np.unique(blocks[blocks >= 0])
    if labels.size <= BLOCKS_PER_STEP:  # one step would free everything: that is the model itself
        return best
    rng = np.random.default_rng(seed)
    order, improved = [], True
    while not stop():
        left = time_limit_s - (time.monotonic() - t0)
        if left < MIN_STEP_S:
            break
        if not order:
            if not improved:
                break  # a whole pass found nothing
            order, improved = rng.permutation(labels).tolist(), False
        pick, order = order[:BLOCKS_PER_STEP], order[BLOCKS_PER_STEP:]
        fix = np.flatnonzero((blocks >= 0) & ~np.isin(blocks, pick)).astype(np.int32)
        values = np.clip(x[fix], lower[fix], upper[fix])
        values[integer[fix]] = np.round(values[integer[fix]])
        r = sub_mip(fix, values, min(STEP_LIMIT_S, left), x)
        if gain(r):
            objective, x = r
            best, improved = (objective, x), True
    return best
