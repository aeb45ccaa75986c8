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
