"""Solve one planning instance and print the plan summary.

Prints the status, the expected NPV (as the independent evaluator computes it), the NPV of each
baseline plan and the uplift over the best one, the investment decisions (conversions, leases,
optional contracts, ASIC purchases and retirements, site sales), the NPV breakdown by cash-flow
line and the mining / HPC MW per site at a few dates.

    python examples/solve_one.py                                  # the 200 MW colocation case
    python examples/solve_one.py instances/demo.yaml --gap 0.01 --out out/demo
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "case_colo_200mw.yaml"),
                    help="instance YAML/JSON (default: instances/case_colo_200mw.yaml)")
    ap.add_argument("--gap", type=float, default=0.005, help="relative MIP gap (default 0.005)")
    ap.add_argument("--time-limit", type=float, default=120.0, help="solver time limit in seconds (default 120)")
    ap.add_argument("--out", default=None, help="also write the result tables to this directory")
    a = ap.parse_args(argv)

    import pandas as pd

    from optimizer import InputError, solve
    from optimizer.instance import load_instance

    try:
        inst = load_instance(a.instance)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    res = solve(inst, mip_gap=a.gap, time_limit_s=a.time_limit)
    print(f"instance {inst.name}: {res.status} ({res.message})")
    if not res.solved:
        for line in res.diagnosis:
            print(f"  {line}")
        return 3
    res.verify()   # solver objective == evaluator NPV, no rule broken
    print(f"expected NPV: {res.npv_usd / 1e6:,.1f} M$  (gap {100 * (res.mip_gap or 0):.2f} %, "
          f"build {res.build_s:.1f} s, solve {res.solve_s:.1f} s)")
    for name, npv in sorted(res.npv_usd_by_scenario.items()):
        print(f"  scenario {name}: {npv / 1e6:,.1f} M$")
    for name, npv in sorted(res.baselines.items(), key=lambda kv: -kv[1]):
        print(f"baseline {name}: {npv / 1e6:,.1f} M$  (the plan adds {(res.npv_usd - npv) / 1e6:,.1f} M$)")

    plan = res.plan
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        for title, df in (("conversions started", plan.conversions), ("leases signed", plan.leases),
                          ("optional contracts", plan.contracts), ("ASIC purchases", plan.purchases),
                          ("ASIC retirements", plan.retirements), ("site sales / acquisitions", plan.site_events)):
            print(f"\n{title}:")
            print(df.to_string(index=False) if len(df) else "  none")
        b = res.evaluation.npv_breakdown()
        b = b[b["pv_usd"].abs() > 0.5]
        print("\nNPV breakdown (expected PV, M$):")
        print((b["pv_usd"] / 1e6).round(1).to_string())
        alloc = res.site_allocation
        months = sorted(alloc["month"].unique())
        pick = months[:: max(1, len(months) // 5)]
        print("\nMW by use (mining = installed ASICs, hpc = critical IT built):")
        print(alloc[alloc["month"].isin(pick)][["site", "month", "mining_mw", "hpc_mw", "hpc_mw_leased"]]
              .round(1).to_string(index=False))
    if a.out:
        print(f"\nresult tables written to {res.write(a.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
