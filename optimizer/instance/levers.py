"""The mining and power levers of DESIGN section 12 (instance sections and fields; all off by default).

- ``markets``: per power market, a **demand-response** program (a payment per MW of curtailable
  mining load enrolled per month, and the expected hours the enrolled MW are curtailed) and a
  **transmission peak charge** (4CP-like: USD per MW of site load in the peak interval of given
  calendar months, avoidable by curtailing mining during the hours around the peak).
- ``fuels``: fuel price paths (e.g. Henry Hub gas, USD/MMBtu) an owned plant burns at its heat
  rate; each scenario may override a fuel's path (``scenarios[*].fuel_price_usd_per_mmbtu``).
- ``overhead``: corporate G&A per month, with reduction options (a staff cut: severance now,
  saving later); per site (``sites[*].mining_overhead``) a fixed cost of running any mining at
  all, which stops only when the site stops mining for good, at a one-off exit cost.
- ``hedges.forwards``: hashprice forwards sold for given delivery months at a curve price,
  up to a share of the expected hashrate, with collateral posted as cash.
- ``AssumedDebt``: the debt a buyer of an owned plant assumes (``contracts[*].assumed_debt``).

How each field enters the cash flows: models/economics.md, "Mining and power levers".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from optimizer.instance.base import (
    MAX_USD_PER_MW_MONTH,
    Escalator,
    Id,
    LeadMonths,
    Month,
    PosUsd,
    RatePerYear,
    Share,
    Strict,
    TermMonths,
    Usd,
    UsdPerMwMonth,
)
from optimizer.instance.series import Series
from optimizer.kernel.timeline import month_ordinal

# The shortest calendar month has 672 hours (28 days): curtailment hours per month are at most that,
# so a curtailed share of a period never exceeds 1 (the two programs together: checks.check_levers).
MAX_CURTAIL_HOURS = 672.0
CalendarMonth = Annotated[int, Field(ge=1, le=12)]


def _months_unique(months: list[int] | None, where: str) -> None:
    if months is not None and len(set(months)) != len(months):
        raise ValueError(f"{where}: calendar months listed twice in {months}")


class DemandResponse(Strict):
    """Payment for curtailable (mining) load enrolled in a demand-response or ancillary program.
    HPC load is firm and cannot enroll; a MW converted to HPC forfeits its share."""

    payment_usd_per_mw_month: UsdPerMwMonth = Field(description="payment per MW of mining load enrolled (at the meter, cooling included) per month in the program")
    curtailment_hours_per_month: float = Field(0.0, ge=0, le=MAX_CURTAIL_HOURS, allow_inf_nan=False, description="expected hours per month the enrolled MW are curtailed (called); their hashprice is lost and their energy not drawn")
    months: list[CalendarMonth] | None = Field(None, min_length=1, max_length=12, description="calendar months (1-12) the program runs; default every month")

    @model_validator(mode="after")
    def _unique(self) -> "DemandResponse":
        _months_unique(self.months, "months")
        return self


class TransmissionPeak(Strict):
    """A transmission charge set by the site's load in one peak interval of each listed month
    (ERCOT's 4CP: an annual charge per MW / 4 per summer month). Mining avoids it by curtailing
    during the hours around the expected peak; firm HPC load pays it."""

    charge_usd_per_mw: float = Field(ge=0, le=12 * MAX_USD_PER_MW_MONTH, allow_inf_nan=False, description="USD per MW of site load (at the meter) in the peak interval, for each peak month")
    months: list[CalendarMonth] = Field(min_length=1, max_length=12, description="calendar months (1-12) with a peak interval, e.g. [6, 7, 8, 9]")
    curtail_hours_per_month: float = Field(0.0, ge=0, le=MAX_CURTAIL_HOURS, allow_inf_nan=False, description="hours per peak month mining must be curtailed to be off in the (unknown) peak interval; their hashprice is lost")

    @model_validator(mode="after")
    def _unique(self) -> "TransmissionPeak":
        _months_unique(self.months, "months")
        return self


class MarketPrograms(Strict):
    id: Id = Field(description="a power market of the sites (sites[*].market)")
    demand_response: DemandResponse | None = None
    transmission_peak: TransmissionPeak | None = None


class Fuel(Strict):
    id: Id
    price_usd_per_mmbtu: Series = Field(description="fuel price path used by every scenario that does not give its own (scenarios[*].fuel_price_usd_per_mmbtu); every month in [0, 10000] USD/MMBtu")


class AssumedDebt(Strict):
    """Debt of an owned plant that its buyer assumes at the purchase (e.g. MARA's >= 785 M$ with
    Long Ridge). It is drawn, in effect, at the purchase: the debt_draws_usd line offsets that part
    of the price (cash paid = price - principal), then interest and principal follow."""

    principal_usd: PosUsd = Field(description="balance assumed at the purchase (at most the acquisition price)")
    interest_rate_per_year: RatePerYear = Field(description="nominal annual rate; charged per period as rate x months / 12")
    tenor_months: TermMonths = Field(description="months from the purchase to the last repayment (bullet: the maturity)")
    amortization: Literal["bullet", "annuity", "level_principal"] = Field("bullet", description="bullet: interest only, principal at maturity; annuity or level_principal: repaid in tenor / period_months payments from the period after the purchase")


class MiningOverhead(Strict):
    """Fixed cost of running any mining at a site (site staff, security, maintenance contracts): it
    is paid every month the site mines and stops only when the site stops mining for good (a
    decision of the plan, at a one-off exit cost), or is sold."""

    usd_per_month: Usd = Field(description="fixed cost per month while the site mines")
    exit_cost_usd: Usd = Field(0.0, description="one-off cost when the site stops mining while still owned (severance, decommissioning)")


class OverheadReduction(Strict):
    """A reduction of corporate G&A taken at most once: a staff cut of ``cut_share`` of
    ``staff_cost_usd_per_year`` pays ``severance_weeks`` of the cut payroll (+ ``other_cost_usd``)
    in the month it is taken and saves the cut payroll from ``saving_lag_months`` later."""

    id: Id
    staff_cost_usd_per_year: Usd = Field(description="yearly payroll of the staff concerned (in G&A)")
    cut_share: Share = Field(description="share of that payroll cut (0.15 = a 15 % staff cut)")
    severance_weeks: float = Field(0.0, ge=0, le=520, allow_inf_nan=False, description="weeks of the cut payroll paid as severance")
    other_cost_usd: Usd = Field(0.0, description="other one-off cost of the reduction (advisers, lease breaks)")
    saving_lag_months: LeadMonths = Field(0, description="months from the cut to the first month saved (0: saved from the month of the cut)")
    earliest_month: Month | None = Field(None, description="first month the cut may be taken (default: horizon start)")
    latest_month: Month | None = Field(None, description="last month the cut may be taken (default: horizon end)")

    @property
    def saving_usd_per_month(self) -> float:
        """G&A saved per month once in effect (before the escalator)."""
        return self.staff_cost_usd_per_year * self.cut_share / 12.0

    @property
    def one_off_cost_usd(self) -> float:
        """Severance (weeks / 52 of the cut payroll) plus other one-off costs."""
        return self.staff_cost_usd_per_year * self.cut_share * self.severance_weeks / 52.0 + self.other_cost_usd

    @model_validator(mode="after")
    def _window(self) -> "OverheadReduction":
        if self.earliest_month and self.latest_month and month_ordinal(self.latest_month) < month_ordinal(self.earliest_month):
            raise ValueError(f"latest_month {self.latest_month} is before earliest_month {self.earliest_month}")
        return self


class Overhead(Strict):
    """Corporate G&A (a portfolio line) and the options to reduce it."""

    g_and_a_usd_per_month: Usd = Field(description="corporate G&A per month (staff, offices, listing), before any reduction")
    escalator_per_year: Escalator = Field(0.0, description="G&A (and each reduction's saving) grows by this fraction each year from the horizon start")
    reductions: list[OverheadReduction] = Field(default_factory=list, max_length=100)


class HashpriceForward(Strict):
    """Sell hashprice forward for the months first_month..last_month at a curve price: for each
    month, the plan chooses the PH/s sold (up to ``max_share_of_expected_hashrate`` of the plan's
    expected operating hashrate, its ownership share at joint-venture sites); each scenario's payoff
    is PH/s x (price - realised hashprice) x days. Collateral of ``collateral_share`` x notional
    (PH/s x price x days) is posted in the trade month and returned with each month's settlement."""

    id: Id
    price_usd_per_ph_day: float = Field(gt=0, le=1e6, allow_inf_nan=False, description="forward (curve) hashprice, USD per PH/s per day (FACTS 12a: ~42.5 in Oct 2024)")
    first_month: Month = Field(description="first delivery month")
    last_month: Month = Field(description="last delivery month")
    max_share_of_expected_hashrate: Share = Field(description="PH/s sold for a month <= this share of the plan's expected operating hashrate in it")
    collateral_share: Share = Field(0.0, description="collateral posted as cash: this share of the notional, from the trade month to settlement")
    trade_month: Month | None = Field(None, description="month the forward is sold and collateral posted (default: horizon start)")

    @model_validator(mode="after")
    def _months(self) -> "HashpriceForward":
        if month_ordinal(self.last_month) < month_ordinal(self.first_month):
            raise ValueError(f"last_month {self.last_month} is before first_month {self.first_month}")
        if self.trade_month is not None and month_ordinal(self.trade_month) > month_ordinal(self.first_month):
            raise ValueError(f"trade_month {self.trade_month} is after first_month {self.first_month}")
        return self


class Hedges(Strict):
    forwards: list[HashpriceForward] = Field(default_factory=list, max_length=1000)


__all__ = ["AssumedDebt", "DemandResponse", "Fuel", "HashpriceForward", "Hedges", "MAX_CURTAIL_HOURS", "MarketPrograms",
           "MiningOverhead", "Overhead", "OverheadReduction", "TransmissionPeak"]
