"""A stochastic risk frontier: expected NPV against CVaR as the weight on CVaR grows.

Solves the two-stage instance (investments shared by all scenarios, operations per scenario)
with the objective (1 - w) E[NPV] + w CVaR_alpha[NPV] for a few weights w and prints, per
weight, the expected NPV, the CVaR of the plan (mean NPV of the worst 1 - alpha of
probability) and its first-stage decisions. A risk-averse plan gives up expected NPV to lift
the bad tail. Default: the efficient-miner case (bear/base/bull), where filling the empty
racks with new ASICs pays in expectation but loses money in the bear path.

    python examples/risk_frontier.py
    python examples/risk_frontier.py instances/case_treasury_gas.yaml --weights 0,0.5,1 --alpha 0.9 --csv frontier.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def frontier(inst, weights: list[float], alpha: float, mip_gap: float):
    """``optimizer.risk_frontier``: one solve per CVaR weight."""
    from optimizer import risk_frontier

    return risk_frontier(inst, weights=weights, alpha=alpha, mip_gap=mip_gap)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "case_efficient_miner.yaml"))
    ap.add_argument("--weights", default="0,0.25,0.5,1", help="comma list of CVaR weights in [0, 1] (default 0,0.25,0.5,1)")
    ap.add_argument("--alpha", type=float, default=0.9, help="CVaR level: the tail is the worst 1 - alpha (default 0.9)")
    ap.add_argument("--gap", type=float, default=0.005)
    ap.add_argument("--csv", default=None, help="save the frontier table (a result directory's frontier.csv feeds the report)")
    a = ap.parse_args(argv)
    try:
        weights = [float(w) for w in a.weights.split(",")]
    except ValueError:
        ap.error(f"--weights: expected numbers separated by commas, got {a.weights!r}")
    if any(not 0 <= w <= 1 for w in weights) or not 0 <= a.alpha < 1:
        ap.error("weights must be in [0, 1] and alpha in [0, 1)")

    from optimizer import InputError
    from optimizer.instance import load_instance

    try:
        inst = load_instance(a.instance)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if len(inst.scenarios) < 2:
        print(f"error: {a.instance} has one scenario; a risk frontier needs several", file=sys.stderr)
        return 2
    f = frontier(inst, weights, a.alpha, a.gap)
    extra = [c for c in ("leases_signed", "asics_bought_units", "asics_retired_units") if c in f.columns]
    mw = [c for c in f.columns if c.startswith("converted_mw_")]
    print(f"risk frontier of {inst.name}, CVaR at alpha = {a.alpha:g} (mean of the worst {1 - a.alpha:.0%})")
    print(f"{'weight':>6} {'E[NPV] M$':>11} {'CVaR M$':>10}  first stage")
    for _, r in f.iterrows():
        stage = ", ".join([f"{c}={r[c]:g}" for c in mw if r[c]] + [f"{c}={r[c]}" for c in extra if r[c] not in ("", 0, 0.0)])
        print(f"{r['weight']:>6.3g} {r['expected_npv_usd'] / 1e6:>11,.2f} {r['cvar_usd'] / 1e6:>10,.2f}  {stage or '-'}")
    if a.csv:
        f.to_csv(a.csv, index=False)
        print(f"frontier saved to {a.csv}")
    ok = f["status"].isin(["optimal", "feasible_within_gap", "time_limit_with_incumbent"]).all()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
