"""The portfolio (solve/portfolio.py): the full model solved in a child process next to the lazy rounds.

What must hold: the child solves exactly the model the parent handed to HiGHS (every lazy bound a
bound), so its plan is feasible and its bound valid; the parent takes the child's plan only when it
keeps every lazy bound and beats its own, takes the tighter bound, and stops once a plan is within
the gap; a child asked to stop still answers, and a closed child leaves no process and no file.
The child searches a neighbourhood of the best plan (its own or one the parent offers) only when
the plans are far from its bound, and every plan it keeps is the full model's.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest
from test_lazy_bounds import _budget_model, _lazy  # the three-project model with its hand-listed optimum

from optimizer.solve import backend as backend_module
from optimizer.solve.backend import HighsBackend
from optimizer.solve.portfolio import Companion, CompanionAnswer


def test_the_child_solves_the_full_model_handed_to_highs():
    # _budget_model(10): projects a, b, c worth 5, 4, 3; cash2 = 10 - 6a - 4b + 3 - 5c >= 0 rules
    # out taking all three (12); the best feasible set is {a, b}: 9 (test_lazy_bounds has the list)
    m = _budget_model(10.0)
    b = HighsBackend(m)
    with Companion(b._sf, None, 0.0) as child:
        a = child.answer(wait_s=None)
    assert a.has_solution
    assert a.objective == pytest.approx(9.0)
    assert a.bound == pytest.approx(9.0)
    cols = [b.column_index(v) for v in (m.a, m.b, m.c, m.cash2)]
    assert np.round(a.x[cols[:3]]).tolist() == [1.0, 1.0, 0.0]
    assert a.x[cols[3]] == pytest.approx(3.0)  # cash2 = 10 - 6 - 4 + 3


def test_the_child_gets_the_mip_gap_and_the_start():
    # a start outside the model (a = b = c = 1 breaks cash2 >= 0) is rejected by HiGHS, not trusted:
    # the answer is still the optimum 9
    m = _budget_model(10.0)
    b = HighsBackend(m)
    idx = np.asarray([b.column_index(v) for v in (m.a, m.b, m.c)], dtype=np.int32)
    with Companion(b._sf, 30.0, 0.0, start=(idx, np.ones(3))) as child:
        a = child.answer(wait_s=None)
    assert a.objective == pytest.approx(9.0)


def _market_split(m_rows: int = 4, n: int = 40, seed: int = 1) -> pyo.ConcreteModel:
    """A market-split feasibility problem (Cornuejols & Dawande 1998): sum_j a_ij x_j = floor(sum_j a_ij / 2)
    with a_ij uniform in 0..99. Branch and bound needs minutes to hours at this size."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m_rows, n))
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), domain=pyo.Binary)
    m.rows = pyo.Constraint(range(m_rows), rule=lambda m, i: sum(int(a[i, j]) * m.x[j] for j in range(n)) == int(a[i].sum()) // 2)
    m.obj = pyo.Objective(expr=sum(m.x[j] for j in range(n)), sense=pyo.maximize)
    return m


def test_a_child_asked_to_stop_still_answers_and_close_leaves_nothing_behind():
    b = HighsBackend(_market_split())
    child = Companion(b._sf, None, 0.0)
    try:
        assert child.answer(wait_s=1.0) is None  # still searching after 1 s
        a = child.stop(wait_s=20.0)  # SIGTERM: HiGHS stops at its next check and writes what it has
        assert a is not None
        assert a.status == "Interrupted by user"
        assert not math.isfinite(a.objective) or a.has_solution
    finally:
        child.close()
    assert child._proc.poll() is not None  # the process is gone
    assert not os.path.exists(child._dir)  # and so are its files


class _FakeChild:
    """A Companion that answers at once with a given plan and bound (to test how the parent merges)."""

    answer_to_give: CompanionAnswer | None = None
    started: list = []

    offers: list = []

    def __init__(self, sf, time_limit_s, mip_gap, highs_options=None, start=None, threads=1, neighbourhood=False, blocks=None):
        _FakeChild.started.append((time_limit_s, mip_gap, start))

    def offer(self, objective, x):
        _FakeChild.offers.append((objective, x.copy()))

    def answer(self, wait_s=0.0):
        return _FakeChild.answer_to_give

    def stop(self, wait_s=0.0):
        return _FakeChild.answer_to_give

    def close(self):
        pass


def _plan(b: HighsBackend, m, a: int, bb: int, c: int) -> np.ndarray:
    """Full column vector of the budget model for the projects (a, b, c), cash from the balances."""
    x = np.zeros(b.n_cols)
    cash1 = 10.0 - 6 * a - 4 * bb
    for v, val in ((m.a, a), (m.b, bb), (m.c, c), (m.cash1, cash1), (m.cash2, cash1 + 3 - 5 * c)):
        x[b.column_index(v)] = val
    return x


@pytest.fixture
def fake_child(monkeypatch):
    monkeypatch.setattr(backend_module, "Companion", _FakeChild)
    monkeypatch.setattr(backend_module, "PORTFOLIO_DELAY_S", 0.0)
    _FakeChild.started = []
    _FakeChild.offers = []
    yield _FakeChild
    _FakeChild.answer_to_give = None


def test_a_child_plan_within_the_gap_of_its_bound_is_the_answer_without_a_round(fake_child):
    m = _budget_model(10.0)
    b = HighsBackend(m)
    fake_child.answer_to_give = CompanionAnswer("Optimal", 9.0, 9.0, _plan(b, m, 1, 1, 0))
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), portfolio=True)
    assert (r.status, r.objective, r.lazy_path, r.lazy_rounds) == ("optimal", 9.0, "portfolio", 0)
    b.load_solution()
    assert (pyo.value(m.a), pyo.value(m.b), pyo.value(m.c)) == (1, 1, 0)
    assert len(fake_child.started) == 1


def test_a_child_plan_that_breaks_a_lazy_bound_is_never_taken(fake_child):
    # all three projects (12) leave cash2 = -2: not a plan of the model, whatever the child says
    m = _budget_model(10.0)
    b = HighsBackend(m)
    fake_child.answer_to_give = CompanionAnswer("Optimal", 12.0, 12.0, _plan(b, m, 1, 1, 1))
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), portfolio=True)
    assert r.status == "optimal"
    assert r.objective == pytest.approx(9.0)
    assert r.lazy_path == "row generation"


def test_a_worse_child_plan_loses_to_the_rounds_and_its_weak_bound_changes_nothing(fake_child):
    # the child offers {c} (3, cash2 = 10 + 3 - 5 = 8) with bound 12 (a valid but weak bound);
    # the rounds find {a, b} = 9 and prove it: the answer is theirs, bound 9
    m = _budget_model(10.0)
    b = HighsBackend(m)
    fake_child.answer_to_give = CompanionAnswer("Time limit reached", 3.0, 12.0, _plan(b, m, 0, 0, 1))
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), portfolio=True)
    assert (r.status, r.lazy_path) == ("optimal", "row generation")
    assert r.objective == pytest.approx(9.0)
    assert r.best_bound == pytest.approx(9.0)


def test_without_portfolio_no_child_is_started(fake_child):
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m))
    assert r.objective == pytest.approx(9.0)
    assert fake_child.started == []


def test_solve_options_and_the_cli_switch_the_portfolio():
    from typer.testing import CliRunner

    from optimizer.cli import app
    from optimizer.solve.options import SolveOptions

    assert SolveOptions().portfolio is True
    assert SolveOptions(portfolio=False).portfolio is False
    out = CliRunner().invoke(app, ["solve", "--help"], terminal_width=200)
    assert "--no-portfolio" in out.output


def test_no_child_process_means_the_rounds_alone(monkeypatch):
    # an embedding service may have no Python executable or no temporary space to start a child:
    # the solve goes on without it (the same optimum 9), and tries only once
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise OSError("no temporary space")

    monkeypatch.setattr(backend_module, "Companion", refuse)
    monkeypatch.setattr(backend_module, "PORTFOLIO_DELAY_S", 0.0)
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), portfolio=True)
    assert (r.status, r.lazy_path) == ("optimal", "row generation")
    assert r.objective == pytest.approx(9.0)
    assert calls == [1]


def test_a_child_whose_parent_dies_exits_instead_of_solving_for_nobody(tmp_path):
    # a parent process starts a child on the market-split MILP (no time limit) and dies without
    # stopping it (os._exit: no close, as a kill -9 would leave it); the child notices within ~0.5 s
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_portfolio import _market_split\n"
        "from optimizer.solve.backend import HighsBackend\n"
        "from optimizer.solve.portfolio import Companion\n"
        "child = Companion(HighsBackend(_market_split())._sf, None, 0.0)\n"
        "print(child._proc.pid, child._dir, flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    pid_s, tmp_dir = out.stdout.split()
    pid = int(pid_s)
    deadline = time.monotonic() + 15
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), "the child kept solving after its parent died"
    assert not os.path.exists(tmp_dir), "the dead parent's temporary folder was left behind"


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan is reaped by init; a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


# ---------------------------------------------------------------- the neighbourhood search


def _worker():
    """The worker module, loaded from its file as the child runs it."""
    import importlib.util

    from optimizer.solve import portfolio

    spec = importlib.util.spec_from_file_location("_portfolio_worker", portfolio.WORKER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _highs(sf):
    """A Highs object holding the standard form `sf` as the worker holds it (no log, gap 0)."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    A = sf.A
    h.passModel(len(sf.columns), len(sf.rows), A.nnz, int(highspy.MatrixFormat.kColwise), sf.sense, sf.offset, sf.cost,
                sf.col_lower, sf.col_upper, sf.row_lower, sf.row_upper, A.indptr.astype(np.int32), A.indices.astype(np.int32),
                A.data, sf.integrality)
    h.setOptionValue("mip_rel_gap", 0.0)
    return h


def _arrays(sf) -> dict:
    """What the worker reads from MODEL.npz (the entries _search uses)."""
    return {"sense": np.asarray(sf.sense), "integrality": sf.integrality, "col_lower": sf.col_lower, "col_upper": sf.col_upper}


def test_the_search_starts_from_the_offered_plan_and_keeps_the_full_models_bound():
    # budget model (optimum {a, b} = 9). The first run stopped with no plan and bound 12 (the LP's:
    # all three); the parent offers {c} = 3 (cash2 = 13 - 5 = 8). Phase 2 fixes what {c} and the LP
    # agree on, phase 3 solves the full model from the best plan: {a, b} = 9, bound min(12, 9) = 9.
    w = _worker()
    m = _budget_model(10.0)
    b = HighsBackend(m)
    sf = b._sf
    h = _highs(sf)
    status, obj, bound, x = w._search(h, _arrays(sf), 20.0, (math.nan, 12.0, None), (3.0, _plan(b, m, 0, 0, 1)), [False])
    assert obj == pytest.approx(9.0) and bound == pytest.approx(9.0)
    assert np.round(x[[b.column_index(v) for v in (m.a, m.b, m.c)]]).tolist() == [1.0, 1.0, 0.0]
    # asked to stop before it starts: the offered plan is the answer, the first bound stays
    status, obj, bound, x = w._search(h, _arrays(sf), 20.0, (math.nan, 12.0, None), (3.0, _plan(b, m, 0, 0, 1)), [True])
    assert (obj, bound) == (3.0, 12.0)


def test_better_and_gap_of_the_worker():
    w = _worker()
    assert w._better(3.0, 5.0, True) == 5.0 and w._better(3.0, 5.0, False) == 3.0
    assert w._better(-math.inf, None, True) != w._better(-math.inf, None, True)  # nan: no plan
    assert w._better(math.nan, 2.0, True) == 2.0
    assert w._gap(90.0, 100.0) == pytest.approx(10 / 90) and w._gap(math.nan, 1.0) == math.inf


def _split_market(offset: float, m_rows: int = 4, n: int = 40, seed: int = 1):
    """Market split with slacks: max offset - sum |deviation| s.t. sum_j a_ij x_j + up_i - dn_i = b_i
    (a_ij uniform in 0..99, b_i = floor(sum_j a_ij / 2)). The LP reaches deviation 0; integer plans
    near it are hard to find and to prove. x = 0 (up_i = b_i) is a plan worth offset - sum_i b_i."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 100, size=(m_rows, n))
    rhs = [int(a[i].sum()) // 2 for i in range(m_rows)]
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(n), domain=pyo.Binary)
    m.up = pyo.Var(range(m_rows), domain=pyo.NonNegativeReals)
    m.dn = pyo.Var(range(m_rows), domain=pyo.NonNegativeReals)
    m.rows = pyo.Constraint(range(m_rows), rule=lambda m, i: sum(int(a[i, j]) * m.x[j] for j in range(n)) + m.up[i] - m.dn[i] == rhs[i])
    m.obj = pyo.Objective(expr=offset - sum(m.up[i] + m.dn[i] for i in range(m_rows)), sense=pyo.maximize)
    b = HighsBackend(m)
    x0 = np.zeros(b.n_cols)
    for i in range(m_rows):
        x0[b.column_index(m.up[i])] = rhs[i]
    return b, x0, offset - sum(rhs), a, rhs


@pytest.mark.parametrize("offset, searched", [(0.0, True), (1e6, False)])
def test_the_child_splits_its_time_only_when_the_plans_are_far_from_its_bound(offset, searched):
    # offset 0: the best plan is worth < 0 and the bound is 0: 100 % apart, the child searches the
    # neighbourhood; offset 1e6: the offered plan (1e6 - 4,255) is within 0.5 % of the bound 1e6:
    # the search goes on undivided. Either way the answer is a plan of the model, at least as good
    # as the offered one, under a valid bound (the deviation is >= 0: the objective <= offset).
    b, x0, worth, a, rhs = _split_market(offset)
    with Companion(b._sf, 10.0, 0.0, neighbourhood=True) as child:
        child.offer(worth, x0)
        ans = child.answer(wait_s=None)
    assert ans.neighbourhood is searched
    assert ans.has_solution and ans.objective >= worth
    assert ans.objective <= ans.bound + 1e-6 and ans.bound <= offset + 1e-6
    x = ans.x
    sf = b._sf
    assert np.all(sf.A @ x >= sf.row_lower - 1e-6) and np.all(sf.A @ x <= sf.row_upper + 1e-6)
    ints = np.flatnonzero(sf.integrality)
    assert np.allclose(x[ints], np.round(x[ints]), atol=1e-6)


def test_the_parent_offers_its_full_feasible_plans_to_the_child(fake_child):
    # the rounds' plans that keep every floor reach the child (the last one: {a, b} = 9 with cash2 = 3)
    m = _budget_model(10.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m), portfolio=True)
    assert r.objective == pytest.approx(9.0)
    assert fake_child.offers and fake_child.offers[-1][0] == pytest.approx(9.0)
    x = fake_child.offers[-1][1]
    assert x[b.column_index(m.cash2)] == pytest.approx(3.0)
    assert all(o[1][b.column_index(m.cash2)] >= -1e-9 for o in fake_child.offers)  # never a plan breaking a floor
