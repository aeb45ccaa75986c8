"""Solve benchmark: generated instances (benchmarks/generate.py) through ``optimizer.solve``.

    python benchmarks/solve.py [--sizes small medium large] [--seeds 0 1 2] [--threads 2]
                               [--time-limit 10 60 300] [--gap 0.005] [--highs NAME=VALUE ...]

Each (size, seed) runs in a fresh Python process (clean memory peak, fresh HiGHS scheduler).
Per size it prints the MEDIAN over the seeds of: build s (compile + pre-check + Pyomo build),
handoff s (standard form + passModel), solve s (HiGHS run), other s (baselines for the MIP
start, plan extraction, evaluation), gap reached, variables, constraints, integer variables,
peak MB (and, per run, the peak RSS of the portfolio's child process, solve/portfolio.py, when one
ran, and what that child answered: its plan in M$, whether it searched a neighbourhood), and the
build+handoff share of build+handoff+solve. Different generator seeds give different instances;
HiGHS's time also moves ~2x with row/column order alone (shared/reference/SOLVER_NOTES.md), so
read medians, not single runs.

Peak MB = resource.getrusage(RUSAGE_SELF).ru_maxrss at the end of the run minus ru_maxrss
after imports and instance generation, i.e. the growth of the process's peak RSS caused by
build + handoff + solve (what a solve adds on top of the loaded package).

Shadow prices and EVPI/VSS (extra solves) are off, and only the MIP-start baselines (greedy,
keep-mining) are evaluated unless --baselines: they are not part of the solve being timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
sys.path.insert(0, str(ROOT / "benchmarks"))

SIZES = ("small", "medium", "large")
TIME_LIMIT_S = {"small": 10.0, "medium": 60.0, "large": 300.0}  # the targets of issue 3, item 6


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class _CpuClock:
    """--clock cpu: HiGHS is interrupted after ``budget_s`` of this process's CPU time (all threads)
    instead of wall time, so a loaded machine does not shrink the search; CPU seconds of build,
    hand-off and solve are recorded. HiGHS's MIP search runs one worker (its log: "Using 1 max
    workers"), so on an idle 2-core machine CPU s ~ wall s; where its LP uses both threads,
    CPU s > wall s and the CPU budget is the stricter one."""

    def __init__(self, budget_s: float | None):
        from optimizer.solve.backend import HighsBackend

        self.budget_s, self.cpu = budget_s, {}
        clock = self
        init0, solve0 = HighsBackend.__init__, HighsBackend.solve

        def init(b, model):
            c = time.process_time()
            clock.cpu["build"] = c - clock.cpu.pop("start")
            init0(b, model)
            clock.cpu["handoff"] = time.process_time() - c

        def solve(b, *args, **kw):
            c0 = time.process_time()
            cb = None
            if clock.budget_s is not None:
                def cb(e):
                    if time.process_time() - c0 > clock.budget_s:
                        b.request_stop()  # a limit, not a Ctrl-C (which raises KeyboardInterrupt)
                        e.interrupt()
                b.highs.cbMipInterrupt.subscribe(cb)
                b.highs.cbSimplexInterrupt.subscribe(cb)
                b.highs.cbIpmInterrupt.subscribe(cb)
                kw["time_limit_s"] = 20 * clock.budget_s  # safety net only
            try:
                return solve0(b, *args, **kw)
            finally:
                if cb is not None:
                    for ev in (b.highs.cbMipInterrupt, b.highs.cbSimplexInterrupt, b.highs.cbIpmInterrupt):
                        ev.unsubscribe(cb)
                clock.cpu["solve"] = clock.cpu.get("solve", 0.0) + time.process_time() - c0

        HighsBackend.__init__, HighsBackend.solve = init, solve

    def start(self):
        self.cpu = {"start": time.process_time()}


def _record_lazy_paths() -> list:
    """How the cash floor's row generation answered each HiGHS solve: "relaxation", "row generation" or
    "repaired" (HighsBackend._solve_lazy), with its MIP rounds and the floors enforced at the end."""
    from optimizer.solve.backend import HighsBackend  # not "import optimizer.solve.backend": optimizer.solve is the function

    paths, solve0 = [], HighsBackend.solve

    def solve(b, *args, **kw):
        r = solve0(b, *args, **kw)
        rounds = getattr(r, "lazy_rounds", None)  # None before row generation (comparisons with older commits)
        paths.append((r.lazy_path + (f" ({rounds} rounds, {r.lazy_rows} rows)" if rounds else "")) if r.lazy_path else "-")
        return r

    HighsBackend.solve = solve
    return paths


def _record_children() -> list:
    """What each portfolio child answered (solve/portfolio.py): its plan's objective in M$ (the model's
    money unit), whether it searched a neighbourhood (_portfolio_worker.py) and HiGHS's status."""
    from optimizer.solve.portfolio import Companion

    answers, read0 = [], Companion._read

    def read(c):
        a = read0(c)
        answers.append(f"{a.objective:,.1f}M{' after a neighbourhood search' if a.neighbourhood else ''} ({a.status})")
        return a

    Companion._read = read
    return answers


def run_one(size: str, seed: int, options: dict, clock: str = "wall") -> dict:
    """Generate, solve, and measure one instance in this process."""
    from generate import generate

    from optimizer.solve import solve

    cpu = _CpuClock(options.get("time_limit_s")) if clock == "cpu" else None
    paths = _record_lazy_paths()
    children = _record_children()

    options = dict(options)
    cash = options.pop("cash", "funded")
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    inst = generate(size, seed, cash)
    gen_s = time.perf_counter() - t
    rss0 = _maxrss_mb()
    if cpu is not None:
        cpu.start()
    t = time.perf_counter()
    r = solve(inst, shadow_prices=False, value_of_information=False, **options)
    wall = time.perf_counter() - t
    cpu_s = {k: v for k, v in cpu.cpu.items() if k != "start"} if cpu is not None else {}
    rss1 = _maxrss_mb()
    problems = r.check() if r.solved else [f"status {r.status}"]
    bh = (r.build_s or 0.0) + (r.handoff_s or 0.0)
    best_base = max(r.baselines.values()) if r.baselines else None
    return {
        "size": size, "seed": seed, "status": r.status, "gen_s": gen_s,
        "build_s": r.build_s, "handoff_s": r.handoff_s, "solve_s": r.solve_s,
        "other_s": wall - bh - (r.solve_s or 0.0), "wall_s": wall,
        "gap": r.mip_gap, "objective_usd": r.objective_usd, "best_bound_usd": r.best_bound_usd,
        "best_baseline_usd": best_base,
        "variables": r.n_variables, "constraints": r.n_constraints, "integers": r.n_integer,
        "peak_mb": rss1 - rss0, "rss_after_imports_mb": rss0,
        # the portfolio's child process (solve/portfolio.py), if one ran: its whole peak RSS
        "child_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0 or None,
        "share_build_handoff": bh / (bh + (r.solve_s or 0.0)) if bh + (r.solve_s or 0.0) > 0 else None,
        "share_build_handoff_cpu": _share(cpu_s),
        "verified": not problems, "problems": problems[:1], "clock": clock, "lazy_path": "/".join(paths),
        "child": "/".join(children) or None,
        "build_cpu_s": cpu_s.get("build"), "handoff_cpu_s": cpu_s.get("handoff"), "solve_cpu_s": cpu_s.get("solve"),
        "load_avg_1min": [load0, os.getloadavg()[0]],
    }


def _share(c: dict):
    if not {"build", "handoff", "solve"} <= set(c):
        return None
    bh = c["build"] + c["handoff"]
    return bh / (bh + c["solve"]) if bh + c["solve"] > 0 else None


def _median(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="generator seeds (default: 0 .. runs-1)")
    ap.add_argument("--runs", type=int, default=3, help="runs per size when --seeds is not given")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gap", type=float, default=0.005)
    ap.add_argument("--time-limit", nargs="+", type=float, default=None,
                    help="seconds, one per size in --sizes order (default: small 10, medium 60, large 300)")
    ap.add_argument("--highs", nargs="*", default=[], metavar="NAME=VALUE", help="raw HiGHS options")
    ap.add_argument("--mip-start", choices=("auto", "on", "off"), default="on",
                    help="the baseline MIP start: on (the solve default), off, auto = only when the baselines are evaluated (--baselines)")
    ap.add_argument("--no-mip-start", action="store_true", help="same as --mip-start off")
    ap.add_argument("--baselines", action="store_true",
                    help="also evaluate and report all baselines (convert-asap can take minutes); default: only the MIP-start candidates")
    ap.add_argument("--cash", choices=("funded", "tight"), default="funded", help="generator treasury variant")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time limit in wall seconds (HiGHS's own) or in CPU seconds of this process (robust to a loaded machine)")
    ap.add_argument("--solve-option", nargs="*", default=[], metavar="NAME=VALUE",
                    help="other optimizer.solve options, e.g. lazy_cash=false")
    ap.add_argument("--json", help="append every run as one JSON line to this file")
    ap.add_argument("--one", nargs=4, metavar=("SIZE", "SEED", "OPTIONS_JSON", "CLOCK"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.one:  # child process: one run, one JSON line on stdout
        size, seed, opts = a.one[0], int(a.one[1]), json.loads(a.one[2])
        print("RESULT " + json.dumps(run_one(size, seed, opts, a.one[3])))
        return 0

    seeds = a.seeds if a.seeds is not None else list(range(a.runs))
    mip_start = {"auto": None, "on": True, "off": False}["off" if a.no_mip_start else a.mip_start]
    limits = dict(TIME_LIMIT_S)
    if a.time_limit:
        if len(a.time_limit) != len(a.sizes):
            ap.error("--time-limit: give one value per size in --sizes")
        limits.update(zip(a.sizes, a.time_limit))
    highs = {}
    for kv in a.highs:
        k, _, v = kv.partition("=")
        highs[k] = _parse_value(v)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} cores={os.cpu_count()} threads={a.threads} gap={a.gap} "
          f"seeds={seeds} highs={highs or 'defaults'} mip_start={a.mip_start if not a.no_mip_start else 'off'} clock={a.clock} "
          f"cash={a.cash} baselines={a.baselines} solve_options={a.solve_option or 'defaults'} "
          f"load={os.getloadavg()[0]:.2f}", flush=True)
    summary = []
    for size in a.sizes:
        opts = {"time_limit_s": limits[size], "mip_gap": a.gap, "threads": a.threads,
                "mip_start": mip_start, "baselines": a.baselines, "cash": a.cash}
        if highs:
            opts["highs_options"] = highs
        for kv in a.solve_option:
            k, _, v = kv.partition("=")
            opts[k] = _parse_value(v)
        rows = []
        for seed in seeds:
            out = subprocess.run([sys.executable, __file__, "--one", size, str(seed), json.dumps(opts), a.clock],
                                 capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                print(f"{size} seed {seed}: FAILED\n{out.stderr[-2000:]}", flush=True)
                continue
            r = json.loads(line[7:])
            rows.append(r)
            print(f"  {size} seed {seed}: {r['status']} gap {_fmt(r['gap'], '.4f')} build {r['build_s']:.2f} "
                  f"handoff {r['handoff_s']:.2f} solve {r['solve_s']:.1f} (cpu {_fmt(r['solve_cpu_s'], '.1f')}) "
                  f"other {r['other_s']:.1f} "
                  f"obj {_fmt(r['objective_usd'] and r['objective_usd'] / 1e6, '.1f')}M "
                  f"(best baseline {_fmt(r['best_baseline_usd'] and r['best_baseline_usd'] / 1e6, '.1f')}M) "
                  f"verified {r['verified']} path {r['lazy_path']} "
                  f"child {r.get('child') or '-'} "
                  f"peak {r['peak_mb']:.0f} MB (portfolio child {_fmt(r.get('child_peak_mb'), '.0f')} MB) "
                  f"load {r['load_avg_1min'][0]:.1f}->{r['load_avg_1min'][1]:.1f}", flush=True)
            if not r["verified"]:
                print(f"    not verified: {r['problems'][0] if r['problems'] else '?'}", flush=True)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps({**r, "options": opts}) + "\n")
        if rows:
            statuses = sorted({r["status"] for r in rows})
            summary.append((size, len(rows), {k: _median(rows, k) for k in (
                "build_s", "handoff_s", "solve_s", "other_s", "gap", "variables", "constraints",
                "integers", "peak_mb", "share_build_handoff", "build_cpu_s", "handoff_cpu_s", "solve_cpu_s",
                "share_build_handoff_cpu")}, "/".join(statuses),
                sum(r["verified"] for r in rows)))
    print("\nmedians  | runs | build s | handoff s | solve s | other s | gap     | status | vars    | cons    | ints  | peak MB | b+h share | verified")
    for size, n, m, st, ok in summary:
        print(f"{size:8s} | {n:4d} | {_fmt(m['build_s'], '7.2f')} | {_fmt(m['handoff_s'], '9.2f')} | "
              f"{_fmt(m['solve_s'], '7.1f')} | {_fmt(m['other_s'], '7.1f')} | {_fmt(m['gap'], '7.4f')} | {st} | "
              f"{_fmt(m['variables'], '7.0f')} | {_fmt(m['constraints'], '7.0f')} | {_fmt(m['integers'], '5.0f')} | "
              f"{_fmt(m['peak_mb'], '7.0f')} | {_fmt(m['share_build_handoff'], '9.1%')} | {ok}/{n}")
    if a.clock == "cpu":
        print("\nCPU s (medians) | build | handoff | solve | b+h share")
        for size, n, m, st, ok in summary:
            print(f"{size:15s} | {_fmt(m['build_cpu_s'], '5.2f')} | {_fmt(m['handoff_cpu_s'], '7.2f')} | "
                  f"{_fmt(m['solve_cpu_s'], '5.1f')} | {_fmt(m['share_build_handoff_cpu'], '9.1%')}")
    print(f"# load average at the end: {os.getloadavg()}")
    return 0


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


if __name__ == "__main__":
    raise SystemExit(main())
