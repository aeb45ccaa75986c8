"""Progressive hedging (mpi-sppy) over the allocation MILP, for stochastic instances (two-stage or
on a scenario tree) too large for one extensive form.

    mpiexec -n 2 python -m optimizer.ph FILE --out DIR      # scenarios split over 2 ranks
    python -m optimizer.ph FILE --out DIR                   # one process, no MPI launcher
    (a system Open MPI as root: mpiexec --allow-run-as-root --oversubscribe -n 2 ...; the mpich
    wheel of the ph extra needs no flags)

Each scenario's subproblem is our model of the one-scenario sub-instance (same first-stage
structure), minimising -NPV in $M; mpi-sppy weights the scenarios by their probability. The
nonanticipative variables of a tree node (economics/tree.py) are the commitments it takes
(``model.fix.FIRST_STAGE_VARS`` and the treasury sales ``btc_sold``, of the periods whose
commitments the node takes) and, below the leaves' parents, the operations it runs (``op``,
``deliv``, ``used``, ``shortfall`` of its price segment); the variables they define (cumulative
blocks, ownership, installed units, ...) follow by equalities. The two-stage form is the root
alone (mpi-sppy's two-stage PH); a staged tree is mpi-sppy's multistage PH, its nodes named
ROOT, ROOT_0, ROOT_0_1, ... with conditional probabilities, scenarios in leaf order (a leaf
must hold one scenario). HiGHS solves the subproblems through ``appsi_highs``; HiGHS has no MIQP, so the
proximal term is linearised (``linearize_proximal_terms``: outer cuts on x^2; exact for binaries).

PH settles the integer first stage (conversions, lease hand-overs, contract signings, site
sales and purchases, grid expansions) quickly; on the continuous first stage (ASIC purchases
and retirements, which each scenario wants differently) its average converges slowly and
is a poor plan. So after the iterations, integer candidates (the consensus xbar rounded at
every node, then each scenario's own integer decisions on its path with the rounded xbar
elsewhere, most probable first) are each fixed in the extensive form (the tree's), which is
then an LP: the continuous decisions and the operations are re-optimised (candidates are
spread over the ranks). The best candidate is the PH plan; its
E[NPV] recomputed by the plan evaluator on the full instance is the reported PH objective.
The bound is mpi-sppy's trivial bound (wait-and-see: every scenario solved alone at
iteration 0, at the subproblem gap).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import pyomo.environ as pyo

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.instance.schema import Instance
from optimizer.instance.variants import scenario_instance
from optimizer.model.build import build_model
from optimizer.model.common import USD
from optimizer.model.extract import extract_plan
from optimizer.model.fix import FIRST_STAGE_VARS, decision_period
from optimizer.solve.backend import HighsBackend

SOLVER = "appsi_highs"


# ---------------------------------------------------------------- the tree as mpi-sppy sees it

NONANT_COMMITMENTS = FIRST_STAGE_VARS + ("btc_sold",)
NONANT_OPERATIONS = ("op", "deliv", "used", "shortfall")


def tree_layout(instance: Instance) -> dict:
    """mpi-sppy's view of the instance's tree: scenario names in leaf order, every node name
    (None for the two-stage form), per scenario its non-leaf nodes (name, conditional probability,
    depth, representative), and the period -> depth maps."""
    tree = compile_instance(instance).tree
    if any(len(n.scenarios) > 1 for n in tree.leaves):
        raise ValueError("progressive hedging on a tree needs one scenario per leaf (some leaves hold identical scenarios)")
    name_of: dict[int, str] = {}
    leaf_order: list[int] = []

    def walk(n, name: str) -> None:
        name_of[n.id] = name
        kids = tree.children(n)
        if not kids:
            leaf_order.append(n.scenarios[0])
        for i, c in enumerate(kids):
            walk(c, f"{name}_{i}")

    walk(tree.nodes[0], "ROOT")
    names = [instance.scenarios[w].name for w in leaf_order]
    paths = {}
    for w in leaf_order:
        path = tree.path(w)[:-1]  # the leaf holds no decision shared with another scenario
        paths[instance.scenarios[w].name] = [
            (name_of[n.id], n.probability / tree.nodes[n.parent].probability if n.parent is not None else 1.0, n.depth, n.rep)
            for n in path]
    return {"scenarios": names, "all_nodenames": None if tree.two_stage else [name_of[n.id] for n in tree.nodes],
            "paths": paths, "K": tree.K, "depth": tree.depth.tolist(), "inv_depth": tree.inv_depth.tolist(),
            "two_stage": tree.two_stage}


def _node_vars(m, depth: int, layout: dict) -> list[tuple[str, object]]:
    """(component, index) of the scenario model's decisions held by the node at ``depth`` on its path."""
    out = []
    for name in NONANT_COMMITMENTS:
        var = getattr(m, name)
        for k in var.index_set():
            t = k if name == "btc_sold" else decision_period(m, name, k)
            if layout["inv_depth"][t] == depth:
                out.append((name, k))
    if depth < layout["K"]:
        for name in NONANT_OPERATIONS:
            var = getattr(m, name)
            for k in var.index_set():
                if layout["depth"][k[-2]] == depth:
                    out.append((name, k))
    return out


def _ef_key(layout: dict, name: str, key, rep: int):
    """Index in the tree's extensive form of a scenario model's commitment ``name[key]`` held by
    the node with representative ``rep`` (the same index in the two-stage form)."""
    if layout["two_stage"]:
        return key
    if name == "sign":
        return (key, rep)
    return (key if isinstance(key, tuple) else (key,)) + (rep,)


# ---------------------------------------------------------------- scenario creator


def scenario_creator(scenario_name: str, instance: Instance, layout: dict | None = None):
    """mpi-sppy scenario creator: the model of ``instance`` restricted to ``scenario_name``, with
    its tree nodes (``_mpisppy_node_list``) and a map of its nonanticipative variables to the
    extensive form's (``_ph_ef``: (node, position) -> (component, index))."""
    from mpisppy import scenario_tree  # optional extra [ph]: imported only when PH runs

    layout = layout or tree_layout(instance)
    names = [s.name for s in instance.scenarios]
    w = names.index(scenario_name)
    data = compile_instance(scenario_instance(instance, w))
    m = build_model(data)
    m.objective.deactivate()
    m.ph_objective = pyo.Objective(expr=-m.expected_npv, sense=pyo.minimize)  # $M; one scenario, probability 1
    nodes, parent, m._ph_ef = [], None, {}
    for ndn, cond, depth, rep in layout["paths"][scenario_name]:
        held = _node_vars(m, depth, layout)
        nodes.append(scenario_tree.ScenarioNode(ndn, cond, depth + 1, 0.0, [getattr(m, c)[k] for c, k in held], m, parent_name=parent))
        for i, (c, k) in enumerate(held):
            m._ph_ef[(ndn, i)] = (c, _ef_key(layout, c, k, rep))
        parent = ndn
    m._mpisppy_node_list = nodes
    m._mpisppy_probability = float(instance.scenarios[w].probability)
    m._ph_data = data
    return m


def _rho_setter(rho_rel: float, holder: dict):
    """The same rho for every nonanticipative variable: ``rho_rel`` x |E[objective]| of iteration 0
    (the trivial bound, in $M), so a unit move of a decision costs a set share of the problem's
    value whatever its size. mpi-sppy calls this after the iteration-0 solves."""

    def setter(scenario):
        rho = rho_rel * max(abs(holder["ph"].trivial_bound), 1e-6)
        holder["rho"] = rho
        return [(id(v), rho) for nd in scenario._mpisppy_node_list for v in nd.nonant_vardata_list]

    return setter


# ---------------------------------------------------------------- result


@dataclass
class PHResult:
    objective_usd: float | None          # E[NPV] of the PH plan, by the evaluator (full instance)
    lp_objective_usd: float | None  # the extensive-form LP objective of that plan (integers fixed)
    bound_usd: float | None              # trivial (wait-and-see) upper bound on E[NPV]
    iterations: int
    convergence: float                   # mpi-sppy's sum |x - xbar| / number of nonants at the end
    seconds: float
    ph_seconds: float
    ranks: int
    candidates_tried: int                # integer first stages tried in the extensive-form LP
    consensus_probability: float         # probability of the scenarios whose own integer first stage is the most common one
    lp_seconds: float                    # extensive-form LPs with the integer candidates fixed (slowest rank)
    rho: float | None = None             # the rho used, $M per unit^2 (model units: blocks, 0/1, thousands of ASICs)
    stages: int = 2                      # 2: the two-stage form; more: a scenario tree (multistage PH)
    violations: list[str] = field(default_factory=list)
    plan: object | None = None           # optimizer.plan.Plan (rank 0 only)

    def summary(self) -> dict:
        d = asdict(self)
        d.pop("plan")
        return d


# ---------------------------------------------------------------- the run


def run_ph(instance: Instance, *, rho: float = 0.01, max_iterations: int = 10, conv_threshold: float = 1e-4,
           mip_gap: float = 1e-4, iteration_gap: float = 1e-3, max_candidates: int = 16,
           verbose: bool = False) -> PHResult:
    """Run PH on ``instance`` over the ranks of MPI.COMM_WORLD (one rank without mpiexec).
    Every rank returns a PHResult; rank 0's holds the plan."""
    from mpisppy import MPI
    from mpisppy.opt.ph import PH

    t0 = time.perf_counter()
    comm = MPI.COMM_WORLD
    names = [s.name for s in instance.scenarios]
    if len(names) < 2:
        raise ValueError("progressive hedging needs a stochastic instance (2 or more scenarios)")
    if comm.size > len(names):
        raise ValueError(f"{comm.size} MPI ranks for {len(names)} scenarios: use at most one rank per scenario")
    options = {
        "solver_name": SOLVER,
        "PHIterLimit": max_iterations,
        "defaultPHrho": 1.0,  # replaced after iteration 0 by the rho setter
        "convthresh": conv_threshold,
        "verbose": False,
        "display_progress": verbose,
        "display_timing": False,
        "iter0_solver_options": {"mip_rel_gap": mip_gap},          # the trivial bound needs tight solves
        "iterk_solver_options": {"mip_rel_gap": iteration_gap},    # PH iterates need not be optimal
        "linearize_proximal_terms": True,
        "linearize_binary_proximal_terms": True,
        "proximal_linearization_tolerance": 1e-2,
    }
    holder: dict = {}
    layout = tree_layout(instance)
    ph = PH(options, layout["scenarios"], scenario_creator, scenario_creator_kwargs={"instance": instance, "layout": layout},
            rho_setter=_rho_setter(rho, holder), all_nodenames=layout["all_nodenames"])
    holder["ph"] = ph
    conv, _, trivial_bound = ph.ph_main(finalize=False)
    ph_seconds = time.perf_counter() - t0
    iterations = int(ph._PHIter)

    # integer candidates: xbar rounded at every node, then each scenario's own integer decisions on
    # its path (xbar rounded elsewhere), the most probable first; each is fixed in the extensive
    # form's LP (continuous decisions and operations re-optimised), candidates spread over the ranks
    local = ph.local_scenarios
    ef_map, xbar, own = {}, {}, []
    for s in local.values():
        ints = {k: v for k, v in s._mpisppy_data.nonant_indices.items() if v.is_integer()}
        for k in ints:
            ef_map[k] = s._ph_ef[k]
            xbar[k] = float(s._mpisppy_model.xbars[k]._value)
        own.append((s._mpisppy_probability, {k: float(round(nonants_value(v))) for k, v in ints.items()}))
    if comm.size > 1:
        for part in comm.allgather((ef_map, xbar)):
            ef_map.update(part[0])
            xbar.update(part[1])
        own = [x for part in comm.allgather(own) for x in part]
    rounded = {k: float(round(v)) for k, v in xbar.items()}
    candidates: list[tuple[dict, float]] = [(rounded, 0.0)]
    for p, mine in own:
        cand = {**rounded, **mine}
        for i, (c, q) in enumerate(candidates):
            if c == cand:
                candidates[i] = (c, q + p)
                break
        else:
            candidates.append((cand, p))
    consensus = max(q for _, q in candidates)
    candidates = [candidates[0]] + sorted(candidates[1:], key=lambda cq: -cq[1])
    candidates = candidates[:max_candidates]
    ef_t0 = time.perf_counter()
    found = []
    for i, (c, _) in enumerate(candidates):
        if i % comm.size == comm.rank:
            found.append((i, *_fixed_integers_lp(instance, {ef_map[k]: v for k, v in c.items()}, mip_gap)))
    ef_seconds = time.perf_counter() - ef_t0
    scores = [(i, npv) for part in (comm.allgather([(i, npv) for i, npv, _ in found]) if comm.size > 1 else [[(i, npv) for i, npv, _ in found]])
              for i, npv in part if npv is not None]
    seconds = time.perf_counter() - t0
    conv_val = float(conv) if conv is not None else math.nan
    res = PHResult(None, None, -float(trivial_bound) * USD if trivial_bound is not None else None,
                   iterations, conv_val, seconds, ph_seconds, comm.size, len(candidates), consensus,
                   float(comm.allreduce(ef_seconds, op=MPI.MAX)) if comm.size > 1 else ef_seconds)
    res.rho = holder.get("rho")
    res.stages = layout["K"] + 1
    if not scores:
        res.violations.append("no integer candidate from PH was feasible in every scenario")
        return res
    best_i, best_npv = max(scores, key=lambda x: x[1])
    res.lp_objective_usd = best_npv
    plan = next((pl for i, _, pl in found if i == best_i), None)
    if comm.size > 1:
        owner = best_i % comm.size
        plan = comm.bcast(plan if comm.rank == owner else None, root=owner)
    if comm.rank == 0:
        ev = evaluate(instance, plan)
        res.objective_usd, res.violations, res.plan = ev.npv_usd, list(ev.violations), plan
    res.seconds = time.perf_counter() - t0
    return res


def nonants_value(v) -> float:
    return 0.0 if v.value is None else float(v.value)


def _fixed_integers_lp(instance: Instance, values: dict[tuple[str, object], float], mip_gap: float):
    """E[NPV] (USD) and plan of the extensive form (the instance's tree) with its integer
    commitments fixed to ``values`` ((component, index) -> value); (None, None) if infeasible."""
    data = compile_instance(instance)
    m = build_model(data)
    for (name, key), x in values.items():
        getattr(m, name)[key].fix(x)
    b = HighsBackend(m)
    r = b.solve(mip_gap=mip_gap)
    if not r.has_solution or r.status not in ("optimal", "feasible_within_gap"):
        return None, None
    b.load_solution()
    return r.objective * USD, extract_plan(m, data)
