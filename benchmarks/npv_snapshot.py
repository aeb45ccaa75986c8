"""Regression snapshot of every bundled instance: NPV, objective, status and first-stage plan.

A refactor or a switched-off capability must leave every number here unchanged. This is not a
correctness check (the tests hold hand values); it tells whether a change moved any result.

    python benchmarks/npv_snapshot.py --write benchmarks/npv_snapshot.json   # record
    python benchmarks/npv_snapshot.py --check benchmarks/npv_snapshot.json   # compare (exit 1 on a difference)

Each instance is solved at a tight gap without value-of-information solves; the baselines are
evaluated too. Deliberately infeasible test instances record their status only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optimizer import Instance  # noqa: E402

try:  # the layered package exports these at the top level
    from optimizer import BASELINES, baseline_plan, evaluate, solve  # noqa: E402
except ImportError:  # before the layered architecture
    from optimizer.evaluate import (  # noqa: E402
        BASELINES,
        baseline_plan,
        evaluate,  # noqa: E402
    )
    from optimizer.solve import solve  # noqa: E402

FIRST_STAGE = ["conversions", "grid_expansions", "purchases", "retirements", "leases", "contracts", "site_events"]


def instance_files() -> list[Path]:
    return sorted((ROOT / "instances").glob("*.yaml")) + sorted((ROOT / "tests" / "instances").glob("*.yaml"))


def plan_digest(plan) -> str:
    """Hash of the first-stage tables, rows sorted, numbers rounded to 6 significant digits."""
    h = hashlib.sha256()
    for name in FIRST_STAGE:
        df = getattr(plan, name)
        if df is None or not len(df):
            h.update(f"{name}:empty;".encode())
            continue
        df = df.copy()
        for c in df.columns:
            if pd.api.types.is_float_dtype(df[c]):
                df[c] = df[c].map(lambda x: float(f"{x:.6g}") + 0.0)
        df = df.sort_values(list(df.columns)).reset_index(drop=True)
        h.update(f"{name}:{df.to_csv(index=False)};".encode())
    return h.hexdigest()[:16]


def snapshot_one(path: Path) -> dict:
    inst = Instance.from_yaml(path)
    t0 = time.perf_counter()
    # a scenario tree (tree_demo's 27 leaves) proves 1e-3, not 1e-6, in minutes (under the horizon-end
    # rules 1e-4 was no longer reached within 120 s; 1e-3 took 198 s on a busy machine); the record is
    # reproducible only if the gap, not the time limit, stops the solve, hence the longer limit; its
    # two-stage comparison solve is not recorded
    gap, limit = (1e-3, 900) if inst.tree is not None else (1e-6, 120)
    res = solve(inst, mip_gap=gap, value_of_information=False, value_of_flexibility=False, shadow_prices=False, time_limit_s=limit)
    out = {"status": res.status, "npv_usd": res.npv_usd, "objective_usd": res.objective_usd,
           "solve_wall_s": round(time.perf_counter() - t0, 2)}
    if res.has_plan:
        out["plan_digest"] = plan_digest(res.plan)
        out["npv_usd_by_scenario"] = res.npv_usd_by_scenario
    base = {}
    for name in BASELINES:
        try:
            ev = evaluate(inst, baseline_plan(inst, name))
            base[name] = {"npv_usd": ev.npv_usd, "violations": len(ev.violations)}
        except Exception as e:  # noqa: BLE001  a baseline that cannot apply is recorded as such
            base[name] = {"error": type(e).__name__}
    out["baselines"] = base
    return out


def close(a, b, rtol=1e-9) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-3)
    return a == b


def compare(old: dict, new: dict, where: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k == "solve_wall_s":
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += compare(a, b, f"{where}{k}.")
        elif not close(a, b):
            out.append(f"{where}{k}: {a!r} -> {b!r}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", type=Path)
    g.add_argument("--check", type=Path)
    ap.add_argument("--only", nargs="*", help="instance file stems to include")
    a = ap.parse_args(argv)
    snap = {}
    for p in instance_files():
        if a.only and p.stem not in a.only:
            continue
        key = str(p.relative_to(ROOT))
        snap[key] = snapshot_one(p)
        print(f"{key}: {snap[key]['status']} npv {snap[key]['npv_usd']} ({snap[key]['solve_wall_s']} s)", flush=True)
    if a.write:
        a.write.write_text(json.dumps(snap, indent=1, sort_keys=True))
        return 0
    old = json.loads(a.check.read_text())
    diffs = []
    for key in sorted(set(old) | set(snap)):
        if a.only and Path(key).stem not in a.only:
            continue
        if key not in old or key not in snap:
            diffs.append(f"{key}: only in {'new' if key in snap else 'old'}")
            continue
        diffs += [f"{key}: {d}" for d in compare(old[key], snap[key])]
    print("\n".join(diffs) if diffs else f"no difference on {len(snap)} instances")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
