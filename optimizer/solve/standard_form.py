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

Re-solves after mutable Param changes (`Recompiler`). A sweep point changes Param values only
(`model.params.update_params`), and on the bundled instances those Params sit in the objective
and in a handful of rows (14 of 4,366 on instances/demo.yaml). `Recompiler.recompile` walks again
only the objective and the rows holding a Param whose value changed, and writes their numbers into
copies of the previous arrays (same columns, rows and sparsity, so HiGHS takes the differences).
It gives up (None: the caller compiles the whole model) whenever the result could differ from
`compile_model`'s: a column became fixed, a changed row holds a fixed variable or lost or gained a
variable, a row dropped as constant holds a changed Param, a column met only in the objective
lost its cost. The tests check its arrays equal `compile_model`'s exactly after such changes on
every bundled instance.
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
from pyomo.core.expr.visitor import identify_mutable_parameters
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


def _bounded_linear(con, visitor):
    """(lower, upper, constant, {id(var): coef}) of a constraint: its bounds' values (None for
    none) and its body as a linear expression."""
    lb, body, ub = con.to_bounded_expression()
    if lb is not None and lb.__class__ not in native_numeric_types:
        lb = pyo.value(lb)
    if ub is not None and ub.__class__ not in native_numeric_types:
        ub = pyo.value(ub)
    const, lin = _linear(body, visitor)
    return lb, ub, const, lin


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
        lb, ub, const, lin = _bounded_linear(con, visitor)
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

    lower, upper, integrality = _column_arrays(columns)
    sense = 1
    if objectives:
        sense = -1 if objectives[0].sense == pyo.maximize else 1
    return StandardForm(columns, rows, sense, offset, cost, lower, upper, integrality, row_lower, row_upper, A)


def _column_arrays(columns: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper bounds (+-inf for none) and integrality of the columns, as they are now."""
    lower = np.empty(len(columns))
    upper = np.empty(len(columns))
    for j, v in enumerate(columns):
        lo, up = v.bounds
        lower[j] = -_INF if lo is None else lo
        upper[j] = _INF if up is None else up
    return lower, upper, np.fromiter((v.is_integer() for v in columns), np.int32, len(columns))


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


class Recompiler:
    """The standard form of a model after some mutable Params changed value, by walking again only
    the objective and the rows that hold them (see the module docstring). Built from the model and
    its current standard form `sf` (compiled with the Params' current values, which it records).
    Its caller guarantees that no component was added, removed, activated or deactivated since;
    Param values, variable bounds, domains and fixings may have changed (checked here)."""

    def __init__(self, model: pyo.ConcreteModel, sf: StandardForm):
        self.model = model
        self._params: dict[int, object] = {}  # id -> ParamData met in a row or the objective
        self._rows_of: dict[int, list[int]] = {}  # id(ParamData) -> rows holding it
        self._in_dropped: set[int] = set()  # Params of constraints that are not rows (constant rows)
        row_of = {id(c): i for i, c in enumerate(sf.rows)}
        sorter = FileDeterminism_to_SortComponents(FileDeterminism.ORDERED)
        with PauseGC():
            for con in model.component_data_objects(pyo.Constraint, active=True, sort=sorter):
                params = identify_mutable_parameters(con.expr)
                i = row_of.get(id(con))
                for p in params:
                    self._params[id(p)] = p
                    if i is None:
                        self._in_dropped.add(id(p))
                    else:
                        self._rows_of.setdefault(id(p), []).append(i)
            objectives = list(model.component_data_objects(pyo.Objective, active=True))
            self._objective = objectives[0] if objectives else None
            self._obj_params: set[int] = set()
            if self._objective is not None:
                for p in identify_mutable_parameters(self._objective.expr):
                    self._params[id(p)] = p
                    self._obj_params.add(id(p))
        self._values = {k: p.value for k, p in self._params.items()}
        # fixed variables are constants in the rows: one unfixed or moved needs compile_model
        self._fixed = [(v, v.value) for v in model.component_data_objects(pyo.Var) if v.fixed]
        # the entries of each row in A.data (A is column-wise): a CSR view of positions
        A = sf.A
        pos = scipy.sparse.csc_array((np.arange(A.nnz, dtype=np.float64), A.indices, A.indptr), shape=A.shape).tocsr()
        self._row_ptr, self._row_cols = pos.indptr, pos.indices
        self._row_pos = pos.data.astype(np.int64)
        self._col_of = {id(v): j for j, v in enumerate(sf.columns)}
        self._no_rows = np.diff(A.indptr) == 0

    def recompile(self, sf: StandardForm) -> StandardForm | None:
        """The standard form now, from `sf` (the last one compiled or recompiled), or None when only
        `compile_model` can tell (see the module docstring)."""
        changed = [k for k, p in self._params.items() if p.value != self._values[k]]
        if any(k in self._in_dropped for k in changed):
            return None
        columns = sf.columns
        if any(v.fixed for v in columns) or any(not v.fixed or v.value != x for v, x in self._fixed):
            return None
        lower, upper, integrality = _column_arrays(columns)
        rows = sorted({i for k in changed for i in self._rows_of.get(k, ())})
        visitor = LinearRepnVisitor({}, var_recorder=TemplateVarRecorder({}, FileDeterminism_to_SortComponents(FileDeterminism.ORDERED)))
        data, row_lower, row_upper = sf.A.data.copy(), sf.row_lower.copy(), sf.row_upper.copy()
        col_of = self._col_of
        with PauseGC():
            for i in rows:
                lb, ub, const, lin = _bounded_linear(sf.rows[i], visitor)
                a, b = self._row_ptr[i], self._row_ptr[i + 1]
                if (lb is None and ub is None) or len(lin) != b - a:
                    return None
                cols = self._row_cols[a:b]
                where = dict(zip(cols.tolist(), self._row_pos[a:b].tolist()))
                for vid, coef in lin.items():
                    j = col_of.get(vid)
                    if j is None or j not in where:  # a fixed variable, or one the row did not hold
                        return None
                    data[where[j]] = coef
                row_lower[i] = -_INF if lb is None else lb - const
                row_upper[i] = _INF if ub is None else ub - const
            cost, offset, sense = sf.cost, sf.offset, sf.sense
            if self._objective is not None and any(k in self._obj_params for k in changed):
                const, lin = _linear(self._objective.expr, visitor)
                cost = np.zeros(len(columns))
                for vid, coef in lin.items():
                    j = col_of.get(vid)
                    if j is None:
                        return None
                    cost[j] = coef
                if (self._no_rows & (cost == 0)).any():  # compile_model would drop that column
                    return None
                offset = float(const)
                sense = -1 if self._objective.sense == pyo.maximize else 1
        A = scipy.sparse.csc_array((data, sf.A.indices, sf.A.indptr), shape=sf.A.shape)
        self._values.update({k: self._params[k].value for k in changed})
        return StandardForm(columns, sf.rows, sense, offset, cost, lower, upper, integrality, row_lower, row_upper, A)
