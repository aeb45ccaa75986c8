"""Sweep the BTC price level of every scenario and plot the NPV against it.

Multiplies every scenario's BTC price path by a factor (``scenarios[*].btc_price_usd.scale``),
re-solves the plan at each factor (one persistent model, warm-started), prints NPV, MW converted
and leases signed per point, and saves a PNG of NPV and converted MW against the factor.

    python examples/sweep_btc_price.py                                   # colocation case, 5 points
    python examples/sweep_btc_price.py instances/demo.yaml --lo 0.5 --hi 2 --points 7 --png npv.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = "scenarios[*].btc_price_usd.scale"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default=str(ROOT / "instances" / "case_colo_200mw.yaml"))
    ap.add_argument("--lo", type=float, default=0.5, help="lowest BTC price factor (default 0.5)")
    ap.add_argument("--hi", type=float, default=2.0, help="highest BTC price factor (default 2.0)")
    ap.add_argument("--points", type=int, default=5, help="number of factors, both ends included (default 5)")
    ap.add_argument("--gap", type=float, default=0.005)
    ap.add_argument("--png", default="sweep_btc_price.png", help="where to save the chart")
    ap.add_argument("--out", default=None, help="store directory: each point is saved as it finishes; rerun to resume")
    a = ap.parse_args(argv)
    if a.points < 2 or not 0 < a.lo < a.hi:
        ap.error("need --points >= 2 and 0 < --lo < --hi")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from optimizer import InputError, sweep
    from optimizer.instance import load_instance

    try:
        inst = load_instance(a.instance)
        df = sweep(inst, [f"{PATH}={a.lo}:{a.hi}:{a.points}"], out_dir=a.out, progress=False, mip_gap=a.gap)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    mw_cols = [c for c in df.columns if c.startswith("converted_mw_")]
    df["converted_mw"] = df[mw_cols].sum(axis=1)
    print(f"{'BTC price factor':>16} {'NPV M$':>10} {'MW converted':>13}  leases signed")
    for f, npv, mw, signed in zip(df[PATH], df["npv_usd"], df["converted_mw"], df["leases_signed"]):
        print(f"{f:>16.3g} {npv / 1e6:>10,.1f} {mw:>13,.1f}  {signed or '-'}")
    failed = df[df["error"].astype(str) != ""]
    if len(failed):
        print(f"{len(failed)} point(s) failed, first: {failed['error'].iloc[0]}", file=sys.stderr)

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(df[PATH], df["npv_usd"] / 1e6, marker="o", color="#1f5fa8", label="expected NPV")
    ax.set_xlabel("BTC price factor (x every scenario's path)")
    ax.set_ylabel("expected NPV, USD million")
    ax2 = ax.twinx()
    ax2.step(df[PATH], df["converted_mw"], where="mid", color="#e8930c", ls="--", label="MW of IT converted")
    ax2.set_ylabel("MW of critical IT converted")
    ax2.set_ylim(0, max(1.0, float(df["converted_mw"].max())) * 1.15)
    ax.set_title(f"{inst.name}: NPV against the BTC price level")
    fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.88))
    fig.tight_layout()
    fig.savefig(a.png, dpi=110)
    plt.close(fig)
    print(f"chart saved to {a.png}")
    return 0 if failed.empty else 1


if __name__ == "__main__":
    sys.exit(main())
