"""Progressive hedging (mpi-sppy) over the allocation MILP, for stochastic instances too large
for one extensive form.

    mpiexec -n 2 python -m optimizer.ph FILE --out DIR      # scenarios split over 2 ranks
    python -m optimizer.ph FILE --out DIR                   # one process, no MPI launcher
    (a system Open MPI as root: mpiexec --allow-run-as-root --oversubscribe -n 2 ...; the mpich
    wheel of the ph extra needs no flags)

Each scenario's subproblem is our model of the one-scenario sub-instance (same first-stage
structure), minimising -NPV in $M; mpi-sppy weights the scenarios by their probability. The
nonanticipative variables are the first-stage decisions (``model.fix.FIRST_STAGE_VARS``); the
variables they define (cumulative blocks, ownership, installed units, ...) follow by
equalities. HiGHS solves the subproblems through ``appsi_highs``; HiGHS has no MIQP, so the
proximal term is linearised (``linearize_proximal_terms``: outer cuts on x^2; exact for binaries).

PH settles the integer first stage (conversions, lease hand-overs, contract signings, site
sales and purchases, grid expansions) quickly; on the continuous first stage (ASIC purchases
and retirements, which each scenario wants differently) its average converges slowly and
is a poor plan. So after the iterations, integer candidates (the consensus xbar rounded, then
the scenarios' own integer first stages, most probable first) are each fixed in the
extensive form, which is then an LP: the continuous first stage and the operations are
re-optimised (candidates are spread over the ranks). The best candidate is the PH plan; its
E[NPV] recomputed by the plan evaluator on the full instance is the reported PH objective.
The bound is mpi-sppy's trivial bound (wait-and-see: every scenario solved alone at
iteration 0, at the subproblem gap).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pyomo.environ as pyo

from optimizer.economics.data import compile_instance
from optimizer.evaluate import evaluate
from optimizer.instance.schema import Instance
from optimizer.instance.variants import scenario_instance
from optimizer.model.build import build_model
from optimizer.model.common import USD
from optimizer.model.extract import extract_plan
from optimizer.model.fix import first_stage_vars
from optimizer.solve.backend import HighsBackend

SOLVER = "appsi_highs"


# ---------------------------------------------------------------- scenario creator


def scenario_creator(scenario_name: str, instance: Instance):
    """mpi-sppy scenario creator: the model of ``instance`` restricted to ``scenario_name``."""
    from mpisppy.utils import sputils  # optional extra [ph]: imported only when PH runs

    names = [s.name for s in instance.scenarios]
    w = names.index(scenario_name)
    data = compile_instance(scenario_instance(instance, w))
    m = build_model(data)
    m.objective.deactivate()
    m.ph_objective = pyo.Objective(expr=-m.expected_npv, sense=pyo.minimize)  # $M; one scenario, probability 1
    sputils.attach_root_node(m, 0.0, first_stage_vars(m))
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
        return [(id(v), rho) for v in first_stage_vars(scenario)]

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
    ph = PH(options, names, scenario_creator, scenario_creator_kwargs={"instance": instance},
            rho_setter=_rho_setter(rho, holder))
    holder["ph"] = ph
    conv, _, trivial_bound = ph.ph_main(finalize=False)
    ph_seconds = time.perf_counter() - t0
    iterations = int(ph._PHIter)

    # integer candidates: rounded xbar, then the scenarios' own integer first stages, the most
    # probable first; each is fixed in the extensive-form LP (continuous first stage and
    # operations re-optimised), candidates spread over the ranks
    local = ph.local_scenarios
    any_s = next(iter(local.values()))
    nonants = list(any_s._mpisppy_data.nonant_indices.values())
    names_fs = [v.name for v in nonants]
    is_int = np.array([v.is_integer() for v in nonants])
    xbar = np.array([any_s._mpisppy_model.xbars[k]._value for k in any_s._mpisppy_data.nonant_indices])
    mine = [(s._mpisppy_probability, np.round([nonants_value(v) for v in s._mpisppy_data.nonant_indices.values()])[is_int])
            for s in local.values()]
    pool = [x for part in (comm.allgather(mine) if comm.size > 1 else [mine]) for x in part]
    candidates: list[tuple[np.ndarray, float]] = [(np.round(xbar[is_int]), 0.0)]
    for p, x in pool:
        for i, (c, q) in enumerate(candidates):
            if np.array_equal(c, x):
                candidates[i] = (c, q + p)
                break
        else:
            candidates.append((x, p))
    consensus = max(q for _, q in candidates)
    candidates = [candidates[0]] + sorted(candidates[1:], key=lambda cq: -cq[1])
    candidates = candidates[:max_candidates]
    ef_t0 = time.perf_counter()
    found = []
    for i, (c, _) in enumerate(candidates):
        if i % comm.size == comm.rank:
            found.append((i, *_fixed_integers_lp(instance, names_fs, is_int, c, mip_gap)))
    ef_seconds = time.perf_counter() - ef_t0
    scores = [(i, npv) for part in (comm.allgather([(i, npv) for i, npv, _ in found]) if comm.size > 1 else [[(i, npv) for i, npv, _ in found]])
              for i, npv in part if npv is not None]
    seconds = time.perf_counter() - t0
    conv_val = float(conv) if conv is not None else math.nan
    res = PHResult(None, None, -float(trivial_bound) * USD if trivial_bound is not None else None,
                   iterations, conv_val, seconds, ph_seconds, comm.size, len(candidates), consensus,
                   float(comm.allreduce(ef_seconds, op=MPI.MAX)) if comm.size > 1 else ef_seconds)
    res.rho = holder.get("rho")
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


def _fixed_integers_lp(instance: Instance, names: list[str], is_int: np.ndarray, values: np.ndarray, mip_gap: float):
    """E[NPV] (USD) and plan of the extensive form with the integer first-stage decisions fixed
    to ``values`` (an LP); (None, None) if infeasible."""
    data = compile_instance(instance)
    m = build_model(data)
    fs = first_stage_vars(m)
    if [v.name for v in fs] != names:
        raise RuntimeError("the extensive form's first stage differs from the scenario models'")
    for v, x in zip([v for v, k in zip(fs, is_int) if k], values):
        v.fix(float(x))
    b = HighsBackend(m)
    r = b.solve(mip_gap=mip_gap)
    if not r.has_solution or r.status not in ("optimal", "feasible_within_gap"):
        return None, None
    b.load_solution()
    return r.objective * USD, extract_plan(m, data)
