"""The ledger vocabulary: the one list of cash-flow items, with their sign, class and label.

Every cash flow of a plan is one of these items, per period, site (or ``portfolio``) and
scenario, in USD with inflows positive (models/economics.md, "Cash-flow lines"). The Pyomo
model registers terms under these names (``optimizer.model.common.register``), the evaluator
adds lines under them (``optimizer.evaluate.evaluator``), and the report, workbook and CLI
label and colour them from here. Adding an item: add one ``Item`` row below, then the model
term and the evaluator line (ARCHITECTURE.md, "Add a cost term").

Classes:
- ``operating``: recurring revenue and cost of running the sites;
- ``investment``: capex, purchases, sales of assets, fees;
- ``treasury``: BTC sold or kept, collateral posted and returned;
- ``terminal``: value at the horizon's end (in the last period's rows, discounted with the
  horizon-end factor ``Data.df_end``); not cash, so the cash balance leaves them out;
- ``financing``: debt drawn or issued, fees, interest, principal (instance section ``financing``);
- ``tax``: corporate income tax.
``capex_budget`` marks what the yearly capex budget caps (policy.capex_budget_usd_per_year): the
landlord's capex net of what tenants fund.
``levered`` marks the lines of the capital structure (financing lines, and the taxes computed with
interest deducted): the equity NPV sums every line; the project (unlevered, after-tax) NPV leaves
the levered lines out and adds the taxes computed without debt (models/economics.md, "Valuation").
``taxable`` marks the lines that enter taxable income as they stand (capex enters through
depreciation, interest and fees through the deduction rules; models/economics.md, "Taxes").
``rate_class`` is the discount-rate class of ``financing.discount_rates`` (contracted lease NOI,
merchant mining, other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PORTFOLIO = "portfolio"  # site label of portfolio-level lines (treasury)

ItemClass = Literal["operating", "investment", "treasury", "terminal", "financing", "tax"]
RateClass = Literal["contracted_lease", "merchant_mining", "other"]


@dataclass(frozen=True)
class Item:
    name: str          # column value in cashflows tables, ends in _usd
    sign: int          # +1 an inflow, -1 an outflow, 0 either (sold-minus-bought style lines)
    kind: ItemClass
    label: str         # words for tables and charts
    color: str         # one colour per item in every chart
    capex_budget: bool = False
    taxable: bool = False
    levered: bool = False
    rate_class: RateClass = "other"


ITEM_TABLE: tuple[Item, ...] = (
    Item("mining_revenue_usd", +1, "operating", "mining revenue", "#e8930c", taxable=True, rate_class="merchant_mining"),
    Item("lease_revenue_usd", +1, "operating", "lease revenue", "#1f5fa8", taxable=True, rate_class="contracted_lease"),
    Item("power_passthrough_usd", +1, "operating", "power pass-through", "#17becf", taxable=True, rate_class="contracted_lease"),
    Item("power_sold_usd", +1, "operating", "power sold", "#98df8a", taxable=True),
    Item("demand_response_usd", +1, "operating", "demand response", "#2ca089", taxable=True),
    Item("capacity_revenue_usd", +1, "operating", "plant capacity revenue", "#74c476", taxable=True),
    Item("power_cost_usd", -1, "operating", "power cost", "#d62728", taxable=True),
    Item("fuel_cost_usd", -1, "operating", "plant fuel", "#b15928", taxable=True),
    Item("peak_charge_usd", -1, "operating", "transmission peak charges", "#fb6a4a", taxable=True),
    Item("opex_usd", -1, "operating", "opex", "#7f7f7f", taxable=True),
    Item("site_overhead_usd", -1, "operating", "site mining overhead", "#969696", taxable=True),
    Item("g_and_a_usd", -1, "operating", "corporate G&A", "#636363", taxable=True),
    Item("restructuring_usd", -1, "operating", "severance and exit costs", "#bdbdbd", taxable=True),
    Item("lease_penalty_usd", -1, "operating", "lease penalty", "#ff9896", taxable=True, rate_class="contracted_lease"),
    Item("hedge_payoff_usd", 0, "operating", "hashprice forwards", "#fdae6b", taxable=True, rate_class="merchant_mining"),
    Item("lease_prepayment_usd", +1, "operating", "lease prepayments", "#3c7fc4", taxable=True, rate_class="contracted_lease"),
    Item("tenant_credit_loss_usd", -1, "operating", "expected tenant default loss", "#b15928", taxable=True, rate_class="contracted_lease"),
    Item("lease_delay_damages_usd", -1, "operating", "delay damages", "#fdbf6f", taxable=True, rate_class="contracted_lease"),
    Item("gpu_cloud_revenue_usd", +1, "operating", "GPU cloud revenue", "#00a087", taxable=True),
    Item("capex_usd", -1, "investment", "capex", "#6a3d9a", capex_budget=True),
    Item("new_build_capex_usd", -1, "investment", "new-build capex", "#9467bd", capex_budget=True),
    Item("tenant_capex_funding_usd", +1, "investment", "tenant-funded capex", "#cab2d6", capex_budget=True),
    Item("gpu_purchases_usd", -1, "investment", "GPU purchases", "#3b3b98", capex_budget=True),
    Item("gpu_salvage_usd", +1, "investment", "GPU salvage", "#66c2a5", taxable=True),
    Item("asic_purchases_usd", -1, "investment", "ASIC purchases", "#8c564b", capex_budget=True),
    Item("salvage_usd", +1, "investment", "salvage", "#2ca02c", taxable=True),
    Item("site_sales_usd", +1, "investment", "site sales", "#aec7e8", taxable=True),
    Item("acquisitions_usd", -1, "investment", "acquisitions", "#c49c94"),
    Item("contract_fees_usd", -1, "investment", "contract fees", "#f7b6d2", taxable=True),
    Item("treasury_sales_usd", +1, "treasury", "treasury BTC sales", "#dbdb8d", taxable=True, rate_class="merchant_mining"),
    Item("btc_retained_usd", -1, "treasury", "BTC retained", "#bcbd22", rate_class="merchant_mining"),
    Item("hedge_collateral_usd", 0, "treasury", "forward collateral", "#d9d9d9"),
    Item("debt_draws_usd", +1, "financing", "debt drawn", "#4daf4a", levered=True),
    Item("debt_fees_usd", -1, "financing", "debt fees", "#a65628", levered=True),
    Item("interest_usd", -1, "financing", "interest", "#e41a1c", levered=True),
    Item("principal_usd", -1, "financing", "principal repaid", "#984ea3", levered=True),
    Item("tax_usd", -1, "tax", "income tax", "#525252", levered=True),
    Item("terminal_lease_noi_usd", +1, "terminal", "terminal lease NOI", "#5b8fd1", rate_class="contracted_lease"),
    Item("terminal_hpc_usd", +1, "terminal", "terminal HPC", "#9cc3e6"),
    Item("terminal_mining_usd", +1, "terminal", "terminal mining", "#f5c070", rate_class="merchant_mining"),
    Item("terminal_asic_salvage_usd", +1, "terminal", "terminal ASIC salvage", "#98c379"),
    Item("terminal_generation_usd", +1, "terminal", "terminal generation", "#c5b0d5"),
    Item("terminal_gpu_usd", +1, "terminal", "terminal GPU value", "#8dd3c7"),
    Item("terminal_treasury_usd", +1, "terminal", "terminal treasury", "#e5e58a", rate_class="merchant_mining"),
    Item("terminal_debt_usd", -1, "terminal", "debt outstanding at the end", "#7a4a8c", levered=True),
    Item("terminal_tax_usd", -1, "terminal", "tax on terminal values", "#8c8c8c", levered=True),
)

ITEMS: list[str] = [i.name for i in ITEM_TABLE]  # a list: evaluator tables and tests compare lists
ITEM_BY_NAME: dict[str, Item] = {i.name: i for i in ITEM_TABLE}
TERMINAL_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.kind == "terminal")
CAPEX_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.capex_budget)
ITEM_ORDER: dict[str, int] = {name: k for k, name in enumerate(ITEMS)}
LEVERED_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.levered)
TAXABLE_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.taxable)


def item_label(name: str) -> str:
    """Words for an item (unknown names: the name without ``_usd``, underscores as spaces)."""
    it = ITEM_BY_NAME.get(name)
    return it.label if it is not None else name.removesuffix("_usd").replace("_", " ")


def item_color(name: str, default: str = "#999999") -> str:
    it = ITEM_BY_NAME.get(name)
    return it.color if it is not None else default
