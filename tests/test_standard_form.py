"""The standard form handed to HiGHS (solve/standard_form.py): the model as arrays.

`compile_model` walks the model's expressions directly; Pyomo's own `LinearStandardFormCompiler`
(`compile_with_pyomo`) is the reference. Both must give the same columns, rows and arrays on every
bundled instance, and the right arrays on a model small enough to write out by hand. After Param
changes, `Recompiler` (the objective and the rows holding a changed Param walked again) must give
exactly `compile_model`'s arrays, or decline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer.economics.data import compile_instance
from optimizer.instance import load_instance
from optimizer.model.build import build_model
from optimizer.model.params import update_params
from optimizer.solve.standard_form import Recompiler, compile_model, compile_with_pyomo

INSTANCES = sorted((Path(__file__).resolve().parents[1] / "instances").glob("*.yaml"))


def _assert_same(a, b) -> None:
    assert len(a.columns) == len(b.columns) and all(x is y for x, y in zip(a.columns, b.columns))
    assert len(a.rows) == len(b.rows) and all(x is y for x, y in zip(a.rows, b.rows))
    for k in ("cost", "col_lower", "col_upper", "integrality", "row_lower", "row_upper"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=1e-13, atol=0, err_msg=k)
    np.testing.assert_array_equal(a.A.indptr, b.A.indptr)
    np.testing.assert_array_equal(a.A.indices, b.A.indices)
    np.testing.assert_allclose(a.A.data, b.A.data, rtol=1e-13, atol=0)
    assert a.sense == b.sense
    assert a.offset == pytest.approx(b.offset, rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.stem)
def test_same_arrays_as_pyomos_compiler_on_every_bundled_instance(path):
    m = build_model(compile_instance(load_instance(path)))
    _assert_same(compile_model(m), compile_with_pyomo(m))


def _hand_model() -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.p = pyo.Param(initialize=3.0, mutable=True)
    m.x = pyo.Var(domain=pyo.Integers, bounds=(0, 4))
    m.y = pyo.Var(bounds=(0, None))
    m.z = pyo.Var(initialize=2.0)
    m.z.fix()
    m.unused = pyo.Var([1, 2])
    m.w = pyo.Var([1, 2], bounds=(-1, 1))  # w[1] appears, w[2] only with a zero net coefficient
    m.c1 = pyo.Constraint(expr=2 * m.x + m.p * m.y + m.z <= 10)  # 2x + 3y <= 10 - 2 = 8
    m.c2 = pyo.Constraint(expr=pyo.inequality(1, m.x - m.y, 3))  # one ranged row
    m.c3 = pyo.Constraint(expr=-(m.w[1] + m.w[2]) + m.w[2] == 0.5 * m.p)  # -w1 = 1.5
    m.c4 = pyo.Constraint(expr=m.z >= 1)  # a constant row that holds: dropped
    m.obj = pyo.Objective(expr=m.x + 2 * (m.y - m.z) + 5 * m.z, sense=pyo.maximize)  # x + 2y + 3z: offset 6
    return m


def test_a_hand_model_gives_the_arrays_written_out_by_hand():
    m = _hand_model()
    sf = compile_model(m)
    # columns in Pyomo's order: x, y (objective first), then w[1] (w[2] cancels out; z is fixed)
    assert [v.name for v in sf.columns] == ["x", "y", "w[1]"]
    assert sf.sense == -1
    assert sf.offset == pytest.approx(6.0)  # 2 (-z) + 5 z at z = 2
    np.testing.assert_allclose(sf.cost, [1.0, 2.0, 0.0])
    np.testing.assert_allclose(sf.col_lower, [0.0, 0.0, -1.0])
    np.testing.assert_allclose(sf.col_upper, [4.0, np.inf, 1.0])
    np.testing.assert_array_equal(sf.integrality, [1, 0, 0])
    assert [c.name for c in sf.rows] == ["c1", "c2", "c3"]
    np.testing.assert_allclose(sf.row_lower, [-np.inf, 1.0, 1.5])
    np.testing.assert_allclose(sf.row_upper, [8.0, 3.0, 1.5])
    np.testing.assert_allclose(sf.A.toarray(), [[2.0, 3.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    _assert_same(sf, compile_with_pyomo(m))


def test_a_mutable_param_is_read_at_compile_time():
    m = _hand_model()
    m.p = 5.0
    sf = compile_model(m)
    assert sf.A.toarray()[0, 1] == 5.0
    assert sf.row_lower[2] == 2.5  # -w1 = 0.5 p


def test_a_fixed_variable_met_as_a_column_moves_to_the_bounds():
    # v[1] joins the columns with its component when v[2] is met first; v[1] is then fixed at 2:
    # row v[2] + 3 v[1] <= 10 becomes v[2] <= 4, and the objective gains 2 x 2 = 4
    m = pyo.ConcreteModel()
    m.v = pyo.Var([1, 2], bounds=(0, 10))
    m.c = pyo.Constraint(expr=m.v[2] + 3 * m.v[1] <= 10)
    m.obj = pyo.Objective(expr=m.v[2] + 2 * m.v[1])
    m.v[1].fix(2.0)
    sf = compile_model(m)
    assert [v.name for v in sf.columns] == ["v[2]"]
    assert sf.row_upper[0] == pytest.approx(4.0)
    assert sf.offset == pytest.approx(4.0)
    _assert_same(sf, compile_with_pyomo(m))


def test_shapes_the_direct_walk_does_not_take_fall_back_to_pyomo():
    # x / 2 (a division node) is linear: Pyomo's visitor takes the row, with the same result
    m = pyo.ConcreteModel()
    m.x = pyo.Var(bounds=(0, 10))
    m.c = pyo.Constraint(expr=m.x / 2 + 1 <= 3)
    m.obj = pyo.Objective(expr=m.x)
    sf = compile_model(m)
    np.testing.assert_allclose(sf.A.toarray(), [[0.5]])
    assert sf.row_upper[0] == pytest.approx(2.0)
    _assert_same(sf, compile_with_pyomo(m))


def test_a_nonlinear_row_and_a_contradictory_constant_row_are_refused():
    m = pyo.ConcreteModel()
    m.x = pyo.Var()
    m.y = pyo.Var()
    m.c = pyo.Constraint(expr=m.x * m.y <= 1)
    m.obj = pyo.Objective(expr=m.x)
    with pytest.raises(ValueError, match="nonlinear"):
        compile_model(m)
    m.c.deactivate()
    m.z = pyo.Var(initialize=0.0)
    m.z.fix()
    m.bad = pyo.Constraint(expr=m.z >= 1)
    with pytest.raises(ValueError, match="trivially infeasible constraint, 'bad'"):
        compile_model(m)


@pytest.mark.parametrize("name", ["demo", "case_financed_conversion", "tree_demo"])
def test_linear_value_equals_pyomos_value_on_every_cash_flow_term(name):
    # model_cashflows values each registered term with common.linear_value; Pyomo's own evaluator
    # is the reference, at an arbitrary point (every variable set to a distinct value)
    from optimizer.model.common import linear_value

    m = build_model(compile_instance(load_instance(INSTANCES[0].parent / f"{name}.yaml")))
    for k, v in enumerate(m.component_data_objects(pyo.Var)):
        if not v.fixed:
            v.set_value(0.5 + (k % 7) * 0.25, skip_validation=True)
    terms = m.cashflow_terms + list(getattr(m, "unlevered_terms", []))
    assert terms
    for t in terms:
        assert linear_value(t.expr) == pyo.value(t.expr)  # the same operations in the same order
    assert linear_value(m.expected_npv) == pytest.approx(pyo.value(m.expected_npv), rel=1e-14)


def test_linear_value_of_hand_expressions_and_an_unset_variable():
    from optimizer.model.common import linear_value

    m = _hand_model()
    m.x.set_value(2)
    m.y.set_value(1.5)
    assert linear_value(2 * m.x + m.p * m.y + m.z) == 2 * 2 + 3.0 * 1.5 + 2.0
    assert linear_value(-(m.x - m.y) / 2) == -0.25  # a division goes to Pyomo's evaluator
    assert linear_value(m.p * (m.x + 1)) == 9.0
    with pytest.raises(ValueError, match="No value for uninitialized"):
        linear_value(m.w[1] + m.x)


# ---------------------------------------------------------------- Recompiler


def _assert_identical(a, b) -> None:
    """The same standard form to the last bit (a recompile stands for a full compile)."""
    assert a.columns == b.columns and all(x is y for x, y in zip(a.columns, b.columns))
    assert len(a.rows) == len(b.rows) and all(x is y for x, y in zip(a.rows, b.rows))
    for k in ("cost", "col_lower", "col_upper", "integrality", "row_lower", "row_upper"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    np.testing.assert_array_equal(a.A.indptr, b.A.indptr)
    np.testing.assert_array_equal(a.A.indices, b.A.indices)
    np.testing.assert_array_equal(a.A.data, b.A.data)
    assert (a.sense, a.offset) == (b.sense, b.offset)


def _sweep_point(inst, f: float):
    """A variant changing Param-backed fields only (model/params.py): the discount rate, BTC price
    and hashrate of listed scenarios, every lease's rate (what a sweep point does)."""
    ov = {"horizon.discount_rate": {"add": (f - 1) / 10}}
    if inst.scenario_generator is None:
        ov |= {"scenarios[*].btc_price_usd": {"mul": f}, "scenarios[*].network_hashrate_eh_s": {"mul": 2 - f}}
    if inst.leases:
        ov["leases[*].rate_usd_per_kw_month"] = {"mul": f}
    return inst.with_overrides(ov)


@pytest.mark.parametrize("path", INSTANCES, ids=lambda p: p.stem)
def test_recompiling_after_a_sweep_point_gives_the_full_compile_exactly(path):
    inst = load_instance(path)
    m = build_model(compile_instance(inst))
    sf = compile_model(m)
    r = Recompiler(m, sf)
    for f in (1.1, 0.8):  # two points in a row: the recorded values follow
        update_params(m, compile_instance(_sweep_point(inst, f)))
        new = r.recompile(sf)
        assert new is not None
        _assert_identical(new, compile_model(m))
        sf = new
    assert not np.array_equal(sf.cost, compile_model(build_model(compile_instance(inst))).cost)  # the points changed it


def test_recompiling_the_hand_model_after_param_changes():
    m = _hand_model()
    sf = compile_model(m)
    r = Recompiler(m, sf)
    assert r.recompile(sf) is not None  # nothing changed: the same numbers
    _assert_identical(r.recompile(sf), sf)
    m.p = 5.0  # c1: 2x + 5y <= 8; c3: -w1 = 2.5
    new = r.recompile(sf)
    _assert_identical(new, compile_model(m))
    assert new.A.toarray()[0, 1] == 5.0 and new.row_lower[2] == 2.5
    # a bound that moved and a domain that changed are read again too
    m.y.setub(7.0)
    m.x.domain = pyo.Reals
    new2 = r.recompile(new)
    assert new2.col_upper[1] == 7.0 and new2.integrality[0] == 0
    _assert_identical(new2, compile_model(m))


def test_recompiling_declines_what_only_a_full_compile_can_tell():
    # a coefficient that turns to 0 changes the sparsity pattern
    m = _hand_model()
    r = Recompiler(m, compile_model(m))
    m.p = 0.0
    assert r.recompile(compile_model(_hand_model())) is None
    # a row holding a fixed variable: its value moves into the bounds
    m = _hand_model()
    sf = compile_model(m)
    r = Recompiler(m, sf)
    m.z.fix(3.0)
    assert r.recompile(sf) is None
    # a column that became fixed
    m = _hand_model()
    sf = compile_model(m)
    r = Recompiler(m, sf)
    m.y.fix(1.0)
    assert r.recompile(sf) is None
    # a Param of a constant row (dropped from the rows) that changed: it may now contradict
    m = pyo.ConcreteModel()
    m.q = pyo.Param(initialize=1.0, mutable=True)
    m.x = pyo.Var(bounds=(0, 1))
    m.z = pyo.Var(initialize=2.0)
    m.z.fix()
    m.c = pyo.Constraint(expr=m.x <= 1)
    m.k = pyo.Constraint(expr=m.z >= m.q)  # 2 >= 1: dropped
    m.obj = pyo.Objective(expr=m.x)
    sf = compile_model(m)
    r = Recompiler(m, sf)
    m.q = 3.0
    assert r.recompile(sf) is None
    with pytest.raises(ValueError, match="trivially infeasible"):
        compile_model(m)
