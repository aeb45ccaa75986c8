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
    """Value added at the end of the horizon (models/economics.md, "Terminal values"), discounted
    from the horizon's end. ``optimizer solve --terminal-check`` shows which decisions lean on it."""

    lease_remaining_noi: bool = Field(True, description="leases running past the horizon add their remaining contracted NOI, net of the site's fixed HPC opex and of the power the landlord still bears, discounted monthly")
    hpc_unleased_noi_usd_per_mw_year: NonNeg = Field(0.0, description="market NOI of one HPC critical-IT MW (rent - lease opex, before power, as a pass-through lease's) times the scenario's HPC lease-rate index; value of an unleased MW at the end = (NOI - 12 x the site's fixed HPC opex) / hpc_cap_rate, floored at 0, and leased MW revert to it when their lease ends. Default 0 (conservative): capacity nobody has leased is worth nothing after the horizon, so no build-out is justified by a value the plan never earns; set it from a market figure and check the plan with --terminal-check")
    hpc_cap_rate: Pos = Field(0.07, description="cap rate turning that NOI into a value: value = NOI / cap rate")
    mining_margin_multiple: NonNeg = Field(0.0, description="mining value per site = max(what retiring gives (salvage), multiple x annualised mining margin of the last period at the site's energy price after the horizon) (0: mining worth its salvage only)")
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
    halving_heights: list[int] | None = Field(None, description="override: the halvings AFTER start_height (ascending, each > start_height), e.g. [1050000] to move the next one; the subsidy at start_height always follows from initial_subsidy_btc halved every halving_interval_blocks up to start_height")

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
