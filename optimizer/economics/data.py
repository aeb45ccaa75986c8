"""Compile an Instance into numeric arrays (per period, scenario, site, model, contract, lease).

Both the plan evaluator and the MILP read these arrays; every formula here is a call to
the economics kernel, so the two share inputs but not arithmetic on decisions.
Shapes: ``[W, T]`` for scenario x period arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from optimizer.economics.financing import FinancingData, compile_financing
from optimizer.economics.ledger import ITEM_BY_NAME
from optimizer.economics.tree import Tree, build_tree
from optimizer.instance.schema import FixedContract, IndexContract, Instance, Lease, OwnedGeneration
from optimizer.kernel import finance, protocol
from optimizer.kernel.timeline import Timeline, days_in_month, month_label, month_ordinal


@dataclass
class LeaseData:
    lease: Lease
    handover_periods: list[int]           # allowed hand-over periods tau
    months_late: dict[int, int]           # tau -> months past window_end (0 inside the window)
    rent_usd: dict[int, np.ndarray]       # tau -> [T] rent in each period for the full it_mw
    opex_usd: dict[int, np.ndarray]       # tau -> [T] lease opex in each period
    active_hours: dict[int, np.ndarray]   # tau -> [T] hours of the period the lease is running
    active: dict[int, np.ndarray]         # tau -> [T] bool, running at any time in the period
    runs_past_horizon: dict[int, bool]
    terminal_noi_usd: dict[int, float]    # tau -> remaining NOI after the horizon, valued at horizon end
    terminal_hours_disc: dict[int, float] = field(default_factory=dict)  # tau -> sum over months after the horizon of hours x (1+r)^(-k/12)


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
    tree: Tree | None = None               # who decides what at which node (economics/tree.py)
    names: list[str] | None = None         # scenario names when restricted to some scenarios (``restrict``)
    fin: FinancingData | None = None        # the financing section's coefficients (None without one)

    @property
    def T(self) -> int:
        return self.tl.n_periods

    @property
    def W(self) -> int:
        return len(self.prob)

    @property
    def scenario_names(self) -> list[str]:
        return list(self.names) if self.names is not None else [s.name for s in self.inst.scenarios]

    def restrict(self, scenarios: list[int]) -> "Data":
        """The same data for a subset of the scenarios (their arrays and probabilities, not
        renormalised; the tree is kept whole). The evaluator uses it for the scenarios that
        share one first stage on a tree."""
        ws = list(scenarios)
        names = self.scenario_names
        return replace(
            self, prob=self.prob[ws], btc_price_usd=self.btc_price_usd[ws], hashrate_eh_s=self.hashrate_eh_s[ws],
            fees_btc_per_block=self.fees_btc_per_block[ws], hashprice_btc_per_ph_day=self.hashprice_btc_per_ph_day[ws],
            hashprice_usd_per_ph_day=self.hashprice_usd_per_ph_day[ws],
            power_price={k: v[ws] for k, v in self.power_price.items()}, hpc_index=self.hpc_index[ws],
            btc_per_unit={k: v[ws] for k, v in self.btc_per_unit.items()}, names=[names[w] for w in ws],
        )

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

    @cached_property
    def lease_racks_needed(self) -> dict[tuple[str, str], float]:
        """(lease, site) -> HPC rack positions the whole lease takes at that site
        (whole racks for unsplittable leases; MW / kW-per-rack for splittable ones)."""
        out = {}
        for l in self.inst.leases:
            for sid in self.inst.eligible_sites(l):
                kw = self.inst.site_by_id[sid].hpc_kw_per_rack
                out[(l.id, sid)] = l.it_mw * 1000.0 / kw if l.splittable else float(finance.ceil_racks(l.it_mw, kw))
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
        d.leases[l.id] = _lease_data(l, inst, tl, month_hours)
    d.tree = instance_tree(inst, tl, d.prob)
    if inst.financing is not None:
        d.fin = compile_financing(inst.financing, inst, tl, d.df, d.period_years)
    return d


def instance_tree(inst: Instance, tl: Timeline, prob: np.ndarray) -> Tree:
    """The instance's scenario tree (its ``tree`` section), or the two-stage form."""
    names = [s.name for s in inst.scenarios]
    if inst.tree is None:
        return build_tree(tl.n_periods, prob, names, tl.labels)
    periods = [tl.period_of(m) for m in inst.tree.branch_months]
    return build_tree(tl.n_periods, prob, names, tl.labels, periods, inst.tree.paths)


def _lease_data(l: Lease, inst: Instance, tl: Timeline, month_hours: np.ndarray) -> LeaseData:
    months = tl.month_ordinals
    ws, we = month_ordinal(l.window_start), month_ordinal(l.window_end)
    last_allowed = tl.end if l.late_penalty_usd_per_mw_month is not None else we
    taus = [t for t in range(tl.n_periods) if ws <= tl.period_start_months[t] <= last_allowed]
    if not taus:  # quarterly periods whose starts skip the window: the period holding window_start
        taus = [max(tl.period_of_month(ws), 0)]
    r = inst.horizon.discount_rate
    out = LeaseData(l, taus, {}, {}, {}, {}, {}, {}, {})
    for tau in taus:
        h0 = int(tl.period_start_months[tau])
        since = months - h0
        running = (since >= 0) & (since < l.term_months)
        rent_m = finance.lease_rent_usd_month(l.it_mw, l.rate_usd_per_kw_month, l.escalator_per_year, since) * running
        opex_m = _lease_opex(l, rent_m, running)
        out.months_late[tau] = max(0, h0 - we)
        out.rent_usd[tau] = _period_sum(rent_m, tl)
        out.opex_usd[tau] = _period_sum(opex_m, tl)
        out.active_hours[tau] = _period_sum(month_hours * running, tl)
        out.active[tau] = _period_sum(running.astype(float), tl) > 0
        # months of the term after the horizon end, discounted to the horizon end (end of month)
        after = np.arange(tl.end + 1 - h0, l.term_months)
        out.runs_past_horizon[tau] = len(after) > 0
        if len(after):
            rent_a = finance.lease_rent_usd_month(l.it_mw, l.rate_usd_per_kw_month, l.escalator_per_year, after)
            noi_a = rent_a - _lease_opex(l, rent_a, np.ones_like(after, dtype=bool))
            k = np.arange(1, len(after) + 1)
            df_after = finance.discount_factors(r, k)  # months after the horizon end, end of month
            out.terminal_noi_usd[tau] = float(np.sum(noi_a * df_after))
            hours_a = np.array([24.0 * days_in_month(tl.end + int(j)) for j in k])
            out.terminal_hours_disc[tau] = float(np.sum(hours_a * df_after))
        else:
            out.terminal_noi_usd[tau] = 0.0
            out.terminal_hours_disc[tau] = 0.0
    return out


def _lease_opex(l: Lease, rent: np.ndarray, running: np.ndarray) -> np.ndarray:
    if l.noi_margin is not None:
        return (1.0 - l.noi_margin) * rent
    if l.opex_usd_per_mw_month is not None:
        return l.opex_usd_per_mw_month * l.it_mw * running
    return np.zeros_like(rent)


__all__ = ["Data", "LeaseData", "ContractData", "compile_instance", "month_label"]
