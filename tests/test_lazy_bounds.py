"""Lazily enforced lower bounds (HighsBackend.solve(lazy_lower=...)) and the lazy cash floor of solve().

The lazy solve must give the same optimum as the direct one: it only changes how the bounds are
handed to HiGHS (relaxation first, then the violated bounds added round by round, or a repaired
plan), never the model.
"""

from __future__ import annotations

import math

import highspy
import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer.instance import Instance
from optimizer.solve import solve
from optimizer.solve.backend import BackendResult, HighsBackend


def _budget_model(cash_start: float) -> pyo.ConcreteModel:
    """Three projects a, b, c (binary) worth 5, 4, 3. Period 1 spends 6a + 4b from cash_start;
    period 2 earns 3 and spends 5c. cash1, cash2 >= 0 are the lazily enforced floors."""
    m = pyo.ConcreteModel()
    m.a, m.b, m.c = (pyo.Var(domain=pyo.Binary) for _ in range(3))
    m.cash1 = pyo.Var(bounds=(0, None))
    m.cash2 = pyo.Var(bounds=(0, None))
    m.bal1 = pyo.Constraint(expr=m.cash1 == cash_start - 6 * m.a - 4 * m.b)
    m.bal2 = pyo.Constraint(expr=m.cash2 == m.cash1 + 3 - 5 * m.c)
    m.obj = pyo.Objective(expr=5 * m.a + 4 * m.b + 3 * m.c, sense=pyo.maximize)
    return m


def _lazy(b: HighsBackend, m) -> list[int]:
    return [b.column_index(m.cash1), b.column_index(m.cash2)]


def test_binding_floor_gives_the_full_optimum():
    # cash_start 10. Without floors all three (12) would be taken, but then cash2 = 10 - 10 + 3 - 5 = -2.
    # Feasible sets: {a,b}: cash1 = 0, cash2 = 3 -> 9; {a,c}: cash1 = 4, cash2 = 2 -> 8;
    # {b,c}: cash1 = 6, cash2 = 4 -> 7; singletons are worth less. Optimum 9 with {a, b}.
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m))
    assert r.status == "optimal"
    assert r.objective == pytest.approx(9.0)
    # round 1 (no floor) took all three: cash2 = -2 < 0, and fixing a = b = c = 1 cannot be repaired;
    # cash2 joins with its neighbour cash1 (window 1): round 2 is the full model
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("row generation", 2, 2)
    b.load_solution()
    assert (pyo.value(m.a), pyo.value(m.b), pyo.value(m.c)) == (1, 1, 0)
    assert pyo.value(m.cash2) == pytest.approx(3.0)
    assert r.best_bound >= 9.0 - 1e-9  # a valid bound for the full model


def test_only_the_violated_bound_is_added_without_neighbours():
    # window 0: round 2 enforces cash2 >= 0 alone, i.e. 6a + 4b + 5c <= 13 (cash1 free):
    # {a,b} 10 -> 9, {a,c} 11 -> 8, {b,c} 9 -> 7: {a, b} again, and its cash1 = 0 satisfies the
    # floor never added, so the loop ends with one bound of two enforced
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), lazy_window=0)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(9.0)
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("row generation", 2, 1)


def test_a_second_solve_starts_from_the_bounds_the_first_one_needed():
    # the backend remembers which lazy bounds ended the last solve of the same columns: the
    # re-solve enforces them from the start, so its first round is already the answer
    m = _budget_model(10.0)
    b = HighsBackend(m)
    assert b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m)).lazy_rounds == 2
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m))
    assert (r.status, r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("optimal", "relaxation", 1, 2)
    assert r.objective == pytest.approx(9.0)


def test_chains_take_neighbours_within_their_own_chain_only():
    # chains [cash1] and [cash2]: a violated cash2 brings no neighbour (cash1 is another chain)
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=[[b.column_index(m.cash1)], [b.column_index(m.cash2)]], lazy_window=1)
    assert (r.objective, r.lazy_rounds, r.lazy_rows) == (pytest.approx(9.0), 2, 1)


def test_an_unbounded_relaxation_is_followed_by_the_full_model():
    # max x + y, cash = 10 - x >= 0 (lazy), y binary: without the floor x grows without limit;
    # with it x = 10, y = 1: 11
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, None))
    m.y = pyo.Var(domain=pyo.Binary)
    m.cash = pyo.Var(bounds=(0, None))
    m.bal = pyo.Constraint(expr=m.cash == 10 - m.x)
    m.obj = pyo.Objective(expr=m.x + m.y, sense=pyo.maximize)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=[b.column_index(m.cash)])
    assert r.status == "optimal"
    assert r.objective == pytest.approx(11.0)
    assert (r.lazy_rounds, r.lazy_rows) == (2, 1)


def test_negative_window_is_refused():
    m = _budget_model(10.0)
    b = HighsBackend(m)
    with pytest.raises(ValueError, match="lazy_window"):
        b.solve(lazy_lower=_lazy(b, m), lazy_window=-1)


def test_floor_not_binding_is_solved_once():
    # cash_start 20: all three fit (cash1 = 20 - 10 = 10, cash2 = 10 + 3 - 5 = 8): optimum 12
    m = _budget_model(20.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m))
    assert r.status == "optimal"
    assert r.objective == pytest.approx(12.0)
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("relaxation", 1, 0)


def test_infeasible_floor_stays_infeasible():
    # cash_start -1: even with nothing taken cash1 = -1 < 0
    m = _budget_model(-1.0)
    b = HighsBackend(m)
    assert b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m)).status == "infeasible"


def test_lazy_cash_equals_direct_cash_on_a_case_where_cash_binds():
    # case_treasury_gas with 1,000 BTC in treasury instead of 5,000: 20 M$ of cash above the
    # minimum and ~309 M$ of conversion capex, so the floor binds (capex can only be paid by
    # selling treasury BTC, and 1,000 BTC are not enough). Same optimum either way. (With 5,000 BTC
    # the optimum now sells them all in 2026-04, a sale that cannot depend on the scenario, and
    # cash never nears the floor.)
    from optimizer.solve import backend as hb

    inst = Instance.from_yaml("instances/case_treasury_gas.yaml").with_overrides({"treasury.btc_held_start": 1000})
    opts = dict(mip_gap=1e-6, threads=1, baselines=False, shadow_prices=False, value_of_information=False)
    paths, solve0 = [], hb.HighsBackend.solve

    def spy(b, *a, **k):
        r = solve0(b, *a, **k)
        paths.append(r.lazy_path)
        return r

    hb.HighsBackend.solve = spy
    try:
        lazy = solve(inst, lazy_cash=True, **opts)
    finally:
        hb.HighsBackend.solve = solve0
    assert paths in (["row generation"], ["repaired"])  # the floor binds: the relaxation's plan breaks it
    direct = solve(inst, lazy_cash=False, **opts)
    assert lazy.status == direct.status == "optimal"
    assert lazy.objective_usd == pytest.approx(direct.objective_usd, rel=2e-6)
    lazy.verify()


# ---------------------------------------------------------------- the cash floor of a forced instance
# tests/instances/forced_lease.yaml (see tests/test_forced.py (a) and (g)): one 10-rack block (capex
# 1 M$ in each of its 2 lead months) lets L1 (NOI 270,000 a month for 24 months) start in its
# window Apr-Jun 2026. Mining nets 4 USD x 1000 units a day: 124,000 / 112,000 / 124,000 / 120,000 /
# 124,000 / 120,000 (Jan..Jun). With cash start C and floor 100,000 the cumulative net cash must stay
# >= 100,000 - C. April hand-over (capex Feb + Mar): lowest point Mar 124,000 + 112,000 - 1 M$ +
# 124,000 - 1 M$ = -1,640,000, needs C >= 1,740,000. May (capex Mar + Apr): lowest -1,520,000 in Apr,
# needs C >= 1,620,000. June (capex Apr + May): 360,000 - 880,000 - 876,000 = -1,396,000 in May,
# needs C >= 1,496,000. Without the floor April wins (test_forced (a)); the floor is what moves it.

DAYS = [31, 28, 31, 30, 31, 30]
DF = [1.01 ** -(t + 1) for t in range(6)]  # forced_lease's discount rate is 1.01^12 - 1
MINING = [4.0 * 1000 * d for d in DAYS]
MAY_NPV = (sum(x * f for x, f in zip([124_000, 112_000, 124_000 - 1_000_000, 120_000 - 1_000_000, 394_000, 390_000], DF))
           + sum(270_000 * 1.01 ** -k for k in range(1, 23)) * DF[5])  # NOI 2 months inside, 22 after
MINING_NPV = sum(x * f for x, f in zip(MINING, DF))


def _forced_cash(cash_start: float, scenarios: int = 1) -> Instance:
    inst = Instance.from_yaml("tests/instances/forced_lease.yaml").with_overrides(
        {"treasury.cash_start_usd": cash_start, "treasury.min_cash_usd": 100_000})
    if scenarios == 1:
        return inst
    raw = inst.model_dump(mode="json", exclude_none=True)  # the same scenario twice, probability 0.5 each
    sc = raw["scenarios"][0]
    raw["scenarios"] = [{**sc, "name": f"s{k}", "probability": 1 / scenarios} for k in range(scenarios)]
    return Instance.from_dict(raw)


def _solve_both(inst: Instance):
    from optimizer.solve import backend as hb

    opts = dict(mip_gap=0.0, threads=1, baselines=False, mip_start=False, shadow_prices=False, value_of_information=False)
    seen, solve0 = [], hb.HighsBackend.solve

    def spy(b, *a, **k):
        r = solve0(b, *a, **k)
        seen.append(r)
        return r

    hb.HighsBackend.solve = spy
    try:
        rowgen = solve(inst, lazy_cash=True, **opts)
        allrows = solve(inst, lazy_cash=False, **opts)
    finally:
        hb.HighsBackend.solve = solve0
    return rowgen, allrows, seen[0]


@pytest.mark.parametrize("scenarios", [1, 2])
def test_row_generation_equals_all_rows_where_the_floor_delays_the_lease(scenarios):
    # C = 1,739,000: April is 1,000 short, May fits: NPV MAY_NPV (hand value above), both ways
    # Round 1 (no floor) hands over in April: cash in March 1,739,000 - 1,640,000 = 99,000 < 100,000,
    # every other month above (Feb 975,000, Apr 489,000); its integers cannot be repaired (less
    # mining only lowers cash). March joins with Feb and Apr (window 1) in each scenario: 3 rows a
    # scenario. Round 2 hands over in May, whose cash never dips below 100,000 (Apr 219,000): done.
    rowgen, allrows, r = _solve_both(_forced_cash(1_739_000, scenarios))
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("row generation", 2, 3 * scenarios)
    for res in (rowgen, allrows):
        assert res.status == "optimal"
        assert res.plan.leases[["lease", "month"]].values.tolist() == [["L1", "2026-05"]]
        assert res.npv_usd == pytest.approx(MAY_NPV, rel=1e-9)
        assert res.objective_usd == pytest.approx(MAY_NPV, rel=1e-9)
        res.verify()


def test_row_generation_equals_all_rows_where_the_floor_forbids_the_conversion():
    # C = 1,450,000 < 1,496,000: no hand-over month fits the floor, nothing is converted; NPV is
    # mining alone, discounted: sum 4 x 1000 x days_t x 1.01^-(t+1)
    # Round 1: April, March at 1,450,000 - 1,640,000 = -190,000: Feb, Mar, Apr added. Round 2: April
    # is out (March), May too (April at 1,450,000 - 1,520,000 = -70,000), June's May dips to
    # 1,450,000 + 360,000 - 880,000 + 124,000 - 1,000,000 = 54,000 < 100,000: May and Jun added (Apr
    # already), 5 rows. Round 3: no hand-over month is left; mining alone satisfies every row.
    rowgen, allrows, r = _solve_both(_forced_cash(1_450_000))
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("row generation", 3, 5)
    for res in (rowgen, allrows):
        assert res.status == "optimal"
        assert len(res.plan.leases) == 0
        assert float(res.plan.conversions["blocks"].sum()) == 0
        assert res.npv_usd == pytest.approx(MINING_NPV, rel=1e-9)
        res.verify()


def test_neighbourhood_search_keeps_where_incumbent_and_lp_agree():
    # cash_start 10, both floors enforced. The incumbent of a round without floors takes all three
    # (a, b, c) = (1, 1, 1), which no LP repair can keep (cash2 = -2 with the integers fixed). The LP
    # relaxation under the floors: b (4 per 4 of cash) and a (5 per 6) fill period 1 exactly
    # (6 + 4 = 10); period 2 earns 3, so c = 3/5 = 0.6: (1, 1, 0.6), worth 9 + 1.8 = 10.8.
    # They agree on a = b = 1 (fixed); c is free and must be 0: the plan {a, b}, worth 9 (the optimum).
    m = _budget_model(10.0)
    b = HighsBackend(m)
    lp = b._relaxation(None)
    assert lp[[b.column_index(v) for v in (m.a, m.b, m.c)]] == pytest.approx([1.0, 1.0, 0.6])
    x = lp.copy()
    x[[b.column_index(v) for v in (m.a, m.b, m.c)]] = 1.0
    obj, y = b._neighbourhood(x, lp, None, 0.0, None)
    assert obj == pytest.approx(9.0)
    assert y[[b.column_index(v) for v in (m.a, m.b, m.c)]] == pytest.approx([1.0, 1.0, 0.0])
    # the bounds of the fixed integers are given back: the full model still reaches its optimum 9
    # and, with the floor off, 12
    assert b.solve(mip_gap=0.0).objective == pytest.approx(9.0)
    # an incumbent whose integers are the LP's has no neighbourhood to search
    assert b._neighbourhood(np.round(lp), np.round(lp), None, 0.0, None) is None


def test_an_lp_after_long_runs_gets_its_own_time_limit():
    # HiGHS compares an LP's time limit with its run clock, which adds up all earlier runs of the
    # same Highs object: after more than 1 s of runs, an LP given 0.5 s used to stop at once
    # ("time limit reached", no solution). The LP helpers offset the limit by that clock.
    m = _budget_model(10.0)
    b = HighsBackend(m)
    for _ in range(100_000):
        if b.highs.getRunTime() > 1.0:
            break
        b.solve(mip_gap=0.0)
    assert b.highs.getRunTime() > 1.0
    lp = b._relaxation(0.5)  # a 3-variable LP: milliseconds
    assert lp is not None
    assert lp[b.column_index(m.c)] == pytest.approx(0.6)
    assert b.fix_integers_and_solve_lp(time_limit_s=0.5).status == "optimal"


def test_the_lps_between_rounds_run_in_a_scratch_copy_with_the_backends_bounds_and_options():
    # The LP relaxation and the repair LP run in a copy of the model as it stands (solve/backend.py,
    # `_on_scratch`): they see the bounds set on the backend's Highs (here the floor cash2 >= 0 lifted
    # to cash2 >= 2.5), leave that Highs untouched (still a MIP, not run) and carry its options.
    m = _budget_model(10.0)
    b = HighsBackend(m)
    cash2 = b.column_index(m.cash2)
    b.highs.changeColsBounds(1, np.array([cash2], dtype=np.int32), np.array([2.5]), np.array([math.inf]))
    # LP with cash2 >= 2.5: b (4 per 4) and a (5 per 6) fill period 1 (cash1 = 0); period 2 leaves
    # 3 - 5c >= 2.5, so c = 0.1: (1, 1, 0.1), worth 9.3
    lp = b._relaxation(None)
    assert lp[[b.column_index(v) for v in (m.a, m.b, m.c)]] == pytest.approx([1.0, 1.0, 0.1])
    # a = b = 1, c = 0 fixed: cash1 = 0, cash2 = 3 >= 2.5, worth 9; a = b = c = 1 cannot be repaired
    x = np.zeros(b.n_cols)
    x[[b.column_index(v) for v in (m.a, m.b)]] = 1.0
    obj, y = b._repair_lp(x, None)
    assert obj == pytest.approx(9.0) and y[cash2] == pytest.approx(3.0)
    x[b.column_index(m.c)] = 1.0
    assert b._repair_lp(x, None) is None
    lp_model = b.highs.getLp()
    assert [int(t) for t in lp_model.integrality_] == [int(t) for t in b._sf.integrality]  # still the MIP
    assert b.highs.getModelStatus() == highspy.HighsModelStatus.kNotset  # nothing ran in it
    assert lp_model.col_lower_[cash2] == 2.5  # the bound set on it is kept
    # the options of the backend's Highs (a caller's raw HiGHS options) are the copy's; the LP's own
    # settings are its: a time limit on its own clock, presolve on
    b.highs.setOptionValue("simplex_iteration_limit", 1234)
    b.highs.setOptionValue("presolve", "off")
    seen = []
    run = b._run
    b._run = lambda h=None: (seen.append((h is not b.highs, _option(h, "simplex_iteration_limit"),
                                          _option(h, "presolve"), _option(h, "time_limit"))), run(h))[1]
    b._relaxation(7.0)
    assert seen == [(True, 1234, "on", 7.0)]


def _option(h, name):
    got = h.getOptionValue(name)
    return got[1] if isinstance(got, tuple) else got


def _keep_model() -> pyo.ConcreteModel:
    """A commitment a (binary, worth 5 but costing 1 of the 2 units of capacity) and a recourse
    z (binary: keep the rest running, worth t <= 3 z and t <= 3 - 1.5 a)."""
    m = pyo.ConcreteModel()
    m.a = pyo.Var(domain=pyo.Binary)
    m.z = pyo.Var(domain=pyo.Binary)
    m.t = pyo.Var(bounds=(0, None))
    m.keep = pyo.Constraint(expr=m.t <= 3 * m.z)
    m.cap = pyo.Constraint(expr=m.t <= 3 - 1.5 * m.a)
    m.obj = pyo.Objective(expr=5 * m.a + m.t, sense=pyo.maximize)
    return m


def test_polish_reoptimises_the_recourse_and_keeps_the_commitments():
    # A heuristic's plan (a, z, t) = (0, 0, 0) is worth 0. Polishing with z free keeps a = 0 (a
    # commitment) and sets z = 1, t = 3: worth 3 (the optimum, a = 1, would be 5 + 1.5 = 6.5).
    # From (1, 0, 0): z = 1, t = 1.5, worth 6.5.
    m = _keep_model()
    b = HighsBackend(m)
    col = {v.name: b.column_index(v) for v in (m.a, m.z, m.t)}
    x = np.zeros(3)
    obj, y = b._polish(x, np.array([col["z"]]), None, None)
    assert obj == pytest.approx(3.0)
    assert (y[col["a"]], y[col["z"]], y[col["t"]]) == (pytest.approx(0.0), pytest.approx(1.0), pytest.approx(3.0))
    x[col["a"]] = 1.0
    assert b._polish(x, np.array([col["z"]]), None, None)[0] == pytest.approx(6.5)
    # the commitments' bounds are given back: a free solve finds the optimum 6.5 with a = 1
    r = b.solve(mip_gap=0.0)
    assert r.objective == pytest.approx(6.5)
    b.load_solution()
    assert pyo.value(m.a) == 1


def test_a_polished_answer_replaces_a_worse_one_and_gets_its_gap_back():
    # An answer (0, 0, 0) worth 0 with a bound of 6.5 (gap 100 %) becomes (0, 1, 3), worth 3; the
    # gap is recomputed against the same bound: (6.5 - 3) / 3.
    m = _keep_model()
    b = HighsBackend(m)
    r = BackendResult("time_limit_with_incumbent", 0.0, 6.5, math.inf, 0.0, np.zeros(3), "Time limit reached")
    p = b._polished(r, [b.column_index(m.z)], None, 0.005, None)
    assert p.objective == pytest.approx(3.0)
    assert p.gap == pytest.approx((6.5 - 3.0) / 3.0)
    assert p.status == "time_limit_with_incumbent"
    # without recourse columns named, nothing is polished
    r2 = BackendResult("time_limit_with_incumbent", 0.0, 6.5, math.inf, 0.0, np.zeros(3), "Time limit reached")
    assert b._polished(r2, None, None, 0.005, None).objective == 0.0


def test_lp_rounds_enforce_what_the_relaxation_breaks_before_the_first_mip_round():
    # The LP without floors takes a = b = c = 1 (worth 12): cash1 = 10 - 10 = 0 keeps its floor,
    # cash2 = 0 + 3 - 5 = -2 breaks it, so cash2 and its neighbour cash1 are enforced; the LP then
    # keeps both (1, 1, 0.6). The first MIP round already has both floors: the optimum 9, one round.
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), lazy_lp_rounds=True)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(9.0)
    assert (r.lazy_path, r.lazy_rounds, r.lazy_rows) == ("relaxation", 1, 2)
