"""The plan evaluator, independent of Pyomo: first stage, operating rule, cash-flow lines,
violation sentences, and the baseline plans.

``evaluate(instance, plan)`` is the public entry: a plan without operation rows is first
completed by the operating rule (``operations.complete_operations``), then every line of
models/economics.md is computed by ``evaluator.evaluate_as_given``.
"""

from __future__ import annotations

from optimizer.economics.data import Data, compile_instance
from optimizer.evaluate.baselines import BASELINES, baseline_plan, baseline_plans, evaluate_baselines
from optimizer.evaluate.evaluator import Evaluation, evaluate_as_given
from optimizer.evaluate.operations import complete_operations
from optimizer.instance.schema import Instance
from optimizer.plan import Plan


def evaluate(instance: Instance, plan: Plan, *, complete: bool = True, data: Data | None = None) -> Evaluation:
    """NPV, cash flows, allocation, KPIs and violations of ``plan``. With ``complete`` (default),
    a plan without operation rows is first completed by the operating rule."""
    data = data if data is not None else compile_instance(instance)
    if complete and not plan.has_operations:
        plan = complete_operations(instance, plan, data)
    return evaluate_as_given(instance, plan, data)


__all__ = ["BASELINES", "Evaluation", "baseline_plan", "baseline_plans", "complete_operations", "evaluate",
           "evaluate_as_given", "evaluate_baselines"]
