"""The scenario tree of an instance: its nodes, and which node holds each decision of a period.

Stages begin at the branch months ``B_1 < ... < B_K`` (``instance.tree.branch_months``; the
two-stage default is one branch at the horizon start). ``depth(t)`` = number of branch months
<= the first month of period ``t``. A node at depth ``d`` is a set of scenarios that agree on
their node labels at the first ``d`` branch months (``tree.paths``); its probability is the sum
of theirs, so conditional probabilities multiply down the tree.

Who decides what (models/trees.md):

- **operations** of period ``t`` (units operating, energy delivered, used and sold): the node at
  depth ``depth(t)`` on the scenario's path, the node whose prices hold ``t``;
- **commitments** of period ``t`` (conversions, grid expansions, ASIC purchases and
  retirements, lease hand-overs, contract signings, site sales and acquisitions, treasury BTC
  sales): the node at depth ``max(depth(t) - 1, 0)``, i.e. the commitments of a stage are taken
  at its start, before the stage's prices are seen (at the root before the first branch).

Two-stage form = one branch at the horizon start: every commitment sits at the root and the
operations of scenario ``w`` at leaf ``w``, which is today's model exactly. A decision is equal
for all scenarios through its node (non-anticipativity): the MILP gives it one variable per
node, the evaluator checks plans for it.

A node is identified in the model by its *representative*, the smallest scenario index through
it: ``inv_rep[t, w]`` and ``op_rep[t, w]`` give the representative of the node holding the
commitments / operations of ``(t, w)``, and every scenario-indexed coefficient (prices, hashprice)
is read at the representative (scenarios through a node share its prices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

ROOT = "root"


@dataclass(frozen=True)
class Node:
    id: int                       # 0 = root, then depth by depth in scenario order
    name: str                     # "root", or the labels of its path joined by "/" ("bull/hi")
    depth: int
    parent: int | None
    probability: float            # unconditional: sum over its scenarios
    scenarios: tuple[int, ...]    # scenario indices through it, ascending
    label: str = ""               # its own label at its branch month ("" for the root)

    @cached_property
    def members(self) -> frozenset[int]:
        """The scenarios through it, for fast membership tests."""
        return frozenset(self.scenarios)

    @property
    def rep(self) -> int:
        return self.scenarios[0]


@dataclass
class Tree:
    """Nodes and the period -> node maps of one instance (see the module doc)."""

    T: int
    prob: np.ndarray                      # [W] scenario probabilities
    branch_periods: list[int]             # period index of each branch month (ascending)
    labels: list[tuple[str, ...]]         # per scenario: its node label at each branch month
    scenario_names: list[str]
    period_labels: list[str]
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        W, K = len(self.prob), len(self.branch_periods)
        self._two_stage = K <= 1  # read ~1.4M times while the large benchmark's model is built
        self.depth = np.array([sum(1 for b in self.branch_periods if b <= t) for t in range(self.T)], dtype=int)
        self.inv_depth = np.maximum(self.depth - 1, 0)
        # node_at[d][w] -> node id; nodes built depth by depth, scenarios in index order
        self.node_at = np.zeros((K + 1, W), dtype=int)
        for d in range(K + 1):
            groups: dict[tuple, list[int]] = {}
            for w in range(W):
                groups.setdefault(tuple(self.labels[w][:d]), []).append(w)
            for key, ws in groups.items():
                nid = len(self.nodes)
                parent = None if d == 0 else int(self.node_at[d - 1, ws[0]])
                name = ROOT if d == 0 else "/".join(key)
                self.nodes.append(Node(nid, name, d, parent, float(self.prob[ws].sum()), tuple(ws), key[-1] if key else ""))
                self.node_at[d, ws] = nid
        rep = np.array([n.rep for n in self.nodes])
        self.op_rep = np.array([[rep[self.node_at[self.depth[t], w]] for w in range(W)] for t in range(self.T)], dtype=int).reshape(self.T, W)
        self.inv_rep = np.array([[rep[self.node_at[self.inv_depth[t], w]] for w in range(W)] for t in range(self.T)], dtype=int).reshape(self.T, W)
        self._inv_reps = [sorted(set(self.inv_rep[t].tolist())) for t in range(self.T)]
        self._op_reps = [sorted(set(self.op_rep[t].tolist())) for t in range(self.T)]

    # ------------------------------------------------------------ shape

    @property
    def W(self) -> int:
        return len(self.prob)

    @property
    def K(self) -> int:
        return len(self.branch_periods)

    @property
    def two_stage(self) -> bool:
        """Every commitment at the root (one branch month): commitments carry no node index."""
        return self._two_stage

    @property
    def form(self) -> str:
        return "two-stage" if self.two_stage else "multistage"

    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @property
    def leaves(self) -> list[Node]:
        return [n for n in self.nodes if n.depth == self.K]

    def children(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n.parent == node.id]

    def path(self, w: int) -> list[Node]:
        """The nodes of scenario ``w``, root first."""
        return [self.nodes[int(self.node_at[d, w])] for d in range(self.K + 1)]

    # ------------------------------------------------------------ who decides what

    def inv(self, t: int, w: int) -> int:
        """Representative of the node taking the commitments of period ``t`` on scenario ``w``'s path."""
        return int(self.inv_rep[t, w])

    def op(self, t: int, w: int) -> int:
        """Representative of the node running the operations of period ``t`` on scenario ``w``'s path."""
        return int(self.op_rep[t, w])

    def inv_reps(self, t: int) -> list[int]:
        return self._inv_reps[t]

    def op_reps(self, t: int) -> list[int]:
        return self._op_reps[t]

    def inv_node(self, t: int, w: int) -> Node:
        return self.nodes[int(self.node_at[self.inv_depth[t], w])]

    def op_node(self, t: int, w: int) -> Node:
        return self.nodes[int(self.node_at[self.depth[t], w])]

    def inv_periods(self, node: Node) -> list[int]:
        """Periods whose commitments ``node`` takes."""
        return [t for t in range(self.T) if self.inv_depth[t] == node.depth]

    def op_periods(self, node: Node) -> list[int]:
        """Periods whose operations ``node`` runs (its price segment)."""
        return [t for t in range(self.T) if self.depth[t] == node.depth]

    def path_reps(self, periods, kind: str = "inv") -> list[int]:
        """One scenario per distinct sequence of nodes over ``periods`` (rows that sum decisions
        along a path, e.g. a lease signed at most once, are needed once per such sequence)."""
        reps = self.inv_rep if kind == "inv" else self.op_rep
        ps = list(periods)
        seen: dict[tuple, int] = {}
        for w in range(self.W):
            seen.setdefault(tuple(int(reps[t, w]) for t in ps), w)
        return sorted(seen.values())

    def describe(self) -> dict:
        """``summary.json``'s ``tree`` entry."""
        return {
            "form": self.form,
            "branch_months": [self.period_labels[b] for b in self.branch_periods],
            "nodes": len(self.nodes),
            "leaves": len(self.leaves),
            "stages": self.K + 1,
        }


def two_stage_labels(names: list[str]) -> list[tuple[str, ...]]:
    """The two-stage form's paths: each scenario its own leaf."""
    return [(n,) for n in names]


def build_tree(T: int, prob: np.ndarray, names: list[str], period_labels: list[str],
               branch_periods: list[int] | None = None, paths: dict[str, list[str]] | None = None) -> Tree:
    """The Tree of an instance: ``branch_periods``/``paths`` from its ``tree`` section, or the
    two-stage form (one branch at period 0, one leaf per scenario)."""
    if branch_periods is None:
        return Tree(T, np.asarray(prob, dtype=float), [0], two_stage_labels(names), list(names), list(period_labels))
    labels = [tuple(paths[n]) if paths is not None else ("1",) * len(branch_periods) for n in names]
    return Tree(T, np.asarray(prob, dtype=float), list(branch_periods), labels, list(names), list(period_labels))
