"""A plan read on its scenario tree: the nodes, the decisions by node and by scenario, what to
decide now, and the contingent plan in words (models/trees.md, "Outputs").

- ``node_table``: one row per node: name, parent, depth, probability (and conditional on its
  parent), the months whose commitments it takes and whose operations it runs, and what its
  prices look like (BTC price and hashprice at the end of its months, the BTC change over them).
- ``decision_table``: every commitment of the plan as a tidy row (node, decision, subject,
  site, month, amount, unit, in words), treasury sales included (at the node taking them).
- ``by_scenario``: the same rows repeated for every scenario through their node.
- ``decide_now``: the root's rows (in the two-stage form: the whole now-or-never plan).
- ``contingent_plan``: per node below the root, a description and its decisions in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.economics.data import Data
from optimizer.economics.tree import ROOT, Node
from optimizer.evaluate.firststage import fmt
from optimizer.plan import Plan

DECISION_COLUMNS = ["node", "decision", "subject", "site", "month", "amount", "unit", "words"]


def _months(data: Data, periods: list[int]) -> str:
    if not periods:
        return ""
    lab = data.labels
    return lab[periods[0]] if len(periods) == 1 else f"{lab[periods[0]]}..{lab[periods[-1]]}"


def node_table(data: Data) -> pd.DataFrame:
    tree = data.tree
    rows = []
    for n in tree.nodes:
        parent = tree.nodes[n.parent] if n.parent is not None else None
        ops, inv = tree.op_periods(n), tree.inv_periods(n)
        p = data.prob[list(n.scenarios)]
        w = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
        ws = list(n.scenarios)
        seen = ops[-1] if ops else None
        first = ops[0] if ops else None
        price_end = float(w @ data.btc_price_usd[ws, seen]) if seen is not None else np.nan
        price_start = float(w @ data.btc_price_usd[ws, max(first - 1, 0)]) if first is not None else np.nan
        rows.append({
            "node": n.name, "parent": parent.name if parent else "", "depth": n.depth, "label": n.label,
            "probability": n.probability,
            "conditional_probability": n.probability / parent.probability if parent and parent.probability > 0 else 1.0,
            "scenarios": len(n.scenarios),
            "commitment_months": _months(data, inv), "operation_months": _months(data, ops),
            "btc_price_end_usd": price_end,
            "btc_change_over_node": (price_end / price_start - 1.0) if first is not None and price_start > 0 else np.nan,
            "hashprice_end_usd_per_ph_day": float(w @ data.hashprice_usd_per_ph_day[ws, seen]) if seen is not None else np.nan,
        })
    return pd.DataFrame(rows)


def _mean_price(data: Data, node: Node, t: int) -> float:
    """Probability-weighted mean BTC price in period t over the node's scenarios."""
    ws = list(node.scenarios)
    p = data.prob[ws]
    return float(p @ data.btc_price_usd[ws, t] / p.sum()) if p.sum() > 0 else float(data.btc_price_usd[ws, t].mean())


def describe_node(data: Data, node: Node) -> str:
    """A node in words: the prices it has seen (e.g. 'BTC 62,000 at 2026-12 (-29% since 2026-01), lowest of 3 branches'):
    the change runs from the last month its parent saw (the horizon's first month for the root's
    children) to the last month it saw."""
    if node.depth == 0:
        return "today"
    tree = data.tree
    ops = tree.op_periods(node)
    if not ops:
        return f"branch {node.label}"
    ws = list(node.scenarios)
    p = data.prob[ws] / data.prob[ws].sum()
    end = _mean_price(data, node, ops[-1])
    start = _mean_price(data, node, max(ops[0] - 1, 0))
    hp = float(p @ data.hashprice_usd_per_ph_day[ws, ops[-1]])
    sib = tree.children(tree.nodes[node.parent])
    ends = [_mean_price(data, s, ops[-1]) for s in sib]
    below = sum(1 for e in ends if e < end - 1e-9 * max(1.0, abs(end)))
    above = sum(1 for e in ends if e > end + 1e-9 * max(1.0, abs(end)))
    if len(ends) == 1:
        where = "one branch"
    else:
        where = ("lowest" if below == 0 else "highest" if above == 0 else "middle") + f" of {len(ends)} branches"
    change = end / start - 1.0 if start > 0 else 0.0
    return (f"BTC {round(end, -2):,.0f} at {data.labels[ops[-1]]} ({change:+.0%} since {data.labels[max(ops[0] - 1, 0)]}), hashprice "
            f"{hp:.1f} $/PH/day, {where}")


def _node_name(value) -> str:
    if value is None or (isinstance(value, float) and value != value) or str(value) in ("", "nan"):
        return ROOT
    return str(value)


def decision_table(data: Data, plan: Plan) -> pd.DataFrame:
    """Every commitment of ``plan`` as a tidy row (see the module doc), in node then month order."""
    inst = data.inst
    rows: list[dict] = []

    def add(node, decision, subject, site, month, amount, unit, words):
        rows.append({"node": _node_name(node), "decision": decision, "subject": subject, "site": site, "month": month,
                     "amount": float(amount), "unit": unit, "words": words})

    for r in plan.conversions.itertuples():
        mw = r.blocks * inst.site_by_id[r.site].block_it_mw if r.site in inst.site_by_id else float("nan")
        add(getattr(r, "node", None), "conversion", r.site, r.site, r.month, r.blocks, "blocks",
            f"start {fmt(r.blocks)} conversion block{'s' if r.blocks != 1 else ''} at {r.site} in {r.month} ({fmt(mw)} MW IT)")
    for r in plan.grid_expansions.itertuples():
        add(getattr(r, "node", None), "grid_expansion", r.option, r.site, r.month, 1, "project",
            f"start grid expansion {r.option} at {r.site} in {r.month}")
    for r in plan.purchases.itertuples():
        add(getattr(r, "node", None), "purchase", r.option, r.site, r.month, r.units, "units",
            f"order {fmt(r.units)} ASICs ({r.option}) for {r.site} in {r.month}")
    for r in plan.retirements.itertuples():
        add(getattr(r, "node", None), "retirement", r.model, r.site, r.month, r.units, "units",
            f"retire {fmt(r.units)} {r.model} at {r.site} in {r.month}")
    for r in plan.leases.itertuples():
        share = "" if r.share >= 1 - 1e-9 else f" ({r.share:.0%} of it)"
        add(getattr(r, "node", None), "lease", r.lease, r.site, r.month, r.share, "share",
            f"hand over lease {r.lease}{share} at {r.site} in {r.month}")
    for r in plan.contracts.itertuples():
        c = next((c for c in inst.contracts if c.id == r.contract), None)
        month = data.labels[min(max(data.contracts[r.contract].start_period, 0), data.T - 1)] if c is not None else ""
        add(getattr(r, "node", None), "contract", r.contract, c.site if c is not None else "", month, float(bool(r.signed)), "signed",
            f"{'sign' if r.signed else 'do not sign'} contract {r.contract}")
    for r in plan.site_events.itertuples():
        add(getattr(r, "node", None), r.event, r.site, r.site, r.month, 1, "event",
            f"{'sell' if r.event == 'sale' else 'acquire'} site {r.site} in {r.month}")
    for r in plan.debt.itertuples():
        add(getattr(r, "node", None), "debt", r.instrument, "", r.month, r.usd, "USD",
            f"draw {fmt(r.usd)} USD on {r.instrument} in {r.month}")
    rows += _sales_rows(data, plan)
    out = pd.DataFrame(rows, columns=DECISION_COLUMNS)
    order = {n.name: n.id for n in data.tree.nodes}
    if len(out):
        out = out.sort_values(["node", "month", "decision"], key=lambda s: s.map(order) if s.name == "node" else s,
                              kind="stable").reset_index(drop=True)
    return out


def _sales_rows(data: Data, plan: Plan) -> list[dict]:
    """Treasury sales at the node taking the commitments of their month (one row per node and month)."""
    df = plan.btc_sales
    if not len(df):
        return []
    tree, names = data.tree, {n: i for i, n in enumerate(data.scenario_names)}
    seen: set[tuple[str, int]] = set()
    rows = []
    for r in df.itertuples():
        w = names.get(str(r.scenario))
        t = data.tl.period_of(str(r.month)) if w is not None else -1
        if w is None or not 0 <= t < data.T or r.btc <= 1e-9:
            continue
        node = tree.inv_node(t, w)
        if (node.name, t) in seen:
            continue
        seen.add((node.name, t))
        rows.append({"node": node.name, "decision": "treasury_sale", "subject": "BTC", "site": "portfolio", "month": data.labels[t],
                     "amount": float(r.btc), "unit": "BTC", "words": f"sell {fmt(r.btc)} BTC from treasury in {data.labels[t]}"})
    return rows


def by_scenario(data: Data, decisions: pd.DataFrame) -> pd.DataFrame:
    """The decision rows repeated for each scenario through their node (column ``scenario`` first)."""
    tree, names = data.tree, data.scenario_names
    parts = []
    for name, grp in decisions.groupby("node", sort=False):
        node = tree.by_name.get(name, tree.nodes[0])
        for w in node.scenarios:
            parts.append(grp.assign(scenario=names[w]))
    if not parts:
        return pd.DataFrame(columns=["scenario"] + DECISION_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    order = {n: i for i, n in enumerate(names)}
    out = out[["scenario"] + DECISION_COLUMNS].sort_values(["scenario", "month"], key=lambda s: s.map(order) if s.name == "scenario" else s,
                                                            kind="stable")
    return out.reset_index(drop=True)


def decide_now(decisions: pd.DataFrame) -> pd.DataFrame:
    """The root's decisions: what is committed today whatever happens next."""
    return decisions[decisions["node"] == ROOT].reset_index(drop=True)


def contingent_plan(data: Data, decisions: pd.DataFrame) -> dict[str, dict]:
    """Per node below the root: when it is reached, what it has seen, and its decisions in words."""
    tree = data.tree
    out = {}
    for n in tree.nodes[1:]:
        inv = tree.inv_periods(n)
        rows = decisions[decisions["node"] == n.name]
        if not inv and not len(rows):
            continue
        frm = data.labels[inv[0]] if inv else None
        out[n.name] = {
            "probability": n.probability,
            "from": frm,
            "description": describe_node(data, n),
            "decisions": rows["words"].tolist() if len(rows) else ["nothing new"],
        }
    return out


def tree_tables(data: Data, plan: Plan) -> dict[str, pd.DataFrame]:
    """The plan/ tables of a tree solve: nodes, decisions by node, by scenario, and decide_now."""
    dec = decision_table(data, plan)
    return {"nodes": node_table(data), "decisions_by_node": dec, "decisions_by_scenario": by_scenario(data, dec),
            "decide_now": decide_now(dec)}
