"""The result directory: its one writer and its one reader.

A result directory is what ``solve --out``, ``evaluate --out`` and ``Result.write`` leave:
- ``summary.json``: the run's headline figures (``Result.summary()`` or
  ``Evaluation.summary()``): instance, status, ``npv_usd``, ``npv_usd_by_scenario``, ...;
- tables, one CSV (and optionally Parquet) each: ``plan.csv`` (site x month allocation, wide;
  after a solve on a scenario tree with one first stage per path its probability-weighted mean,
  and ``plan_by_scenario.csv``), ``allocation.csv`` (the same, tidy: site, month, owned, use,
  asset, racks, mw, units; with a ``scenario`` column on such a tree),
  ``cashflows.csv`` (every cash-flow line per period, site and scenario, USD),
  ``kpis.csv``, ``npv_breakdown.csv``, ``shadow_prices.csv``, ``leases.csv``, ``contracts.csv``
  and, with a financing section, ``debt_schedule.csv`` (instrument x year) and ``tax_schedule.csv``
  (scenario x tax year);
- ``plan/``: the plan's decision tables (``optimizer.plan.Plan.to_dir``), readable back
  with ``Plan.load`` (``evaluate --plan DIR/plan``); after a solve on a staged scenario tree
  also ``nodes.csv``, ``decisions_by_node.csv``, ``decisions_by_scenario.csv`` and
  ``decide_now.csv`` (``optimizer.evaluate.treeplan``; ``Plan.load`` ignores them);
- ``decisions.md``: every decision in words (written by the CLI, ``optimizer.output.decisions``).
Numbers are written with 15 significant digits (``FLOAT_FORMAT``): a double's noise
(``333.33333333333337``, ``-0.0``) does not reach the files, the value is kept to 1e-15.
Directories written before ``allocation.csv`` existed read as before (the table is absent).
Sweep, tornado and frontier directories hold ``points.csv``, ``tornado.csv`` or
``frontier.csv``; the reader returns those too. The report and the workbook
(``optimizer.output``) read directories only through ``read_result_dir``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InputError
from optimizer.plan import FIRST_STAGE, Plan

TABLES = ("plan", "plan_by_scenario", "allocation", "cashflows", "kpis", "npv_breakdown", "leases", "contracts", "shadow_prices",
          "debt_schedule", "tax_schedule", "points", "tornado", "frontier")
# decision tables read from plan/ as plan_<name> (leases and contracts have their own names); treasury
# BTC sales are a commitment too (listed per scenario, equal within a tree node)
DECISIONS = tuple(n for n in FIRST_STAGE if n not in ("leases", "contracts")) + ("btc_sales",)
FLOAT_FORMAT = "%.15g"


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
    path = Path(path)
    path.write_text(json.dumps(jsonable(obj), indent=2) + "\n")
    return path


def write_result_dir(out_dir: str | Path, summary: dict, tables: dict[str, pd.DataFrame | None],
                     plan: Plan | None = None, formats: tuple[str, ...] = ("csv",),
                     plan_tables: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write ``summary.json``, one file per table (empty and None tables skipped only when
    None) and ``plan/`` (with ``plan_tables`` beside the decision tables: a tree solve's
    ``nodes``, ``decisions_by_node``, ``decisions_by_scenario``, ``decide_now``); return the directory."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    if plan is not None:
        plan.to_dir(out / "plan")
    for name, df in (plan_tables or {}).items():
        (out / "plan").mkdir(exist_ok=True)
        df.to_csv(out / "plan" / f"{name}.csv", index=False, float_format=FLOAT_FORMAT)
    for name, df in tables.items():
        if df is None:
            continue
        if "csv" in formats:
            df.to_csv(out / f"{name}.csv", index=False, float_format=FLOAT_FORMAT)
        if "parquet" in formats:
            df.to_parquet(out / f"{name}.parquet", index=False)
    return out


def read_result_dir(result_dir: str | Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    """``summary.json`` as a dict and every table found as a DataFrame (decision tables of
    ``plan/`` under ``plan_<name>``). Missing files are simply absent from the dict."""
    d = Path(result_dir)
    if not d.is_dir():
        raise InputError(f"{d}: result directory not found")
    summary: dict = {}
    if (d / "summary.json").is_file():
        try:
            summary = json.loads((d / "summary.json").read_text())
        except json.JSONDecodeError as e:
            raise InputError(f"{d / 'summary.json'}:{e.lineno}: invalid JSON: {e.msg}") from None
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        df = _read_csv(d / f"{name}.csv")
        if df is not None:
            tables[name] = df
    for name in DECISIONS:
        df = _read_csv(d / "plan" / f"{name}.csv")
        if df is not None:
            tables[f"plan_{name}"] = df
    for name in ("leases", "contracts"):          # evaluation directories keep these only under plan/
        if name not in tables:
            df = _read_csv(d / "plan" / f"{name}.csv")
            if df is not None:
                tables[name] = df
    if not summary and not tables:
        raise InputError(f"{d}: no summary.json or result tables (plan.csv, cashflows.csv, ...) in this directory")
    return summary, tables


def _read_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype={"month": str, "scenario": str, "site": str})
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (pd.errors.ParserError, ValueError) as e:
        raise InputError(f"{path}: cannot read CSV: {e}") from None
