"""The CFO headline of a result: the recommendation in words and the figures that decide it.

``build_headline(summary, cashflows, plan, instance)`` reads what a result directory holds (or
the same objects in memory) and returns a :class:`Headline`:

- the recommendation: MW converted to HPC and when (works start, HPC online), leases signed,
  sites sold or bought, ASICs bought and retired, plant and contracts, treasury BTC sold;
- value: expected NPV, its range across scenarios (lowest and highest scenario), CVaR when the
  summary has it, and the uplift over keeping every site mining (the ``keep-mining`` baseline);
- money: capex (undiscounted, the ledger's capex-budget items: conversion and grid capex, ASIC
  purchases), site acquisitions, and the peak funding need;
- the share of the NPV that is terminal value (value after the horizon), a warning sign when large;
  the NPV without terminal values and each terminal line, the decisions only terminal values pay
  for and, when run, the terminal check's changed decisions (``summary["terminal"]``);
- the solver's status, gap and bound, as a footnote.

Peak funding need: per scenario, the cumulative undiscounted cash flow of every non-terminal
line (terminal values are not cash) other than debt (draws, fees, interest, principal) from the
first period; the need is the deepest point below zero, i.e. the cash the company must have or
raise, from cash, debt or equity, before the plan pays for itself (before any opening cash balance). The headline gives the worst scenario and the month it is reached.
Figures that are the same in every scenario (capex) are so by construction; the others are
probability-weighted ("expected").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from optimizer.constants import status_message
from optimizer.economics.data import Data, compile_instance
from optimizer.economics.ledger import CAPEX_ITEMS, ITEM_BY_NAME, TERMINAL_ITEMS
from optimizer.instance.schema import Instance
from optimizer.output.decisions import BTC_TOL, describe_plan, root_plan
from optimizer.output.fmt import count, money, mw, usd
from optimizer.plan import Plan

KEEP_MINING = ("keep-mining", "keep_mining")     # the baseline's name (the report fixture spells it with _)
TERMINAL_SHARE_WARNING = 0.5                       # above this share of the NPV, the headline says so


@dataclass
class Headline:
    instance: str = ""
    npv_usd: float | None = None
    npv_usd_by_scenario: dict[str, float] = field(default_factory=dict)
    cvar_usd: float | None = None
    cvar_alpha: float | None = None
    keep_mining_npv_usd: float | None = None
    uplift_over_keep_mining_usd: float | None = None
    best_baseline: str | None = None
    uplift_over_best_baseline_usd: float | None = None
    converted: list[dict] = field(default_factory=list)   # site, blocks, mw, month, ready
    converted_mw: float | None = None
    leases: list[dict] = field(default_factory=list)      # lease, site, mw, month, share
    site_sales: list[dict] = field(default_factory=list)  # site, month, usd
    site_acquisitions: list[dict] = field(default_factory=list)
    units_bought: float = 0.0
    units_retired: float = 0.0
    contracts_signed: list[str] = field(default_factory=list)
    grid_expansions: list[str] = field(default_factory=list)
    capex_usd: float | None = None                        # undiscounted, positive: conversion + grid capex + ASIC purchases
    acquisitions_usd: float | None = None
    peak_funding_usd: float | None = None                 # worst scenario
    peak_funding_month: str | None = None
    peak_funding_scenario: str | None = None
    btc_sold: float | None = None                         # expected
    treasury_sales_usd: float | None = None               # expected, undiscounted
    terminal_pv_usd: float | None = None                  # expected PV of the terminal lines
    status: str = ""
    solver_note: str = ""
    recommendation: str = ""
    value_sentence: str = ""
    broken_rules: str = ""                                # said before anything else when the plan breaks rules
    warnings: list[str] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)   # (label, value) from other features (terminal check, financing)

    @property
    def terminal_share(self) -> float | None:
        if self.terminal_pv_usd is None or not self.npv_usd:
            return None
        return self.terminal_pv_usd / self.npv_usd

    def figures(self) -> list[tuple[str, str]]:
        """(label, value) pairs for cards, the console table and the workbook, in reading order."""
        rows = [("Expected NPV", usd(self.npv_usd))]
        if len(self.npv_usd_by_scenario) > 1:
            lo = min(self.npv_usd_by_scenario, key=self.npv_usd_by_scenario.get)
            hi = max(self.npv_usd_by_scenario, key=self.npv_usd_by_scenario.get)
            rows.append(("NPV range across scenarios",
                         f"{usd(self.npv_usd_by_scenario[lo])} ({lo}) to {usd(self.npv_usd_by_scenario[hi])} ({hi})"))
        if self.cvar_usd is not None and len(self.npv_usd_by_scenario) > 1:
            rows.append((f"CVaR {self.cvar_alpha:.0%} (mean of the worst tail)" if self.cvar_alpha is not None else "CVaR",
                         usd(self.cvar_usd)))
        if self.uplift_over_keep_mining_usd is not None:
            rows.append(("Uplift over keeping mining", usd(self.uplift_over_keep_mining_usd)))
        if self.converted_mw is not None:
            rows.append(("MW converted to HPC (IT)", mw(self.converted_mw) if self.converted_mw else "none"))
        rows.append(("Leases signed", ", ".join(f"{x['lease']} ({mw(x['mw'])}, {x['month']})" if x.get("mw") is not None
                                                 else f"{x['lease']} ({x['month']})" for x in self.leases) or "none"))
        if self.capex_usd is not None:
            rows.append(("Capex (undiscounted)", usd(self.capex_usd)))
        if self.acquisitions_usd:
            rows.append(("Site acquisitions", usd(self.acquisitions_usd)))
        if self.peak_funding_usd is not None:
            when = f" ({self.peak_funding_scenario}, {self.peak_funding_month})" if self.peak_funding_usd > 0 else ""
            rows.append(("Peak funding need", usd(self.peak_funding_usd) + when))
        if self.btc_sold is not None:
            rows.append(("Treasury BTC sold (expected)", f"{self.btc_sold:,.0f} BTC" + (f", {usd(self.treasury_sales_usd)}"
                                                                                       if self.treasury_sales_usd else "")))
        if self.terminal_share is not None:
            rows.append(("Terminal value share of NPV", f"{self.terminal_share:.0%}"))
        rows += self.extra
        return rows


def build_headline(summary: dict, cashflows: pd.DataFrame | None = None, plan: Plan | None = None,
                   instance: Instance | Data | None = None) -> Headline:
    """The headline of a result (``summary``: summary.json; ``cashflows``: cashflows.csv;
    ``plan``: the decision tables; ``instance``: for MW and prices, optional)."""
    data = instance if isinstance(instance, Data) or instance is None else compile_instance(instance)
    h = Headline(instance=str(summary.get("instance") or (data.inst.name if data is not None else "")))
    h.npv_usd = summary.get("npv_usd", summary.get("evaluator_npv_usd"))
    h.npv_usd_by_scenario = {str(k): float(v) for k, v in (summary.get("npv_usd_by_scenario") or {}).items() if v is not None}
    risk = summary.get("risk") or {}
    h.cvar_usd, h.cvar_alpha = risk.get("cvar_usd"), risk.get("alpha")
    base = summary.get("baselines") or {}
    km = next((base[k] for k in KEEP_MINING if base.get(k) is not None), None)
    h.keep_mining_npv_usd = km
    if km is not None and h.npv_usd is not None:
        h.uplift_over_keep_mining_usd = h.npv_usd - km
    h.best_baseline = summary.get("best_baseline")
    h.uplift_over_best_baseline_usd = summary.get("uplift_over_best_baseline_usd")
    h.status = str(summary.get("status") or ("evaluated" if summary.get("plan") else ""))
    probs = _probabilities(summary, data, cashflows)
    if plan is not None:
        _decisions(h, plan, data, probs)
    if cashflows is not None and len(cashflows) and {"scenario", "month", "item", "usd"} <= set(cashflows.columns):
        _money(h, cashflows, probs)
    h.extra += _terminal(summary)
    h.extra += _valuation(summary)
    h.extra += _tree(summary)
    h.solver_note = solver_note(summary)
    h.recommendation = _recommendation(h)
    h.value_sentence = _value_sentence(h)
    share = h.terminal_share
    if share is not None and share > TERMINAL_SHARE_WARNING:
        h.warnings.append(f"{share:.0%} of the expected NPV is terminal value (value after the horizon's last month): "
                          "the recommendation rests on how the horizon's end is valued.")
    term = summary.get("terminal") or {}
    flags = term.get("flags") or []
    if flags:
        h.warnings.append(f"{len(flags)} decision(s) are paid for only by terminal values (value after the horizon): "
                          + " ".join(f.get("sentence", "") for f in flags))
    check = summary.get("terminal_check") or {}
    if check.get("changes"):
        h.warnings.append(f"Terminal check: {len(check['changes'])} first-stage decision(s) change when every terminal "
                          "value is set to 0: " + "; ".join(f"{c['decision']} {c['key']} ({c['with_terminal']} with, "
                                                            f"{c['without_terminal']} without)" for c in check["changes"]) + ".")
    h.broken_rules = broken_rules_sentence(len(summary.get("violations") or []))
    return h


def broken_rules_sentence(n: int) -> str:
    """What a reader must see before the NPV of a plan that breaks ``n`` rules ("" if none)."""
    if not n:
        return ""
    return (f"This plan breaks {n} rule{'s' if n != 1 else ''}: the NPV below counts its cash flows as if they were "
            "allowed (the rules are listed below).")


def _probabilities(summary: dict, data: Data | None, cashflows: pd.DataFrame | None) -> dict[str, float]:
    if data is not None:
        return dict(zip(data.scenario_names, map(float, data.prob)))
    sp = summary.get("scenario_probabilities")
    if isinstance(sp, dict) and sp:
        return {str(k): float(v) for k, v in sp.items()}
    names = list(summary.get("npv_usd_by_scenario") or {})
    if not names and cashflows is not None and "scenario" in cashflows.columns:
        names = list(dict.fromkeys(cashflows["scenario"].astype(str)))
    return {n: 1.0 / len(names) for n in names} if names else {}


def _decisions(h: Headline, plan: Plan, data: Data | None, probs: dict[str, float]) -> None:
    """The plan's decisions in the headline; on a scenario tree the root's (what is decided now:
    later nodes' decisions are contingent, in the plan's decisions by node)."""
    for d in describe_plan(root_plan(plan), data):
        if d.kind == "conversion":
            h.converted.append({"site": d.site, "blocks": d.quantity, "mw": d.mw, "month": d.month, "ready": d.ready})
        elif d.kind == "lease":
            h.leases.append({"lease": d.subject, "site": d.site, "mw": d.mw, "month": d.month, "share": d.quantity})
        elif d.kind == "site_sale":
            h.site_sales.append({"site": d.site, "month": d.month, "usd": d.usd})
        elif d.kind == "site_acquisition":
            h.site_acquisitions.append({"site": d.site, "month": d.month, "usd": d.usd})
        elif d.kind == "purchase":
            h.units_bought += d.quantity or 0.0
        elif d.kind == "retirement":
            h.units_retired += d.quantity or 0.0
        elif d.kind == "contract":
            h.contracts_signed.append(d.sentence)
        elif d.kind == "grid_expansion":
            h.grid_expansions.append(f"{d.site} +{mw(d.mw)}" if d.mw else str(d.site))
    if h.converted:
        h.converted_mw = sum(x["mw"] for x in h.converted) if all(x["mw"] is not None for x in h.converted) else None
    elif data is not None or plan is not None:
        h.converted_mw = 0.0
    sales = plan.btc_sales
    if len(sales):
        w = sales["scenario"].astype(str).map(probs).fillna(0.0)
        h.btc_sold = float((sales["btc"].where(sales["btc"] > BTC_TOL, 0.0) * w).sum())


def _money(h: Headline, cf: pd.DataFrame, probs: dict[str, float]) -> None:
    cf = cf.copy()
    cf["scenario"] = cf["scenario"].astype(str)
    w = cf["scenario"].map(probs).fillna(0.0)
    item = cf["item"].astype(str)
    exp = (cf["usd"].astype(float) * w).groupby(item).sum()
    h.capex_usd = -float(sum(exp.get(i, 0.0) for i in CAPEX_ITEMS))
    h.acquisitions_usd = -float(exp.get("acquisitions_usd", 0.0))
    h.treasury_sales_usd = float(exp.get("treasury_sales_usd", 0.0))
    if "pv_usd" in cf.columns:
        h.terminal_pv_usd = float((cf["pv_usd"].astype(float) * w)[item.isin(TERMINAL_ITEMS)].sum())
    cum = cumulative_cash(cf)
    if cum.empty:
        h.peak_funding_usd = 0.0
        return
    low = cum.min(axis=1)
    worst = str(low.idxmin())
    h.peak_funding_usd = max(0.0, -float(low[worst]))
    if h.peak_funding_usd > 0:
        h.peak_funding_scenario = worst
        h.peak_funding_month = str(cum.loc[worst].idxmin())


def _tree(summary: dict) -> list[tuple[str, str]]:
    """Figures of a solve on a staged scenario tree (models/trees.md)."""
    tree = summary.get("tree") or {}
    if tree.get("form") != "multistage":
        return []
    rows = [("Scenario tree", f"{tree['stages']} stages, branching {', '.join(tree['branch_months'])}; "
                              f"{tree['nodes']} nodes, {tree['leaves']} leaves"),
            ("Same leaves decided now-or-never (two-stage)", usd(summary.get("two_stage_npv_usd"))),
            ("Value of flexibility (tree over two-stage)", usd(summary.get("value_of_flexibility_usd")))]
    if summary.get("value_over_mean_value_plan_usd") is not None:
        rows.append(("Value over the mean-value plan", usd(summary.get("value_over_mean_value_plan_usd"))))
    if summary.get("evpi_usd") is not None:
        rows.append(("EVPI on the tree", usd(summary.get("evpi_usd"))))
    return rows


def _terminal(summary: dict) -> list[tuple[str, str]]:
    """NPV without terminal values and each terminal line's expected PV (``summary["terminal"]``,
    models/economics.md "Decisions that lean on the horizon")."""
    term = summary.get("terminal") or {}
    if not term:
        return []
    rows = [("NPV without terminal values", usd(term.get("npv_without_terminal_usd")))]
    rows += [(f"Terminal value: {ITEM_BY_NAME[k].label if k in ITEM_BY_NAME else k}", usd(v))
             for k, v in (term.get("lines_usd") or {}).items() if v is not None and abs(v) >= 0.5]
    return rows


def _valuation(summary: dict) -> list[tuple[str, str]]:
    """Figures of the financing section (project and equity NPV, IRRs), when the result has one."""
    if "equity_npv_usd" not in summary:
        return []

    def pct(x) -> str:
        return "n/a (no sign change)" if x is None else f"{100 * x:.1f} %"

    return [("Equity NPV (levered, after tax)", usd(summary.get("equity_npv_usd"))),
            ("Project NPV (unlevered, after tax)", usd(summary.get("project_npv_usd"))),
            ("Equity IRR", pct(summary.get("equity_irr"))), ("Project IRR", pct(summary.get("project_irr")))]


def _recommendation(h: Headline) -> str:
    parts = []
    if h.converted:
        where = "; ".join(f"{x['site']} from {x['month']}" + (f", online {x['ready']}" if x.get("ready") else "") for x in h.converted)
        what = mw(h.converted_mw) + " IT" if h.converted_mw is not None else f"{count(sum(x['blocks'] for x in h.converted))} blocks"
        parts.append(f"convert {what} to HPC ({where})")
    if h.leases:
        parts.append(f"sign {len(h.leases)} lease{'s' if len(h.leases) > 1 else ''} ("
                     + "; ".join(f"{x['lease']}" + (f", {mw(x['mw'])}" if x.get("mw") is not None else "")
                                 + f", hand-over {x['month']} at {x['site']}" for x in h.leases) + ")")
    if h.grid_expansions:
        parts.append("expand the grid (" + ", ".join(h.grid_expansions) + ")")
    for x in h.site_acquisitions:
        parts.append(f"buy site {x['site']} ({x['month']}" + (f", {money(-x['usd'])}" if x.get("usd") is not None else "") + ")")
    for x in h.site_sales:
        parts.append(f"sell site {x['site']} ({x['month']}" + (f", {money(x['usd'])}" if x.get("usd") is not None else "") + ")")
    if h.units_bought:
        parts.append(f"buy {count(h.units_bought)} ASICs")
    if h.units_retired:
        parts.append(f"retire {count(h.units_retired)} ASICs")
    if h.contracts_signed:
        parts.append(f"sign {len(h.contracts_signed)} optional power contract{'s' if len(h.contracts_signed) > 1 else ''}")
    if h.btc_sold:
        parts.append(f"sell {h.btc_sold:,.0f} BTC from the treasury (expected over the scenarios)")
    if not h.converted and not h.leases:
        parts.insert(0, "keep mining (no conversion to HPC, no lease)")
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _value_sentence(h: Headline) -> str:
    if h.npv_usd is None:
        return ""
    s = f"Expected NPV {usd(h.npv_usd)}"
    by = h.npv_usd_by_scenario
    if len(by) > 1:
        lo, hi = min(by, key=by.get), max(by, key=by.get)
        s += f" (from {usd(by[lo])} in {lo} to {usd(by[hi])} in {hi})"
    if h.uplift_over_keep_mining_usd is not None:
        up = h.uplift_over_keep_mining_usd
        s += f", {usd(abs(up))} {'more' if up >= 0 else 'less'} than keeping every site mining"
    if h.capex_usd:
        s += f"; capex {usd(h.capex_usd)}"
    if h.peak_funding_usd:
        s += f", peak funding need {usd(h.peak_funding_usd)} ({h.peak_funding_scenario}, {h.peak_funding_month})"
    return s + "."


def solver_note(summary: dict) -> str:
    """The footnote: how the plan was obtained (status, gap, bound, model size, times)."""
    status = summary.get("status")
    if not status:
        return f"Plan {summary['plan']} evaluated (no solve)." if summary.get("plan") else ""
    if status == "evaluated" or ("objective_usd" not in summary and summary.get("plan")):
        return f"Plan {summary.get('plan', '')} evaluated (no solve).".replace("  ", " ")
    parts = [f"Solver status: {status} ({summary.get('message') or status_message(status)})"]
    gap = summary.get("mip_gap")
    if gap is not None:
        parts.append(f"MIP gap {100 * gap:.3g} %")
    if summary.get("best_bound_usd") is not None:
        parts.append(f"best bound {usd(summary['best_bound_usd'])}")
    if summary.get("objective_usd") is not None and summary.get("evaluator_npv_usd") is not None:
        parts.append(f"solver objective {usd(summary['objective_usd'])}, NPV recomputed by the independent evaluator "
                     f"{usd(summary['evaluator_npv_usd'])}")
    if summary.get("n_variables"):
        parts.append(f"{summary['n_variables']:,} variables ({summary.get('n_integer') or 0:,} integer), "
                     f"{summary.get('n_constraints') or 0:,} constraints")
    times = [summary.get(k) for k in ("build_s", "handoff_s", "solve_s")]
    if any(t is not None for t in times):
        parts.append("build / hand-off / solve " + " / ".join(f"{t or 0:.2f}" for t in times) + " s")
    if summary.get("evpi_usd") is not None:
        parts.append(f"EVPI {usd(summary['evpi_usd'])}, VSS {usd(summary.get('vss_usd'))}")
    return "; ".join(parts) + "."


FINANCING_ITEMS = frozenset(i.name for i in ITEM_BY_NAME.values() if i.kind == "financing")


def cumulative_cash(cashflows: pd.DataFrame) -> pd.DataFrame:
    """Scenario x month: cumulative undiscounted cash flow of the non-terminal lines before debt
    (draws, fees, interest and principal left out: the need is what cash, debt or equity must fund)."""
    cf = cashflows[~cashflows["item"].astype(str).isin(TERMINAL_ITEMS | FINANCING_ITEMS)]
    if cf.empty:
        return pd.DataFrame()
    by = cf.groupby([cf["scenario"].astype(str), cf["month"].astype(str)])["usd"].sum().unstack("month").fillna(0.0)
    return by.reindex(columns=sorted(by.columns)).cumsum(axis=1)


def peak_funding(cashflows: pd.DataFrame) -> pd.Series:
    """Per scenario: the peak funding need (USD >= 0) of the cash flows (see the module docstring)."""
    return (-cumulative_cash(cashflows).min(axis=1)).clip(lower=0.0).astype(float).rename("peak_funding_usd")


__all__ = ["Headline", "build_headline", "cumulative_cash", "peak_funding", "solver_note", "usd"]
