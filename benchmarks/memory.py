"""Memory of one solve over time: resident size sampled every --every seconds, by phase.

    python benchmarks/memory.py [--size large] [--seed 0] [--time-limit 300] [--no-portfolio]
                                [--threads N] [--no-trim] [--every 0.25]

Runs `optimizer.solve` on a generated instance (benchmarks/generate.py) in this process, with a
thread reading /proc/self/statm every --every seconds, and prints: the resident size when each
phase of the pipeline starts (its progress reporter), the peak and when it came, the growth
above the size after imports and generation, and a timeline every 10 s. Shadow prices, baselines
and EVPI/VSS are off, as in solve.py. The portfolio's child is another process: its own peak is
printed as "portfolio child's peak" (0 when none ran).

--no-trim: solve/heap.py returns nothing to the system (its malloc_trim is replaced by nothing),
the "before" of that change. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class Phases:
    """A progress Reporter that prints each phase with the resident size when it starts."""

    def __init__(self, t0: float):
        self.t0, self.last = t0, None

    def _line(self, text: str) -> None:
        print(f"{time.perf_counter() - self.t0:8.1f} s {rss_mb():8.0f} MB  {text}", flush=True)

    def start(self, label, total=None):
        pass

    def advance(self, n=1, label=None):
        phase = (label or "").split(": ", 1)[-1].split(" ")[0:2]
        if label and phase != self.last:  # the phase changed (MIP progress lines repeat it)
            self.last = phase
            self._line(label)

    def note(self, message):
        self._line(message)

    def finish(self):
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="large", choices=("small", "medium", "large"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=300.0)
    ap.add_argument("--no-portfolio", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="HiGHS threads (default: the product's; solve.py passes 2)")
    ap.add_argument("--no-trim", action="store_true", help="solve/heap.py returns nothing to the system")
    ap.add_argument("--every", type=float, default=0.25, help="seconds between two samples")
    args = ap.parse_args(argv)

    from generate import generate

    from optimizer.solve import solve

    if args.no_trim:
        sys.modules["optimizer.solve.heap"]._malloc_trim = lambda: None
    inst = generate(args.size, args.seed, "funded")
    base = rss_mb()
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    t0 = time.perf_counter()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter() - t0, rss_mb()))
            time.sleep(args.every)

    threading.Thread(target=sample, daemon=True).start()
    print(f"# {args.size} seed {args.seed}, limit {args.time_limit:g} s, portfolio {not args.no_portfolio}, threads {args.threads}, "
          f"trims {not args.no_trim}; after imports and generation {base:.0f} MB")
    res = solve(inst, time_limit_s=args.time_limit, progress=Phases(t0), portfolio=not args.no_portfolio,
                threads=args.threads, baselines=False, value_of_information=False, shadow_prices=False)
    done.set()
    t_peak, peak = max(samples, key=lambda s: s[1])
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the true peak (a spike between samples too)
    print(f"# status {res.status.value if hasattr(res.status, 'value') else res.status}, NPV {res.npv_usd / 1e6:,.1f} M$, "
          f"gap {res.mip_gap:.2%}")
    print(f"# peak {peak:.0f} MB at {t_peak:.1f} s: growth {peak - base:.0f} MB (sampled); "
          f"ru_maxrss {maxrss:.0f} MB (growth {maxrss - base:.0f} MB, as solve.py's peak MB); "
          f"portfolio child's peak {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    print("# timeline (s, MB):", "  ".join(f"{t:.0f} {m:.0f}" for t, m in samples[:: max(1, round(10 / args.every))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
