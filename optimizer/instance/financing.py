"""The instance's ``financing`` section: debt instruments, taxes and valuation (DESIGN section 11).

Every part is optional and the whole section defaults to absent, in which case the plan is
valued exactly as before (pre-tax, unlevered, one discount rate). See models/economics.md,
"Financing and taxes", for how each field enters the cash flows, and README "Financing".

Rates are fractions per year; loan rates are nominal annual rates charged per period as
rate x months / 12 (``kernel.finance.period_rate``). Months are ``YYYY-MM``; a month names the
planning period that contains it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from optimizer.instance.base import MAX_TERM_MONTHS, Id, Month, PosUsd, RatePerYear, Share, Strict, Usd
from optimizer.kernel.tax import MACRS_YEARS
from optimizer.kernel.timeline import month_ordinal

# capex the plan can spend, by depreciation class (models/economics.md, "Taxes"):
# asics = ASIC purchases; hpc_conversion = conversion capex; grid_expansion = grid expansion capex;
# owned_generation = purchase price of an optional owned plant; sites = site acquisitions (land);
# new_build = new-build capacity (sites[*].new_builds); gpus = GPU purchases (gpu_cloud).
ASSET_CLASSES = ("asics", "hpc_conversion", "grid_expansion", "new_build", "owned_generation", "gpus", "sites")
DebtKind = Literal["notes", "convertible", "term_loan"]
# project kinds a facility may finance (ProjectFacility.finances) -> the asset class of their capex
FINANCED_CLASS = {"conversion": "hpc_conversion", "grid_expansion": "grid_expansion", "new_build": "new_build", "gpus": "gpus"}


class DepreciationRule(Strict):
    """How one asset class is depreciated for tax."""

    method: Literal["straight_line", "macrs", "none"] = Field(description="straight_line over years; macrs: the IRS half-year table of `years`; none: never deducted (land)")
    years: int | None = Field(None, gt=0, le=60, description="straight-line life, or MACRS recovery period (3, 5, 7, 10, 15, 20)")
    bonus_share: Share = Field(0.0, description="share of the cost deducted in the first year (bonus depreciation); the rest follows the schedule")

    @model_validator(mode="after")
    def _years(self) -> "DepreciationRule":
        if self.method == "macrs" and self.years not in MACRS_YEARS:
            raise ValueError(f"years: MACRS recovery period must be one of {', '.join(map(str, MACRS_YEARS))}, got {self.years}")
        if self.method == "straight_line" and self.years is None:
            raise ValueError("years: required for straight_line")
        return self


def _rule(method: str, years: int | None) -> DepreciationRule:
    return DepreciationRule(method=method, years=years)


class Depreciation(Strict):
    """Depreciation by asset class. Defaults follow the US MACRS class lives (estimates, not
    advice): computers and mining equipment 5-year, data-centre fit-out and grid/electric
    infrastructure 15-year, generation plants 15-year, new buildings 39-year straight line,
    land not depreciated."""

    asics: DepreciationRule = _rule("macrs", 5)
    hpc_conversion: DepreciationRule = _rule("macrs", 15)
    grid_expansion: DepreciationRule = _rule("macrs", 15)
    new_build: DepreciationRule = _rule("straight_line", 39)
    owned_generation: DepreciationRule = _rule("macrs", 15)
    gpus: DepreciationRule = _rule("macrs", 5)
    sites: DepreciationRule = _rule("none", None)


class Taxes(Strict):
    """Corporate income tax, computed per calendar year and scenario and paid in the last period of
    the year (the horizon's last period for its last year)."""

    rate: Share = Field(description="corporate income tax rate (0.21 US federal)")
    depreciation: Depreciation = Depreciation()
    interest_deductible: bool = Field(True, description="interest and debt fees are deducted from taxable income")
    nol_start_usd: Usd = Field(0.0, description="tax-loss carry-forward available at the horizon start")
    nol_limit_share: Share = Field(1.0, description="share of a year's positive taxable income that carried-forward losses may offset (0.8 under US law since 2018)")
    btc_cost_basis_usd: float = Field(0.0, ge=0, le=1e8, allow_inf_nan=False, description="tax cost basis per BTC of treasury BTC sold (the starting holdings'): the gain taxed is price - basis per BTC sold")
    site_tax_basis_usd: dict[Id, Usd] = Field(default_factory=dict, description="site id -> tax basis deducted from its sale price (default 0: the whole price is a gain)")
    existing_depreciation_usd_per_year: dict[int, Usd] = Field(default_factory=dict, description="calendar year -> depreciation of assets owned before the horizon")
    tax_terminal_values: bool = Field(True, description="terminal values are taxed as a deemed sale at the horizon end: rate x max(0, terminal value - remaining tax basis - losses carried forward), due 12 months later")


class ProjectFacility(Strict):
    """A project loan drawn against the capex of one site's projects (conversion, grid expansion,
    new-build capacity, GPUs), as it is spent: cumulative draws <= loan_to_cost x cumulative financed
    capex (net of what tenants fund)."""

    id: Id
    site: Id = Field(description="the site whose project capex the facility finances")
    finances: list[Literal["conversion", "grid_expansion", "new_build", "gpus"]] = Field(default_factory=lambda: ["conversion"], min_length=1)
    lease: Id | None = Field(None, description="if set, the facility can be drawn only when this lease is signed, and its DSCR is tested on this lease's NOI (else on the NOI of every lease at the site)")
    commitment_usd: PosUsd = Field(description="facility size: total draws <= this")
    loan_to_cost: float = Field(gt=0, le=1, allow_inf_nan=False, description="draws up to this share of the financed capex spent so far (0.80-0.85 in 2025-26 deals); facilities of one site share its capex")
    interest_rate_per_year: RatePerYear = Field(description="nominal annual rate")
    upfront_fee_share: Share = Field(0.0, description="fee paid on each draw, as a share of the amount drawn")
    draw_first_month: Month | None = Field(None, description="first month draws are allowed (default: horizon start)")
    draw_last_month: Month = Field(description="last month draws are allowed (end of the availability period)")
    construction_interest: Literal["paid", "capitalized"] = Field("paid", description="before amortization: interest paid each period (interest-only) or added to the balance")
    amortization_start_month: Month = Field(description="month of the first amortization payment; must come after draw_last_month")
    tenor_months: int = Field(gt=0, le=MAX_TERM_MONTHS, description="months of amortization from amortization_start_month")
    amortization: Literal["annuity", "level_principal", "sculpted"] = Field("annuity", description="level payments; equal principal; or payments that grow with the contracted NOI (sculpt_growth_per_year)")
    sculpt_growth_per_year: float | None = Field(None, ge=-0.5, le=1, allow_inf_nan=False, description="sculpted: yearly growth of debt service (default: the linked lease's escalator)")
    min_dscr: float | None = Field(None, gt=0, le=100, allow_inf_nan=False, description="NOI >= min_dscr x debt service in every amortization period")

    @model_validator(mode="after")
    def _months(self) -> "ProjectFacility":
        if month_ordinal(self.amortization_start_month) <= month_ordinal(self.draw_last_month):
            raise ValueError(f"amortization_start_month {self.amortization_start_month} must come after draw_last_month {self.draw_last_month}")
        if self.draw_first_month is not None and month_ordinal(self.draw_last_month) < month_ordinal(self.draw_first_month):
            raise ValueError(f"draw_last_month {self.draw_last_month} is before draw_first_month {self.draw_first_month}")
        if len(set(self.finances)) != len(self.finances):
            raise ValueError("finances: list each project kind once")
        return self


class CorporateDebt(Strict):
    """Debt outstanding at the horizon start: a coupon each period, the principal repaid at
    maturity (bullet). Still outstanding at the horizon end: repaid at par then (terminal_debt_usd)."""

    id: Id
    kind: DebtKind = "notes"
    principal_usd: PosUsd
    coupon_per_year: RatePerYear = Field(description="nominal annual coupon rate (0 for zero-coupon convertibles)")
    maturity_month: Month
    conversion_price_usd_per_share: float | None = Field(None, gt=0, le=1e9, allow_inf_nan=False, description="convertibles: for information only (conversion is not modelled: the notes are repaid in cash)")
    repayment_source: Literal["cash", "treasury_btc"] = Field("cash", description="treasury_btc: treasury BTC sold in the maturity period must cover the principal (as MARA did in Q1 2026)")


class NewIssue(Strict):
    """Notes the plan may issue: any amount up to max_usd over the issue window, bullet repayment
    tenor_months after issue."""

    id: Id
    kind: DebtKind = "notes"
    max_usd: PosUsd = Field(description="total issued over the window <= this")
    coupon_per_year: RatePerYear = Field(description="nominal annual coupon rate")
    fee_share: Share = Field(0.0, description="issuance fee as a share of the amount, paid at issue")
    tenor_months: int = Field(gt=0, le=MAX_TERM_MONTHS, description="months from issue to repayment")
    first_month: Month
    last_month: Month | None = Field(None, description="last month an issue is allowed (default: the horizon end)")

    @model_validator(mode="after")
    def _window(self) -> "NewIssue":
        if self.last_month is not None and month_ordinal(self.last_month) < month_ordinal(self.first_month):
            raise ValueError(f"last_month {self.last_month} is before first_month {self.first_month}")
        return self


class DiscountRates(Strict):
    """Discount rates by cash-flow class (each defaults to horizon.discount_rate): contracted lease
    NOI (rent, pass-through, lease penalties, terminal lease NOI), merchant mining (mining revenue,
    treasury BTC, terminal mining and treasury) and everything else (power, opex, capex, debt, tax).
    Lines that mix mining and HPC (power cost, opex) are discounted at the `other` rate."""

    contracted_lease: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    merchant_mining: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    other: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)


class Financing(Strict):
    """Capital structure, taxes and valuation. The objective is the equity NPV (levered, after tax)
    unless ``objective: project`` (unlevered after-tax NPV; financing then only keeps cash feasible)."""

    project_facilities: list[ProjectFacility] = Field(default_factory=list)
    corporate_debt: list[CorporateDebt] = Field(default_factory=list)
    new_issues: list[NewIssue] = Field(default_factory=list)
    taxes: Taxes | None = None
    objective: Literal["equity", "project"] = "equity"
    discount_rates: DiscountRates | None = None

    @property
    def instrument_ids(self) -> list[str]:
        return [f.id for f in self.project_facilities] + [d.id for d in self.corporate_debt] + [n.id for n in self.new_issues]
