"""Embed the optimizer in a service: a function that takes an instance as a dict and returns JSON.

``plan_service(instance_dict)`` validates the dict (the same rules as an instance file), solves
it and returns a JSON string with the result summary (status, NPV, baselines, gap, timings),
the NPV breakdown by cash-flow line and every plan table as a list of records. It writes no
files and keeps no state between calls, so it can sit behind a web handler or a job queue as
is. It reads no file either, unless the operator gives a data folder (``data_dir``): then CSV
series named in the dict are read from inside that folder only, and errors name files relative
to it. Bad input does not raise: the JSON says ``"ok": false`` with a one-line error that names
the field and quotes no file content and no server path.

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


def plan_service(instance_dict: dict, *, data_dir: str | None = None, mip_gap: float = 0.005,
                 time_limit_s: float = 60.0, operations: bool = True) -> str:
    """Validate ``instance_dict``, solve it, return the result as a JSON string.

    ``data_dir``: the server folder CSV series named in the dict are read from (paths relative to
    it, and they may not leave it); without it the dict may name no CSV file.
    ``operations``: include the per-scenario operation tables (units running, energy, BTC sales),
    which are the bulk of the payload; investment decisions are always included."""
    from pydantic import ValidationError

    from optimizer import Instance, solve
    from optimizer.errors import InputError, one_line
    from optimizer.instance import format_validation_error
    from optimizer.solve.resultdir import jsonable

    if not isinstance(instance_dict, dict):
        return json.dumps({"ok": False, "error": f"instance: expected a mapping, got {type(instance_dict).__name__}"})
    try:
        inst = Instance.from_dict(instance_dict, data_dir=data_dir)
        res = solve(inst, mip_gap=mip_gap, time_limit_s=time_limit_s)
    except ValidationError as e:
        return json.dumps({"ok": False, "error": format_validation_error(e, instance_dict, Instance)})
    except (InputError, ValueError) as e:         # e.g. a fixed decision the model cannot honour
        return json.dumps({"ok": False, "error": one_line(str(e))})
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

    from optimizer.instance import read_mapping

    path = Path(a.instance)
    data = read_mapping(path)                     # what a caller would send: a plain dict
    answer = json.loads(plan_service(data, data_dir=str(path.parent)))
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
