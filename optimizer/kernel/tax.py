"""Tax arithmetic: depreciation schedules (straight line, MACRS with bonus), pure numpy.

MACRS: the US General Depreciation System percentages under the half-year convention, as
published by the IRS (Publication 946, Appendix A, Table A-1: 3-, 5-, 7-, 10-year property at
200% declining balance, 15- and 20-year at 150%, each switching to straight line when that is
larger). Taxpayers use the published (rounded) table, so the table is data here, not the rule;
``tests/test_financing.py`` re-derives it from the declining-balance rule to check the typing.

Bonus depreciation: a share ``bonus`` of the cost is deducted in the year the asset is placed in
service and the rest follows the schedule: fractions f'[0] = bonus + (1 - bonus) f[0],
f'[k] = (1 - bonus) f[k] (FACTS.md section 11: 100% bonus restored in 2025 for mining equipment).
"""

from __future__ import annotations

import numpy as np

# IRS Publication 946, Table A-1 (half-year convention), percent of cost by recovery year
MACRS_HALF_YEAR_PERCENT: dict[int, tuple[float, ...]] = {
    3: (33.33, 44.45, 14.81, 7.41),
    5: (20.00, 32.00, 19.20, 11.52, 11.52, 5.76),
    7: (14.29, 24.49, 17.49, 12.49, 8.93, 8.92, 8.93, 4.46),
    10: (10.00, 18.00, 14.40, 11.52, 9.22, 7.37, 6.55, 6.55, 6.56, 6.55, 3.28),
    15: (5.00, 9.50, 8.55, 7.70, 6.93, 6.23, 5.90, 5.90, 5.91, 5.90, 5.91, 5.90, 5.91, 5.90, 5.91, 2.95),
    20: (3.750, 7.219, 6.677, 6.177, 5.713, 5.285, 4.888, 4.522, 4.462, 4.461, 4.462, 4.461, 4.462, 4.461,
         4.462, 4.461, 4.462, 4.461, 4.462, 4.461, 2.231),
}
MACRS_YEARS = tuple(sorted(MACRS_HALF_YEAR_PERCENT))


def depreciation_fractions(method: str, years: int | None = None, bonus_share: float = 0.0) -> np.ndarray:
    """Share of an asset's cost deducted in each tax year, year 0 = the year it is placed in
    service; sums to 1 (``none``: an empty array, nothing is ever deducted).

    - ``straight_line``: 1/years in each of ``years`` years (full-year convention);
    - ``macrs``: the IRS half-year table for ``years`` (3, 5, 7, 10, 15, 20);
    - a ``bonus_share`` b moves b of the cost into year 0: f' = (1 - b) f, f'[0] += b.
    """
    if method == "none":
        return np.zeros(0)
    if method == "straight_line":
        if years is None or years <= 0:
            raise ValueError(f"straight_line depreciation needs years > 0, got {years}")
        f = np.full(int(years), 1.0 / int(years))
    elif method == "macrs":
        if years not in MACRS_HALF_YEAR_PERCENT:
            raise ValueError(f"MACRS recovery period must be one of {MACRS_YEARS}, got {years}")
        f = np.array(MACRS_HALF_YEAR_PERCENT[years]) / 100.0
    else:
        raise ValueError(f"unknown depreciation method {method!r}")
    if not 0.0 <= bonus_share <= 1.0:
        raise ValueError(f"bonus_share must be in [0, 1], got {bonus_share}")
    out = (1.0 - bonus_share) * f
    out[0] += bonus_share
    return out
