"""First-stage digests and readable parameter labels, shared by sweeps, tornadoes, breakevens
and the risk frontier.

``first_stage_summary(instance, plan)``: every first-stage decision of a plan as store columns,
so a sweep's ``points.csv`` or a frontier's table says what each point decided, not only its NPV:
converted MW per site, leases (ids, and lease@site:month hand-overs), conversions
(site:month x blocks), grid expansions, optional contracts and plants signed, ASICs bought and
retired, site sales and acquisitions, and the expected treasury BTC sold (second stage,
probability-weighted).

``param_label(column)``: words and units for a parameter path such as
``leases[L2].rate_usd_per_kw_month`` ("lease L2: rate (USD/kW-month)") or
``scenarios[*].btc_price_usd:mul`` ("every scenario: BTC price (USD) [x instance value]").
"""

from __future__ import annotations

import re

from optimizer.instance.schema import Instance
from optimizer.kernel.timeline import month_ordinal

# unit suffixes of field names, longest first
_UNITS = (("_usd_per_kw_month", "USD/kW-month"), ("_usd_per_mw_month", "USD/MW-month"), ("_usd_per_mw_year", "USD/MW-year"),
          ("_usd_per_ph_day", "USD/PH/day"), ("_usd_per_mwh", "USD/MWh"), ("_usd_per_mw", "USD/MW"), ("_usd_per_th", "USD/TH"),
          ("_usd_per_unit", "USD/unit"), ("_usd_per_month", "USD/month"), ("_usd_per_year", "USD/year"), ("_usd", "USD"),
          ("_btc_per_block", "BTC/block"), ("_eh_s", "EH/s"), ("_th_s", "TH/s"), ("_j_per_th", "J/TH"), ("_mw", "MW"),
          ("_kw", "kW"), ("_months", "months"), ("_per_year", "per year"), ("_w", "W"), ("_btc", "BTC"))
_WORDS = {"btc": "BTC", "hpc": "HPC", "noi": "NOI", "pue": "PUE", "it": "IT", "asic": "ASIC", "asics": "ASICs", "ppa": "PPA",
          "cvar": "CVaR"}
_OWNERS = {"leases": "lease", "sites": "site", "scenarios": "scenario", "contracts": "contract",
           "purchase_options": "purchase option", "asic_models": "ASIC model", "grid_expansions": "grid expansion",
           "installed": "installed fleet", "halls": "hall", "fixed_decisions": "fixed decision"}
_SECTIONS = {"conversion": "conversion", "sale": "sale", "acquisition": "acquisition", "terminal": "terminal value",
             "treasury": "treasury", "policy": "policy", "risk": "risk"}
_KINDS = {"mul": "x instance value", "add": "+ amount", "shift_months": "months shifted"}


def param_label(column: str) -> str:
    """Words and unit for a swept parameter's column (``PATH`` or ``PATH:kind``)."""
    path, _, kind = str(column).partition(":")
    parts = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?", path)
    if not parts:
        return str(column)
    owners = []
    for name, idx in parts[:-1]:
        if name in _OWNERS:
            owners.append(f"{_OWNERS[name]} {idx}" if idx not in ("", "*") else f"every {_OWNERS[name]}")
        elif name in _SECTIONS:
            owners.append(_SECTIONS[name])
    field, idx = parts[-1]
    unit = ""
    for suffix, u in _UNITS:
        if field.endswith(suffix) and field != suffix.lstrip("_"):
            field, unit = field[: -len(suffix)], u
            break
    words = " ".join(_WORDS.get(w, w) for w in field.split("_") if w)
    if idx:
        words += f" {idx}"
    label = (", ".join(owners) + ": " if owners else "") + words + (f" ({unit})" if unit else "")
    return label + (f" [{_KINDS.get(kind, kind)}]" if kind else "")


DIGEST_STR_COLUMNS = ("leases_signed", "lease_handovers", "conversions", "grid_expansions", "new_builds", "gpu_purchases",
                      "contracts_signed", "site_events", "mining_exits", "overhead_cuts")
DIGEST_COLUMNS = (*DIGEST_STR_COLUMNS, "asics_bought_units", "asics_retired_units", "btc_sold_expected", "hashprice_sold_ph_days")


def first_stage_summary(instance: Instance, plan) -> dict:
    """``converted_mw_<site>`` (critical IT of the blocks started), and DIGEST_COLUMNS: ``leases_signed``
    (ids, ``;``-joined), ``lease_handovers`` (``lease@site:month``, ``xshare`` when split),
    ``conversions`` (``site:month x blocks``), ``grid_expansions`` (``site:option:month``),
    ``new_builds`` (``site:option:month x blocks``), ``gpu_purchases`` (``option@site:month x MW``),
    ``contracts_signed`` (optional contracts and plants signed), ``asics_bought_units``,
    ``asics_retired_units``, ``site_events`` (``sale:site:month``), ``btc_sold_expected``, ``mining_exits``
    (``site:month``), ``overhead_cuts`` (``reduction:month``) and ``hashprice_sold_ph_days`` (PH/s x delivery
    days sold forward, all forwards: the hedge a risk-frontier point takes)."""
    out: dict = {}
    for s in instance.sites:
        mw = 0.0
        if plan is not None and s.conversion is not None and len(plan.conversions):
            blocks = plan.conversions.loc[plan.conversions["site"] == s.id, "blocks"].sum()
            mw = float(blocks) * s.block_it_mw
        out[f"converted_mw_{s.id}"] = mw
    if plan is None:
        return {**out, **{c: "" for c in DIGEST_STR_COLUMNS}, "asics_bought_units": 0.0, "asics_retired_units": 0.0,
                "btc_sold_expected": 0.0, "hashprice_sold_ph_days": 0.0}
    leases = plan.leases.sort_values(["lease", "site"])
    out["leases_signed"] = ";".join(sorted(set(leases.loc[leases["share"] > 0, "lease"].astype(str))))
    out["lease_handovers"] = ";".join(f"{r.lease}@{r.site}:{r.month}" + ("" if r.share >= 1 - 1e-9 else f"x{r.share:.3g}")
                                      for r in leases.itertuples())
    out["conversions"] = ";".join(f"{r.site}:{r.month}x{r.blocks:g}" for r in plan.conversions.sort_values(["month", "site"]).itertuples())
    out["grid_expansions"] = ";".join(f"{r.site}:{r.option}:{r.month}" for r in plan.grid_expansions.itertuples())
    out["new_builds"] = ";".join(f"{r.site}:{r.option}:{r.month}x{r.blocks:g}" for r in plan.new_builds.sort_values(["month", "site"]).itertuples())
    out["gpu_purchases"] = ";".join(f"{r.option}@{r.site}:{r.month}x{r.mw:.6g}" for r in plan.gpu_purchases.sort_values(["month", "site"]).itertuples())
    signed = plan.contracts.loc[plan.contracts["signed"].astype(bool), "contract"] if len(plan.contracts) else []
    out["contracts_signed"] = ";".join(sorted(map(str, signed)))
    out["asics_bought_units"] = float(plan.purchases["units"].sum()) if len(plan.purchases) else 0.0
    out["asics_retired_units"] = float(plan.retirements["units"].sum()) if len(plan.retirements) else 0.0
    out["site_events"] = ";".join(f"{r.event}:{r.site}:{r.month}" for r in plan.site_events.itertuples())
    prob = {s.name: s.probability for s in instance.scenarios}
    sales = plan.btc_sales
    out["btc_sold_expected"] = float((sales["btc"] * sales["scenario"].map(prob).fillna(0.0)).sum()) if len(sales) else 0.0
    out["mining_exits"] = ";".join(f"{r.site}:{r.month}" for r in plan.mining_exits.itertuples())
    out["overhead_cuts"] = ";".join(f"{r.reduction}:{r.month}" for r in plan.overhead_cuts.itertuples())
    out["hashprice_sold_ph_days"] = _ph_days(instance, plan.hedges)
    return out


def _ph_days(instance: Instance, hedges) -> float:
    """PH/s x days of the delivery months inside each row's period, summed (0 without hedges)."""
    if not len(hedges) or instance.hedges is None:
        return 0.0
    tl = instance.timeline
    forwards = {f.id: f for f in instance.hedges.forwards}
    total = 0.0
    for r in hedges.itertuples():
        f = forwards.get(r.forward)
        if f is None:
            continue
        t = tl.period_of(r.month)
        months = tl.month_ordinals[t * tl.period_months:(t + 1) * tl.period_months]
        days = tl.month_days[t * tl.period_months:(t + 1) * tl.period_months]
        inside = (months >= month_ordinal(f.first_month)) & (months <= month_ordinal(f.last_month))
        total += float(r.ph_s) * float(days[inside].sum())
    return total
