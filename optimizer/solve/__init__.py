"""Solving: the HiGHS backend, settings, the pipeline, the Result, diagnosis, value of information.

``solve(instance, **options)`` is the public entry (options: the fields of ``SolveOptions``):
one solve through ``pipeline.solve_model``; on an instance with more than one scenario, EVPI
and VSS are computed too (``voi.value_of_information``) unless ``value_of_information=False``;
on a staged scenario tree, the same leaves solved in the two-stage form give the value of
flexibility unless ``value_of_flexibility=False`` (models/trees.md).
"""

from __future__ import annotations

from dataclasses import replace

from optimizer.constants import Reporter
from optimizer.instance.schema import Instance
from optimizer.instance.variants import two_stage_instance
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import PersistentSolver, shadow_prices, solve_model
from optimizer.solve.result import Result, TreeReport, VerificationError
from optimizer.solve.voi import ValueOfInformation, value_of_information


def solve(instance: Instance, *, progress: Reporter | None = None, **options) -> Result:
    """Solve ``instance``; options are the fields of :class:`SolveOptions`. With more than one
    scenario, EVPI and VSS are computed too unless ``value_of_information=False`` (solve/voi.py);
    on a staged scenario tree, the same leaves are also solved in the two-stage form (the
    now-or-never plan) unless ``value_of_flexibility=False``: ``Result.value_of_flexibility_usd``.
    ``progress`` (a ``Reporter``) hears of each phase, of the MIP's progress and of each
    value-of-information solve; None is silent.

    On an instance with no solution (infeasible, unbounded, nothing found in the time limit)
    the Result says so: ``status``, ``message`` and ``diagnosis`` (sentences naming what
    conflicts), ``solved`` is False, and reading ``result.plan`` raises
    :class:`optimizer.errors.NoSolutionError` with that message (``result.has_plan`` tests first)."""
    opts = SolveOptions(**options)
    res = solve_model(instance, opts, progress)
    flex = opts.value_of_flexibility
    if flex is None:
        flex = opts.first_stage is None
    if flex and res.solved and res.tree is not None and res.tree.staged:
        two = solve_model(two_stage_instance(instance), replace(opts, baselines=False, shadow_prices=False, value_of_information=False,
                                                                value_of_flexibility=False), progress)
        res.tree.two_stage_status = str(two.status)
        if two.solved:
            res.tree.two_stage_npv_usd = two.npv_usd
            if two.mip_gap:
                res.tree.notes.append(f"two-stage solve stopped at a {two.mip_gap:.2%} gap")
        else:
            res.tree.notes.append(f"two-stage solve: {two.status}")
    voi = opts.value_of_information
    if voi is None:
        voi = len(instance.scenarios) > 1 and opts.first_stage is None
    if voi and res.solved:
        rp = res if res.cvar_weight == 0 else None  # EVPI/VSS are risk-neutral: re-solve if risk-averse
        res.voi = value_of_information(instance, here_and_now=rp, progress=progress, **options)
    return res


__all__ = ["PersistentSolver", "Result", "SolveOptions", "TreeReport", "ValueOfInformation", "VerificationError", "shadow_prices",
           "solve", "solve_model", "value_of_information"]
