"""The result directory: its one writer and its one reader.

A result directory is what ``solve --out``, ``evaluate --out``, ``frontier --out``,
``tornado --out``, ``breakeven --out`` and ``Result.write`` leave:
- ``summary.json``: the run's headline figures (``Result.summary()`` or
  ``Evaluation.summary()``): instance, status, ``npv_usd``, ``npv_usd_by_scenario``, ...;
  frontier and tornado outputs have none;
- tables, one CSV (and optionally Parquet) each: ``plan.csv`` (site x month allocation, wide;
  after a solve on a scenario tree with one first stage per path its probability-weighted mean,
  and ``plan_by_scenario.csv``), ``allocation.csv`` (the same, tidy: site, month, owned, use,
  asset, racks, mw, units; with a ``scenario`` column on such a tree),
  ``cashflows.csv`` (every cash-flow line per period, site and scenario, USD),
  ``kpis.csv``, ``npv_breakdown.csv``, ``shadow_prices.csv``, ``leases.csv``, ``contracts.csv``,
  with a financing section ``debt_schedule.csv`` (instrument x year) and ``tax_schedule.csv``
  (scenario x tax year), ``terminal_check.csv`` (``solve --terminal-check``), ``frontier.csv``, ``tornado.csv``; figures ``frontier.png``, ``tornado.png``;
- ``plan/``: the plan's decision tables (``optimizer.plan.Plan.to_dir``), readable back
  with ``Plan.load`` (``evaluate --plan DIR/plan``); after a solve on a staged scenario tree
  also ``nodes.csv``, ``decisions_by_node.csv``, ``decisions_by_scenario.csv`` and
  ``decide_now.csv`` (``optimizer.evaluate.treeplan``; ``Plan.load`` ignores them);
- ``manifest.json``, written last, listing every file above (``optimizer.manifest``);
- ``decisions.md``: every decision in words (written by the CLI after the manifest,
  ``optimizer.output.decisions``; not needed by any reader).
Numbers are written with 15 significant digits (``FLOAT_FORMAT``): a double's noise
(``333.33333333333337``, ``-0.0``) does not reach the files, the value is kept to 1e-15.

Completeness: the writer deletes the manifest first, then the previous result's files it will
not rewrite (including ``report.html``, ``results.xlsx`` and ``decisions.md``, rendered from that
result), writes every file whole (temporary name, then rename) and the manifest last. The reader
refuses, in one line, a directory whose manifest is missing or names a missing file, so a killed
run never passes for a finished one. One result per directory: writing a result replaces the
previous one.

A sweep store (``points.csv`` + ``sweep.json``, appended point by point by
``optimizer.analysis.sweep``, resumable) may share the directory; it is complete when
``sweep.json`` says so (``STORE_COMPLETE``), which the sweep writes once every point of its grid
is stored. The reader refuses an incomplete store the same way. The report and the workbook
(``optimizer.output``) read directories only through ``read_result_dir``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer import manifest
from optimizer.errors import InputError
from optimizer.plan import FIRST_STAGE, Plan

RESULT_TABLES = ("plan", "plan_by_scenario", "allocation", "cashflows", "kpis", "npv_breakdown", "leases", "contracts",
                 "shadow_prices", "debt_schedule", "tax_schedule", "terminal_check", "tornado", "frontier")
STORE_TABLES = ("points",)
TABLES = RESULT_TABLES + STORE_TABLES
# a tree solve's tables beside the decision tables in plan/ (optimizer.evaluate.treeplan)
TREE_PLAN_TABLES = ("nodes", "decisions_by_node", "decisions_by_scenario", "decide_now")
# decision tables read from plan/ as plan_<name> (leases and contracts have their own names); treasury
# BTC sales are a commitment too (listed per scenario, equal within a tree node)
DECISIONS = tuple(n for n in FIRST_STAGE if n not in ("leases", "contracts")) + ("btc_sales",)
FLOAT_FORMAT = "%.15g"
FIGURES = ("frontier.png", "tornado.png")
RENDERED = ("report.html", "results.xlsx", "decisions.md")   # rendered from a result (report, the CLI)
BREAKEVEN = ("breakeven.json", "breakeven_history.csv")      # a breakeven's result (write_breakeven_dir)
STORE_META = "sweep.json"                            # a sweep store's metadata (prefix + this name)
STORE_COMPLETE = "complete"                          # its key: true once every point of the grid is stored


def _owned() -> list[str]:
    """Every name a result writer owns in its directory (a sweep store's files are not among them)."""
    names = ["summary.json", "plan"] + [f"{t}.{ext}" for t in RESULT_TABLES for ext in ("csv", "parquet")]
    return names + list(FIGURES) + list(RENDERED) + list(BREAKEVEN)


def jsonable(x: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf become null."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` as JSON, written whole or not at all (``optimizer.manifest.write_text``)."""
    return manifest.write_text(path, json.dumps(jsonable(obj), indent=2) + "\n")


def write_result_dir(out_dir: str | Path, summary: dict | None, tables: dict[str, pd.DataFrame | None],
                     plan: Plan | None = None, formats: tuple[str, ...] = ("csv",),
                     figures: dict[str, Callable[[Path], Any]] | None = None, kind: str = "result",
                     plan_tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write ``summary.json`` (unless None), one file per table (None tables skipped), ``plan/``
    (with ``plan_tables`` beside the decision tables: a tree solve's ``nodes``,
    ``decisions_by_node``, ``decisions_by_scenario``, ``decide_now``), each figure
    (``name -> draw(path)``), then ``manifest.json`` listing them all; the previous result's files
    not rewritten are deleted first. Return the directory."""
    unknown = [n for n in tables if n not in RESULT_TABLES] + [n for n in (figures or {}) if n not in FIGURES]
    if unknown:
        raise ValueError(f"write_result_dir: unknown table or figure {unknown[0]!r}")
    exts = [e for e in ("csv", "parquet") if e in formats]
    files = [] if summary is None else ["summary.json"]
    files += [f"{name}.{ext}" for name, df in tables.items() if df is not None for ext in exts]
    files += list(figures or {})
    keep = set(files) | ({"plan"} if plan is not None else set())
    out = manifest.begin(out_dir, stale=[n for n in _owned() if n not in keep])
    for name, df in tables.items():
        if df is None:
            continue
        for ext in exts:
            with manifest.atomic_file(out / f"{name}.{ext}") as tmp:
                if ext == "csv":
                    df.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
                else:
                    df.to_parquet(tmp, index=False)
    if plan is not None:
        pdir = plan.to_dir(out / "plan", in_result=True)
        for name in TREE_PLAN_TABLES:  # a tree solve's tables, or none left from an earlier one
            df = (plan_tables or {}).get(name)
            if df is None:
                (pdir / f"{name}.csv").unlink(missing_ok=True)
                continue
            with manifest.atomic_file(pdir / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
        files += [f"plan/{p.relative_to(pdir).as_posix()}" for p in sorted(pdir.rglob("*")) if p.is_file()]
    for name, draw in (figures or {}).items():
        with manifest.atomic_file(out / name) as tmp:
            draw(tmp)
    if summary is not None:
        write_json(out / "summary.json", summary)
    manifest.finish(out, files, kind)
    return out


def write_breakeven_dir(out_dir: str | Path, meta: dict, history: pd.DataFrame) -> Path:
    """A breakeven's result: ``breakeven.json`` (``meta``: path, kind, target, value, bracket,
    solves, tolerance, converged) and ``breakeven_history.csv`` (one row per solve), each written
    whole, then ``manifest.json`` (kind ``breakeven``); like every result it replaces the previous
    result in the directory. Return the directory."""
    out = manifest.begin(out_dir, stale=[n for n in _owned() if n not in BREAKEVEN])
    with manifest.atomic_file(out / "breakeven_history.csv") as tmp:
        history.to_csv(tmp, index=False, float_format=FLOAT_FORMAT)
    write_json(out / "breakeven.json", meta)
    manifest.finish(out, BREAKEVEN, "breakeven")
    return out


def read_store_meta(directory: str | Path, prefix: str = "") -> dict | None:
    """A sweep store's ``{prefix}sweep.json`` as a dict (None when absent or unreadable)."""
    path = Path(directory) / f"{prefix}{STORE_META}"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def check_store_complete(directory: str | Path, prefix: str = "") -> None:
    """One ``InputError`` line unless the sweep store in ``directory`` holds every point of its grid."""
    d = Path(directory)
    meta = read_store_meta(d, prefix)
    if meta is None:
        raise InputError(f"{d}: incomplete sweep store: {prefix}points.csv without a readable {prefix}{STORE_META}; "
                         "re-run the sweep with the same --out")
    if meta.get(STORE_COMPLETE) is not True:
        n = meta.get("n_points")
        stored = meta.get("n_stored")
        of = f" ({stored} of {n} points stored)" if isinstance(n, int) and isinstance(stored, int) else ""
        raise InputError(f"{d}: incomplete sweep store{of}: the sweep was interrupted or is still running; "
                         "re-run it with the same --out to finish (stored points are kept)")


def read_result_dir(result_dir: str | Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """``summary.json`` as a dict and every table the manifest lists as a DataFrame (decision
    tables of ``plan/`` under ``plan_<name>``), plus a complete sweep store's ``points``.
    An incomplete result or store is one ``InputError`` line."""
    d = Path(result_dir)
    if not d.is_dir():
        raise InputError(f"{d}: result directory not found")
    written = [n for n in _owned() if n not in RENDERED and (d / n).exists()]
    started = written or manifest.has_manifest(d) or manifest.being_written(d)
    listed = set(manifest.check_complete(d)) if started else set()
    summary: dict = {}
    if "summary.json" in listed:
        try:
            summary = json.loads((d / "summary.json").read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{d / 'summary.json'}:{e.lineno}: invalid JSON: {e.msg}") from None
    tables: dict[str, pd.DataFrame] = {}
    for name in RESULT_TABLES:
        if f"{name}.csv" in listed:
            tables[name] = _read_csv(d / f"{name}.csv")
    for name in DECISIONS:
        if f"plan/{name}.csv" in listed:
            tables[f"plan_{name}"] = _read_csv(d / "plan" / f"{name}.csv")
    for name in ("leases", "contracts"):          # evaluation directories keep these only under plan/
        if name not in tables and f"plan/{name}.csv" in listed:
            tables[name] = _read_csv(d / "plan" / f"{name}.csv")
    if (d / "points.csv").is_file():
        check_store_complete(d)
        tables["points"] = _read_csv(d / "points.csv")
    if not summary and not tables:
        raise InputError(f"{d}: no summary.json or result tables (plan.csv, cashflows.csv, ...) in this directory")
    return summary, tables


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype={"month": str, "scenario": str, "site": str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, ValueError) as e:
        raise InputError(f"{path}: cannot read CSV: {e}") from None
