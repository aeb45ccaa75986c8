"""Value of information of a stochastic instance (risk-neutral, expected NPV):

- EVPI = WS - RP: wait-and-see (each scenario solved alone with probability 1, optimal NPVs
  weighted by the probabilities) minus here-and-now (the stochastic optimum's E[NPV]).
- VSS = RP - EEV: here-and-now minus the expected NPV of the mean-value plan, i.e. the
  first stage of the optimum of the expected-value instance (one scenario holding the
  probability-weighted mean path of every series), fixed in the stochastic model whose
  operations are then re-optimised per scenario by the MILP (an LP once the first stage is
  fixed). The MILP is used rather than the operating rule of ``optimizer.operations``
  because the rule does not time treasury BTC sales optimally.

See models/risk.md. The sub-instances are built by ``optimizer.instance.variants``, the first
stage is fixed by ``optimizer.model.fix``.
"""

from __future__ import annotations

import time

from optimizer.constants import Reporter, reporter
from optimizer.instance.schema import Instance
from optimizer.instance.variants import mean_value_instance, scenario_instance
from optimizer.solve.options import SolveOptions
from optimizer.solve.pipeline import solve_model
from optimizer.solve.result import Result, ValueOfInformation


def value_of_information(instance: Instance, here_and_now=None, progress: Reporter | None = None,
                         **solve_options) -> ValueOfInformation:
    """EVPI and VSS of ``instance`` (risk-neutral). ``here_and_now``: a solved risk-neutral
    Result of ``instance`` to re-use (else it is solved). ``solve_options`` go to every solve
    (mip_gap, time_limit_s, threads); baselines, shadow prices and risk are off. ``progress``
    hears of each solve (one per scenario, the mean-value instance and its plan's re-optimisation)."""
    rep = reporter(progress)
    rep.start("value of information (EVPI, VSS)", total=len(instance.scenarios) + 2 + (here_and_now is None))
    try:
        return _value_of_information(instance, here_and_now, rep, **solve_options)
    finally:
        rep.finish()


def _value_of_information(instance: Instance, here_and_now, rep: Reporter, **solve_options) -> ValueOfInformation:
    t0 = time.perf_counter()
    opts = {k: v for k, v in solve_options.items() if k in ("mip_gap", "time_limit_s", "threads", "log")}
    opts.update(baselines=False, shadow_prices=False, cvar_weight=0.0, value_of_information=False)
    out = ValueOfInformation(None, None, None, None, None, None, mip_gap=float(opts.get("mip_gap", 0.005)))
    def solve(inst: Instance, what: str, **extra) -> Result:
        rep.advance(0, label=f"value of information: {what}")
        r = solve_model(inst, SolveOptions(**{**opts, **extra}))
        rep.advance(1)
        return r

    rp = here_and_now if here_and_now is not None else solve(instance, "here-and-now solve")
    out.solves += here_and_now is None
    if not rp.solved:
        out.notes.append(f"here-and-now solve: {rp.status}")
        out.seconds = time.perf_counter() - t0
        return out
    out.here_and_now_usd = rp.npv_usd

    # wait-and-see: each scenario alone (cold solves: a persistent model measured no faster here,
    # and a few model rows depend on the prices' signs, which the structure test does not see)
    ws, names = {}, [s.name for s in instance.scenarios]
    for w, name in enumerate(names):
        r = solve(scenario_instance(instance, w), f"wait-and-see, scenario {name}")
        out.solves += 1
        if not r.solved:
            out.notes.append(f"wait-and-see solve of scenario {name}: {r.status}")
            break
        ws[name] = r.npv_usd
    if len(ws) == len(names):
        out.wait_and_see_by_scenario_usd = ws
        out.wait_and_see_usd = float(sum(s.probability * ws[s.name] for s in instance.scenarios))
        out.evpi_usd = out.wait_and_see_usd - out.here_and_now_usd

    # expected value problem, then its first stage under every scenario
    ev = solve(mean_value_instance(instance), "mean-value instance")
    out.solves += 1
    if not ev.solved:
        out.notes.append(f"mean-value instance solve: {ev.status}")
    else:
        out.expected_value_problem_usd = ev.npv_usd
        eev = solve(instance, "mean-value plan in every scenario", first_stage=ev.plan, mip_start=False)
        out.solves += 1
        if eev.solved:
            out.mean_value_plan_usd = eev.npv_usd
            out.vss_usd = out.here_and_now_usd - eev.npv_usd
        elif eev.status == "infeasible":
            out.notes.append("the mean-value plan is infeasible in at least one scenario (VSS is unbounded)")
        else:
            out.notes.append(f"mean-value plan re-optimisation: {eev.status}")
    out.seconds = time.perf_counter() - t0
    return out
