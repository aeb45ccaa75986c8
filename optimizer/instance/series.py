"""Time-series inputs: a constant, points (linear interpolation), a CSV column, or a seeded GBM.

Every series is resolved to one value per calendar month of the horizon; a period's
value is the mean of its months (for monthly periods, the month's value).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from optimizer.kernel.timeline import month_ordinal


class GeneratorSpec(BaseModel):
    """Geometric Brownian motion on monthly steps.

    ``annual_drift`` is the expected growth rate mu: E[S(t)] = start * exp(mu * t_years).
    Monthly log-return ~ Normal((mu - sigma^2/2)/12, sigma^2/12). Same seed, same path.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: float = Field(gt=0, description="value in the first month of the horizon")
    annual_drift: float = Field(0.0, ge=-5, le=5, description="expected growth rate per year (0.1 = 10%)")
    annual_volatility: float = Field(0.0, ge=0, le=5, description="volatility per sqrt(year) (0.6 = 60%)")
    seed: int = Field(0, ge=0)

    def monthly(self, n_months: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        dt = 1.0 / 12.0
        z = rng.standard_normal(max(n_months - 1, 0))
        steps = (self.annual_drift - 0.5 * self.annual_volatility**2) * dt + self.annual_volatility * np.sqrt(dt) * z
        return self.start * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))


class Series(BaseModel):
    """One of: ``value`` (constant), ``points`` (month -> value, linear in between, flat outside),
    ``csv`` + ``column`` (file with a ``month`` column, path relative to the instance file),
    or ``generator`` (seeded GBM). ``scale`` multiplies the result (for sensitivities).
    A bare number in the instance file means ``{value: number}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | None = None
    points: dict[str, float] | None = None
    csv: str | None = None
    column: str | None = None
    generator: GeneratorSpec | None = None
    scale: float = Field(1.0, ge=0)

    _csv_points: dict[int, float] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        if isinstance(data, bool):
            raise ValueError("must be a number or a series, got a boolean")
        if isinstance(data, (int, float)):
            return {"value": data}
        return data

    @field_validator("points")
    @classmethod
    def _check_points(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("must hold at least one month: value pair")
        for k in v:
            month_ordinal(k)
        return v

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> "Series":
        given = [n for n in ("value", "points", "csv", "generator") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of value, points, csv, generator (got {given or 'none'})")
        for name, vals in (("value", [self.value] if self.value is not None else []),
                           ("points", list((self.points or {}).values()))):
            if any(not np.isfinite(x) for x in vals):
                raise ValueError(f"{name} must be finite numbers, got {vals}")
        if self.csv is not None:
            if not self.column:
                raise ValueError("csv needs a column name (field 'column')")
            base = Path((info.context or {}).get("base_dir", "."))
            self._csv_points = _read_csv_column(base / self.csv, self.column)
        return self

    def monthly(self, start: int, n_months: int) -> np.ndarray:
        """Value for each of ``n_months`` months starting at month ordinal ``start``."""
        if self.value is not None:
            out = np.full(n_months, float(self.value))
        elif self.generator is not None:
            out = self.generator.monthly(n_months)
        else:
            pts = self._csv_points if self.csv is not None else {month_ordinal(k): float(v) for k, v in self.points.items()}
            xs = np.array(sorted(pts), dtype=float)
            ys = np.array([pts[int(x)] for x in xs], dtype=float)
            out = np.interp(start + np.arange(n_months, dtype=float), xs, ys)
        return out * self.scale

    def min_value(self, start: int, n_months: int) -> float:
        return float(self.monthly(start, n_months).min())


def _read_csv_column(path: Path, column: str) -> dict[int, float]:
    if not path.is_file():
        raise ValueError(f"CSV file not found: {path}")
    df = pd.read_csv(path)
    if "month" not in df.columns:
        raise ValueError(f"CSV {path.name} has no 'month' column (columns: {list(df.columns)})")
    if column not in df.columns:
        raise ValueError(f"column {column!r} not found in {path.name} (columns: {list(df.columns)})")
    out: dict[int, float] = {}
    for i, (m, v) in enumerate(zip(df["month"], df[column])):
        try:
            o = month_ordinal(str(m))
        except ValueError as e:
            raise ValueError(f"{path.name} row {i + 2}: month {e}") from None
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{path.name} row {i + 2}: {column} must be a number, got {v!r}") from None
        if not np.isfinite(fv):
            raise ValueError(f"{path.name} row {i + 2}: {column} must be finite, got {v!r}")
        out[o] = fv
    if not out:
        raise ValueError(f"CSV {path.name} has no rows")
    return out
