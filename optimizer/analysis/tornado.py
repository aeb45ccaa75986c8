"""Tornado: one-at-a-time low/high sensitivities of the NPV, ranked by swing.

Each parameter is set to its low and then its high value with every other parameter at the
instance's value; 1 + 2k solves for k parameters, run through the sweep machinery (same
executors; with ``out_dir`` the points go to the resumable store ``DIR/tornado_points.csv``,
so a tornado and a sweep may share a directory).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.analysis.digest import param_label
from optimizer.analysis.sweep import Param, check_points, make_point, parse_param_spec, run_points
from optimizer.constants import Reporter
from optimizer.errors import InputError

_KIND_OF = {"mul": "mul", "add": "add", "shift_months": "shift"}


def _param(path: str, low: Any, high: Any) -> Param:
    """A 2-value Param from raw values or override dicts (``{"mul": 0.8}``)."""
    kinds, vals = [], []
    for v in (low, high):
        if isinstance(v, Mapping) and len(v) == 1 and next(iter(v)) in _KIND_OF:
            key = next(iter(v))
            kinds.append(_KIND_OF[key])
            vals.append(v[key])
        else:
            kinds.append("value")
            vals.append(v)
    if kinds[0] != kinds[1]:
        raise InputError(f"tornado {path}: low and high must be of the same kind, got {low!r} and {high!r}")
    return Param(path, tuple(vals), kinds[0], f"{low},{high}")


def tornado_params(params: Any) -> list[Param]:
    """``{path: (low, high)}`` or a list of ``"PATH=LOW,HIGH"`` specs (``x0.8,1.2`` etc.)."""
    out: list[Param] = []
    if isinstance(params, Mapping):
        for path, lh in params.items():
            if isinstance(lh, str):
                p = parse_param_spec(f"{path}={lh}")
            else:
                if not isinstance(lh, (list, tuple)) or len(lh) != 2:
                    raise InputError(f"tornado {path}: give (low, high), got {lh!r}")
                p = _param(str(path), *lh)
            out.append(p)
    else:
        out = [parse_param_spec(s) if isinstance(s, str) else s for s in params]
    if not out:
        raise InputError("tornado: no parameters given")
    for p in out:
        if len(p.values) != 2:
            raise InputError(f"tornado {p.column}: give exactly two values (low, high), got {len(p.values)}")
    cols = [p.column for p in out]
    if len(set(cols)) != len(cols):
        raise InputError("tornado: a parameter is given twice")
    return out


def tornado(instance, params: Any, *, solver: Any = None, out_dir: str | Path | None = None,
            executor: str = "inprocess", workers: int | None = None, scheduler_address: str | None = None,
            persistent: bool = True, progress: Reporter | None = None, **solve_options) -> pd.DataFrame:
    """One row per parameter, ranked by |swing|: parameter, kind, low, high, base_npv_usd,
    npv_low_usd, npv_high_usd, swing_usd (= npv_high - npv_low), error."""
    ps = tornado_params(params)
    nan = math.nan
    points = [make_point(ps, [nan] * len(ps))]
    for i, p in enumerate(ps):
        for v in p.values:
            vals = [nan] * len(ps)
            vals[i] = v
            points.append(make_point(ps, vals))
    check_points(instance, ps, points[1:])
    meta = {"mode": "tornado", "params": [{"path": p.path, "kind": p.kind, "column": p.column, "values": list(p.values)} for p in ps]}
    df = run_points(instance, points, [p.column for p in ps], meta, solver=solver, out_dir=out_dir, executor=executor,
                    workers=workers, scheduler_address=scheduler_address, persistent=persistent, progress=progress,
                    label="tornado", store_prefix="tornado_", **solve_options)
    by_id = df.set_index("point_id")

    def npv(pt) -> float:
        return float(by_id.at[pt.id, "npv_usd"]) if pt.id in by_id.index else nan

    def err(pt) -> str:
        return str(by_id.at[pt.id, "error"]) if pt.id in by_id.index else "not solved"

    base = points[0]
    rows = []
    for i, p in enumerate(ps):
        lo_pt, hi_pt = points[1 + 2 * i], points[2 + 2 * i]
        errors = [e for e in (err(base), err(lo_pt), err(hi_pt)) if e]
        rows.append({"parameter": p.path, "kind": p.kind, "low": p.values[0], "high": p.values[1],
                     "base_npv_usd": npv(base), "npv_low_usd": npv(lo_pt), "npv_high_usd": npv(hi_pt),
                     "error": errors[0] if errors else ""})
    out = pd.DataFrame(rows)
    out["swing_usd"] = out["npv_high_usd"] - out["npv_low_usd"]
    out = out.assign(_abs=out["swing_usd"].abs()).sort_values("_abs", ascending=False, na_position="last", kind="stable")
    cols = ["parameter", "kind", "low", "high", "base_npv_usd", "npv_low_usd", "npv_high_usd", "swing_usd", "error"]
    return out[cols].reset_index(drop=True)


def plot_tornado(df: pd.DataFrame, path_png: str | Path, title: str | None = None) -> Path:
    """Horizontal bars from the base NPV to the NPV at each parameter's low and high, largest swing on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = df.dropna(subset=["npv_low_usd", "npv_high_usd"]).iloc[::-1]
    base = float(df["base_npv_usd"].dropna().iloc[0]) if df["base_npv_usd"].notna().any() else 0.0
    mark = {"value": "", "mul": "x", "add": "+", "shift": "shift "}
    labels = [f"{param_label(r.parameter)}\n({mark.get(r.kind, '')}{r.low:g} / {mark.get(r.kind, '')}{r.high:g})"
              if isinstance(r.low, (int, float)) else f"{param_label(r.parameter)}\n({r.low} / {r.high})" for r in d.itertuples()]
    fig, ax = plt.subplots(figsize=(9, 1.0 + 0.6 * max(len(d), 1)))
    y = range(len(d))
    scale = 1e6
    ax.barh(y, (d["npv_low_usd"] - base) / scale, left=base / scale, color="#d9534f", label="low")
    ax.barh(y, (d["npv_high_usd"] - base) / scale, left=base / scale, color="#5cb85c", label="high", alpha=0.85)
    ax.axvline(base / scale, color="black", lw=1)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.set_xlabel("NPV (USD million)")
    ax.set_title(title or f"Tornado: NPV swing (base {base / scale:,.2f} M USD)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path_png = Path(path_png)
    path_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path_png, dpi=120)
    plt.close(fig)
    return path_png
