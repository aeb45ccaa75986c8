"""Sweep benchmark: one N-point sweep timed three ways, in one run.

    python benchmarks/sweep.py [--instance instances/demo.yaml] [--points 50] [--param lease|btc]
                               [--workers 2] [--option time_limit=60 ...]

1. cold:       in-process, every point builds and solves a fresh model (persistent=False)
2. persistent: in-process, one persistent model updated in place between points
3. dask:       a LocalCluster of --workers processes, one persistent model per worker
               (cluster start-up included in the time)
4. processes:  a local process pool of --workers processes, one persistent model per worker
               (pool start-up included)

Prints the wall times, their ratios and the largest relative NPV difference between the
routes (they must agree to the solver's gap).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _option(text: str):
    key, _, value = text.partition("=")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instance", default=str(ROOT / "instances" / "demo.yaml"))
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--param", choices=["lease", "btc"], default="lease",
                    help="lease: first lease's rate x0.6..x1.4; btc: every scenario's BTC price x0.6..x1.4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--option", action="append", default=[], help="solve option KEY=VALUE (repeatable)")
    ap.add_argument("--skip", action="append", default=[], choices=["cold", "persistent", "dask", "processes"])
    args = ap.parse_args(argv)

    import numpy as np

    from optimizer.analysis.sweep import sweep
    from optimizer.instance.loading import load_instance

    inst = load_instance(args.instance)
    if args.param == "lease":
        if not inst.leases:
            print(f"{args.instance}: no lease to sweep; use --param btc", file=sys.stderr)
            return 1
        spec = f"leases[{inst.leases[0].id}].rate_usd_per_kw_month=x0.6:1.4:{args.points}"
    else:
        spec = f"scenarios[*].btc_price_usd=x0.6:1.4:{args.points}"
    opts = dict(_option(o) for o in args.option)
    print(f"instance {inst.name} ({args.instance}), {args.points} points of {spec.split('=')[0]} x0.6..x1.4, options {opts}")

    runs = {
        "cold": dict(executor="inprocess", persistent=False),
        "persistent": dict(executor="inprocess", persistent=True),
        "dask": dict(executor="dask", workers=args.workers, persistent=True),
        "processes": dict(executor="processes", workers=args.workers, persistent=True),
    }
    times, npvs = {}, {}
    for name, kw in runs.items():
        if name in args.skip:
            continue
        t0 = time.perf_counter()
        df = sweep(inst, [spec], progress=False, **kw, **opts)
        times[name] = time.perf_counter() - t0
        npvs[name] = df["npv_usd"].to_numpy(dtype=float)
        n_err = int((df["error"] != "").sum())
        solve_s = df["solve_s"].sum()
        build_s = df["build_s"].sum()
        print(f"{name:>10}: {times[name]:8.2f} s wall  ({times[name] / len(df):.3f} s/point; "
              f"sum build {build_s:.2f} s, sum solve {solve_s:.2f} s; {n_err} failed)"
              + (f"  [{args.workers} workers, start-up included]" if name in ("dask", "processes") else ""), flush=True)
        if n_err:
            print(f"            first error: {df.loc[df['error'] != '', 'error'].iloc[0]}")
    if "cold" in times and "persistent" in times:
        print(f"cold / persistent = {times['cold'] / times['persistent']:.2f}x")
    for par in ("dask", "processes"):
        for ref in ("cold", "persistent"):
            if par in times and ref in times:
                print(f"{ref} / {par}({args.workers}) = {times[ref] / times[par]:.2f}x")
    names = list(npvs)
    worst = 0.0
    for a in names:
        for b in names:
            d = np.abs(npvs[a] - npvs[b]) / np.maximum(np.abs(npvs[a]), 1.0)
            worst = max(worst, float(np.nanmax(d)) if d.size else 0.0)
    print(f"largest relative NPV difference between routes: {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
