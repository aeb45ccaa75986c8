"""Compile an Instance into numeric arrays (per period, scenario, site, model, contract, lease).

Both the plan evaluator and the MILP read these arrays; every formula here is a call to
the economics kernel, so the two share inputs but not arithmetic on decisions.
Shapes: ``[W, T]`` for scenario x period arrays; ``[W]`` for values at the horizon's end.

Derived coefficients of the horizon's end (models/economics.md, "Terminal values"), each
computed here once:
- ``df`` / ``df_end``: period discount factors (each month's share of a period discounted at
  the month's end) and the horizon-end factor the terminal lines take;
- ``site_energy_price`` / ``site_energy_price_after``: what a site pays for a MWh, in each
  period and in each month after the horizon (its mandatory fixed-price supply while it runs,
  else the market price plus its index adder): the pass-through reimbursement and the price
  of every MWh a terminal value deducts;
- ``hpc_value_usd_per_mw``: market value of one unleased HPC MW at the end, net of the site's
  fixed HPC opex; ``reversion_factor(n)``: what that value is worth today when a lease hands
  the MW back n months after the horizon;
- ``lease_terminal_usd``: contracted NOI after the horizon net of the site's fixed HPC opex and
  of the power the landlord still bears;
- ``terminal_mining_price``: the power price of the terminal mining margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from optimizer.economics.financing import FinancingData, compile_financing
from optimizer.economics.hpc import BuildData, GpuData, compile_builds, compile_gpus
from optimizer.economics.leases import LeaseData, LeaseSchedule, compile_lease
from optimizer.economics.ledger import ITEM_BY_NAME, TERMINAL_ITEMS
from optimizer.economics.levers import LeverData, compile_levers
from optimizer.economics.tree import Tree, build_tree
from optimizer.instance.schema import FixedContract, IndexContract, Instance, Lease, OwnedGeneration
from optimizer.kernel import finance, protocol
from optimizer.kernel.timeline import Timeline, days_in_month, month_label, month_ordinal


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
    df: np.ndarray                          # [T] period discount factors (each month's share at its end)
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
    df_end: float = 1.0                     # (1 + r)^(-L T / 12): terminal values, at the horizon's end
    site_energy_price: dict[str, np.ndarray] = field(default_factory=dict)        # site -> [W, T] USD/MWh
    site_energy_price_after: dict[str, np.ndarray] = field(default_factory=dict)  # site -> [W, K] months 1..K after the end
    df_after: np.ndarray = field(default_factory=lambda: np.zeros(0))             # [K] (1 + r)^(-k/12), k = 1..K
    hours_after: np.ndarray = field(default_factory=lambda: np.zeros(0))          # [K] hours of month k after the end
    fin: FinancingData | None = None        # the financing section's coefficients (None without one)
    lev: LeverData = field(default_factory=LeverData)  # the mining and power levers' coefficients (economics/levers.py)
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
            site_energy_price={k: v[ws] for k, v in self.site_energy_price.items()},
            site_energy_price_after={k: v[ws] for k, v in self.site_energy_price_after.items()},
        )

    @property
    def labels(self) -> list[str]:
        return self.tl.labels

    def item_df(self, item: str) -> np.ndarray:
        """[T] discount factors of a cash-flow item: ``df`` unless financing.discount_rates gives
        its rate class another rate (models/economics.md, "Valuation"); a terminal line takes the
        horizon-end factor of its class (``df_end``; it only appears in the last period's rows)."""
        terminal = item in TERMINAL_ITEMS
        if self.fin is None:
            return np.full(self.T, self.df_end) if terminal else self.df
        c = ITEM_BY_NAME[item].rate_class
        return np.full(self.T, self.fin.df_end_class[c]) if terminal else self.fin.df_class[c]

    def share(self, site: str) -> float:
        """The company's share of the cash flows booked at ``site`` (``sites[*].ownership_share``;
        1 for the portfolio)."""
        return self.lev.share(site)

    def mw_per_unit(self, site_id: str, model: str) -> float:
        """MW one operating unit draws at the meter, cooling included (W x PUE / 1e6)."""
        return self.inst.model_by_name[model].power_w * self.inst.site_by_id[site_id].pue_mining / 1e6

    def flex(self, site_id: str):
        """The demand-response and peak-charge coefficients of the site's market (None without a program)."""
        return self.lev.markets.get(self.inst.site_by_id[site_id].market)

    def mwh_per_unit(self, site_id: str, model: str) -> np.ndarray:
        """[T] MWh one operating unit draws in each period, cooling included (PUE)."""
        s = self.inst.site_by_id[site_id]
        return finance.asic_energy_mwh(1.0, self.inst.model_by_name[model].power_w, s.pue_mining, self.hours)

    def site_power_price(self, site_id: str) -> np.ndarray:
        """[W, T] market (wholesale) price of the site's market, USD/MWh."""
        return self.power_price[self.inst.site_by_id[site_id].market]

    # ------------------------------------------------------------ the horizon's end

    def annuity_after(self, n: int) -> float:
        """sum_{k=1..n} (1 + r)^(-k/12): a monthly USD 1 paid for n months after the horizon, at its end."""
        return float(self.df_after[:n].sum())

    def reversion_factor(self, n: int) -> float:
        """Value at the horizon end of USD 1 of market value of HPC capacity handed back by a lease
        n months after the end: max((1 + r)^(-n/12), 1 - cap/12 x annuity_after(n)).
        The first term discounts the market value from the lease's end; the second is the market
        value less the market NOI the capacity forgoes while leased (V x cap/12 a month), which is
        the larger when the cap rate is below the discount rate. With it a leased MW is worth at
        least an empty one whenever its contracted NOI is at least the market NOI
        (models/economics.md, "Terminal values")."""
        if n <= 0:
            return 1.0
        cap = self.inst.horizon.terminal.hpc_cap_rate
        return max(float(self.df_after[n - 1]), 1.0 - cap / 12.0 * self.annuity_after(n))

    @cached_property
    def hpc_value_usd_per_mw(self) -> dict[str, np.ndarray]:
        """site -> [W] market value of one HPC MW not under lease at the horizon end:
        max(0, hpc_unleased_noi x idx[w, T-1] - 12 x fixed_opex_hpc) / hpc_cap_rate."""
        rule = self.inst.horizon.terminal
        out = {}
        for s in self.inst.sites:
            noi = rule.hpc_unleased_noi_usd_per_mw_year * self.hpc_index[:, -1] - 12.0 * s.fixed_opex_hpc_usd_per_mw_month
            out[s.id] = np.maximum(noi, 0.0) / rule.hpc_cap_rate
        return out

    def energy_cost_after(self, site_id: str, n: int) -> np.ndarray:
        """[W] sum_{k=1..n} hours_k x (1 + r)^(-k/12) x site_energy_price_after[k]: USD a constant
        MW drawn for n months after the horizon costs the site, at the horizon end."""
        c = self._energy_cost_after_cum[site_id]
        return c[:, min(n, c.shape[1] - 1)]

    def market_cost_after(self, site_id: str, n: int) -> np.ndarray:
        """[W] the same at the last period's market price (no adder)."""
        return self.site_power_price(site_id)[:, -1] * float(np.dot(self.hours_after[:n], self.df_after[:n]))

    @cached_property
    def _energy_cost_after_cum(self) -> dict[str, np.ndarray]:
        w = self.hours_after * self.df_after
        return {s: np.concatenate([np.zeros((self.W, 1)), np.cumsum(p * w[None, :], axis=1)], axis=1)
                for s, p in self.site_energy_price_after.items()}

    def lease_terminal_usd(self, lease_id: str, tau: int, site_id: str) -> np.ndarray:
        """[W] the ``terminal_lease_noi_usd`` of a whole lease (share 1) handed over in tau at a
        site: remaining contracted NOI - the site's fixed HPC opex on its racks - the power the
        landlord bears after the horizon, all valued at the horizon end; 0 when
        ``lease_remaining_noi`` is off or the term ends by the horizon end."""
        key = (lease_id, tau, site_id)
        if key not in self._lease_terminal_cache:
            self._lease_terminal_cache[key] = self._lease_terminal(lease_id, tau, site_id)
        return self._lease_terminal_cache[key]

    @cached_property
    def _lease_terminal_cache(self) -> dict:
        return {}

    def _lease_terminal(self, lease_id: str, tau: int, site_id: str) -> np.ndarray:
        """Per scenario: the schedule's NOI after the horizon (rent - expected credit loss - lease
        opex, tranches, delays and renewal weights included; a GPU cloud contract: minus its deferred
        prepaid rent) - the site's fixed HPC opex on each tranche's racks over the months it holds
        them after the horizon (``tranche_months_after``: to the end of its last renewal under the
        largest delay, the months before a tranche planned after the end included) - the power the
        landlord bears then (each month weighted like its rent).
        A lease of one tranche running every month of its term (no renewals) takes exactly the
        closed forms annuity_after(n) and lease_power_net_after(n)."""
        W = self.W
        if not self.inst.horizon.terminal.lease_remaining_noi:
            return np.zeros(W)
        ld = lease_at(self, lease_id, tau)
        if not ld.runs_past_horizon[tau]:
            return np.zeros(W)
        l = ld.lease
        site = self.inst.site_by_id[site_id]
        rack_mw = self.tranche_racks(l, site_id) * site.hpc_mw_per_rack          # [K]
        # the site's fixed HPC opex on each tranche's racks over every month it holds them after
        # the end (months before a late tranche starts, after a shorter delay, renewals): a(n_k)
        held = float(rack_mw @ [self.annuity_after(int(n)) for n in ld.tranche_months_after[tau]])
        fixed = site.fixed_opex_hpc_usd_per_mw_month * held
        kind = lease_credit_price(l)
        out = np.zeros(W)
        for w in range(W):
            sc = ld.schedule(tau, w)
            wgt = sc.after_weight
            A = wgt.shape[1]
            n = int(wgt[0].sum()) if len(wgt) == 1 else -1
            if n >= 0 and np.array_equal(wgt[0], (np.arange(A) < n).astype(float)):
                power = 0.0 if l.gpu_option is not None else l.it_mw * float(self.lease_power_net_after(l, site_id, n)[w])
            else:
                df, hours = self.df_after[:A], self.hours_after[:A]
                power = 0.0
                if l.gpu_option is None and kind != "site":
                    price = self.site_energy_price_after[site_id][w, :A]
                    if kind == "market":
                        price = price - self.site_power_price(site_id)[w, -1]
                    power = site.pue_hpc * float(ld.tranche_mw @ (wgt @ (hours * df * price)))
            out[w] = sc.terminal_noi_usd - fixed - power
        return out

    def lease_power_net_after(self, l: Lease, site_id: str, n: int) -> np.ndarray:
        """[W] USD per MW of the lease's IT: power the landlord pays after the horizon minus what
        the tenant reimburses (or what the lease's after-power NOI margin already holds), at the
        horizon end: PUE x (energy_cost_after - reimbursement)."""
        pue = self.inst.site_by_id[site_id].pue_hpc
        cost = self.energy_cost_after(site_id, n)
        price = lease_credit_price(l)
        if price == "site":
            return np.zeros(self.W)
        if price == "market":
            return pue * (cost - self.market_cost_after(site_id, n))
        return pue * cost

    def inst_lease(self, lease_id: str) -> Lease:
        return self.leases[lease_id].lease

    def lease_credit_price(self, lease_id: str, site_id: str) -> np.ndarray | None:
        """[W, T] USD/MWh at which the lease's HPC energy is credited to the landlord in the horizon
        (pass-through reimbursement, or the power inside an after-power NOI margin), None if never."""
        price = lease_credit_price(self.inst_lease(lease_id))
        if price is None:
            return None
        return self.site_power_price(site_id) if price == "market" else self.site_energy_price[site_id]

    @cached_property
    def terminal_mining_price(self) -> dict[str, np.ndarray]:
        """site -> [W] USD/MWh of the terminal mining margin: the hours-weighted mean of
        site_energy_price_after over the first 12 x mining_margin_multiple months after the end
        (the years that value counts; the last month counted by its fraction)."""
        years = self.inst.horizon.terminal.mining_margin_multiple
        K = len(self.hours_after)
        months = 12.0 * years
        wgt = np.clip(months - np.arange(K), 0.0, 1.0) * self.hours_after
        if wgt.sum() <= 0:
            return {s: p[:, 0] for s, p in self.site_energy_price_after.items()}
        return {s: (p * wgt[None, :]).sum(axis=1) / wgt.sum() for s, p in self.site_energy_price_after.items()}

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

    def mining_salvage_usd_per_unit(self, model: str) -> float:
        """What retiring one unit of ``model`` at the end gives: its salvage value when
        ``terminal.asic_salvage`` is on, else 0 (the floor of the terminal mining value)."""
        return self.inst.model_by_name[model].salvage_usd_per_unit if self.inst.horizon.terminal.asic_salvage else 0.0

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
        for j in range(n):  # tau - lead .. tau - 1 (tau itself when lead is 0); tau <= T - 1
            out[max(tau - lead + j, 0)] += 1.0 / n
        return out


def _period_sum(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    return monthly.reshape(monthly.shape[:-1] + (tl.n_periods, tl.period_months)).sum(axis=-1)


def _period_mean(monthly: np.ndarray, tl: Timeline) -> np.ndarray:
    """[T] the mean of each period's months of a [months] series."""
    return monthly.reshape(tl.n_periods, tl.period_months).mean(axis=1)


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
        df=finance.period_discount_factors(h.discount_rate, tl.n_periods, tl.period_months),
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
    d.df_end = float(finance.discount_factors(h.discount_rate, [tl.n_months])[0])
    # months after the horizon any lease can still run (tranche offsets, delays, renewals included)
    lease_after = max([ld.months_after_max for ld in d.leases.values()], default=0)
    K = max(max([l.term_months for l in inst.leases], default=0), lease_after) + int(np.ceil(12 * h.terminal.mining_margin_multiple)) + 1
    after = tl.end + 1 + np.arange(K)
    d.df_after = finance.discount_factors(h.discount_rate, np.arange(1, K + 1))
    d.hours_after = np.array([24.0 * days_in_month(int(mo)) for mo in after])
    in_months = _site_energy_prices(inst, tl, power, months, (months - tl.start) // tl.period_months)
    for sid, p_m in in_months.items():
        d.site_energy_price[sid] = _period_sum(p_m * month_hours[None, :], tl) / _period_sum(month_hours, tl)[None, :]
    d.site_energy_price_after = _site_energy_prices(inst, tl, power, after, np.full(len(after), tl.n_periods - 1))
    d.tree = instance_tree(inst, tl, d.prob)
    if inst.financing is not None:
        d.fin = compile_financing(inst.financing, inst, tl, d.df, d.period_years, d.df_end)
    d.lev = compile_levers(inst, tl, series, d.contracts, d.period)
    return d


def lease_at(data: Data, lease_id: str, tau: int) -> LeaseData:
    """The LeaseData of a lease handed over in ``tau``, also outside its window (the evaluator's
    view of a plan that breaks the window: its cash flows as if the window allowed tau)."""
    ld = data.leases[lease_id]
    if tau in ld.reserved:
        return ld
    return compile_lease(ld.lease, data.tl, 24.0 * data.tl.month_days, data.inst.horizon.discount_rate, data.delays,
                         data.hpc_index_monthly, taus=[tau])
def instance_tree(inst: Instance, tl: Timeline, prob: np.ndarray) -> Tree:
    """The instance's scenario tree (its ``tree`` section), or the two-stage form."""
    names = [s.name for s in inst.scenarios]
    if inst.tree is None:
        return build_tree(tl.n_periods, prob, names, tl.labels)
    periods = [tl.period_of(m) for m in inst.tree.branch_months]
    return build_tree(tl.n_periods, prob, names, tl.labels, periods, inst.tree.paths)


def _site_energy_prices(inst: Instance, tl: Timeline, power: dict, months: np.ndarray, periods: np.ndarray) -> dict[str, np.ndarray]:
    """site -> [W, len(months)] USD/MWh the site pays in each month (models/economics.md, "Site
    energy price"): the mw-weighted mean price of its mandatory fixed-price supply delivering in
    the month (fixed contracts at their escalated price, owned generation at its variable cost);
    else the market price plus the lowest adder of its mandatory index contracts delivering then;
    else the market price. Months after the horizon take the last period's market price;
    contracts without a term run to the horizon end only."""
    out = {}
    for site in inst.sites:
        pi = power[site.market][:, periods]                      # [W, M]
        num, den = np.zeros(len(months)), np.zeros(len(months))
        adder = np.full(len(months), np.inf)
        for c in inst.contracts:
            if c.site != site.id or c.optional:
                continue
            start = month_ordinal(c.start_month) if c.start_month else tl.start
            end = start + c.term_months - 1 if c.term_months else tl.end
            on = (months >= start) & (months <= end)
            if isinstance(c, FixedContract):
                p = finance.escalated(c.price_usd_per_mwh, c.escalator_per_year, months - start)
                num += on * c.mw_cap * p
                den += on * c.mw_cap
            elif isinstance(c, OwnedGeneration):
                num += on * c.mw * c.variable_cost_usd_per_mwh
                den += on * c.mw
            elif isinstance(c, IndexContract):
                adder = np.where(on, np.minimum(adder, c.adder_usd_per_mwh), adder)
        market = pi + np.where(np.isfinite(adder), adder, 0.0)[None, :]
        fixed = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        out[site.id] = np.where((den > 0)[None, :], fixed[None, :], market)
    return out


def lease_credit_price(l: Lease) -> str | None:
    """How a lease's HPC energy is credited to the landlord (models/economics.md, "Leases"):
    ``site`` (pass-through at the site's energy price, or power inside an after-power NOI
    margin), ``market`` (pass-through at the market price) or None (the landlord bears it)."""
    if l.power_passthrough:
        return "market" if l.passthrough_price == "market" else "site"
    if l.noi_margin is not None and l.noi_margin_basis == "after_power":
        return "site"
    return None



__all__ = ["BuildData", "ContractData", "Data", "GpuData", "LeaseData", "LeaseSchedule", "compile_instance", "lease_at",
           "lease_credit_price", "month_label"]
