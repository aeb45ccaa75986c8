"""User-facing input errors: one line naming the field path and the reason.

Every problem with what the user gave us (file missing, YAML/JSON syntax, a field out of
range, an unknown field, a broken cross-reference, a CSV column missing) becomes an
:class:`InputError` whose message is a single line such as
``sites[2].conversion.lead_months: must be >= 0, got -3``. The bottom layer: it imports
nothing from the package. Turning pydantic errors into such lines is
``optimizer.instance.loading.format_validation_error``.
"""

from __future__ import annotations


class InputError(Exception):
    """Bad user input; ``str(e)`` is one line fit for a terminal."""

    def __init__(self, message: str):
        super().__init__(one_line(message))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class NoSolutionError(LookupError):
    """A result has no plan: the instance is infeasible or unbounded, or no plan was found in the
    time limit. ``str(e)`` names the status and the diagnosis' first sentence;
    ``e.status`` and ``e.diagnosis`` hold them."""

    def __init__(self, status: str, message: str = "", diagnosis: list[str] | None = None):
        self.status, self.diagnosis = str(status), list(diagnosis or [])
        why = one_line(message or (self.diagnosis[0] if self.diagnosis else ""))
        super().__init__(f"no plan: the solve ended with status {self.status}" + (f": {why}" if why else "")
                         + " (see result.status and result.diagnosis)")
