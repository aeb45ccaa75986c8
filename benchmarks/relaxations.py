"""Relaxation benchmark: how far a generated instance's relaxations are from its plans.

    python benchmarks/relaxations.py --size medium --seed 1                       # the LP relaxation
    python benchmarks/relaxations.py --size large --seed 0 --solver ipm --time-limit 900
    python benchmarks/relaxations.py --size medium --seed 1 --keep x,y --time-limit 60   # only leases integer

Builds the model of ``generate(size, seed, "funded")`` (the instances of benchmarks/solve.py) and
hands it to HiGHS with every integer column relaxed except those of the variables named in
``--keep`` (Pyomo component names: conv, x, y, tkeep, gx, acq, sell, sign, nbuild...), every cash
floor a bound (the full model, not the lazy rounds), one thread. Prints the integer columns per
variable, then the model status, the best plan's value and the bound in M$ (for the LP: its
optimum) and the seconds HiGHS took. A relaxation's optimum bounds the MIP's: with only some
integers kept, it says how much of the gap between the LP relaxation and the plans those
integers explain (benchmarks/README.md, sixth pass).
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default="", help="comma-separated variables kept integer (default: none, the LP)")
    ap.add_argument("--solver", default="simplex", choices=["simplex", "ipm"], help="HiGHS's LP solver (LP only)")
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds (HiGHS's own limit)")
    args = ap.parse_args(argv)

    import numpy as np
    from generate import generate

    from optimizer.economics.data import compile_instance
    from optimizer.model.build import build_model
    from optimizer.model.common import USD
    from optimizer.solve.backend import HighsBackend

    t = time.perf_counter()
    b = HighsBackend(build_model(compile_instance(generate(args.size, args.seed, "funded"))))
    sf, h = b._sf, b.highs
    print(f"{args.size} seed {args.seed}: {len(sf.columns):,} columns, {len(sf.rows):,} rows, "
          f"built and handed over in {time.perf_counter() - t:.1f} s", flush=True)
    ints = np.flatnonzero(sf.integrality)
    names = np.array([sf.columns[j].parent_component().local_name for j in ints])
    print("integer columns: " + ", ".join(f"{k} {v}" for k, v in collections.Counter(names.tolist()).most_common()))
    keep = [k for k in args.keep.split(",") if k]
    unknown = sorted(set(keep) - set(names.tolist()))
    if unknown:
        print(f"--keep: no integer variable named {', '.join(unknown)} in this model", file=sys.stderr)
        return 2
    relax = ints[~np.isin(names, keep)].astype(np.int32)
    h.changeColsIntegrality(relax.size, relax, np.zeros(relax.size, dtype=np.uint8))
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("time_limit", args.time_limit)
    h.setOptionValue("mip_rel_gap", 1e-4)
    if not keep:
        h.setOptionValue("solver", args.solver)
    t = time.perf_counter()
    h.run()
    s, info = time.perf_counter() - t, h.getInfo()
    what = f"kept integer: {','.join(keep)} ({ints.size - relax.size} columns)" if keep else f"LP relaxation ({args.solver})"
    value = info.objective_function_value * USD / 1e6
    line = f"{what}: {h.modelStatusToString(h.getModelStatus())}, value {value:,.1f} M$"
    if keep:
        line += f", bound {info.mip_dual_bound * USD / 1e6:,.1f} M$"
    print(f"{line}, {s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
