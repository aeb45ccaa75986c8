"""Compiled coefficients of new-build capacity and GPU cloud (models/economics.md, "New-build
capacity" and "GPU cloud"); both the MILP and the evaluator read them.

New build: a block of option b at site s adds ``racks_per_block`` rack positions, in service
``lead`` periods after works start; its MW is critical IT (``racks x hpc_kw_per_rack / 1000``)
for HPC racks and design MW (``racks x mining_kw_per_rack / 1000``) for mining racks; capex =
blocks x MW x capex per MW, spread evenly over ``max(lead, 1)`` periods from the start.

GPUs: one MW of critical IT of GPUs of option o ordered in period u is paid in u
(``capex_usd_per_mw``), in service in periods ``u + lead .. u + lead + life - 1`` (life =
``useful_life_months / L`` whole periods, rounded down, at least 1), retired at the end of that
and salvaged for ``salvage_share`` of the price in period ``u + lead + life`` when inside the
horizon. Merchant revenue of one MW in service in period t of scenario w: GPUs per MW x
utilization x price per GPU-hour x hours_t x gpu_price_index[w,t] (or price per MW-month x
utilization x months x index). Opex per MW in service per period: ``opex_usd_per_mw_month x L``.
Book value at the horizon end of a MW in service then: price x (salvage + (1 - salvage) x
periods of life left after the horizon / life), straight line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.kernel.timeline import Timeline


@dataclass
class BuildData:
    site: str
    option: object               # instance NewBuild
    lead: int                     # periods from start of works to racks in service
    periods: list[int]            # start periods allowed (earliest month on, in service inside the horizon)
    mw_per_block: float           # critical-IT MW (hpc) or design MW (mining) of one block

    @property
    def use(self) -> str:
        return self.option.use

    @property
    def racks_per_block(self) -> int:
        return self.option.racks_per_block

    @property
    def capex_usd_per_block(self) -> float:
        return self.mw_per_block * self.option.capex_usd_per_mw


@dataclass
class GpuData:
    option: object                # instance GpuOption
    lead: int                     # periods from order to service
    life: int                     # periods in service
    periods: list[int]            # order periods allowed (in service inside the horizon)
    merchant_usd_per_mw: np.ndarray  # [W, T] revenue of 1 MW of merchant GPUs in service
    opex_usd_per_mw: float        # per period in service
    T: int

    @property
    def capex_usd_per_mw(self) -> float:
        return self.option.capex_usd_per_mw

    def online(self, u: int) -> range:
        """Periods a MW ordered in u is in service (inside the horizon)."""
        return range(u + self.lead, min(u + self.lead + self.life, self.T))

    def retire_period(self, u: int) -> int:
        """Period whose end the GPUs ordered in u retire and are salvaged (may be >= T)."""
        return u + self.lead + self.life

    def salvage_usd_per_mw(self) -> float:
        return self.option.salvage_share * self.capex_usd_per_mw

    def book_value_end_usd_per_mw(self, u: int) -> float:
        """Straight-line book value at the horizon end of 1 MW ordered in u (0 unless in service in T-1)."""
        left = u + self.lead + self.life - self.T   # periods of life after the horizon
        if u + self.lead > self.T - 1 or left <= 0:
            return 0.0
        s = self.option.salvage_share
        return self.capex_usd_per_mw * (s + (1.0 - s) * left / self.life)


def compile_builds(inst, tl: Timeline) -> dict[tuple[str, str], BuildData]:
    out = {}
    T = tl.n_periods
    for s in inst.sites:
        for b in s.new_builds:
            lead = tl.lead_periods(b.lead_months)
            first = max(tl.period_of(b.earliest_month), 0) if b.earliest_month else 0
            periods = [t for t in range(first, T) if t + lead <= T - 1] if b.max_blocks > 0 else []
            kw = s.hpc_kw_per_rack if b.use == "hpc" else b.mining_kw_per_rack
            out[(s.id, b.id)] = BuildData(s.id, b, lead, periods, b.racks_per_block * kw / 1000.0)
    return out


def compile_gpus(inst, tl: Timeline, gpu_index: np.ndarray) -> dict[str, GpuData]:
    out = {}
    if inst.gpu_cloud is None:
        return out
    T, L = tl.n_periods, tl.period_months
    for o in inst.gpu_cloud.options:
        lead = tl.lead_periods(o.lead_months)
        life = max(1, o.useful_life_months // L)
        first = max(tl.period_of(o.first_month), 0)
        last = T - 1 if o.last_month is None else min(tl.period_of(o.last_month), T - 1)
        periods = [t for t in range(first, last + 1) if t + lead <= T - 1]
        per_mw = np.array([o.merchant_usd_per_mw(float(tl.hours[t]), float(L)) for t in range(T)])
        out[o.id] = GpuData(o, lead, life, periods, gpu_index * per_mw[None, :], o.opex_usd_per_mw_month * L, T)
    return out
