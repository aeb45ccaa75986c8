"""Solve settings: ``SolveOptions`` (a frozen dataclass; ``solve(instance, **options)`` takes its fields)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from optimizer.instance.schema import Instance
from optimizer.plan import Plan
from optimizer.solve.diagnose import DIAGNOSIS_TIME_LIMIT_S

START_BASELINES = ("greedy", "keep-mining")  # MIP-start candidates when baselines are not reported


@dataclass(frozen=True)
class SolveOptions:
    time_limit_s: float | None = None
    mip_gap: float = 0.005
    threads: int | None = None
    mip_start: bool = True          # start HiGHS from the best feasible baseline plan
    baselines: bool = True          # evaluate the baselines and report the uplift
    shadow_prices: bool = True      # LP with integers fixed -> grid and power shadow prices
    cvar_weight: float | None = None  # None: the instance's risk.weight (0 without a risk section)
    cvar_alpha: float | None = None   # None: the instance's risk.alpha (0.95)
    value_of_information: bool | None = None  # EVPI and VSS (extra solves); None: on when >1 scenario
    first_stage: Plan | None = None  # a Plan: fix its first-stage decisions, optimise operations only
    log: bool = False
    highs_options: dict | None = None  # raw HiGHS options (name -> value) on top of the defaults below
    lazy_cash: bool = True  # enforce the cash floor lazily (exact; see HighsBackend._solve_lazy)
    diagnosis_time_limit_s: float = DIAGNOSIS_TIME_LIMIT_S  # an infeasible instance's diagnosis stops after this (diagnose.py)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s: must be > 0, got {self.time_limit_s}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap: must be in [0, 1), got {self.mip_gap}")
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
