"""Scenario-tree benchmark: the demo-size tree (instances/tree_demo.yaml: 3 sites, 60 months,
a 3x3x3 tree, 27 leaves, 40 nodes) and the out-of-sample simulation's throughput.

    python benchmarks/trees.py [--threads 2] [--time-limit 300] [--gap 0.005] [--seeds 2026]
                               [--paths 20] [--workers 1] [--skip-solve] [--skip-simulate]

solve (one fresh Python process per generator seed, so the memory peak is the solve's own):
build s (compile + pre-check + Pyomo build), handoff s (standard form + passModel), solve s
(HiGHS to the gap, target 120 s on 2 cores), gap reached, variables / constraints / integers,
peak MB (growth of the process's peak RSS over build + handoff + solve), and the same for the
two-stage form of the same 27 leaves (now-or-never) with the value of flexibility.
Baselines are not reported (only the MIP-start candidates are evaluated), no EVPI/VSS.

simulate: ``optimizer.analysis.simulate`` on --paths fresh paths (rolling, two-stage and the
three baselines): the preparation (the tree and two-stage solves every path shares) and the
path phase, timed apart; paths per minute = paths / path-phase minutes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
INSTANCE = ROOT / "instances" / "tree_demo.yaml"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_solve(seed: int | None, opts: dict, form: str) -> dict:
    """One solve in this process: the tree (form 'tree') or its two-stage form ('two-stage')."""
    from optimizer import Instance
    from optimizer.instance.variants import two_stage_instance
    from optimizer.solve import solve

    inst = Instance.from_yaml(INSTANCE)
    if seed is not None and seed != inst.scenario_generator.seed:
        inst = inst.with_overrides({"scenario_generator.seed": seed})
    if form == "two-stage":
        inst = two_stage_instance(inst)
    rss0 = _maxrss_mb()
    t0 = time.perf_counter()
    r = solve(inst, baselines=False, shadow_prices=False, value_of_information=False, value_of_flexibility=False, **opts)
    wall = time.perf_counter() - t0
    return {"form": form, "seed": seed, "status": str(r.status), "npv_usd": r.npv_usd, "mip_gap": r.mip_gap,
            "build_s": r.build_s, "handoff_s": r.handoff_s, "solve_s": r.solve_s, "wall_s": wall,
            "variables": r.n_variables, "constraints": r.n_constraints, "integers": r.n_integer,
            "peak_mb": _maxrss_mb() - rss0, "rss_after_load_mb": rss0, "verify": r.check()}


def run_simulate(n_paths: int, workers: int, opts: dict) -> dict:
    from optimizer import Instance
    from optimizer.analysis.simulate import prepare, simulate

    inst = Instance.from_yaml(INSTANCE)
    t0 = time.perf_counter()
    job = prepare(inst, **opts)
    prep = time.perf_counter() - t0
    df = simulate(inst, n_paths, job=job, executor="processes" if workers > 1 else "inprocess", workers=workers)
    path_s = df.attrs["path_seconds"]
    stats = df.groupby("policy", sort=False)["realized_npv_usd"].agg(["count", "mean", "std"]).to_dict(orient="index")
    return {"paths": n_paths, "workers": workers, "prepare_s": prep, "paths_s": path_s,
            "paths_per_minute": 60.0 * n_paths / path_s if path_s > 0 else None,
            "errors": int((df["error"].astype(str) != "").sum()), "by_policy": stats}


def _child(kind: str, args: dict) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import trees; "
            f"print('@@' + json.dumps(trees.{kind}(**json.loads({json.dumps(json.dumps(args))})), default=str))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    lines = [x for x in r.stdout.splitlines() if x.startswith("@@")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][2:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--time-limit", type=float, default=300.0)
    p.add_argument("--gap", type=float, default=0.005)
    p.add_argument("--seeds", type=int, nargs="*", default=[None], help="scenario_generator seeds (default: the instance's)")
    p.add_argument("--paths", type=int, default=20)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--skip-solve", action="store_true")
    p.add_argument("--skip-simulate", action="store_true")
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)
    opts = {"threads": a.threads, "time_limit_s": a.time_limit, "mip_gap": a.gap}
    out: dict = {"instance": str(INSTANCE.relative_to(ROOT)), "options": opts, "solves": [], "simulate": None}
    if not a.skip_solve:
        print(f"{'form':10} {'seed':>6} {'status':>22} {'NPV M$':>9} {'gap':>7} {'build s':>8} {'handoff s':>9} "
              f"{'solve s':>8} {'vars':>7} {'rows':>7} {'ints':>6} {'peak MB':>8}")
        for seed in a.seeds:
            rows = {}
            for form in ("tree", "two-stage"):
                r = _child("run_solve", {"seed": seed, "opts": opts, "form": form})
                rows[form] = r
                out["solves"].append(r)
                gap = "-" if r["mip_gap"] is None else f"{r['mip_gap']:.3%}"
                print(f"{form:10} {str(seed):>6} {r['status']:>22} {r['npv_usd'] / 1e6:9.2f} {gap:>7} {r['build_s']:8.1f} "
                      f"{r['handoff_s']:9.1f} {r['solve_s']:8.1f} {r['variables']:7d} {r['constraints']:7d} {r['integers']:6d} "
                      f"{r['peak_mb']:8.0f}", flush=True)
                if r["verify"]:
                    print(f"  verify: {r['verify']}")
            flex = rows["tree"]["npv_usd"] - rows["two-stage"]["npv_usd"]
            print(f"  value of flexibility {flex / 1e6:,.2f} M$ ({flex / abs(rows['two-stage']['npv_usd']):.2%} of the two-stage NPV)")
    if not a.skip_simulate:
        r = _child("run_simulate", {"n_paths": a.paths, "workers": a.workers, "opts": {"threads": a.threads, "mip_gap": a.gap}})
        out["simulate"] = r
        print(f"simulate: {r['paths']} paths, {r['workers']} worker(s): prepare {r['prepare_s']:.1f} s, paths {r['paths_s']:.1f} s "
              f"= {r['paths_per_minute']:.2f} paths per minute, {r['errors']} rows with errors")
        for pol, st in r["by_policy"].items():
            print(f"  {pol:13} mean {st['mean'] / 1e6:9.2f} M$  std {st['std'] / 1e6:8.2f} M$  ({st['count']} paths)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
