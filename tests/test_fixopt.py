"""Fix-and-optimize over blocks of columns (solve/fixopt.py), in the parent and in the portfolio's child.

What must hold: a step frees the shared columns and `BLOCKS_PER_STEP` blocks and fixes every other
column at the plan's value (inside its bounds, integers whole); every plan it keeps is feasible and
strictly better; a pass that improves nothing ends the search; with blocks that do not interact
one pass reaches each block's own optimum. The child, whose full model never finished its root,
spends its search on fix-and-optimize and runs no second full MIP; the pipeline labels a column
with the site in its index, and the company's columns with -1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest
from test_portfolio import _highs, _worker

from optimizer.solve import fixopt
from optimizer.solve.backend import HighsBackend

# three sites, each with items p (worth 3, weight 2) and q (worth 4, weight 3) under its own
# capacity 2p + 3q <= W_s, W = (2, 3, 5); the company's cash is the sum of what they earn. By hand:
# site 0 takes p (3; q does not fit), site 1 takes q (4 > 3; both weigh 5), site 2 both (7): 14.
W = (2, 3, 5)
OPTIMUM = 14.0
BEST = {0: (1, 0), 1: (0, 1), 2: (1, 1)}


def _sites_model(shared_cap: float = 100.0) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.S = pyo.Set(initialize=range(3))
    m.p = pyo.Var(m.S, domain=pyo.Binary)
    m.q = pyo.Var(m.S, domain=pyo.Binary)
    m.cash = pyo.Var(bounds=(0, None))
    m.cap = pyo.Constraint(m.S, rule=lambda m, s: 2 * m.p[s] + 3 * m.q[s] <= W[s])
    m.earn = pyo.Constraint(expr=m.cash == sum(3 * m.p[s] + 4 * m.q[s] for s in m.S))
    m.shared = pyo.Constraint(expr=sum(2 * m.p[s] + 3 * m.q[s] for s in m.S) <= shared_cap)
    m.obj = pyo.Objective(expr=m.cash, sense=pyo.maximize)
    return m


def _blocks(b: HighsBackend, m) -> np.ndarray:
    out = np.full(b.n_cols, -1, dtype=np.int32)
    for s in m.S:
        out[b.column_index(m.p[s])] = out[b.column_index(m.q[s])] = s
    return out


def test_with_blocks_that_do_not_interact_one_pass_reaches_each_blocks_optimum():
    m = _sites_model()
    b = HighsBackend(m)
    x0 = np.zeros(b.n_cols)  # nothing taken: feasible, worth 0
    r = b._fix_and_optimize((0.0, x0), _blocks(b, m), 30.0, 0.0, None)
    assert r is not None and r[0] == pytest.approx(OPTIMUM)
    x = r[1]
    for s, (p, q) in BEST.items():
        assert (round(x[b.column_index(m.p[s])]), round(x[b.column_index(m.q[s])])) == (p, q)
    assert x[b.column_index(m.cash)] == pytest.approx(OPTIMUM)  # the shared column followed


def test_a_plan_that_cannot_be_improved_gives_none():
    m = _sites_model()
    b = HighsBackend(m)
    x = np.zeros(b.n_cols)
    for s, (p, q) in BEST.items():
        x[b.column_index(m.p[s])], x[b.column_index(m.q[s])] = p, q
    x[b.column_index(m.cash)] = OPTIMUM
    assert b._fix_and_optimize((OPTIMUM, x), _blocks(b, m), 30.0, 0.0, None) is None


def test_a_shared_row_keeps_every_step_feasible():
    # the company's row sum of weights <= 5: with it, 14 (weight 2 + 3 + 5 = 10) is out of reach;
    # the best plans weigh at most 5: q at site 1 and p at site 2 (4 + 3 = 7) or site 2's p and q (7)
    m = _sites_model(shared_cap=5.0)
    b = HighsBackend(m)
    r = b._fix_and_optimize((0.0, np.zeros(b.n_cols)), _blocks(b, m), 30.0, 0.0, None)
    assert r is not None
    obj, x = r
    sf = b._sf
    assert np.all(sf.A @ x <= sf.row_upper + 1e-6) and np.all(sf.A @ x >= sf.row_lower - 1e-6)
    assert 0.0 < obj <= 7.0 + 1e-9
    assert obj == pytest.approx(x[b.column_index(m.cash)])


class _Recorder:
    """A sub-MIP that finds nothing and records what each step fixed."""

    def __init__(self):
        self.calls = []

    def __call__(self, fix, values, limit, start):
        self.calls.append((fix.copy(), values.copy(), limit))
        return None


def test_a_step_fixes_the_other_blocks_inside_their_bounds_and_frees_the_shared_columns():
    # five blocks (two columns each) and two shared columns (-1); column 0 is an integer at
    # 0.9999999 and column 3 a continuous value 1e-9 above its upper bound 1
    blocks = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1, -1], dtype=np.int32)
    x = np.array([0.9999999, 0.5, 0.0, 1.0 + 1e-9, 1, 0, 2, 0.25, 0, 1, 7.0, -3.0])
    lower, upper = np.zeros(12), np.full(12, 1.0)
    upper[6] = 5.0
    lower[10:] = -math.inf
    upper[10:] = math.inf
    integer = np.zeros(12, dtype=bool)
    integer[[0, 4, 6]] = True
    rec = _Recorder()
    assert fixopt.fix_and_optimize(rec, x, 1.0, blocks, lower, upper, integer, 60.0, True) is None
    # first the continuous part: every integer fixed (rounded), for max(10 s, 0.3 x 60 s) = 18 s
    fix, values, limit = rec.calls.pop(0)
    assert fix.tolist() == [0, 4, 6] and values.tolist() == [1.0, 1.0, 2.0]
    assert limit == pytest.approx(max(fixopt.STEP_LIMIT_S, fixopt.CONTINUOUS_SHARE * 60.0), abs=1e-3)
    # then one pass over the five blocks, two at a time (2 + 2 + 1); it stops: nothing improved
    assert len(rec.calls) == 3
    freed = []
    for fix, values, limit in rec.calls:
        assert not np.isin([10, 11], fix).any()  # the shared columns are never fixed
        assert np.all(values >= lower[fix]) and np.all(values <= upper[fix])
        assert np.all(values[integer[fix]] == np.round(values[integer[fix]]))
        assert 0 < limit <= fixopt.STEP_LIMIT_S
        freed.append(sorted(set(range(5)) - set(blocks[fix].tolist())))
    assert sorted(sum(freed, [])) == [0, 1, 2, 3, 4]  # each block freed once in the pass
    assert [len(f) for f in freed] == [2, 2, 1]
    for fix, values, _ in rec.calls:
        where = dict(zip(fix.tolist(), values.tolist()))
        assert where.get(0, 1.0) == 1.0  # the integer at 0.9999999 is fixed at 1
        assert where.get(3, 1.0) == 1.0  # 1 + 1e-9 is clipped to its upper bound 1
    assert sum(0 in f for f, _, _ in rec.calls) == 2 and sum(3 in f for f, _, _ in rec.calls) == 2  # fixed when not freed


def test_worse_plans_are_never_kept_and_two_blocks_are_no_search():
    blocks = np.array([0, 1, 2, -1], dtype=np.int32)
    x = np.zeros(4)
    lo, hi, integer = np.zeros(4), np.ones(4), np.zeros(4, dtype=bool)
    worse = lambda fix, values, limit, start: (4.0, start)  # noqa: E731 - worse than 5 (maximise)
    assert fixopt.fix_and_optimize(worse, x, 5.0, blocks, lo, hi, integer, 60.0, True) is None
    better_min = lambda fix, values, limit, start: (4.0, start)  # noqa: E731 - better than 5 (minimise)
    assert fixopt.fix_and_optimize(better_min, x, 5.0, blocks, lo, hi, integer, 60.0, False)[0] == 4.0
    rec = _Recorder()
    assert fixopt.fix_and_optimize(rec, x, 5.0, np.array([0, 1, -1, -1]), lo, hi, integer, 60.0, True) is None
    assert rec.calls == []  # two blocks freed at once: the step would be the model itself


def test_the_search_stops_when_asked_and_when_its_time_is_up():
    blocks = np.arange(6, dtype=np.int32)
    x, lo, hi, integer = np.zeros(6), np.zeros(6), np.ones(6), np.zeros(6, dtype=bool)
    rec = _Recorder()
    assert fixopt.fix_and_optimize(rec, x, 0.0, blocks, lo, hi, integer, 60.0, True, stop=lambda: True) is None
    assert rec.calls == []
    assert fixopt.fix_and_optimize(rec, x, 0.0, blocks, lo, hi, integer, fixopt.MIN_STEP_S / 2, True) is None
    assert rec.calls == []


def _worker_arrays(sf, blocks=None) -> dict:
    d = {"sense": np.asarray(sf.sense), "integrality": sf.integrality, "col_lower": sf.col_lower, "col_upper": sf.col_upper}
    if blocks is not None:
        d["blocks"] = blocks
    return d


def test_a_child_whose_root_never_finished_spends_its_search_on_fix_and_optimize():
    # first run stopped with no bound (its root LP unfinished) and no plan; the parent offered
    # nothing taken (0). The child re-plans the sites in turn (14) and runs no second full MIP:
    # its bound stays "none" (inf), where a full run would have proven 14
    w = _worker()
    m = _sites_model()
    b = HighsBackend(m)
    sf = b._sf
    status, obj, bound, x = w._search(_highs(sf), _worker_arrays(sf, _blocks(b, m)), 30.0, (math.nan, math.inf, None),
                                      (0.0, np.zeros(b.n_cols)), [False])
    assert obj == pytest.approx(OPTIMUM) and bound == math.inf
    # without blocks the child does what it always did: the LP, RINS, then the full MIP (bound 14)
    status, obj, bound, x = w._search(_highs(sf), _worker_arrays(sf), 30.0, (math.nan, math.inf, None),
                                      (0.0, np.zeros(b.n_cols)), [False])
    assert obj == pytest.approx(OPTIMUM) and bound == pytest.approx(OPTIMUM)


def test_blocks_of_the_wrong_length_are_refused():
    m = _sites_model()
    b = HighsBackend(m)
    with pytest.raises(ValueError, match="blocks: one label per column"):
        b.solve(lazy_lower=[b.column_index(m.cash)], blocks=np.zeros(b.n_cols + 1, dtype=np.int32))


def _generated(size: str, seed: int):
    """An instance of benchmarks/generate.py (funded cash: the cash floors, so `model.cash`)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", Path(__file__).resolve().parents[1] / "benchmarks" / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.generate(size, seed, "funded")


def test_the_pipeline_labels_columns_with_their_site_and_the_company_columns_with_minus_one():
    from optimizer.economics.data import compile_instance
    from optimizer.model.build import build_model
    from optimizer.solve.options import SolveOptions
    from optimizer.solve.pipeline import _Solver

    inst = _generated("small", 0)  # 3 sites
    s = _Solver(inst, SolveOptions())
    s.data = compile_instance(inst)
    s.model = build_model(s.data)
    s.backend = b = HighsBackend(s.model)
    blocks = s._site_blocks()
    position = {site.id: i for i, site in enumerate(inst.sites)}
    assert sorted(set(blocks.tolist())) == [-1, 0, 1, 2]
    for v in s.model.cash.values():  # the company's cash: shared by every site
        assert blocks[b.column_index(v)] == -1
    seen = 0
    for k, v in s.model.conv.items():  # conversions are indexed by their site first
        j = b.column_index(v)
        if j is not None:
            assert blocks[j] == position[k[0]]
            seen += 1
    contract_site = {c.id: position[c.site] for c in inst.contracts}
    for k, v in s.model.deliv.items():  # power deliveries are indexed by their contract
        j = b.column_index(v)
        if j is not None:
            assert blocks[j] == contract_site[k[0]]
            seen += 1
    assert seen > 0
    s.opts = SolveOptions(lazy_cash=False)
    assert s._site_blocks() is None


# ---------------------------------------------------------------- the terminal fleet of a plan


def _stochastic_demo_solved():
    from optimizer.economics.data import compile_instance
    from optimizer.instance.loading import load_instance
    from optimizer.model.build import build_model

    inst = load_instance(Path(__file__).resolve().parents[1] / "instances" / "stochastic_demo.yaml")
    data = compile_instance(inst)
    m = build_model(data)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0)
    assert r.status == "optimal"
    b.load_solution()
    return data, m, b, r


def test_a_fleet_retired_though_worth_keeping_is_kept_and_the_plan_gains_its_value():
    from optimizer.model.fleet import settle_terminal_mining
    from optimizer.solve.backend import BackendResult

    data, m, b, r = _stochastic_demo_solved()
    assert settle_terminal_mining(m, data) == []  # the optimum keeps what is worth keeping
    kept = [(k, pyo.value(m.tmine_margin[k])) for k, z in m.tkeep.items() if round(pyo.value(z)) == 1]
    (s, w), margin = max(kept, key=lambda km: km[1])
    assert margin > 0
    # the same plan with that fleet retired: tkeep = 0 and nothing in the kept part (feasible)
    y = r.values.copy()
    cols = [b.column_index(m.tkeep[s, w]), b.column_index(m.tmine[s, w])]
    cols += [b.column_index(v) for k, v in m.tmop.items() if (k[0], k[2]) == (s, w)]
    cols += [b.column_index(v) for k, v in m.tminst.items() if (k[0], k[2]) == (s, w)]
    y[cols] = 0.0
    sf = b._sf
    worse = BackendResult("time_limit_with_incumbent", float(sf.cost @ y + sf.offset), r.objective, 1.0, 0.0, y, "")
    # by hand: it loses the terminal line's objective coefficient x the margin
    assert worse.objective == pytest.approx(r.objective - sf.cost[cols[1]] * margin, rel=1e-12)
    b._x = y
    b.load_solution()
    changes = settle_terminal_mining(m, data)
    assert {id(v) for v, _ in changes} >= {id(m.tkeep[s, w]), id(m.tmine[s, w])}
    assert b.adopt(worse, changes, 0.005)
    assert worse.objective == pytest.approx(r.objective, rel=1e-12)
    assert worse.status == "feasible_within_gap" and worse.gap == pytest.approx(0.0, abs=1e-9)


def test_a_change_that_breaks_a_row_or_is_no_better_is_refused():
    data, m, b, r = _stochastic_demo_solved()
    (s, w), z = next((k, z) for k, z in m.tkeep.items() if round(pyo.value(z)) == 1)
    margin = pyo.value(m.tmine_margin[(s, w)])
    before = (r.objective, r.values.copy())
    assert not b.adopt(r, [(m.tmine[s, w], margin + 10.0)], 0.005)  # tmine <= margin broken
    assert not b.adopt(r, [(m.tmine[s, w], max(margin - 1.0, 0.0))], 0.005)  # worth less
    assert not b.adopt(r, [(m.tkeep[s, w], 0.5)], 0.005)  # not whole (and breaks the hull)
    assert r.objective == before[0] and np.array_equal(r.values, before[1])


def test_the_continuous_part_of_a_plan_is_re_optimised_first():
    # the company books at most what the sites earn (cash <= 3p + 4q summed): a plan taking p at
    # site 0 but booking nothing (cash 0) is feasible; its integers allow cash = 3
    m = _sites_model()
    m.earn.deactivate()
    m.earn_at_most = pyo.Constraint(expr=m.cash <= sum(3 * m.p[s] + 4 * m.q[s] for s in m.S))
    b = HighsBackend(m)
    x = np.zeros(b.n_cols)
    x[b.column_index(m.p[0])] = 1.0
    obj, y = b._polish(x, np.zeros(0, dtype=np.int32), 30.0, None)  # every integer fixed: the LP
    assert obj == pytest.approx(3.0) and y[b.column_index(m.cash)] == pytest.approx(3.0)
    # without a time limit the MIP runs to its optimum, which holds the LP's: no LP first, same answer
    calls = []
    lp = b._repair_lp
    b._repair_lp = lambda *a: calls.append(a) or lp(*a)
    try:
        obj_unlimited, _ = b._polish(x, np.zeros(0, dtype=np.int32), None, None)
        assert calls == [] and obj_unlimited == pytest.approx(3.0)
        b._polish(x, np.zeros(0, dtype=np.int32), 30.0, None)
        assert len(calls) == 1  # under a limit the LP comes first
    finally:
        del b._repair_lp
    # fix-and-optimize's first step is that LP; the steps (two of the three sites free) then reach 14
    blocks = _blocks(b, m)
    rec = []

    def sub(fix, values, limit, start):
        rec.append(fix.size)
        return b._sub_mip(fix, values, limit, 0.0, None, start)

    sf = b._sf
    r = fixopt.fix_and_optimize(sub, x, 0.0, blocks, sf.col_lower, sf.col_upper, sf.integrality.astype(bool), 30.0, True)
    assert rec[0] == 6  # the first step fixed the six integers
    assert r[0] == pytest.approx(OPTIMUM)
