"""Hand-off benchmark: Pyomo build, HighsBackend hand-off, Pyomo's persistent highs, update().

Synthetic model of the product's shape: sites x months, 11 variables per (site, month), 3 of them
integer and 1 binary, mutable Params in objective coefficients, right-hand sides and matrix
coefficients. Prints medians over --runs runs.

    python benchmarks/handoff.py [--sites 30] [--months 120] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import highspy
import numpy as np
import pyomo.environ as pyo
import scipy.sparse  # noqa: F401  (as in the backend: keep scipy's import out of the timings)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from optimizer.solve.backend import HighsBackend  # noqa: E402
from optimizer.solve.standard_form import compile_model  # noqa: E402

NN = pyo.NonNegativeReals
NNI = pyo.NonNegativeIntegers


def build(n_sites: int, n_months: int, seed: int = 0) -> pyo.ConcreteModel:
    rng = np.random.default_rng(seed)
    S, T = range(n_sites), range(n_months)
    st = [(s, t) for s in S for t in T]
    m = pyo.ConcreteModel()
    m.S, m.T = pyo.Set(initialize=S), pyo.Set(initialize=T)
    rnd = lambda lo, hi, n: dict(zip(st, rng.uniform(lo, hi, n).tolist()))  # noqa: E731
    n = len(st)
    m.mine_usd_per_mwh = pyo.Param(m.S, m.T, initialize=rnd(20, 80, n), mutable=True)
    m.hpc_usd_per_mwh = pyo.Param(m.S, m.T, initialize=rnd(60, 120, n), mutable=True)
    m.grid_usd_per_mwh = pyo.Param(m.S, m.T, initialize=rnd(25, 60, n), mutable=True)
    m.ppa_usd_per_mwh = pyo.Param(m.S, m.T, initialize=rnd(30, 40, n), mutable=True)
    m.block_mw = pyo.Param(m.S, m.T, initialize=rnd(4, 6, n), mutable=True)  # matrix coefficient
    m.site_mw = pyo.Param(m.S, initialize=dict(zip(S, rng.uniform(50, 300, n_sites).tolist())), mutable=True)
    m.ppa_mw = pyo.Param(m.S, initialize=dict(zip(S, rng.uniform(0, 100, n_sites).tolist())), mutable=True)
    m.crew_blocks = pyo.Param(m.T, initialize=dict(zip(T, rng.integers(3, 8, n_months).tolist())), mutable=True)
    disc = {t: 1.01 ** (-t) for t in T}

    idx = (m.S, m.T)
    m.mine_mw, m.hpc_mw, m.curtail_mw = pyo.Var(*idx, domain=NN), pyo.Var(*idx, domain=NN), pyo.Var(*idx, domain=NN)
    m.grid_mw, m.ppa_use_mw = pyo.Var(*idx, domain=NN), pyo.Var(*idx, domain=NN)
    m.hpc_cap_mw, m.mine_cap_mw = pyo.Var(*idx, domain=NN), pyo.Var(*idx, domain=NN)
    m.build_hpc = pyo.Var(*idx, domain=NNI, bounds=(0, 10))
    m.build_mine = pyo.Var(*idx, domain=NNI, bounds=(0, 10))
    m.retire_mine = pyo.Var(*idx, domain=NNI, bounds=(0, 10))
    m.lease_on = pyo.Var(*idx, domain=pyo.Binary)

    m.balance = pyo.Constraint(*idx, rule=lambda m, s, t: m.mine_mw[s, t] + m.hpc_mw[s, t] + m.curtail_mw[s, t] == m.grid_mw[s, t] + m.ppa_use_mw[s, t])
    m.site_limit = pyo.Constraint(*idx, rule=lambda m, s, t: m.grid_mw[s, t] + m.ppa_use_mw[s, t] <= m.site_mw[s])
    m.ppa_limit = pyo.Constraint(*idx, rule=lambda m, s, t: m.ppa_use_mw[s, t] <= m.ppa_mw[s])
    m.hpc_use = pyo.Constraint(*idx, rule=lambda m, s, t: m.hpc_mw[s, t] <= m.hpc_cap_mw[s, t])
    m.mine_use = pyo.Constraint(*idx, rule=lambda m, s, t: m.mine_mw[s, t] <= m.mine_cap_mw[s, t])
    m.hpc_stock = pyo.Constraint(*idx, rule=lambda m, s, t: m.hpc_cap_mw[s, t] == (m.hpc_cap_mw[s, t - 1] if t else 0) + m.block_mw[s, t] * m.build_hpc[s, t])
    m.mine_stock = pyo.Constraint(*idx, rule=lambda m, s, t: m.mine_cap_mw[s, t] == (m.mine_cap_mw[s, t - 1] if t else 20) + m.block_mw[s, t] * (m.build_mine[s, t] - m.retire_mine[s, t]))
    m.lease_min = pyo.Constraint(*idx, rule=lambda m, s, t: m.hpc_mw[s, t] >= 5 * m.lease_on[s, t])
    m.lease_max = pyo.Constraint(*idx, rule=lambda m, s, t: m.hpc_mw[s, t] <= 300 * m.lease_on[s, t])
    m.crew = pyo.Constraint(m.T, rule=lambda m, t: sum(m.build_hpc[s, t] + m.build_mine[s, t] for s in m.S) <= m.crew_blocks[t])
    hours = 730.0
    m.npv = pyo.Objective(
        expr=sum(
            disc[t] * (hours * (m.mine_usd_per_mwh[s, t] * m.mine_mw[s, t] + m.hpc_usd_per_mwh[s, t] * m.hpc_mw[s, t]
                       - m.grid_usd_per_mwh[s, t] * m.grid_mw[s, t] - m.ppa_usd_per_mwh[s, t] * m.ppa_use_mw[s, t])
                       - 2e5 * m.build_hpc[s, t] - 1e5 * m.build_mine[s, t] - 1e3 * m.lease_on[s, t])
            for s, t in st
        ) - 1e6,
        sense=pyo.maximize,
    )  # fmt: skip
    return m


def perturb(m: pyo.ConcreteModel, frac: float, seed: int, only: tuple[str, ...] = ()) -> int:
    """Scale a random `frac` of every mutable Param's entries by 0.9..1.1; returns how many changed."""
    rng = np.random.default_rng(seed)
    changed = 0
    for p in m.component_objects(pyo.Param):
        if not p.mutable or (only and p.local_name not in only):
            continue
        for k in p:
            if rng.random() < frac:
                p[k] = pyo.value(p[k]) * rng.uniform(0.9, 1.1)
                changed += 1
    return changed


def pass_variants(sf) -> dict[str, float]:
    """Seconds to hand the same compiled arrays to HiGHS by three routes."""
    A, n, r = sf.A, len(sf.columns), len(sf.rows)
    out = {}
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    t0 = time.perf_counter()
    h.passModel(n, r, A.nnz, int(highspy.MatrixFormat.kColwise), sf.sense, sf.offset, sf.cost, sf.col_lower,
                sf.col_upper, sf.row_lower, sf.row_upper, A.indptr, A.indices, A.data, sf.integrality)  # fmt: skip
    out["passModel(arrays)"] = time.perf_counter() - t0
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    t0 = time.perf_counter()
    empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0)
    h.addRows(r, sf.row_lower, sf.row_upper, 0, np.zeros(r, dtype=np.int32), empty_i, empty_f)
    h.addCols(n, sf.cost, sf.col_lower, sf.col_upper, A.nnz, A.indptr[:-1], A.indices, A.data)
    ints = np.flatnonzero(sf.integrality).astype(np.int32)
    h.changeColsIntegrality(ints.size, ints, np.ones(ints.size, dtype=np.uint8))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize if sf.sense == -1 else highspy.ObjSense.kMinimize)
    h.changeObjectiveOffset(sf.offset)
    out["addRows+addCols+changeColsIntegrality"] = time.perf_counter() - t0
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    t0 = time.perf_counter()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n, r
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = sf.cost, sf.col_lower, sf.col_upper
    lp.row_lower_, lp.row_upper_ = sf.row_lower, sf.row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    lp.sense_ = highspy.ObjSense.kMaximize if sf.sense == -1 else highspy.ObjSense.kMinimize
    lp.offset_ = sf.offset
    lp.integrality_ = [highspy.HighsVarType(int(v)) for v in sf.integrality]
    h.passModel(lp)
    out["passModel(HighsLp)"] = time.perf_counter() - t0
    return out


def one_run(n_sites: int, n_months: int, seed: int) -> dict[str, float]:
    from pyomo.contrib.solver.solvers.highs import Highs as PyomoHighs

    res: dict[str, float] = {}
    t0 = time.perf_counter()
    m = build(n_sites, n_months, seed)
    res["pyomo build s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sf = compile_model(m)
    res["  compile only s"] = time.perf_counter() - t0
    for k, v in pass_variants(sf).items():
        res[f"  pass via {k} s"] = v

    b = HighsBackend(m)
    res["handoff HighsBackend s"] = b.handoff_s
    res["rows"], res["cols"], res["nnz"] = b.n_rows, b.n_cols, sf.A.nnz

    opt = PyomoHighs()
    t0 = time.perf_counter()
    opt.set_instance(m)
    res["handoff pyomo.contrib.solver highs (persistent) s"] = time.perf_counter() - t0

    lp_before = _relaxation_objective(b)
    stats = b.update()  # nothing changed: the recompile alone
    res["update() no change s"] = stats.update_s
    res["params changed (10%)"] = perturb(m, 0.10, seed + 100)
    stats = b.update()
    res["update() after 10% change s"] = stats.update_s
    res["  changed coeffs"], res["  changed costs"], res["  changed row bounds"] = (
        stats.changed_coeffs, stats.changed_costs, stats.changed_row_bounds)  # fmt: skip
    res["  full re-pass (1=yes)"] = float(stats.full_repass)
    t0 = time.perf_counter()
    opt.update_parameters()  # the persistent interface's cheapest path for the same change
    res["pyomo persistent update_parameters() s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    fresh = HighsBackend(m)
    res["fresh HighsBackend on changed model s"] = time.perf_counter() - t0
    # the updated HiGHS model must equal the fresh one: compare LP relaxation objectives
    lp_a, lp_b = _relaxation_objective(b), _relaxation_objective(fresh)
    res["LP relaxation |updated - fresh| / |fresh|"] = abs(lp_a - lp_b) / abs(lp_b)
    res["  (vs the change itself: |before - fresh| / |fresh|)"] = abs(lp_before - lp_b) / abs(lp_b)
    return res


def _relaxation_objective(b: HighsBackend) -> float:
    h = b.highs
    ints = np.flatnonzero(b._sf.integrality).astype(np.int32)
    h.changeColsIntegrality(ints.size, ints, np.zeros(ints.size, dtype=np.uint8))
    h.setOptionValue("output_flag", False)
    h.run()
    obj = h.getInfo().objective_function_value
    h.changeColsIntegrality(ints.size, ints, np.ones(ints.size, dtype=np.uint8))
    return obj


PRICES = ("mine_usd_per_mwh", "hpc_usd_per_mwh", "grid_usd_per_mwh", "ppa_usd_per_mwh")


def warm_vs_cold(n_sites: int, n_months: int, seed: int, gap: float) -> dict[str, float]:
    """Price-sweep step: re-solve after update() (warm) vs a fresh backend (cold)."""
    m = build(n_sites, n_months, seed)
    b = HighsBackend(m)
    r0 = b.solve(mip_gap=gap, threads=1)
    perturb(m, 0.10, seed + 200, only=PRICES)
    b.update()
    warm = b.solve(mip_gap=gap, threads=1)
    fresh = HighsBackend(m)
    cold = fresh.solve(mip_gap=gap, threads=1)
    return {
        "first solve s": r0.solve_s,
        "re-solve after update() (warm start) s": warm.solve_s,
        "fresh backend solve (cold) s": cold.solve_s,
        "|warm - cold objective| / |cold|": abs(warm.objective - cold.objective) / abs(cold.objective),
    }


def _print_medians(title: str, runs: list[dict[str, float]]) -> None:
    print(title)
    for key in runs[0]:
        med = statistics.median(r[key] for r in runs)
        print(f"{key:55s} {med:12.4g}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=30)
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--solve-sites", type=int, default=5, help="size of the warm-vs-cold solve test (0: skip)")
    ap.add_argument("--solve-months", type=int, default=24)
    a = ap.parse_args()
    runs = [one_run(a.sites, a.months, seed) for seed in range(a.runs)]
    _print_medians(f"{a.sites} sites x {a.months} months, medians over {a.runs} runs", runs)
    if a.solve_sites:
        runs = [warm_vs_cold(a.solve_sites, a.solve_months, seed, 1e-4) for seed in range(a.runs)]
        title = f"\nprice sweep step, {a.solve_sites} sites x {a.solve_months} months, gap 1e-4, 1 thread, medians"
        _print_medians(title, runs)


if __name__ == "__main__":
    main()
