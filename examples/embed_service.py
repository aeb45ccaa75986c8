"""Embed the optimizer in a service: a function that takes an instance as a dict and returns JSON.

``plan_service(instance_dict)`` validates the dict (the same rules as an instance file), solves
it and returns a JSON string with the result summary (status, NPV, baselines, gap, timings),
the NPV breakdown by cash-flow line and every plan table as a list of records. It reads and
writes no files and keeps no state between calls, so it can sit behind a web handler or a job
queue as is. Bad input does not raise: the JSON says ``"ok": false`` with a one-line error that
names the field.

    python examples/embed_service.py                        # instances/tiny.yaml, then a bad dict
    python examples/embed_service.py instances/case_efficient_miner.yaml --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLAN_TABLES = ("conversions", "grid_expansions", "purchases", "retirements", "leases", "contracts",
               "site_events", "operations", "energy", "btc_sales")


def plan_service(instance_dict: dict, *, base_dir: str | None = None, mip_gap: float = 0.005,
                 time_limit_s: float = 60.0, operations: bool = True) -> str:
    """Validate ``instance_dict``, solve it, return the result as a JSON string.

    ``base_dir``: where CSV series named in the dict live (only needed if it names any).
    ``operations``: include the per-scenario operation tables (units running, energy, BTC sales),
    which are the bulk of the payload; investment decisions are always included."""
    from pydantic import ValidationError

    from optimizer import Instance, solve
    from optimizer.errors import one_line
    from optimizer.instance import format_validation_error
    from optimizer.solve.resultdir import jsonable

    if not isinstance(instance_dict, dict):
        return json.dumps({"ok": False, "error": f"instance: expected a mapping, got {type(instance_dict).__name__}"})
    try:
        inst = Instance.from_dict(instance_dict, base_dir=base_dir or ".")
    except ValidationError as e:
        return json.dumps({"ok": False, "error": format_validation_error(e, instance_dict, Instance)})
    except ValueError as e:                       # e.g. a CSV series that cannot be read
        return json.dumps({"ok": False, "error": one_line(str(e))})
    res = solve(inst, mip_gap=mip_gap, time_limit_s=time_limit_s)
    out: dict = {"ok": res.solved, "summary": res.summary}
    if not res.solved:
        out["error"] = res.message
        return json.dumps(jsonable(out))
    out["checks"] = res.check()                   # [] when solver objective == evaluator NPV and no rule is broken
    out["npv_breakdown_usd"] = res.evaluation.npv_breakdown()["pv_usd"].to_dict()
    tables = PLAN_TABLES if operations else tuple(t for t in PLAN_TABLES if t not in ("operations", "energy", "btc_sales"))
    out["plan"] = {name: getattr(res.plan, name).to_dict(orient="records") for name in tables}
    return json.dumps(jsonable(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "tiny.yaml"))
    ap.add_argument("--json", action="store_true", help="print the whole JSON answer")
    a = ap.parse_args(argv)

    import yaml

    path = Path(a.instance)
    data = yaml.safe_load(path.read_text())      # what a caller would send: a plain dict
    answer = json.loads(plan_service(data, base_dir=str(path.parent)))
    if a.json:
        print(json.dumps(answer, indent=1))
    s = answer["summary"]
    print(f"service answer for {s['instance']}: ok={answer['ok']} status={s['status']} npv_usd={s['npv_usd']:,.0f}")
    print("  baselines: " + ", ".join(f"{k} {v:,.0f}" for k, v in s["baselines"].items()))
    print("  plan tables (rows): " + ", ".join(f"{k} {len(v)}" for k, v in answer["plan"].items()))
    print(f"  checks: {answer['checks'] or 'objective equals evaluator NPV, no violation'}")

    bad = dict(data, horizon={**data["horizon"], "periods": -3})   # a caller's mistake
    err = json.loads(plan_service(bad))
    print(f"bad input answer: ok={err['ok']} error={err['error']}")
    return 0 if answer["ok"] and not err["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
