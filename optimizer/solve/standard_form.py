"""A linear Pyomo model as arrays (the standard form HiGHS takes): `compile_model(model) -> StandardForm`.

Rows are the active constraints in model order (a ranged constraint is one row with two bounds),
columns the variables that appear in them or in the objective, ordered as Pyomo's own
`LinearStandardFormCompiler` orders them (a Var component's entries join together, in index
order, when the first of them is met, objective first, then the constraints in order). That
compiler is the reference: `compile_with_pyomo` runs it, and the tests check both give the same
arrays on every bundled instance.

Why a second route. Pyomo's compiler walks every expression with a general visitor (a stack
machine that dispatches on every node type). The model writes its rows as linear expressions,
sums of them and constant multiples of them (the cash balance and the objective add up the
cash-flow registry); walking those shapes directly is several times faster on the large
benchmark (benchmarks/vs_linopy.py prints both). Variables are recorded with Pyomo's own
`record_monomial` and `TemplateVarRecorder` (so fixed variables, zero coefficients and the
column order follow Pyomo's rules exactly); anything else (a nonlinear node, a product of two
variable expressions, a node type the model never writes) falls back to Pyomo's visitor for
that expression, which also raises Pyomo's errors for nonlinear rows.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
import scipy.sparse
from pyomo.common.gc_manager import PauseGC
from pyomo.core.expr.numeric_expr import (
    LinearExpression,
    MonomialTermExpression,
    NegationExpression,
    ProductExpression,
    SumExpression,
)
from pyomo.core.expr.numvalue import native_numeric_types
from pyomo.repn.linear import LinearRepnVisitor
from pyomo.repn.plugins.standard_form import LinearStandardFormCompiler
from pyomo.repn.util import FileDeterminism, FileDeterminism_to_SortComponents, TemplateVarRecorder

from optimizer.model.common import linear_value  # the value of a Param expression (a coefficient)

_INF = math.inf


@dataclass
class StandardForm:
    columns: list  # VarData per column
    rows: list  # ConstraintData per row (a ranged constraint is one row with two bounds)
    sense: int  # highspy ObjSense value: 1 minimize, -1 maximize
    offset: float
    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray  # int32, 1 for integer columns
    row_lower: np.ndarray
    row_upper: np.ndarray
    A: "scipy.sparse.csc_array"

    @property
    def is_mip(self) -> bool:
        return bool(self.integrality.any())


class _Fallback(Exception):
    """An expression shape the direct walk does not take: Pyomo's visitor takes it."""


def _add(expr, mult, visitor, ans) -> None:
    """Add `mult` x `expr` to the linear result `ans` (a LinearRepn), left to right as Pyomo's
    visitor does (so variables are recorded in the same order)."""
    cls = expr.__class__
    if cls is LinearExpression or cls is SumExpression:
        record = visitor.record_monomial
        for arg in expr.args:  # the common terms inline: a sum of monomials, variables and numbers
            c = arg.__class__
            if c is MonomialTermExpression:
                coef, var = arg.args
                record(visitor, ans, mult * (coef if coef.__class__ in native_numeric_types else linear_value(coef)), var)
            elif c in native_numeric_types:
                ans.constant += mult * arg
            else:
                _add(arg, mult, visitor, ans)
    elif cls in native_numeric_types:
        ans.constant += mult * expr
    elif cls is MonomialTermExpression:
        coef, var = expr.args
        visitor.record_monomial(visitor, ans, mult * linear_value(coef), var)
    elif expr.is_variable_type():
        visitor.record_monomial(visitor, ans, mult, expr)
    elif not expr.is_potentially_variable():  # Params and expressions of them
        ans.constant += mult * linear_value(expr)
    elif cls is NegationExpression:
        _add(expr.args[0], -mult, visitor, ans)
    elif cls is ProductExpression:
        a, b = expr.args
        if a.__class__ not in native_numeric_types and a.is_potentially_variable():
            if b.__class__ in native_numeric_types or not b.is_potentially_variable():
                _add(a, mult * linear_value(b), visitor, ans)
            else:
                raise _Fallback
        else:
            _add(b, mult * linear_value(a), visitor, ans)
    elif expr.is_named_expression_type():
        _add(expr.expr, mult, visitor, ans)
    else:
        raise _Fallback


def _linear(expr, visitor):
    """(constant, {id(var): coef}) of a linear expression."""
    ans = visitor.Result()
    try:
        _add(expr, 1, visitor, ans)
    except _Fallback:
        repn = visitor.walk_expression(expr)
        if repn.nonlinear is not None:
            raise ValueError(f"a nonlinear expression cannot be handed to HiGHS: {expr}") from None
        return repn.constant, repn.linear
    lin = ans.linear
    return ans.constant, {k: c for k, c in lin.items() if c} if not all(lin.values()) else lin


def compile_model(model: pyo.ConcreteModel) -> StandardForm:
    """The model's standard form (see the module docstring); same arrays as `compile_with_pyomo`."""
    with PauseGC():
        return _compile(model)


def _compile(model) -> StandardForm:
    sorter = FileDeterminism_to_SortComponents(FileDeterminism.ORDERED)
    var_map: dict = {}
    visitor = LinearRepnVisitor({}, var_recorder=TemplateVarRecorder(var_map, sorter))
    objectives = list(model.component_data_objects(pyo.Objective, active=True, sort=sorter))
    if len(objectives) > 1:
        raise ValueError(f"model has {len(objectives)} active objectives; HighsBackend takes at most one")
    obj_const, obj_lin = _linear(objectives[0].expr, visitor) if objectives else (0.0, {})

    rows, rhs_lo, rhs_up, row_ptr, row_vars, row_coefs = [], [], [], [0], [], []
    for con in model.component_data_objects(pyo.Constraint, active=True, sort=sorter):
        lb, body, ub = con.to_bounded_expression()
        if lb is not None and lb.__class__ not in native_numeric_types:
            lb = pyo.value(lb)
        if ub is not None and ub.__class__ not in native_numeric_types:
            ub = pyo.value(ub)
        const, lin = _linear(body, visitor)
        if lb is None and ub is None:
            continue
        if not lin:  # a constant row: kept out, or the model is infeasible on the data alone
            if (lb is None or lb <= const) and (ub is None or ub >= const):
                continue
            raise ValueError(f"model contains a trivially infeasible constraint, '{con.name}'")
        rows.append(con)
        rhs_lo.append(-_INF if lb is None else lb - const)
        rhs_up.append(_INF if ub is None else ub - const)
        row_vars.append(lin.keys())
        row_coefs.append(lin.values())
        row_ptr.append(row_ptr[-1] + len(lin))

    order = {vid: j for j, vid in enumerate(var_map)}
    columns = list(var_map.values())
    n = len(columns)
    nnz = row_ptr[-1]
    data = np.fromiter(itertools.chain.from_iterable(row_coefs), np.float64, nnz)
    index = np.fromiter((order[v] for v in itertools.chain.from_iterable(row_vars)), np.int32, nnz)
    A = scipy.sparse.csr_array((data, index, np.asarray(row_ptr, dtype=np.int64)), shape=(len(rows), n)).tocsc()
    A.sum_duplicates()
    A.eliminate_zeros()
    cost = np.zeros(n)
    if obj_lin:
        cost[np.fromiter((order[v] for v in obj_lin), np.int64, len(obj_lin))] = np.fromiter(obj_lin.values(), np.float64, len(obj_lin))
    offset = float(obj_const)
    row_lower, row_upper = np.asarray(rhs_lo, dtype=np.float64), np.asarray(rhs_up, dtype=np.float64)

    # columns that appear nowhere (an index of a Var met through another entry) are dropped;
    # fixed variables recorded as columns move to the bounds and the objective constant at their value
    used = (np.diff(A.indptr) > 0) | (cost != 0)
    fixed = np.fromiter((v.fixed for v in columns), bool, n) & used
    if fixed.any():
        x = np.array([columns[j].value for j in np.flatnonzero(fixed)], dtype=np.float64)
        offset += float(cost[fixed] @ x)
        shift = A[:, fixed] @ x
        row_lower, row_upper = row_lower - shift, row_upper - shift
        used &= ~fixed
    keep = np.flatnonzero(used)
    if keep.size < n:
        A = scipy.sparse.csc_array(A[:, keep])
        cost = cost[keep]
        columns = [columns[j] for j in keep]
    A.sort_indices()

    lower = np.empty(len(columns))
    upper = np.empty(len(columns))
    for j, v in enumerate(columns):
        lo, up = v.bounds
        lower[j] = -_INF if lo is None else lo
        upper[j] = _INF if up is None else up
    integrality = np.fromiter((v.is_integer() for v in columns), np.int32, len(columns))
    sense = 1
    if objectives:
        sense = -1 if objectives[0].sense == pyo.maximize else 1
    return StandardForm(columns, rows, sense, offset, cost, lower, upper, integrality, row_lower, row_upper, A)


def compile_with_pyomo(model: pyo.ConcreteModel) -> StandardForm:
    """The same standard form by Pyomo's `LinearStandardFormCompiler` (mixed form, the model's
    own sense): the reference `compile_model` is checked against."""
    info = LinearStandardFormCompiler().write(model, mixed_form=True, set_sense=None)
    columns = info.columns
    n_col = len(columns)
    if len(info.objectives) > 1:
        raise ValueError(f"model has {len(info.objectives)} active objectives; HighsBackend takes at most one")
    if info.objectives:
        cost = np.asarray(info.c.toarray()[0], dtype=np.float64)
        offset = float(info.c_offset[0])
        sense = -1 if info.objectives[0].sense == pyo.maximize else 1
    else:
        cost, offset, sense = np.zeros(n_col), 0.0, 1
    # mixed form: bound_type 0 is "== rhs", 1 is "<= rhs", -1 is ">= rhs"
    rhs = np.asarray(info.rhs, dtype=np.float64)
    bound_type = np.fromiter((r.bound_type for r in info.rows), np.int8, len(info.rows))
    rows = [r.constraint for r in info.rows]
    row_lower = np.where(bound_type == 1, -_INF, rhs)
    row_upper = np.where(bound_type == -1, _INF, rhs)
    A = info.A
    # a ranged constraint comes as a "<=" row directly followed by a ">=" row: merge into one row
    candidates = np.flatnonzero((bound_type[1:] == -1) & (bound_type[:-1] == 1)) + 1
    second = [i for i in candidates if rows[i] is rows[i - 1]]
    if second:
        second = np.asarray(second)
        row_lower[second - 1] = row_lower[second]
        keep = np.ones(len(rows), dtype=bool)
        keep[second] = False
        row_lower, row_upper = row_lower[keep], row_upper[keep]
        rows = [c for c, k in zip(rows, keep) if k]
        A = scipy.sparse.csc_array(A.tocsr()[keep])
    A.sort_indices()
    bounds = [v.bounds for v in columns]
    col_lower = np.fromiter((-_INF if b[0] is None else b[0] for b in bounds), np.float64, n_col)
    col_upper = np.fromiter((_INF if b[1] is None else b[1] for b in bounds), np.float64, n_col)
    integrality = np.fromiter((v.is_integer() for v in columns), np.int32, n_col)
    return StandardForm(columns, rows, sense, offset, cost, col_lower, col_upper, integrality, row_lower, row_upper, A)
