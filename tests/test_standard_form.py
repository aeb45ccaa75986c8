"""The standard form handed to HiGHS (solve/standard_form.py): the model as arrays.

`compile_model` walks the model's expressions directly; Pyomo's own `LinearStandardFormCompiler`
(`compile_with_pyomo`) is the reference. Both must give the same columns, rows and arrays on every
bundled instance, and the right arrays on a model small enough to write out by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer.economics.data import compile_instance
from optimizer.instance import load_instance
from optimizer.model.build import build_model
from optimizer.solve.standard_form import compile_model, compile_with_pyomo

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
