"""Shared pieces of the allocation MILP: model units, the cash-flow registry, small builders.

Model units (the ONE place they are defined; see models/formulation.md, "Units"):
- money in $M: a model value v means v x USD dollars; the objective x USD = E[NPV] in USD;
- energy in GWh: a model value v means v x MWH MWh;
- ASIC units in thousands: a model value v means v x UNITS units;
- hashrate sold forward in EH/s: a model value v means v x PHS PH/s.
With these, coefficients sit between ~1e-3 and ~1e3 on realistic instances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.param import ParamData
from pyomo.core.expr.numeric_expr import (
    LinearExpression,
    MonomialTermExpression,
    NegationExpression,
    NPV_DivisionExpression,
    NPV_NegationExpression,
    NPV_ProductExpression,
    ProductExpression,
    SumExpression,
)
from pyomo.core.expr.numvalue import NumericValue, native_numeric_types

from optimizer.economics.ledger import ITEM_BY_NAME
from optimizer.economics.tree import Node

USD = 1e6  # USD per model money unit ($M)
MWH = 1e3  # MWh per model energy unit (GWh)
UNITS = 1e3  # ASICs per model fleet unit (thousand units)
PHS = 1e3  # PH/s per model hashrate unit of a hedge (EH/s)

@dataclass(frozen=True)
class Term:
    """One registered cash-flow term: ``expr`` is $M (inflow +), linear in the variables, in the
    rows of ``period`` of every scenario through ``node`` (an ``economics.tree.Node``).

    ``scenario`` None marks a term of the root node, the same in every scenario (the first stage
    of the two-stage form); otherwise it is the node's representative scenario (scenario ``w``
    itself for the operations of scenario ``w`` in the two-stage form). ``asset`` names the
    depreciation class of a capex term (``optimizer.instance.financing.ASSET_CLASSES``).
    """

    item: str
    site: str
    period: int
    scenario: int | None
    expr: NumericValue | float  # a Pyomo expression in $M, linear in the variables (Params as coefficients)
    asset: str | None = None
    node: Node | None = None  # set by register() / make_term()
    share: float = 1.0  # the company's share of the site (joint venture): expr is already multiplied by it


def make_term(m, item: str, site: str, period: int, scenario, expr, asset: str | None = None) -> Term:
    """A Term at its tree node. ``scenario``: a tree ``Node``; an int ``w``: the node running the
    operations of ``period`` on scenario ``w``'s path (leaf ``w`` in the two-stage form); None: the
    root (the two-stage first stage)."""
    tree = m.tree
    if scenario is None:
        if not tree.two_stage and tree.inv_depth[period] > 0:
            raise ValueError(f"term {item} of period {period}: a term of a later stage needs its tree node")
        node = tree.nodes[0]
    elif isinstance(scenario, (int, np.integer)):
        node = tree.op_node(int(period), int(scenario))
    else:
        node = scenario
    share = getattr(m, "site_share", {}).get(site, 1.0)
    if share != 1.0:
        expr = share * expr
    return Term(item, site, int(period), None if node.depth == 0 else node.rep, expr, asset, node, share)


def register(m, item: str, site: str, period: int, scenario, expr, asset: str | None = None) -> None:
    """Add a term to ``m.cashflow_terms`` (at its tree node, see ``make_term``); exact zeros (a 0
    constant, an empty sum) are skipped. Capex terms (investment outflows that are depreciated)
    name their ``asset`` class. A term booked at a site held at a share < 1 (``m.site_share``,
    joint ventures) counts only that share: its expression is multiplied by the share (in
    ``make_term``), once, so the objective, cash balance, capex budget and taxes all read the
    company's share (rows that need the whole project's amount divide by ``Term.share``)."""
    if item not in ITEM_BY_NAME:
        raise KeyError(f"unknown cash-flow item {item!r}")
    if isinstance(expr, (int, float)) and expr == 0:
        return
    if isinstance(expr, LinearExpression) and expr.nargs() == 0:
        return
    m.cashflow_terms.append(make_term(m, item, site, period, scenario, expr, asset))


# ---------------------------------------------------------------- node-held variables


def ik(m, base: tuple, t: int, r: int):
    """Index of a commitment variable of period ``t`` on scenario ``r``'s path: ``base + (t,)`` in
    the two-stage form (every commitment at the root), else ``base + (t, rep)`` with ``rep`` the
    representative of the node taking the commitments of ``t`` (``economics.tree``)."""
    if m.tree.two_stage:
        return base + (t,) if base else t  # a 1-tuple key is its element (Pyomo's normalized index)
    return base + (t, m.tree.inv(t, r))


def isplit(m, key, nbase: int) -> tuple[tuple, int, int]:
    """(base, t, rep) of a commitment variable's index (rep 0, the root's, in the two-stage form)."""
    key = key if isinstance(key, tuple) else (key,)
    if m.tree.two_stage:
        return key[:nbase], key[nbase], 0
    return key[:nbase], key[nbase], key[nbase + 1]


def ok(m, base: tuple, t: int, r: int) -> tuple:
    """Index of an operation variable of period ``t`` on scenario ``r``'s path: ``base + (t, rep)``,
    ``rep`` the representative of the node running the operations of ``t`` (``r`` itself in the
    two-stage form)."""
    return base + (t, m.tree.op(t, r))


def rk(m, key, r: int):
    """A row key that repeats per node (or per path) in a staged tree: ``key`` in the two-stage
    form, ``key + (r,)`` otherwise."""
    if m.tree.two_stage:
        return key
    return (key if isinstance(key, tuple) else (key,)) + (r,)


def inv_at(m, t: int, r: int):
    """The tree node taking the commitments of period ``t`` on scenario ``r``'s path."""
    return m.tree.inv_node(t, r)


def linear_value(expr) -> float:
    """The value of an expression at the variables' current values, as ``pyo.value`` gives it (the
    same operations in the same order), with the shapes the builders write (linear expressions,
    sums, monomials, Params and constant products, quotients and negations of them) evaluated
    directly: Pyomo's general evaluator costs ~30 microseconds per cash-flow term, a sweep point
    evaluates thousands. Anything else, and an unset variable (whose error Pyomo words), goes to
    ``pyo.value``."""
    cls = expr.__class__
    if cls in native_numeric_types:
        return expr
    if cls is LinearExpression or cls is SumExpression:
        total = 0
        for arg in expr.args:
            c = arg.__class__
            if c is MonomialTermExpression:
                coef, var = arg.args
                x = var.value
                if x is None:
                    return pyo.value(expr)
                total += (coef if coef.__class__ in native_numeric_types else linear_value(coef)) * x
            elif c in native_numeric_types:
                total += arg
            else:
                total += linear_value(arg)
        return total
    if cls is ParamData:
        return expr.value
    if cls is MonomialTermExpression or cls is ProductExpression or cls is NPV_ProductExpression:
        a, b = expr.args
        return linear_value(a) * linear_value(b)
    if cls is NPV_DivisionExpression:
        a, b = expr.args
        return linear_value(a) / linear_value(b)
    if cls is NegationExpression or cls is NPV_NegationExpression:
        return -linear_value(expr.args[0])
    if expr.is_variable_type() and expr.value is not None:
        return expr.value
    if expr.is_named_expression_type():
        return linear_value(expr.expr)
    return pyo.value(expr)


def lin(coefs, variables, constant: float = 0.0):
    """``constant + sum coefs x variables`` as one LinearExpression (coefs: floats or Params)."""
    return LinearExpression(constant=constant, linear_coefs=list(coefs), linear_vars=list(variables))


class Acc:
    """Accumulates linear pieces per key: key -> ([coef], [var], constant)."""

    def __init__(self):
        self.rows: dict = {}

    def add(self, key, coef: float, var) -> None:
        r = self.rows.get(key)
        if r is None:
            r = self.rows[key] = [[], [], 0.0]
        if isinstance(var, (int, float)):
            r[2] += coef * var
        else:
            r[0].append(coef)
            r[1].append(var)

    def add_const(self, key, value: float) -> None:
        r = self.rows.get(key)
        if r is None:
            r = self.rows[key] = [[], [], 0.0]
        r[2] += value

    def expr(self, key):
        r = self.rows.get(key)
        return 0.0 if r is None else (lin(r[0], r[1], r[2]) if r[0] else r[2])

    def items(self):
        for k in self.rows:
            yield k, self.expr(k)


def is_const(e) -> bool:
    return isinstance(e, (int, float))


def add_constraints(m, name: str, rows: dict) -> None:
    """An indexed Constraint ``m.<name>[key]`` from a dict key -> relational expression.

    Rows whose relation is trivially True (constant) are dropped; a trivially False one raises,
    since it means the instance data alone is contradictory for this constraint family.
    """
    clean = {}
    for k, r in rows.items():
        if isinstance(r, bool):  # a relation between constants
            if not r:
                raise ValueError(f"constraint {name}[{k}] is infeasible on the data alone")
            continue
        clean[k] = r
    if not clean:
        return
    keys = list(clean)
    setattr(m, name + "_index", pyo.Set(initialize=keys, ordered=True))
    idx = getattr(m, name + "_index")

    def rule(_m, *k):
        return clean[k[0] if len(k) == 1 else k]

    setattr(m, name, pyo.Constraint(idx, rule=rule))


def add_vars(m, name: str, keys: list, domain=pyo.NonNegativeReals, bounds: dict | None = None, ub=None):
    """An indexed Var over ``keys`` with per-key (lb, ub) from ``bounds`` or a common ``ub``."""
    setattr(m, name + "_index", pyo.Set(initialize=keys, ordered=True))
    idx = getattr(m, name + "_index")
    if bounds is not None:
        v = pyo.Var(idx, domain=domain, bounds=lambda _m, *k: bounds[k[0] if len(k) == 1 else k])
    elif ub is not None:
        v = pyo.Var(idx, domain=domain, bounds=(0, ub))
    else:
        v = pyo.Var(idx, domain=domain)
    setattr(m, name, v)
    return v
