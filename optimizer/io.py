"""Writers for evaluation results (the solve Result writes itself: ``Result.write``).

An evaluation directory holds:
- ``summary.json``: instance, plan name, ``npv_usd`` (expected), ``npv_usd_by_scenario``,
  ``npv_breakdown_usd`` (expected NPV per cash-flow line), ``violations`` (sentences);
- ``cashflows.csv``: every cash-flow line per period, site and scenario (undiscounted USD);
- ``plan.csv`` (site x month allocation), ``kpis.csv``, ``npv_breakdown.csv`` when available;
- ``plan/``: the plan's decision tables, one CSV each (readable back with ``--plan DIR/plan``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd


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


def breakdown_table(ev) -> pd.DataFrame | None:
    """Expected NPV per cash-flow line as a two-column table (item, pv_usd)."""
    bd = ev.npv_breakdown() if hasattr(ev, "npv_breakdown") else None
    if isinstance(bd, pd.Series):
        bd = bd.rename("pv_usd").to_frame()
    if not isinstance(bd, pd.DataFrame):
        return None
    if "item" not in bd.columns:
        bd = bd.rename_axis("item").reset_index()
    return bd


def breakdown_by_item(ev) -> dict[str, float]:
    """Expected NPV per cash-flow line (probability x discount factor x usd, summed)."""
    bd = breakdown_table(ev)
    if bd is None:
        return {}
    val = next((c for c in ("pv_usd", "npv_usd") if c in bd.columns), None)
    if val is None:
        nums = [c for c in bd.columns if c != "item" and pd.api.types.is_numeric_dtype(bd[c])]
        val = nums[0] if nums else None
    return {} if val is None else {str(k): float(v) for k, v in zip(bd["item"], bd[val])}


def evaluation_summary(ev, instance_name: str, plan_name: str) -> dict:
    return {
        "instance": instance_name,
        "plan": plan_name,
        "npv_usd": float(ev.npv_usd),
        "npv_usd_by_scenario": {str(k): float(v) for k, v in dict(ev.npv_usd_by_scenario).items()},
        "npv_breakdown_usd": breakdown_by_item(ev),
        "violations": [str(v) for v in ev.violations],
    }


def write_evaluation(ev, out_dir: str | Path, summary: dict) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    ev.cashflows.to_csv(out / "cashflows.csv", index=False)
    for name in ("allocation", "kpis"):
        df = getattr(ev, name, None)
        if isinstance(df, pd.DataFrame):
            df.to_csv(out / ("plan.csv" if name == "allocation" else f"{name}.csv"), index=False)
    bd = breakdown_table(ev)
    if bd is not None:
        bd.to_csv(out / "npv_breakdown.csv", index=False)
    if getattr(ev, "plan", None) is not None:
        ev.plan.to_dir(out / "plan")
    return out
