"""Time-series inputs: a constant, points (linear interpolation), a CSV column, or a seeded GBM.

Every series is resolved to one value per calendar month of the horizon; a period's
value is the mean of its months (for monthly periods, the month's value).

Files. A CSV series names a file relative to the instance file's folder (``base``); the file,
once symlinks are resolved, must lie inside the **data folder** (``root``): the instance file's
folder unless the caller gives another (CLI ``--data-dir``, ``Instance.from_dict(...,
data_dir=...)``). An instance given as a mapping reads no file at all unless a folder is given.
Errors name the file relative to the data folder and quote at most the one offending cell, never
the rest of a file's content (a header, a line): an instance must not be a way to read files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from optimizer.instance.base import MAX_SERIES_MAGNITUDE, describe_ranges
from optimizer.kernel.timeline import month_ordinal


class GeneratorSpec(BaseModel):
    """Geometric Brownian motion on monthly steps.

    ``annual_drift`` is the expected growth rate mu: E[S(t)] = start * exp(mu * t_years).
    Monthly log-return ~ Normal((mu - sigma^2/2)/12, sigma^2/12). Same seed, same path.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=describe_ranges)

    start: float = Field(gt=0, le=MAX_SERIES_MAGNITUDE, description="value in the first month of the horizon")
    annual_drift: float = Field(0.0, ge=-5, le=5, description="expected growth rate per year (0.1 = 10%)")
    annual_volatility: float = Field(0.0, ge=0, le=5, description="volatility per sqrt(year) (0.6 = 60%)")
    seed: int = Field(0, ge=0, lt=2**64)

    def monthly(self, n_months: int) -> np.ndarray:
        """The path; it may overflow to inf for extreme drifts over long horizons, which the
        instance's range check (``checks.check_series_ranges``) then reports with the month."""
        rng = np.random.default_rng(self.seed)
        dt = 1.0 / 12.0
        z = rng.standard_normal(max(n_months - 1, 0))
        steps = (self.annual_drift - 0.5 * self.annual_volatility**2) * dt + self.annual_volatility * np.sqrt(dt) * z
        with np.errstate(over="ignore"):
            return self.start * np.exp(np.concatenate([[0.0], np.cumsum(steps)]))


class Series(BaseModel):
    """One of: ``value`` (constant), ``points`` (month -> value, linear in between, flat outside),
    ``csv`` + ``column`` (file with a ``month`` column, path relative to the instance file and
    inside the data folder, see the module doc), or ``generator`` (seeded GBM). ``scale``
    multiplies the result (for sensitivities). A bare number in the instance file means
    ``{value: number}``. Numbers are finite; the range each month must lie in depends on what
    the series is (``base.SERIES_RANGES``, checked by ``checks.check_series_ranges``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=describe_ranges)

    value: float | None = Field(None, ge=-MAX_SERIES_MAGNITUDE, le=MAX_SERIES_MAGNITUDE)
    points: dict[str, Annotated[float, Field(ge=-MAX_SERIES_MAGNITUDE, le=MAX_SERIES_MAGNITUDE)]] | None = None
    csv: str | None = Field(None, max_length=1000, description="CSV file, relative to the instance file, inside the data folder")
    column: str | None = Field(None, max_length=200)
    generator: GeneratorSpec | None = None
    scale: float = Field(1.0, ge=0, le=1e6, description="multiplies every value")

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

    @field_validator("csv")
    @classmethod
    def _csv_inside_data_folder(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            locate_csv(DataFolder.from_context(info.context), v)
        return v

    @model_validator(mode="after")
    def _one_source(self, info: ValidationInfo) -> "Series":
        given = [n for n in ("value", "points", "csv", "generator") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of value, points, csv, generator (got {given or 'none'})")
        if self.csv is not None:
            if not self.column:
                raise ValueError("csv needs a column name (field 'column')")
            folder = DataFolder.from_context(info.context)
            path, label = locate_csv(folder, self.csv)
            self._csv_points = _read_csv_column(path, label, self.column)
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
        with np.errstate(over="ignore", invalid="ignore"):
            return out * self.scale

    def min_value(self, start: int, n_months: int) -> float:
        return float(self.monthly(start, n_months).min())


# ---------------------------------------------------------------- files

MAX_CSV_BYTES = 50_000_000  # a monthly series of a 150-year horizon is a few kB


def _quote(text: str, limit: int = 60) -> str:
    """The user's own text (a path they wrote, one cell), shortened for a one-line message."""
    s = repr(text)
    return s if len(s) <= limit else s[: limit - 4] + "...'"


@dataclass(frozen=True)
class DataFolder:
    """Where CSV series may be read: relative paths start from ``base`` (the instance file's
    folder) and the file, symlinks resolved, must lie inside ``root`` (the data folder). Both are
    absolute and resolved. ``None`` in a validation context means: read no file."""

    root: Path
    base: Path

    @classmethod
    def of(cls, base_dir: str | Path | None = None, data_dir: str | Path | None = None) -> "DataFolder | None":
        """``data_dir`` is the root when given, else ``base_dir``; relative paths start from
        ``base_dir`` when given, else from ``data_dir``. Neither: None (no file may be read)."""
        if base_dir is None and data_dir is None:
            return None
        root = Path(data_dir if data_dir is not None else base_dir).resolve()
        base = Path(base_dir if base_dir is not None else data_dir).resolve()
        return cls(root, base)

    @staticmethod
    def from_context(context: Any) -> "DataFolder | None":
        ctx = context or {}
        if "data_folder" in ctx:
            return ctx["data_folder"]
        return DataFolder.of(base_dir=ctx.get("base_dir"))



def locate_csv(folder: DataFolder | None, name: str) -> tuple[Path, str]:
    """(resolved path, its name relative to the data folder) of CSV ``name``; ValueError if no
    folder is given, or the file leaves the data folder or is not a file there. Whether a file
    outside exists is never tested, so the answer reveals nothing about it."""
    if folder is None:
        raise ValueError(f"no data folder to read {_quote(name)} from: an instance given as a mapping reads no file "
                         "unless a data folder is given (Instance.from_dict(..., data_dir=...))")
    try:
        path = (folder.base / name).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a name too long, a symlink loop
        raise ValueError(f"{_quote(name)} is not a usable file path") from None
    if not path.is_relative_to(folder.root):
        raise ValueError(f"{_quote(name)} is outside the data folder; CSV files must lie inside it "
                         "(the instance file's folder, or the folder given with --data-dir / data_dir=)")
    label = path.relative_to(folder.root).as_posix() or "."
    if not path.is_file():
        raise ValueError(f"CSV file not found: {label} (in the data folder)")
    return path, label


def _read_csv_column(path: Path, label: str, column: str) -> dict[int, float]:
    """Month ordinal -> value of ``column``. Messages name the file by ``label`` and quote at most
    the offending cell.

    A file is parsed once per version: the parsed column is kept (``_parsed_column``) under the
    file's identity and modification stamp (device, inode, size, mtime in ns), so validating the
    same instance again (every point of a sweep re-validates its variant) reads no file, and an
    edited file (a new stamp) is read afresh. Errors are never kept: a bad file is re-read and
    re-reported each time. The caller gets its own copy."""
    try:
        st = path.stat()
    except OSError as e:
        raise ValueError(f"CSV {label} cannot be read: {e.strerror or type(e).__name__}") from None
    stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return dict(_parsed_column(path, stamp, label, column))


@lru_cache(maxsize=256)
def _parsed_column(path: Path, stamp: tuple[int, int, int, int], label: str, column: str) -> dict[int, float]:
    """``_read_csv_column``'s parse of one version (``stamp``) of the file; never mutated (copied out)."""
    try:
        if stamp[2] > MAX_CSV_BYTES:
            raise ValueError(f"CSV {label} is larger than {MAX_CSV_BYTES // 1_000_000} MB")
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except ValueError as e:
        if isinstance(e, UnicodeDecodeError):
            raise ValueError(f"CSV {label} is not UTF-8 text") from None
        if isinstance(e, pd.errors.EmptyDataError):
            raise ValueError(f"CSV {label} is empty") from None
        if isinstance(e, pd.errors.ParserError):
            where = re.search(r"line \d+", str(e))
            raise ValueError(f"CSV {label} is not a comma-separated table{f' ({where.group(0)})' if where else ''}") from None
        raise
    except OSError as e:
        raise ValueError(f"CSV {label} cannot be read: {e.strerror or type(e).__name__}") from None
    if "month" not in df.columns:
        raise ValueError(f"CSV {label} has no 'month' column (its first row must name the columns)")
    if column not in df.columns:
        raise ValueError(f"column {column!r} not found in {label} ({len(df.columns)} columns in its first row)")
    out: dict[int, float] = {}
    row_of: dict[int, int] = {}
    for i, (m, v) in enumerate(zip(df["month"], df[column])):
        row = i + 2  # the header is row 1
        try:
            o = month_ordinal(str(m))
        except ValueError:
            raise ValueError(f"{label} row {row}: month must be written YYYY-MM, got {_quote(str(m))}") from None
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{label} row {row}: {column} must be a number, got {_quote(str(v))}") from None
        if not np.isfinite(fv):
            raise ValueError(f"{label} row {row}: {column} must be finite, got {_quote(str(v))}")
        if o in out:
            raise ValueError(f"{label} row {row}: month {m} appears twice (first on row {row_of[o]})")
        out[o], row_of[o] = fv, row
    if not out:
        raise ValueError(f"CSV {label} has no rows")
    return out
