"""Value of information of a stochastic instance (risk-neutral, expected NPV):

- EVPI = WS - RP: wait-and-see (each scenario solved alone with probability 1, optimal NPVs
  weighted by the probabilities) minus here-and-now (the stochastic optimum's E[NPV]).
- VSS = RP - EEV: here-and-now minus the expected NPV of the mean-value plan, i.e. the
  first stage of the optimum of the expected-value instance (one scenario holding the
  probability-weighted mean path of every series), fixed in the stochastic model whose
  operations are then re-optimised per scenario by the MILP (an LP once the first stage is
  fixed). The MILP is used rather than the operating rule of ``optimizer.operations``
  because the rule does not time treasury BTC sales optimally.

See models/risk.md. Helpers here (one-scenario sub-instances, fixing a first stage) are
shared with progressive hedging (``optimizer.ph``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .instance import Instance, Scenario
from .series import Series
from .timeline import month_label

# first-stage decision variables of the MILP (optimizer/model/): the rest of the first stage
# (nb, gcum, own, inst, hpc_gwh, hpc_own, signed_owned, first_stage_net) is defined from them
FIRST_STAGE_VARS = ("conv", "gx", "buy", "ret", "x", "y", "sign", "sell", "acq")


# ---------------------------------------------------------------- sub-instances


def _with_scenarios(instance: Instance, scenarios: list[Scenario]) -> Instance:
    sub = instance.model_copy(update={"scenarios": scenarios, "scenario_generator": None})
    sub._base_dir = instance._base_dir
    return sub


def scenario_instance(instance: Instance, w: int) -> Instance:
    """The instance with only scenario ``w``, given probability 1 (same first-stage structure)."""
    sc = instance.scenarios[w]
    return _with_scenarios(instance, [sc.model_copy(update={"probability": 1.0})])


def mean_value_instance(instance: Instance) -> Instance:
    """One scenario ``mean`` whose every series (BTC price, hashrate, fees, power price per
    market, HPC index) is the probability-weighted mean of the scenarios' monthly paths."""
    tl = instance.timeline
    start, n = tl.start, tl.n_months
    p = np.array([s.probability for s in instance.scenarios])
    labels = [month_label(start + k) for k in range(n)]

    def mean(getter) -> Series:
        paths = np.array([getter(s).monthly(start, n) for s in instance.scenarios])
        return Series(points={lab: float(v) for lab, v in zip(labels, p @ paths)})

    markets = set.intersection(*(set(s.power_price_usd_per_mwh) for s in instance.scenarios))
    sc = Scenario(
        name="mean", probability=1.0,
        btc_price_usd=mean(lambda s: s.btc_price_usd),
        network_hashrate_eh_s=mean(lambda s: s.network_hashrate_eh_s),
        fees_btc_per_block=mean(lambda s: s.fees_btc_per_block),
        power_price_usd_per_mwh={k: mean(lambda s, k=k: s.power_price_usd_per_mwh[k]) for k in sorted(markets)},
        hpc_lease_rate_index=mean(lambda s: s.hpc_lease_rate_index),
    )
    return _with_scenarios(instance, [sc])


# ---------------------------------------------------------------- fixing a first stage


def first_stage_vars(m) -> list:
    """The first-stage decision VarData of a built model, in a deterministic order."""
    out = []
    for name in FIRST_STAGE_VARS:
        var = getattr(m, name)
        out += [var[k] for k in getattr(m, name + "_index")]
    return out


def fix_first_stage(m, data, plan) -> None:
    """Fix the model's first-stage decisions to ``plan``'s (ValueError if the plan uses a
    decision the model does not have)."""
    from .model.extract import mip_start_values

    vals = mip_start_values(m, data, plan.first_stage())
    for v in first_stage_vars(m):
        v.fix(vals[v])
    # Shares of a splittable lease are floats (e.g. 0.9999999999999998 from a solve): with every
    # term fixed, Pyomo rejects lease_split (sum_s x = y) as trivially infeasible unless it holds
    # exactly. Free the largest share of each row within 1e-12 of its value: noise is absorbed, a
    # plan whose shares really do not sum to 1 stays infeasible.
    rows = {k: [] for k in getattr(m, "lease_split", {})}
    for k in m.x_index:
        if (k[0], k[2]) in rows:
            rows[(k[0], k[2])].append(m.x[k])
    for xs in rows.values():
        if xs:
            v = max(xs, key=lambda x: x.value)
            v.unfix()
            v.setlb(max(0.0, v.value - 1e-12))
            v.setub(min(1.0, v.value + 1e-12))


# ---------------------------------------------------------------- EVPI and VSS


@dataclass
class ValueOfInformation:
    evpi_usd: float | None
    vss_usd: float | None
    wait_and_see_usd: float | None          # sum_w p_w max NPV_w
    here_and_now_usd: float | None          # max E[NPV] (stochastic solution)
    mean_value_plan_usd: float | None       # EEV: E[NPV] of the mean-value plan, operations re-optimised
    expected_value_problem_usd: float | None  # optimum of the mean-value instance itself
    wait_and_see_by_scenario_usd: dict[str, float] = field(default_factory=dict)
    mip_gap: float = 0.0
    solves: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def value_of_information(instance: Instance, here_and_now=None, **solve_options) -> ValueOfInformation:
    """EVPI and VSS of ``instance`` (risk-neutral). ``here_and_now``: a solved risk-neutral
    Result of ``instance`` to re-use (else it is solved). ``solve_options`` go to every solve
    (mip_gap, time_limit_s, threads); baselines, shadow prices and risk are off."""
    from .solve import solve

    t0 = time.perf_counter()
    opts = {k: v for k, v in solve_options.items() if k in ("mip_gap", "time_limit_s", "threads", "log")}
    opts.update(baselines=False, shadow_prices=False, cvar_weight=0.0, value_of_information=False)
    out = ValueOfInformation(None, None, None, None, None, None, mip_gap=float(opts.get("mip_gap", 0.005)))
    rp = here_and_now if here_and_now is not None else solve(instance, **opts)
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
        r = solve(scenario_instance(instance, w), **opts)
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
    ev = solve(mean_value_instance(instance), **opts)
    out.solves += 1
    if not ev.solved:
        out.notes.append(f"mean-value instance solve: {ev.status}")
    else:
        out.expected_value_problem_usd = ev.npv_usd
        eev = solve(instance, first_stage=ev.plan, mip_start=False, **opts)
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
