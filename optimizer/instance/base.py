"""Shared field types and the protocol-level sections of the instance (horizon, bitcoin).

Kept apart from ``schema.py`` so the scenario generator (``scengen.py``), which the schema
uses, can read the horizon and bitcoin sections without importing the schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from optimizer.kernel.timeline import month_ordinal

# ---------------------------------------------------------------- ranges
# Every number of an instance is finite and lies in a range wide enough for any real miner and
# narrow enough that no product of them overflows a float or turns the MILP's coefficients into
# noise, and that no loop or array sized from a value (a lease term, a lead time, a block height)
# can grow past a small constant: validation and compilation cost follows the instance's size.
# The JSON Schema states each range (minimum/maximum, and in the field's description).
MAX_USD = 1e12               # one trillion USD: above any miner's balance sheet (prices, capex, cash)
MAX_USD_PER_MW_MONTH = 1e8   # opex, NOI or penalty per MW and month (real: ~1e4 to 1e5)
MAX_USD_PER_MWH = 1e5        # energy prices and costs; ERCOT's offer cap is 5,000 USD/MWh
MAX_MW = 10_000.0            # 10 GW: above any site, contract, plant or lease (campuses are ~1-5 GW)
MAX_UNITS = 1e8              # ASICs: ~50x the largest fleets
MAX_RACKS = 1_000_000        # rack positions of one hall, racks of one conversion block
MAX_TERM_MONTHS = 1200       # 100 years: contract and lease terms
MAX_LEAD_MONTHS = 240        # 20 years: lead times of conversions, expansions, ASIC deliveries
MIN_YEAR, MAX_YEAR = 1970, 2199  # calendar years a month may name
MAX_SERIES_MAGNITUDE = 1e12  # any series value before its per-field range (SERIES_RANGES)

# The range every month of a scenario's series must lie in, once resolved (a constant, points, a CSV
# column or a generator's path, times its scale): field -> (low, high, low allowed?, unit).
SERIES_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "btc_price_usd": (0.0, 1e8, False, "USD"),                  # > 0; 1,000x today's price
    "network_hashrate_eh_s": (0.0, 1e6, False, "EH/s"),         # > 0; 1,000x today's hashrate
    "fees_btc_per_block": (0.0, 100.0, True, "BTC per block"),  # a block's fees have never reached 10 BTC
    "power_price_usd_per_mwh": (-MAX_USD_PER_MWH, MAX_USD_PER_MWH, True, "USD/MWh"),  # negative prices happen
    "hpc_lease_rate_index": (0.0, 100.0, True, ""),             # a multiplier on today's HPC NOI
    "fuel_price_usd_per_mmbtu": (0.0, 1e4, True, "USD/MMBtu"),  # Henry Hub peaked near 24 USD/MMBtu in 2005; 400x that
    "gpu_price_index": (0.0, 100.0, True, ""),                  # a multiplier on today's merchant GPU-hour price
}


def series_range_text(field: str) -> str:
    lo, hi, closed, unit = SERIES_RANGES[field]
    return f"every month in {'[' if closed else '('}{lo:g}, {hi:g}]{' ' + unit if unit else ''}"


def _check_month(v: str) -> str:
    year = month_ordinal(v) // 12
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"year must be in {MIN_YEAR}..{MAX_YEAR}, got {v!r}")
    return v


def _range_text(prop: dict) -> str | None:
    """'[0, 1e+12]' from a JSON Schema property's bounds (None without bounds)."""
    lo = prop.get("minimum", prop.get("exclusiveMinimum"))
    hi = prop.get("maximum", prop.get("exclusiveMaximum"))
    if lo is None and hi is None:
        return None
    left = "(" if "exclusiveMinimum" in prop or lo is None else "["
    right = ")" if "exclusiveMaximum" in prop or hi is None else "]"
    return f"{left}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}{right}"


def describe_ranges(schema: dict[str, Any], cls: Any = None) -> None:
    """``json_schema_extra``: append each numeric field's range to its description (the range is
    read from the bounds pydantic wrote, so the text cannot disagree with the rule)."""
    for prop in schema.get("properties", {}).values():
        alts = [prop, *prop.get("anyOf", [])]
        alts += [a[k] for a in list(alts) for k in ("items", "additionalProperties") if isinstance(a.get(k), dict)]
        texts = [t for t in (_range_text(a) for a in alts if a.get("type") in ("number", "integer")) if t]
        if texts:
            text = "range " + " or ".join(dict.fromkeys(texts))
            prop["description"] = f"{prop['description']}; {text}" if prop.get("description") else text


Month = Annotated[str, AfterValidator(_check_month)]
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Usd = Annotated[float, Field(ge=0, le=MAX_USD, allow_inf_nan=False)]
PosUsd = Annotated[float, Field(gt=0, le=MAX_USD, allow_inf_nan=False)]
RatePerYear = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # interest, coupon: at most 100 % a year
SignedUsd = Annotated[float, Field(ge=-MAX_USD, le=MAX_USD, allow_inf_nan=False)]
UsdPerMwh = Annotated[float, Field(ge=0, le=MAX_USD_PER_MWH, allow_inf_nan=False)]
UsdPerMwMonth = Annotated[float, Field(ge=0, le=MAX_USD_PER_MW_MONTH, allow_inf_nan=False)]
Mw = Annotated[float, Field(gt=0, le=MAX_MW, allow_inf_nan=False)]
Units = Annotated[float, Field(ge=0, le=MAX_UNITS, allow_inf_nan=False)]
Racks = Annotated[int, Field(ge=0, le=MAX_RACKS)]
LeadMonths = Annotated[int, Field(ge=0, le=MAX_LEAD_MONTHS)]
TermMonths = Annotated[int, Field(gt=0, le=MAX_TERM_MONTHS)]
Escalator = Annotated[float, Field(ge=-0.5, le=1, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=describe_ranges)


# ---------------------------------------------------------------- horizon, bitcoin, scenarios


class TerminalRule(Strict):
    """Value added at the end of the horizon (models/economics.md, "Terminal values"), discounted
    from the horizon's end. ``optimizer solve --terminal-check`` shows which decisions lean on it."""

    lease_remaining_noi: bool = Field(True, description="leases running past the horizon add their remaining contracted NOI, net of the site's fixed HPC opex and of the power the landlord still bears, discounted monthly")
    hpc_unleased_noi_usd_per_mw_year: NonNeg = Field(0.0, le=12 * MAX_USD_PER_MW_MONTH, description="market NOI of one HPC critical-IT MW (rent - lease opex, before power, as a pass-through lease's) times the scenario's HPC lease-rate index; value of an unleased MW at the end = (NOI - 12 x the site's fixed HPC opex) / hpc_cap_rate, floored at 0, and leased MW revert to it when their lease ends. Default 0 (conservative): capacity nobody has leased is worth nothing after the horizon, so no build-out is justified by a value the plan never earns; set it from a market figure and check the plan with --terminal-check")
    hpc_cap_rate: float = Field(0.07, ge=0.01, le=1, allow_inf_nan=False, description="cap rate turning that NOI into a value: value = NOI / cap rate (data centers trade at 5-8%)")
    mining_margin_multiple: NonNeg = Field(0.0, le=100, description="mining value per site = max(what retiring gives (salvage), multiple x annualised mining margin of the last period at the site's energy price after the horizon) (0: mining worth its salvage only)")
    asic_salvage: bool = Field(True, description="ASICs installed at the end are valued at their salvage value")
    treasury_btc: bool = Field(True, description="BTC held at the end is valued at the last period's BTC price")


class Horizon(Strict):
    start_month: Month
    periods: int = Field(gt=0, le=600, description="number of planning periods")
    period_months: Literal[1, 3] = Field(1, description="months per period: 1 (monthly) or 3 (quarterly)")
    discount_rate: float = Field(ge=0, le=2, allow_inf_nan=False, description="annual discount rate; cash flows are discounted at the end of their period")
    terminal: TerminalRule = TerminalRule()


class Bitcoin(Strict):
    start_height: int = Field(ge=0, le=20_000_000, description="block height at the first instant of the horizon (about 930,000 in 2026; 20 million is reached after year 2300)")
    block_interval_minutes: float = Field(10.0, ge=1, le=60, allow_inf_nan=False, description="mean time between blocks (the protocol targets 10)")
    pool_fee: Share = Field(0.0, description="share of mining revenue kept by the pool")
    halving_interval_blocks: int = Field(210_000, ge=10_000, le=10_000_000, description="blocks between halvings (210,000 in Bitcoin)")
    initial_subsidy_btc: Pos = Field(50.0, le=1000, description="subsidy of block 0; halves every halving_interval_blocks")
    halving_heights: list[Annotated[int, Field(ge=1, le=100_000_000)]] | None = Field(None, max_length=64, description="override: the halvings AFTER start_height (ascending, each > start_height), e.g. [1050000] to move the next one; the subsidy at start_height always follows from initial_subsidy_btc halved every halving_interval_blocks up to start_height")

    @model_validator(mode="after")
    def _ascending(self) -> "Bitcoin":
        h = self.halving_heights
        if h is not None and any(b <= a for a, b in zip(h, h[1:])):
            raise ValueError(f"halving_heights must be strictly ascending, got {h}")
        past = [x for x in (h or []) if x <= self.start_height]
        if past:
            era = self.start_height // self.halving_interval_blocks
            raise ValueError(
                f"halving_heights: list only the halvings after start_height {self.start_height:,} "
                f"(got {', '.join(f'{x:,}' for x in past)}); the subsidy at start_height follows from "
                f"initial_subsidy_btc {self.initial_subsidy_btc:g} halved {era} times "
                f"(every {self.halving_interval_blocks:,} blocks) = {self.initial_subsidy_btc * 0.5 ** era:g} BTC")
        return self


# ---------------------------------------------------------------- scenario tree


class TreeSpec(Strict):
    """A scenario tree (models/trees.md). Stages begin at ``branch_months``: at each, every node
    branches into children that reveal the prices of the stage that starts there.

    Who decides what: operations of a month (units running, energy) sit at the node whose prices
    hold that month; every commitment of a month (conversions, grid expansions, ASIC purchases and
    retirements, lease hand-overs, contract signings, site sales and acquisitions, treasury BTC
    sales) is taken at the start of its stage, before the stage's prices are seen: at the parent
    of that node (the root for the stage before the first branch). One branch month at the horizon
    start with one child per scenario is the two-stage form (every commitment at the root).
    """

    branch_months: list[Month] = Field(min_length=1, max_length=12, description="months at which the tree branches (ascending; the first may be the horizon start)")
    children: Annotated[int, Field(gt=0, le=50)] | list[Annotated[int, Field(gt=0, le=50)]] | None = Field(
        None, description="generated tree: children per node at each branch month (one number for all), sampled from scenario_generator")
    samples_per_node: int | None = Field(None, gt=0, le=2000, description="generated tree: continuations sampled per node, reduced to its children (default: as many as children, no reduction)")
    reduction_method: Literal["kmedoids", "forward_selection"] = Field("kmedoids", description="generated tree: how a node's children are picked from its samples (on hashprice paths)")
    paths: dict[str, list[Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")]]] | None = Field(
        None, description="given scenarios: scenario name -> its node label at each branch month (scenarios sharing a label prefix share that node)")

    @model_validator(mode="after")
    def _check(self) -> "TreeSpec":
        b = [month_ordinal(m) for m in self.branch_months]
        if any(y <= x for x, y in zip(b, b[1:])):
            raise ValueError(f"branch_months: must be strictly ascending, got {self.branch_months}")
        if isinstance(self.children, int) and not 0 < self.children <= 50:
            raise ValueError(f"children: must be between 1 and 50, got {self.children}")
        if isinstance(self.children, list) and len(self.children) != len(self.branch_months):
            raise ValueError(f"children: one number per branch month ({len(self.branch_months)}), got {len(self.children)}")
        if self.children is None and self.samples_per_node is not None:
            raise ValueError("samples_per_node: only for a generated tree (give children)")
        if self.samples_per_node is not None and self.samples_per_node < max(self.children_per_stage):
            raise ValueError(f"samples_per_node: must be >= children ({max(self.children_per_stage)}), got {self.samples_per_node}")
        if self.paths is not None:
            for name, labels in self.paths.items():
                if len(labels) != len(self.branch_months):
                    raise ValueError(f"paths.{name}: one node label per branch month ({len(self.branch_months)}), got {len(labels)}")
        return self

    @property
    def children_per_stage(self) -> list[int]:
        """Children per node at each branch month (generated trees; [] otherwise)."""
        if self.children is None:
            return []
        return [self.children] * len(self.branch_months) if isinstance(self.children, int) else list(self.children)

    @property
    def n_leaves(self) -> int:
        out = 1
        for k in self.children_per_stage:
            out *= k
        return out
