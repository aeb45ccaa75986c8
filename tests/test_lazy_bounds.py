"""Lazily enforced lower bounds (HighsBackend.solve(lazy_lower=...)) and the lazy cash floor of solve().

The lazy solve must give the same optimum as the direct one: it only changes how the bounds are
handed to HiGHS (relaxation first, then repair or the full model), never the model.
"""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

from optimizer.instance import Instance
from optimizer.solve import solve
from optimizer.solve.backend import HighsBackend


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
    assert r.lazy_path == "full model"  # the relaxation took all three; fixing them is infeasible
    b.load_solution()
    assert (pyo.value(m.a), pyo.value(m.b), pyo.value(m.c)) == (1, 1, 0)
    assert pyo.value(m.cash2) == pytest.approx(3.0)
    assert r.best_bound >= 9.0 - 1e-9  # a valid bound for the full model


def test_floor_not_binding_is_solved_once():
    # cash_start 20: all three fit (cash1 = 20 - 10 = 10, cash2 = 10 + 3 - 5 = 8): optimum 12
    m = _budget_model(20.0)
    b = HighsBackend(m)
    r = b.solve(mip_gap=0.0, lazy_lower=_lazy(b, m))
    assert r.status == "optimal"
    assert r.objective == pytest.approx(12.0)
    assert r.lazy_path == "relaxation"


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
    assert paths == ["full model"]  # the floor binds: the relaxation's plan breaks it
    direct = solve(inst, lazy_cash=False, **opts)
    assert lazy.status == direct.status == "optimal"
    assert lazy.objective_usd == pytest.approx(direct.objective_usd, rel=2e-6)
    lazy.verify()
