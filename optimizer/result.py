"""The Result of a solve: status, objective, bound, gap, timings, the plan and its evaluation."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .plan import Plan

SOLVED = ("optimal", "feasible_within_gap", "time_limit_with_incumbent")
EXIT_CODES = {"optimal": 0, "feasible_within_gap": 0, "time_limit_with_incumbent": 0,
              "infeasible": 3, "unbounded": 3, "time_limit_no_solution": 4, "error": 1}


class VerificationError(AssertionError):
    pass


@dataclass
class Result:
    """What ``solve`` returns. Money in USD (the model's $M scale is undone here)."""

    status: str
    objective_usd: float | None = None          # solver objective x scale (expected NPV)
    best_bound_usd: float | None = None
    mip_gap: float | None = None
    build_s: float = 0.0
    handoff_s: float = 0.0
    solve_s: float = 0.0
    plan: Plan | None = None
    evaluation: object | None = None           # optimizer.evaluate.Evaluation of ``plan``
    baselines: dict[str, float] = field(default_factory=dict)
    baseline_violations: dict[str, int] = field(default_factory=dict)
    shadow_prices: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_cashflows: pd.DataFrame = field(default_factory=pd.DataFrame)
    diagnosis: list[str] = field(default_factory=list)
    message: str = ""
    n_variables: int = 0
    n_constraints: int = 0
    n_integer: int = 0
    instance_name: str = ""
    instance_path: str | None = None           # set by the CLI: lets the report re-read the instance
    cvar_weight: float = 0.0                   # objective (1 - w) E[NPV] + w CVaR_alpha[NPV]
    cvar_alpha: float = 0.95
    cvar_model_usd: float | None = None        # the model's Rockafellar-Uryasev CVaR (weight > 0)
    risk_objective_usd: float | None = None    # weight > 0: the solver's (1 - w) E[NPV] + w CVaR (best bound and gap refer to it)
    cvar_polished: bool = False                # weight 1: operations re-optimised afterwards (CVaR may only rise)
    voi: object | None = None                  # optimizer.voi.ValueOfInformation (EVPI, VSS)

    # ------------------------------------------------------------ accessors

    @property
    def solved(self) -> bool:
        return self.status in SOLVED and self.plan is not None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.status, 1)

    @property
    def npv_usd(self) -> float | None:
        """Expected NPV of the plan as the independent evaluator computes it."""
        return None if self.evaluation is None else self.evaluation.npv_usd

    @property
    def npv_usd_by_scenario(self) -> dict[str, float]:
        return {} if self.evaluation is None else dict(self.evaluation.npv_usd_by_scenario)

    @property
    def cashflows(self) -> pd.DataFrame:
        return pd.DataFrame() if self.evaluation is None else self.evaluation.cashflows

    @property
    def kpis(self) -> pd.DataFrame:
        return pd.DataFrame() if self.evaluation is None else self.evaluation.kpis

    @property
    def allocation(self) -> pd.DataFrame:
        return pd.DataFrame() if self.evaluation is None else self.evaluation.allocation

    @property
    def cvar_usd(self) -> float | None:
        """CVaR_alpha of the plan's NPV, from the evaluator's per-scenario NPVs (optimizer.risk)."""
        if self.evaluation is None:
            return None
        from .risk import result_cvar_usd

        return result_cvar_usd(self, self.cvar_alpha)

    @property
    def best_baseline(self) -> tuple[str, float] | None:
        if not self.baselines:
            return None
        name = max(self.baselines, key=self.baselines.get)
        return name, self.baselines[name]

    @property
    def uplift_usd(self) -> float | None:
        bb = self.best_baseline
        if bb is None or self.npv_usd is None:
            return None
        return self.npv_usd - bb[1]

    # ------------------------------------------------------------ checks

    def verify(self, rtol: float = 1e-6) -> None:
        """Raise VerificationError unless the solver's objective equals the evaluator's NPV
        of the plan (relative ``rtol``, absolute floor 1 USD) and the evaluator finds no violation."""
        problems = self.check(rtol)
        if problems:
            raise VerificationError("; ".join(problems))

    def check(self, rtol: float = 1e-6) -> list[str]:
        if not self.solved:
            return [f"no solution to verify (status {self.status})"]
        problems = []
        obj, npv = self.objective_usd, self.npv_usd
        if obj is None or npv is None or not math.isfinite(obj):
            problems.append("objective or evaluator NPV missing")
        elif abs(obj - npv) > max(rtol * max(abs(obj), abs(npv)), 1.0):
            problems.append(f"solver objective {obj:,.2f} USD differs from evaluator NPV {npv:,.2f} USD "
                            f"(difference {obj - npv:,.2f})")
        cm, ce = self.cvar_model_usd, self.cvar_usd
        if cm is not None and ce is not None:
            tol = max(rtol * max(abs(cm), abs(ce)), 1.0)
            # R-U gives the CVaR exactly when eta is optimal for the solution (an optimal solve);
            # below it otherwise (an incumbent stopped by a limit, or after the weight-1 polish)
            exact = self.status == "optimal" and not self.cvar_polished
            if ce < cm - tol or (exact and abs(ce - cm) > tol):
                problems.append(f"model CVaR {cm:,.2f} USD differs from the evaluator's CVaR {ce:,.2f} USD")
        if self.evaluation is not None and self.evaluation.violations:
            v = self.evaluation.violations
            problems.append(f"evaluator found {len(v)} violation(s), first: {v[0]}")
        return problems

    # ------------------------------------------------------------ output

    def summary(self) -> dict:
        bb = self.best_baseline
        return {
            "instance": self.instance_name,
            "instance_path": self.instance_path,
            "scenario_probabilities": dict(getattr(self.evaluation, "probabilities", {}) or {}),
            "status": self.status,
            "message": self.message,
            "npv_usd": self.npv_usd,
            "npv_usd_by_scenario": self.npv_usd_by_scenario,
            "objective_usd": self.objective_usd,
            "evaluator_npv_usd": self.npv_usd,
            "best_bound_usd": self.best_bound_usd,
            "mip_gap": self.mip_gap,
            "baselines": self.baselines,
            "best_baseline": bb[0] if bb else None,
            "uplift_over_best_baseline_usd": self.uplift_usd,
            "violations": list(self.evaluation.violations) if self.evaluation is not None else [],
            "diagnosis": self.diagnosis,
            **self._risk_summary(),
            "build_s": round(self.build_s, 4),
            "handoff_s": round(self.handoff_s, 4),
            "solve_s": round(self.solve_s, 4),
            "n_variables": self.n_variables,
            "n_constraints": self.n_constraints,
            "n_integer": self.n_integer,
        }

    def _risk_summary(self) -> dict:
        """``risk`` {weight, alpha, cvar_usd}, ``evpi_usd``, ``vss_usd`` (and ``value_of_information``
        details) for stochastic instances or risk-averse solves."""
        stochastic = len(self.npv_usd_by_scenario) > 1
        out: dict = {}
        if stochastic or self.cvar_weight:
            out["risk"] = {"weight": self.cvar_weight, "alpha": self.cvar_alpha, "cvar_usd": self.cvar_usd,
                           "model_cvar_usd": self.cvar_model_usd, "objective_usd": self.risk_objective_usd}
        if stochastic or self.voi is not None:
            v = self.voi
            out["evpi_usd"] = getattr(v, "evpi_usd", None)
            out["vss_usd"] = getattr(v, "vss_usd", None)
            out["value_of_information"] = v.as_dict() if v is not None else None
        return out

    def write(self, out_dir: str | Path, formats: tuple[str, ...] = ("csv",)) -> Path:
        """summary.json, plan.csv (site x month allocation), cashflows.csv, kpis.csv,
        npv_breakdown.csv, shadow_prices.csv and plan/ (one file per decision table)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(_jsonable(self.summary()), indent=2))
        if self.plan is not None:
            self.plan.to_dir(out / "plan")
        tables = {
            "plan": self.allocation,
            "cashflows": self.cashflows,
            "kpis": self.kpis,
            "shadow_prices": self.shadow_prices,
        }
        if self.evaluation is not None:
            tables["npv_breakdown"] = self.evaluation.npv_breakdown().reset_index()
            tables["leases"] = self.plan.leases if self.plan is not None else pd.DataFrame()
            tables["contracts"] = self.plan.contracts if self.plan is not None else pd.DataFrame()
        for name, df in tables.items():
            if df is None:
                continue
            if "csv" in formats:
                df.to_csv(out / f"{name}.csv", index=False)
            if "parquet" in formats:
                df.to_parquet(out / f"{name}.parquet", index=False)
        return out


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "item"):
        return x.item()
    return x
