"""Solve a planning instance: build the MILP, hand it to HiGHS, write the plan back, evaluate it.

Pipeline (each step timed): compile data -> cheap infeasibility pre-check -> build the Pyomo
model -> hand-off to HiGHS (standard form, one passModel) -> baselines (also the MIP start) ->
solve -> extract the Plan -> evaluate it independently -> shadow prices from the LP with the
integer decisions fixed. ``Result.verify()`` checks solver objective == evaluator NPV.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .baselines import BASELINES, baseline_plan
from .data import Data, compile_instance
from .diagnose import precheck
from .evaluate import evaluate
from .highs_backend import HighsBackend
from .instance import Instance
from .model.build import ModelOptions, build_model
from .model.common import MWH, USD
from .model.extract import extract_plan, mip_start_values
from .model.objective import model_cashflows
from .model.params import update_params
from .result import Result


START_BASELINES = ("greedy", "keep-mining")  # MIP-start candidates when baselines are not reported


@dataclass(frozen=True)
class SolveOptions:
    time_limit_s: float | None = None
    mip_gap: float = 0.005
    threads: int | None = None
    mip_start: bool = True          # start HiGHS from the best feasible baseline plan
    baselines: bool = True          # evaluate the baselines and report the uplift
    shadow_prices: bool = True      # LP with integers fixed -> grid and power shadow prices
    cvar_weight: float | None = None  # None: the instance's risk.weight (0 without a risk section)
    cvar_alpha: float | None = None   # None: the instance's risk.alpha (0.95)
    value_of_information: bool | None = None  # EVPI and VSS (extra solves); None: on when >1 scenario
    first_stage: object | None = None  # a Plan: fix its first-stage decisions, optimise operations only
    log: bool = False
    highs_options: dict | None = None  # raw HiGHS options (name -> value) on top of the defaults below
    lazy_cash: bool = True  # enforce the cash floor lazily (exact; see HighsBackend._solve_lazy)

    def __post_init__(self) -> None:
        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s: must be > 0, got {self.time_limit_s}")
        if not 0 <= self.mip_gap < 1:
            raise ValueError(f"mip_gap: must be in [0, 1), got {self.mip_gap}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads: must be >= 1, got {self.threads}")
        if self.cvar_weight is not None and not 0 <= self.cvar_weight <= 1:
            raise ValueError(f"cvar_weight: must be in [0, 1], got {self.cvar_weight}")
        if self.cvar_alpha is not None and not 0 <= self.cvar_alpha < 1:
            raise ValueError(f"cvar_alpha: must be in [0, 1), got {self.cvar_alpha}")


def _with_risk(opts: SolveOptions, instance: Instance) -> SolveOptions:
    """Fill cvar_weight / cvar_alpha left None from the instance's risk section."""
    r = instance.risk
    w = opts.cvar_weight if opts.cvar_weight is not None else (r.weight if r is not None else 0.0)
    a = opts.cvar_alpha if opts.cvar_alpha is not None else (r.alpha if r is not None else 0.95)
    return replace(opts, cvar_weight=float(w), cvar_alpha=float(a))


def solve(instance: Instance, **options) -> Result:
    """Solve ``instance``; options are the fields of :class:`SolveOptions`. With more than one
    scenario, EVPI and VSS are computed too unless ``value_of_information=False`` (optimizer/voi.py)."""
    opts = _with_risk(SolveOptions(**options), instance)
    res = _Solver(instance, opts).run()
    voi = opts.value_of_information
    if voi is None:
        voi = len(instance.scenarios) > 1 and opts.first_stage is None
    if voi and res.solved:
        from .voi import value_of_information

        rp = res if res.cvar_weight == 0 else None  # EVPI/VSS are risk-neutral: re-solve if risk-averse
        res.voi = value_of_information(instance, here_and_now=rp, **options)
    return res


class PersistentSolver:
    """Keeps one model and one HiGHS object across solves of instances that differ only in
    numbers (prices, rates, capex, discount rate...). ``solve_with(variant)`` updates the mutable
    parameters, pushes the changed coefficients to HiGHS and warm-starts from the previous
    solution; a variant with a different structure (other sites, leases, periods, options)
    is solved cold and becomes the new persistent model."""

    def __init__(self, instance: Instance, **options) -> None:
        self.opts = SolveOptions(**options)
        self._solver = _Solver(instance, self.opts)
        self._result: Result | None = None

    def solve(self) -> Result:
        self._result = self._solver.run()
        return self._result

    def solve_with(self, instance: Instance) -> Result:
        if self._result is None or not self._solver.same_structure(instance):
            self._solver = _Solver(instance, self.opts)
            return self.solve()
        self._result = self._solver.rerun(instance)
        return self._result


class _Solver:
    def __init__(self, instance: Instance, opts: SolveOptions) -> None:
        self.inst, self.opts = instance, _with_risk(opts, instance)
        self.model = self.backend = self.data = None

    # ------------------------------------------------------------ structure test for re-use

    def same_structure(self, other: Instance) -> bool:
        if self.model is None:
            return False
        a = self.inst.model_dump(mode="json")
        b = other.model_dump(mode="json")
        return _skeleton(a) == _skeleton(b)

    # ------------------------------------------------------------ the pipeline

    def run(self) -> Result:
        t0 = time.perf_counter()
        self.data = data = compile_instance(self.inst)
        res = Result(status="error", instance_name=self.inst.name)
        diag = precheck(self.inst, data)
        if diag:
            res.status, res.diagnosis, res.message = "infeasible", diag, diag[0]
            res.build_s = time.perf_counter() - t0
            return res
        self.model = build_model(data, ModelOptions(self.opts.cvar_weight, self.opts.cvar_alpha))
        if self.opts.first_stage is not None:
            from .voi import fix_first_stage

            fix_first_stage(self.model, data, self.opts.first_stage)
        res.build_s = time.perf_counter() - t0
        self.backend = HighsBackend(self.model)
        res.handoff_s = self.backend.handoff_s
        start = self._baselines(res) if self.opts.first_stage is None else None
        return self._solve_and_finish(res, start)

    def rerun(self, instance: Instance) -> Result:
        t0 = time.perf_counter()
        self.inst = instance
        self.data = data = compile_instance(instance)
        res = Result(status="error", instance_name=instance.name)
        diag = precheck(instance, data)
        if diag:
            res.status, res.diagnosis, res.message = "infeasible", diag, diag[0]
            return res
        update_params(self.model, data)
        res.build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.backend.update()
        res.handoff_s = time.perf_counter() - t1
        if self.opts.baselines:
            self._baselines(res, want_start=False)
        return self._solve_and_finish(res, None)

    def _baselines(self, res: Result, want_start: bool = True):
        """Evaluate the baselines; return the MIP start from the best one without violations."""
        if not (self.opts.baselines or (self.opts.mip_start and want_start)):
            return None
        best = None
        # without the baseline report, only the rules that make good starts: convert-asap is never
        # the best start on the benchmarks and can take minutes (its cash checks) on medium ones
        names = BASELINES if self.opts.baselines else START_BASELINES
        for name in names:
            try:
                plan = baseline_plan(self.inst, name, self.data)
                ev = evaluate(self.inst, plan, data=self.data)
            except Exception as e:  # a baseline rule that cannot apply must not stop the solve
                res.diagnosis.append(f"baseline {name} not evaluated: {e}")
                continue
            if self.opts.baselines:
                res.baselines[name] = ev.npv_usd
                res.baseline_violations[name] = len(ev.violations)
            if not ev.violations and (best is None or ev.npv_usd > best[1]):
                best = (plan, ev.npv_usd)
        if not (self.opts.mip_start and want_start) or best is None:
            return None
        try:
            return mip_start_values(self.model, self.data, best[0])
        except ValueError:
            return None

    def _lazy_columns(self):
        """Columns of the cash balances: their floor (min_cash) is enforced lazily when asked."""
        m, b = self.model, self.backend
        if not self.opts.lazy_cash or not hasattr(m, "cash"):
            return None
        return [i for i in (b.column_index(v) for v in m.cash.values()) if i is not None]

    def _solve_and_finish(self, res: Result, start) -> Result:
        o, b, data = self.opts, self.backend, self.data
        br = b.solve(time_limit_s=o.time_limit_s, mip_gap=o.mip_gap, threads=o.threads, mip_start=start, log=o.log,
                     highs_options=o.highs_options, lazy_lower=self._lazy_columns())
        res.solve_s = br.solve_s
        res.n_variables, res.n_constraints = b.n_cols, b.n_rows
        res.n_integer = int(b._sf.integrality.sum())
        res.status = br.status
        if not br.has_solution:
            res.message = _status_message(br.status, o.time_limit_s)
            if br.status == "infeasible":
                res.diagnosis += elastic_diagnosis(b, data, time_limit_s=o.time_limit_s)
                if res.diagnosis:
                    res.message += ": " + res.diagnosis[0]
            return res
        res.objective_usd = br.objective * USD
        res.best_bound_usd = br.best_bound * USD if math.isfinite(br.best_bound) else None
        res.mip_gap = br.gap if math.isfinite(br.gap) else None
        b.load_solution()
        res.plan = extract_plan(self.model, data)
        res.model_cashflows = model_cashflows(self.model, data)
        res.evaluation = evaluate(self.inst, res.plan, data=data)
        res.cvar_weight, res.cvar_alpha = o.cvar_weight, o.cvar_alpha
        if o.cvar_weight:
            # the objective is then (1-w) E[NPV] + w CVaR: compare the evaluator with E[NPV] alone
            # (best_bound_usd and mip_gap stay those of the blended objective, kept in risk_objective_usd)
            res.risk_objective_usd = res.objective_usd
            res.objective_usd = float(_value(self.model.expected_npv)) * USD
            m = self.model
            ru = _value(m.cvar_eta) - sum(float(data.prob[w]) * _value(m.cvar_excess[w]) for w in range(data.W)) / (1 - o.cvar_alpha)
            res.cvar_model_usd = float(ru) * USD
            if o.cvar_weight >= 1 and data.W > 1 and o.first_stage is None:
                self._polish(res)
        if o.shadow_prices:
            res.shadow_prices = shadow_prices(b, self.model, data)
        res.message = _status_message(br.status, o.time_limit_s)
        return res

    def _polish(self, res: Result) -> None:
        """Weight 1: the objective ignores the operations of scenarios outside the CVaR tail;
        re-optimise all operations for E[NPV] with the first stage fixed (CVaR cannot fall)."""
        o = replace(self.opts, cvar_weight=0.0, first_stage=res.plan, baselines=False, shadow_prices=False, mip_start=False)
        pol = _Solver(self.inst, o).run()
        if pol.solved:
            res.plan, res.evaluation, res.model_cashflows = pol.plan, pol.evaluation, pol.model_cashflows
            res.objective_usd, res.cvar_polished = pol.objective_usd, True
            res.diagnosis.append("risk weight 1: operations re-optimised for E[NPV] with the first stage fixed")


# ---------------------------------------------------------------- helpers


def _value(e) -> float:
    import pyomo.environ as pyo

    return pyo.value(e)


_TEXT_KEYS_IGNORED = ("name", "description", "sources")
# Fields whose numbers reach the model only through mutable Params (optimizer/model/params.py):
# a variant that differs from the built model only in these is re-solved in place. Any other
# difference (a PUE, a contract price, a count, a month) rebuilds the model.
_PARAM_SERIES = ("btc_price_usd", "network_hashrate_eh_s", "fees_btc_per_block",
                 "power_price_usd_per_mwh", "hpc_lease_rate_index")
_PARAM_FIELDS = ("rate_usd_per_kw_month", "capex_usd_per_mw", "discount_rate")


def _skeleton(x, key: str = ""):
    """The instance with every parameter-backed number replaced by a marker: equal skeletons
    mean the built model can be updated in place."""
    if isinstance(x, dict):
        return {k: ("#" if k in _PARAM_SERIES else _skeleton(v, k)) for k, v in x.items() if k not in _TEXT_KEYS_IGNORED}
    if isinstance(x, list):
        return [_skeleton(v, key) for v in x]
    if key in _PARAM_FIELDS and isinstance(x, (int, float)) and not isinstance(x, bool):
        return "#"
    return x


def _status_message(status: str, time_limit_s) -> str:
    return {
        "optimal": "optimal within the requested gap",
        "feasible_within_gap": "stopped by a limit with an incumbent already within the requested gap",
        "time_limit_with_incumbent": f"time limit {time_limit_s} s reached; best plan found returned with its gap",
        "time_limit_no_solution": f"time limit {time_limit_s} s reached before any feasible plan was found",
        "infeasible": "the instance is infeasible",
        "unbounded": "the instance is unbounded (an option earns money without limit)",
        "error": "the solver failed",
    }.get(status, status)


def shadow_prices(backend: HighsBackend, model, data: Data) -> pd.DataFrame:
    """Grid capacity (USD per MW-month) and site power (USD per MWh) shadow prices per site,
    month and scenario, from the LP with integer decisions fixed; undiscounted and per scenario
    (the dual of E[NPV] divided by probability x discount factor)."""
    dr = backend.fix_integers_and_solve_lp()
    if dr.status != "optimal":
        return pd.DataFrame(columns=["site", "month", "scenario", "grid_usd_per_mw_month", "power_usd_per_mwh"])
    names, labels, L = data.scenario_names, data.labels, data.tl.period_months
    rows: dict[tuple, dict] = {}
    for con_name, col in (("grid_interconnect", "grid_usd_per_mw_month"), ("energy_balance", "power_usd_per_mwh")):
        comp = getattr(model, con_name, None)
        if comp is None:
            continue
        for (s, t, w), con in comp.items():
            d = dr.row_duals.get(con)
            if d is None:
                continue
            weight = float(data.prob[w] * data.df[t])
            if weight <= 0:
                continue
            per = d * USD / MWH / weight  # USD per MWh of the row's right-hand side
            # grid row rhs is GWh = MW x hours: one more MW for the period is worth per x hours
            # energy row is used - load = 0: its dual is minus the marginal cost of site energy
            val = per * float(data.hours[t]) / L if con_name == "grid_interconnect" else -per
            rows.setdefault((s, labels[t], names[w]), {})[col] = val
    df = pd.DataFrame([{"site": k[0], "month": k[1], "scenario": k[2], **v} for k, v in rows.items()])
    for c in ("grid_usd_per_mw_month", "power_usd_per_mwh"):
        if c not in df:
            df[c] = np.nan
    return df


def elastic_diagnosis(backend: HighsBackend, data: Data, time_limit_s: float | None = None, top: int = 5) -> list[str]:
    """Re-solve with a penalised slack on every row (minimise total slack, integrality kept)
    and name the constraints that had to give."""
    import highspy

    sf = backend._sf
    n, m = len(sf.columns), len(sf.rows)
    lo_rows = np.flatnonzero(np.isfinite(sf.row_lower))
    up_rows = np.flatnonzero(np.isfinite(sf.row_upper))
    A = sf.A.tocsc()
    import scipy.sparse as sp

    s_lo = sp.csc_array((np.ones(len(lo_rows)), (lo_rows, np.arange(len(lo_rows)))), shape=(m, len(lo_rows)))
    s_up = sp.csc_array((-np.ones(len(up_rows)), (up_rows, np.arange(len(up_rows)))), shape=(m, len(up_rows)))
    A2 = sp.hstack([A, s_lo, s_up], format="csc")
    k = len(lo_rows) + len(up_rows)
    cost = np.concatenate([np.zeros(n), np.ones(k)])
    lower = np.concatenate([sf.col_lower, np.zeros(k)])
    upper = np.concatenate([sf.col_upper, np.full(k, np.inf)])
    integ = np.concatenate([sf.integrality, np.zeros(k, dtype=sf.integrality.dtype)])
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if time_limit_s:
        h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(n + k, m, A2.nnz, 1, 1, 0.0, cost, lower, upper, sf.row_lower, sf.row_upper,
                A2.indptr.astype(np.int32), A2.indices.astype(np.int32), A2.data, integ.astype(np.int32))
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return ["the elastic re-solve found no point either: the bounds of some variable contradict each other"]
    x = np.asarray(h.getSolution().col_value)
    slack = x[n:]
    rows_hit: dict[int, float] = {}
    for j, r in enumerate(np.concatenate([lo_rows, up_rows])):
        if slack[j] > 1e-6:
            rows_hit[int(r)] = rows_hit.get(int(r), 0.0) + float(slack[j])
    out = []
    for r, v in sorted(rows_hit.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"constraint {_describe(sf.rows[r].name, data)} must be relaxed by {v:.4g} (model units)")
    return out


def _describe(name: str, data: Data) -> str:
    """'grid_interconnect[s1,3,0]' -> 'grid_interconnect[s1, 2026-04, base]' when the index looks like (site, t, w)."""
    if "[" not in name:
        return name
    base, idx = name.split("[", 1)
    parts = [p.strip().strip("'\"()") for p in idx.rstrip("]").split(",")]
    labels, names = data.labels, data.scenario_names
    out = []
    ints = [i for i, p in enumerate(parts) if p.lstrip("-").isdigit()]
    for i, p in enumerate(parts):
        if p.lstrip("-").isdigit():
            v = int(p)
            if len(ints) >= 2 and i == ints[-1] and 0 <= v < len(names) and base not in ("capex_budget",):
                out.append(names[v])
            elif 0 <= v < len(labels):
                out.append(labels[v])
            else:
                out.append(p)
        else:
            out.append(p)
    return f"{base}[{', '.join(out)}]"
