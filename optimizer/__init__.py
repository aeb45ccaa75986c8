"""Mining-to-AI capacity allocation optimizer.

The short imports of the public API::

    from optimizer import Instance, solve, evaluate, Plan, baseline_plan, sweep, breakeven, decisions, terminal_check

``solve`` and ``evaluate`` are bound here eagerly (each shares its name with its subpackage, and
an eager binding is the one that cannot be shadowed by the subpackage); the analyses load on
first use (PEP 562 ``__getattr__``). The package's layers are described in ARCHITECTURE.md.
"""

from optimizer.errors import InputError, NoSolutionError
from optimizer.instance.schema import Instance

__version__ = "0.1.0"

from optimizer.evaluate import BASELINES, Evaluation, baseline_plan, evaluate  # noqa: E402
from optimizer.plan import Plan  # noqa: E402
from optimizer.solve import PersistentSolver, Result, SolveOptions, solve  # noqa: E402


def __getattr__(name: str):
    """The analyses on first use (start-up speed: they pull in dask, matplotlib, ...)."""
    if name == "sweep":
        from optimizer.analysis.sweep import sweep as value
    elif name == "breakeven":
        from optimizer.analysis.breakeven import breakeven as value
    elif name == "tornado":
        from optimizer.analysis.tornado import tornado as value
    elif name == "risk_frontier":
        from optimizer.analysis.risk import risk_frontier as value
    elif name == "terminal_check":
        from optimizer.analysis.horizon import terminal_check as value
    elif name == "decisions":
        from optimizer.output.decisions import decisions as value
    else:
        raise AttributeError(f"module 'optimizer' has no attribute {name!r}")
    globals()[name] = value
    return value


__all__ = ["BASELINES", "Evaluation", "InputError", "Instance", "NoSolutionError", "decisions", "PersistentSolver", "Plan", "Result", "SolveOptions",
           "__version__", "baseline_plan", "breakeven", "evaluate", "risk_frontier", "solve", "sweep", "terminal_check",
           "tornado"]
