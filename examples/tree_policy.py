"""Decide now, decide later: solve on a scenario tree and test the policy out of sample.

Solves an instance with a ``tree`` section (models/trees.md): prints what to commit now, what to
do at each node when it is reached, the value of the tree over the now-or-never (two-stage)
plan, then plays the policy forward on fresh sampled price paths (re-planning at each branch
month) against the static two-stage plan and the baselines.

    python examples/tree_policy.py                                # instances/tree_demo.yaml (a few minutes)
    python examples/tree_policy.py --small --paths 2              # stochastic_demo on a 2x2 tree (seconds)
    python examples/tree_policy.py instances/tree_demo.yaml --paths 20 --workers 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "tree_demo.yaml"),
                    help="instance with a scenario_generator and a tree (default: instances/tree_demo.yaml)")
    ap.add_argument("--small", action="store_true",
                    help="instead: instances/stochastic_demo.yaml on a 2x2 tree branching 2026-01 and 2027-01")
    ap.add_argument("--paths", type=int, default=5, help="fresh paths to simulate (0: no simulation)")
    ap.add_argument("--workers", type=int, default=1, help="processes for the simulation")
    ap.add_argument("--gap", type=float, default=0.005, help="relative MIP gap of every solve")
    a = ap.parse_args(argv)

    from optimizer import InputError, solve
    from optimizer.analysis.simulate import simulate
    from optimizer.instance import load_instance

    try:
        inst = load_instance(ROOT / "instances" / "stochastic_demo.yaml" if a.small else a.instance)
        if a.small:  # the generator's 4 leaves become a 2x2 tree (no whole-set reduction)
            inst = inst.with_overrides({"scenario_generator.n_scenarios": 4, "scenario_generator.reduce_to": None,
                                        "tree": {"branch_months": ["2026-01", "2027-01"], "children": 2}})
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = solve(inst, mip_gap=a.gap, value_of_information=False, shadow_prices=False)
    s = res.summary()
    print(f"instance {inst.name}: {res.status}, {s['tree']['form']} tree with {s['tree']['nodes']} nodes and {s['tree']['leaves']} leaves")
    print(f"tree E[NPV]: {res.npv_usd / 1e6:,.2f} M$")
    if s["tree"]["form"] == "multistage":
        print(f"two-stage (now-or-never) E[NPV]: {s['two_stage_npv_usd'] / 1e6:,.2f} M$")
        print(f"value of flexibility: {s['value_of_flexibility_usd'] / 1e6:,.2f} M$")
        print("decide now:")
        for line in s["decide_now"] or ["nothing"]:
            print(f"  - {line}")
        for node, v in s["contingent_plan"].items():
            if v["decisions"] != ["nothing new"]:
                print(f"from {v['from']}, at node {node} (p={v['probability']:.2f}; {v['description']}):")
                for line in v["decisions"]:
                    print(f"  - {line}")
    if a.paths > 0:
        df = simulate(inst, a.paths, executor="processes" if a.workers > 1 else "inprocess", workers=a.workers, mip_gap=a.gap)
        print(f"out of sample, {a.paths} fresh paths (mean realized NPV, M$):")
        for policy, g in df.groupby("policy", sort=False):
            print(f"  {policy:13} {g['realized_npv_usd'].mean() / 1e6:10,.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
