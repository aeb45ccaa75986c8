"""Compile an Instance into numeric arrays (per period, scenario, site, model, contract, lease).

Both the plan evaluator and the MILP read these arrays; every formula here is a call to
the economics kernel, so the two share inputs but not arithmetic on decisions.
Shapes: ``[W, T]`` for scenario x period arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from optimizer.economics.financing import FinancingData, compile_financing
from optimizer.economics.hpc import BuildData, GpuData, compile_builds, compile_gpus
from optimizer.economics.leases import LeaseData, LeaseSchedule, compile_lease
from optimizer.economics.ledger import ITEM_BY_NAME
from optimizer.instance.schema import FixedContract, IndexContract, Instance, Lease, OwnedGeneration
from optimizer.kernel import finance, protocol
from optimizer.kernel.timeline import Timeline, month_label, month_ordinal


@dataclass
class ContractData:
    contract: FixedContract | IndexContract | OwnedGeneration
    active_hours: np.ndarray               # [T] hours of the period inside the delivery term
    price_usd_per_mwh: np.ndarray          # [T] fixed contracts: escalated price (hours-weighted)
    start_period: int
    months_active: np.ndarray              # [T] months of the period inside the term
    runs_to_horizon_end: bool = False      # the term covers the horizon's last month (residual values)


@dataclass
class Data:
    inst: Instance
    tl: Timeline
    prob: np.ndarray
    df: np.ndarray                          # [T] end-of-period discount factors
    days: np.ndarray
    hours: np.ndarray
    subsidy_btc_per_block: np.ndarray       # [T]
    blocks: np.ndarray                      # [T]
    btc_price_usd: np.ndarray               # [W, T]
    hashrate_eh_s: np.ndarray               # [W, T]
    fees_btc_per_block: np.ndarray          # [W, T]
    hashprice_btc_per_ph_day: np.ndarray    # [W, T]
    hashprice_usd_per_ph_day: np.ndarray    # [W, T]
    power_price: dict[str, np.ndarray]      # market -> [W, T] USD/MWh
    hpc_index: np.ndarray                   # [W, T]
    btc_per_unit: dict[str, np.ndarray]     # model -> [W, T] BTC per operating unit per period (after pool fee)
    contracts: dict[str, ContractData] = field(default_factory=dict)
    leases: dict[str, LeaseData] = field(default_factory=dict)
    fin: FinancingData | None = None        # the financing section's coefficients (None without one)
    delays: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # [W] handover_delay_months
    gpu_index: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))     # [W, T] gpu_price_index
    hpc_index_monthly: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # [W, months] (holder renewals)
    builds: dict[tuple[str, str], BuildData] = field(default_factory=dict)      # (site, new-build option) -> data
    gpus: dict[str, GpuData] = field(default_factory=dict)                      # GPU option -> data

    @property
    def T(self) -> int:
        return self.tl.n_periods

    @property
    def W(self) -> int:
        return len(self.prob)

    @property
    def scenario_names(self) -> list[str]:
        return [s.name for s in self.inst.scenarios]

    @property
    def labels(self) -> list[str]:
        return self.tl.labels

    def item_df(self, item: str) -> np.ndarray:
        """[T] discount factors of a cash-flow item: ``df`` unless financing.discount_rates gives
        its rate class another rate (models/economics.md, "Valuation")."""
        if self.fin is None:
            return self.df
        return self.fin.df_class[ITEM_BY_NAME[item].rate_class]

    def mwh_per_unit(self, site_id: str, model: str) -> np.ndarray:
        """[T] MWh one operating unit draws in each period, cooling included (PUE)."""
        s = self.inst.site_by_id[site_id]
        return finance.asic_energy_mwh(1.0, self.inst.model_by_name[model].power_w, s.pue_mining, self.hours)

    def site_power_price(self, site_id: str) -> np.ndarray:
        return self.power_price[self.inst.site_by_id[site_id].market]

    def lead_periods(self, lead_months: int) -> int:
        return self.tl.lead_periods(lead_months)

    def period(self, month: str | None, default: int = 0) -> int:
        return default if month is None else self.tl.period_of(month)

    @cached_property
    def initial_units(self) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for u in self.inst.fleet.installed:
            out[(u.site, u.model)] = out.get((u.site, u.model), 0.0) + u.units
        return out

    def owned_at_start(self, site_id: str) -> bool:
        return self.inst.site_by_id[site_id].acquisition is None

    def purchase_periods(self, option) -> list[int]:
        """Order periods allowed for a purchase option (delivery must fall inside the horizon)."""
        first = max(self.tl.period_of(option.first_month), 0)
        last = self.T - 1 if option.last_month is None else min(self.tl.period_of(option.last_month), self.T - 1)
        lead = self.lead_periods(option.lead_months)
        return [t for t in range(first, last + 1) if t + lead <= self.T - 1]

    def capex_periods(self, start: int, lead: int) -> list[int]:
        """Periods over which capex of a project started at ``start`` with ``lead`` periods is spread."""
        return list(range(start, start + max(lead, 1)))

    def conversion_periods(self, site_id: str) -> list[int]:
        s = self.inst.site_by_id[site_id]
        if s.conversion is None:
            return []
        lead = self.lead_periods(s.conversion.lead_months)
        first = max(self.period(s.conversion.earliest_month), 0)
        return [t for t in range(first, self.T) if t + lead <= self.T - 1]

    def expansion_periods(self, site_id: str, option) -> list[int]:
        lead = self.lead_periods(option.lead_months)
        first = max(self.period(option.earliest_month), 0)
        return [t for t in range(first, self.T) if t + lead <= self.T - 1]

    def sale_periods(self, site_id: str) -> list[int]:
        s = self.inst.site_by_id[site_id]
        if s.sale is None:
            return []
        return list(range(max(self.period(s.sale.earliest_month), 0), self.T))

    def acquisition_periods(self, site_id: str) -> list[int]:
        s = self.inst.site_by_id[site_id]
        if s.acquisition is None:
            return []
        return list(range(max(self.period(s.acquisition.available_from), 0), self.T))

    def capex_budget(self, year: int) -> float | None:
        b = self.inst.policy.capex_budget_usd_per_year
        if b is None:
            return None
        if isinstance(b, dict):
            return b.get(year)
        return float(b)

    @cached_property
    def terminal_mining_factor(self) -> float:
        """Periods of the last period's mining margin the terminal mining value counts:
        ``mining_margin_multiple`` years x 12 / months per period (models/economics.md, "Terminal values")."""
        return self.inst.horizon.terminal.mining_margin_multiple * 12.0 / self.tl.period_months

    def mining_opex_usd_per_unit(self, site_id: str, model: str) -> float:
        """Fixed mining opex of one installed ASIC for one period: USD per MW-month x nameplate MW x months."""
        site = self.inst.site_by_id[site_id]
        return site.fixed_opex_mining_usd_per_mw_month * self.inst.model_by_name[model].power_w / 1e6 * self.tl.period_months

    @cached_property
    def period_years(self) -> np.ndarray:
        return np.array([self.tl.year_of_period(t) for t in range(self.T)])

    def tranche_racks(self, lease: Lease, site_id: str) -> np.ndarray:
        """[K] HPC rack positions each tranche of ``lease`` takes at the site: whole racks per tranche
        (unsplittable), MW / kW per rack (splittable, for the whole lease); 0 for a GPU cloud contract,
        whose racks are its GPUs'."""
        kw = self.inst.site_by_id[site_id].hpc_kw_per_rack
        if lease.gpu_option is not None:
            return np.zeros(len(lease.tranche_list))
        return np.array([mw * 1000.0 / kw if lease.splittable else float(finance.ceil_racks(mw, kw)) for mw, _ in lease.tranche_list])

    def lease_rack_need(self, lease_id: str, site_id: str, tau: int) -> np.ndarray:
        """[T] rack positions the whole lease (share 1) holds at the site per period when handed over in tau."""
        ld = self.leases[lease_id]
        return self.tranche_racks(ld.lease, site_id) @ ld.reserved[tau]

    @cached_property
    def lease_racks_needed(self) -> dict[tuple[str, str], float]:
        """(lease, site) -> HPC rack positions the whole lease takes at that site once every tranche
        runs (whole racks per tranche for unsplittable leases; MW / kW-per-rack for splittable ones)."""
        out = {}
        for l in self.inst.leases:
            for sid in self.inst.eligible_sites(l):
                out[(l.id, sid)] = float(self.tranche_racks(l, sid).sum())
        return out

    def first_tranche_racks(self, lease_id: str, site_id: str) -> float:
        return float(self.tranche_racks(self.leases[lease_id].lease, site_id)[0])

    def site_builds(self, site_id: str, use: str | None = None) -> list[BuildData]:
        return [b for (s, _), b in self.builds.items() if s == site_id and (use is None or b.use == use)]

    def tenant_capex(self, lease: Lease, site_id: str):
        """What a tenant funding ``tenant_capex_share`` of its MW pays at a site: (capex per MW, lead
        periods, asset class, new-build option id or None). The site's conversion capex per MW, else
        its first HPC new-build option's; None at a site with neither (its HPC racks exist)."""
        s = self.inst.site_by_id[site_id]
        if s.conversion is not None:
            return s.conversion.capex_usd_per_mw, self.lead_periods(s.conversion.lead_months), "hpc_conversion", None
        hb = self.site_builds(site_id, "hpc")
        if hb:
            return hb[0].option.capex_usd_per_mw, hb[0].lead, "new_build", hb[0].option.id
        return None

    def tenant_capex_fractions(self, tau: int, lead: int) -> np.ndarray:
        """[T] share of the tenant's capex funding paid per period: evenly over the ``lead`` periods
        before the hand-over ``tau`` (in tau when lead is 0); parts before the horizon fall in period 0."""
        out = np.zeros(self.T)
        n = max(lead, 1)
        for j in range(n):
            t = tau - lead + j if lead > 0 else tau
            out[min(max(t, 0), self.T - 1)] += 1.0 / n
        return out


def _period_sum(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    return monthly.reshape(tl.n_periods, tl.period_months).sum(axis=1)


def _period_mean(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    return monthly.reshape(monthly.shape[:-1] + (tl.n_periods, tl.period_months)).mean(axis=-1)


def compile_instance(inst: Instance) -> Data:
    tl = inst.timeline
    h, b = inst.horizon, inst.bitcoin
    n_m = tl.n_months
    W = len(inst.scenarios)

    def series(getter) -> np.ndarray:
        return np.array([_period_mean(getter(sc).monthly(tl.start, n_m), tl) for sc in inst.scenarios]).reshape(W, tl.n_periods)

    price = series(lambda sc: sc.btc_price_usd)
    hashrate = series(lambda sc: sc.network_hashrate_eh_s)
    fees = series(lambda sc: sc.fees_btc_per_block)
    idx = series(lambda sc: sc.hpc_lease_rate_index)
    gpu_idx = series(lambda sc: sc.gpu_price_index)
    idx_monthly = np.array([sc.hpc_lease_rate_index.monthly(tl.start, n_m) for sc in inst.scenarios]).reshape(W, n_m)
    delays = np.array([sc.handover_delay_months for sc in inst.scenarios], dtype=int)
    markets = sorted({s.market for s in inst.sites})
    power = {k: series(lambda sc, k=k: sc.power_price_usd_per_mwh[k]) for k in markets}

    subsidy = protocol.period_subsidy_btc_per_block(b.start_height, tl.days, b.block_interval_minutes,
                                              b.initial_subsidy_btc, b.halving_interval_blocks, b.halving_heights)
    blocks = tl.days * protocol.blocks_per_day(b.block_interval_minutes)
    hp_btc = protocol.hashprice_btc_per_ph_day(subsidy[None, :], fees, hashrate, b.block_interval_minutes)
    btc_per_unit = {
        m.name: m.hashrate_th_s / 1000.0 * hp_btc * tl.days[None, :] * (1.0 - b.pool_fee)
        for m in inst.fleet.asic_models
    }
    d = Data(
        inst=inst, tl=tl, prob=np.array([s.probability for s in inst.scenarios]),
        df=finance.discount_factors(h.discount_rate, tl.months_elapsed_at_end),
        days=tl.days, hours=tl.hours, subsidy_btc_per_block=subsidy, blocks=blocks,
        btc_price_usd=price, hashrate_eh_s=hashrate, fees_btc_per_block=fees,
        hashprice_btc_per_ph_day=hp_btc, hashprice_usd_per_ph_day=hp_btc * price,
        power_price=power, hpc_index=idx, btc_per_unit=btc_per_unit,
        delays=delays, gpu_index=gpu_idx, hpc_index_monthly=idx_monthly,
        builds=compile_builds(inst, tl), gpus=compile_gpus(inst, tl, gpu_idx),
    )
    month_hours = 24.0 * tl.month_days
    months = tl.month_ordinals
    for c in inst.contracts:
        start = month_ordinal(c.start_month) if c.start_month else tl.start
        end = start + c.term_months - 1 if c.term_months else tl.end
        inside = (months >= start) & (months <= end)
        act_h = _period_sum(month_hours * inside, tl)
        if isinstance(c, FixedContract):
            p_m = finance.escalated(c.price_usd_per_mwh, c.escalator_per_year, months - start)
            num = _period_sum(p_m * month_hours * inside, tl)
            p = np.divide(num, act_h, out=np.zeros_like(num), where=act_h > 0)
        else:
            p = np.zeros(tl.n_periods)
        d.contracts[c.id] = ContractData(c, act_h, p, tl.period_of_month(start), _period_sum(inside.astype(float), tl),
                                         runs_to_horizon_end=bool(start <= tl.end <= end))
    for l in inst.leases:
        d.leases[l.id] = compile_lease(l, tl, month_hours, h.discount_rate, delays, idx_monthly)
    if inst.financing is not None:
        d.fin = compile_financing(inst.financing, inst, tl, d.df, d.period_years)
    return d


def lease_at(data: Data, lease_id: str, tau: int) -> LeaseData:
    """The LeaseData of a lease handed over in ``tau``, also outside its window (the evaluator's
    view of a plan that breaks the window: its cash flows as if the window allowed tau)."""
    ld = data.leases[lease_id]
    if tau in ld.reserved:
        return ld
    return compile_lease(ld.lease, data.tl, 24.0 * data.tl.month_days, data.inst.horizon.discount_rate, data.delays,
                         data.hpc_index_monthly, taus=[tau])


__all__ = ["BuildData", "ContractData", "Data", "GpuData", "LeaseData", "LeaseSchedule", "compile_instance", "lease_at", "month_label"]
