"""The objective, assembled once from the cash-flow registry, and per-line values of the model.

E[NPV] ($M) = sum over registered terms of weight x df x expr, weight = the probability of
the term's tree node (the sum over the scenarios through it): prob[w] for a two-stage operation
term of scenario w, and the sum of the probabilities (1 within 1e-9) for a root term; df = df[t] (each month's
share of the period discounted at the month's end), df_end for terminal lines (the horizon's
end). With cvar_weight > 0 the
objective is (1 - weight) E[NPV] + weight CVaR_alpha[NPV] (Rockafellar-Uryasev, linear).

With a financing section: df is the discount factor of the term's rate class (df_class) when
financing.discount_rates is given; the NPV is the equity NPV (every registered term) unless
financing.objective is ``project``: then the levered lines (debt, taxes with interest deducted)
are left out and the taxes computed without debt (``m.unlevered_terms``) are added.
"""

from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import SumExpression

from optimizer.economics.data import Data
from optimizer.economics.ledger import ITEM_BY_NAME, LEVERED_ITEMS, TERMINAL_ITEMS
from optimizer.model.common import USD, add_constraints, add_vars, linear_value


def node_weight(term) -> float:
    """Probability of a term's node: the sum over its scenarios (at the root, the sum of every
    probability: 1 within check_probabilities' 1e-9, and exactly the weight the evaluator gives a
    first-stage line, which it books once per scenario)."""
    return float(term.node.probability)


def term_df(m, term):
    """The discount factor Param of a registered term: of its rate class when
    financing.discount_rates is given (df_class / df_end_class), else df; terminal lines take
    the horizon-end factor (df_end), the others their period's (df[t])."""
    terminal = term.item in TERMINAL_ITEMS
    if hasattr(m, "df_class"):
        c = ITEM_BY_NAME[term.item].rate_class
        return m.df_end_class[c] if terminal else m.df_class[c, term.period]
    return m.df_end[0] if terminal else m.df[term.period]


def _weighted(m, term):
    return (node_weight(term) * term_df(m, term)) * term.expr


def objective_terms(m, data: Data) -> list:
    """The terms the objective values: every registered term (equity NPV), or with
    financing.objective = project the unlevered ones plus the taxes computed without debt."""
    if data.fin is not None and data.fin.fin.objective == "project":
        return [t for t in m.cashflow_terms if t.item not in LEVERED_ITEMS] + list(getattr(m, "unlevered_terms", []))
    return m.cashflow_terms


def expected_npv(m, data: Data):
    """E[NPV] in $M: one summand per valued term."""
    return SumExpression([_weighted(m, term) for term in objective_terms(m, data)])


def scenario_npv(m, data: Data, w: int):
    """NPV of scenario w in $M (first-stage terms plus scenario w's terms)."""
    return SumExpression([term_df(m, t) * t.expr for t in objective_terms(m, data) if w in t.node.members])


def build(m, data: Data, cvar_weight: float = 0.0, cvar_alpha: float = 0.95) -> None:
    if not 0 <= cvar_weight <= 1:
        raise ValueError(f"cvar_weight: must be in [0, 1], got {cvar_weight}")
    if not 0 <= cvar_alpha < 1:
        raise ValueError(f"cvar_alpha: must be in [0, 1), got {cvar_alpha}")
    m.expected_npv = pyo.Expression(expr=expected_npv(m, data))
    if cvar_weight == 0:
        m.objective = pyo.Objective(expr=m.expected_npv, sense=pyo.maximize)
        return
    m.objective = pyo.Objective(expr=(1.0 - cvar_weight) * m.expected_npv + cvar_weight * cvar(m, data, cvar_alpha),
                                sense=pyo.maximize)


def cvar(m, data: Data, alpha: float):
    """CVaR_alpha of the NPV's lower tail (Rockafellar-Uryasev): eta - 1/(1-alpha) E[excess],
    excess[w] >= eta - NPV_w, excess >= 0."""
    m.cvar_eta = pyo.Var(domain=pyo.Reals)
    m.cvar_excess = add_vars(m, "cvar_excess", list(range(data.W)), pyo.NonNegativeReals)
    add_constraints(m, "cvar_excess_def", {w: m.cvar_excess[w] >= m.cvar_eta - scenario_npv(m, data, w) for w in range(data.W)})
    return m.cvar_eta - sum(float(data.prob[w]) * m.cvar_excess[w] for w in range(data.W)) / (1.0 - alpha)


def model_cashflows(m, data: Data) -> pd.DataFrame:
    """Cash-flow lines at the model's current variable values, in USD, with the evaluator's
    columns (scenario, month, period, site, item, usd); first-stage terms repeat in every scenario;
    terms with the same key are summed."""
    names, labels = data.scenario_names, data.labels
    rows = []
    for term in m.cashflow_terms:
        v = linear_value(term.expr) * USD
        for w in term.node.scenarios:
            rows.append((names[w], labels[term.period], term.period, term.site, term.item, v))
    df = pd.DataFrame(rows, columns=["scenario", "month", "period", "site", "item", "usd"])
    if len(df):
        df = df.groupby(["scenario", "month", "period", "site", "item"], as_index=False, sort=True)["usd"].sum()
    return df
