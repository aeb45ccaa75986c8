"""Risk: the discrete CVaR of a plan's NPVs, and the risk frontier (E[NPV] against CVaR).

The MILP maximises ``(1 - w) E[NPV] + w CVaR_alpha[NPV]`` (Rockafellar-Uryasev form, built by
``optimizer.model.objective``). ``cvar_usd`` recomputes CVaR from the evaluator's per-scenario
NPVs by sorting, independently of the model; ``Result.check`` requires the two to agree.
See models/risk.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.analysis.digest import first_stage_summary
from optimizer.constants import Reporter, reporter
from optimizer.instance.schema import Instance
from optimizer.solve import solve

__all__ = ["first_stage_summary", "frontier_chart", "risk_frontier"]

# ---------------------------------------------------------------- the frontier


def risk_frontier(instance: Instance, weights=(0.0, 0.25, 0.5, 0.75, 1.0), alpha: float | None = None,
                  progress: Reporter | None = None, **solve_options) -> pd.DataFrame:
    """Solve the instance at each CVaR weight; one row per weight: weight, alpha, status,
    expected_npv_usd and cvar_usd (of the plan, by the evaluator), objective_usd (the weighted
    objective), mip_gap, solve_s and the first-stage digest (``first_stage_summary``).
    ``alpha`` defaults to the instance's risk.alpha (0.95 without a risk section). ``progress``
    hears of each solve and gets a note with each weight's E[NPV] and CVaR as it finishes."""
    if alpha is None:
        alpha = instance.risk.alpha if instance.risk is not None else 0.95
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha: must be in [0, 1), got {alpha}")
    ws = [float(w) for w in weights]
    for w in ws:
        if not 0 <= w <= 1:
            raise ValueError(f"weights: each must be in [0, 1], got {w:g}")
    opts = {"baselines": False, "shadow_prices": False, "value_of_information": False, **solve_options}
    rows = []
    rep = reporter(progress)
    rep.start(f"risk frontier of {instance.name}", total=len(ws))
    for w in ws:
        t0 = time.perf_counter()
        rep.advance(0, label=f"risk frontier: solving at CVaR weight {w:g}")
        res = solve(instance, cvar_weight=w, cvar_alpha=alpha, **opts)
        row = {"weight": w, "alpha": alpha, "status": res.status}
        if res.solved:
            e, c = res.npv_usd, res.cvar_at(alpha)
            row.update(expected_npv_usd=e, cvar_usd=c, objective_usd=(1 - w) * e + w * c, mip_gap=res.mip_gap)
        else:
            row.update(expected_npv_usd=np.nan, cvar_usd=np.nan, objective_usd=np.nan, mip_gap=np.nan)
        row["solve_s"] = time.perf_counter() - t0
        row.update(first_stage_summary(instance, res.plan if res.solved else None))
        row["leases_signed"] = row["lease_handovers"]   # frontier.csv's format since it existed: lease@site:month
        rows.append(row)
        rep.advance(1)
        rep.note(f"weight {w:g}: {row['status']}, E[NPV] {row['expected_npv_usd'] / 1e6:,.2f} M$, "
                 f"CVaR {row['cvar_usd'] / 1e6:,.2f} M$ ({row['solve_s']:.1f} s)")
    rep.finish()
    return pd.DataFrame(rows)


def frontier_chart(frontier: pd.DataFrame, path: str | Path) -> Path:
    """PNG: E[NPV] against CVaR (one point per weight), and converted MW per site by weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = frontier.dropna(subset=["expected_npv_usd", "cvar_usd"]).sort_values("weight")
    mw_cols = [c for c in frontier.columns if c.startswith("converted_mw_")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    a1.plot(f["cvar_usd"] / 1e6, f["expected_npv_usd"] / 1e6, marker="o", lw=1.8)
    for r in f.itertuples(index=False):
        a1.annotate(f"w={r.weight:g}", (r.cvar_usd / 1e6, r.expected_npv_usd / 1e6),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    alpha = f["alpha"].iloc[0] if len(f) else float("nan")
    a1.set_xlabel(f"CVaR{alpha:g} of NPV (mean of the worst {1 - alpha:.0%}), USD million")
    a1.set_ylabel("expected NPV, USD million")
    a1.set_title("Risk frontier")
    a1.grid(alpha=0.3)
    x = np.arange(len(f))
    width = 0.8 / max(len(mw_cols), 1)
    for i, c in enumerate(mw_cols):
        a2.bar(x + i * width, f[c], width, label=c.removeprefix("converted_mw_"))
    a2.set_xticks(x + width * (len(mw_cols) - 1) / 2, [f"w={w:g}" for w in f["weight"]])
    a2.set_ylabel("MW of critical IT converted over the horizon")
    a2.set_title("First stage: conversions by CVaR weight")
    if mw_cols:
        a2.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
