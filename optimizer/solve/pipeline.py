"""Solve a planning instance: build the MILP, hand it to HiGHS, write the plan back, evaluate it.

Pipeline (each step timed): compile data -> cheap infeasibility pre-check -> build the Pyomo
model -> hand-off to HiGHS (standard form, one passModel) -> baselines (also the MIP start) ->
solve -> extract the Plan -> evaluate it independently -> shadow prices from the LP with the
integer decisions fixed. ``Result.verify()`` checks solver objective == evaluator NPV.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from optimizer.constants import NO_BOUND_NOTE, Reporter, Status, reporter, status_message
from optimizer.economics.data import Data, compile_instance
from optimizer.evaluate import BASELINES, baseline_plan, evaluate
from optimizer.evaluate.treeplan import contingent_plan, tree_tables
from optimizer.instance.schema import Instance
from optimizer.model.build import ModelOptions, build_model
from optimizer.model.common import MWH, USD
from optimizer.model.extract import extract_plan, mip_start_values
from optimizer.model.fix import FIRST_STAGE_VARS, fix_first_stage
from optimizer.model.fleet import settle_terminal_mining
from optimizer.model.objective import model_cashflows
from optimizer.model.params import PARAM_NUMBER_FIELDS, PARAM_SERIES_FIELDS, StructureChanged, update_params
from optimizer.solve.backend import HighsBackend
from optimizer.solve.diagnose import cash_floor_check, elastic_diagnosis, precheck
from optimizer.solve.options import START_BASELINES, SolveOptions, search_limit, with_risk
from optimizer.solve.result import Result, TreeReport

PHASES = ("compile and pre-check", "build the model", "hand the model to HiGHS", "baselines and MIP start", "MIP solve",
          "evaluate the plan", "shadow prices")


def solve_model(instance: Instance, options: SolveOptions, progress: Reporter | None = None) -> Result:
    """One solve of ``instance`` (no value-of-information solves: ``optimizer.solve.solve`` adds them).
    ``progress`` hears of each phase (``PHASES``) and, during the MIP solve, of the incumbent,
    bound and gap each time HiGHS logs a line."""
    return _Solver(instance, options, progress).run()


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
        try:
            self._result = self._solver.rerun(instance)
        except StructureChanged:  # e.g. a lease-rate index that changes which renewals a tenant takes
            self._solver = _Solver(instance, self.opts)
            return self.solve()
        return self._result


class _Solver:
    def __init__(self, instance: Instance, opts: SolveOptions, progress: Reporter | None = None) -> None:
        self.inst, self.opts = instance, with_risk(opts, instance)
        self.model = self.backend = self.data = None
        self._blocks = None  # fix-and-optimize's site label per column (_site_blocks), once per model
        self._t0 = time.perf_counter()  # start of the current solve (``_run``, ``_rerun``): its time limit counts from it
        self.rep = reporter(progress)
        self._label = f"solve {instance.name}"

    def _phase(self, k: int) -> None:
        """Report that phase ``k`` of PHASES starts (the phases before it are done)."""
        self.rep.advance(1 if k else 0, label=f"{self._label}: {PHASES[k]}")

    def _mip_log(self, info: dict) -> None:
        inc, bound, gap = info.get("incumbent"), info.get("bound"), info.get("gap")
        text = f"{self._label}: MIP solve {info.get('seconds', 0.0):.0f} s"
        if inc is not None and math.isfinite(inc):
            text += f", best plan {inc * USD / 1e6:,.2f} M$"
        if bound is not None and math.isfinite(bound):
            text += f", bound {bound * USD / 1e6:,.2f} M$"
        if gap is not None and math.isfinite(gap) and gap < 1e6:
            text += f", gap {100 * gap:.3g} %"
        self.rep.advance(0, label=text)

    # ------------------------------------------------------------ structure test for re-use

    def same_structure(self, other: Instance) -> bool:
        if self.model is None:
            return False
        a = self.inst.model_dump(mode="json")
        b = other.model_dump(mode="json")
        return _skeleton(a) == _skeleton(b)

    # ------------------------------------------------------------ the pipeline

    def run(self) -> Result:
        self.rep.start(self._label, total=len(PHASES))
        try:
            res = self._run()
            self.rep.advance(1 if res.has_plan else 0, label=f"{self._label}: {res.status}")
            return res
        finally:
            self.rep.finish()

    def _run(self) -> Result:
        t0 = self._t0 = time.perf_counter()
        self._phase(0)
        self.data = data = compile_instance(self.inst)
        res = Result(instance_name=self.inst.name)
        sr = res.solver
        diag = precheck(self.inst, data)
        if diag:
            sr.status, sr.diagnosis, sr.message = Status.INFEASIBLE, diag, f"{status_message(Status.INFEASIBLE)}: {diag[0]}"
            sr.build_s = time.perf_counter() - t0
            return res
        self._phase(1)
        self.model = build_model(data, ModelOptions(self.opts.cvar_weight, self.opts.cvar_alpha))
        if self.opts.first_stage is not None:
            until = None if self.opts.first_stage_until is None else data.tl.period_of(self.opts.first_stage_until)
            fix_first_stage(self.model, data, self.opts.first_stage, until=until, sales=self.opts.first_stage_sales)
        sr.build_s = time.perf_counter() - t0
        self._phase(2)
        self.backend = HighsBackend(self.model)
        self._blocks = None
        sr.handoff_s = self.backend.handoff_s
        if self._cash_floor(res):
            return res
        self._phase(3)
        start = self._baselines(res) if self.opts.first_stage is None else None
        return self._solve_and_finish(res, start)

    def _cash_floor(self, res: Result) -> bool:
        """The cash-floor check on the built model before the MIP (diagnose.cash_floor_check):
        True if it proves the instance infeasible (then ``res`` says why and no MIP runs)."""
        o = self.opts
        limit = o.diagnosis_time_limit_s if o.time_limit_s is None else min(o.time_limit_s, o.diagnosis_time_limit_s)
        diag = cash_floor_check(self.backend, self.data, limit)
        if diag:
            sr = res.solver
            sr.status, sr.diagnosis, sr.message = Status.INFEASIBLE, diag, f"{status_message(Status.INFEASIBLE)}: {diag[0]}"
            sr.n_variables, sr.n_constraints = self.backend.n_cols, self.backend.n_rows
        return bool(diag)

    def rerun(self, instance: Instance) -> Result:
        self.rep.start(self._label, total=len(PHASES))
        try:
            return self._rerun(instance)
        finally:
            self.rep.finish()

    def _rerun(self, instance: Instance) -> Result:
        t0 = self._t0 = time.perf_counter()
        self.inst = instance
        self.data = data = compile_instance(instance)
        res = Result(instance_name=instance.name)
        sr = res.solver
        diag = precheck(instance, data)
        if diag:
            sr.status, sr.diagnosis, sr.message = Status.INFEASIBLE, diag, f"{status_message(Status.INFEASIBLE)}: {diag[0]}"
            return res
        update_params(self.model, data)
        sr.build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.backend.update(params_only=True)  # update_params changed Param values only
        sr.handoff_s = time.perf_counter() - t1
        if self._cash_floor(res):
            return res
        if self.opts.baselines:
            self._baselines(res, want_start=False)
        return self._solve_and_finish(res, None)

    def _baselines(self, res: Result, want_start: bool = True):
        """Evaluate the baselines; return the MIP start from the best one without violations."""
        want_start = want_start and bool(self.opts.mip_start or (self.opts.mip_start is None and self.opts.baselines))
        if not (self.opts.baselines or want_start):
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
        if not want_start or best is None:
            return None
        try:
            return mip_start_values(self.model, self.data, best[0])
        except ValueError:
            return None

    def _lazy_cash(self) -> bool:
        """Whether the cash floors are enforced by row generation: asked for, and the model has cash."""
        return self.opts.lazy_cash and hasattr(self.model, "cash")

    def _lazy_columns(self):
        """Columns of the cash balances, one chain per scenario in month order: their floor
        (min_cash) is enforced by row generation when asked (HighsBackend._solve_lazy)."""
        m, b = self.model, self.backend
        if not self._lazy_cash():
            return None
        chains = {}
        for (w, t), v in m.cash.items():
            i = b.column_index(v)
            if i is not None:
                chains.setdefault(w, []).append((t, i))
        return [[i for _, i in sorted(c)] for _, c in sorted(chains.items())]

    def _site_blocks(self) -> np.ndarray | None:
        """Per column, the index of the site its variable belongs to (the first site id, or id of a
        power contract, in its index), -1 for the company's shared columns (cash, debt, taxes,
        overhead, hedges): the blocks of fix-and-optimize (solve/fixopt.py), which re-plans two
        sites at a time with the others held. None without lazy cash floors (it runs only there).
        A label only decides which columns a step frees together: any labelling keeps the plans
        exact."""
        if not self._lazy_cash():
            return None
        if self._blocks is None or self._blocks.size != self.backend.n_cols:  # once per model (re-solves keep it)
            site_of = {s.id: i for i, s in enumerate(self.inst.sites)}
            site_of.update({c.id: site_of.get(c.site, -1) for c in self.inst.contracts if c.id not in site_of})
            out = np.full(self.backend.n_cols, -1, dtype=np.int32)
            for j, v in enumerate(self.backend.columns):
                k = v.index()
                for e in k if isinstance(k, tuple) else (k,):
                    if isinstance(e, str) and e in site_of:
                        out[j] = site_of[e]
                        break
            self._blocks = out
        return self._blocks

    def _recourse_integers(self) -> list[int]:
        """Integer columns that are not first-stage decisions (keep-or-retire at the end): what a
        polish of a heuristic's answer re-optimises for its commitments (HighsBackend._polish)."""
        b, first = self.backend, set(FIRST_STAGE_VARS)
        return [int(i) for i in b.integer_columns if b.columns[i].parent_component().local_name not in first]

    def _solve_and_finish(self, res: Result, start) -> Result:
        o, b, data, sr, rr = self.opts, self.backend, self.data, res.solver, res.risk
        self._phase(4)
        limit = search_limit(o.time_limit_s, time.perf_counter() - self._t0)  # the preparation used the rest
        br = b.solve(time_limit_s=limit, mip_gap=o.mip_gap, threads=o.threads, mip_start=start, log=o.log,
                     highs_options=o.highs_options, lazy_lower=self._lazy_columns(), on_log=self._mip_log,
                     lazy_window=o.lazy_cash_window, polish_free=self._recourse_integers(),
                     lazy_lp_rounds=o.lazy_cash_lp_rounds, blocks=self._site_blocks(),
                     portfolio=o.portfolio and (o.threads or os.cpu_count() or 1) >= 2)
        sr.solve_s = br.solve_s
        sr.n_variables, sr.n_constraints = b.n_cols, b.n_rows
        sr.n_integer = int(b._sf.integrality.sum())
        sr.status = Status(br.status)
        proven = br.status in (Status.INFEASIBLE, Status.UNBOUNDED, Status.ERROR)
        # HiGHS's dual bound, whenever it has one: also when a limit stopped it before any plan was found
        sr.best_bound_usd = br.best_bound * USD if math.isfinite(br.best_bound) and not proven else None
        if not br.has_solution:
            sr.message = self._message(br)
            if br.status == Status.INFEASIBLE:
                self.rep.advance(0, label=f"{self._label}: infeasible, diagnosing (elastic re-solve)")
                sr.diagnosis += elastic_diagnosis(b, data, time_limit_s=o.diagnosis_time_limit_s, progress=self.rep)
                if sr.diagnosis:
                    sr.message += ": " + sr.diagnosis[0]
            return res
        b.load_solution()
        if br.gap != 0 and b.adopt(br, settle_terminal_mining(self.model, data), o.mip_gap):
            b.load_solution()  # a fleet the plan retired (or under-booked) is worth keeping: kept
            sr.status = Status(br.status)
        sr.objective_usd = br.objective * USD
        sr.mip_gap = br.gap if math.isfinite(br.gap) and sr.best_bound_usd is not None else None
        self._phase(5)
        res.plan = extract_plan(self.model, data)
        res.model_cashflows = model_cashflows(self.model, data)
        res.evaluation = evaluate(self.inst, res.plan, data=data)
        res.tree = tree_report(data, res.plan)
        rr.weight, rr.alpha = o.cvar_weight, o.cvar_alpha
        if o.cvar_weight:
            # the objective is then (1-w) E[NPV] + w CVaR: compare the evaluator with E[NPV] alone
            # (best_bound_usd and mip_gap stay those of the blended objective, kept in risk.objective_usd)
            rr.objective_usd = sr.objective_usd
            sr.objective_usd = float(_value(self.model.expected_npv)) * USD
            m = self.model
            ru = _value(m.cvar_eta) - sum(float(data.prob[w]) * _value(m.cvar_excess[w]) for w in range(data.W)) / (1 - o.cvar_alpha)
            rr.model_cvar_usd = float(ru) * USD
            if o.cvar_weight >= 1 and data.W > 1 and o.first_stage is None:
                self._polish(res)
        if o.shadow_prices:
            self._phase(6)
            res.shadow_prices = shadow_prices(b, self.model, data)
        sr.message = self._message(br)
        return res

    def _message(self, br) -> str:
        """The status sentence; a solve stopped by a limit without any HiGHS bound says so."""
        msg = status_message(br.status, self.opts.time_limit_s)
        limited = br.status in (Status.TIME_LIMIT_WITH_INCUMBENT, Status.TIME_LIMIT_NO_SOLUTION, Status.FEASIBLE_WITHIN_GAP)
        if limited and self.backend.is_mip and not math.isfinite(br.best_bound):
            msg += f"; {NO_BOUND_NOTE}"
        return msg

    def _polish(self, res: Result) -> None:
        """Weight 1: the objective ignores the operations of scenarios outside the CVaR tail;
        re-optimise all operations for E[NPV] with the first stage fixed (CVaR cannot fall)."""
        o = replace(self.opts, cvar_weight=0.0, first_stage=res.plan, baselines=False, shadow_prices=False, mip_start=False)
        pol = _Solver(self.inst, o).run()
        if pol.solved:
            res.plan, res.evaluation, res.model_cashflows = pol.plan, pol.evaluation, pol.model_cashflows
            res.solver.objective_usd, res.risk.polished = pol.objective_usd, True
            res.solver.diagnosis.append("risk weight 1: operations re-optimised for E[NPV] with the first stage fixed")


# ---------------------------------------------------------------- helpers


def tree_report(data: Data, plan) -> TreeReport:
    """The tree's shape and, on a staged tree, the plan read per node (``evaluate.treeplan``)."""
    tree = data.tree
    d = tree.describe()
    rep = TreeReport(d["form"], d["branch_months"], d["nodes"], d["leaves"], d["stages"])
    if tree.two_stage or plan is None:
        return rep
    rep.tables = tree_tables(data, plan)
    rep.decide_now = rep.tables["decide_now"]["words"].tolist()
    rep.contingent_plan = contingent_plan(data, rep.tables["decisions_by_node"])
    return rep


def _value(e) -> float:
    return pyo.value(e)


_TEXT_KEYS_IGNORED = ("name", "description", "sources")


def _skeleton(x, key: str = ""):
    """The instance with every parameter-backed number (model.params.PARAM_*_FIELDS) replaced by a
    marker: equal skeletons mean the built model can be updated in place; any other difference
    (a PUE, a contract price, a count, a month) rebuilds the model."""
    if isinstance(x, dict):
        return {k: ("#" if k in PARAM_SERIES_FIELDS else _skeleton(v, k)) for k, v in x.items() if k not in _TEXT_KEYS_IGNORED}
    if isinstance(x, list):
        return [_skeleton(v, key) for v in x]
    if key in PARAM_NUMBER_FIELDS and isinstance(x, (int, float)) and not isinstance(x, bool):
        return "#"
    return x


def shadow_prices(backend: HighsBackend, model, data: Data) -> pd.DataFrame:
    """Grid capacity (USD per MW-month) and site power (USD per MWh) shadow prices per site,
    month and scenario, from the LP with integer decisions fixed; undiscounted and per scenario
    (the dual of E[NPV] divided by probability x discount factor; on a tree, per operations node,
    named by its representative scenario, and divided by the node's probability)."""
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
            weight = float(data.tree.op_node(t, w).probability * data.df[t])  # p_w in the two-stage form
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
