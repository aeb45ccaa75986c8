"""Vocabulary shared by every layer, written once: solve statuses, exit codes, progress reporting.

- ``Status``: what a solve (or an evaluation) ended with. A ``str`` enum, so
  ``result.status == "optimal"`` and JSON both see the plain name.
- ``ExitCode``: the command line's exit codes (README, "Exit codes"); ``exit_code(status)``.
- ``BREAKEVEN_TARGETS``: the target names of ``breakeven`` (``optimizer.analysis.breakeven``),
  its CLI help and its errors.
- ``Reporter``: how long work reports progress and notes without printing. Domain functions
  take ``progress: Reporter | None``; the CLI passes one that draws a bar on a terminal and
  writes plain lines otherwise (``optimizer.cli``). ``None`` means silent.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable


class Status(StrEnum):
    OPTIMAL = "optimal"                                      # within the requested MIP gap
    FEASIBLE_WITHIN_GAP = "feasible_within_gap"              # a limit stopped it, incumbent already within the gap
    TIME_LIMIT_WITH_INCUMBENT = "time_limit_with_incumbent"  # time limit, best plan found returned with its gap
    TIME_LIMIT_NO_SOLUTION = "time_limit_no_solution"        # time limit before any feasible plan
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    ERROR = "error"                                          # the solver failed
    EVALUATED = "evaluated"                                  # an evaluated plan (no solve), in result directories


# breakeven --target: the NPV crossing a level, or a first-stage decision flipping
BREAKEVEN_TARGETS: tuple[str, ...] = ("npv", "npv=VALUE", "converts:SITE", "signed:LEASE", "signed:CONTRACT", "sold:SITE",
                                      "acquired:SITE", "bought:OPTION", "expands:SITE", "expands:SITE/OPTION", "retires:SITE")
BREAKEVEN_TARGET_HELP = ("one of " + ", ".join(BREAKEVEN_TARGETS) + " (npv=VALUE: the NPV crosses VALUE, npv: 0; "
                         "the others: that first-stage decision flips)")

SOLVED: frozenset[Status] = frozenset({Status.OPTIMAL, Status.FEASIBLE_WITHIN_GAP, Status.TIME_LIMIT_WITH_INCUMBENT})

STATUS_MESSAGES: dict[Status, str] = {
    Status.OPTIMAL: "optimal within the requested gap",
    Status.FEASIBLE_WITHIN_GAP: "stopped by a limit with an incumbent already within the requested gap",
    Status.TIME_LIMIT_WITH_INCUMBENT: "time limit {time_limit_s} s reached; best plan found returned with its gap",
    Status.TIME_LIMIT_NO_SOLUTION: "time limit {time_limit_s} s reached before any feasible plan was found",
    Status.INFEASIBLE: "the instance is infeasible",
    Status.UNBOUNDED: "the instance is unbounded (an option earns money without limit)",
    Status.ERROR: "the solver failed",
    Status.EVALUATED: "plan evaluated",
}


# Said whenever a solve stopped by a limit before HiGHS had any dual bound (it was still in presolve
# or its root LP relaxation): no bound, hence no gap; never a made-up number.
NO_BOUND_NOTE = ("HiGHS had no bound yet (it stopped before solving its root LP relaxation), so the gap is unknown; "
                 "allow more time for a bound")


def status_message(status: str, time_limit_s: float | None = None) -> str:
    try:
        return STATUS_MESSAGES[Status(status)].format(time_limit_s=time_limit_s)
    except ValueError:
        return str(status)


class ExitCode(IntEnum):
    OK = 0               # success (solve: optimal, within the gap, or time limit with a solution)
    INTERNAL = 1         # internal error (OPTIMIZER_DEBUG=1 shows the traceback)
    INPUT = 2            # bad input: one line naming the file, the field and the reason
    INFEASIBLE = 3       # infeasible or unbounded; the diagnosis names what conflicts
    NO_SOLUTION = 4      # no solution within the time limit
    PARTIAL = 5          # sweep/tornado: some points failed; breakeven: stopped before its tolerance
    RULES_BROKEN = 6     # evaluate: the plan breaks rules (listed before its NPV, which assumes them away)
    WORKER_DIED = 7      # sweep/tornado: a worker process died (killed, out of memory); finished points are saved
    INTERRUPTED = 130    # Ctrl-C; sweeps resume where they stopped


_EXIT_BY_STATUS = {
    Status.OPTIMAL: ExitCode.OK, Status.FEASIBLE_WITHIN_GAP: ExitCode.OK, Status.TIME_LIMIT_WITH_INCUMBENT: ExitCode.OK,
    Status.EVALUATED: ExitCode.OK, Status.INFEASIBLE: ExitCode.INFEASIBLE, Status.UNBOUNDED: ExitCode.INFEASIBLE,
    Status.TIME_LIMIT_NO_SOLUTION: ExitCode.NO_SOLUTION, Status.ERROR: ExitCode.INTERNAL,
}


def exit_code(status: str) -> ExitCode:
    try:
        return _EXIT_BY_STATUS[Status(status)]
    except ValueError:
        return ExitCode.INTERNAL


@runtime_checkable
class Reporter(Protocol):
    """Progress of long work: ``start`` a task of ``total`` steps (None: unknown), ``advance``
    it, ``note`` a line worth telling the user (a warning, a resumed store), ``finish`` it."""

    def start(self, label: str, total: int | None = None) -> None: ...

    def advance(self, n: int = 1, label: str | None = None) -> None: ...

    def note(self, message: str) -> None: ...

    def finish(self) -> None: ...


class Silent:
    """A Reporter that reports nothing (the API default)."""

    def start(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1, label: str | None = None) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass


def reporter(progress: Reporter | bool | None) -> Reporter:
    """The Reporter to use for a ``progress`` argument (None or False: silent)."""
    if progress is None or progress is False or progress is True:
        return Silent()
    if not isinstance(progress, Reporter):
        raise TypeError(f"progress: expected a Reporter (start/advance/note/finish) or None, got {type(progress).__name__}")
    return progress
