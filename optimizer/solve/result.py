"""The Result of a solve: small typed reports (solver, risk, value of information), the plan and
its independent evaluation, the baselines, shadow prices. Money in USD (the model's $M scale is
undone here). ``Result.write`` hands its summary and tables to ``solve.resultdir``.

The API's frames (``cashflows``, ``kpis``, ``allocation``, ``site_allocation``, ``energy``,
``npv_breakdown`` and what ``statistics`` returns) are tidy and carry months as monthly
``pandas.Period`` (``shadow_prices`` keeps the labels of shadow_prices.csv); the Plan's decision tables keep ``YYYY-MM`` labels (its file format, read
back by ``Plan.load``). A Result without a solution (infeasible, unbounded, no plan within the
time limit) has ``solved`` False, its ``status``, ``message`` and ``diagnosis`` say why, and
reading ``plan`` raises :class:`optimizer.errors.NoSolutionError` (``has_plan`` tests first).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from optimizer.constants import SOLVED, Status, exit_code
from optimizer.economics.ledger import ITEM_TABLE
from optimizer.errors import NoSolutionError
from optimizer.evaluate import Evaluation
from optimizer.evaluate.statistics import Statistics, to_periods, to_xarray
from optimizer.kernel.finance import cvar_usd
from optimizer.plan import Plan
from optimizer.solve.resultdir import write_result_dir


class VerificationError(AssertionError):
    pass


# one row per first-stage decision that changes when every terminal value is 0 (analysis.horizon.terminal_check)
TERMINAL_CHANGE_COLUMNS = ["decision", "key", "with_terminal", "without_terminal"]

@dataclass
class SolverReport:
    """How the solve went: status and message, objective and bound, sizes and timings (seconds)."""

    status: Status | str = Status.ERROR
    message: str = ""
    objective_usd: float | None = None     # solver objective x scale (expected NPV; see RiskReport for CVaR solves)
    best_bound_usd: float | None = None    # HiGHS's dual bound on the solver's objective, when it has one
    mip_gap: float | None = None
    build_s: float = 0.0                   # compile + pre-check + Pyomo build
    handoff_s: float = 0.0                 # standard form + passModel
    solve_s: float = 0.0
    n_variables: int = 0
    n_constraints: int = 0
    n_integer: int = 0
    diagnosis: list[str] = field(default_factory=list)  # sentences: infeasibility, notes from the pipeline


@dataclass
class RiskReport:
    """The objective's risk blend (1 - weight) E[NPV] + weight CVaR_alpha[NPV] (models/risk.md)."""

    weight: float = 0.0
    alpha: float = 0.95
    model_cvar_usd: float | None = None    # the model's Rockafellar-Uryasev CVaR (weight > 0)
    objective_usd: float | None = None     # weight > 0: the solver's blended objective (best bound and gap refer to it)
    polished: bool = False                 # weight 1: operations re-optimised afterwards (CVaR may only rise)


@dataclass
class ValueOfInformation:
    """EVPI and VSS of a stochastic instance (risk-neutral; ``optimizer.solve.voi``)."""

    evpi_usd: float | None
    vss_usd: float | None
    wait_and_see_usd: float | None          # sum_w p_w max NPV_w
    here_and_now_usd: float | None          # max E[NPV] (stochastic solution)
    mean_value_plan_usd: float | None       # EEV: E[NPV] of the mean-value plan, operations re-optimised
    expected_value_problem_usd: float | None  # optimum of the mean-value instance itself
    wait_and_see_by_scenario_usd: dict[str, float] = field(default_factory=dict)
    mip_gap: float = 0.0
    solves: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _get_plan(self: "Result") -> Plan:
    """The plan found; raises NoSolutionError when there is none (status and diagnosis say why)."""
    plan = self.__dict__.get("_plan")
    if plan is None:
        raise NoSolutionError(self.status, self.message, self.diagnosis)
    return plan


def _set_plan(self: "Result", value: Plan | None) -> None:
    self.__dict__["_plan"] = value


class Summary(dict):
    """``Result.summary``: the summary.json dict. Calling it (``result.summary()``, the older
    spelling) returns the same dict."""

    def __call__(self) -> "Summary":
        return self


@dataclass
class TreeReport:
    """The scenario tree of a solve (models/trees.md): its shape, the value of deciding on it
    rather than now-or-never, what to decide now and the contingent plan per node."""

    form: str                               # "two-stage" or "multistage"
    branch_months: list[str]
    nodes: int
    leaves: int
    stages: int
    two_stage_npv_usd: float | None = None  # the same leaves solved in the two-stage form (now-or-never)
    two_stage_status: str | None = None
    decide_now: list[str] = field(default_factory=list)          # the root's decisions in words
    contingent_plan: dict[str, dict] = field(default_factory=dict)  # node -> {from, description, decisions}
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # plan/ tables: nodes, decisions_by_node, ...
    notes: list[str] = field(default_factory=list)

    @property
    def staged(self) -> bool:
        return self.form != "two-stage"

    def summary(self, npv_usd: float | None) -> dict:
        out: dict = {"tree": {"form": self.form, "branch_months": self.branch_months, "nodes": self.nodes,
                              "leaves": self.leaves, "stages": self.stages}}
        if self.staged:
            flex = None if self.two_stage_npv_usd is None or npv_usd is None else npv_usd - self.two_stage_npv_usd
            out.update({"two_stage_npv_usd": self.two_stage_npv_usd, "value_of_flexibility_usd": flex,
                        "decide_now": self.decide_now, "contingent_plan": self.contingent_plan})
            if self.notes:
                out["tree"]["notes"] = self.notes
        return out


@dataclass
class Result:
    """What ``solve`` returns (see the module docstring)."""

    solver: SolverReport = field(default_factory=SolverReport)
    plan: Plan | None = field(default=None, repr=False, compare=False)   # a property below: raises when there is none
    evaluation: Evaluation | None = None       # the evaluator's NPV, cash flows and violations of ``plan``
    baselines: dict[str, float] = field(default_factory=dict)          # baseline name -> evaluator NPV (USD)
    baseline_violations: dict[str, int] = field(default_factory=dict)  # baseline name -> rules it breaks
    risk: RiskReport = field(default_factory=RiskReport)
    voi: ValueOfInformation | None = None
    tree: TreeReport | None = None             # the scenario tree and, on a staged one, the value of flexibility
    shadow_prices: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_cashflows: pd.DataFrame = field(default_factory=pd.DataFrame)
    instance_name: str = ""
    instance_path: str | None = None           # set by the CLI: lets the report re-read the instance
    terminal_check: dict | None = None         # optimizer.analysis.horizon.terminal_check(...).summary(), when run

    # ------------------------------------------------------------ the solver report, flat

    @property
    def status(self) -> str:
        return self.solver.status

    @property
    def message(self) -> str:
        return self.solver.message

    @property
    def objective_usd(self) -> float | None:
        return self.solver.objective_usd

    @property
    def best_bound_usd(self) -> float | None:
        return self.solver.best_bound_usd

    @property
    def mip_gap(self) -> float | None:
        return self.solver.mip_gap

    @property
    def build_s(self) -> float:
        return self.solver.build_s

    @property
    def handoff_s(self) -> float:
        return self.solver.handoff_s

    @property
    def solve_s(self) -> float:
        return self.solver.solve_s

    @property
    def n_variables(self) -> int:
        return self.solver.n_variables

    @property
    def n_constraints(self) -> int:
        return self.solver.n_constraints

    @property
    def n_integer(self) -> int:
        return self.solver.n_integer

    @property
    def diagnosis(self) -> list[str]:
        return self.solver.diagnosis

    @property
    def cvar_weight(self) -> float:
        return self.risk.weight

    @property
    def cvar_alpha(self) -> float:
        return self.risk.alpha

    @property
    def cvar_model_usd(self) -> float | None:
        return self.risk.model_cvar_usd

    @property
    def risk_objective_usd(self) -> float | None:
        return self.risk.objective_usd

    @property
    def cvar_polished(self) -> bool:
        return self.risk.polished

    # ------------------------------------------------------------ accessors

    @property
    def has_plan(self) -> bool:
        return self.plan_or_none is not None

    @property
    def plan_or_none(self) -> Plan | None:
        """The plan, or None without a solution (for code that handles both without an exception)."""
        return self.__dict__.get("_plan")

    @property
    def solved(self) -> bool:
        return self.status in SOLVED and self.plan_or_none is not None

    @property
    def exit_code(self) -> int:
        return int(exit_code(self.status))

    @property
    def npv_usd(self) -> float | None:
        """Expected NPV of the plan as the independent evaluator computes it."""
        return None if self.evaluation is None else self.evaluation.npv_usd

    @property
    def npv_usd_by_scenario(self) -> dict[str, float]:
        return {} if self.evaluation is None else dict(self.evaluation.npv_usd_by_scenario)

    def _frame(self, name: str) -> pd.DataFrame:
        return pd.DataFrame() if self.evaluation is None else to_periods(getattr(self.evaluation, name))

    @property
    def cashflows(self) -> pd.DataFrame:
        """scenario, month (Period), period, site, item, usd, discount_factor, pv_usd: every cash-flow line."""
        return self._frame("cashflows")

    @property
    def kpis(self) -> pd.DataFrame:
        """scenario, month (Period), hashrate, BTC mined, HPC MW, cost to mine, prices, treasury."""
        return self._frame("kpis")

    @property
    def allocation(self) -> pd.DataFrame:
        """Tidy: site, month (Period), owned, use, asset (ASIC model or lease), racks, mw, units
        (``Evaluation.allocation_long``; ``allocation.csv``)."""
        return self._frame("allocation_long")

    @property
    def site_allocation(self) -> pd.DataFrame:
        """Wide, one row per site and month (Period): racks and MW by use, units per model (``plan.csv``)."""
        return self._frame("allocation")

    @property
    def energy(self) -> pd.DataFrame:
        """scenario, month (Period), site, use (mining | hpc), mwh (PUE included)."""
        return self._frame("energy_use")

    @property
    def npv_breakdown(self) -> pd.DataFrame:
        """Expected PV (USD) of each cash-flow line: columns item, label, kind, pv_usd, in the
        ledger's order; pv_usd sums to ``npv_usd``."""
        if self.evaluation is None:
            return pd.DataFrame(columns=["item", "label", "kind", "pv_usd"])
        bd = self.evaluation.npv_breakdown().reset_index()
        from_ledger = {i.name: (i.label, i.kind) for i in ITEM_TABLE}
        bd.insert(1, "label", bd["item"].map(lambda i: from_ledger[i][0]))
        bd.insert(2, "kind", bd["item"].map(lambda i: from_ledger[i][1]))
        return bd

    @property
    def statistics(self) -> Statistics:
        """Money and energy grouped by site, use, item, year: ``result.statistics.capex(by="year")``
        (``optimizer.evaluate.statistics``). Raises NoSolutionError without a plan."""
        if self.evaluation is None:
            raise NoSolutionError(self.status, self.message, self.diagnosis)
        return self.evaluation.statistics

    def to_xarray(self):
        """Cash flows, KPIs, energy and allocation as one ``xarray.Dataset`` (needs xarray)."""
        if self.evaluation is None:
            raise NoSolutionError(self.status, self.message, self.diagnosis)
        return to_xarray(self.evaluation)

    def cvar_at(self, alpha: float) -> float | None:
        """CVaR_alpha of the plan's NPV (lower tail), from the evaluator's per-scenario NPVs."""
        if self.evaluation is None:
            return None
        ev = self.evaluation
        names = list(ev.npv_usd_by_scenario)
        return cvar_usd([ev.npv_usd_by_scenario[n] for n in names], [ev.probabilities[n] for n in names], alpha)

    @property
    def cvar_usd(self) -> float | None:
        """CVaR_alpha of the plan's NPV, from the evaluator's per-scenario NPVs (kernel.finance.cvar_usd)."""
        if self.evaluation is None:
            return None
        return self.cvar_at(self.cvar_alpha)

    @property
    def value_of_flexibility_usd(self) -> float | None:
        """E[NPV] of the tree solution minus that of the same leaves solved now-or-never (two-stage)."""
        t = self.tree
        if t is None or not t.staged or t.two_stage_npv_usd is None or self.npv_usd is None:
            return None
        return self.npv_usd - t.two_stage_npv_usd

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
        if npv is not None and self.evaluation is not None:
            npv = self.evaluation.objective_npv_usd  # the equity NPV, or the project NPV when that is the objective
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

    @property
    def summary(self) -> Summary:
        """summary.json as a dict (``result.summary["npv_usd"]``; ``result.summary()`` works too)."""
        bb = self.best_baseline
        return Summary({
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
            "terminal": self.evaluation.terminal() if self.evaluation is not None else None,
            **({"terminal_check": self.terminal_check} if self.terminal_check is not None else {}),
            "violations": list(self.evaluation.violations) if self.evaluation is not None else [],
            **(self.evaluation.valuation_summary() if self.evaluation is not None else {}),
            "diagnosis": self.diagnosis,
            **self._risk_summary(),
            **(self.tree.summary(self.npv_usd) if self.tree is not None else {}),
            "build_s": round(self.build_s, 4),
            "handoff_s": round(self.handoff_s, 4),
            "solve_s": round(self.solve_s, 4),
            "n_variables": self.n_variables,
            "n_constraints": self.n_constraints,
            "n_integer": self.n_integer,
        })

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
            if self.tree is not None and self.tree.staged:  # on a tree: its value over the mean-value plan
                out["mean_value_plan_npv_usd"] = getattr(v, "mean_value_plan_usd", None)
                out["value_over_mean_value_plan_usd"] = getattr(v, "vss_usd", None)
        return out

    def tables(self) -> dict[str, pd.DataFrame | None]:
        """The tables of a result directory: plan (site x month allocation; on a tree plan with one
        first stage per path its expectation, and plan_by_scenario), cashflows, kpis, shadow_prices
        and, once evaluated, npv_breakdown, leases and contracts."""
        ev = self.evaluation
        tables: dict[str, pd.DataFrame | None] = {
            "plan": ev.allocation if ev is not None else pd.DataFrame(),
            "allocation": ev.allocation_long if ev is not None else None,
            "cashflows": ev.cashflows if ev is not None else pd.DataFrame(),
            "kpis": ev.kpis if ev is not None else pd.DataFrame(),
            "shadow_prices": self.shadow_prices,
        }
        if ev is not None:
            tables["npv_breakdown"] = ev.npv_breakdown().reset_index()
            if len(ev.allocation_by_scenario):
                tables["plan_by_scenario"] = ev.allocation_by_scenario
            plan = self.plan_or_none
            tables["leases"] = plan.leases if plan is not None else pd.DataFrame()
            tables["contracts"] = plan.contracts if plan is not None else pd.DataFrame()
            if ev.valuation or not ev.debt_schedule.empty:  # the debt assumed with a plant needs no financing section
                tables["debt_schedule"] = ev.debt_schedule_by_year()
            if ev.valuation:
                tables["tax_schedule"] = ev.tax_schedule
        if self.terminal_check is not None:   # solve --terminal-check: the first-stage decisions that change
            tables["terminal_check"] = pd.DataFrame.from_records(self.terminal_check.get("changes") or [],
                                                                 columns=TERMINAL_CHANGE_COLUMNS)
        return tables

    def write(self, out_dir: str | Path, formats: tuple[str, ...] = ("csv",)) -> Path:
        """summary.json, plan.csv (site x month allocation), cashflows.csv, kpis.csv,
        npv_breakdown.csv, shadow_prices.csv, plan/ (one file per decision table; a tree solve's
        node tables beside them) and, last, manifest.json: ``optimizer.solve.resultdir.write_result_dir``."""
        extra = self.tree.tables if self.tree is not None and self.tree.staged else None
        return write_result_dir(out_dir, self.summary, self.tables(), self.plan_or_none, formats, kind="solve", plan_tables=extra)


# ``plan`` is a dataclass field (``Result(plan=...)``) read through a property: no plan -> NoSolutionError
Result.plan = property(_get_plan, _set_plan, doc=_get_plan.__doc__)
