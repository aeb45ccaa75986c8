"""The model's shared helpers (optimizer/model/common.py) on their edge cases: the cash-flow
registry refuses an unknown item and skips exact zeros, a constraint family refuses a row the data
alone makes false and drops rows the data alone makes true, and the fast ``linear_value`` agrees
with Pyomo's evaluator on the shapes it takes a short cut for (and words an unset variable's error
as Pyomo does)."""

from __future__ import annotations

import pyomo.environ as pyo
import pytest
from test_model import build

from optimizer.model.common import add_constraints, lin, linear_value, register


def test_register_refuses_an_unknown_item_and_skips_exact_zeros():
    _, _, m = build()
    n = len(m.cashflow_terms)
    with pytest.raises(KeyError) as e:
        register(m, "bitcoin_magic_usd", "s1", 0, None, 1.0)
    assert e.value.args[0] == "unknown cash-flow item 'bitcoin_magic_usd'"
    register(m, "opex_usd", "s1", 0, None, 0)                  # a 0 constant
    register(m, "opex_usd", "s1", 0, None, lin([], []))        # an empty sum
    assert len(m.cashflow_terms) == n
    register(m, "opex_usd", "s1", 0, None, -2.5)
    assert len(m.cashflow_terms) == n + 1 and m.cashflow_terms[-1].expr == -2.5 and m.cashflow_terms[-1].period == 0


def test_add_constraints_refuses_a_false_constant_row_and_drops_true_ones():
    m = pyo.ConcreteModel()
    m.v = pyo.Var()
    with pytest.raises(ValueError) as e:
        add_constraints(m, "fam", {("a", 1): True, ("b", 2): False})
    assert str(e.value) == "constraint fam[('b', 2)] is infeasible on the data alone"
    add_constraints(m, "only_true", {1: True})
    assert not hasattr(m, "only_true")                          # nothing left: no component
    add_constraints(m, "mixed", {1: True, 2: m.v <= 3})
    assert list(m.mixed.keys()) == [2] and m.mixed[2].upper == 3


def test_linear_value_agrees_with_pyomo_and_words_an_unset_variable_as_pyomo_does():
    m = pyo.ConcreteModel()
    m.x, m.y = pyo.Var(), pyo.Var()
    m.p = pyo.Param(initialize=4.0, mutable=True)
    m.x.set_value(2.0)
    m.e = pyo.Expression(expr=3 * m.x + m.p * m.x - 1)
    assert linear_value(m.e) == pyo.value(m.e) == 13.0                # a named expression: its body
    assert linear_value(-(m.p * m.x)) == -8.0
    assert linear_value(m.x / m.p) == 0.5
    with pytest.raises(ValueError, match="No value for uninitialized ScalarVar object y"):
        linear_value(lin([1.0, 2.0], [m.x, m.y]))
