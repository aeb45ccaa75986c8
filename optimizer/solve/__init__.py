"""Solving: the HiGHS backend, settings, the pipeline, the Result, diagnosis, value of information.

``solve(instance, **options)`` is the public entry (options: the fields of ``SolveOptions``):
one solve through ``pipeline.solve_model``; on an instance with more than one scenario, EVPI
and VSS are computed too (``voi.value_of_information``) unless ``value_of_information=False``.
"""

from __future__ import annotations

from optimizer.constants import Reporter
from optimizer.instance.schema import Instance
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import PersistentSolver, shadow_prices, solve_model
from optimizer.solve.result import Result, VerificationError
from optimizer.solve.voi import ValueOfInformation, value_of_information


def solve(instance: Instance, *, progress: Reporter | None = None, **options) -> Result:
    """Solve ``instance``; options are the fields of :class:`SolveOptions`. With more than one
    scenario, EVPI and VSS are computed too unless ``value_of_information=False`` (solve/voi.py).
    ``progress`` (a ``Reporter``) hears of each phase, of the MIP's progress and of each
    value-of-information solve; None is silent.

    On an instance with no solution (infeasible, unbounded, nothing found in the time limit)
    the Result says so: ``status``, ``message`` and ``diagnosis`` (sentences naming what
    conflicts), ``solved`` is False, and reading ``result.plan`` raises
    :class:`optimizer.errors.NoSolutionError` with that message (``result.has_plan`` tests first)."""
    opts = SolveOptions(**options)
    res = solve_model(instance, opts, progress)
    voi = opts.value_of_information
    if voi is None:
        voi = len(instance.scenarios) > 1 and opts.first_stage is None
    if voi and res.solved:
        rp = res if res.cvar_weight == 0 else None  # EVPI/VSS are risk-neutral: re-solve if risk-averse
        res.voi = value_of_information(instance, here_and_now=rp, progress=progress, **options)
    return res


__all__ = ["PersistentSolver", "Result", "SolveOptions", "ValueOfInformation", "VerificationError", "shadow_prices",
           "solve", "solve_model", "value_of_information"]
