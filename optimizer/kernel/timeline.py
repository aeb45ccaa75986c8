"""Calendar months and planning periods.

Months are written ``YYYY-MM``. Internally a month is an integer ordinal
(year * 12 + month - 1) so arithmetic on months is integer arithmetic.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# ASCII digits only, the whole string: ``\d`` would take full-width digits and ``$`` a trailing newline
MONTH_RE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")


def month_ordinal(month: str) -> int:
    """``'2026-03'`` -> integer ordinal (year*12 + month-1)."""
    m = MONTH_RE.fullmatch(month) if isinstance(month, str) else None
    if not m:
        raise ValueError(f"must be a month written YYYY-MM, got {month!r}")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def month_label(ordinal: int) -> str:
    return f"{ordinal // 12:04d}-{ordinal % 12 + 1:02d}"


@functools.cache
def days_in_month(ordinal: int) -> int:
    """Days of the month ``ordinal`` (kept: a lease's schedule asks for every month of its term
    past the horizon, ~6,000 calls per compile of the demo, which a sweep compiles at every point)."""
    return calendar.monthrange(ordinal // 12, ordinal % 12 + 1)[1]


@dataclass(frozen=True)
class Timeline:
    """The horizon: ``n_periods`` periods of ``period_months`` calendar months each.

    Period ``t`` covers months ``start + t*L`` .. ``start + (t+1)*L - 1``.
    """

    start: int  # month ordinal of the first month
    n_periods: int
    period_months: int = 1

    @property
    def n_months(self) -> int:
        return self.n_periods * self.period_months

    @cached_property
    def month_ordinals(self) -> np.ndarray:
        return self.start + np.arange(self.n_months)

    @cached_property
    def period_start_months(self) -> np.ndarray:
        return self.start + self.period_months * np.arange(self.n_periods)

    @cached_property
    def labels(self) -> list[str]:
        """Label of each period: its first month."""
        return [month_label(int(m)) for m in self.period_start_months]

    @cached_property
    def month_days(self) -> np.ndarray:
        return np.array([days_in_month(int(m)) for m in self.month_ordinals], dtype=float)

    @cached_property
    def days(self) -> np.ndarray:
        """Calendar days in each period."""
        return self.month_days.reshape(self.n_periods, self.period_months).sum(axis=1)

    @cached_property
    def hours(self) -> np.ndarray:
        return 24.0 * self.days

    @cached_property
    def months_elapsed_at_end(self) -> np.ndarray:
        """Months from horizon start to the end of each period (1, 2, ... for monthly)."""
        return self.period_months * (np.arange(self.n_periods) + 1.0)

    @property
    def end(self) -> int:
        """Ordinal of the last month in the horizon."""
        return self.start + self.n_months - 1

    def period_of_month(self, ordinal: int) -> int:
        """Period index holding calendar month ``ordinal`` (may be <0 or >=n_periods)."""
        return (ordinal - self.start) // self.period_months

    def period_of(self, month: str) -> int:
        return self.period_of_month(month_ordinal(month))

    def lead_periods(self, lead_months: int) -> int:
        """Whole periods needed to cover a lead time (rounded up)."""
        return -(-int(lead_months) // self.period_months)

    def year_of_period(self, t: int) -> int:
        return int(self.period_start_months[t]) // 12
