"""Build the allocation MILP from compiled Data: ``build_model(data, options) -> ConcreteModel``.

Order matters only for the registry: every module registers its cash-flow terms, then the
cash balance and the capex budget read them, then the objective is assembled once.
See models/formulation.md for the written model.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyomo.environ as pyo
from pyomo.common.gc_manager import PauseGC

from optimizer.economics.data import Data
from optimizer.model import financing, fleet, flex, gpu, hedges, leases, objective, overhead, params, policy, power, sites, treasury


@dataclass(frozen=True)
class ModelOptions:
    cvar_weight: float = 0.0  # 0: maximise E[NPV]; w: (1 - w) E[NPV] + w CVaR_alpha[NPV]
    cvar_alpha: float = 0.95


def build_model(data: Data, options: ModelOptions | dict | None = None) -> pyo.ConcreteModel:
    if options is None:
        options = ModelOptions()
    elif isinstance(options, dict):
        options = ModelOptions(**options)
    with PauseGC():  # the cyclic GC rescans the growing model on every allocation burst: ~2x slower builds
        m = pyo.ConcreteModel(name=data.inst.name)
        m.tree = data.tree  # who decides what at which node (economics/tree.py; common.ik, ok)
        m.cashflow_terms = []
        m.unlevered_terms = []  # valuation-only terms (financing.objective: project)
        m.site_share = dict(data.lev.site_share)  # joint-venture sites: register() books their share
        params.build(m, data)
        sites.build(m, data)
        gpu.build(m, data)             # GPUs in service: racks and load the leases' rows add
        fleet.build(m, data)
        leases.build(m, data)
        gpu.gpu_cover(m, data)         # GPU cloud contracts need GPUs; merchant revenue of the rest
        gpu.cashflows(m, data)
        power.build(m, data)
        flex.build(m, data)
        overhead.build(m, data)
        hedges.build(m, data)
        sites.new_build_requirements(m, data)  # reads contract signings
        treasury.build(m, data)
        financing.build_debt(m, data)
        financing.build_taxes(m, data)  # after every other term: taxable income reads the registry
        treasury.cash_balance(m, data)
        policy.build(m, data)
        objective.build(m, data, options.cvar_weight, options.cvar_alpha)
    return m
