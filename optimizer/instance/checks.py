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
    """Every scenario gives ``power_price_usd_per_mwh`` for each market a site is in (``sites[*].market``)."""
    markets = {s.market for s in inst.sites}
    out = []
    for i, sc in enumerate(inst.scenarios):
        missing = sorted(markets - set(sc.power_price_usd_per_mwh))
        if missing:
            out.append(f"scenarios[{i}].power_price_usd_per_mwh: no price for market(s) {', '.join(missing)}")
    return out


def check_series_signs(inst: Instance) -> list[str]:
    """``scenarios[*].btc_price_usd`` and ``network_hashrate_eh_s`` are > 0 and
    ``fees_btc_per_block`` >= 0 in every month of the horizon."""
    tl = _timeline(inst)
    out = []
    for i, sc in enumerate(inst.scenarios):
        for fname in ("btc_price_usd", "network_hashrate_eh_s"):
            if getattr(sc, fname).min_value(tl.start, tl.n_months) <= 0:
                out.append(f"scenarios[{i}].{fname}: must be > 0 in every month")
        if sc.fees_btc_per_block.min_value(tl.start, tl.n_months) < 0:
            out.append(f"scenarios[{i}].fees_btc_per_block: must be >= 0 in every month")
    return out


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
    expansions of that site; their months lie inside the horizon; events that happen give a month."""
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


CHECKS: tuple[Callable[[Instance], list[str]], ...] = (
    check_probabilities,
    check_unique_ids,
    check_market_prices,
    check_series_signs,
    check_site_months,
    check_installed_units,
    check_purchase_options,
    check_contracts,
    check_leases,
    check_budget_years,
    check_fixed_decisions,
    check_tree,
    check_financing,
)


def run_checks(inst: Instance) -> list[str]:
    """Every rule's sentences, in ``CHECKS`` order."""
    out: list[str] = []
    for check in CHECKS:
        out += check(inst)
    return out
