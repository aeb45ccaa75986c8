"""Shared field types and the protocol-level sections of the instance (horizon, bitcoin).

Kept apart from ``schema.py`` so the scenario generator (``scengen.py``), which the schema
uses, can read the horizon and bitcoin sections without importing the schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from optimizer.kernel.timeline import month_ordinal


def _check_month(v: str) -> str:
    month_ordinal(v)
    return v


Month = Annotated[str, AfterValidator(_check_month)]
NonNeg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Pos = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.\-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# ---------------------------------------------------------------- horizon, bitcoin, scenarios


class TerminalRule(Strict):
    """Value added at the end of the horizon, discounted with the last period's factor."""

    lease_remaining_noi: bool = Field(True, description="leases running past the horizon add their remaining contracted NOI, discounted monthly")
    hpc_unleased_noi_usd_per_mw_year: NonNeg = Field(0.0, description="market NOI of HPC critical-IT MW not under lease at the end (times the scenario's HPC lease-rate index)")
    hpc_cap_rate: Pos = Field(0.07, description="cap rate turning that NOI into a value: value = NOI / cap rate")
    mining_margin_multiple: NonNeg = Field(0.0, description="mining value = multiple x annualised mining margin of the last period (0: mining worth nothing after the horizon)")
    asic_salvage: bool = Field(True, description="ASICs installed at the end are valued at their salvage value")
    treasury_btc: bool = Field(True, description="BTC held at the end is valued at the last period's BTC price")


class Horizon(Strict):
    start_month: Month
    periods: int = Field(gt=0, le=600, description="number of planning periods")
    period_months: Literal[1, 3] = Field(1, description="months per period: 1 (monthly) or 3 (quarterly)")
    discount_rate: float = Field(ge=0, le=2, allow_inf_nan=False, description="annual discount rate; cash flows are discounted at the end of their period")
    terminal: TerminalRule = TerminalRule()


class Bitcoin(Strict):
    start_height: int = Field(ge=0, description="block height at the first instant of the horizon")
    block_interval_minutes: Pos = Field(10.0, description="mean time between blocks")
    pool_fee: Share = Field(0.0, description="share of mining revenue kept by the pool")
    halving_interval_blocks: int = Field(210_000, gt=0)
    initial_subsidy_btc: Pos = Field(50.0, description="subsidy of block 0; halves every halving_interval_blocks")
    halving_heights: list[int] | None = Field(None, description="override: the heights at which the subsidy halves (ascending); the subsidy at start_height still follows from initial_subsidy_btc and the halvings below it")

    @model_validator(mode="after")
    def _ascending(self) -> "Bitcoin":
        h = self.halving_heights
        if h is not None and any(b <= a for a, b in zip(h, h[1:])):
            raise ValueError(f"halving_heights must be strictly ascending, got {h}")
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
    children: int | list[Annotated[int, Field(gt=0, le=50)]] | None = Field(
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
