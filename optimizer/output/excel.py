"""An Excel workbook of a result's tables, for analysts who continue in a spreadsheet.

One sheet per table: ``summary`` (key / value), ``plan``, ``cashflows``, ``kpis``,
``npv_breakdown``, ``leases``, ``contracts``, ``shadow_prices``, ``debt_schedule`` and
``tax_schedule`` (with a financing section), the decision tables of
``plan/`` (``plan_conversions``, ...; left out when empty) and, when present, ``points``, ``tornado``, ``frontier``.
Bold header, frozen header row, number formats chosen from the column's unit suffix.
Written with xlsxwriter in constant-memory mode (about 3x faster than openpyxl for large
cash-flow tables); tests read it back with openpyxl.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.solve.resultdir import DECISIONS, read_result_dir

SHEETS = ["plan", "cashflows", "kpis", "npv_breakdown", "leases", "contracts", "shadow_prices",
          "debt_schedule", "tax_schedule", *[f"plan_{d}" for d in DECISIONS], "points", "tornado", "frontier"]
MAX_ROWS = 1_048_575          # Excel's row limit minus the header

FMT_USD = "#,##0;[Red]-#,##0"
FMT_RATE = "#,##0.00"          # USD per unit (per BTC, per PH/s per day, per MW, ...)
FMT_MW = "#,##0.0"
FMT_PCT = "0.0%"
FMT_COUNT = "#,##0"
_SHARE_NAMES = {"share", "mip_gap", "gap", "weight", "alpha", "probability", "discount_rate", "noi_margin",
                "pool_fee", "escalator_per_year"}


def number_format(name: str) -> str | None:
    """Excel number format for a column (or summary key) from its name; None = General."""
    n = str(name).lower()
    last = n.rsplit(".", 1)[-1]
    if last in {"mip_gap", "gap"}:
        return "0.000%"
    if last in _SHARE_NAMES or last.endswith("_share") or last.endswith("_margin") or last.endswith("discount_rate"):
        return FMT_PCT
    if "_usd_per_" in n:
        return FMT_RATE
    if n.endswith("_usd") or n == "usd":
        return FMT_USD
    if n.endswith("_mw") or "_mw_" in n:
        return FMT_MW
    if n == "discount_factor":
        return "0.000000"
    if last in {"btc", "btc_mined"} or last.endswith("_btc"):        # quantities of BTC
        return "#,##0.0000"
    if n.endswith("_eh_s"):
        return "#,##0.000"
    if n.endswith("_s"):
        return "0.000"
    if "racks" in n or n.startswith("units") or n in {"blocks", "units", "n_variables", "n_constraints", "n_integer", "period"}:
        return FMT_COUNT
    return None


def flatten_summary(summary: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested dicts become dotted keys; lists become one '; '-joined string."""
    rows: list[tuple[str, object]] = []
    for k, v in summary.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(flatten_summary(v, key + ".") if v else [(key, None)])
        elif isinstance(v, (list, tuple)):
            rows.append((key, "; ".join(map(str, v)) if v else None))
        else:
            rows.append((key, v))
    return rows


def _cell_value(v):
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return None if v == "" else v


def _width(header: str, values: list, fmt: str | None) -> float:
    def shown(v) -> int:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and fmt in (FMT_USD, FMT_COUNT, FMT_RATE, FMT_MW):
            return len(f"{v:,.2f}")
        return len(str(v)) if v is not None else 0

    longest = max([len(str(header))] + [shown(v) for v in values[:300]])
    return float(min(max(longest + 2, 8), 50))


class _Book:
    """An xlsxwriter workbook with cached formats (constant-memory mode: rows stream to disk)."""

    def __init__(self, path: Path):
        import xlsxwriter

        self.wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                                  "strings_to_formulas": False, "strings_to_urls": False})
        self.header = self.wb.add_format({"bold": True, "bg_color": "#DCE6F1", "align": "center", "bottom": 1})
        self._fmts: dict[str, object] = {}

    def fmt(self, num_format: str | None):
        if num_format is None:
            return None
        if num_format not in self._fmts:
            self._fmts[num_format] = self.wb.add_format({"num_format": num_format})
        return self._fmts[num_format]

    def sheet(self, title: str, columns: list[str], rows, fmts: list[str | None], widths: list[float]) -> None:
        ws = self.wb.add_worksheet(title[:31])
        ws.freeze_panes(1, 0)
        for j, (c, w) in enumerate(zip(columns, widths)):
            ws.set_column(j, j, w)
            ws.write_string(0, j, str(c), self.header)
        cell_fmts = [self.fmt(f) for f in fmts]
        num, text, boolean = ws.write_number, ws.write_string, ws.write_boolean
        for i, row in enumerate(rows, start=1):
            for j, v in enumerate(row):
                v = _cell_value(v)
                if v is None:
                    continue
                if isinstance(v, bool):
                    boolean(i, j, v)
                elif isinstance(v, (int, float)):
                    num(i, j, v, cell_fmts[j])
                else:
                    text(i, j, str(v))

    def close(self) -> None:
        self.wb.close()


def _table_sheet(book: _Book, name: str, df: pd.DataFrame, notes: list[str]) -> None:
    if len(df) > MAX_ROWS:
        notes.append(f"sheet {name}: {len(df):,} rows, only the first {MAX_ROWS:,} written (Excel's limit); see the CSV")
        df = df.head(MAX_ROWS)
    cols = [str(c) for c in df.columns]
    fmts = [number_format(c) if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else None
            for c in df.columns]
    sample = [[_cell_value(v) for v in df[c].head(300).tolist()] for c in df.columns]
    widths = [_width(c, s, f) for c, s, f in zip(cols, sample, fmts)]
    book.sheet(name, cols, df.itertuples(index=False, name=None), fmts, widths)


def _summary_sheet(book: _Book, summary: dict) -> None:
    rows = flatten_summary(summary)
    fmts = []
    for k, _ in rows:
        f = number_format(k)
        fmts.append(FMT_USD if f is None and k.startswith(("baselines.", "npv_usd_by_scenario.")) else f)
    ws = book.wb.add_worksheet("summary")
    ws.freeze_panes(1, 0)
    texts = [len(v) for _, v in rows if isinstance(v, str)]
    ws.set_column(0, 0, _width("key", [k for k, _ in rows], None))
    ws.set_column(1, 1, min(max([18.0] + [t + 2.0 for t in texts]), 80.0))
    ws.write_string(0, 0, "key", book.header)
    ws.write_string(0, 1, "value", book.header)
    for i, ((k, v), f) in enumerate(zip(rows, fmts), start=1):
        ws.write_string(i, 0, k)
        v = _cell_value(v)
        if v is None:
            continue
        if isinstance(v, bool):
            ws.write_boolean(i, 1, v)
        elif isinstance(v, (int, float)):
            ws.write_number(i, 1, v, book.fmt(f))
        else:
            ws.write_string(i, 1, str(v))


def _as_tables(source) -> tuple[dict, dict[str, pd.DataFrame]]:
    if isinstance(source, (str, Path)):
        return read_result_dir(source)
    if isinstance(source, dict):
        summary = source.get("summary") or {}
        if isinstance(summary, pd.DataFrame):
            summary = dict(zip(summary.iloc[:, 0], summary.iloc[:, 1]))
        return dict(summary), {k: v for k, v in source.items() if k != "summary" and isinstance(v, pd.DataFrame)}
    if hasattr(source, "write") and hasattr(source, "summary"):      # a Result: write it out, then read
        with tempfile.TemporaryDirectory() as tmp:
            source.write(tmp)
            return read_result_dir(tmp)
    raise InputError(f"write_workbook: expected a result directory, a dict of tables or a Result, got {type(source).__name__}")


def write_workbook(result_dir_or_tables, path: str | Path) -> Path:
    """Write the workbook to ``path`` (.xlsx) and return it. ``result_dir_or_tables``: a result
    directory, a dict ``{name: DataFrame, "summary": dict}``, or a Result object."""
    summary, tables = _as_tables(result_dir_or_tables)
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: the workbook file name must end in .xlsx")
    path.parent.mkdir(parents=True, exist_ok=True)
    book = _Book(path)
    notes: list[str] = []
    _summary_sheet(book, summary)
    names = [n for n in SHEETS if n in tables] + sorted(n for n in tables if n not in SHEETS)
    for name in names:
        if name.startswith("plan_") and tables[name].empty:     # "no purchases" needs no sheet
            continue
        _table_sheet(book, name, tables[name], notes)
    if notes:                  # truncated sheets: say so in a last sheet
        book.sheet("notes", ["note"], [[n] for n in notes], [None], [100.0])
    book.close()
    return path
