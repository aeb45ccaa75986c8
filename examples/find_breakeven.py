"""Find a breakeven: the lease rate at which a site starts converting to AI/HPC.

Bisects a parameter of the instance between two values until the plan's decision flips (here:
"site SITE converts any blocks"), re-using one persistent model across the solves. By default,
on the 200 MW colocation case: the rate (USD per kW-month) of lease L-colo-200 at which
tx-denton converts. A rough hand estimate: the lease's NOI is worth ~1.81 B$ at 121 $/kW-month
(so ~15 M$ per $/kW-month), against ~1.5 B$ of capex and some mining given up (the tenant repays
its power at the campus's price): the flip should sit between 100 and 104 $/kW-month.

    python examples/find_breakeven.py
    python examples/find_breakeven.py --lo 60 --hi 160 --tol 0.5
    python examples/find_breakeven.py instances/demo.yaml --param "leases[L4-colo].rate_usd_per_kw_month" --site pa-1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "case_colo_200mw.yaml"))
    ap.add_argument("--param", default="leases[L-colo-200].rate_usd_per_kw_month", help="dotted path of the parameter")
    ap.add_argument("--site", default="tx-denton", help="target: this site converts any blocks")
    ap.add_argument("--lo", type=float, default=60.0, help="lower end of the search (default 60)")
    ap.add_argument("--hi", type=float, default=160.0, help="upper end of the search (default 160)")
    ap.add_argument("--tol", type=float, default=1.0, help="stop when the bracket is this narrow (default 1.0)")
    ap.add_argument("--gap", type=float, default=0.005)
    a = ap.parse_args(argv)

    from optimizer import InputError, breakeven
    from optimizer.instance import load_instance

    try:
        inst = load_instance(a.instance)
        be = breakeven(inst, a.param, a.lo, a.hi, target=f"converts:{a.site}", abs_tol=a.tol, rel_tol=0.0, mip_gap=a.gap)
    except InputError as e:   # includes "the decision does not flip in [lo, hi]"
        print(f"error: {e}", file=sys.stderr)
        return 2
    h = be.history.sort_values(a.param)            # one row per solve: step, the parameter, target_value, npv_usd, ...
    print(f"{'solve':>5} {a.param:>45} {'converts':>9} {'NPV M$':>10}")
    for step, x, flag, npv in zip(h["step"], h[a.param], h["target_value"], h["npv_usd"]):
        print(f"{int(step) + 1:>5} {float(x):>45.6g} {'yes' if flag else 'no':>9} {float(npv) / 1e6:>10,.1f}")
    lo, hi = be.bracket
    print(f"breakeven: {a.site} converts when {a.param} >= {hi:.6g} and not when <= {lo:.6g} "
          f"(value {be.value:.6g}, {be.n_solves} solves{'' if be.converged else ', NOT converged'})")
    return 0 if be.converged else 1


if __name__ == "__main__":
    sys.exit(main())
