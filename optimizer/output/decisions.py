"""Every decision of a plan in plain words: one sentence per decision, for people who act on it.

``describe_plan(plan, instance)`` turns the plan's decision tables into :class:`Decision`
records, each with a sentence such as

- "Convert 2 blocks (26 MW IT) at nd-1 from 2026-01, online 2027-07; capex $260M."
- "Build 2 blocks of hall-a (40 HPC racks, 8 MW) at tx-2 from 2026-03, in service 2027-03; capex $80M."
- "Buy 50 MW of GPUs (option gb300) for tx-2 in 2027-01, in service 2027-04; $1.5B."
- "Sign lease L3-ailab (20 MW IT, 120 months at $150/kW-month), hand-over 2027-07 at nd-1."
- "Retire 20,000 Antminer S21 XP at tx-1 in 2028-05 (salvage $1.0M)."
- "Sell site pa-1 in 2027-01 for $27M."
- "Sell 2,000 BTC from the treasury in 2026-01 (every scenario), about $174M."
- "Draw $1.2B on project facility tx-1-pf (site tx-1, 8.5 %/yr) in 18 draws from 2026-03 to 2027-08."

Coverage (tested on every bundled instance): every row of ``conversions``,
``grid_expansions``, ``new_builds``, ``gpu_purchases``, ``purchases``, ``retirements``, ``leases``, ``contracts`` (signed and
left unsigned), ``site_events``, ``debt`` (draws and issues of one instrument are one
sentence: total, count, first and last month), ``mining_exits``, ``overhead_cuts`` and ``hedges``
(the months sold on one forward are one sentence), and every non-zero row of ``btc_sales`` appears
in exactly one decision (``Decision.rows``). Treasury sales are listed per scenario (a commitment,
equal across the scenarios of a tree node): sales of the same amount in the same month are one
sentence naming the scenarios ("every scenario" when all do). A plan on a scenario tree is told
node by node (``describe_plan``). ``operations`` and ``energy`` are the month-by-month dispatch, not decisions a board takes;
they are summarised by the allocation and KPI tables.

Money in a sentence is what the decision itself pays or earns, undiscounted, from the same
instance figures the evaluator uses (conversion capex = blocks x MW per block x capex per MW;
a purchase = units x USD/TH x TH/s; salvage = units x salvage per unit; a site's sale or
acquisition price; a treasury sale = BTC x the scenario's BTC price, probability-weighted over
the scenarios that sell). Without an instance the sentences name what the tables hold (blocks,
units, months) without MW or money.

ASIC counts are continuous in the model (units are modelled in thousands and not forced whole,
a relaxation worth less than one unit per decision): a count that is not whole is shown
rounded with "about" and the plan files keep the exact value (``CONTINUOUS_NOTE``).

The console (``optimizer solve``), ``DIR/decisions.md``, the report's decision section and the
workbook's Decisions sheet all print these same sentences.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.economics.data import Data, compile_instance
from optimizer.instance.schema import FixedContract, IndexContract, Instance, OwnedGeneration
from optimizer.output.fmt import btc, count, money, mw
from optimizer.plan import FIRST_STAGE, NODE, Plan

# kinds in the order they read best within a month
KINDS = ("site_acquisition", "contract", "conversion", "grid_expansion", "new_build", "gpu_purchase", "purchase", "debt", "lease",
         "retirement", "site_sale", "overhead_cut", "mining_exit", "hedge", "btc_sale", "contract_unsigned")
# the decision tables a sentence covers, and how their rows are counted (btc_sales: non-zero rows only)
DECISION_TABLES = ("conversions", "grid_expansions", "new_builds", "gpu_purchases", "purchases", "retirements", "leases", "contracts",
                   "site_events", "debt", "mining_exits", "overhead_cuts", "hedges", "btc_sales")
CONTINUOUS_NOTE = ("ASIC counts are continuous in the model (a relaxation of whole units, worth less than one unit per "
                   "decision); counts shown with 'about' are rounded here, the plan files keep the exact values.")
BTC_TOL = 1e-9          # BTC below this in a btc_sales row is no sale (the solver's zero)


@dataclass(frozen=True)
class Decision:
    """One decision. ``rows``: indexes of the plan table's rows it covers."""

    table: str                   # plan table it comes from
    kind: str                    # one of KINDS
    month: str | None            # YYYY-MM it is taken (works start, hand-over, order, sale)
    site: str | None
    subject: str | None          # lease, ASIC model, purchase or grid option, contract
    quantity: float | None       # blocks, units, share of a lease, BTC
    unit: str                    # "blocks", "units", "share", "BTC", ""
    mw: float | None             # MW concerned (IT MW converted or leased, grid MW, plant MW)
    usd: float | None            # money the decision pays (<0) or earns (>0), undiscounted
    ready: str | None            # YYYY-MM it takes effect: HPC online, grid online, units delivered
    scenarios: str               # "all" (first stage) or the scenarios, ";"-joined (treasury sales)
    sentence: str
    rows: tuple[int, ...] = field(default=())
    terminal_note: str = ""      # set when the decision is driven by value after the horizon (horizon issue)


# ---------------------------------------------------------------- helpers


def _is_continuous(x: float) -> bool:
    return abs(x - round(x)) > 1e-6 * max(1.0, abs(x))


# ---------------------------------------------------------------- the sentences


def _node_column(plan: Plan) -> bool:
    return any(NODE in getattr(plan, t).columns for t in FIRST_STAGE)


def _node_rows(plan: Plan) -> dict[str, dict[str, list[int]]]:
    """node -> table -> row indexes of a tree plan's decision tables (rows without a node: root)."""
    out: dict[str, dict[str, list[int]]] = {}
    for t in FIRST_STAGE:
        df = getattr(plan, t)
        nodes = df[NODE].astype(str) if NODE in df.columns else pd.Series(["root"] * len(df))
        for i, n in enumerate(nodes):
            out.setdefault(n, {}).setdefault(t, []).append(i)
    out.setdefault("root", {})
    return out


def root_plan(plan: Plan) -> Plan:
    """The decisions taken now: a tree plan's rows at the root (every row of a two-stage plan),
    with all its treasury sales."""
    if not _node_column(plan):
        return plan
    rows = _node_rows(plan)["root"]
    return plan.replace(**{t: getattr(plan, t).iloc[rows.get(t, [])].drop(columns=NODE, errors="ignore").reset_index(drop=True)
                           for t in FIRST_STAGE})


def describe_plan(plan: Plan, instance: Instance | Data | None = None) -> list[Decision]:
    """The decisions of ``plan`` in time order (contracts first), each with its sentence.
    ``instance``: an Instance, or its compiled Data (MW, lead times, money); None for bare sentences.
    A plan on a scenario tree (decision tables with a ``node`` column, models/trees.md) is told
    node by node, the root first: a decision taken at a later node starts "At node 2/1 (from
    2028-07, if reached): ..."; treasury sales are told with the root's decisions (they name
    their scenarios)."""
    data = instance if isinstance(instance, Data) or instance is None else compile_instance(instance)
    if not _node_column(plan):
        return _describe(plan, data)
    groups = _node_rows(plan)
    tree = data.tree if data is not None else None
    order = {n.name: n.id for n in tree.nodes} if tree is not None else {}
    out: list[Decision] = []
    for node in sorted(groups, key=lambda n: (n != "root", order.get(n, len(order)), n)):
        idx = groups[node]
        sub = plan.replace(**{t: getattr(plan, t).iloc[idx.get(t, [])].drop(columns=NODE, errors="ignore").reset_index(drop=True)
                              for t in FIRST_STAGE},
                           **({} if node == "root" else {"btc_sales": plan.btc_sales.iloc[[]]}))
        when, who = "", "all"
        if tree is not None and node in tree.by_name:
            nd = tree.by_name[node]
            inv = tree.inv_periods(nd)
            when = f" (from {data.labels[inv[0]]}, if reached)" if inv else " (if reached)"
            who = ";".join(data.scenario_names[w] for w in nd.scenarios)
        for d in _describe(sub, data):
            if d.table == "btc_sales" or node == "root":
                out.append(d)
                continue
            rows = tuple(idx[d.table][i] for i in d.rows)
            out.append(replace(d, sentence=f"At node {node}{when}: {d.sentence[0].lower()}{d.sentence[1:]}", rows=rows, scenarios=who))
    return out


def _describe(plan: Plan, data: Data | None) -> list[Decision]:
    out: list[Decision] = []
    out += _conversions(plan, data)
    out += _grid_expansions(plan, data)
    out += _new_builds(plan, data)
    out += _gpu_purchases(plan, data)
    out += _purchases(plan, data)
    out += _retirements(plan, data)
    out += _leases(plan, data)
    out += _contracts(plan, data)
    out += _site_events(plan, data)
    out += _debt(plan, data)
    out += _mining_exits(plan, data)
    out += _overhead_cuts(plan, data)
    out += _hedges(plan, data)
    out += _btc_sales(plan, data)
    order = {k: i for i, k in enumerate(KINDS)}
    return sorted(out, key=lambda d: (d.month or "", order[d.kind], d.site or "", d.subject or ""))


def decisions(instance: Instance | Data | None, plan) -> list[Decision]:
    """``optimizer.decisions(instance, result_or_plan)``: the decisions of a Plan, or of a Result's
    plan (raising NoSolutionError when it has none), in words (``describe_plan``)."""
    return describe_plan(plan if isinstance(plan, Plan) else plan.plan, instance)


def _label(data: Data | None, t: int) -> str | None:
    if data is None or not 0 <= t < data.T:
        return None
    return data.labels[t]


def _ready(data: Data | None, month: str, lead_months: int) -> str | None:
    """Label of the period ``lead_months`` after ``month`` (None past the horizon or without data)."""
    if data is None:
        return None
    return _label(data, data.tl.period_of(month) + data.lead_periods(lead_months))


def _conversions(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    for i, r in enumerate(plan.conversions.itertuples(index=False)):
        site = data.inst.site_by_id.get(r.site) if data is not None else None
        blocks = float(r.blocks)
        what = f"{count(blocks)} block{'s' if round(blocks) != 1 else ''}"
        conv = site.conversion if site is not None else None
        it_mw = usd = ready = None
        if conv is not None:
            it_mw = blocks * site.block_it_mw
            usd = -it_mw * conv.capex_usd_per_mw
            ready = _ready(data, r.month, conv.lead_months)
            what += f" ({mw(it_mw)} IT)"
        s = f"Convert {what} at {r.site} from {r.month}"
        if ready:
            s += f", online {ready}"
        s += f"; capex {money(-usd)}." if usd is not None else "."
        out.append(Decision("conversions", "conversion", r.month, r.site, None, blocks, "blocks", it_mw, usd, ready, "all", s, (i,)))
    return out


def _grid_expansions(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    for i, r in enumerate(plan.grid_expansions.itertuples(index=False)):
        site = data.inst.site_by_id.get(r.site) if data is not None else None
        g = next((g for g in site.grid_expansions if g.id == r.option), None) if site is not None else None
        if g is None:
            s = f"Expand the grid at {r.site} (option {r.option}) from {r.month}."
            out.append(Decision("grid_expansions", "grid_expansion", r.month, r.site, r.option, None, "", None, None, None, "all", s, (i,)))
            continue
        ready = _ready(data, r.month, g.lead_months)
        s = f"Expand the grid at {r.site} by {mw(g.mw)} (option {r.option}) from {r.month}"
        s += (f", online {ready}" if ready else "") + f"; capex {money(g.capex_usd)}."
        out.append(Decision("grid_expansions", "grid_expansion", r.month, r.site, r.option, None, "", g.mw, -g.capex_usd, ready, "all", s, (i,)))
    return out


def _new_builds(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    for i, r in enumerate(plan.new_builds.itertuples(index=False)):
        blocks = float(r.blocks)
        b = data.builds.get((r.site, r.option)) if data is not None else None
        what = f"{count(blocks)} block{'s' if round(blocks) != 1 else ''} of {r.option}"
        if b is None:
            s = f"Build {what} at {r.site} from {r.month}."
            out.append(Decision("new_builds", "new_build", r.month, r.site, r.option, blocks, "blocks", None, None, None, "all", s, (i,)))
            continue
        total_mw = blocks * b.mw_per_block
        usd = -blocks * b.capex_usd_per_block
        ready = _ready(data, r.month, b.option.lead_months)
        kind = "HPC" if b.use == "hpc" else "mining"
        s = f"Build {what} ({count(blocks * b.racks_per_block)} {kind} racks, {mw(total_mw)}) at {r.site} from {r.month}"
        s += (f", in service {ready}" if ready else "") + f"; capex {money(-usd)}."
        out.append(Decision("new_builds", "new_build", r.month, r.site, r.option, blocks, "blocks", total_mw, usd, ready, "all", s, (i,)))
    return out


def _gpu_purchases(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    for i, r in enumerate(plan.gpu_purchases.itertuples(index=False)):
        q = float(r.mw)
        g = data.gpus.get(r.option) if data is not None else None
        if g is None:
            s = f"Buy {mw(q)} of GPUs (option {r.option}) for {r.site} in {r.month}."
            out.append(Decision("gpu_purchases", "gpu_purchase", r.month, r.site, r.option, q, "MW", q, None, None, "all", s, (i,)))
            continue
        usd = -q * g.capex_usd_per_mw
        ready = _ready(data, r.month, g.option.lead_months)
        s = f"Buy {mw(q)} of GPUs (option {r.option}) for {r.site} in {r.month}" + (f", in service {ready}" if ready else "")
        s += f"; {money(-usd)}."
        out.append(Decision("gpu_purchases", "gpu_purchase", r.month, r.site, r.option, q, "MW", q, usd, ready, "all", s, (i,)))
    return out


def _purchases(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    options = {p.id: p for p in data.inst.fleet.purchase_options} if data is not None else {}
    for i, r in enumerate(plan.purchases.itertuples(index=False)):
        u = float(r.units)
        p = options.get(r.option)
        if p is None:
            s = f"Buy {count(u)} ASICs (option {r.option}) for {r.site} in {r.month}."
            out.append(Decision("purchases", "purchase", r.month, r.site, r.option, u, "units", None, None, None, "all", s, (i,)))
            continue
        model = data.inst.model_by_name[p.model]
        usd = -u * p.usd_per_th * model.hashrate_th_s
        ready = _ready(data, r.month, p.lead_months)
        s = f"Buy {count(u)} {p.model} (option {r.option}) for {r.site} in {r.month}"
        s += (f", installed {ready}" if ready and ready != r.month else "") + f"; {money(-usd)}."
        out.append(Decision("purchases", "purchase", r.month, r.site, p.model, u, "units", u * model.power_w / 1e6, usd, ready,
                            "all", s, (i,)))
    return out


def _retirements(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    for i, r in enumerate(plan.retirements.itertuples(index=False)):
        u = float(r.units)
        model = data.inst.model_by_name.get(r.model) if data is not None else None
        usd = u * model.salvage_usd_per_unit if model is not None else None
        s = f"Retire {count(u)} {r.model} at {r.site} in {r.month}"
        s += f" (salvage {money(usd)})." if usd else "."
        out.append(Decision("retirements", "retirement", r.month, r.site, r.model, u, "units",
                            u * model.power_w / 1e6 if model is not None else None, usd, r.month, "all", s, (i,)))
    return out


def _leases(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    leases = {l.id: l for l in data.inst.leases} if data is not None else {}
    for i, r in enumerate(plan.leases.itertuples(index=False)):
        l, share = leases.get(r.lease), float(r.share)
        part = share < 1 - 1e-9
        if l is None:
            s = (f"Deliver {share:.0%} of lease {r.lease} from {r.site}, hand-over {r.month}." if part
                 else f"Sign lease {r.lease}, hand-over {r.month} at {r.site}.")
            out.append(Decision("leases", "lease", r.month, r.site, r.lease, share, "share", None, None, r.month, "all", s, (i,)))
            continue
        terms = f"{l.term_months} months at ${l.rate_usd_per_kw_month:,.4g}/kW-month"
        if part:
            s = f"Deliver {share:.0%} of lease {r.lease} ({mw(share * l.it_mw)} IT of {mw(l.it_mw)}, {terms}) from {r.site}, hand-over {r.month}."
        else:
            s = f"Sign lease {r.lease} ({mw(l.it_mw)} IT, {terms}), hand-over {r.month} at {r.site}."
        out.append(Decision("leases", "lease", r.month, r.site, r.lease, share, "share", share * l.it_mw, None, r.month, "all", s, (i,)))
    return out


_CONTRACT_WORDS = {"fixed": "fixed-price power contract", "index": "index-priced power contract"}


def _contracts(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    by_id = {c.id: c for c in data.inst.contracts} if data is not None else {}
    start = data.labels[0] if data is not None else None
    for i, r in enumerate(plan.contracts.itertuples(index=False)):
        c, signed = by_id.get(r.contract), bool(r.signed)
        if c is None:
            s = f"Sign the optional power contract {r.contract}." if signed else f"Leave the optional power contract {r.contract} unsigned."
            out.append(Decision("contracts", "contract" if signed else "contract_unsigned", None, None, r.contract, None, "", None, None,
                                None, "all", s, (i,)))
            continue
        month = c.start_month or start
        cap = c.mw if isinstance(c, OwnedGeneration) else c.mw_cap
        if isinstance(c, OwnedGeneration):
            price = c.acquisition_price_usd
            if signed:
                s = f"Buy the power plant {c.id} ({mw(c.mw)}) at {c.site}, from {month}" + (f", for {money(price)}." if price else ".")
            else:
                s = f"Do not buy the power plant {c.id} ({mw(c.mw)}) at {c.site}."
            usd = -price - c.signing_fee_usd if signed else None
        else:
            what = _CONTRACT_WORDS[c.kind]
            terms = (f"{mw(cap)} at ${c.price_usd_per_mwh:,.4g}/MWh" if isinstance(c, FixedContract)
                     else (f"up to {mw(cap)}, " if cap else "") + f"market price {c.adder_usd_per_mwh:+,.4g} $/MWh"
                     if isinstance(c, IndexContract) else "")
            fee = f", fee {money(c.signing_fee_usd)}" if c.signing_fee_usd else ""
            s = (f"Sign the optional {what} {c.id} at {c.site} ({terms}{fee}), from {month}." if signed
                 else f"Leave the optional {what} {c.id} at {c.site} unsigned.")
            usd = -c.signing_fee_usd if signed and c.signing_fee_usd else None
        out.append(Decision("contracts", "contract" if signed else "contract_unsigned", month if signed else None, c.site, c.id,
                            None, "", cap if signed else None, usd, month if signed else None, "all", s, (i,)))
    return out


def _site_events(plan: Plan, data: Data | None) -> list[Decision]:
    out = []
    sites = data.inst.site_by_id if data is not None else {}
    for i, r in enumerate(plan.site_events.itertuples(index=False)):
        site = sites.get(r.site)
        if r.event == "sale":
            price = site.sale.price_usd if site is not None and site.sale is not None else None
            s = f"Sell site {r.site} in {r.month}" + (f" for {money(price)}." if price is not None else ".")
            out.append(Decision("site_events", "site_sale", r.month, r.site, None, None, "", None, price, r.month, "all", s, (i,)))
        else:
            price = site.acquisition.price_usd if site is not None and site.acquisition is not None else None
            s = f"Buy site {r.site} in {r.month}" + (f" for {money(price)}." if price is not None else ".")
            out.append(Decision("site_events", "site_acquisition", r.month, r.site, None, None, "",
                                site.grid_interconnect_mw if site is not None else None, -price if price is not None else None,
                                r.month, "all", s, (i,)))
    return out


def _debt(plan: Plan, data: Data | None) -> list[Decision]:
    """One sentence per instrument: project facility draws or new notes issued (financing section)."""
    df = plan.debt
    if df.empty:
        return []
    df = df.reset_index(drop=True)
    fin = data.inst.financing if data is not None else None
    facilities = {f.id: f for f in fin.project_facilities} if fin is not None else {}
    issues = {n.id: n for n in fin.new_issues} if fin is not None else {}
    out = []
    for inst_id, g in df.groupby("instrument", sort=True):
        g = g.sort_values("month", kind="stable")
        total, first, last = float(g["usd"].sum()), str(g["month"].iloc[0]), str(g["month"].iloc[-1])
        site = None
        if inst_id in facilities:
            f = facilities[inst_id]
            when = f"in {first}" if len(g) == 1 else f"in {len(g)} draws from {first} to {last}"
            s = f"Draw {money(total)} on project facility {inst_id} (site {f.site}, {100 * f.interest_rate_per_year:.3g} %/yr) {when}."
            site = f.site
        elif inst_id in issues:
            n = issues[inst_id]
            when = f"in {first}" if len(g) == 1 else f"in {len(g)} issues from {first} to {last}"
            s = f"Issue {money(total)} of {n.kind} {inst_id} ({100 * n.coupon_per_year:.3g} % coupon, {n.tenor_months} months) {when}."
        else:
            when = f"in {first}" if len(g) == 1 else f"in {len(g)} draws from {first} to {last}"
            s = f"Raise {money(total)} on debt instrument {inst_id} {when}."
        out.append(Decision("debt", "debt", first, site, str(inst_id), total, "USD", None, total, last, "all", s,
                            tuple(int(i) for i in g.index)))
    return out


def _mining_exits(plan: Plan, data: Data | None) -> list[Decision]:
    """A site stops mining for good (``sites[*].mining_overhead``): the overhead it stops paying and the exit cost."""
    out = []
    sites = data.inst.site_by_id if data is not None else {}
    for i, r in enumerate(plan.mining_exits.itertuples(index=False)):
        mo = sites[r.site].mining_overhead if r.site in sites else None
        s = f"Stop mining at {r.site} from {r.month}"
        if mo is not None:
            s += f": saves its {money(mo.usd_per_month)} a month of mining overhead" + (
                f" for a one-off {money(mo.exit_cost_usd)}." if mo.exit_cost_usd else ".")
        else:
            s += "."
        out.append(Decision("mining_exits", "mining_exit", r.month, r.site, None, None, "", None,
                            -mo.exit_cost_usd if mo is not None else None, r.month, "all", s, (i,)))
    return out


def _overhead_cuts(plan: Plan, data: Data | None) -> list[Decision]:
    """A G&A reduction taken (``overhead.reductions``): its one-off cost and the saving a month."""
    out = []
    lev = data.lev.reductions if data is not None else {}
    for i, r in enumerate(plan.overhead_cuts.itertuples(index=False)):
        rd = lev.get(r.reduction)
        s = f"Cut G&A ({r.reduction}) in {r.month}"
        ready = r.month
        if rd is not None:
            red = rd.reduction
            ready = _ready(data, r.month, red.saving_lag_months) or r.month
            s += (f": {100 * red.cut_share:.3g} % of a {money(red.staff_cost_usd_per_year)}/yr payroll, one-off "
                  f"{money(rd.one_off_usd)} (severance {red.severance_weeks:g} weeks), saving {money(red.saving_usd_per_month)} "
                  f"a month from {ready}.")
        else:
            s += "."
        out.append(Decision("overhead_cuts", "overhead_cut", r.month, None, str(r.reduction), None, "", None,
                            -rd.one_off_usd if rd is not None else None, ready, "all", s, (i,)))
    return out


def _hedges(plan: Plan, data: Data | None) -> list[Decision]:
    """One sentence per hashprice forward: PH/s sold over its delivery months, price, notional and collateral."""
    df = plan.hedges
    if df.empty:
        return []
    df = df.reset_index(drop=True)
    fwd = data.lev.forwards if data is not None else {}
    out = []
    for fid, g in df.groupby("forward", sort=True):
        g = g.sort_values("month", kind="stable")
        first, last = str(g["month"].iloc[0]), str(g["month"].iloc[-1])
        ph = g["ph_s"].to_numpy(float)
        amount = f"{ph[0]:,.0f} PH/s" if np.allclose(ph, ph[0]) else f"{ph.min():,.0f}-{ph.max():,.0f} PH/s"
        when = f"for {first}" if len(g) == 1 else f"for {len(g)} periods from {first} to {last}"
        s = f"Sell {amount} of hashprice forward ({fid}) {when}"
        notional = None
        fd = fwd.get(fid)
        if fd is not None:
            t = [data.tl.period_of(m) for m in g["month"]]
            notional = float(sum(x * fd.notional_usd_per_ph[k] for x, k in zip(ph, t)))
            f = fd.forward
            s += f" at {f.price_usd_per_ph_day:g} USD per PH/s per day: notional {money(notional)}"
            s += f", collateral {money(f.collateral_share * notional)}." if f.collateral_share > 0 else "."
        else:
            s += "."
        trade = data.labels[fd.trade_period] if fd is not None else first
        out.append(Decision("hedges", "hedge", trade, None, str(fid), float(ph.sum()), "PH/s", None, None, last, "all", s,
                            tuple(int(i) for i in g.index)))
    return out


def _btc_sales(plan: Plan, data: Data | None) -> list[Decision]:
    df = plan.btc_sales.reset_index(drop=True)
    df = df[df["btc"] > BTC_TOL]
    if df.empty:
        return []
    names = data.scenario_names if data is not None else sorted(plan.btc_sales["scenario"].unique())
    prob = dict(zip(names, map(float, data.prob))) if data is not None else {}
    out = []
    for month, g in df.groupby("month", sort=True):
        # scenarios selling the same amount (to 1e-6 relative) share a sentence
        groups: list[tuple[float, list[int]]] = []
        for idx, amount in zip(g.index, g["btc"]):
            for k, (a, rows) in enumerate(groups):
                if abs(a - amount) <= 1e-6 * max(a, amount):
                    rows.append(idx)
                    break
            else:
                groups.append((float(amount), [idx]))
        for amount, rows in groups:
            scen = [str(df.at[i, "scenario"]) for i in rows]
            every = set(scen) == set(names)
            where = "every scenario" if every else ("scenario " if len(scen) == 1 else "scenarios ") + ", ".join(scen)
            usd = None
            if data is not None:
                t = data.tl.period_of(month)
                w = {n: i for i, n in enumerate(names)}
                if 0 <= t < data.T:
                    p = sum(prob[n] for n in scen)
                    usd = (sum(prob[n] * amount * float(data.btc_price_usd[w[n], t]) for n in scen) / p) if p > 0 else None
            s = f"Sell {btc(amount)} BTC from the treasury in {month} ({where})"
            s += f", about {money(usd)}." if usd is not None else "."
            out.append(Decision("btc_sales", "btc_sale", month, None, None, amount, "BTC", None, usd, month,
                                "all" if every else ";".join(scen), s, tuple(int(i) for i in rows)))
    return out


# ---------------------------------------------------------------- what was not done, tables, files


def not_taken(plan: Plan, instance: Instance | Data | None = None) -> list[str]:
    """Sentences for the options the instance offers and the plan leaves unused ("No lease signed.")."""
    inst = instance.inst if isinstance(instance, Data) else instance
    out = []
    if inst is None:
        return out
    if not len(plan.conversions) and any(s.conversion is not None for s in inst.sites):
        out.append("No conversion to HPC: every mining hall keeps mining.")
    if not len(plan.leases) and inst.leases:
        out.append(f"No lease signed (of {len(inst.leases)} offered).")
    if not len(plan.purchases) and inst.fleet.purchase_options:
        out.append("No ASIC purchase.")
    if not len(plan.grid_expansions) and any(s.grid_expansions for s in inst.sites):
        out.append("No grid expansion.")
    if not (plan.btc_sales["btc"] > BTC_TOL).any() and (inst.treasury is not None and inst.treasury.btc_held_start > 0):
        out.append("No treasury BTC sold.")
    sold = set(plan.site_events.loc[plan.site_events["event"] == "sale", "site"]) if len(plan.site_events) else set()
    if any(s.sale is not None for s in inst.sites) and not sold:
        out.append("No site sold.")
    return out


FRAME_COLUMNS = ["month", "kind", "site", "subject", "quantity", "unit", "mw", "usd", "ready", "scenarios", "decision", "table", "rows"]


def decisions_frame(decisions: list[Decision], periods: bool = False) -> pd.DataFrame:
    """One row per decision (FRAME_COLUMNS); ``periods``: months as monthly ``pandas.Period``."""
    df = pd.DataFrame([{
        "month": d.month, "kind": d.kind, "site": d.site, "subject": d.subject, "quantity": d.quantity, "unit": d.unit,
        "mw": d.mw, "usd": d.usd, "ready": d.ready, "scenarios": d.scenarios, "decision": d.sentence, "table": d.table,
        "rows": ";".join(map(str, d.rows)),
    } for d in decisions], columns=FRAME_COLUMNS)
    for c in ("quantity", "mw", "usd"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    if periods:
        for c in ("month", "ready"):
            df[c] = pd.PeriodIndex([pd.Period(m, "M") if isinstance(m, str) and m else pd.NaT for m in df[c]], freq="M")
    return df


def needs_continuous_note(decisions: list[Decision]) -> bool:
    return any(d.unit == "units" and d.quantity is not None and _is_continuous(d.quantity) for d in decisions)


def decisions_markdown(decisions: list[Decision], title: str = "Decisions", not_done: list[str] | None = None,
                       notes: list[str] | None = None) -> str:
    """A Markdown list of the sentences (``DIR/decisions.md``)."""
    lines = [f"# {title}", ""]
    if not decisions:
        lines.append("The plan takes no decision: it keeps every site as it is.")
    lines += [f"{i}. {d.sentence}" + (f" ({d.terminal_note})" if d.terminal_note else "") for i, d in enumerate(decisions, 1)]
    if not_done:
        lines += ["", *[f"- {s}" for s in not_done]]
    extra = list(notes or [])
    if needs_continuous_note(decisions):
        extra.append(CONTINUOUS_NOTE)
    if extra:
        lines += ["", *[f"_{n}_" for n in extra]]
    return "\n".join(lines) + "\n"


TERMINAL_NOTE = "only terminal values pay for it: see the terminal flags"


def mark_terminal(decisions: list[Decision], flags: list[dict] | None) -> list[Decision]:
    """The decisions with ``terminal_note`` set on those the evaluator flags as paid for only by
    terminal values (``summary.json`` ``terminal.flags``: kind, site, month; models/economics.md,
    "Decisions that lean on the horizon")."""
    keys = {(f.get("kind"), f.get("site"), f.get("month")) for f in flags or []}
    return [replace(d, terminal_note=TERMINAL_NOTE) if (d.kind, d.site, d.month) in keys else d for d in decisions]


def write_decisions(out_dir: str | Path, plan: Plan, instance: Instance | Data | None, title: str | None = None,
                    terminal_flags: list[dict] | None = None) -> Path:
    """Write ``out_dir/decisions.md``; return its path. ``terminal_flags``: the evaluation's
    terminal flags (``mark_terminal``)."""
    data = instance if isinstance(instance, Data) or instance is None else compile_instance(instance)
    decisions = mark_terminal(describe_plan(plan, data), terminal_flags)
    name = title or (f"Decisions of the plan for {data.inst.name}" if data is not None else "Decisions of the plan")
    path = Path(out_dir) / "decisions.md"
    path.write_text(decisions_markdown(decisions, name, not_taken(plan, data)), encoding="utf-8")
    return path


def covered_rows(plan: Plan, decisions: list[Decision]) -> dict[str, list[int]]:
    """Table -> the row indexes the decisions cover (what the coverage test compares with the plan)."""
    out: dict[str, list[int]] = {t: [] for t in DECISION_TABLES}
    for d in decisions:
        out[d.table].extend(d.rows)
    return {t: sorted(v) for t, v in out.items()}


def decision_rows(plan: Plan) -> dict[str, list[int]]:
    """Table -> the row indexes that are decisions (every row; btc_sales: the non-zero ones)."""
    out = {}
    for t in DECISION_TABLES:
        df = getattr(plan, t).reset_index(drop=True)
        out[t] = [int(i) for i in (np.flatnonzero(df["btc"].to_numpy() > BTC_TOL) if t == "btc_sales" else range(len(df)))]
    return out
