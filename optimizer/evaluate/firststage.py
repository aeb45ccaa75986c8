"""First-stage state of a plan: what its investment decisions imply, period by period.

``build_state`` rebuilds ownership, racks (mining, converting, HPC), grid capacity, installed
ASIC units, running leases, signed contracts and the scenario-independent cash items from the
plan's first-stage tables, and lists every first-stage rule of models/economics.md the plan
breaks, one sentence each. Plain numpy, no Pyomo. Unknown ids or bad months never raise: they
become violation sentences and the row is skipped. Used by the evaluator, the operating rule
and the baselines.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from optimizer.economics.data import Data, lease_at
from optimizer.economics.ledger import PORTFOLIO
from optimizer.instance.schema import OwnedGeneration
from optimizer.kernel.timeline import month_label, month_ordinal
from optimizer.plan import Plan

REL_TOL = 1e-6


def tol(x):
    """Absolute tolerance for a comparison against ``x`` (1e-6, relative above 1); arrays too."""
    return REL_TOL * np.maximum(1.0, np.abs(x))


def fmt(x: float) -> str:
    """Numbers in sentences: 6 significant digits, thousands separators from 100,000 up."""
    x = float(x)
    if abs(x) >= 1e5:
        return f"{x:,.0f}"
    s = f"{x:.6g}"
    return "0" if s == "-0" else s


@dataclass
class LeaseRun:
    """One (lease, site) row of the plan: the share of a signed lease hosted at a site. Money and
    energy arrays are [W, T] (a lease's schedule may differ by scenario: construction delays,
    holder-mode renewals; ``economics.leases``); racks are first stage."""

    lease: str
    site: str
    tau: int                       # hand-over period
    share: float
    it_mw: float                   # critical-IT MW at this site (lease it_mw x share)
    racks: np.ndarray              # [T] HPC rack positions held (reserved for every tranche; 0 for a GPU cloud contract)
    active: np.ndarray             # [T] bool, capacity reserved in the period
    it_mwh: np.ndarray             # [W, T] critical-IT MWh of the tenant's load (before PUE)
    rent_usd: np.ndarray           # [W, T] rent received of this share
    prepayment_usd: np.ndarray     # [W, T] prepayments received
    credit_loss_usd: np.ndarray    # [W, T] expected rent lost to tenant default (>= 0)
    opex_usd: np.ndarray           # [W, T] lease opex of this share
    damages_usd: np.ndarray        # [W, T] delay damages paid (>= 0)
    penalty_usd: float             # late hand-over penalty of this share, paid in tau
    terminal_usd: np.ndarray       # [W] terminal_lease_noi of this share (Data.lease_terminal_usd x share; 0 if not counted)
    months_after: int              # months the lease holds capacity after the horizon end (its longest tranche)
    end_racks: float               # HPC racks held at the end by tranches reserved past the horizon
    end_racks_back: float          # those racks x the reversion factor of each tranche's months after the end
    runs_past_horizon: bool
    passthrough: bool
    gpu_option: str | None         # a GPU cloud contract: the GPUs of this option it holds
    held_mw: np.ndarray            # [T] critical-IT MW reserved for the tenant (its tranches; a GPU contract's GPUs)

    @property
    def gpu_mw(self) -> np.ndarray:
        """[T] MW of GPUs held for a GPU cloud contract (0 for a colocation lease)."""
        return self.held_mw if self.gpu_option is not None else np.zeros_like(self.held_mw)


@dataclass
class GpuRun:
    """GPUs of one option at one site: what the plan's purchases put in service."""

    option: str
    site: str
    online_mw: np.ndarray          # [T] MW of critical IT of GPUs in service


@dataclass
class State:
    data: Data
    violations: list[str] = field(default_factory=list)
    own: dict[str, np.ndarray] = field(default_factory=dict)              # [T] 1.0 when owned
    blocks: dict[str, np.ndarray] = field(default_factory=dict)           # [T] blocks started
    mining_racks: dict[str, np.ndarray] = field(default_factory=dict)     # [T]
    converting_racks: dict[str, np.ndarray] = field(default_factory=dict)  # [T] left mining, not yet HPC
    hpc_racks: dict[str, np.ndarray] = field(default_factory=dict)        # [T]
    grid_mw: dict[str, np.ndarray] = field(default_factory=dict)          # [T]
    units: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)      # (site, model) -> [T] installed
    retired: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)    # [T] retired in period
    delivered: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # [T] purchases installed from period
    leases: list[LeaseRun] = field(default_factory=list)
    gpus: dict[tuple[str, str], GpuRun] = field(default_factory=dict)       # (option, site) -> GPUs in service
    built: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (site, new-build option) -> [T] blocks started
    gpu_held: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (option, site) -> [T] MW held for GPU contracts
    signed: dict[str, bool] = field(default_factory=dict)                 # contract -> signed
    contract_hours: dict[str, np.ndarray] = field(default_factory=dict)   # [T] hours a contract may deliver
    items: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (site, item) -> [T] signed USD
    assets: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # (site, asset class) -> [T] capex spent, USD >= 0
    spend_by_year: dict[int, float] = field(default_factory=dict)         # capex + purchases per calendar year (company's share)
    mine_on: dict[str, np.ndarray] = field(default_factory=dict)          # sites with mining_overhead -> [T] 1.0 while mining
    exit_at: dict[str, int] = field(default_factory=dict)                 # site -> period mining stops (plan.mining_exits)
    cuts: dict[str, int] = field(default_factory=dict)                    # G&A reduction -> period taken
    hedged_ph: dict[str, np.ndarray] = field(default_factory=dict)        # forward -> [T] PH/s sold
    # aggregated decisions, for fixed_decisions and the baselines
    conv_at: dict[tuple[str, int], float] = field(default_factory=dict)   # (site, t) -> blocks
    lease_rows: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)  # lease -> [(site, tau)]
    purchase_at: dict[tuple[str, str, int], float] = field(default_factory=dict)  # (option, site, t) -> units
    events: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (site, sale|acquisition) -> [t]
    expansions: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (site, option) -> [t]

    @property
    def T(self) -> int:
        return self.data.T

    def label(self, t: int) -> str:
        return self.data.labels[t]

    def add_item(self, site: str, item: str, t: int, usd: float, asset: str | None = None) -> None:
        """Add a first-stage cash line; a capex line names its depreciation ``asset`` class."""
        if 0 <= t < self.T and usd != 0.0:
            self.items.setdefault((site, item), np.zeros(self.T))[t] += usd
            if asset is not None:
                self.assets.setdefault((site, asset), np.zeros(self.T))[t] -= usd

    def add_items(self, site: str, item: str, usd: np.ndarray) -> None:
        """Add a first-stage cash line given for every period ([T], USD signed)."""
        for t in np.nonzero(usd)[0]:
            self.add_item(site, item, int(t), float(usd[t]))

    def hpc_mw(self, site: str) -> np.ndarray:
        return self.hpc_racks[site] * self.data.inst.site_by_id[site].hpc_mw_per_rack

    def site_leases(self, site: str) -> list[LeaseRun]:
        return [r for r in self.leases if r.site == site]

    def gpu_mw(self, site: str) -> np.ndarray:
        """[T] MW of GPUs in service at ``site`` (every option)."""
        return sum((g.online_mw for g in self.gpus.values() if g.site == site), np.zeros(self.T))

    def gpu_racks(self, site: str) -> np.ndarray:
        """[T] HPC rack positions the GPUs in service at ``site`` take."""
        return self.gpu_mw(site) * 1000.0 / self.data.inst.site_by_id[site].hpc_kw_per_rack

    def hpc_mwh(self, site: str) -> np.ndarray:
        """[W, T] firm HPC energy at ``site``, cooling included: the leases' tenants (a GPU cloud
        contract's load is its GPUs') and the GPUs in service."""
        pue = self.data.inst.site_by_id[site].pue_hpc
        out = np.zeros((self.data.W, self.T))
        for r in self.site_leases(site):
            if r.gpu_option is None:
                out = out + pue * r.it_mwh
        return out + (pue * self.gpu_mw(site) * self.data.hours)[None, :]

    def leased_racks(self, site: str) -> np.ndarray:
        """[T] HPC rack positions held by leases (GPUs excluded)."""
        out = np.zeros(self.T)
        for r in self.site_leases(site):
            out += r.racks
        return out

    def used_racks(self, site: str) -> np.ndarray:
        """[T] HPC rack positions held by leases and GPUs in service."""
        return self.leased_racks(site) + self.gpu_racks(site)

    def site_units(self, site: str) -> np.ndarray:
        out = np.zeros(self.T)
        for (s, _m), u in self.units.items():
            if s == site:
                out += u
        return out


def build_state(data: Data, plan: Plan) -> State:
    st = State(data)
    _init_sites(st)
    _site_events(st, plan)
    _conversions(st, plan)
    _grid_expansions(st, plan)
    _contracts(st, plan)
    _new_builds(st, plan)
    _fleet(st, plan)
    _gpus(st, plan)
    _mining_exits(st, plan)
    _overhead(st, plan)
    _hedges(st, plan)
    _leases(st, plan)
    _tenant_capex(st)
    _gpu_cover(st)
    _policy(st)
    _fixed_decisions(st)
    return st


# ---------------------------------------------------------------- helpers


def report(st: State, bad: np.ndarray, sentence) -> None:
    """One sentence for the first offending period of a [T] mask, with a count of the others."""
    idx = np.nonzero(bad)[0]
    if len(idx):
        msg = sentence(int(idx[0]))
        if len(idx) > 1:
            msg += f" (and {len(idx) - 1} more period{'s' if len(idx) > 2 else ''})"
        st.violations.append(msg)


def period_of(st: State, month: str, where: str) -> int | None:
    """Period index of a plan month, or None (and a violation) when malformed or outside the horizon."""
    try:
        o = month_ordinal(str(month))
    except ValueError:
        st.violations.append(f"{where}: month {month!r} is not a month written YYYY-MM")
        return None
    t = st.data.tl.period_of_month(o)
    if not 0 <= t < st.T:
        st.violations.append(f"{where}: month {month} is outside the horizon {st.label(0)}..{month_label(st.data.tl.end)}")
        return None
    return t


def _number(st: State, x: float, where: str, what: str) -> float | None:
    if not np.isfinite(x):
        st.violations.append(f"{where}: {what} is not a number")
        return None
    if x < -tol(x):
        st.violations.append(f"{where}: {what} {fmt(x)} is negative")
        return None
    return max(float(x), 0.0)


def _known(st: State, value: str, known, what: str, where: str) -> bool:
    if value not in known:
        st.violations.append(f"{where}: unknown {what} {value!r}")
        return False
    return True


def _spread(st: State, site: str, item: str, start: int, lead: int, total_usd: float, asset: str) -> None:
    """Capex spread evenly over max(lead, 1) periods from ``start`` (periods past the horizon dropped)."""
    periods = st.data.capex_periods(start, lead)
    for t in periods:
        st.add_item(site, item, t, -total_usd / len(periods), asset)
        if t < st.T:
            y = int(st.data.period_years[t])
            st.spend_by_year[y] = st.spend_by_year.get(y, 0.0) + total_usd / len(periods) * st.data.share(site)


# ---------------------------------------------------------------- sites


def _init_sites(st: State) -> None:
    T = st.T
    for s in st.data.inst.sites:
        st.own[s.id] = np.full(T, 1.0 if st.data.owned_at_start(s.id) else 0.0)
        st.blocks[s.id] = np.zeros(T)
        st.grid_mw[s.id] = np.full(T, float(s.grid_interconnect_mw))


def _site_events(st: State, plan: Plan) -> None:
    inst = st.data.inst
    for i, r in enumerate(plan.site_events.itertuples(index=False)):
        where = f"plan.site_events row {i}"
        if not _known(st, r.site, inst.site_by_id, "site", where):
            continue
        if r.event not in ("sale", "acquisition"):
            st.violations.append(f"{where}: unknown event {r.event!r} (use sale or acquisition)")
            continue
        t = period_of(st, r.month, where)
        if t is None:
            continue
        st.events.setdefault((r.site, r.event), []).append(t)
        site = inst.site_by_id[r.site]
        lab = st.label(t)
        if r.event == "sale":
            allowed = st.data.sale_periods(r.site)
            if site.sale is None:
                st.violations.append(f"site {r.site} {lab}: sold but the site has no sale option")
                continue
            if t not in allowed:
                st.violations.append(f"site {r.site} {lab}: sold before the sale option's earliest month {site.sale.earliest_month}")
            st.own[r.site][t:] = 0.0
            st.add_item(r.site, "site_sales_usd", t, site.sale.price_usd)
        else:
            if site.acquisition is None:
                st.violations.append(f"site {r.site} {lab}: acquired but the site has no acquisition option")
                continue
            if t not in st.data.acquisition_periods(r.site):
                st.violations.append(f"site {r.site} {lab}: acquired before it is available ({site.acquisition.available_from})")
            st.own[r.site][t:] = 1.0
            st.add_item(r.site, "acquisitions_usd", t, -site.acquisition.price_usd, "sites")
    for (sid, ev), ts in st.events.items():
        if len(ts) > 1:
            months = ", ".join(st.label(t) for t in sorted(ts))
            st.violations.append(f"site {sid}: {ev} listed {len(ts)} times ({months}); it can happen once")


def _conversions(st: State, plan: Plan) -> None:
    inst, data = st.data.inst, st.data
    for i, r in enumerate(plan.conversions.itertuples(index=False)):
        where = f"plan.conversions row {i}"
        if not _known(st, r.site, inst.site_by_id, "site", where):
            continue
        t = period_of(st, r.month, where)
        b = _number(st, r.blocks, where, "blocks")
        if t is None or b is None:
            continue
        site, lab = inst.site_by_id[r.site], st.label(t)
        if site.conversion is None:
            st.violations.append(f"site {r.site} {lab}: {fmt(b)} conversion blocks started but the site has no conversion option")
            continue
        if abs(b - round(b)) > 1e-6:
            st.violations.append(f"site {r.site} {lab}: conversion blocks must be whole, got {fmt(b)}")
        st.blocks[r.site][t] += b
        st.conv_at[(r.site, t)] = st.conv_at.get((r.site, t), 0.0) + b
        if b <= 0:
            continue
        lead = data.lead_periods(site.conversion.lead_months)
        first = max(data.period(site.conversion.earliest_month), 0)
        if t < first:
            st.violations.append(f"site {r.site} {lab}: conversion started before its earliest month {site.conversion.earliest_month}")
        if t + lead > st.T - 1:
            st.violations.append(
                f"site {r.site} {lab}: conversion of {fmt(b)} blocks would finish in "
                f"{month_label(int(data.tl.period_start_months[0]) + (t + lead) * data.tl.period_months)}, "
                f"after the horizon's last period {st.label(st.T - 1)} (lead {site.conversion.lead_months} months)")
        if st.own[r.site][t] < 0.5:
            st.violations.append(f"site {r.site} {lab}: conversion started while the site is not owned")
        mw = b * site.block_it_mw
        _spread(st, r.site, "capex_usd", t, lead, mw * site.conversion.capex_usd_per_mw, "hpc_conversion")
    for site in inst.sites:
        b = st.blocks[site.id]
        cum = np.cumsum(b)
        if site.conversion is None:
            st.mining_racks[site.id] = np.full(st.T, float(site.mining_racks))
            st.converting_racks[site.id] = np.zeros(st.T)
            st.hpc_racks[site.id] = np.full(st.T, float(site.hpc_racks))
            continue
        rpb = site.conversion.racks_per_block
        lead = data.lead_periods(site.conversion.lead_months)
        ready = np.zeros(st.T)
        if lead < st.T:
            ready[lead:] = cum[: st.T - lead]
        st.mining_racks[site.id] = site.mining_racks - rpb * cum
        st.hpc_racks[site.id] = site.hpc_racks + rpb * ready
        st.converting_racks[site.id] = rpb * (cum - ready)
        total = cum[-1]
        cap = site.conversion.max_blocks
        if cap is not None and total > cap + tol(cap):
            st.violations.append(f"site {site.id}: {fmt(total)} conversion blocks started, more than max_blocks {cap}")
        over = np.nonzero(st.mining_racks[site.id] < -tol(site.mining_racks))[0]
        if len(over):
            t = over[0]
            st.violations.append(
                f"site {site.id} {st.label(t)}: conversions started by then take {fmt(rpb * cum[t])} racks "
                f"but the site has only {site.mining_racks} mining racks")


def _grid_expansions(st: State, plan: Plan) -> None:
    inst, data = st.data.inst, st.data
    for i, r in enumerate(plan.grid_expansions.itertuples(index=False)):
        where = f"plan.grid_expansions row {i}"
        if not _known(st, r.site, inst.site_by_id, "site", where):
            continue
        site = inst.site_by_id[r.site]
        options = {g.id: g for g in site.grid_expansions}
        if not _known(st, r.option, options, f"grid expansion option of site {r.site}", where):
            continue
        t = period_of(st, r.month, where)
        if t is None:
            continue
        g, lab = options[r.option], st.label(t)
        st.expansions.setdefault((r.site, r.option), []).append(t)
        lead = data.lead_periods(g.lead_months)
        if t < max(data.period(g.earliest_month), 0):
            st.violations.append(f"grid expansion {r.option} at site {r.site} {lab}: started before its earliest month {g.earliest_month}")
        if t + lead > st.T - 1:
            st.violations.append(f"grid expansion {r.option} at site {r.site} {lab}: would be online after the horizon's last period {st.label(st.T - 1)} (lead {g.lead_months} months)")
        if st.own[r.site][t] < 0.5:
            st.violations.append(f"grid expansion {r.option} at site {r.site} {lab}: started while the site is not owned")
        if t + lead <= st.T - 1:
            st.grid_mw[r.site][t + lead:] += g.mw
        _spread(st, r.site, "capex_usd", t, lead, g.capex_usd, "grid_expansion")
    for (sid, oid), ts in st.expansions.items():
        if len(ts) > 1:
            st.violations.append(f"grid expansion {oid} at site {sid}: started {len(ts)} times ({', '.join(st.label(t) for t in sorted(ts))}); it can be built once")


# ---------------------------------------------------------------- new-build capacity


def _new_builds(st: State, plan: Plan) -> None:
    """Blocks of new-build options started (plan.new_builds): rack positions in service ``lead``
    periods after the start (HPC racks or mining racks), capex spread over max(lead, 1) periods."""
    inst, data, T = st.data.inst, st.data, st.T
    for i, r in enumerate(plan.new_builds.itertuples(index=False)):
        where = f"plan.new_builds row {i}"
        if not _known(st, r.site, inst.site_by_id, "site", where):
            continue
        if not _known(st, r.option, {b.id for b in inst.site_by_id[r.site].new_builds}, f"new-build option of site {r.site}", where):
            continue
        t = period_of(st, r.month, where)
        b = _number(st, r.blocks, where, "blocks")
        if t is None or b is None or b <= 0:
            continue
        bd = data.builds[(r.site, r.option)]
        o, lab = bd.option, st.label(t)
        name = f"new build {r.option} at site {r.site} {lab}"
        if abs(b - round(b)) > 1e-6:
            st.violations.append(f"{name}: blocks must be whole, got {fmt(b)}")
        if o.earliest_month is not None and t < max(data.period(o.earliest_month), 0):
            st.violations.append(f"{name}: started before its earliest month {o.earliest_month}")
        if t + bd.lead > T - 1:
            st.violations.append(f"{name}: racks would be in service after the horizon's last period {st.label(T - 1)} (lead {o.lead_months} months)")
        if st.own[r.site][t] < 0.5:
            st.violations.append(f"{name}: started while the site is not owned")
        if o.requires_grid_expansion is not None and not any(u <= t for u in st.expansions.get((r.site, o.requires_grid_expansion), [])):
            st.violations.append(f"{name}: requires grid expansion {o.requires_grid_expansion} started by then")
        if o.requires_contract is not None and not st.signed.get(o.requires_contract, False):
            st.violations.append(f"{name}: requires contract {o.requires_contract}, which is not signed")
        st.built.setdefault((r.site, r.option), np.zeros(T))[t] += b
        _spread(st, r.site, "new_build_capex_usd", t, bd.lead, b * bd.capex_usd_per_block, "new_build")
    for (sid, oid), blocks in st.built.items():
        bd = data.builds[(sid, oid)]
        total = float(blocks.sum())
        if total > bd.option.max_blocks + tol(bd.option.max_blocks):
            st.violations.append(f"new build {oid} at site {sid}: {fmt(total)} blocks started, more than max_blocks {bd.option.max_blocks}")
        ready = np.zeros(T)
        if bd.lead < T:
            ready[bd.lead:] = np.cumsum(blocks)[: T - bd.lead]
        target = st.hpc_racks if bd.use == "hpc" else st.mining_racks
        target[sid] = target[sid] + bd.racks_per_block * ready


# ---------------------------------------------------------------- GPU cloud


def _gpus(st: State, plan: Plan) -> None:
    """GPU purchases (plan.gpu_purchases, MW of critical IT): paid when ordered, in service from
    ``lead`` periods later for ``life`` periods, salvaged when retired inside the horizon, valued
    at book value at the end (economics.hpc)."""
    inst, data, T = st.data.inst, st.data, st.T
    bought: dict[str, float] = defaultdict(float)
    for i, r in enumerate(plan.gpu_purchases.itertuples(index=False)):
        where = f"plan.gpu_purchases row {i}"
        if not (_known(st, r.option, data.gpus, "GPU option", where) and _known(st, r.site, inst.site_by_id, "site", where)):
            continue
        t = period_of(st, r.month, where)
        mw = _number(st, r.mw, where, "mw")
        if t is None or mw is None or mw <= 0:
            continue
        g = data.gpus[r.option]
        o, lab = g.option, st.label(t)
        name = f"GPU option {r.option} {lab}"
        bought[r.option] += mw
        if o.sites is not None and r.site not in o.sites:
            st.violations.append(f"{name}: site {r.site} may not host its GPUs (allowed: {', '.join(o.sites)})")
        if t not in g.periods:
            st.violations.append(f"{name}: ordered outside the option's months {o.first_month}..{o.last_month or st.label(T - 1)} "
                                 f"(GPUs must be in service inside the horizon; lead {o.lead_months} months)")
        run = st.gpus.setdefault((r.option, r.site), GpuRun(r.option, r.site, np.zeros(T)))
        for u in g.online(t):
            run.online_mw[u] += mw
        st.add_item(r.site, "gpu_purchases_usd", t, -mw * g.capex_usd_per_mw, "gpus")
        y = int(data.period_years[t])
        st.spend_by_year[y] = st.spend_by_year.get(y, 0.0) + mw * g.capex_usd_per_mw
        if g.retire_period(t) <= T - 1:
            st.add_item(r.site, "gpu_salvage_usd", g.retire_period(t), mw * g.salvage_usd_per_mw())
        if inst.gpu_cloud.terminal_book_value:
            st.add_item(r.site, "terminal_gpu_usd", T - 1, mw * g.book_value_end_usd_per_mw(t))
    for oid, mw in bought.items():
        cap = data.gpus[oid].option.max_mw
        if cap is not None and mw > cap + tol(cap):
            st.violations.append(f"GPU option {oid}: {fmt(mw)} MW bought, more than max_mw {fmt(cap)}")
    for (oid, sid), run in st.gpus.items():
        bad = (run.online_mw > tol(0)) & (st.own[sid] < 0.5)
        report(st, bad, lambda t, sid=sid, oid=oid: f"site {sid} {st.label(t)}: GPUs of option {oid} in service while the site is not owned")


def _gpu_cover(st: State) -> None:
    """GPU cloud contracts hold GPUs of their option in service at their site."""
    held: dict[tuple[str, str], np.ndarray] = {}
    for r in st.leases:
        if r.gpu_option is not None:
            held[(r.gpu_option, r.site)] = held.get((r.gpu_option, r.site), np.zeros(st.T)) + r.gpu_mw
    for (oid, sid), mw in held.items():
        run = st.gpus.get((oid, sid))
        have = run.online_mw if run is not None else np.zeros(st.T)
        report(st, mw > have + tol(have), lambda t, oid=oid, sid=sid, mw=mw, have=have: (
            f"site {sid} {st.label(t)}: GPU cloud contracts hold {fmt(mw[t])} MW of GPUs of option {oid} but only {fmt(have[t])} MW are in service"))
    st.gpu_held = held


# ---------------------------------------------------------------- fleet


def _fleet(st: State, plan: Plan) -> None:
    inst, data, T = st.data.inst, st.data, st.T
    models = inst.model_by_name
    options = {p.id: p for p in inst.fleet.purchase_options}
    for s in inst.sites:
        for m in models:
            st.delivered[(s.id, m)] = np.zeros(T)
            st.retired[(s.id, m)] = np.zeros(T)
    bought: dict[str, float] = defaultdict(float)
    for i, r in enumerate(plan.purchases.itertuples(index=False)):
        where = f"plan.purchases row {i}"
        if not (_known(st, r.option, options, "purchase option", where) and _known(st, r.site, inst.site_by_id, "site", where)):
            continue
        t = period_of(st, r.month, where)
        u = _number(st, r.units, where, "units")
        if t is None or u is None:
            continue
        p, lab = options[r.option], st.label(t)
        st.purchase_at[(r.option, r.site, t)] = st.purchase_at.get((r.option, r.site, t), 0.0) + u
        bought[r.option] += u
        if u <= 0:
            continue
        if p.sites is not None and r.site not in p.sites:
            st.violations.append(f"purchase option {r.option} {lab}: site {r.site} may not receive its units (allowed: {', '.join(p.sites)})")
        first = data.tl.period_of(p.first_month)
        last = T - 1 if p.last_month is None else data.tl.period_of(p.last_month)
        if not first <= t <= last:
            st.violations.append(f"purchase option {r.option} {lab}: ordered outside the option's months {p.first_month}..{p.last_month or st.label(T - 1)}")
        lead = data.lead_periods(p.lead_months)
        if t + lead > T - 1:
            st.violations.append(f"purchase option {r.option} {lab}: {fmt(u)} units would be delivered after the horizon's last period {st.label(T - 1)} (lead {p.lead_months} months)")
        else:
            st.delivered[(r.site, p.model)][t + lead] += u
        usd = u * p.usd_per_th * models[p.model].hashrate_th_s
        st.add_item(r.site, "asic_purchases_usd", t, -usd, "asics")
        y = int(data.period_years[t])
        st.spend_by_year[y] = st.spend_by_year.get(y, 0.0) + usd * data.share(r.site)
    for oid, u in bought.items():
        cap = options[oid].max_units
        if cap is not None and u > cap + tol(cap):
            st.violations.append(f"purchase option {oid}: {fmt(u)} units bought, more than max_units {fmt(cap)}")
    for i, r in enumerate(plan.retirements.itertuples(index=False)):
        where = f"plan.retirements row {i}"
        if not (_known(st, r.site, inst.site_by_id, "site", where) and _known(st, r.model, models, "ASIC model", where)):
            continue
        t = period_of(st, r.month, where)
        u = _number(st, r.units, where, "units")
        if t is None or u is None or u <= 0:
            continue
        if not inst.fleet.allow_retirement:
            st.violations.append(f"site {r.site} {st.label(t)}: {fmt(u)} units of model {r.model} retired but fleet.allow_retirement is false")
        st.retired[(r.site, r.model)][t] += u
        st.add_item(r.site, "salvage_usd", t, u * models[r.model].salvage_usd_per_unit)
    for s in inst.sites:
        for m in models:
            init = data.initial_units.get((s.id, m), 0.0)
            u = init + np.cumsum(st.delivered[(s.id, m)]) - np.cumsum(st.retired[(s.id, m)])
            st.units[(s.id, m)] = u
            neg = np.nonzero(u < -tol(init))[0]
            if len(neg):
                t = neg[0]
                st.violations.append(
                    f"site {s.id} {st.label(t)}: retirements of model {m} exceed installed units "
                    f"({fmt(np.cumsum(st.retired[(s.id, m)])[t])} retired, {fmt(u[t] + np.cumsum(st.retired[(s.id, m)])[t])} installed or delivered)")
        total = st.site_units(s.id)
        positions = s.asics_per_rack * st.mining_racks[s.id]
        unowned = (st.own[s.id] < 0.5) & (total > tol(0))
        report(st, unowned, lambda t: f"site {s.id} {st.label(t)}: holds {fmt(total[t])} ASIC units while the site is not owned")
        report(st, ~unowned & (total > positions + tol(positions)), lambda t: (
            f"site {s.id} {st.label(t)}: {fmt(total[t])} installed units exceed {fmt(max(positions[t], 0))} ASIC positions "
            f"({fmt(max(st.mining_racks[s.id][t], 0))} mining racks x {s.asics_per_rack})"))


# ---------------------------------------------------------------- contracts


def _contracts(st: State, plan: Plan) -> None:
    inst, data = st.data.inst, st.data
    by_id = {c.id: c for c in inst.contracts}
    rows: dict[str, list[bool]] = defaultdict(list)
    for i, r in enumerate(plan.contracts.itertuples(index=False)):
        if _known(st, r.contract, by_id, "contract", f"plan.contracts row {i}"):
            rows[r.contract].append(bool(r.signed))
    for cid, vals in rows.items():
        if len(set(vals)) > 1:
            st.violations.append(f"contract {cid}: listed {len(vals)} times with different signed values")
        if not by_id[cid].optional and not vals[0]:
            st.violations.append(f"contract {cid}: is not optional and cannot be left unsigned")
    for c in inst.contracts:
        signed = (not c.optional) or any(rows.get(c.id, []))
        st.signed[c.id] = signed
        cd = data.contracts[c.id]
        st.contract_hours[c.id] = cd.active_hours * st.own[c.site] * float(signed)
        if signed:
            t0 = cd.start_period
            st.add_item(c.site, "contract_fees_usd", t0, -c.signing_fee_usd)
            if isinstance(c, OwnedGeneration) and c.optional:
                st.add_item(c.site, "acquisitions_usd", t0, -c.acquisition_price_usd, "owned_generation")
        if isinstance(c, OwnedGeneration):  # capacity revenue while owned: accredited MW x rate x months / 12
            st.add_items(c.site, "capacity_revenue_usd", data.lev.plants[c.id].capacity_usd * st.own[c.site] * float(signed))


# ---------------------------------------------------------------- overhead, mining exits, hedges


def _mining_exits(st: State, plan: Plan) -> None:
    """``plan.mining_exits``: a site with ``mining_overhead`` mines while owned until its exit month
    and never after; its overhead is paid every period it mines, its exit cost once, in the exit
    period, when it was mining just before and is still owned then (a sale ends mining at no exit cost)."""
    inst, data = st.data.inst, st.data
    for i, r in enumerate(plan.mining_exits.itertuples(index=False)):
        where = f"plan.mining_exits row {i}"
        if not _known(st, r.site, inst.site_by_id, "site", where):
            continue
        t = period_of(st, r.month, where)
        if t is None:
            continue
        if inst.site_by_id[r.site].mining_overhead is None:
            st.violations.append(f"site {r.site} {st.label(t)}: exits mining but the site has no mining_overhead to stop")
        elif r.site in st.exit_at:
            st.violations.append(f"site {r.site}: mining exit listed twice ({st.label(st.exit_at[r.site])}, {st.label(t)}); a site exits once")
        else:
            st.exit_at[r.site] = t
    L = data.tl.period_months
    for site in inst.sites:
        mo = site.mining_overhead
        if mo is None:
            continue
        on = st.own[site.id].copy()
        t0 = st.exit_at.get(site.id)
        if t0 is not None:
            on[t0:] = 0.0
        st.mine_on[site.id] = on
        st.add_items(site.id, "site_overhead_usd", -mo.usd_per_month * L * on)
        if t0 is not None:
            before = st.own[site.id][t0 - 1] if t0 > 0 else (1.0 if data.owned_at_start(site.id) else 0.0)
            if before > 0.5 and st.own[site.id][t0] > 0.5:
                st.add_item(site.id, "restructuring_usd", t0, -mo.exit_cost_usd)


def _overhead(st: State, plan: Plan) -> None:
    """``plan.overhead_cuts``: each reduction at most once, in one of its allowed periods; corporate
    G&A less the savings in effect (from lag periods after the cut), and the one-off cost of each cut."""
    lev = st.data.lev
    for i, r in enumerate(plan.overhead_cuts.itertuples(index=False)):
        where = f"plan.overhead_cuts row {i}"
        if not _known(st, r.reduction, lev.reductions, "G&A reduction (overhead.reductions)", where):
            continue
        t = period_of(st, r.month, where)
        if t is None:
            continue
        rd = lev.reductions[r.reduction]
        if r.reduction in st.cuts:
            st.violations.append(f"G&A reduction {r.reduction}: taken twice ({st.label(st.cuts[r.reduction])}, {st.label(t)}); it can be taken once")
            continue
        if t not in rd.periods:
            red = rd.reduction
            st.violations.append(f"G&A reduction {r.reduction} {st.label(t)}: outside its months "
                                 f"{red.earliest_month or st.label(0)}..{red.latest_month or st.label(st.T - 1)}")
        st.cuts[r.reduction] = t
    if lev.g_and_a_usd is None:
        return
    ga = -lev.g_and_a_usd.copy()
    for rid, t in st.cuts.items():
        rd = lev.reductions[rid]
        ga[t + rd.lag:] += rd.saving_usd[t + rd.lag:]
        st.add_item(PORTFOLIO, "restructuring_usd", t, -rd.one_off_usd)
    st.add_items(PORTFOLIO, "g_and_a_usd", ga)


def _hedges(st: State, plan: Plan) -> None:
    """``plan.hedges``: PH/s sold per forward and delivery period (summed over rows); the collateral,
    collateral_share x PH/s x price x delivery days, is posted in the trade period and returned in the
    delivery period. Payoffs and the cap on expected hashrate need the operations: the evaluator."""
    lev = st.data.lev
    for i, r in enumerate(plan.hedges.itertuples(index=False)):
        where = f"plan.hedges row {i}"
        if not _known(st, r.forward, lev.forwards, "hashprice forward (hedges.forwards)", where):
            continue
        t = period_of(st, r.month, where)
        x = _number(st, r.ph_s, where, "ph_s")
        if t is None or x is None or x <= 0:
            continue
        fd = lev.forwards[r.forward]
        if t not in fd.periods:
            f = fd.forward
            st.violations.append(f"hashprice forward {r.forward} {st.label(t)}: outside its delivery months {f.first_month}..{f.last_month}")
            continue
        st.hedged_ph.setdefault(r.forward, np.zeros(st.T))[t] += x
    for fid, ph in st.hedged_ph.items():
        fd = lev.forwards[fid]
        for t in np.nonzero(ph)[0]:
            c = fd.forward.collateral_share * fd.notional_usd_per_ph[t] * ph[t]
            if c > 0 and fd.trade_period != t:
                st.add_item(PORTFOLIO, "hedge_collateral_usd", fd.trade_period, -c)
                st.add_item(PORTFOLIO, "hedge_collateral_usd", int(t), c)


# ---------------------------------------------------------------- leases


def _lease_run(st: State, lid: str, sid: str, t: int, sh: float) -> LeaseRun:
    """The LeaseRun of ``sh`` of lease ``lid`` at ``sid`` handed over in ``t`` (its schedules are
    computed on the fly for a hand-over outside the window)."""
    data, inst = st.data, st.data.inst
    ld = lease_at(data, lid, t)
    l = ld.lease
    W = data.W
    keep_terminal = inst.horizon.terminal.lease_remaining_noi and ld.runs_past_horizon[t]
    scheds = [ld.schedule(t, w) for w in range(W)]

    def stack(attr):
        return np.stack([getattr(sc, attr) for sc in scheds]) * sh

    mw = ld.tranche_mw
    it_mwh = np.stack([mw @ sc.hours for sc in scheds]) * sh
    racks_k = data.tranche_racks(l, sid) * sh
    at_end = ld.tranche_months_after[t] > 0   # held past the end (reserved in the last period: economics/leases.py)
    end_racks = float(racks_k[at_end].sum())
    end_back = float(sum(racks_k[k] * data.reversion_factor(int(ld.tranche_months_after[t][k])) for k in np.nonzero(at_end)[0]))
    return LeaseRun(
        lease=lid, site=sid, tau=t, share=sh, it_mw=l.it_mw * sh,
        racks=data.tranche_racks(l, sid) @ ld.reserved[t] * sh, active=ld.reserved_any(t).astype(bool),
        it_mwh=it_mwh, rent_usd=stack("rent_usd"), prepayment_usd=stack("prepayment_usd"),
        credit_loss_usd=stack("credit_loss_usd"), opex_usd=stack("opex_usd"), damages_usd=stack("damages_usd"),
        penalty_usd=(l.late_penalty_usd_per_mw_month or 0.0) * l.it_mw * data.leases[lid].months_late.get(t, 0) * sh,
        terminal_usd=data.lease_terminal_usd(lid, t, sid) * sh if keep_terminal else np.zeros(W),
        months_after=ld.months_after[t], end_racks=end_racks, end_racks_back=end_back,
        runs_past_horizon=ld.runs_past_horizon[t], passthrough=l.power_passthrough, gpu_option=l.gpu_option, held_mw=(mw @ ld.reserved[t]) * sh,
    )


def _leases(st: State, plan: Plan) -> None:
    inst, data = st.data.inst, st.data
    groups: dict[str, list] = defaultdict(list)
    for i, r in enumerate(plan.leases.itertuples(index=False)):
        where = f"plan.leases row {i}"
        if not (_known(st, r.lease, data.leases, "lease", where) and _known(st, r.site, inst.site_by_id, "site", where)):
            continue
        t = period_of(st, r.month, where)
        sh = _number(st, r.share, where, "share")
        groups[r.lease].append((r.site, t, sh))
    for lid, rows in groups.items():
        ld = data.leases[lid]
        l = ld.lease
        st.lease_rows[lid] = [(s, t) for s, t, _ in rows]
        sites = [s for s, _, _ in rows]
        dup = sorted({s for s in sites if sites.count(s) > 1})
        if dup:
            st.violations.append(f"lease {lid}: listed more than once at site(s) {', '.join(dup)}")
        if len(set(sites)) > 1 and not l.splittable:
            st.violations.append(f"lease {lid}: split across sites {', '.join(sorted(set(sites)))} but it is not splittable")
        shares = [sh for _, _, sh in rows if sh is not None]
        total = sum(shares)
        if len(shares) == len(rows) and abs(total - 1.0) > 1e-6:
            st.violations.append(f"lease {lid}: shares sum to {fmt(total)}, not 1")
        taus = sorted({t for _, t, _ in rows if t is not None})
        if len(taus) > 1:
            st.violations.append(f"lease {lid}: hand-over months differ between sites ({', '.join(st.label(t) for t in taus)})")
        for t in taus:
            if t not in ld.handover_periods:
                late = "" if l.late_penalty_usd_per_mw_month is None else " (late hand-over is allowed until the horizon end)"
                st.violations.append(f"lease {lid} {st.label(t)}: hand-over outside its window {l.window_start}..{l.window_end}{late}")
        for sid, t, sh in rows:
            if t is None or sh is None:
                continue
            if l.eligible_sites is not None and sid not in l.eligible_sites:
                st.violations.append(f"lease {lid} {st.label(t)}: site {sid} is not eligible (eligible: {', '.join(l.eligible_sites)})")
            run = _lease_run(st, lid, sid, t, sh)
            st.leases.append(run)
            st.add_item(sid, "lease_penalty_usd", t, -run.penalty_usd)
            bad = np.nonzero(run.active & (st.own[sid] < 0.5))[0]
            if len(bad):
                st.violations.append(f"lease {lid} {st.label(bad[0])}: runs at site {sid} while the site is not owned")
    for s in inst.sites:
        need, have, gpu = st.used_racks(s.id), st.hpc_racks[s.id], st.gpu_racks(s.id)
        over = np.nonzero(need > have + tol(have))[0]
        if len(over):
            t = over[0]
            names = ", ".join(sorted({r.lease for r in st.site_leases(s.id) if r.racks[t] > 0}))
            gp = f" and GPUs in service ({fmt(gpu[t])} racks)" if gpu[t] > 0 else ""
            st.violations.append(f"site {s.id} {st.label(t)}: running leases ({names or 'none'}){gp} need {fmt(need[t])} HPC racks but only {fmt(have[t])} are online")


def _tenant_capex(st: State) -> None:
    """Tenant-funded capex: ``tenant_capex_share`` x the lease's MW (this site's share) x the site's
    conversion capex per MW (else its first HPC new-build option's), received evenly over the build
    lead before the hand-over; it lowers the landlord's capex of that class (and the capex budget)."""
    data = st.data
    for r in st.leases:
        l = data.leases[r.lease].lease
        if l.tenant_capex_share <= 0:
            continue
        src = data.tenant_capex(l, r.site)
        if src is None:
            continue
        price, lead, asset, _ = src
        f = data.tenant_capex_fractions(r.tau, lead)
        for t in f.nonzero()[0]:
            usd = l.tenant_capex_share * r.it_mw * price * float(f[t])
            st.add_item(r.site, "tenant_capex_funding_usd", int(t), usd, asset)
            y = int(data.period_years[t])
            st.spend_by_year[y] = st.spend_by_year.get(y, 0.0) - usd


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class PolicyLimits:
    """The policy's rack limits (models/economics.md, "Policy"), the evaluator's side of the rule;
    the baselines plan within them. The MILP's twin is ``optimizer.model.policy``."""

    owned0: tuple[str, ...]        # sites owned at the start
    owned0_racks: int              # their rack positions, mining + HPC
    min_mining_racks: float        # min_mining_share x owned0_racks: mining racks kept at owned0 sites
    start_mining_racks: int        # mining rack positions of every site at the start
    max_converted_racks: float     # max_converted_share x start_mining_racks


def policy_limits(data: Data) -> PolicyLimits:
    inst, pol = data.inst, data.inst.policy
    owned0 = tuple(s.id for s in inst.sites if data.owned_at_start(s.id))
    racks0 = sum(inst.site_by_id[s].mining_racks + inst.site_by_id[s].hpc_racks for s in owned0)
    start_mining = sum(s.mining_racks for s in inst.sites)
    return PolicyLimits(owned0, racks0, pol.min_mining_share * racks0, start_mining, pol.max_converted_share * start_mining)


def _policy(st: State) -> None:
    inst, data = st.data.inst, st.data
    pol = inst.policy
    lim = policy_limits(data)
    for y in sorted(st.spend_by_year):
        b = data.capex_budget(y)
        if b is not None and st.spend_by_year[y] > b + tol(b):
            st.violations.append(f"capex budget {y}: spending {fmt(st.spend_by_year[y])} USD (conversions, grid expansions, ASIC purchases) exceeds the budget {fmt(b)} USD")
    if pol.min_mining_share > 0 and lim.owned0:
        mining = sum(st.mining_racks[s] for s in lim.owned0)
        need = lim.min_mining_racks
        bad = np.nonzero(mining < need - tol(need))[0]
        if len(bad):
            t = bad[0]
            st.violations.append(f"policy {st.label(t)}: {fmt(mining[t])} mining racks are below min_mining_share {pol.min_mining_share:g} x {lim.owned0_racks} racks = {fmt(need)}")
    if pol.max_converted_share < 1:
        converted = sum(np.cumsum(st.blocks[s.id]) * s.conversion.racks_per_block for s in inst.sites if s.conversion is not None)
        cap = lim.max_converted_racks
        bad = np.nonzero(converted > cap + tol(cap))[0]
        if len(bad):
            t = bad[0]
            st.violations.append(f"policy {st.label(t)}: {fmt(converted[t])} racks converted exceed max_converted_share {pol.max_converted_share:g} x {lim.start_mining_racks} mining racks = {fmt(cap)}")
    _tenant_limits(st)


def _tenant_limits(st: State) -> None:
    """policy.tenant_limits: the tenant's signed critical-IT MW <= max_it_mw; its leases' rent
    (probability-weighted rent + prepayments - expected default loss inside the horizon) <=
    max_rent_share x that of every signed lease."""
    data = st.data
    lims = data.inst.policy.tenant_limits
    if not lims:
        return
    leases = {l.id: l for l in data.inst.leases}
    rent = {id(r): float(np.sum(lease_at(data, r.lease, r.tau).expected(r.tau, data.prob).rate_usd)) * r.share for r in st.leases}
    total = sum(rent.values())
    for lim in lims:
        mine = [r for r in st.leases if leases[r.lease].tenant_id == lim.tenant]
        mw = sum(r.it_mw for r in mine)
        if lim.max_it_mw is not None and mw > lim.max_it_mw + tol(lim.max_it_mw):
            st.violations.append(f"tenant {lim.tenant}: signed leases total {fmt(mw)} MW, more than its limit max_it_mw {fmt(lim.max_it_mw)}")
        if lim.max_rent_share is not None:
            r_t = sum(rent[id(r)] for r in mine)
            if r_t > lim.max_rent_share * total + tol(total):
                st.violations.append(f"tenant {lim.tenant}: rent {fmt(r_t)} USD is more than max_rent_share {lim.max_rent_share:g} "
                                     f"x the rent of every signed lease {fmt(total)} USD")


def _fixed_decisions(st: State) -> None:
    inst, data = st.data.inst, st.data
    for i, d in enumerate(inst.policy.fixed_decisions):
        where = f"fixed decision {i} ({d.kind})"
        t = data.period(d.month) if getattr(d, "month", None) else None
        lab = d.month if getattr(d, "month", None) else ""
        if d.kind == "conversion":
            got = st.conv_at.get((d.site, t), 0.0)
            if abs(got - d.blocks) > 1e-6:
                st.violations.append(f"{where}: site {d.site} must start {d.blocks} conversion blocks in {lab}, the plan starts {fmt(got)}")
        elif d.kind == "lease":
            rows = st.lease_rows.get(d.lease, [])
            if not d.signed:
                if rows:
                    st.violations.append(f"{where}: lease {d.lease} must not be signed, the plan signs it")
                continue
            if not rows:
                st.violations.append(f"{where}: lease {d.lease} must be signed, the plan does not sign it")
                continue
            if d.site is not None and d.site not in {s for s, _ in rows}:
                st.violations.append(f"{where}: lease {d.lease} must be hosted at site {d.site}, the plan uses {', '.join(sorted({s for s, _ in rows}))}")
            if t is not None and any(tt != t for _, tt in rows):
                st.violations.append(f"{where}: lease {d.lease} must be handed over in {lab}, the plan hands it over in {', '.join(sorted({st.label(tt) for _, tt in rows if tt is not None}))}")
        elif d.kind == "contract":
            if st.signed.get(d.contract) != d.signed:
                st.violations.append(f"{where}: contract {d.contract} must be {'signed' if d.signed else 'left unsigned'}, the plan does otherwise")
        elif d.kind == "purchase":
            got = st.purchase_at.get((d.option, d.site, t), 0.0)
            if abs(got - d.units) > tol(d.units):
                st.violations.append(f"{where}: purchase option {d.option} must buy {fmt(d.units)} units for site {d.site} in {lab}, the plan buys {fmt(got)}")
        elif d.kind in ("sale", "acquisition"):
            ts = st.events.get((d.site, d.kind), [])
            if d.happens and (t not in ts if t is not None else not ts):
                st.violations.append(f"{where}: site {d.site} {d.kind} must happen in {lab}, the plan has it in {', '.join(st.label(x) for x in ts) or 'no month'}")
            if not d.happens and ts:
                st.violations.append(f"{where}: site {d.site} {d.kind} must not happen, the plan has it in {', '.join(st.label(x) for x in ts)}")
        elif d.kind == "grid_expansion":
            ts = st.expansions.get((d.site, d.option), [])
            if d.happens and (t not in ts if t is not None else not ts):
                st.violations.append(f"{where}: grid expansion {d.option} at site {d.site} must start in {lab or 'some month'}, the plan has {', '.join(st.label(x) for x in ts) or 'none'}")
            if not d.happens and ts:
                st.violations.append(f"{where}: grid expansion {d.option} at site {d.site} must not be built, the plan starts it in {', '.join(st.label(x) for x in ts)}")
