"""HighsBackend against optima and shadow prices worked out by hand (arithmetic in comments)."""

import itertools
import math
import random

import highspy
import pyomo.environ as pyo
import pytest
from pyomo.common.collections import ComponentMap

from optimizer.solve.backend import STATUSES, HighsBackend

NN = pyo.NonNegativeReals


def two_var_lp(sense):
    """max 2x + 3y + z + 5  (or min of the negated objective, same constant +5)
    c1: x + y + z <= 4;  c2: x + 3y <= 6;  x, y, z >= 0."""
    m = pyo.ConcreteModel()
    m.x, m.y, m.z = pyo.Var(domain=NN), pyo.Var(domain=NN), pyo.Var(domain=NN)
    m.c1 = pyo.Constraint(expr=m.x + m.y + m.z <= 4)
    m.c2 = pyo.Constraint(expr=m.x + 3 * m.y <= 6)
    s = 1 if sense == pyo.maximize else -1
    m.o = pyo.Objective(expr=s * (2 * m.x + 3 * m.y + m.z) + 5, sense=sense)
    return m


def test_lp_maximize_optimum_and_shadow_prices():
    # Vertices of {x+y<=4, x+3y<=6} (z=0): (0,0)->0, (4,0)->8, (0,2)->6, and c1=c2: 2y=2 -> y=1, x=3
    # -> 2*3 + 3*1 = 9, the best; +5 constant -> 14.
    # Duals u solve u1 + u2 = 2 (x column), u1 + 3 u2 = 3 (y column) -> u2 = 1/2, u1 = 3/2.
    # Check c1 rhs 5: x+y=5, x+3y=6 -> y=0.5, x=4.5 -> 9 + 1.5 = 10.5, i.e. +3/2 per unit.
    # Reduced cost of z: 1 - u1 = -1/2 (z=1: x+y<=3 -> y=1.5, x=1.5 -> 3+4.5+1 = 8.5 = 9 - 0.5).
    m = two_var_lp(pyo.maximize)
    b = HighsBackend(m)
    r = b.solve()
    assert r.status == "optimal"
    assert r.objective == pytest.approx(14.0, abs=1e-9)
    assert r.best_bound == pytest.approx(14.0, abs=1e-9) and r.gap == 0.0
    assert b.value_of(m.x) == pytest.approx(3.0) and b.value_of(m.y) == pytest.approx(1.0)
    b.load_solution()
    assert pyo.value(m.o) == pytest.approx(14.0, abs=1e-9)
    d = b.fix_integers_and_solve_lp()
    assert d.status == "optimal" and d.objective == pytest.approx(14.0)
    assert d.row_duals[m.c1] == pytest.approx(1.5, abs=1e-9)
    assert d.row_duals[m.c2] == pytest.approx(0.5, abs=1e-9)
    assert d.reduced_costs[m.z] == pytest.approx(-0.5, abs=1e-9)


def test_lp_minimize_same_point_negated_duals():
    # min -(2x + 3y + z) + 5: same vertex (3,1), objective -9 + 5 = -4.
    # One more unit of c1's rhs lowers the objective by 3/2 -> dual -3/2; c2 -> -1/2; z: +1/2.
    m = two_var_lp(pyo.minimize)
    b = HighsBackend(m)
    r = b.solve()
    assert r.status == "optimal" and r.objective == pytest.approx(-4.0, abs=1e-9)
    d = b.fix_integers_and_solve_lp()
    assert d.row_duals[m.c1] == pytest.approx(-1.5, abs=1e-9)
    assert d.row_duals[m.c2] == pytest.approx(-0.5, abs=1e-9)
    assert d.reduced_costs[m.z] == pytest.approx(0.5, abs=1e-9)


def test_ranged_and_equality_rows_and_free_vars():
    # min x + y s.t. 4 <= x + 2y <= 10 (ranged), x - y == 1, x, y free.
    # x = 1 + y -> 1 + 3y >= 4 -> y >= 1; objective 1 + 2y -> y = 1, x = 2, objective 3.
    # Ranged rhs 4+d: y = 1 + d/3 -> objective 3 + 2d/3 -> dual 2/3.
    # Equality rhs 1+d: x = 1 + d + y, 1 + d + 3y = 4 -> y = 1 - d/3, objective 3 + d/3 -> dual 1/3.
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(), pyo.Var()
    m.r = pyo.Constraint(expr=pyo.inequality(4, m.x + 2 * m.y, 10))
    m.e = pyo.Constraint(expr=m.x - m.y == 1)
    m.o = pyo.Objective(expr=m.x + m.y)
    b = HighsBackend(m)
    assert b.n_rows == 2  # the ranged constraint is one HiGHS row
    assert sorted([b.row_index(m.r), b.row_index(m.e)]) == [0, 1]
    assert b.rows[b.row_index(m.e)] is m.e and b.columns[b.column_index(m.y)] is m.y
    r = b.solve()
    assert r.status == "optimal" and r.objective == pytest.approx(3.0, abs=1e-9)
    d = b.fix_integers_and_solve_lp()
    assert d.row_duals[m.r] == pytest.approx(2 / 3, abs=1e-9)
    assert d.row_duals[m.e] == pytest.approx(1 / 3, abs=1e-9)


def knapsack():
    w = [5, 7, 4, 3, 8, 6]
    v = [10, 13, 7, 5, 14, 10]
    cap = 15
    m = pyo.ConcreteModel()
    m.I = pyo.RangeSet(0, 5)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.c = pyo.Constraint(expr=sum(w[i] * m.x[i] for i in m.I) <= cap)
    m.o = pyo.Objective(expr=sum(v[i] * m.x[i] for i in m.I), sense=pyo.maximize)
    # independent optimum: all 64 subsets in pure Python
    feasible = sorted(
        ((sum(vi for vi, s in zip(v, pick) if s), pick)
         for pick in itertools.product((0, 1), repeat=6)
         if sum(wi for wi, s in zip(w, pick) if s) <= cap),
        reverse=True,
    )  # fmt: skip
    assert feasible[1][0] < feasible[0][0]  # the optimum is unique, so the pick can be compared
    return m, feasible[0]


def test_knapsack_matches_enumeration():
    m, (best_value, best_pick) = knapsack()
    assert best_value == 28  # items 0,1,3: weight 5+7+3 = 15, value 10+13+5 = 28
    b = HighsBackend(m)
    assert b.is_mip
    r = b.solve(mip_gap=0.0)
    assert r.status == "optimal" and r.objective == pytest.approx(best_value, abs=1e-9)
    b.load_solution()
    assert [pyo.value(m.x[i]) for i in m.I] == list(best_pick)
    # changing the thread count between runs needs HiGHS's global scheduler rebuilt; otherwise
    # HiGHS refuses to run ("global scheduler has already been initialized")
    for threads in (2, 1, 2):
        r = b.solve(mip_gap=0.0, threads=threads)
        assert r.status == "optimal" and r.objective == pytest.approx(best_value, abs=1e-9)


def test_mixed_integer_fixed_duals():
    # max 10b + y s.t. c: y + 4b <= 6, 0 <= y <= 5, b binary.
    # b=1 -> y <= 2 -> 12; b=0 -> y = 5 -> 5. Optimum b=1, y=2, 12.
    # With b fixed at 1: dual of c = 1 (y rises one-for-one with the rhs);
    # reduced cost of b: b = 1+d -> y = 2 - 4d -> 12 + 10d - 4d -> 6.
    m = pyo.ConcreteModel()
    m.b = pyo.Var(domain=pyo.Binary)
    m.y = pyo.Var(bounds=(0, 5))
    m.c = pyo.Constraint(expr=m.y + 4 * m.b <= 6)
    m.o = pyo.Objective(expr=10 * m.b + m.y, sense=pyo.maximize)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0)
    assert r.status == "optimal" and r.objective == pytest.approx(12.0, abs=1e-9)
    d = b.fix_integers_and_solve_lp()
    assert d.objective == pytest.approx(12.0, abs=1e-9)
    assert d.row_duals[m.c] == pytest.approx(1.0, abs=1e-9)
    assert d.reduced_costs[m.b] == pytest.approx(6.0, abs=1e-9)
    # integrality and bounds restored: the MIP solves to the same optimum again
    r2 = b.solve(mip_gap=0.0)
    assert r2.status == "optimal" and r2.objective == pytest.approx(12.0, abs=1e-9)
    assert b.highs.getLp().integrality_[b.columns.index(m.b)] == highspy.HighsVarType.kInteger


def test_infeasible_and_unbounded():
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(domain=NN), pyo.Var(domain=NN)
    m.lo = pyo.Constraint(expr=m.x + m.y >= 5)
    m.hi = pyo.Constraint(expr=m.x + m.y <= 3)
    m.o = pyo.Objective(expr=m.x)
    r = HighsBackend(m).solve()
    assert r.status == "infeasible" and not r.has_solution

    # max x + y s.t. x - y <= 1: the ray (1,1) keeps it feasible and grows the objective.
    u = pyo.ConcreteModel()
    u.x, u.y = pyo.Var(domain=NN), pyo.Var(domain=NN)
    u.c = pyo.Constraint(expr=u.x - u.y <= 1)
    u.o = pyo.Objective(expr=u.x + u.y, sense=pyo.maximize)
    for presolve in (True, False):
        assert HighsBackend(u).solve(presolve=presolve).status == "unbounded"
    # the same with y integer: a MIP whose relaxation is unbounded and which is feasible
    u.y.domain = pyo.NonNegativeIntegers
    r = HighsBackend(u).solve()
    assert r.status == "unbounded" and r.highs_status == "kUnboundedOrInfeasible"

    # HiGHS says "unbounded or infeasible" for both of these MIPs (checked in a run); the zero-cost
    # re-solve settles it. Here 3a + 5b + 4c = 6 has no 0/1 solution (sums: 0,3,4,5,7,8,9,12)
    # while the relaxation is feasible and x is unbounded above.
    v = pyo.ConcreteModel()
    v.x = pyo.Var(domain=NN)
    v.a, v.b, v.c = (pyo.Var(domain=pyo.Binary) for _ in range(3))
    v.sum6 = pyo.Constraint(expr=3 * v.a + 5 * v.b + 4 * v.c == 6)
    v.link = pyo.Constraint(expr=v.x - v.a - v.b >= 0)
    v.o = pyo.Objective(expr=v.x, sense=pyo.maximize)
    r = HighsBackend(v).solve()
    assert r.status == "infeasible" and r.highs_status == "kUnboundedOrInfeasible"


def hard_knapsack(n=60, k=5, seed=7):
    """Multi-constraint 0/1 knapsack, weights 20..100, each capacity half the row's total weight."""
    rng = random.Random(seed)
    w = [[rng.randint(20, 100) for _ in range(n)] for _ in range(k)]
    v = [sum(w[r][i] for r in range(k)) // k + rng.randint(0, 10) for i in range(n)]
    m = pyo.ConcreteModel()
    m.I, m.R = pyo.RangeSet(0, n - 1), pyo.RangeSet(0, k - 1)
    m.x = pyo.Var(m.I, domain=pyo.Binary)
    m.cap = pyo.Constraint(m.R, rule=lambda m, r: sum(w[r][i] * m.x[i] for i in m.I) <= sum(w[r]) // 2)
    m.o = pyo.Objective(expr=sum(v[i] * m.x[i] for i in m.I), sense=pyo.maximize)
    return m, w, v


def test_request_stop_ends_a_run_as_a_limit_not_as_ctrl_c():
    # a HiGHS callback asks the backend to stop once an incumbent exists (as a CPU-time budget or
    # row generation's stopping rule do): the run returns its incumbent and bound like a time
    # limit (proving the optimum takes ~4 s, see below), no KeyboardInterrupt (that is for Ctrl-C)
    m, w, v = hard_knapsack()
    b = HighsBackend(m)

    def stop(e) -> None:
        if e.data_out.mip_primal_bound > 0:
            b.request_stop()
            e.interrupt()

    b.highs.cbMipInterrupt.subscribe(stop)
    try:
        r = b.solve(mip_gap=0.0, threads=1)
    finally:
        b.highs.cbMipInterrupt.unsubscribe(stop)
    assert r.status == "time_limit_with_incumbent" and r.highs_status == "kInterrupt"
    assert r.has_solution and r.best_bound > r.objective > 0
    x = [round(t) for t in r.values]
    assert all(sum(w[k][i] * x[i] for i in range(60)) <= sum(w[k]) // 2 for k in range(5))
    assert r.objective == pytest.approx(sum(v[i] * x[i] for i in range(60)))
    # the next run starts afresh: no stop left over
    assert b.solve(mip_gap=0.05, threads=1).status == "optimal"


def test_time_limit_returns_incumbent_with_gap():
    # Run by hand: 0.2 s stops at 2006 vs bound 2027; proving 2019 optimal takes ~4 s on 1 thread.
    m, w, v = hard_knapsack()
    b = HighsBackend(m)
    r = b.solve(time_limit_s=0.2, mip_gap=0.0, threads=1)
    assert r.status == "time_limit_with_incumbent"
    assert r.has_solution and len(r.values) == 60
    assert r.gap > 0 and r.best_bound > r.objective
    assert r.gap == pytest.approx((r.best_bound - r.objective) / abs(r.objective), rel=1e-6)
    # the incumbent is a real 0/1 point: recompute its value and weights in pure Python
    pick = [round(x) for x in r.values]
    i_of = {id(m.x[i]): i for i in m.I}
    by_item = [0] * 60
    for col, var in enumerate(b.columns):
        by_item[i_of[id(var)]] = pick[col]
    assert sum(vi * s for vi, s in zip(v, by_item)) == pytest.approx(r.objective, abs=1e-6)
    assert all(sum(wr[i] * by_item[i] for i in range(60)) <= sum(wr) // 2 for wr in w)


def test_time_limit_without_incumbent():
    # a zero time limit stops HiGHS before any heuristic: nothing to return, and reading says so
    m, _, _ = hard_knapsack()
    b = HighsBackend(m)
    r = b.solve(time_limit_s=0.0, mip_gap=0.0)
    assert r.status == "time_limit_no_solution" and not r.has_solution
    assert math.isnan(r.objective) and r.gap == math.inf
    with pytest.raises(RuntimeError, match="time_limit_no_solution"):
        b.load_solution()


def test_mip_start_full_and_partial():
    m, (best_value, best_pick) = knapsack()
    b = HighsBackend(m)
    log = []
    b.highs.setOptionValue("log_to_console", False)  # log=True then goes to the callback only
    b.highs.cbLogging.subscribe(lambda e: log.append(e.message))
    start = ComponentMap((m.x[i], best_pick[i]) for i in m.I)
    r = b.solve(mip_start=start, mip_gap=0.0, log=True)
    assert r.status == "optimal" and r.objective == pytest.approx(best_value)
    assert any("MIP start solution is feasible, objective value is 28" in s for s in log)
    log.clear()
    # partial: items 0 and 1 only; HiGHS completes the rest (best completion adds item 3 -> 28)
    r = b.solve(mip_start=[(m.x[0], 1), (m.x[1], 1)], mip_gap=0.0, log=True)
    assert r.status == "optimal" and r.objective == pytest.approx(best_value)
    assert any("MIP start solution is feasible, objective value is 28" in s for s in log)


def param_model():
    # max p_cost*x + 2y s.t. c1: x + p_coef*y <= p_rhs; c2: x + y <= 3; x, y >= 0, n integer <= 2.5
    m = pyo.ConcreteModel()
    m.p_cost = pyo.Param(initialize=3.0, mutable=True)
    m.p_coef = pyo.Param(initialize=2.0, mutable=True)
    m.p_rhs = pyo.Param(initialize=4.0, mutable=True)
    m.x, m.y = pyo.Var(domain=NN), pyo.Var(domain=NN)
    m.n = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(0, 2.5))
    m.c1 = pyo.Constraint(expr=m.x + m.p_coef * m.y <= m.p_rhs)
    m.c2 = pyo.Constraint(expr=m.x + m.y + m.n <= 3)
    m.o = pyo.Objective(expr=m.p_cost * m.x + 2 * m.y + 0.5 * m.n + 1, sense=pyo.maximize)
    return m


def test_update_matches_fresh_backend():
    m = param_model()
    b = HighsBackend(m)
    r0 = b.solve(mip_gap=0.0)
    # Initial, by hand: n=0: c1 x+2y<=4, c2 x+y<=3 -> vertices (3,0)->9, (2,1)->8, (0,2)->4: 9 (+1) = 10;
    # n=1: x+y<=2 -> (2,0) -> 6 + 0.5 = 6.5 (+1); n=2 -> worse. Optimum 10.
    assert r0.objective == pytest.approx(10.0, abs=1e-9)
    m.p_cost.value, m.p_rhs.value, m.p_coef.value = 1.0, 5.0, 1.5
    stats = b.update()
    assert not stats.full_repass
    assert (stats.changed_costs, stats.changed_row_bounds, stats.changed_coeffs) == (1, 1, 1)
    r1 = b.solve(mip_gap=0.0)
    fresh = HighsBackend(m).solve(mip_gap=0.0)
    assert r1.status == fresh.status == "optimal"
    assert r1.objective == pytest.approx(fresh.objective, rel=1e-9)
    # By hand: max x + 2y + 0.5n + 1: n=0: x+1.5y<=5, x+y<=3 -> (0,3): 6 (+1) = 7 beats (3,0) 3 and
    # (0, 10/3) infeasible for c2; n=1: (0,2) -> 4.5 (+1). Optimum 7.
    assert r1.objective == pytest.approx(7.0, abs=1e-9)
    # a coefficient turning to zero changes the sparsity pattern: full re-pass, still correct
    m.p_coef.value = 0.0
    stats = b.update()
    assert stats.full_repass
    r2 = b.solve(mip_gap=0.0)
    # c1 is now x <= 5; c2 binds: (0,3) -> 6 (+1) = 7 still; equal to a fresh backend
    assert r2.objective == pytest.approx(HighsBackend(m).solve(mip_gap=0.0).objective, rel=1e-9)
    assert r2.objective == pytest.approx(7.0, abs=1e-9)


def test_params_only_updates_walk_the_changed_rows_and_solve_as_a_fresh_backend():
    m = param_model()
    b = HighsBackend(m)
    assert b.solve(mip_gap=0.0).objective == pytest.approx(10.0, abs=1e-9)
    m.p_cost.value, m.p_rhs.value, m.p_coef.value = 1.0, 5.0, 1.5
    first = b.update(params_only=True)  # the first compiles the whole model (and records the Params)
    assert not first.recompiled and not first.full_repass
    assert b.solve(mip_gap=0.0).objective == pytest.approx(7.0, abs=1e-9)  # by hand above
    m.p_cost.value = 3.0  # back to the first objective, with the second point's rows
    second = b.update(params_only=True)
    assert second.recompiled and (second.changed_costs, second.changed_row_bounds, second.changed_coeffs) == (1, 0, 0)
    # by hand: max 3x + 2y + 0.5n + 1 on x + 1.5y <= 5, x + y + n <= 3: n = 0: (3, 0) -> 9 (+1) = 10
    r = b.solve(mip_gap=0.0)
    assert r.objective == pytest.approx(10.0, abs=1e-9)
    assert r.objective == pytest.approx(HighsBackend(m).solve(mip_gap=0.0).objective, rel=1e-12)
    m.p_coef.value = 0.0  # the sparsity changes: the recompile declines, a full compile and re-pass
    third = b.update(params_only=True)
    assert not third.recompiled and third.full_repass
    assert b.solve(mip_gap=0.0).objective == pytest.approx(HighsBackend(m).solve(mip_gap=0.0).objective, rel=1e-12)


def test_fixed_vars_objective_constant_and_errors():
    # fixed Vars leave the columns; their contribution moves into the constant and rhs.
    # min x + 4w + 2 s.t. x + w >= 3, w fixed at 1 -> x >= 2 -> 2 + 4 + 2 = 8.
    m = pyo.ConcreteModel()
    m.x, m.w = pyo.Var(domain=NN), pyo.Var(domain=NN)
    m.w.fix(1)
    m.c = pyo.Constraint(expr=m.x + m.w >= 3)
    m.o = pyo.Objective(expr=m.x + 4 * m.w + 2)
    b = HighsBackend(m)
    with pytest.raises(RuntimeError, match="no solution"):
        b.values()
    r = b.solve()
    assert r.objective == pytest.approx(8.0, abs=1e-9)
    assert b.n_cols == 1 and b.value_of(m.w) == 1.0 and b.value_of(m.x) == pytest.approx(2.0)
    assert r.status in STATUSES
    m.o2 = pyo.Objective(expr=m.x)
    with pytest.raises(ValueError, match="2 active objectives"):
        HighsBackend(m)


def test_update_warm_starts_from_previous_incumbent():
    m = param_model()
    b = HighsBackend(m)
    assert b.solve(mip_gap=0.0).objective == pytest.approx(10.0, abs=1e-9)  # x=3, y=0, n=0 (see above)
    assert b.value_of(m.x) == pytest.approx(3.0) and b.value_of(m.n) == pytest.approx(0.0)
    log = []
    b.highs.setOptionValue("log_to_console", False)
    b.highs.cbLogging.subscribe(lambda e: log.append(e.message))
    # objective-only change: the whole old point is the start; under cost 1 it is worth 3 + 1 = 4
    m.p_cost.value = 1.0
    b.update()
    with pytest.raises(RuntimeError, match="no solution"):
        b.values()  # the old solution is forgotten by update()
    r = b.solve(mip_gap=0.0, log=True)
    assert any("MIP start solution is feasible, objective value is 4" in s for s in log)
    # new optimum by hand: n=0: (0,2) -> 4 (+1) = 5, (2,1) -> 5; n=1: x+y<=2, x+2y<=4 -> (0,2):
    # 4 + 0.5 (+1) = 5.5; n=2: (0,1) -> 2 + 1 (+1) = 4. Optimum 5.5.
    assert r.objective == pytest.approx(5.5, abs=1e-9)
    log.clear()
    # a rhs change: only the integer values (n=1) are offered; HiGHS completes x, y by an LP
    m.p_rhs.value = 6.0
    b.update()
    r = b.solve(mip_gap=0.0, log=True)
    assert any("solving LP for user-supplied values of discrete variables" in s for s in log)
    # by hand: n=1: x+y<=2 -> (0,2) -> 5.5; n=0: x+2y<=6, x+y<=3 -> (0,3) -> 6 (+1) = 7. Optimum 7.
    assert r.objective == pytest.approx(7.0, abs=1e-9)
    assert r.objective == pytest.approx(HighsBackend(m).solve(mip_gap=0.0).objective, rel=1e-9)
