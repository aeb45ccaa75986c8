"""Cross-field rules of an instance, one ``check_*`` function per rule (PyPSA's consistency style).

Each check takes the (field-validated) ``Instance`` and returns sentences, each starting with
the path of the field it concerns (``leases[2].window_start: month 2031-01 is outside the
horizon 2026-01..2030-12``); an empty list means the rule holds. ``Instance`` runs every check
in ``CHECKS`` after validating its fields and raises one ValueError joining what they found
(``instance.messages`` turns it into one line). Adding a rule: write ``check_<rule>`` here, name
the fields it checks in its docstring, and append it to ``CHECKS``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from optimizer.instance.base import SERIES_RANGES, series_range_text
from optimizer.instance.levers import MAX_CURTAIL_HOURS
from optimizer.kernel.timeline import Timeline, month_label, month_ordinal

if TYPE_CHECKING:  # the schema imports this module; the checks only read the instance it passes
    from optimizer.instance.schema import Instance


def _timeline(inst: Instance) -> Timeline:
    h = inst.horizon
    return Timeline(month_ordinal(h.start_month), h.periods, h.period_months)


def _outside(inst: Instance, month: str | None, where: str) -> list[str]:
    tl = _timeline(inst)
    if month is not None and not (tl.start <= month_ordinal(month) <= tl.end):
        return [f"{where}: month {month} is outside the horizon {inst.horizon.start_month}..{month_label(tl.end)}"]
    return []


def _duplicates(ids: list[str], where: str) -> list[str]:
    seen: set[str] = set()
    out = []
    for x in ids:
        if x in seen:
            out.append(f"{where}: duplicate id {x!r}")
        seen.add(x)
    return out


def check_probabilities(inst: Instance) -> list[str]:
    """``scenarios[*].probability`` sum to 1 (within 1e-9)."""
    total = sum(s.probability for s in inst.scenarios)
    return [] if abs(total - 1.0) <= 1e-9 else [f"scenarios: probabilities must sum to 1, got {total:.12g}"]


def check_unique_ids(inst: Instance) -> list[str]:
    """Ids are unique within ``scenarios``, ``sites``, ``fleet.asic_models``, ``contracts``,
    ``leases`` and ``fleet.purchase_options``."""
    return (_duplicates([s.name for s in inst.scenarios], "scenarios") + _duplicates([s.id for s in inst.sites], "sites")
            + _duplicates([m.name for m in inst.fleet.asic_models], "fleet.asic_models")
            + _duplicates([c.id for c in inst.contracts], "contracts") + _duplicates([l.id for l in inst.leases], "leases")
            + _duplicates([p.id for p in inst.fleet.purchase_options], "fleet.purchase_options"))


def check_market_prices(inst: Instance) -> list[str]:
    """Every scenario gives ``power_price_usd_per_mwh`` for each market a site is in
    (``sites[*].market``), and for no other market (a price for a market no site is in is a
    misspelt market id or a leftover: it would be ignored without a word). The same holds for
    ``scenario_generator.power_price_usd_per_mwh``."""
    markets = {s.market for s in inst.sites}
    known = ", ".join(sorted(markets))
    out = []
    gen = inst.scenario_generator
    if gen is not None:
        out += [f"scenario_generator.power_price_usd_per_mwh.{k}: no site is in market {k!r} (site markets: {known})"
                for k in gen.power_price_usd_per_mwh if k not in markets]
    for i, sc in enumerate(inst.scenarios):
        missing = sorted(markets - set(sc.power_price_usd_per_mwh))
        if missing:
            out.append(f"scenarios[{i}].power_price_usd_per_mwh: no price for market(s) {', '.join(missing)}")
        if gen is None:
            out += [f"scenarios[{i}].power_price_usd_per_mwh.{k}: no site is in market {k!r} (site markets: {known})"
                    for k in sc.power_price_usd_per_mwh if k not in markets]
    return out


def check_series_ranges(inst: Instance) -> list[str]:
    """Every month of every scenario series, once resolved (constant, points, CSV column or
    generator path, times its scale), is finite and inside its field's range
    (``base.SERIES_RANGES``: e.g. ``btc_price_usd`` in (0, 1e8] USD, ``fees_btc_per_block`` in
    [0, 100]). A generator's path is checked too, so a drift that overflows is named with its
    month. For generated scenarios (``scenario_generator``) the sentence names the generator."""
    tl = _timeline(inst)
    generated = inst.scenario_generator is not None
    out = []
    for i, sc in enumerate(inst.scenarios):
        series = [(f, getattr(sc, f)) for f in SERIES_RANGES if f not in _SERIES_DICTS]
        series += [(f"power_price_usd_per_mwh.{k}", v) for k, v in sc.power_price_usd_per_mwh.items()]
        series += [(f"fuel_price_usd_per_mmbtu.{k}", v) for k, v in sc.fuel_price_usd_per_mmbtu.items()]
        for name, s in series:
            field = name.split(".")[0]
            lo, hi, closed, _ = SERIES_RANGES[field]
            v = s.monthly(tl.start, tl.n_months)
            bad = ~np.isfinite(v) | (v > hi) | ((v < lo) if closed else (v <= lo))
            if bad.any():
                k = int(np.argmax(bad))
                where = f"scenario_generator: generated scenario {sc.name} {name}" if generated else f"scenarios[{i}].{name}"
                out.append(f"{where}: must be {series_range_text(field)}, got {v[k]:g} in {month_label(tl.start + k)}")
    lo, hi, _, _ = SERIES_RANGES["fuel_price_usd_per_mmbtu"]
    for i, f in enumerate(inst.fuels):
        v = f.price_usd_per_mmbtu.monthly(tl.start, tl.n_months)
        bad = ~np.isfinite(v) | (v > hi) | (v < lo)
        if bad.any():
            k = int(np.argmax(bad))
            out.append(f"fuels[{i}].price_usd_per_mmbtu: must be {series_range_text('fuel_price_usd_per_mmbtu')}, "
                       f"got {v[k]:g} in {month_label(tl.start + k)}")
    return out


_SERIES_DICTS = ("power_price_usd_per_mwh", "fuel_price_usd_per_mmbtu")  # keyed series of a scenario (market, fuel)


def check_site_months(inst: Instance) -> list[str]:
    """Months of ``sites[*].conversion.earliest_month``, ``grid_expansions[*].earliest_month``,
    ``sale.earliest_month`` and ``acquisition.available_from`` lie inside the horizon."""
    out = []
    for i, s in enumerate(inst.sites):
        if s.conversion is not None:
            out += _outside(inst, s.conversion.earliest_month, f"sites[{i}].conversion.earliest_month")
        for j, g in enumerate(s.grid_expansions):
            out += _outside(inst, g.earliest_month, f"sites[{i}].grid_expansions[{j}].earliest_month")
        if s.sale is not None:
            out += _outside(inst, s.sale.earliest_month, f"sites[{i}].sale.earliest_month")
        if s.acquisition is not None:
            out += _outside(inst, s.acquisition.available_from, f"sites[{i}].acquisition.available_from")
    return out


def check_installed_units(inst: Instance) -> list[str]:
    """``fleet.installed[*]`` names a known site and ASIC model, holds no units at a site that is
    not owned at the start, and a site's units fit its mining racks (racks x ``asics_per_rack``)."""
    site_ids = {s.id for s in inst.sites}
    models = {m.name for m in inst.fleet.asic_models}
    out = []
    for i, u in enumerate(inst.fleet.installed):
        if u.site not in site_ids:
            out.append(f"fleet.installed[{i}].site: unknown site {u.site!r}")
        elif inst.site_by_id[u.site].acquisition is not None and u.units > 0:
            out.append(f"fleet.installed[{i}]: site {u.site!r} is not owned at the start (it has an acquisition option), so it holds no ASICs")
        if u.model not in models:
            out.append(f"fleet.installed[{i}].model: unknown ASIC model {u.model!r}")
    for s in inst.sites:
        units = sum(u.units for u in inst.fleet.installed if u.site == s.id)
        if units > s.mining_racks * s.asics_per_rack + 1e-9:
            out.append(f"fleet.installed: site {s.id!r} holds {units:g} units but its mining racks hold {s.mining_racks * s.asics_per_rack}")
    return out


def check_purchase_options(inst: Instance) -> list[str]:
    """``fleet.purchase_options[*]``: a known model, known sites, ``first_month`` inside the horizon
    and ``last_month`` not before it."""
    site_ids = {s.id for s in inst.sites}
    models = {m.name for m in inst.fleet.asic_models}
    out = []
    for i, p in enumerate(inst.fleet.purchase_options):
        if p.model not in models:
            out.append(f"fleet.purchase_options[{i}].model: unknown ASIC model {p.model!r}")
        out += [f"fleet.purchase_options[{i}].sites: unknown site {sid!r}" for sid in p.sites or [] if sid not in site_ids]
        out += _outside(inst, p.first_month, f"fleet.purchase_options[{i}].first_month")
        if p.last_month is not None and month_ordinal(p.last_month) < month_ordinal(p.first_month):
            out.append(f"fleet.purchase_options[{i}].last_month: {p.last_month} is before first_month {p.first_month}")
    return out


def check_contracts(inst: Instance) -> list[str]:
    """``contracts[*].site`` is a known site and ``start_month`` lies inside the horizon."""
    site_ids = {s.id for s in inst.sites}
    out = []
    for i, c in enumerate(inst.contracts):
        if c.site not in site_ids:
            out.append(f"contracts[{i}].site: unknown site {c.site!r}")
        out += _outside(inst, c.start_month, f"contracts[{i}].start_month")
    return out


def check_leases(inst: Instance) -> list[str]:
    """``leases[*].eligible_sites`` are known sites; ``window_start`` and ``window_end`` lie
    inside the horizon."""
    site_ids = {s.id for s in inst.sites}
    out = []
    for i, l in enumerate(inst.leases):
        out += [f"leases[{i}].eligible_sites: unknown site {sid!r}" for sid in l.eligible_sites or [] if sid not in site_ids]
        out += _outside(inst, l.window_start, f"leases[{i}].window_start")
        out += _outside(inst, l.window_end, f"leases[{i}].window_end")
    return out


def check_budget_years(inst: Instance) -> list[str]:
    """The years of ``policy.capex_budget_usd_per_year`` (when a mapping) are calendar years."""
    budget = inst.policy.capex_budget_usd_per_year
    if not isinstance(budget, dict):
        return []
    return [f"policy.capex_budget_usd_per_year: year {y} is not a calendar year" for y in budget if not (1900 < y < 2300)]


def check_fixed_decisions(inst: Instance) -> list[str]:
    """``policy.fixed_decisions[*]`` name known sites, leases, contracts, purchase options and grid
    expansions of that site; their months lie inside the horizon; events that happen give a month.
    What each decision fixes must exist: a ``conversion`` needs the site's conversion option (and
    no more blocks than the site can convert, no month before its ``earliest_month``), a ``sale``
    or ``acquisition`` the site's option, a ``contract`` left unsigned must be ``optional``."""
    site_ids = {s.id for s in inst.sites}
    lease_ids = {l.id for l in inst.leases}
    contract_ids = {c.id for c in inst.contracts}
    option_ids = {p.id for p in inst.fleet.purchase_options}
    out = []
    for i, d in enumerate(inst.policy.fixed_decisions):
        where = f"policy.fixed_decisions[{i}]"
        site = getattr(d, "site", None)
        if site is not None and site not in site_ids:
            out.append(f"{where}.site: unknown site {site!r}")
        out += _outside(inst, getattr(d, "month", None), f"{where}.month")
        if d.kind == "lease" and d.lease not in lease_ids:
            out.append(f"{where}.lease: unknown lease {d.lease!r}")
        if d.kind == "contract" and d.contract not in contract_ids:
            out.append(f"{where}.contract: unknown contract {d.contract!r}")
        if d.kind == "purchase" and d.option not in option_ids:
            out.append(f"{where}.option: unknown purchase option {d.option!r}")
        if d.kind in ("sale", "acquisition", "grid_expansion") and d.happens and d.month is None:
            out.append(f"{where}.month: required when happens is true")
        if d.kind == "grid_expansion" and site in site_ids:
            if d.option not in {g.id for g in inst.site_by_id[site].grid_expansions}:
                out.append(f"{where}.option: site {site!r} has no grid expansion {d.option!r}")
        s = inst.site_by_id.get(site) if site is not None else None
        if d.kind in ("sale", "acquisition") and s is not None and getattr(s, d.kind) is None:
            out.append(f"{where}: site {site!r} has no {d.kind} option (sites[*].{d.kind}), so there is no {d.kind} to fix")
        if d.kind == "conversion" and s is not None:
            conv = s.conversion
            if conv is None:
                out.append(f"{where}: site {site!r} has no conversion option (sites[*].conversion), so there is no conversion to fix")
            elif d.blocks > s.max_conversion_blocks:
                out.append(f"{where}.blocks: {d.blocks} blocks, but site {site!r} can convert at most {s.max_conversion_blocks}")
            elif conv.earliest_month is not None and month_ordinal(d.month) < month_ordinal(conv.earliest_month):
                out.append(f"{where}.month: {d.month} is before the site's conversion earliest_month {conv.earliest_month}")
        if d.kind == "contract" and not d.signed and d.contract in contract_ids:
            c = next(c for c in inst.contracts if c.id == d.contract)
            if not c.optional:
                out.append(f"{where}.signed: contract {d.contract!r} is not optional (it is always signed), so it cannot be "
                           "left unsigned; set optional: true on it to let the plan decide")
    return out


def _decision_key(d) -> tuple:
    """What a fixed decision pins: two decisions with the same key fix the same thing."""
    if d.kind == "conversion":
        return (d.kind, d.site, month_ordinal(d.month))
    if d.kind == "lease":
        return (d.kind, d.lease)
    if d.kind == "contract":
        return (d.kind, d.contract)
    if d.kind == "purchase":
        return (d.kind, d.option, d.site, month_ordinal(d.month))
    if d.kind == "grid_expansion":
        return (d.kind, d.site, d.option)
    return (d.kind, d.site)  # sale, acquisition


def check_fixed_decisions_once(inst: Instance) -> list[str]:
    """Each thing is fixed at most once in ``policy.fixed_decisions``: a lease, a contract, a site's
    sale or acquisition, a grid expansion, a site's conversion in a month, a purchase option's
    delivery to a site in a month. Two decisions on one thing either repeat each other or
    contradict each other (signed and unsigned; 1 block and 2 blocks), and the model would keep
    only one of them without a word."""
    first: dict[tuple, int] = {}
    out = []
    for i, d in enumerate(inst.policy.fixed_decisions):
        key = _decision_key(d)
        if key in first:
            what = " ".join(str(x) for x in (d.kind, *(getattr(d, a) for a in ("lease", "contract", "option", "site", "month")
                                                        if getattr(d, a, None) is not None)))
            out.append(f"policy.fixed_decisions[{i}]: fixes {what} again, already fixed by policy.fixed_decisions[{first[key]}]; "
                       "give each decision once")
        else:
            first[key] = i
    return out


def _history(sc, start: int, n: int) -> list[tuple[str, object]]:
    """A scenario's monthly series over ``n`` months from ``start``, named for messages."""
    out = [("btc_price_usd", sc.btc_price_usd.monthly(start, n)), ("network_hashrate_eh_s", sc.network_hashrate_eh_s.monthly(start, n)),
           ("fees_btc_per_block", sc.fees_btc_per_block.monthly(start, n)), ("hpc_lease_rate_index", sc.hpc_lease_rate_index.monthly(start, n))]
    return out + [(f"power_price_usd_per_mwh.{k}", v.monthly(start, n)) for k, v in sorted(sc.power_price_usd_per_mwh.items())]


def check_tree(inst: Instance) -> list[str]:
    """``tree``: ``branch_months`` start periods inside the horizon; ``paths`` names every scenario
    once (required with more than one listed scenario); scenarios that share a node share its
    history exactly: at depth d (the root 0) every series of theirs is equal over the months from
    the horizon start to the month before the next branch month (the prices that node has seen).
    Probabilities multiply down the tree by construction (a node carries the sum of its
    scenarios'), and ``check_probabilities`` makes them sum to 1."""
    tree = inst.tree
    if tree is None:
        return []
    tl = _timeline(inst)
    out = []
    for i, bm in enumerate(tree.branch_months):
        k = month_ordinal(bm) - tl.start
        if not 0 <= k < tl.n_months:
            out.append(f"tree.branch_months[{i}]: month {bm} is outside the horizon {inst.horizon.start_month}..{month_label(tl.end)}")
        elif k % tl.period_months:
            out.append(f"tree.branch_months[{i}]: month {bm} does not start a period ({tl.period_months}-month periods)")
    if out:
        return out
    names = [s.name for s in inst.scenarios]
    if tree.paths is None:
        return [] if len(names) == 1 else [
            "tree.paths: required with listed scenarios (scenario name -> node label at each branch month), or give tree.children with a scenario_generator"]
    out += [f"tree.paths: unknown scenario {n!r}" for n in tree.paths if n not in names]
    out += [f"tree.paths: scenario {n!r} has no path" for n in names if n not in tree.paths]
    if out:
        return out
    ends = [month_ordinal(b) for b in tree.branch_months[1:]] + [tl.end + 1]
    hist = {sc.name: _history(sc, tl.start, tl.n_months) for sc in inst.scenarios}
    bounds = [month_ordinal(b) for b in tree.branch_months]
    for d in range(len(tree.branch_months) + 1):
        end = bounds[0] if d == 0 else ends[d - 1]  # a depth-d node has seen the months before `end`
        n = end - tl.start
        if n <= 0:
            continue
        first: dict[tuple, str] = {}
        for name in names:
            key = tuple(tree.paths[name][:d])
            ref = first.setdefault(key, name)
            if ref == name:
                continue
            for (what, a), (_, b) in zip(hist[ref], hist[name]):
                diff = [j for j in range(n) if not abs(a[j] - b[j]) <= 1e-12 * max(1.0, abs(a[j]))]
                if diff:
                    node = "root" if d == 0 else "/".join(key)
                    out.append(f"tree.paths: scenarios {ref!r} and {name!r} share node {node!r} but their {what} differs in "
                               f"{month_label(tl.start + diff[0])} (the node has seen {inst.horizon.start_month}..{month_label(end - 1)}); "
                               "scenarios that share a node must share its history exactly")
                    break
    return out


def check_financing(inst: Instance) -> list[str]:
    """``financing``: instrument ids unique across facilities, corporate debt and new issues;
    ``project_facilities[*]`` name a known site with the projects they finance and a known lease,
    draw months inside the horizon, tenors in whole periods, a growth rate (or a lease) when
    sculpted; ``corporate_debt[*].maturity_month`` not before the horizon start and BTC repayment
    only when treasury BTC may be sold; ``new_issues[*]`` months inside the horizon and whole-period
    tenors; ``taxes.site_tax_basis_usd`` names known sites."""
    f = inst.financing
    if f is None:
        return []
    tl = _timeline(inst)
    L = tl.period_months
    site_ids = {s.id for s in inst.sites}
    lease_ids = {l.id for l in inst.leases}
    out = _duplicates(f.instrument_ids, "financing (project_facilities, corporate_debt, new_issues)")
    for i, fa in enumerate(f.project_facilities):
        w = f"financing.project_facilities[{i}]"
        if fa.site not in site_ids:
            out.append(f"{w}.site: unknown site {fa.site!r}")
        else:
            site = inst.site_by_id[fa.site]
            if "conversion" in fa.finances and site.conversion is None:
                out.append(f"{w}.finances: site {fa.site!r} has no conversion option to finance")
            if "grid_expansion" in fa.finances and not site.grid_expansions:
                out.append(f"{w}.finances: site {fa.site!r} has no grid expansion to finance")
        if fa.lease is not None and fa.lease not in lease_ids:
            out.append(f"{w}.lease: unknown lease {fa.lease!r}")
        out += _outside(inst, fa.draw_first_month, f"{w}.draw_first_month")
        out += _outside(inst, fa.draw_last_month, f"{w}.draw_last_month")
        if fa.tenor_months % L:
            out.append(f"{w}.tenor_months: {fa.tenor_months} is not a whole number of {L}-month periods")
        if fa.amortization == "sculpted" and fa.sculpt_growth_per_year is None and fa.lease is None:
            out.append(f"{w}.sculpt_growth_per_year: required for sculpted amortization without a lease")
    for i, d in enumerate(f.corporate_debt):
        w = f"financing.corporate_debt[{i}]"
        if month_ordinal(d.maturity_month) < tl.start:
            out.append(f"{w}.maturity_month: {d.maturity_month} is before the horizon start {inst.horizon.start_month}")
        if d.repayment_source == "treasury_btc":
            tr = inst.treasury
            if not tr.allow_treasury_sales or (tr.btc_held_start <= 0 and tr.mined_btc != "hold"):
                out.append(f"{w}.repayment_source: treasury_btc needs treasury BTC that may be sold "
                           "(treasury.allow_treasury_sales and btc_held_start > 0 or mined_btc: hold)")
    for i, n in enumerate(f.new_issues):
        w = f"financing.new_issues[{i}]"
        out += _outside(inst, n.first_month, f"{w}.first_month")
        out += _outside(inst, n.last_month, f"{w}.last_month")
        if n.tenor_months % L:
            out.append(f"{w}.tenor_months: {n.tenor_months} is not a whole number of {L}-month periods")
    if f.taxes is not None:
        out += [f"financing.taxes.site_tax_basis_usd: unknown site {s!r}" for s in f.taxes.site_tax_basis_usd if s not in site_ids]
        out += [f"financing.taxes.existing_depreciation_usd_per_year: year {y} is not a calendar year"
                for y in f.taxes.existing_depreciation_usd_per_year if not (1900 < y < 2300)]
    return out


def check_markets(inst: Instance) -> list[str]:
    """``markets[*].id`` are unique markets some site is in; a market's demand-response and peak
    curtailment hours together fit the shortest month (672 h) in every month both programs run, so
    the curtailed share of a period never exceeds 1."""
    markets = {s.market for s in inst.sites}
    out = _duplicates([m.id for m in inst.markets], "markets")
    for i, m in enumerate(inst.markets):
        if m.id not in markets:
            out.append(f"markets[{i}].id: no site is in market {m.id!r} (site markets: {', '.join(sorted(markets))})")
        dr, pk = m.demand_response, m.transmission_peak
        if dr is not None and pk is not None:
            both = set(dr.months or range(1, 13)) & set(pk.months)
            if both and dr.curtailment_hours_per_month + pk.curtail_hours_per_month > MAX_CURTAIL_HOURS:
                out.append(f"markets[{i}]: demand_response.curtailment_hours_per_month + transmission_peak.curtail_hours_per_month = "
                           f"{dr.curtailment_hours_per_month + pk.curtail_hours_per_month:g} h exceeds the {MAX_CURTAIL_HOURS:g} h of the "
                           f"shortest month in month(s) {', '.join(map(str, sorted(both)))} where both programs run")
    return out


def check_plants(inst: Instance) -> list[str]:
    """Owned generation: ``fuel`` names one of ``fuels`` and comes with ``heat_rate_mmbtu_per_mwh``
    (both or neither); ``feeds`` are known sites other than its own, listed once; ``assumed_debt``
    only on an ``optional`` plant, at most its ``acquisition_price_usd``. ``fuels[*].id`` are unique
    and each ``scenarios[*].fuel_price_usd_per_mmbtu`` key is a known fuel."""
    plants = [(i, c) for i, c in enumerate(inst.contracts) if c.kind == "owned_generation"]
    site_ids = {s.id for s in inst.sites}
    fuels = {f.id for f in inst.fuels}
    out = _duplicates([f.id for f in inst.fuels], "fuels")
    for i, c in plants:
        where = f"contracts[{i}]"
        if (c.fuel is None) != (c.heat_rate_mmbtu_per_mwh is None):
            out.append(f"{where}: give fuel and heat_rate_mmbtu_per_mwh together (got only "
                       f"{'fuel' if c.fuel is not None else 'heat_rate_mmbtu_per_mwh'})")
        if c.fuel is not None and c.fuel not in fuels:
            out.append(f"{where}.fuel: unknown fuel {c.fuel!r} (fuels: {', '.join(sorted(fuels)) or 'none'})")
        out += [f"{where}.feeds: unknown site {s!r}" for s in c.feeds if s not in site_ids]
        if c.site in c.feeds:
            out.append(f"{where}.feeds: lists its own site {c.site!r} (it feeds its site anyway)")
        out += _duplicates(list(c.feeds), f"{where}.feeds")
        if c.assumed_debt is not None:
            if not c.optional:
                out.append(f"{where}.assumed_debt: only a plant bought by the plan (optional: true) assumes debt; "
                           "debt of a plant owned at the start is financing.corporate_debt")
            elif c.assumed_debt.principal_usd > c.acquisition_price_usd:
                out.append(f"{where}.assumed_debt.principal_usd: {c.assumed_debt.principal_usd:g} exceeds the acquisition price "
                           f"{c.acquisition_price_usd:g}")
    for i, sc in enumerate(inst.scenarios):
        out += [f"scenarios[{i}].fuel_price_usd_per_mmbtu.{k}: unknown fuel {k!r} (fuels: {', '.join(sorted(fuels)) or 'none'})"
                for k in sc.fuel_price_usd_per_mmbtu if k not in fuels]
    return out


def check_overhead(inst: Instance) -> list[str]:
    """``overhead.reductions[*]``: unique ids, months inside the horizon, and the savings of all
    reductions together at most ``g_and_a_usd_per_month`` (G&A never turns into income)."""
    o = inst.overhead
    if o is None:
        return []
    out = _duplicates([r.id for r in o.reductions], "overhead.reductions")
    for j, r in enumerate(o.reductions):
        out += _outside(inst, r.earliest_month, f"overhead.reductions[{j}].earliest_month")
        out += _outside(inst, r.latest_month, f"overhead.reductions[{j}].latest_month")
    saved = sum(r.saving_usd_per_month for r in o.reductions)
    if saved > o.g_and_a_usd_per_month * (1 + 1e-12):
        out.append(f"overhead.reductions: together they save {saved:g} USD per month, more than g_and_a_usd_per_month "
                   f"{o.g_and_a_usd_per_month:g}")
    return out


def check_hedges(inst: Instance) -> list[str]:
    """``hedges.forwards[*]``: unique ids; trade, first and last months inside the horizon."""
    h = inst.hedges
    if h is None:
        return []
    out = _duplicates([f.id for f in h.forwards], "hedges.forwards")
    for j, f in enumerate(h.forwards):
        for k in ("trade_month", "first_month", "last_month"):
            out += _outside(inst, getattr(f, k), f"hedges.forwards[{j}].{k}")
    return out


def _staged(inst: Instance) -> bool:
    """A tree other than the two-stage form (one branch month, at the horizon start)."""
    t = inst.tree
    return t is not None and (len(t.branch_months) > 1 or month_ordinal(t.branch_months[0]) != month_ordinal(inst.horizon.start_month))


def check_levers_on_tree(inst: Instance) -> list[str]:
    """The mining and power levers (DESIGN section 12: ``markets``, ``overhead``, ``hedges``,
    ``sites[*].mining_overhead``, ``sites[*].ownership_share`` < 1, and on owned generation
    ``fuel``, ``capacity_revenue_usd_per_mw_year``, ``feeds``, ``assumed_debt``) are modelled in
    the two-stage form only (their variables are indexed by scenario, not by tree node): on a
    staged tree each one in use is refused (models/trees.md, "Known gaps")."""
    if not _staged(inst):
        return []
    why = "not supported on multistage trees yet (the levers are two-stage only; models/trees.md, Known gaps)"
    used = []
    if inst.markets:
        used.append("markets")
    if inst.overhead is not None:
        used.append("overhead")
    if inst.hedges is not None:
        used.append("hedges")
    for i, s in enumerate(inst.sites):
        if s.mining_overhead is not None:
            used.append(f"sites[{i}].mining_overhead")
        if s.ownership_share != 1.0:
            used.append(f"sites[{i}].ownership_share")
    for i, c in enumerate(inst.contracts):
        if c.kind != "owned_generation":
            continue
        if c.fuel is not None:
            used.append(f"contracts[{i}].fuel")
        if c.capacity_revenue_usd_per_mw_year > 0:
            used.append(f"contracts[{i}].capacity_revenue_usd_per_mw_year")
        if c.feeds:
            used.append(f"contracts[{i}].feeds")
        if c.assumed_debt is not None:
            used.append(f"contracts[{i}].assumed_debt")
    return [f"{u}: {why}" for u in used]
def check_hpc_levers(inst: Instance) -> list[str]:
    """HPC growth levers name what exists: ``sites[*].new_builds[*].requires_grid_expansion`` a grid
    expansion of the same site, ``requires_contract`` a contract at the same site, ``earliest_month``
    inside the horizon; ``gpu_cloud.options[*]`` unique ids, known ``sites``, months inside the
    horizon; ``leases[*].gpu_option`` a GPU option (and ``gpu_cloud`` given); ``policy.tenant_limits[*].tenant``
    a tenant of some lease, once."""
    out = []
    contracts = {c.id: c for c in inst.contracts}
    for i, s in enumerate(inst.sites):
        gx = {g.id for g in s.grid_expansions}
        for j, b in enumerate(s.new_builds):
            where = f"sites[{i}].new_builds[{j}]"
            if b.requires_grid_expansion is not None and b.requires_grid_expansion not in gx:
                out.append(f"{where}.requires_grid_expansion: {b.requires_grid_expansion!r} is not a grid expansion of site {s.id!r}")
            c = contracts.get(b.requires_contract) if b.requires_contract is not None else None
            if b.requires_contract is not None and (c is None or c.site != s.id):
                out.append(f"{where}.requires_contract: {b.requires_contract!r} is not a contract at site {s.id!r}")
            out += _outside(inst, b.earliest_month, f"{where}.earliest_month")
    options = inst.gpu_cloud.options if inst.gpu_cloud is not None else []
    out += _duplicates([o.id for o in options], "gpu_cloud.options")
    for k, o in enumerate(options):
        for sid in o.sites or []:
            if sid not in inst.site_by_id:
                out.append(f"gpu_cloud.options[{k}].sites: unknown site {sid!r}")
        out += _outside(inst, o.first_month, f"gpu_cloud.options[{k}].first_month")
        out += _outside(inst, o.last_month, f"gpu_cloud.options[{k}].last_month")
    ids = {o.id for o in options}
    for i, l in enumerate(inst.leases):
        if l.gpu_option is not None and l.gpu_option not in ids:
            out.append(f"leases[{i}].gpu_option: {l.gpu_option!r} is not an option of gpu_cloud")
    tenants = {l.tenant_id for l in inst.leases}
    seen: set[str] = set()
    for i, lim in enumerate(inst.policy.tenant_limits):
        if lim.tenant not in tenants:
            out.append(f"policy.tenant_limits[{i}].tenant: {lim.tenant!r} is not the tenant of any lease")
        if lim.tenant in seen:
            out.append(f"policy.tenant_limits[{i}].tenant: {lim.tenant!r} is limited twice")
        seen.add(lim.tenant)
    return out


def check_levers_two_stage(inst: Instance) -> list[str]:
    """The HPC growth levers are built in the two-stage form only (their variables and schedules
    carry no tree node): on a staged tree (``_staged``: more than one branch month, or one after the
    horizon start, whose months before it the root holds) every lever field in use is refused, one sentence per field (models/trees.md, "Known gaps")."""
    if not _staged(inst):
        return []
    why = "not supported on multistage trees yet (the HPC levers are two-stage only; models/trees.md, Known gaps)"
    out = [f"sites[{i}].new_builds: {why}" for i, s in enumerate(inst.sites) if s.new_builds]
    if inst.gpu_cloud is not None:
        out.append(f"gpu_cloud: {why}")
    lever_fields = (("tranches", lambda l: l.tranches is not None),
                    ("delay_damages_usd_per_mw_month", lambda l: l.delay_damages_usd_per_mw_month is not None),
                    ("credit", lambda l: l.credit is not None),
                    ("renewals", lambda l: l.renewals is not None),
                    ("prepayment_share", lambda l: l.prepayment_share > 0),
                    ("tenant_capex_share", lambda l: l.tenant_capex_share > 0),
                    ("gpu_option", lambda l: l.gpu_option is not None))
    for i, l in enumerate(inst.leases):
        out += [f"leases[{i}].{name}: {why}" for name, used in lever_fields if used(l)]
    out += [f"scenarios[{i}].handover_delay_months: {why}" for i, sc in enumerate(inst.scenarios) if sc.handover_delay_months > 0]
    if inst.policy.tenant_limits:
        out.append(f"policy.tenant_limits: {why}")
    return out


CHECKS: tuple[Callable[[Instance], list[str]], ...] = (
    check_probabilities,
    check_unique_ids,
    check_market_prices,
    check_series_ranges,
    check_site_months,
    check_installed_units,
    check_purchase_options,
    check_contracts,
    check_leases,
    check_budget_years,
    check_fixed_decisions,
    check_tree,
    check_fixed_decisions_once,
    check_financing,
    check_markets,
    check_plants,
    check_overhead,
    check_hedges,
    check_levers_on_tree,
    check_hpc_levers,
    check_levers_two_stage,
)


def run_checks(inst: Instance) -> list[str]:
    """Every rule's sentences, in ``CHECKS`` order."""
    out: list[str] = []
    for check in CHECKS:
        out += check(inst)
    return out


# ---------------------------------------------------------------- plain impossibilities (warnings)
# Not errors: the instance is valid and solves, but part of it can never be used. Each warn_*
# returns sentences starting with the field path; ``plain_impossibilities`` runs them all and
# ``optimizer validate`` prints them as "warning:" lines. Each is conservative: it counts in
# months, and a quarterly horizon only rounds lead times up, so a warning is never a false alarm.


def _reachable_hpc_mw(site) -> float:
    """HPC critical-IT MW a site can ever hold: its HPC racks, every block it can convert and every
    HPC rack its new-build options can add."""
    racks = site.hpc_racks + (site.max_conversion_blocks * site.conversion.racks_per_block if site.conversion else 0)
    return (racks + site.max_built_racks("hpc")) * site.hpc_mw_per_rack


def _hpc_ready_month(inst: Instance, site, mw: float) -> int | None:
    """First month ordinal ``mw`` of HPC IT can be in place at ``site`` (None: never)."""
    tl = _timeline(inst)
    if site.hpc_racks * site.hpc_mw_per_rack >= mw - 1e-9:
        return tl.start
    if _reachable_hpc_mw(site) < mw - 1e-9:
        return None
    starts = [(c.earliest_month, c.lead_months) for c in [site.conversion] if c is not None]
    starts += [(b.earliest_month, b.lead_months) for b in site.new_builds if b.use == "hpc" and b.max_blocks > 0]
    if not starts:
        return None
    return min(max(tl.start, month_ordinal(e) if e else tl.start) + lead for e, lead in starts)


def warn_lease_capacity(inst: Instance) -> list[str]:
    """``leases[*].it_mw`` fits an eligible site's reachable HPC capacity (its HPC racks plus every
    block it can convert, times kW per rack); a splittable lease, all eligible sites together.
    A handover window that closes before any site able to host the lease can have its HPC racks
    ready (conversion ``earliest_month`` + ``lead_months``), without ``late_penalty``, is reported too."""
    out = []
    for i, l in enumerate(inst.leases):
        sites = [inst.site_by_id[s] for s in inst.eligible_sites(l) if s in inst.site_by_id]
        if not sites:
            continue
        cap = {s.id: _reachable_hpc_mw(s) for s in sites}
        best = max(cap, key=cap.get)
        if l.splittable and l.it_mw > sum(cap.values()) + 1e-9:
            out.append(f"leases[{i}]: {l.it_mw:g} MW of IT exceeds the {sum(cap.values()):g} MW all eligible sites can reach "
                       "together (HPC racks plus every convertible block); the lease can never be signed")
            continue
        if not l.splittable and l.it_mw > cap[best] + 1e-9:
            out.append(f"leases[{i}]: {l.it_mw:g} MW of IT cannot fit any eligible site: the most HPC capacity one can reach "
                       f"is {cap[best]:g} MW ({best}: HPC racks plus every convertible block); the lease can never be signed")
            continue
        if l.late_penalty_usd_per_mw_month is None and not l.splittable:
            ready = [m for m in (_hpc_ready_month(inst, s, l.it_mw) for s in sites) if m is not None]
            if ready and min(ready) > month_ordinal(l.window_end):
                out.append(f"leases[{i}].window_end: {l.window_end}, but no eligible site can have {l.it_mw:g} MW of HPC racks "
                           f"ready before {month_label(min(ready))} (conversion or new-build earliest month plus lead time); "
                           "the lease can never be signed (a late_penalty_usd_per_mw_month would allow a late hand-over)")
    return out


def warn_conversions(inst: Instance) -> list[str]:
    """A site's ``conversion`` can convert at least one block inside the horizon: ``racks_per_block``
    does not exceed its mining racks, ``max_blocks`` is not 0, and a block started at the earliest
    month completes (``lead_months`` later) inside the horizon."""
    tl = _timeline(inst)
    out = []
    for i, s in enumerate(inst.sites):
        c = s.conversion
        if c is None:
            continue
        if c.racks_per_block > s.mining_racks:
            out.append(f"sites[{i}].conversion.racks_per_block: {c.racks_per_block} exceeds the site's {s.mining_racks} mining "
                       "racks; no block can be converted")
        elif c.max_blocks == 0:
            out.append(f"sites[{i}].conversion.max_blocks: 0; no block can be converted")
        else:
            first = max(tl.start, month_ordinal(c.earliest_month) if c.earliest_month else tl.start)
            if first + c.lead_months > tl.end:
                out.append(f"sites[{i}].conversion.lead_months: a block started in {month_label(first)} is ready only in "
                           f"{month_label(first + c.lead_months)}, after the horizon ends ({month_label(tl.end)}); no block can be converted")
    return out


def warn_late_options(inst: Instance) -> list[str]:
    """``fleet.purchase_options[*]`` and ``sites[*].grid_expansions[*]`` can deliver inside the
    horizon: the first order month plus ``lead_months`` is not after the horizon end."""
    tl = _timeline(inst)
    out = []
    for i, p in enumerate(inst.fleet.purchase_options):
        first = month_ordinal(p.first_month)
        if first + p.lead_months > tl.end:
            out.append(f"fleet.purchase_options[{i}].lead_months: units ordered in {p.first_month} arrive in "
                       f"{month_label(first + p.lead_months)}, after the horizon ends ({month_label(tl.end)}); none can be bought")
    for i, s in enumerate(inst.sites):
        for j, g in enumerate(s.grid_expansions):
            first = max(tl.start, month_ordinal(g.earliest_month) if g.earliest_month else tl.start)
            if first + g.lead_months > tl.end:
                out.append(f"sites[{i}].grid_expansions[{j}].lead_months: an expansion started in {month_label(first)} is ready "
                           f"only in {month_label(first + g.lead_months)}, after the horizon ends ({month_label(tl.end)})")
    return out


WARNINGS: tuple[Callable[[Instance], list[str]], ...] = (
    warn_lease_capacity,
    warn_conversions,
    warn_late_options,
)


def plain_impossibilities(inst: Instance) -> list[str]:
    """Parts of a valid instance that can never be used (a lease no site can host, an option that
    cannot deliver inside the horizon), as sentences starting with the field path."""
    out: list[str] = []
    for warn in WARNINGS:
        out += warn(inst)
    return out
