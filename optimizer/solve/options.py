"""Solve settings: ``SolveOptions`` (a frozen dataclass; ``solve(instance, **options)`` takes its fields)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from optimizer.instance.schema import Instance
from optimizer.plan import Plan
from optimizer.solve.diagnose import DIAGNOSIS_TIME_LIMIT_S

START_BASELINES = ("greedy", "keep-mining")  # MIP-start candidates when baselines are not reported
# the MIP search gets at least this long (or the whole limit, when shorter) however long the
# preparation took: a limit shorter than the preparation still returns the MIP start, or better
MIN_SEARCH_S = 1.0


def search_limit(time_limit_s: float | None, spent_s: float) -> float | None:
    """Seconds left for the MIP search of a solve limited to ``time_limit_s`` (wall, counted from
    the solve's start) after ``spent_s`` seconds of preparation (compile, build, hand-off, the MIP
    start's baselines): ``time_limit_s - spent_s``, at least ``min(time_limit_s, MIN_SEARCH_S)``;
    None without a limit. (Large benchmark, 120 s: 33 s of preparation, which the search's own
    limit used to come on top of, so the solve took 156 s.)"""
    if time_limit_s is None:
        return None
    return max(time_limit_s - spent_s, min(time_limit_s, MIN_SEARCH_S))


@dataclass(frozen=True)
class SolveOptions:
    # wall seconds for one solve, counted from its start: the preparation (compile, build, hand-off,
    # the MIP start) and the MIP search share it (`search_limit`); the answer's polish and its
    # evaluation come after. Each extra solve (EVPI/VSS, a risk polish) has its own.
    time_limit_s: float | None = None
    mip_gap: float = 0.005
    threads: int | None = None
    # start HiGHS from the best feasible baseline plan: True (default) always, False never, None only
    # when `baselines` are evaluated anyway. Measured (benchmarks/README.md): on the medium benchmark
    # HiGHS does not improve on it within 60 s, and without it its own incumbents are far worse
    mip_start: bool | None = True
    baselines: bool = True          # evaluate the baselines and report the uplift
    shadow_prices: bool = True      # LP with integers fixed -> grid and power shadow prices
    cvar_weight: float | None = None  # None: the instance's risk.weight (0 without a risk section)
    cvar_alpha: float | None = None   # None: the instance's risk.alpha (0.95)
    value_of_information: bool | None = None  # EVPI and VSS (extra solves); None: on when >1 scenario
    value_of_flexibility: bool | None = None  # a staged tree: also solve its two-stage form (one extra solve); None: on
    first_stage: Plan | None = None  # a Plan: fix its first-stage decisions, optimise operations only
    first_stage_until: str | None = None  # with first_stage: fix only the decisions of months before this YYYY-MM
    first_stage_sales: bool = False  # with first_stage: fix its treasury BTC sales too (btc_sales, per month)
    log: bool = False
    highs_options: dict | None = None  # raw HiGHS options (name -> value) on top of the defaults below
    lazy_cash: bool = True  # enforce the cash floor by row generation (exact; see HighsBackend._solve_lazy)
    lazy_cash_window: int = 1  # months either side of a broken floor enforced with it (same scenario)
    lazy_cash_lp_rounds: bool = False  # first enforce the floors the LP relaxation breaks (HighsBackend._lp_rounds)
    # with lazy_cash: after PORTFOLIO_DELAY_S also solve the full model in a child process on the
    # other core and keep the better answer (solve/portfolio.py); False: one process only
    portfolio: bool = True
    diagnosis_time_limit_s: float = DIAGNOSIS_TIME_LIMIT_S  # an infeasible instance's diagnosis stops after this (diagnose.py)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s: must be > 0, got {self.time_limit_s}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap: must be in [0, 1), got {self.mip_gap}")
        if self.lazy_cash_window < 0:
            raise ValueError(f"lazy_cash_window: must be >= 0, got {self.lazy_cash_window}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads: must be >= 1, got {self.threads}")
        if self.cvar_weight is not None and not 0 <= self.cvar_weight <= 1:
            raise ValueError(f"cvar_weight: must be in [0, 1], got {self.cvar_weight}")
        if self.cvar_alpha is not None and not 0 <= self.cvar_alpha < 1:
            raise ValueError(f"cvar_alpha: must be in [0, 1), got {self.cvar_alpha}")
        if not self.diagnosis_time_limit_s > 0:
            raise ValueError(f"diagnosis_time_limit_s: must be > 0, got {self.diagnosis_time_limit_s}")


def with_risk(opts: SolveOptions, instance: Instance) -> SolveOptions:
    """Fill cvar_weight / cvar_alpha left None from the instance's risk section."""
    r = instance.risk
    w = opts.cvar_weight if opts.cvar_weight is not None else (r.weight if r is not None else 0.0)
    a = opts.cvar_alpha if opts.cvar_alpha is not None else (r.alpha if r is not None else 0.95)
    return replace(opts, cvar_weight=float(w), cvar_alpha=float(a))
