"""Numbers in words for people: money, MW, counts, BTC (the console, the report, the workbook and
the decision sentences use these, so a figure reads the same everywhere). No heavy imports."""

from __future__ import annotations

import math


def usd(x: float | None) -> str:
    """$537.20M, $1.25B, -$3.10M, $950: two decimals in millions and billions (headline figures)."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    a, sign = abs(x), "-" if x < 0 else ""
    if a >= 1e9:
        return f"{sign}${a / 1e9:,.2f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:,.2f}M"
    return f"{sign}${a:,.0f}"


def money(x: float | None) -> str:
    """$27M, $1.2B, $450k, $950: three significant digits (amounts inside sentences)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    a, sign = abs(x), "-" if x < 0 else ""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            v = a / scale
            return f"{sign}${v:,.0f}{suffix}" if v >= 100 else f"{sign}${v:.3g}{suffix}"
    return f"{sign}${a:,.0f}"


def musd(x: float | None, decimals: int = 2) -> str:
    """A number of USD millions without the unit (table cells whose header says "M$")."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x / 1e6:,.{decimals}f}"


def count(x: float) -> str:
    """Whole units as 20,000; a continuous count as 'about 1,235'."""
    r = round(x)
    return f"{r:,}" if abs(x - r) <= 1e-6 * max(1.0, abs(x)) else f"about {r:,}"


def mw(x: float) -> str:
    """26 MW, 16.25 MW, 0.5 MW: no trailing zeros, at most two decimals."""
    s = f"{x:,.2f}".rstrip("0").rstrip(".")
    return f"{s} MW"


def btc(x: float) -> str:
    """2,000 or 0.35: whole coins without decimals, small amounts with two."""
    return f"{x:,.0f}" if abs(x - round(x)) < 5e-3 or abs(x) >= 100 else f"{x:,.2f}"
