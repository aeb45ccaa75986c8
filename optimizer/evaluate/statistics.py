"""Tidy statistics of an evaluated plan: money and energy grouped by site, use, item and year.

``Statistics(evaluation)`` (``result.statistics`` and ``evaluation.statistics``) answers the
analyst's usual questions with long frames, one value column each::

    stats.capex(by="year")                  # year, usd             (spend, positive)
    stats.revenue(by=["site", "item"])      # site, item, usd
    stats.opex(by=["year", "site"])         # year, site, usd       (spend, positive)
    stats.energy(by=["year", "site", "use"])  # year, site, use, mwh
    stats.cashflow(by=["year", "kind"], discounted=True)   # any item, pv_usd
    stats.npv(by="site")                    # expected PV by site; sums to the NPV

``by`` takes any of ``scenario``, ``site``, ``item``, ``kind`` (the ledger class: operating,
investment, treasury, terminal), ``label`` (the item's words), ``year``, ``month`` (a monthly
``pandas.Period``), and for energy ``use`` (mining | hpc). Without ``scenario`` in ``by`` the
figures are expected values (probability-weighted over the scenarios); with it, per scenario.
Money is undiscounted USD unless ``discounted=True`` (then present value at the instance's
rate). Items come from ``economics.ledger``: revenue = operating inflows (mining, lease,
power pass-through, power sold); opex = operating outflows (power cost, opex, lease
penalties); capex = the capex-budget items (conversion and grid capex, ASIC purchases).
``capex`` and ``opex`` return spend as positive numbers; ``cashflow`` keeps the ledger's signs.

``to_periods`` turns ``YYYY-MM`` month columns into monthly ``pandas.Period`` (the API's
month type); ``to_xarray`` gives the cash flows, KPIs, energy and allocation as one
``xarray.Dataset`` (optional dependency: ``pip install xarray``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from optimizer.economics.ledger import CAPEX_ITEMS, ITEM_BY_NAME, ITEM_TABLE, ITEMS

if TYPE_CHECKING:  # annotations only
    from optimizer.evaluate.evaluator import Evaluation

REVENUE_ITEMS = tuple(i.name for i in ITEM_TABLE if i.kind == "operating" and i.sign > 0)
OPEX_ITEMS = tuple(i.name for i in ITEM_TABLE if i.kind == "operating" and i.sign < 0)
KEYS = ("scenario", "site", "item", "kind", "label", "year", "month", "use")
MONTH_COLUMNS = ("month", "ready", "window_start", "window_end")


def to_periods(df: pd.DataFrame, columns: Iterable[str] = MONTH_COLUMNS) -> pd.DataFrame:
    """A copy of ``df`` whose ``YYYY-MM`` columns are monthly ``pandas.Period`` (empty -> NaT)."""
    out = df.copy()
    for c in columns:
        if c in out.columns and not isinstance(out[c].dtype, pd.PeriodDtype):
            vals = out[c].astype(object).where(out[c].notna(), None)
            out[c] = pd.PeriodIndex([pd.Period(str(v)[:7], "M") if v not in (None, "") else pd.NaT for v in vals], freq="M")
    return out


def _by(by: str | Iterable[str] | None) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by or [])
    bad = [k for k in keys if k not in KEYS]
    if bad:
        raise ValueError(f"by: unknown key(s) {', '.join(bad)} (choose from {', '.join(KEYS)})")
    return keys


class Statistics:
    """Grouped money and energy of one evaluation (see the module docstring)."""

    def __init__(self, evaluation: "Evaluation") -> None:
        self.ev = evaluation
        self.prob = dict(evaluation.probabilities)

    # ------------------------------------------------------------ core

    def _frame(self, df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
        if "use" in by and "use" not in df.columns:
            raise ValueError("by: 'use' applies to energy only")
        x = df.copy()
        x["year"] = x["month"].astype(str).str[:4].astype(int)
        if "item" in x.columns:
            x["kind"] = x["item"].map(lambda i: ITEM_BY_NAME[i].kind if i in ITEM_BY_NAME else "other")
            x["label"] = x["item"].map(lambda i: ITEM_BY_NAME[i].label if i in ITEM_BY_NAME else i)
        if "scenario" not in by:
            x[value] = x[value] * x["scenario"].map(self.prob).fillna(0.0)
        if not by:
            return pd.DataFrame({value: [float(x[value].sum())]})
        out = x.groupby(by, sort=True)[value].sum().reset_index()
        if "item" in by:     # ledger order, not alphabetical
            out = out.sort_values([k for k in by if k != "item"] + ["item"], key=lambda s: s.map(ITEMS.index) if s.name == "item" else s,
                                  kind="stable").reset_index(drop=True)
        return to_periods(out, ["month"]) if "month" in by else out

    def cashflow(self, by: str | Iterable[str] = ("year", "item"), *, items: Iterable[str] | None = None,
                 discounted: bool = False) -> pd.DataFrame:
        """Cash-flow lines (ledger signs: inflows > 0) grouped by ``by``; column ``usd`` or ``pv_usd``."""
        cf = self.ev.cashflows
        if items is not None:
            cf = cf[cf["item"].isin(list(items))]
        value = "pv_usd" if discounted else "usd"
        return self._frame(cf[["scenario", "month", "site", "item", value]], _by(by), value)

    def revenue(self, by: str | Iterable[str] = ("year", "item"), discounted: bool = False) -> pd.DataFrame:
        return self.cashflow(by, items=REVENUE_ITEMS, discounted=discounted)

    def opex(self, by: str | Iterable[str] = ("year", "item"), discounted: bool = False) -> pd.DataFrame:
        """Operating costs as positive spend."""
        return _spend(self.cashflow(by, items=OPEX_ITEMS, discounted=discounted))

    def capex(self, by: str | Iterable[str] = ("year", "item"), discounted: bool = False) -> pd.DataFrame:
        """Conversion and grid capex and ASIC purchases as positive spend."""
        return _spend(self.cashflow(by, items=sorted(CAPEX_ITEMS), discounted=discounted))

    def npv(self, by: str | Iterable[str] = "item") -> pd.DataFrame:
        """Expected present value grouped by ``by`` (without ``scenario``: sums to the NPV)."""
        return self.cashflow(by, discounted=True)

    def energy(self, by: str | Iterable[str] = ("year", "site", "use")) -> pd.DataFrame:
        """Energy drawn (MWh, cooling included) grouped by ``by`` (keys: scenario, site, use, year, month)."""
        keys = _by(by)
        bad = [k for k in keys if k in ("item", "kind", "label")]
        if bad:
            raise ValueError(f"by: {', '.join(bad)} apply to money, not energy")
        return self._frame(self.ev.energy_use, keys, "mwh")


def _spend(df: pd.DataFrame) -> pd.DataFrame:
    col = "pv_usd" if "pv_usd" in df.columns else "usd"
    df[col] = -df[col] + 0.0
    return df


def to_xarray(evaluation: "Evaluation"):
    """The evaluation as an ``xarray.Dataset``: ``usd`` and ``pv_usd`` [scenario, month, site, item],
    the KPIs [scenario, month], ``energy_mwh`` [scenario, month, site, use], ``site_mining_mw``,
    ``site_hpc_mw``, ``site_hpc_mw_leased``, ``site_grid_mw`` [site, month] (``site`` includes
    ``portfolio`` for the treasury lines); ``month`` holds the first day of each period (datetime64). Needs xarray (optional: ``pip install xarray``)."""
    try:
        import xarray as xr  # optional dependency, loaded only here
    except ImportError:
        raise ImportError("to_xarray needs xarray: pip install xarray (or the project's [xarray] extra)") from None
    ev = evaluation

    def dated(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out["month"] = pd.to_datetime(out["month"].astype(str) + "-01")
        return out

    cf = dated(ev.cashflows).groupby(["scenario", "month", "site", "item"])[["usd", "pv_usd"]].sum()
    ds = xr.Dataset.from_dataframe(cf).fillna(0.0)
    k = dated(ev.kpis).set_index(["scenario", "month"])
    ds = ds.merge(xr.Dataset.from_dataframe(k), join="outer")
    en = dated(ev.energy_use).set_index(["scenario", "month", "site", "use"])["mwh"].rename("energy_mwh")
    ds = ds.merge(xr.Dataset.from_dataframe(en.to_frame()), join="outer")
    cols = ["mining_mw", "hpc_mw", "hpc_mw_leased", "grid_mw"]
    al = dated(ev.allocation).set_index(["site", "month"])[cols].rename(columns={c: f"site_{c}" for c in cols})
    ds = ds.merge(xr.Dataset.from_dataframe(al), join="outer")
    ds["probability"] = ("scenario", np.array([ev.probabilities.get(str(s), np.nan) for s in ds["scenario"].values]))
    ds.attrs.update(npv_usd=float(ev.npv_usd), money="USD, inflows positive; pv_usd discounted", energy="MWh, PUE included")
    return ds
