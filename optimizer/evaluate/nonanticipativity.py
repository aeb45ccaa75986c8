"""Plans on scenario trees: which first-stage rows apply to which scenario, and whether the plan
is non-anticipative (models/trees.md).

A commitment row (``conversions``, ``grid_expansions``, ``purchases``, ``retirements``,
``leases``, ``contracts``, ``site_events``) may carry a ``node`` (a name of the instance's tree,
``economics.tree``); without one (or ``root``) it applies to every scenario, as in the two-stage
form. A row at node ``n`` applies to the scenarios through ``n``, and is non-anticipative when
``n`` is at most as deep as the node taking the commitments of its month: a node may commit
early for a later month, never decide for a month whose commitments were taken above it.

The operation tables are per scenario; a plan is non-anticipative when the scenarios through one
node agree on every decision that node holds: operations and energy at the node running the
operations of the month, treasury BTC sales at the node taking its commitments (in the
two-stage form: one sales schedule for all scenarios). Each breach is one sentence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.economics.data import Data
from optimizer.economics.tree import ROOT, Node
from optimizer.evaluate.firststage import fmt
from optimizer.kernel.timeline import month_ordinal
from optimizer.plan import FIRST_STAGE, Plan


def _node_of(value) -> str | None:
    """The node named by a row (None: the root, for a blank or missing cell)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    v = str(value).strip()
    return None if v in ("", ROOT, "nan", "None") else v


def _period(data: Data, month) -> int | None:
    try:
        t = data.tl.period_of_month(month_ordinal(str(month)))
    except ValueError:
        return None
    return t if 0 <= t < data.T else None


def row_scopes(data: Data, plan: Plan) -> tuple[dict[str, list[frozenset[int] | None]], list[str]]:
    """Per first-stage table, per row: the scenarios it applies to (None: all), and the
    violations of rows naming an unknown node or a node too deep for their month."""
    tree = data.tree
    scopes: dict[str, list[frozenset[int] | None]] = {}
    bad: list[str] = []
    for name in FIRST_STAGE:
        df = getattr(plan, name)
        if "node" not in df.columns:
            scopes[name] = [None] * len(df)
            continue
        out: list[frozenset[int] | None] = []
        for i, (node, month) in enumerate(zip(df["node"], df["month"] if "month" in df.columns else [None] * len(df))):
            n = _node_of(node)
            if n is None:
                out.append(None)
                continue
            nd = tree.by_name.get(n)
            if nd is None:
                bad.append(f"plan.{name} row {i}: unknown tree node {n!r}")
                out.append(frozenset())
                continue
            t = _period(data, month) if month is not None else _contract_period(data, df, i)
            if t is not None and nd.depth > tree.inv_depth[t]:
                holder = tree.inv_node(t, nd.rep)
                bad.append(f"plan.{name} row {i}: decided at tree node {n!r} for {data.labels[t]}, but the commitments of "
                           f"{data.labels[t]} are taken at node {holder.name!r}, before {n!r} is known (non-anticipativity)")
            out.append(nd.members)
        scopes[name] = out
    return scopes, bad


def _contract_period(data: Data, df: pd.DataFrame, i: int) -> int | None:
    cid = str(df["contract"].iloc[i]) if "contract" in df.columns else None
    cd = data.contracts.get(cid) if cid is not None else None
    return None if cd is None else min(max(cd.start_period, 0), data.T - 1)


def plan_groups(data: Data, plan: Plan) -> tuple[list[tuple[list[int], Plan]], list[str]]:
    """Scenarios that share the same applicable commitment rows, each with the plan restricted to
    them (those rows, and the operation rows of its scenarios); one group for a plan without
    nodes. Also returns the node violations of ``row_scopes``."""
    scopes, bad = row_scopes(data, plan)
    if all(sc is None for rows in scopes.values() for sc in rows):
        return [(list(range(data.W)), plan)], bad
    keys: dict[tuple, list[int]] = {}
    for w in range(data.W):
        key = tuple((name, i) for name, rows in scopes.items() for i, sc in enumerate(rows) if sc is None or w in sc)
        keys.setdefault(key, []).append(w)
    names = data.scenario_names
    out = []
    for key, ws in keys.items():
        chosen: dict[str, list[int]] = {}
        for name, i in key:
            chosen.setdefault(name, []).append(i)
        mine = {names[w] for w in ws}
        tables = {name: getattr(plan, name).iloc[chosen.get(name, [])].drop(columns=["node"], errors="ignore").reset_index(drop=True)
                  for name in FIRST_STAGE}
        for name in ("operations", "energy", "btc_sales"):
            df = getattr(plan, name)
            tables[name] = df[df["scenario"].astype(str).isin(mine)].reset_index(drop=True)
        out.append((ws, Plan(**tables, name=plan.name)))
    return out, bad


# ---------------------------------------------------------------- equal decisions within a node


def _arrays(data: Data, df: pd.DataFrame, keycols: list[str], valcols: list[str]):
    """key -> {value column -> [W, T] array} summing the rows (unknown scenarios/months skipped)."""
    if not len(df):
        return {}
    scen = {n: i for i, n in enumerate(data.scenario_names)}
    w = df["scenario"].astype(str).map(scen)
    t = df["month"].astype(str).map(lambda mth: _period(data, mth))
    ok = w.notna() & t.notna()
    df, w, t = df[ok], w[ok].astype(int).to_numpy(), t[ok].astype(int).to_numpy()
    out: dict = {}
    keys = list(zip(*(df[c].astype(str) for c in keycols))) if keycols else [()] * len(df)
    vals = {c: pd.to_numeric(df[c], errors="coerce").fillna(0.0).to_numpy(float) for c in valcols}
    for j, k in enumerate(keys):
        arrs = out.get(k)
        if arrs is None:
            arrs = out[k] = {c: np.zeros((data.W, data.T)) for c in valcols}
        for c in valcols:
            arrs[c][w[j], t[j]] += vals[c][j]
    return out


def _nodes_at(data: Data, t: int, kind: str) -> list[Node]:
    tree = data.tree
    d = tree.depth[t] if kind == "op" else tree.inv_depth[t]
    return [n for n in tree.nodes if n.depth == d and len(n.scenarios) > 1]


def check_nonanticipativity(data: Data, plan: Plan) -> list[str]:
    """One sentence per table whose decisions differ between scenarios of one node (the first
    offending month and decision, with a count of the rest)."""
    out: list[str] = []
    specs = [
        ("operations", ["site", "model"], ["units"], "op", lambda k: f"units of model {k[1]} operating at site {k[0]}"),
        ("energy", ["contract"], ["delivered_mwh", "used_mwh", "sold_mwh"], "op", lambda k: f"energy of contract {k[0]}"),
        ("btc_sales", [], ["btc"], "inv", lambda k: "treasury BTC sales"),
    ]
    names = data.scenario_names
    for table, keycols, valcols, kind, what in specs:
        nodes = {t: _nodes_at(data, t, kind) for t in range(data.T)}
        if not any(nodes.values()):
            continue
        arrays = _arrays(data, getattr(plan, table), keycols, valcols)
        first, count = None, 0
        for key, arrs in arrays.items():
            for c, a in arrs.items():
                for t in range(data.T):
                    for n in nodes[t]:
                        v = a[list(n.scenarios), t]
                        lo, hi = int(np.argmin(v)), int(np.argmax(v))
                        if v[hi] - v[lo] > 1e-6 * max(1.0, abs(v[hi]), abs(v[lo])):
                            count += 1
                            cand = (t, key, c, n, n.scenarios[lo], n.scenarios[hi], v[lo], v[hi])
                            if first is None or cand[0] < first[0]:
                                first = cand
        if first is not None:
            t, key, c, n, a, b, x, y = first
            col = "" if len(valcols) == 1 else f" ({c})"
            msg = (f"non-anticipativity: {what(key)}{col} in {data.labels[t]} differ between scenarios {names[a]} ({fmt(x)}) and "
                   f"{names[b]} ({fmt(y)}), which share tree node {n.name!r}; a decision is the same for every scenario through its node")
            if count > 1:
                msg += f" (and {count - 1} more case{'s' if count > 2 else ''})"
            out.append(msg)
    return out
