"""Derived instances: one scenario alone, the mean-value instance (value of information,
progressive hedging), the two-stage form of a tree instance (value of flexibility), the
instance without terminal values (terminal check)."""

from __future__ import annotations

import numpy as np

from optimizer.instance.base import TerminalRule
from optimizer.instance.schema import Instance, OwnedGeneration, Scenario
from optimizer.instance.series import Series
from optimizer.kernel.timeline import month_label


def _with_scenarios(instance: Instance, scenarios: list[Scenario]) -> Instance:
    """The instance with these scenarios, in the two-stage form (no tree, no generator)."""
    sub = instance.model_copy(update={"scenarios": scenarios, "scenario_generator": None, "tree": None})
    sub._data_folder = instance.data_folder
    return sub


def two_stage_instance(instance: Instance) -> Instance:
    """The same scenarios (the tree's leaves) in the two-stage form: every commitment taken now for
    the whole horizon, operations per scenario (the now-or-never plan a tree is compared with)."""
    return _with_scenarios(instance, list(instance.scenarios))


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


def without_terminal_values(instance: Instance) -> Instance:
    """The instance with every terminal value off (models/economics.md, "Terminal values"): no
    lease NOI after the horizon, no value for HPC capacity, mining, ASICs or BTC held at the end,
    owned generation without residual value. Everything inside the horizon is unchanged."""
    rule = TerminalRule(lease_remaining_noi=False, hpc_unleased_noi_usd_per_mw_year=0.0, mining_margin_multiple=0.0,
                        asic_salvage=False, treasury_btc=False, hpc_cap_rate=instance.horizon.terminal.hpc_cap_rate)
    contracts = [c.model_copy(update={"residual_value_usd": 0.0}) if isinstance(c, OwnedGeneration) else c
                 for c in instance.contracts]
    out = instance.model_copy(update={"horizon": instance.horizon.model_copy(update={"terminal": rule}),
                                      "contracts": contracts})
    out._data_folder = instance.data_folder
    return out
