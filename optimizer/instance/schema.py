"""The planning instance: frozen pydantic v2 models, unknown fields forbidden, units in field names.

Money is USD, power MW (kW where the name says so), energy MWh, time calendar months
``YYYY-MM``; rates such as ``discount_rate`` and ``escalator_per_year`` are fractions
per year (0.03 = 3 %). See ``models/economics.md`` for how each field enters the NPV.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from optimizer.instance.base import (
    MAX_LEAD_MONTHS,
    MAX_RACKS,
    MAX_USD_PER_MW_MONTH,
    MAX_USD_PER_MWH,
    Bitcoin,
    Escalator,
    Horizon,
    Id,
    LeadMonths,
    Month,
    Mw,
    Racks,
    Share,
    SignedUsd,
    Strict,
    TermMonths,
    TreeSpec,
    Units,
    Usd,
    UsdPerMwh,
    UsdPerMwMonth,
    series_range_text,
)
from optimizer.instance.catalog import load_catalog
from optimizer.instance.checks import run_checks
from optimizer.instance.financing import Financing
from optimizer.instance.hpc import MAX_DELAY_MONTHS, GpuCloud, LeaseCredit, NewBuild, Renewals, TenantLimit, Tranche
from optimizer.instance.levers import AssumedDebt, Fuel, Hedges, MarketPrograms, MiningOverhead, Overhead
from optimizer.instance.overrides import apply_overrides
from optimizer.instance.parsing import read_mapping
from optimizer.instance.scengen import ScenarioGenerator, instance_scenarios, instance_tree
from optimizer.instance.series import DataFolder, Series
from optimizer.kernel.timeline import Timeline, month_ordinal


class Scenario(Strict):
    name: Id
    probability: Share
    btc_price_usd: Series = Field(description=f"BTC price; {series_range_text('btc_price_usd')}")
    network_hashrate_eh_s: Series = Field(description=f"network hashrate; {series_range_text('network_hashrate_eh_s')}")
    fees_btc_per_block: Series = Field(Series(value=0.0), description=f"transaction fees per block; {series_range_text('fees_btc_per_block')}")
    power_price_usd_per_mwh: dict[Id, Series] = Field(default_factory=dict, description=f"market id -> wholesale price path, for the markets of the sites; {series_range_text('power_price_usd_per_mwh')}")
    hpc_lease_rate_index: Series = Field(Series(value=1.0), description=f"multiplier on market HPC lease NOI (terminal value of unleased HPC MW; market rent of holder-mode lease renewals); {series_range_text('hpc_lease_rate_index')}")
    fuel_price_usd_per_mmbtu: dict[Id, Series] = Field(default_factory=dict, description=f"fuel id (fuels[*].id) -> this scenario's fuel price path, overriding the fuel's default; {series_range_text('fuel_price_usd_per_mmbtu')}")
    gpu_price_index: Series = Field(Series(value=1.0), description=f"multiplier on the merchant GPU-hour price of every gpu_cloud option; {series_range_text('gpu_price_index')}")
    handover_delay_months: int = Field(0, ge=0, le=MAX_DELAY_MONTHS, description="construction delay: the hand-over of every lease with delay_exposed slips by this many months in this scenario (rent starts later, delay damages are paid)")


# ---------------------------------------------------------------- sites


class Hall(Strict):
    id: Id
    use: Literal["mining", "hpc"]
    racks: Racks = Field(description="rack positions in the hall")


class Conversion(Strict):
    """Turns mining rack positions into HPC rack positions, in blocks of racks."""

    racks_per_block: int = Field(gt=0, le=MAX_RACKS, description="mining rack positions converted per block (a whole hall: its rack count)")
    capex_usd_per_mw: Usd = Field(description="capex per MW of critical IT created, spread evenly over the lead time")
    lead_months: LeadMonths = Field(description="months from start of works to HPC capacity available; racks leave mining at the start")
    max_blocks: Racks | None = Field(None, description="cap on blocks converted over the horizon (default: as many as mining racks allow)")
    earliest_month: Month | None = None


class GridExpansion(Strict):
    id: Id
    mw: Mw = Field(description="MW added to the grid interconnect")
    capex_usd: Usd
    lead_months: LeadMonths = 0
    earliest_month: Month | None = None


class SaleOption(Strict):
    price_usd: Usd = Field(description="price for land, power and buildings; ASICs must be retired (and salvaged) by the sale month")
    earliest_month: Month | None = None


class AcquisitionOption(Strict):
    price_usd: Usd
    available_from: Month


class Site(Strict):
    id: Id
    market: Id = Field(description="power market whose wholesale price applies (scenarios[*].power_price_usd_per_mwh key)")
    grid_interconnect_mw: Mw = Field(description="maximum site load, MW")
    pue_mining: float = Field(ge=1, le=3, allow_inf_nan=False)
    pue_hpc: float = Field(ge=1, le=3, allow_inf_nan=False)
    fixed_opex_mining_usd_per_mw_month: UsdPerMwMonth = Field(0.0, description="per MW of installed ASIC nameplate power")
    fixed_opex_hpc_usd_per_mw_month: UsdPerMwMonth = Field(0.0, description="per MW of HPC critical-IT capacity built")
    asics_per_rack: int = Field(gt=0, le=10_000, description="ASIC units one mining rack position holds")
    hpc_kw_per_rack: float = Field(gt=0, le=5_000, allow_inf_nan=False, description="critical-IT kW of one HPC rack position (GB200 NVL72: ~130)")
    halls: list[Hall] = Field(default_factory=list, description="the site's halls at the start (none: a greenfield site that only new builds fill)")
    conversion: Conversion | None = None
    grid_expansions: list[GridExpansion] = Field(default_factory=list)
    new_builds: list[NewBuild] = Field(default_factory=list, description="options to build new rack positions (HPC-ready or mining) at the site")
    sale: SaleOption | None = None
    acquisition: AcquisitionOption | None = Field(None, description="if set, the site is not owned at the start and may be bought")
    ownership_share: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="joint venture: the company's share of the site; only this share of every cash flow, capex and debt booked at the site counts (physical MW, racks and units stay whole)")
    mining_overhead: MiningOverhead | None = Field(None, description="fixed cost of running any mining at the site, which stops only when the site stops mining for good (at an exit cost)")

    @property
    def mining_racks(self) -> int:
        return sum(h.racks for h in self.halls if h.use == "mining")

    @property
    def hpc_racks(self) -> int:
        return sum(h.racks for h in self.halls if h.use == "hpc")

    @property
    def hpc_mw_per_rack(self) -> float:
        """Critical-IT MW of one HPC rack position."""
        return self.hpc_kw_per_rack / 1000.0

    @property
    def block_it_mw(self) -> float:
        """Critical-IT MW one conversion block creates: racks per block x kW per HPC rack / 1000
        (0 without a conversion option)."""
        return 0.0 if self.conversion is None else self.conversion.racks_per_block * self.hpc_mw_per_rack

    @property
    def convertible_it_mw(self) -> float:
        """Critical-IT MW the site can create by converting: max blocks x MW per block."""
        return self.max_conversion_blocks * self.block_it_mw

    def max_built_racks(self, use: str) -> int:
        """Rack positions of ``use`` (hpc / mining) the site's new-build options can add over the horizon."""
        return sum(b.racks_per_block * b.max_blocks for b in self.new_builds if b.use == use)

    @property
    def max_conversion_blocks(self) -> int:
        if self.conversion is None:
            return 0
        by_racks = self.mining_racks // self.conversion.racks_per_block
        cap = self.conversion.max_blocks
        return by_racks if cap is None else min(cap, by_racks)

    @model_validator(mode="after")
    def _unique_halls(self) -> "Site":
        _unique([h.id for h in self.halls], "halls")
        _unique([g.id for g in self.grid_expansions], "grid_expansions")
        _unique([b.id for b in self.new_builds], "new_builds")
        if not self.halls and not self.new_builds:
            raise ValueError("halls: give at least one hall, or a new_builds option to build racks on an empty site")
        if self.sale is not None and self.acquisition is not None:
            raise ValueError("a site may have a sale option or an acquisition option, not both")
        return self


# ---------------------------------------------------------------- fleet


class AsicModel(Strict):
    """An ASIC model: give hashrate and power_w, or hashrate and efficiency_j_per_th,
    or ``catalog`` (a name from the shipped catalog) and optionally override fields."""

    name: Id | None = None
    catalog: str | None = None
    hashrate_th_s: float | None = Field(None, gt=0, le=100_000, description="TH/s per unit (an S21 XP: 270)")
    power_w: float | None = Field(None, gt=0, le=100_000, description="W per unit at the wall (an S21 XP: 3,645)")
    efficiency_j_per_th: float | None = Field(None, gt=0, le=10_000, description="J/TH (an S21 XP: 13.5)")
    salvage_usd_per_unit: float = Field(0.0, ge=0, le=1e6, description="value of a retired unit")

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"catalog": data}
        return data

    @model_validator(mode="after")
    def _complete(self) -> "AsicModel":
        spec: dict[str, Any] = {}
        if self.catalog is not None:
            cat = load_catalog()
            if self.catalog not in cat:
                raise ValueError(f"unknown catalog model {self.catalog!r} (known: {', '.join(sorted(cat))})")
            spec = dict(cat[self.catalog])
        name = self.name or self.catalog
        th = self.hashrate_th_s or spec.get("hashrate_th_s")
        w = self.power_w
        if w is None and self.efficiency_j_per_th is not None and th is not None:
            w = self.efficiency_j_per_th * th
        if w is None:
            w = spec.get("power_w")
        if name is None:
            raise ValueError("give name or catalog")
        if th is None or w is None:
            raise ValueError(f"model {name!r}: give hashrate_th_s and power_w (or efficiency_j_per_th), or a catalog name")
        if self.power_w is not None and self.efficiency_j_per_th is not None:
            if abs(self.power_w - self.efficiency_j_per_th * th) > 1e-6 * self.power_w:
                raise ValueError(f"model {name!r}: power_w {self.power_w} disagrees with efficiency_j_per_th x hashrate_th_s = {self.efficiency_j_per_th * th}")
        if not 0 < float(w) <= 100_000:
            raise ValueError(f"model {name!r}: power_w = efficiency_j_per_th x hashrate_th_s = {float(w):g} W, outside (0, 100000]")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "hashrate_th_s", float(th))
        object.__setattr__(self, "power_w", float(w))
        object.__setattr__(self, "efficiency_j_per_th", float(w) / float(th))
        return self


class Installed(Strict):
    site: Id
    model: str = Field(max_length=80)
    units: Units


class PurchaseOption(Strict):
    id: Id
    model: str = Field(max_length=80)
    usd_per_th: float = Field(ge=0, le=10_000, allow_inf_nan=False, description="price per TH/s (new ASICs: ~15-20)")
    first_month: Month
    last_month: Month | None = None
    lead_months: LeadMonths = Field(0, description="months from order (and payment) to units installed")
    max_units: Units | None = Field(None, description="cap on units bought over the horizon, all sites together")
    sites: list[Id] | None = Field(None, min_length=1, description="sites that may receive the units (default: all)")


class Fleet(Strict):
    asic_models: list[AsicModel] = Field(min_length=1)
    installed: list[Installed] = Field(default_factory=list)
    purchase_options: list[PurchaseOption] = Field(default_factory=list)
    allow_retirement: bool = Field(True, description="units may be retired for their salvage value")


# ---------------------------------------------------------------- power contracts


class _ContractBase(Strict):
    id: Id
    site: Id
    start_month: Month | None = Field(None, description="first month of delivery (default: horizon start)")
    term_months: TermMonths | None = Field(None, description="months of delivery (default: to the horizon end)")
    optional: bool = Field(False, description="if true the plan decides whether to sign it")
    signing_fee_usd: Usd = Field(0.0, description="paid in the start month if signed")


class FixedContract(_ContractBase):
    kind: Literal["fixed"]
    price_usd_per_mwh: UsdPerMwh
    escalator_per_year: Escalator = Field(0.0, description="price grows by this fraction each contract year")
    mw_cap: Mw
    take_or_pay_min_share: Share = Field(0.0, description="share of mw_cap x hours paid for whether taken or not")
    sell_back_allowed: bool = Field(False, description="energy taken but not used may be sold at the market price")


class IndexContract(_ContractBase):
    kind: Literal["index"]
    adder_usd_per_mwh: float = Field(0.0, ge=-MAX_USD_PER_MWH, le=MAX_USD_PER_MWH, allow_inf_nan=False, description="added to the market price")
    mw_cap: Mw | None = Field(None, description="default: no cap beyond the grid interconnect")


class OwnedGeneration(_ContractBase):
    kind: Literal["owned_generation"]
    mw: Mw
    variable_cost_usd_per_mwh: UsdPerMwh
    fixed_cost_usd_per_month: Usd = 0.0
    acquisition_price_usd: Usd = Field(0.0, description="paid in the start month when optional and bought")
    can_export: bool = Field(True, description="generation not used on site may be sold at the market price")
    residual_value_usd: Usd = Field(0.0, description="value of the plant at the horizon end when it is owned then and its term reaches the end (e.g. price x remaining life / life); the terminal_generation_usd line")
    heat_rate_mmbtu_per_mwh: float | None = Field(None, gt=0, le=100, allow_inf_nan=False, description="fuel burnt per MWh generated (a CCGT: ~6.5-7.5); with `fuel`, each MWh costs heat rate x the scenario's fuel price on top of variable_cost_usd_per_mwh")
    fuel: Id | None = Field(None, description="the fuel it burns (fuels[*].id); give with heat_rate_mmbtu_per_mwh")
    availability: float = Field(1.0, gt=0, le=1, allow_inf_nan=False, description="share of the hours the plant can generate (outages, maintenance): generation <= mw x availability x hours")
    capacity_revenue_usd_per_mw_year: float = Field(0.0, ge=0, le=12 * MAX_USD_PER_MW_MONTH, allow_inf_nan=False, description="capacity market payment per MW of accredited capacity (mw x availability) and year, while owned")
    feeds: list[Id] = Field(default_factory=list, max_length=100, description="other sites its energy may supply (behind the meter, e.g. a campus next to the plant), besides its own site")
    assumed_debt: AssumedDebt | None = Field(None, description="debt assumed with the purchase of an optional plant (needs optional: true)")


Contract = Annotated[Union[FixedContract, IndexContract, OwnedGeneration], Field(discriminator="kind")]


# ---------------------------------------------------------------- leases


class Lease(Strict):
    id: Id
    it_mw: Mw = Field(description="critical-IT MW the tenant takes")
    rate_usd_per_kw_month: float = Field(gt=0, le=10_000, allow_inf_nan=False, description="rent per kW of IT and month (colocation: ~130-200)")
    escalator_per_year: Escalator = Field(0.0, description="rent grows by this fraction each lease year")
    term_months: TermMonths = Field(description="months the lease runs from hand-over")
    window_start: Month = Field(description="earliest hand-over month")
    window_end: Month = Field(description="latest hand-over month")
    eligible_sites: list[Id] | None = Field(None, min_length=1, description="default: every site")
    power_passthrough: bool = Field(False, description="tenant reimburses the lease's HPC energy (cooling included); at what price: passthrough_price")
    passthrough_price: Literal["site", "market"] = Field("site", description="with power_passthrough: 'site' (default) reimburses at what the site pays for energy (its mandatory fixed-price supply while it runs, else market price + index adder; models/economics.md 'Site energy price'), 'market' at the wholesale market price (the landlord keeps the spread)")
    noi_margin: Share | None = Field(None, description="NOI / rent before power: lease opex = (1 - margin) x rent covers the lease's running costs except its energy, which is accounted separately (reimbursed under power_passthrough, else paid through the site's contracts); a margin already net of power needs noi_margin_basis: after_power")
    noi_margin_basis: Literal["before_power", "after_power"] = Field("before_power", description="before_power (default): noi_margin excludes the lease's energy; after_power: the margin is net of the landlord paying the lease's energy (a gross lease), so the model credits that energy back at the site's energy price instead of counting it twice; not allowed with power_passthrough (the tenant pays the power, a margin net of it would count it twice)")
    opex_usd_per_mw_month: UsdPerMwMonth | None = Field(None, description="alternative to noi_margin: lease opex per MW of IT and month, excluding energy")
    splittable: bool = Field(False, description="may be delivered from several sites")
    late_penalty_usd_per_mw_month: UsdPerMwMonth | None = Field(None, description="if set, hand-over may slip past window_end at this cost per MW and month late, paid at hand-over")
    tranches: list[Tranche] | None = Field(None, min_length=1, description="phased hand-over: MW handed over at offsets from the hand-over month (sum = it_mw, first offset 0); each tranche runs term_months from its own hand-over")
    delay_exposed: bool = Field(True, description="the hand-over slips by the scenario's handover_delay_months (construction delay)")
    delay_damages_usd_per_mw_month: UsdPerMwMonth | None = Field(None, description="liquidated damages the landlord pays per MW and month a tranche is delivered late in a delay scenario")
    tenant: Id | None = Field(None, description="tenant id for exposure limits (policy.tenant_limits); default: the lease id")
    credit: LeaseCredit | None = Field(None, description="tenant default risk: rent is valued at its expected value under default (default: no risk)")
    renewals: Renewals | None = Field(None, description="renewal options held by the tenant after the term")
    prepayment_share: Share = Field(0.0, description="share of the base term's rent paid up front (the monthly rent falls by this share)")
    prepayment_months_before_handover: int = Field(0, ge=0, le=MAX_LEAD_MONTHS, description="months before the hand-over month the prepayment is received (not before the horizon start)")
    tenant_capex_share: Share = Field(0.0, description="share of the capex of the lease's MW the tenant funds (at the site's conversion capex per MW, or its HPC new-build's), paid over the build lead time before hand-over")
    gpu_option: Id | None = Field(None, description="a GPU cloud contract: the landlord supplies it_mw of GPUs of this gpu_cloud option at the site while it runs (its racks are those GPUs')")

    @model_validator(mode="after")
    def _window(self) -> "Lease":
        if month_ordinal(self.window_end) < month_ordinal(self.window_start):
            raise ValueError(f"window_end {self.window_end} is before window_start {self.window_start}")
        if self.noi_margin is not None and self.opex_usd_per_mw_month is not None:
            raise ValueError("give noi_margin or opex_usd_per_mw_month, not both")
        if self.tranches is not None:
            total = sum(k.it_mw for k in self.tranches)
            if abs(total - self.it_mw) > 1e-9 * self.it_mw:
                raise ValueError(f"tranches: their it_mw sum to {total:g}, not the lease's it_mw {self.it_mw:g}")
            offs = [k.offset_months for k in self.tranches]
            if offs[0] != 0 or any(b <= a for a, b in zip(offs, offs[1:])):
                raise ValueError(f"tranches: offset_months must start at 0 and increase, got {offs}")
        if self.noi_margin_basis == "after_power":
            if self.noi_margin is None:
                raise ValueError("noi_margin_basis: after_power describes noi_margin; give noi_margin (or leave the basis before_power)")
            if self.power_passthrough:
                raise ValueError("noi_margin_basis: after_power with power_passthrough counts the lease's power twice "
                                 "(the tenant reimburses it and the margin already deducts it); give the margin before power "
                                 "(noi_margin_basis: before_power) or drop power_passthrough")
        if "passthrough_price" in self.model_fields_set and not self.power_passthrough:
            raise ValueError("passthrough_price: applies only with power_passthrough: true")
        return self

    @property
    def tranche_list(self) -> list[tuple[float, int]]:
        """(it_mw, offset_months) of each tranche; one tranche of it_mw at offset 0 without tranches."""
        return [(self.it_mw, 0)] if self.tranches is None else [(k.it_mw, k.offset_months) for k in self.tranches]

    @property
    def tenant_id(self) -> str:
        return self.tenant if self.tenant is not None else self.id


# ---------------------------------------------------------------- treasury and policy


class Treasury(Strict):
    btc_held_start: float = Field(0.0, ge=0, le=21e6, allow_inf_nan=False, description="BTC in the treasury at the start (at most the 21 million supply)")
    mined_btc: Literal["sell_monthly", "hold"] = Field("sell_monthly", description="sell mined BTC in the period mined, or add it to the treasury")
    allow_treasury_sales: bool = Field(True, description="treasury BTC may be sold (to fund capex or otherwise)")
    cash_start_usd: SignedUsd | None = Field(None, description="if set, a cash balance is kept per period and scenario and must stay >= min_cash_usd")
    min_cash_usd: SignedUsd = Field(0.0, description="floor of the cash balance")


class FixedConversion(Strict):
    kind: Literal["conversion"]
    site: Id
    month: Month
    blocks: Racks


class FixedLease(Strict):
    kind: Literal["lease"]
    lease: Id
    signed: bool
    site: Id | None = None
    month: Month | None = Field(None, description="hand-over month")


class FixedContractDecision(Strict):
    kind: Literal["contract"]
    contract: Id
    signed: bool


class FixedPurchase(Strict):
    kind: Literal["purchase"]
    option: Id
    site: Id
    month: Month
    units: Units


class FixedSiteEvent(Strict):
    kind: Literal["sale", "acquisition"]
    site: Id
    month: Month | None = Field(None, description="month of the event; omit with happens: false")
    happens: bool = True


class FixedGridExpansion(Strict):
    kind: Literal["grid_expansion"]
    site: Id
    option: Id
    month: Month | None = None
    happens: bool = True


FixedDecision = Annotated[
    Union[FixedConversion, FixedLease, FixedContractDecision, FixedPurchase, FixedSiteEvent, FixedGridExpansion],
    Field(discriminator="kind"),
]


class Policy(Strict):
    capex_budget_usd_per_year: Usd | dict[int, Usd] | None = Field(None, description="cap on conversion + grid expansion + ASIC purchase spend per calendar year (one number for every year, or year -> USD)")
    min_mining_share: Share = Field(0.0, description="mining rack positions kept >= this share of all rack positions of initially owned sites")
    max_converted_share: Share = Field(1.0, description="converted rack positions <= this share of initial mining rack positions")
    fixed_decisions: list[FixedDecision] = Field(default_factory=list)
    tenant_limits: list[TenantLimit] = Field(default_factory=list, description="exposure limits per tenant (leases[*].tenant)")


class Risk(Strict):
    """Risk aversion: maximise (1 - weight) E[NPV] + weight CVaR_alpha[NPV] (models/risk.md)."""

    weight: Share = Field(0.0, description="weight on CVaR of the NPV: 0 risk-neutral, 1 CVaR only")
    alpha: float = Field(0.95, ge=0, lt=1, allow_inf_nan=False, description="CVaR level: the mean NPV of the worst 1 - alpha probability mass")


# ---------------------------------------------------------------- the instance


class Instance(Strict):
    name: str = Field("instance", max_length=200)
    description: str = Field("", max_length=100_000)
    sources: list[Annotated[str, Field(max_length=10_000)]] = Field(default_factory=list, description="citations for the figures used")
    horizon: Horizon
    bitcoin: Bitcoin
    scenarios: list[Scenario] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)
    fleet: Fleet
    contracts: list[Contract] = Field(default_factory=list)
    leases: list[Lease] = Field(default_factory=list)
    treasury: Treasury = Treasury()
    policy: Policy = Policy()
    risk: Risk | None = Field(None, description="risk-averse objective; default risk-neutral (maximise E[NPV])")
    financing: Financing | None = Field(None, description="debt, taxes and valuation (models/economics.md, 'Financing and taxes'); default: pre-tax, unlevered")
    markets: list[MarketPrograms] = Field(default_factory=list, max_length=100, description="per power market: demand-response program and transmission peak charge (models/economics.md, 'Mining and power levers')")
    fuels: list[Fuel] = Field(default_factory=list, max_length=100, description="fuel price paths owned plants burn")
    overhead: Overhead | None = Field(None, description="corporate G&A and the options to reduce it")
    hedges: Hedges | None = Field(None, description="hashprice forwards the plan may sell")
    gpu_cloud: GpuCloud | None = Field(None, description="GPU purchase options: GPU cloud as a third use of HPC racks (models/economics.md, 'GPU cloud'); default: none")
    scenario_generator: ScenarioGenerator | None = Field(None, description="samples the scenarios instead of listing them (optimizer/scengen.py); give this or scenarios")
    tree: TreeSpec | None = Field(None, description="sequential decisions on a scenario tree (models/trees.md); default: two-stage (commitments at the root, operations per scenario)")

    _data_folder: DataFolder | None = PrivateAttr(default=None)  # where CSV series were read (overrides re-read them)

    @model_validator(mode="wrap")
    @classmethod
    def _generated_scenarios(cls, data: Any, handler):
        """Fill ``scenarios`` from ``scenario_generator``. The generated ones are left out of
        ``model_fields_set`` so an ``exclude_unset`` dump re-validates by regenerating them."""
        if not isinstance(data, dict) or data.get("scenario_generator") is None:
            return handler(data)
        tree = data.get("tree")
        if isinstance(tree, dict) and tree.get("children") is not None:
            made = instance_tree(data)  # a generated tree: its leaves are the scenarios, its labels the paths
            if made is None:
                return handler(data)
            inst = handler({**data, "scenarios": made[0], "tree": {**tree, "paths": made[1]}})
            inst.model_fields_set.discard("scenarios")
            inst.tree.model_fields_set.discard("paths")
            return inst
        scenarios = instance_scenarios(data)
        if scenarios is None:  # horizon or bitcoin invalid: let normal validation name it
            return handler(data)
        inst = handler({**data, "scenarios": scenarios})
        inst.model_fields_set.discard("scenarios")
        return inst

    # ------------------------------------------------------------ loading

    @classmethod
    def from_yaml(cls, path: str | Path, data_dir: str | Path | None = None) -> "Instance":
        """Load YAML or JSON (by extension; ``instance.parsing``: duplicate keys and deep nesting
        are refused, as InputError). CSV paths are relative to the file and must lie inside the
        data folder: ``data_dir`` when given, else the file's folder."""
        path = Path(path)
        return cls.from_dict(read_mapping(path), base_dir=path.parent, data_dir=data_dir)

    from_file = from_yaml

    @classmethod
    def from_dict(cls, data: dict, base_dir: str | Path | None = None, *, data_dir: str | Path | None = None) -> "Instance":
        """Validate a mapping. Files: CSV series are read relative to ``base_dir`` (the folder of
        the file the mapping came from) and must lie, symlinks resolved, inside the data folder:
        ``data_dir`` when given, else ``base_dir``. With neither, the instance may read no file
        (a mapping from a caller, e.g. a web service, names no file on the server)."""
        return cls.validate_in_folder(data, DataFolder.of(base_dir=base_dir, data_dir=data_dir))

    @classmethod
    def validate_in_folder(cls, data: dict, folder: DataFolder | None) -> "Instance":
        """Validate a mapping whose CSV series are read from ``folder`` (None: no file)."""
        inst = cls.model_validate(data, context={"data_folder": folder})
        inst._data_folder = folder  # overrides and variants re-validate against the same folder
        return inst

    @property
    def data_folder(self) -> DataFolder | None:
        """Where this instance's CSV series may be read from (None: no file)."""
        return self._data_folder

    # ------------------------------------------------------------ derived lookups

    @cached_property
    def timeline(self) -> Timeline:
        h = self.horizon
        return Timeline(month_ordinal(h.start_month), h.periods, h.period_months)

    @cached_property
    def model_by_name(self) -> dict[str, AsicModel]:
        return {m.name: m for m in self.fleet.asic_models}

    @cached_property
    def site_by_id(self) -> dict[str, Site]:
        return {s.id: s for s in self.sites}

    @cached_property
    def gpu_option_by_id(self) -> dict:
        return {} if self.gpu_cloud is None else {o.id: o for o in self.gpu_cloud.options}

    def eligible_sites(self, lease: Lease) -> list[str]:
        return list(lease.eligible_sites) if lease.eligible_sites is not None else [s.id for s in self.sites]

    def contract_window(self, c) -> tuple[int, int]:
        """First and last period index (inclusive, clipped to the horizon) a contract delivers."""
        tl = self.timeline
        start = month_ordinal(c.start_month) if c.start_month else tl.start
        end = start + c.term_months - 1 if c.term_months else tl.end
        return max(tl.period_of_month(start), 0), min(tl.period_of_month(end), tl.n_periods - 1)

    # ------------------------------------------------------------ cross-checks

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "Instance":
        """Every rule of ``optimizer.instance.checks`` (one function per rule)."""
        errors = run_checks(self)
        if errors:
            raise ValueError(errors[0] if len(errors) == 1 else "; ".join(errors))
        return self

    # ------------------------------------------------------------ overrides

    def with_overrides(self, overrides: dict[str, Any]) -> "Instance":
        """A validated copy with dotted-path overrides, e.g. ``{"horizon.discount_rate": 0.12}``."""
        return apply_overrides(self, overrides)


def _unique(ids: list[str], where: str, errors: list[str] | None = None) -> None:
    seen: set[str] = set()
    for x in ids:
        if x in seen:
            msg = f"{where}: duplicate id {x!r}"
            if errors is None:
                raise ValueError(msg)
            errors.append(msg)
        seen.add(x)
