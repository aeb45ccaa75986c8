"""Sites: conversions, grid expansions, new-build capacity, ownership (sale / acquisition),
site-level cash flows.

Variables (commitments, one per tree node taking the commitments of their period; the index
is ``[..., t]`` in the two-stage form and ``[..., t, rep]`` on a staged tree, ``common.ik``):
conv[s,t] blocks started (integer), nb[s,t] blocks started up to t, gx[s,g,t] expansion started
(binary), gcum[s,g,t] started up to t, sell[s,t] / acq[s,t] (binary), own[s,t] owned
(continuous, integral by construction) and, only where a cost needs the product of HPC racks
and ownership, hpc_own[s,t] (exact McCormick). The balances link a node's period to the same
path's previous period (its own node or its parent's), so a node's state is its path's history.
New-build capacity (two-stage only, ``instance.checks``): nbuild[s,b,t] new-build blocks started
(integer), nbcum[s,b,t] started up to t, indexed [s,b,t].
Sites without a sale or acquisition option are owned throughout: own is the constant 1.
The expression helpers take ``r``, any scenario on the path in question.
"""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.economics.data import Data
from optimizer.model.common import USD, Acc, add_constraints, add_vars, ik, inv_at, is_const, isplit, lin, register, rk


class SiteInfo:
    """Per-site constants and expression helpers used by the other modules."""

    def __init__(self, site, data: Data):
        self.site = site
        self.id = site.id
        c = site.conversion
        self.R0 = site.mining_racks
        self.H0 = site.hpc_racks
        self.rpb = c.racks_per_block if c else 0
        self.maxb = site.max_conversion_blocks
        self.lead = data.lead_periods(c.lead_months) if c else 0
        # new-build options that can start inside the horizon (periods set by _new_builds)
        self.builds = [b for b in data.site_builds(site.id) if b.periods]
        self.Hmax = self.H0 + self.rpb * self.maxb + sum(b.racks_per_block * b.option.max_blocks for b in self.builds if b.use == "hpc")
        self.Rmax = self.R0 + sum(b.racks_per_block * b.option.max_blocks for b in self.builds if b.use == "mining")
        self.kw = site.hpc_kw_per_rack
        self.owned0 = site.acquisition is None
        self.conv_periods: list[int] = []
        self.first_conv: int | None = None
        self.own_first: int | None = None  # first period own is a variable
        self.nb_first: int | None = None
        self.expansions: list = []  # (option, lead_periods, periods)
        self.build_periods: dict[str, list[int]] = {}  # new-build option -> start periods with a variable

    @property
    def has_hpc_builds(self) -> bool:
        return any(self.build_periods.get(b.option.id) for b in self.builds if b.use == "hpc")

def _conv_periods(si: SiteInfo, data: Data) -> list[int]:
    if si.maxb == 0:
        return []
    ps = data.conversion_periods(si.id)
    if si.site.acquisition is not None:  # an unowned site starts no project
        acq = data.acquisition_periods(si.id)
        ps = [t for t in ps if acq and t >= acq[0]]
    return ps


def build(m, data: Data) -> None:
    T, tree = data.T, m.tree
    m.site_info = {s.id: SiteInfo(s, data) for s in data.inst.sites}
    _ownership(m, data)
    conv_keys, nb_keys = [], []
    for si in m.site_info.values():
        si.conv_periods = _conv_periods(si, data)
        if si.conv_periods:
            si.first_conv = si.nb_first = si.conv_periods[0]
            conv_keys += [ik(m, (si.id,), t, r) for t in si.conv_periods for r in tree.inv_reps(t)]
            nb_keys += [ik(m, (si.id,), t, r) for t in range(si.nb_first, T) for r in tree.inv_reps(t)]
    m.conv = add_vars(m, "conv", conv_keys, pyo.NonNegativeIntegers,
                      bounds={k: (0, m.site_info[k[0]].maxb) for k in conv_keys})
    m.nb = add_vars(m, "nb", nb_keys, pyo.NonNegativeReals,
                    bounds={k: (0, m.site_info[k[0]].maxb) for k in nb_keys})
    _expansions(m, data)
    _new_builds(m, data)
    nb_balance(m, nb_keys)
    project_needs_ownership(m, data)
    hpc_owned_mccormick(m, data)
    _cashflows(m, data)


def nb_balance(m, nb_keys) -> None:
    """nb[s,t] = nb[s,t-1] + conv[s,t] (blocks started up to t; nb <= max_blocks); on a tree
    nb of t-1 is that of the same path (the parent node's at a stage start)."""
    rows = {}
    for k in nb_keys:
        (s,), t, r = isplit(m, k, 1)
        prev = nb(m, s, t - 1, r)
        c = m.conv[k] if k in m.conv else 0
        rows[k] = m.nb[k] == prev + c
    add_constraints(m, "nb_balance", rows)


# ---------------------------------------------------------------- expression helpers


def nb(m, s: str, t: int, r: int):
    """Blocks started at site s up to and including period t (0 before the first start)."""
    si = m.site_info[s]
    if si.nb_first is None or t < si.nb_first:
        return 0
    t = min(t, data_T(m) - 1)
    return m.nb[ik(m, (s,), t, r)]


def data_T(m) -> int:
    return len(m.df)


def mining_racks(m, s: str, t: int, r: int):
    """Mining rack positions at s in t: racks leave mining when works start; new-built mining
    racks join lead periods after theirs."""
    si = m.site_info[s]
    b = nb(m, s, t, r)
    base = si.R0 if is_const(b) else si.R0 - si.rpb * b
    return _plus_built(m, s, t, "mining", base)


def hpc_racks(m, s: str, t: int, r: int):
    """HPC rack positions online at s in t: converted racks arrive lead periods after the start,
    new-built HPC racks lead periods after theirs."""
    si = m.site_info[s]
    b = nb(m, s, t - si.lead, r)
    base = si.H0 if is_const(b) else si.H0 + si.rpb * b
    return _plus_built(m, s, t, "hpc", base)


def built_blocks(m, s: str, bid: str, t: int):
    """New-build blocks of option bid started at s up to and including t (0 before the first start;
    two-stage only)."""
    ps = m.site_info[s].build_periods.get(bid)
    if not ps or t < ps[0]:
        return 0
    return m.nbcum[s, bid, min(t, data_T(m) - 1)]


def _plus_built(m, s: str, t: int, use: str, base):
    """``base`` + racks of ``use`` built at s and in service in t (started lead periods before)."""
    si = m.site_info[s]
    coefs, vs = [], []
    for b in si.builds:
        if b.use != use:
            continue
        v = built_blocks(m, s, b.option.id, t - b.lead)
        if not is_const(v):
            coefs.append(float(b.racks_per_block))
            vs.append(v)
    if not vs:
        return base
    if is_const(base):
        return lin(coefs, vs, float(base))
    return base + lin(coefs, vs)


def own(m, s: str, t: int, r: int):
    """1 / 0 / the variable own[s,t]."""
    si = m.site_info[s]
    if si.own_first is None:
        return 1 if si.owned0 else 0
    if t < si.own_first:
        return 1 if si.owned0 else 0
    return m.own[ik(m, (s,), t, r)]


def grid_mw(m, s: str, t: int, r: int):
    """Grid interconnect MW at s in t: base plus expansions online (started lead periods before)."""
    si = m.site_info[s]
    coefs, vs, const = [], [], float(si.site.grid_interconnect_mw)
    for g, lead, ps in si.expansions:
        u = t - lead
        if ps and u >= ps[0]:
            coefs.append(g.mw)
            vs.append(m.gcum[ik(m, (s, g.id), min(u, data_T(m) - 1), r)])
    return lin(coefs, vs, const) if vs else const


def max_grid_mw(m, s: str) -> float:
    si = m.site_info[s]
    return si.site.grid_interconnect_mw + sum(g.mw for g, _, ps in si.expansions if ps)


def hpc_owned(m, s: str, t: int, r: int):
    """HPC rack positions at s in t that the company owns: hpc_racks x own (exact)."""
    o = own(m, s, t, r)
    if is_const(o):
        return hpc_racks(m, s, t, r) if o else 0
    return m.hpc_own[ik(m, (s,), t, r)]


# ---------------------------------------------------------------- ownership


def _ownership(m, data: Data) -> None:
    T, tree = data.T, m.tree
    sell_keys, acq_keys, own_keys = [], [], []
    for si in m.site_info.values():
        if si.site.sale is not None:
            ps = data.sale_periods(si.id)
            sell_keys += [ik(m, (si.id,), t, r) for t in ps for r in tree.inv_reps(t)]
        elif si.site.acquisition is not None:
            ps = data.acquisition_periods(si.id)
            acq_keys += [ik(m, (si.id,), t, r) for t in ps for r in tree.inv_reps(t)]
        else:
            continue
        if ps:
            si.own_first = ps[0]
            own_keys += [ik(m, (si.id,), t, r) for t in range(ps[0], T) for r in tree.inv_reps(t)]
    m.sell = add_vars(m, "sell", sell_keys, pyo.Binary)
    m.acq = add_vars(m, "acq", acq_keys, pyo.Binary)
    m.own = add_vars(m, "own", own_keys, pyo.NonNegativeReals, ub=1)
    ownership_balance(m, own_keys)


def ownership_balance(m, own_keys) -> None:
    """own[s,t] = own[s,t-1] - sell[s,t] (sale option) or + acq[s,t] (acquisition option);
    own in [0, 1] makes at most one sale / acquisition."""
    rows = {}
    for k in own_keys:
        (s,), t, r = isplit(m, k, 1)
        prev = own(m, s, t - 1, r)
        if k in m.sell:
            rows[k] = m.own[k] == prev - m.sell[k]
        elif k in m.acq:
            rows[k] = m.own[k] == prev + m.acq[k]
        else:
            rows[k] = m.own[k] == prev
    add_constraints(m, "ownership_balance", rows)


def project_needs_ownership(m, data: Data) -> None:
    """An unowned site starts no project: conv[s,t] <= max_blocks x own[s,t], gx[s,g,t] <= own[s,t]."""
    rows = {}
    for k in m.conv_index:
        (s,), t, r = isplit(m, k, 1)
        o = own(m, s, t, r)
        if not is_const(o):
            rows[rk(m, ("conv", s, "", t), r)] = m.conv[k] <= m.site_info[s].maxb * o
    for k in m.gx_index:
        (s, g), t, r = isplit(m, k, 2)
        o = own(m, s, t, r)
        if not is_const(o):
            rows[rk(m, ("gx", s, g, t), r)] = m.gx[k] <= o
    add_constraints(m, "project_needs_ownership", rows)


# ---------------------------------------------------------------- grid expansions


def _expansions(m, data: Data) -> None:
    T, tree = data.T, m.tree
    gx_keys, cum_keys = [], []
    for si in m.site_info.values():
        acq = data.acquisition_periods(si.id) if si.site.acquisition is not None else None
        for g in si.site.grid_expansions:
            ps = data.expansion_periods(si.id, g)
            if acq is not None:
                ps = [t for t in ps if acq and t >= acq[0]]
            si.expansions.append((g, data.lead_periods(g.lead_months), ps))
            gx_keys += [ik(m, (si.id, g.id), t, r) for t in ps for r in tree.inv_reps(t)]
            if ps:
                cum_keys += [ik(m, (si.id, g.id), t, r) for t in range(ps[0], T) for r in tree.inv_reps(t)]
    m.gx = add_vars(m, "gx", gx_keys, pyo.Binary)
    m.gcum = add_vars(m, "gcum", cum_keys, pyo.NonNegativeReals, ub=1)
    expansion_balance(m, cum_keys)


def expansion_balance(m, cum_keys) -> None:
    """gcum[s,g,t] = gcum[s,g,t-1] + gx[s,g,t]; gcum <= 1: each option starts at most once."""
    rows = {}
    for k in cum_keys:
        (s, g), t, r = isplit(m, k, 2)
        pk = ik(m, (s, g), t - 1, r) if t > 0 else None
        prev = m.gcum[pk] if pk is not None and pk in m.gcum else 0
        x = m.gx[k] if k in m.gx else 0
        rows[k] = m.gcum[k] == prev + x
    add_constraints(m, "expansion_balance", rows)


# ---------------------------------------------------------------- new-build capacity


def _new_builds(m, data: Data) -> None:
    """nbuild[s,b,t] blocks of new-build option b started at s in t (integer, at most max_blocks in
    all), nbcum[s,b,t] started up to t; only in periods the site is owned or may be bought."""
    T = data.T
    keys, cum_keys, bounds = [], [], {}
    for si in m.site_info.values():
        acq = data.acquisition_periods(si.id) if si.site.acquisition is not None else None
        for b in si.builds:
            ps = [t for t in b.periods if acq is None or (acq and t >= acq[0])]
            si.build_periods[b.option.id] = ps
            keys += [(si.id, b.option.id, t) for t in ps]
            if ps:
                cum_keys += [(si.id, b.option.id, t) for t in range(ps[0], T)]
            for t in ps:
                bounds[(si.id, b.option.id, t)] = (0, b.option.max_blocks)
    m.nbuild = add_vars(m, "nbuild", keys, pyo.NonNegativeIntegers, bounds=bounds)
    caps = {k: (0, next(b.option.max_blocks for b in m.site_info[k[0]].builds if b.option.id == k[1])) for k in cum_keys}
    m.nbcum = add_vars(m, "nbcum", cum_keys, pyo.NonNegativeReals, bounds=caps)
    new_build_balance(m, cum_keys)
    rows = {}
    for (s, bid, t) in keys:
        o = own(m, s, t, 0)
        if not is_const(o):
            rows[(s, bid, t)] = m.nbuild[s, bid, t] <= m.nbcum[s, bid, t].ub * o
    add_constraints(m, "new_build_needs_ownership", rows)


def new_build_balance(m, cum_keys) -> None:
    """nbcum[s,b,t] = nbcum[s,b,t-1] + nbuild[s,b,t]; nbcum <= max_blocks caps the blocks built."""
    rows = {}
    for s, bid, t in cum_keys:
        prev = m.nbcum[s, bid, t - 1] if (s, bid, t - 1) in m.nbcum else 0
        x = m.nbuild[s, bid, t] if (s, bid, t) in m.nbuild else 0
        rows[(s, bid, t)] = m.nbcum[s, bid, t] == prev + x
    add_constraints(m, "new_build_balance", rows)


def new_build_requirements(m, data: Data) -> None:
    """A new-build option that requires a grid expansion or a contract: blocks started by t <=
    max_blocks x (expansion started by t), and <= max_blocks x sign[c] (a mandatory contract is
    always signed). Runs after power.build (sign exists then)."""
    rows = {}
    for si in m.site_info.values():
        for b in si.builds:
            ps = si.build_periods.get(b.option.id)
            if not ps:
                continue
            cap = float(b.option.max_blocks)
            g, c = b.option.requires_grid_expansion, b.option.requires_contract
            for t in range(ps[0], data.T):
                v = m.nbcum[si.id, b.option.id, t]
                if g is not None:
                    k = (si.id, g, t)
                    rows[(si.id, b.option.id, t, "grid")] = v <= cap * m.gcum[k] if k in m.gcum else v <= 0
                if c is not None and c in m.sign and t == data.T - 1:
                    rows[(si.id, b.option.id, t, "contract")] = v <= cap * m.sign[c]
    add_constraints(m, "new_build_requirements", rows)


# ---------------------------------------------------------------- HPC racks x ownership


def hpc_owned_mccormick(m, data: Data) -> None:
    """hpc_own[s,t] = hpc_racks[s,t] x own[s,t], exact McCormick on hpc in [H0, Hmax], own in {0,1}.
    Only for sites with an ownership option and a cost that needs it (HPC fixed opex, terminal HPC)."""
    T, tree = data.T, m.tree
    term = data.inst.horizon.terminal
    keys = []
    for si in m.site_info.values():
        if si.own_first is None or si.Hmax == 0:
            continue
        needs_opex = si.site.fixed_opex_hpc_usd_per_mw_month > 0
        needs_term = term.hpc_unleased_noi_usd_per_mw_year > 0
        ts = range(si.own_first, T) if needs_opex else ([T - 1] if needs_term and T - 1 >= si.own_first else [])
        keys += [ik(m, (si.id,), t, r) for t in ts for r in tree.inv_reps(t)]
    m.hpc_own = add_vars(m, "hpc_own", keys, pyo.NonNegativeReals,
                         bounds={k: (0, m.site_info[k[0]].Hmax) for k in keys})
    rows = {}
    for k in keys:
        (s,), t, r = isplit(m, k, 1)
        si, h, o, p = m.site_info[s], hpc_racks(m, s, t, r), m.own[k], m.hpc_own[k]
        rows[rk(m, (s, t, "lo_own"), r)] = p >= si.H0 * o
        rows[rk(m, (s, t, "lo_hpc"), r)] = p >= h + si.Hmax * o - si.Hmax
        rows[rk(m, (s, t, "up_own"), r)] = p <= si.Hmax * o
        rows[rk(m, (s, t, "up_hpc"), r)] = p <= h + si.H0 * o - si.H0
    add_constraints(m, "hpc_owned_mccormick", rows)


# ---------------------------------------------------------------- cash flows


def _cashflows(m, data: Data) -> None:
    T, L, tree = data.T, data.tl.period_months, m.tree
    capex_c = Acc()
    for si in m.site_info.values():
        s = si.id
        # conversion capex: blocks x racks x kW/1000 x capex/MW spread over n = max(lead, 1) periods;
        # the part paid in t is c/n x (nb[t] - nb[t-n]) on the path (blocks started at ancestors too)
        if si.conv_periods:
            n = max(si.lead, 1)
            mw_per_block = si.site.block_it_mw
            for t in range(si.first_conv, min(si.conv_periods[-1] + n, T)):
                for r in tree.inv_reps(t):
                    a, b = nb(m, s, t, r), nb(m, s, t - n, r)
                    coef = mw_per_block / n / USD
                    e = lin([coef], [a]) if is_const(b) else lin([coef, -coef], [a, b])
                    register(m, "capex_usd", s, t, inv_at(m, t, r), -m.capex_per_mw[s] * e, asset="hpc_conversion")
        # grid expansion capex, spread the same way
        for g, lead, ps in si.expansions:
            if not ps:
                continue
            n = max(lead, 1)
            for t in range(ps[0], min(ps[-1] + n, T)):
                for r in tree.inv_reps(t):
                    for u in range(t - n + 1, t + 1):
                        k = ik(m, (s, g.id), u, r) if u >= 0 else None
                        if k is not None and k in m.gx:
                            capex_c.add((s, t, r), -g.capex_usd / n / USD, m.gx[k])
        # new-build capex: blocks x MW per block x capex per MW spread over n = max(lead, 1) periods
        for b in si.builds:
            ps = si.build_periods.get(b.option.id)
            if not ps:
                continue
            n = max(b.lead, 1)
            coef = b.mw_per_block / n / USD
            for t in range(ps[0], min(ps[-1] + n, T)):
                a, c = built_blocks(m, s, b.option.id, t), built_blocks(m, s, b.option.id, t - n)
                e = lin([coef], [a]) if is_const(c) else lin([coef, -coef], [a, c])
                register(m, "new_build_capex_usd", s, t, None, -m.build_capex_per_mw[s, b.option.id] * e, asset="new_build")
        for t in range(T):
            for r in tree.inv_reps(t):
                k = ik(m, (s,), t, r)
                if k in m.sell:
                    register(m, "site_sales_usd", s, t, inv_at(m, t, r), lin([si.site.sale.price_usd / USD], [m.sell[k]]))
                if k in m.acq:
                    register(m, "acquisitions_usd", s, t, inv_at(m, t, r), lin([-si.site.acquisition.price_usd / USD], [m.acq[k]]),
                             asset="sites")
        # fixed opex of HPC capacity owned: USD per MW-month x MW x months
        f = si.site.fixed_opex_hpc_usd_per_mw_month
        if f > 0 and si.Hmax > 0:
            c = -f * si.site.hpc_mw_per_rack * L / USD
            for t in range(T):
                for r in tree.inv_reps(t):
                    register(m, "opex_usd", s, t, inv_at(m, t, r), c * hpc_owned(m, s, t, r))
    for (s, t, r), e in capex_c.items():
        register(m, "capex_usd", s, t, inv_at(m, t, r), e, asset="grid_expansion")
