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
- ``treasury``: BTC sold or kept;
- ``terminal``: value at the horizon's end (in the last period's rows, discounted with the
  horizon-end factor ``Data.df_end``); not cash, so the cash balance leaves them out.
``capex_budget`` marks what the yearly capex budget caps (policy.capex_budget_usd_per_year).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PORTFOLIO = "portfolio"  # site label of portfolio-level lines (treasury)

ItemClass = Literal["operating", "investment", "treasury", "terminal"]


@dataclass(frozen=True)
class Item:
    name: str          # column value in cashflows tables, ends in _usd
    sign: int          # +1 an inflow, -1 an outflow, 0 either (sold-minus-bought style lines)
    kind: ItemClass
    label: str         # words for tables and charts
    color: str         # one colour per item in every chart
    capex_budget: bool = False


ITEM_TABLE: tuple[Item, ...] = (
    Item("mining_revenue_usd", +1, "operating", "mining revenue", "#e8930c"),
    Item("lease_revenue_usd", +1, "operating", "lease revenue", "#1f5fa8"),
    Item("power_passthrough_usd", +1, "operating", "power pass-through", "#17becf"),
    Item("power_sold_usd", +1, "operating", "power sold", "#98df8a"),
    Item("power_cost_usd", -1, "operating", "power cost", "#d62728"),
    Item("opex_usd", -1, "operating", "opex", "#7f7f7f"),
    Item("lease_penalty_usd", -1, "operating", "lease penalty", "#ff9896"),
    Item("capex_usd", -1, "investment", "capex", "#6a3d9a", capex_budget=True),
    Item("asic_purchases_usd", -1, "investment", "ASIC purchases", "#8c564b", capex_budget=True),
    Item("salvage_usd", +1, "investment", "salvage", "#2ca02c"),
    Item("site_sales_usd", +1, "investment", "site sales", "#aec7e8"),
    Item("acquisitions_usd", -1, "investment", "acquisitions", "#c49c94"),
    Item("contract_fees_usd", -1, "investment", "contract fees", "#f7b6d2"),
    Item("treasury_sales_usd", +1, "treasury", "treasury BTC sales", "#dbdb8d"),
    Item("btc_retained_usd", -1, "treasury", "BTC retained", "#bcbd22"),
    Item("terminal_lease_noi_usd", +1, "terminal", "terminal lease NOI", "#5b8fd1"),
    Item("terminal_hpc_usd", +1, "terminal", "terminal HPC", "#9cc3e6"),
    Item("terminal_mining_usd", +1, "terminal", "terminal mining", "#f5c070"),
    Item("terminal_asic_salvage_usd", +1, "terminal", "terminal ASIC salvage", "#98c379"),
    Item("terminal_generation_usd", +1, "terminal", "terminal generation", "#c5b0d5"),
    Item("terminal_treasury_usd", +1, "terminal", "terminal treasury", "#e5e58a"),
)

ITEMS: list[str] = [i.name for i in ITEM_TABLE]  # a list: evaluator tables and tests compare lists
ITEM_BY_NAME: dict[str, Item] = {i.name: i for i in ITEM_TABLE}
TERMINAL_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.kind == "terminal")
CAPEX_ITEMS: frozenset[str] = frozenset(i.name for i in ITEM_TABLE if i.capex_budget)
ITEM_ORDER: dict[str, int] = {name: k for k, name in enumerate(ITEMS)}


def item_label(name: str) -> str:
    """Words for an item (unknown names: the name without ``_usd``, underscores as spaces)."""
    it = ITEM_BY_NAME.get(name)
    return it.label if it is not None else name.removesuffix("_usd").replace("_", " ")


def item_color(name: str, default: str = "#999999") -> str:
    it = ITEM_BY_NAME.get(name)
    return it.color if it is not None else default
