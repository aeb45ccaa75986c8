"""HPC growth levers of the instance (DESIGN section 12): new-build capacity, GPU cloud, lease
tranches and delivery delays, tenant credit, renewal options, prepayments, tenant-funded capex.

Every lever is off by default (absent section, empty list, share 0), and then the plan is valued
exactly as before. How each field enters the cash flows: models/economics.md, "New-build
capacity", "GPU cloud" and "Lease tranches, delays, credit and options".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from optimizer.instance.base import (
    MAX_LEAD_MONTHS,
    MAX_RACKS,
    Id,
    LeadMonths,
    Month,
    Mw,
    Share,
    Strict,
    TermMonths,
    Usd,
    UsdPerMwMonth,
)
from optimizer.kernel.timeline import month_ordinal

# Long-run average one-year default rates of S&P-rated corporates by rating category (first-year
# column of S&P's global average cumulative default rates, 1981 onward, as reproduced in the FRM
# notes at https://frm.midhafin.com/part-1/external-and-internal-credit-ratings): AAA 0.00 %,
# AA 0.02 %, A 0.06 %, BBB 0.18 %, BB 0.72 %, B 3.76 %, CCC/C 26.78 %.
RATING_DEFAULT_PROBABILITY: dict[str, float] = {
    "AAA": 0.0, "AA": 0.0002, "A": 0.0006, "BBB": 0.0018, "BB": 0.0072, "B": 0.0376, "CCC": 0.2678,
}
Rating = Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC"]
MAX_GPU_HOUR_USD = 1_000.0   # USD per GPU-hour (an H100 rented for ~2-8 USD in 2024-26)
MAX_DELAY_MONTHS = 120       # ten years of construction delay


# ---------------------------------------------------------------- new-build capacity


class NewBuild(Strict):
    """An option to build new rack positions at a site (a hall or a campus phase), in blocks of
    racks: HPC-ready racks (critical IT at the site's ``hpc_kw_per_rack``) or mining racks
    (``asics_per_rack`` ASICs each). Built racks count like the site's own racks: HPC racks host
    leases and GPU cloud, mining racks hold ASICs. They cannot be converted afterwards (build HPC
    racks directly instead)."""

    id: Id
    use: Literal["hpc", "mining"] = Field("hpc", description="hpc: HPC-ready rack positions; mining: mining rack positions")
    racks_per_block: int = Field(gt=0, le=MAX_RACKS, description="rack positions one block adds")
    capex_usd_per_mw: Usd = Field(description="capex per MW of the block, spread evenly over the lead time: critical IT MW for hpc "
                                              "(racks x hpc_kw_per_rack), design MW for mining (racks x mining_kw_per_rack)")
    mining_kw_per_rack: float | None = Field(None, gt=0, le=5_000, allow_inf_nan=False,
                                             description="mining blocks: design kW of one rack position (asics_per_rack x W per ASIC / 1000); required for use mining")
    lead_months: LeadMonths = Field(description="months from start of works to the racks in service")
    max_blocks: int = Field(ge=0, le=MAX_RACKS, description="cap on blocks built over the horizon")
    earliest_month: Month | None = None
    requires_grid_expansion: Id | None = Field(None, description="a grid expansion of the same site that must be started by the month works start")
    requires_contract: Id | None = Field(None, description="an optional contract at the same site (e.g. an owned plant) that must be signed for any block to be built")

    @model_validator(mode="after")
    def _mining(self) -> "NewBuild":
        if self.use == "mining" and self.mining_kw_per_rack is None:
            raise ValueError("mining_kw_per_rack: required when use is mining (the design kW a mining rack position is built for)")
        if self.use == "hpc" and self.mining_kw_per_rack is not None:
            raise ValueError("mining_kw_per_rack: only for use mining (HPC racks have the site's hpc_kw_per_rack)")
        return self


# ---------------------------------------------------------------- GPU cloud


class GpuOption(Strict):
    """GPUs the plan may buy and run as a cloud (a third use of HPC racks beside mining and
    colocation): MW of critical IT of GPUs at a site, paid at order, in service ``lead_months``
    later for ``useful_life_months`` (then retired for ``salvage_share`` of the price). GPUs not
    committed to a GPU cloud contract (``leases[*].gpu_option``) sell GPU-hours at the merchant
    price x ``utilization`` x the scenario's ``gpu_price_index``."""

    id: Id
    kw_per_gpu: float = Field(gt=0, le=100, allow_inf_nan=False, description="critical-IT kW per GPU incl. its share of host and network (GB300 NVL72: ~1.9)")
    usd_per_gpu: Usd | None = Field(None, description="price per GPU incl. servers and network (give this or usd_per_mw)")
    usd_per_mw: Usd | None = Field(None, description="price per MW of critical IT of GPUs (IREN-Microsoft: 5.8 B$ / 200 MW = 29 M$)")
    price_usd_per_gpu_hour: float | None = Field(None, ge=0, le=MAX_GPU_HOUR_USD, allow_inf_nan=False,
                                                 description="merchant price of a GPU-hour sold, today (give this or price_usd_per_mw_month)")
    price_usd_per_mw_month: UsdPerMwMonth | None = Field(None, description="merchant revenue per MW of GPUs and month at full utilization, today")
    utilization: Share = Field(1.0, description="share of GPU-hours sold (merchant)")
    opex_usd_per_mw_month: UsdPerMwMonth = Field(0.0, description="non-power opex per MW of GPUs in service and month (staff, software, network, insurance)")
    useful_life_months: TermMonths = Field(description="months in service before retirement (refresh)")
    salvage_share: Share = Field(0.0, description="share of the price recovered when the GPUs retire")
    lead_months: LeadMonths = Field(0, description="months from order (and payment) to GPUs in service")
    first_month: Month
    last_month: Month | None = Field(None, description="last order month (default: the horizon end)")
    max_mw: Mw | None = Field(None, description="cap on MW of GPUs bought over the horizon, all sites together")
    sites: list[Id] | None = Field(None, min_length=1, description="sites that may host the GPUs (default: all)")

    @model_validator(mode="after")
    def _one_of(self) -> "GpuOption":
        if (self.usd_per_gpu is None) == (self.usd_per_mw is None):
            raise ValueError("give usd_per_gpu or usd_per_mw (one of them)")
        if (self.price_usd_per_gpu_hour is None) == (self.price_usd_per_mw_month is None):
            raise ValueError("give price_usd_per_gpu_hour or price_usd_per_mw_month (one of them)")
        if self.last_month is not None and month_ordinal(self.last_month) < month_ordinal(self.first_month):
            raise ValueError(f"last_month {self.last_month} is before first_month {self.first_month}")
        return self

    @property
    def gpus_per_mw(self) -> float:
        return 1000.0 / self.kw_per_gpu

    @property
    def capex_usd_per_mw(self) -> float:
        """Purchase price per MW of critical IT of GPUs."""
        return self.usd_per_mw if self.usd_per_mw is not None else self.usd_per_gpu * self.gpus_per_mw

    def merchant_usd_per_mw(self, hours: float, months: float) -> float:
        """Merchant revenue of one MW of GPUs in service over a period of ``hours`` (``months``) at
        today's price, before the scenario's gpu_price_index: GPUs per MW x utilization x price x
        hours, or price per MW-month x utilization x months."""
        if self.price_usd_per_gpu_hour is not None:
            return self.gpus_per_mw * self.utilization * self.price_usd_per_gpu_hour * hours
        return self.price_usd_per_mw_month * self.utilization * months


class GpuCloud(Strict):
    """GPU purchase options and how GPUs are valued at the horizon end."""

    options: list[GpuOption] = Field(min_length=1)
    terminal_book_value: bool = Field(True, description="GPUs in service at the horizon end are valued at their straight-line book value "
                                                        "(price falling to the salvage value over the useful life)")


# ---------------------------------------------------------------- leases


class Tranche(Strict):
    """One phase of a lease's hand-over: ``it_mw`` handed over ``offset_months`` after the first hand-over."""

    it_mw: Mw
    offset_months: int = Field(ge=0, le=MAX_LEAD_MONTHS, description="months after the lease's hand-over month (0 for the first tranche)")


class LeaseCredit(Strict):
    """The tenant's credit: an annual default probability (or a rating mapped to one), and what is
    left when it defaults: a backstop (a guarantor paying that share of the rent, e.g. Google for
    Fluidstack) and a recovery on the rest."""

    annual_default_probability: Share | None = Field(None, description="probability per year that the tenant defaults (give this or rating)")
    rating: Rating | None = Field(None, description="S&P-style rating mapped to a one-year default probability (RATING_DEFAULT_PROBABILITY)")
    backstop_share: Share = Field(0.0, description="share of the rent a guarantor keeps paying after a default (1: default harmless)")
    recovery_share: Share = Field(0.0, description="share of the rent not backstopped that is recovered after a default")

    @model_validator(mode="after")
    def _one_of(self) -> "LeaseCredit":
        if (self.annual_default_probability is None) == (self.rating is None):
            raise ValueError("give annual_default_probability or rating (one of them)")
        return self

    @property
    def default_probability(self) -> float:
        return self.annual_default_probability if self.annual_default_probability is not None else RATING_DEFAULT_PROBABILITY[self.rating]

    @property
    def covered_share(self) -> float:
        """Share of the rent still received after a default: backstop + (1 - backstop) x recovery."""
        return self.backstop_share + (1.0 - self.backstop_share) * self.recovery_share


class Renewals(Strict):
    """Renewal options held by the tenant, after the base term: ``count`` renewals of ``term_months``
    each. ``probability``: each renewal is taken with ``probability`` (given the previous one was):
    the rent of renewal k counts with weight probability^k. ``holder``: the tenant renews when its
    renewal rent is at or below the market rent (the lease's rate x the scenario's
    hpc_lease_rate_index in the month the renewal starts), and not again once it has not renewed.
    Capacity stays reserved for the tenant through every renewal; renewals after the horizon enter
    the terminal lease NOI."""

    count: int = Field(ge=1, le=10, description="number of renewal options")
    term_months: TermMonths = Field(description="months of each renewal")
    mode: Literal["probability", "holder"] = Field("probability", description="probability-weighted, or exercised by the tenant when below market")
    probability: Share = Field(0.5, description="probability mode: chance each renewal is taken")
    rent_step_share: float = Field(0.0, ge=-0.5, le=1, allow_inf_nan=False, description="rent change at each renewal (0.1 = +10 %); the escalator continues")


class TenantLimit(Strict):
    """Exposure limit on one tenant (``leases[*].tenant``)."""

    tenant: Id
    max_it_mw: Mw | None = Field(None, description="critical-IT MW of all the tenant's signed leases")
    max_rent_share: Share | None = Field(None, description="share of the rent of all signed leases inside the horizon")

    @model_validator(mode="after")
    def _some(self) -> "TenantLimit":
        if self.max_it_mw is None and self.max_rent_share is None:
            raise ValueError("give max_it_mw or max_rent_share (or both)")
        return self


__all__ = ["GpuCloud", "GpuOption", "LeaseCredit", "MAX_DELAY_MONTHS", "NewBuild", "RATING_DEFAULT_PROBABILITY",
           "Rating", "Renewals", "TenantLimit", "Tranche"]
