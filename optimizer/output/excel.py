"""The analyst's workbook of a result (xlsxwriter): decisions first, annual views, native charts,
then every table of the result directory.

Sheets, in order (a sheet whose data is absent is left out):

- ``Decisions``: one row per decision of the plan (``optimizer.output.decisions``): month,
  kind, site, subject, quantity, unit, MW, amount, ready month, scenarios and the sentence.
- ``Headline``: the recommendation, its value, the key figures and the solver footnote
  (``optimizer.output.headline``); options the plan leaves unused.
- ``Annual``: expected (probability-weighted), undiscounted cash flow by line item and
  calendar year, grouped by class (operating, investment, treasury, financing, tax) with subtotal and net rows
  written as Excel formulas (their values cached), the terminal values at the horizon's end,
  and each item's expected present value (the PV column sums to the NPV).
- ``Annual by site``: the same by site and line item (autofilter).
- ``Cash flow``: monthly expected cash flow by class, net and cumulative, with a native
  stacked-column chart (net and cumulative as lines).
- ``MW by use``: MW per month by use (mining ASICs, HPC leased, HPC built not leased) for the
  portfolio and per site, with native stacked-area charts.
- the result's tables, one sheet each: ``summary`` (key / value), ``plan`` (site x month),
  ``allocation`` (tidy), ``cashflows``, ``kpis``, ``npv_breakdown``, ``leases``,
  ``contracts``, ``shadow_prices``, ``debt_schedule`` and ``tax_schedule`` (with a financing
  section), the decision tables of ``plan/`` (``plan_conversions``, ``plan_purchases``, ...,
  ``plan_debt``, ``plan_btc_sales``: treasury sales, non-zero rows; empty tables get no sheet,
  the Headline lists what was not done) and, when present, ``points``, ``tornado``,
  ``frontier``; any other table of the directory after them.

Months are real Excel dates (the first day of the month, shown ``yyyy-mm``) in every sheet:
any column whose non-empty values are all ``YYYY-MM``. Every table sheet has a bold frozen
header, an autofilter and number formats chosen from the column's unit suffix. Written in
constant-memory mode (rows stream to disk: large cash-flow tables stay cheap); tests read it
back with openpyxl.
"""

from __future__ import annotations

import math
import re
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from xlsxwriter.utility import xl_rowcol_to_cell as cell

from optimizer.economics.ledger import ITEM_BY_NAME, ITEMS
from optimizer.errors import InputError
from optimizer.output.decisions import CONTINUOUS_NOTE, decisions_frame, describe_plan, needs_continuous_note, not_taken
from optimizer.output.headline import build_headline
from optimizer.output.report import load_context, make_context
from optimizer.plan import Plan
from optimizer.solve.resultdir import DECISIONS, read_result_dir

SHEETS = ["plan", "allocation", "cashflows", "kpis", "npv_breakdown", "leases", "contracts", "shadow_prices",
          "debt_schedule", "tax_schedule", *[f"plan_{d}" for d in DECISIONS], "points", "tornado", "frontier"]
MAX_ROWS = 1_048_575          # Excel's row limit minus the header

FMT_USD = "#,##0;[Red]-#,##0"
FMT_RATE = "#,##0.00"          # USD per unit (per BTC, per PH/s per day, per MW, ...)
FMT_MW = "#,##0.0"
FMT_PCT = "0.0%"
FMT_COUNT = "#,##0"
FMT_DATE = "yyyy-mm"
_SHARE_NAMES = {"share", "mip_gap", "gap", "weight", "alpha", "probability", "discount_rate", "noi_margin",
                "pool_fee", "escalator_per_year"}
_MONTH = re.compile(r"^\d{4}-\d{2}$")
# the ledger's cash classes in reading order (terminal values are not cash: their own block)
CLASSES = (("operating", "Operating"), ("investment", "Investment"), ("treasury", "Treasury"), ("financing", "Financing"),
           ("tax", "Tax"))
CLASS_COLOURS = {"operating": "#e8930c", "investment": "#6a3d9a", "treasury": "#bcbd22", "financing": "#4daf4a", "tax": "#525252"}


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
    if n.endswith("_mw") or "_mw_" in n or n == "mw":
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
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return None if v == "" else v


def month_date(label) -> datetime | None:
    """``YYYY-MM`` -> the first day of that month (an Excel date); anything else -> None."""
    if label is None or (isinstance(label, float) and math.isnan(label)):
        return None
    text = str(label)
    if not _MONTH.match(text):
        return None
    return datetime(int(text[:4]), int(text[5:7]), 1)


def _is_month_column(s: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return False
    vals = s.dropna().astype(str)
    vals = vals[vals != ""]
    return len(vals) > 0 and bool(vals.str.match(_MONTH).all())


def with_dates(df: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
    """A copy with every month column (``YYYY-MM`` values) as datetimes; the names of those columns."""
    out, cols = df.copy(), set()
    for c in df.columns:
        if _is_month_column(df[c]):
            out[c] = pd.Series([month_date(v) for v in df[c]], index=df.index, dtype=object)
            cols.add(str(c))
    return out, cols


def _width(header: str, values: list, fmt: str | None) -> float:
    def shown(v) -> int:
        if isinstance(v, datetime):
            return 8
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
        self.bold = self.wb.add_format({"bold": True})
        self.title = self.wb.add_format({"bold": True, "font_size": 14})
        self.wrap = self.wb.add_format({"text_wrap": True, "valign": "top"})
        self.note = self.wb.add_format({"italic": True, "font_color": "#555555"})
        self._fmts: dict[tuple, object] = {}

    def fmt(self, num_format: str | None, bold: bool = False):
        if num_format is None and not bold:
            return None
        key = (num_format, bold)
        if key not in self._fmts:
            spec: dict = {"bold": True} if bold else {}
            if num_format is not None:
                spec["num_format"] = num_format
            self._fmts[key] = self.wb.add_format(spec)
        return self._fmts[key]

    def write(self, ws, i: int, j: int, v, fmt=None) -> None:
        v = _cell_value(v)
        if v is None:
            return
        if isinstance(v, bool):
            ws.write_boolean(i, j, v)
        elif isinstance(v, datetime):
            ws.write_datetime(i, j, v, fmt if fmt is not None else self.fmt(FMT_DATE))
        elif isinstance(v, (int, float)):
            ws.write_number(i, j, v, fmt)
        else:
            ws.write_string(i, j, str(v), fmt)

    def sheet(self, title: str, columns: list[str], rows, fmts: list[str | None], widths: list[float], autofilter: bool = True,
              n_rows: int | None = None):
        ws = self.wb.add_worksheet(title[:31])
        ws.freeze_panes(1, 0)
        for j, (c, w) in enumerate(zip(columns, widths)):
            ws.set_column(j, j, w)
            ws.write_string(0, j, str(c), self.header)
        cell_fmts = [self.fmt(f) for f in fmts]
        i = 0
        for i, row in enumerate(rows, start=1):
            for j, v in enumerate(row):
                self.write(ws, i, j, v, cell_fmts[j])
        if autofilter and columns:
            ws.autofilter(0, 0, max(i, n_rows or 0), len(columns) - 1)
        return ws

    def close(self) -> None:
        self.wb.close()


def _table_sheet(book: _Book, name: str, df: pd.DataFrame, notes: list[str]) -> None:
    if len(df) > MAX_ROWS:
        notes.append(f"sheet {name}: {len(df):,} rows, only the first {MAX_ROWS:,} written (Excel's limit); see the CSV")
        df = df.head(MAX_ROWS)
    df, dates = with_dates(df)
    cols = [str(c) for c in df.columns]
    fmts = [FMT_DATE if str(c) in dates else
            (number_format(c) if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) else None)
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
        book.write(ws, i, 1, v, book.fmt(f))


# ---------------------------------------------------------------- the analyst's sheets


DECISION_HEADERS = ["#", "month", "kind", "site", "subject", "quantity", "unit", "mw", "amount_usd", "ready", "scenarios", "decision"]


def _decisions_sheet(book: _Book, ctx) -> int:
    decisions = describe_plan(ctx.plan, ctx.data)
    df = decisions_frame(decisions)
    rows = [[i, month_date(r.month), r.kind, r.site, r.subject, r.quantity, r.unit, r.mw, r.usd, month_date(r.ready), r.scenarios,
             r.decision] for i, r in enumerate(df.itertuples(index=False), start=1)]
    fmts = [FMT_COUNT, FMT_DATE, None, None, None, "#,##0.####", None, FMT_MW, FMT_USD, FMT_DATE, None, None]
    widths = [5, 9, 16, 10, 20, 12, 8, 9, 16, 9, 14, 100]
    ws = book.sheet("Decisions", DECISION_HEADERS, rows, fmts, widths)
    ws.set_column(11, 11, 100, book.wrap)
    n = len(rows)
    if needs_continuous_note(decisions):
        ws.write_string(n + 2, 0, CONTINUOUS_NOTE, book.note)
    return n


def _headline_sheet(book: _Book, ctx) -> None:
    h = build_headline(ctx.summary, ctx.tables.get("cashflows"), ctx.plan, ctx.data)
    ws = book.wb.add_worksheet("Headline")
    ws.set_column(0, 0, 42)
    ws.set_column(1, 1, 60)
    ws.write_string(0, 0, f"Recommendation for {h.instance}", book.title)
    r = 2
    for text in (h.broken_rules, h.recommendation, h.value_sentence, *h.warnings):
        if text:
            ws.write_string(r, 0, text, book.wrap)
            r += 1
    r += 1
    ws.write_string(r, 0, "Key figure", book.header)
    ws.write_string(r, 1, "value", book.header)
    r += 1
    numbers = {"Expected NPV": h.npv_usd, "Uplift over keeping mining": h.uplift_over_keep_mining_usd,
               "Capex (undiscounted)": h.capex_usd, "Site acquisitions": h.acquisitions_usd}
    for k, v in h.figures():
        ws.write_string(r, 0, k)
        if k in numbers and numbers[k] is not None:
            ws.write_number(r, 1, float(numbers[k]), book.fmt(FMT_USD))
        elif k == "Peak funding need" and h.peak_funding_usd is not None:
            ws.write_number(r, 1, float(h.peak_funding_usd), book.fmt(FMT_USD))
            if h.peak_funding_scenario:
                ws.write_string(r, 2, f"{h.peak_funding_scenario}, {h.peak_funding_month}")
        elif k == "Terminal value share of NPV" and h.terminal_share is not None:
            ws.write_number(r, 1, float(h.terminal_share), book.fmt(FMT_PCT))
        else:
            ws.write_string(r, 1, v)
        r += 1
    for name, v in (ctx.summary.get("npv_usd_by_scenario") or {}).items():
        if v is not None:
            ws.write_string(r, 0, f"NPV, scenario {name}")
            ws.write_number(r, 1, float(v), book.fmt(FMT_USD))
            r += 1
    for name, v in (ctx.summary.get("baselines") or {}).items():
        if v is not None:
            ws.write_string(r, 0, f"NPV of baseline {name}")
            ws.write_number(r, 1, float(v), book.fmt(FMT_USD))
            r += 1
    missed = not_taken(ctx.plan, ctx.data) if ctx.plan is not None else []
    if missed:
        r += 1
        ws.write_string(r, 0, "Not done", book.bold)
        for text in missed:
            r += 1
            ws.write_string(r, 0, text)
        r += 1
    if h.solver_note:
        r += 1
        ws.write_string(r, 0, h.solver_note, book.note)
    # the financing valuation (project and equity NPV, IRRs) comes through h.figures(); the horizon-end
    # check (NPV with and without terminal values) adds rows here once its results land


def _expected(ctx, cf: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    w = cf["scenario"].astype(str).map(ctx.probs).fillna(0.0)
    out = cf.copy()
    for c in cols:
        out[c] = cf[c].astype(float) * w
    return out


def _annual_frame(ctx, by_site: bool) -> tuple[pd.DataFrame, list[str]]:
    cf = ctx.tables["cashflows"]
    cols = ["usd"] + (["pv_usd"] if "pv_usd" in cf.columns else [])
    x = _expected(ctx, cf, cols)
    x["year"] = x["month"].astype(str).str[:4]
    keys = (["site"] if by_site else []) + ["item"]
    years = sorted(x["year"].unique())
    piv = x.pivot_table(index=keys, columns="year", values="usd", aggfunc="sum", fill_value=0.0).reindex(columns=years, fill_value=0.0)
    if "pv_usd" in cols:
        piv["pv"] = x.groupby(keys)["pv_usd"].sum()
    piv = piv.reset_index()
    piv["_order"] = piv["item"].map(lambda i: ITEMS.index(i) if i in ITEMS else len(ITEMS))
    piv = piv.sort_values((["site"] if by_site else []) + ["_order"], kind="stable").drop(columns="_order")
    return piv, years


def _annual_sheet(book: _Book, ctx) -> None:
    piv, years = _annual_frame(ctx, by_site=False)
    has_pv = "pv" in piv.columns
    ws = book.wb.add_worksheet("Annual")
    ws.freeze_panes(1, 1)
    header = ["line item (expected, undiscounted USD)", *years, "total"] + (["PV (expected)"] if has_pv else [])
    ws.set_column(0, 0, 40)
    ws.set_column(1, len(header) - 1, 15)
    for j, c in enumerate(header):
        ws.write_string(0, j, str(c), book.header)
    usd, usd_b = book.fmt(FMT_USD), book.fmt(FMT_USD, bold=True)
    ncol = len(years)

    def total_formula(r: int) -> str:
        return f"=SUM({cell(r, 1)}:{cell(r, ncol)})"

    r, subtotal_rows = 1, []
    kinds = {i: ITEM_BY_NAME[i].kind if i in ITEM_BY_NAME else "operating" for i in piv["item"]}
    def item_row(r: int, row) -> None:
        """One cash-flow item: its label, a value per column, the row's total (a formula) and its PV."""
        item = row[0]
        ws.write_string(r, 0, ITEM_BY_NAME[item].label if item in ITEM_BY_NAME else str(item))
        vals = [float(v) for v in row[1:1 + ncol]]
        for j, v in enumerate(vals, start=1):
            ws.write_number(r, j, v, usd)
        ws.write_formula(r, ncol + 1, total_formula(r), usd, sum(vals))
        if has_pv:
            ws.write_number(r, ncol + 2, float(row[-1]), usd)

    for kind, title in CLASSES:
        block = piv[piv["item"].map(kinds) == kind]
        if block.empty:
            continue
        first = r
        for row in block.itertuples(index=False):
            item_row(r, row)
            r += 1
        ws.write_string(r, 0, f"{title} total", book.bold)
        for j in range(1, ncol + 2 + has_pv):
            col_vals = block.iloc[:, j].astype(float).sum() if j <= ncol else (
                block.iloc[:, 1:1 + ncol].to_numpy(float).sum() if j == ncol + 1 else block["pv"].astype(float).sum())
            ws.write_formula(r, j, f"=SUM({cell(first, j)}:{cell(r - 1, j)})", usd_b, float(col_vals))
        subtotal_rows.append((r, block))
        r += 2
    if subtotal_rows:
        ws.write_string(r, 0, "Net cash flow", book.bold)
        for j in range(1, ncol + 2 + has_pv):
            val = 0.0
            for _, block in subtotal_rows:
                val += (block.iloc[:, j].astype(float).sum() if j <= ncol else
                        (block.iloc[:, 1:1 + ncol].to_numpy(float).sum() if j == ncol + 1 else block["pv"].astype(float).sum()))
            ws.write_formula(r, j, "=" + "+".join(cell(sr, j) for sr, _ in subtotal_rows), usd_b, val)
        net_row = r
        r += 2
    term = piv[piv["item"].map(kinds) == "terminal"]
    if not term.empty:
        ws.write_string(r, 0, "Terminal values (at the horizon's end; not cash)", book.bold)
        r += 1
        first = r
        for row in term.itertuples(index=False):
            item_row(r, row)
            r += 1
        if has_pv and subtotal_rows:
            r += 1
            npv = float(piv["pv"].astype(float).sum())
            ws.write_string(r, 0, "NPV (cash flow + terminal values, expected)", book.bold)
            ws.write_formula(r, ncol + 2, f"={cell(net_row, ncol + 2)}+SUM({cell(first, ncol + 2)}:{cell(r - 2, ncol + 2)})", usd_b, npv)
            r += 1
    elif has_pv and subtotal_rows:
        ws.write_string(r, 0, "NPV (expected)", book.bold)
        ws.write_formula(r, ncol + 2, f"={cell(net_row, ncol + 2)}", usd_b, float(piv["pv"].astype(float).sum()))
        r += 1
    ws.write_string(r + 1, 0, "Expected values weight each scenario by its probability; years are calendar years of each "
                              "period's first month.", book.note)


def _annual_by_site_sheet(book: _Book, ctx) -> None:
    piv, years = _annual_frame(ctx, by_site=True)
    piv["item"] = piv["item"].map(lambda i: ITEM_BY_NAME[i].label if i in ITEM_BY_NAME else i)
    piv.insert(len(years) + 2, "total", piv[years].to_numpy(float).sum(axis=1))
    if "pv" in piv.columns:
        piv = piv.rename(columns={"pv": "PV (expected)"})
    cols = ["site", "line item", *years, "total"] + (["PV (expected)"] if "PV (expected)" in piv.columns else [])
    fmts = [None, None] + [FMT_USD] * (len(cols) - 2)
    widths = [12, 28] + [15] * (len(cols) - 2)
    book.sheet("Annual by site", cols, piv.itertuples(index=False, name=None), fmts, widths)


def _cashflow_sheet(book: _Book, ctx) -> None:
    cf = ctx.tables["cashflows"]
    x = _expected(ctx, cf, ["usd"])
    x["kind"] = x["item"].map(lambda i: ITEM_BY_NAME[i].kind if i in ITEM_BY_NAME else "operating")
    x = x[x["kind"] != "terminal"]
    by = x.pivot_table(index="month", columns="kind", values="usd", aggfunc="sum", fill_value=0.0)
    months = sorted(by.index)
    kinds = [k for k, _ in CLASSES if k in by.columns or k in ("operating", "investment", "treasury")]
    by = by.reindex(index=months, columns=kinds, fill_value=0.0)
    by["net"] = by.sum(axis=1)
    by["cumulative"] = by["net"].cumsum()
    cols = ["month", *[f"{k}_usd" for k in kinds], "net_cash_flow_usd", "cumulative_usd"]
    rows = [[month_date(m), *map(float, by.loc[m])] for m in months]
    ws = book.sheet("Cash flow", cols, rows, [FMT_DATE] + [FMT_USD] * (len(cols) - 1), [10] + [18] * (len(cols) - 1))
    n, k = len(rows), len(kinds)
    if not n:
        return
    chart = book.wb.add_chart({"type": "column", "subtype": "stacked"})
    for j, name in enumerate(kinds, start=1):
        chart.add_series({"name": name, "categories": ["Cash flow", 1, 0, n, 0], "values": ["Cash flow", 1, j, n, j],
                          "fill": {"color": CLASS_COLOURS[name]}, "gap": 20})
    line = book.wb.add_chart({"type": "line"})
    line.add_series({"name": "net cash flow", "categories": ["Cash flow", 1, 0, n, 0], "values": ["Cash flow", 1, k + 1, n, k + 1],
                     "line": {"color": "#000000", "width": 1.5}})
    chart.combine(line)
    chart.set_title({"name": "Expected cash flow by class (undiscounted)"})
    chart.set_x_axis({"date_axis": True, "num_format": FMT_DATE, "major_unit": 6, "major_unit_type": "months"})
    chart.set_y_axis({"name": "USD million per period", "num_format": '#,##0,,'})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 960, "height": 400})
    ws.insert_chart(1, k + 4, chart)
    cum = book.wb.add_chart({"type": "line"})
    cum.add_series({"name": "cumulative cash flow", "categories": ["Cash flow", 1, 0, n, 0], "values": ["Cash flow", 1, k + 2, n, k + 2],
                    "line": {"color": "#1f5fa8", "width": 2.25}})
    cum.set_title({"name": "Cumulative expected cash flow (its low point: the funding need)"})
    cum.set_x_axis({"date_axis": True, "num_format": FMT_DATE, "major_unit": 6, "major_unit_type": "months"})
    cum.set_y_axis({"name": "USD million", "num_format": '#,##0,,'})
    cum.set_legend({"none": True})
    cum.set_size({"width": 960, "height": 320})
    ws.insert_chart(22, k + 4, cum)


ALLOC_USES = (("mining_mw", "mining (ASIC nameplate)", "#e8930c"), ("hpc_leased_mw", "HPC leased (critical IT)", "#1f5fa8"),
              ("hpc_unleased_mw", "HPC built, not leased", "#9cc3e6"))


def _allocation_frame(ctx) -> pd.DataFrame | None:
    a = ctx.tables.get("plan")
    if a is None or a.empty or not {"site", "month", "mining_mw", "hpc_mw"} <= set(a.columns):
        return None
    a = a.copy()
    if "owned" in a.columns:
        owned = a["owned"].astype(str).str.lower().isin(["true", "1"])
        for c in ("mining_mw", "hpc_mw", "hpc_mw_leased"):
            if c in a.columns:
                a[c] = a[c].astype(float).where(owned, 0.0)
    leased = a["hpc_mw_leased"].astype(float) if "hpc_mw_leased" in a.columns else pd.Series(0.0, index=a.index)
    a["hpc_leased_mw"] = np.minimum(leased, a["hpc_mw"].astype(float))
    a["hpc_unleased_mw"] = a["hpc_mw"].astype(float) - a["hpc_leased_mw"]
    return a


def _allocation_sheet(book: _Book, ctx, a: pd.DataFrame) -> None:
    months = sorted(a["month"].astype(str).unique())
    sites = list(dict.fromkeys(a["site"].astype(str)))
    keys = [k for k, _, _ in ALLOC_USES]
    total = a.groupby("month")[keys].sum().reindex(months, fill_value=0.0)
    per = {s: a[a["site"].astype(str) == s].groupby("month")[keys].sum().reindex(months, fill_value=0.0) for s in sites}
    cols = ["month"] + [f"portfolio {k}" for k in keys] + [f"{s} {k}" for s in sites for k in keys]
    rows = [[month_date(m), *map(float, total.loc[m]), *[float(v) for s in sites for v in per[s].loc[m]]] for m in months]
    ws = book.sheet("MW by use", cols, rows, [FMT_DATE] + [FMT_MW] * (len(cols) - 1), [10] + [14] * (len(cols) - 1))
    n = len(rows)
    if not n:
        return

    def area(title: str, first_col: int):
        ch = book.wb.add_chart({"type": "area", "subtype": "stacked"})
        for j, (_, name, colour) in enumerate(ALLOC_USES):
            ch.add_series({"name": name, "categories": ["MW by use", 1, 0, n, 0],
                           "values": ["MW by use", 1, first_col + j, n, first_col + j], "fill": {"color": colour}})
        ch.set_title({"name": title})
        ch.set_x_axis({"date_axis": True, "num_format": FMT_DATE, "major_unit": 6, "major_unit_type": "months"})
        ch.set_y_axis({"name": "MW", "num_format": "#,##0"})
        ch.set_legend({"position": "bottom"})
        ch.set_size({"width": 720, "height": 360})
        return ch

    col = len(cols) + 1
    ws.insert_chart(1, col, area("Portfolio: MW by use (owned sites)", 1))
    for k, s in enumerate(sites[:8]):
        ws.insert_chart(20 + 19 * k, col, area(f"Site {s}: MW by use", 1 + 3 * (k + 1)))


# ---------------------------------------------------------------- entry point


def _as_context(source, instance):
    if isinstance(source, (str, Path)):
        return load_context(Path(source), instance)
    if isinstance(source, dict):
        summary = source.get("summary") or {}
        if isinstance(summary, pd.DataFrame):
            summary = dict(zip(summary.iloc[:, 0], summary.iloc[:, 1]))
        tables = {k: v for k, v in source.items() if k != "summary" and isinstance(v, pd.DataFrame)}
        plan = source.get("plan_object") if isinstance(source.get("plan_object"), Plan) else None
        return make_context(dict(summary), tables, plan, instance)
    if hasattr(source, "write") and hasattr(source, "summary"):      # a Result: write it out, then read
        with tempfile.TemporaryDirectory() as tmp:
            source.write(tmp)
            summary, tables = read_result_dir(tmp)
            plan = Plan.from_dir(Path(tmp) / "plan") if (Path(tmp) / "plan").is_dir() else None
        return make_context(summary, tables, plan, instance)
    raise InputError(f"write_workbook: expected a result directory, a dict of tables or a Result, got {type(source).__name__}")


def write_workbook(result_dir_or_tables, path: str | Path, instance=None) -> Path:
    """Write the workbook to ``path`` (.xlsx) and return it. ``result_dir_or_tables``: a result
    directory, a dict ``{name: DataFrame, "summary": dict}``, or a Result object. ``instance``
    (an Instance or a path; default: summary.json's ``instance_path``) gives the decision
    sentences their MW and amounts and the expected values their probabilities."""
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise InputError(f"{path}: the workbook file name must end in .xlsx")
    ctx = _as_context(result_dir_or_tables, instance)
    summary, tables = ctx.summary, ctx.tables
    path.parent.mkdir(parents=True, exist_ok=True)
    book = _Book(path)
    notes: list[str] = []
    if ctx.plan is not None:
        _decisions_sheet(book, ctx)
    if ctx.plan is not None or summary.get("npv_usd") is not None:
        _headline_sheet(book, ctx)
    cf = tables.get("cashflows")
    if cf is not None and len(cf) and {"scenario", "month", "item", "usd"} <= set(cf.columns):
        _annual_sheet(book, ctx)
        _annual_by_site_sheet(book, ctx)
        _cashflow_sheet(book, ctx)
    alloc = _allocation_frame(ctx)
    if alloc is not None:
        _allocation_sheet(book, ctx, alloc)
    _summary_sheet(book, summary)
    names = [n for n in SHEETS if n in tables] + sorted(n for n in tables if n not in SHEETS)
    for name in names:
        df = tables[name]
        if name == "plan_btc_sales" and "btc" in df.columns:        # the sales made, not every month x scenario
            df = df[pd.to_numeric(df["btc"], errors="coerce") > 1e-9]
        if name.startswith("plan_") and df.empty:     # "no purchases" needs no sheet (the Headline says so)
            continue
        _table_sheet(book, name, df, notes)
    for n in ctx.notes:
        notes.append(n)
    if notes:                  # truncated sheets, missing instance: say so in a last sheet
        book.sheet("notes", ["note"], [[n] for n in notes], [None], [100.0])
    book.close()
    return path
