"""Built-in baseline plans, evaluated like any other plan so results can say by how much the
optimum beats them. Each is a first stage built by the rule below plus operations completed by
the operating rule (``optimizer.operations``).

Common to all three:
- ``policy.fixed_decisions`` are applied first and win over the baseline's own rule (pinned
  conversions, leases, contract signings, purchases, sales/acquisitions, grid expansions).
  A lease fixed as signed without a site or month gets the earliest feasible hand-over at an
  eligible site (or, failing that, its first eligible site and first hand-over period).
- Optional contracts are not signed, no ASICs are bought, no grid is expanded, no site is sold
  or acquired, no new-build hall is started and no GPU bought (GPU cloud contracts are never
  signed), beyond what fixed decisions pin.
- A lease pinned as signed that no free HPC racks can host gets conversion blocks started just in
  time for its earliest hand-over (the greedy's costing below, value ignored).
- With cash modelled (``treasury.cash_start_usd``), a conversion, lease or greedy option is kept
  only if the completed plan (fleet fitted, operations and treasury sales by the operating rule)
  keeps cash >= min_cash_usd in every period and scenario, or does not lower its minimum;
  convert-asap then starts fewer blocks, the greedy tries its next best option.
- ASICs that no longer fit the mining racks (after conversions, or a pinned site sale) are
  retired at the start of the period they stop fitting, most power-hungry per TH first, and
  salvaged ("fit the fleet"). Nothing else is retired.
- Leases are placed whole at one site (a splittable lease is not split), at an in-window
  hand-over (no late penalties), where during every period it runs inside the horizon the site
  is owned, has the free HPC racks, and its grid and contract capacity carry the firm HPC load
  of all leases placed there.

- A site with ``mining_overhead`` that holds no ASICs from some period to the end exits mining
  then, when its overhead left, discounted, exceeds its exit cost. No G&A reduction is taken and
  no hashprice is sold forward (the plans of DESIGN section 12's levers are the optimizer's).

keep-mining: nothing else: no conversion, no lease, no retirement.

convert-asap: for each period in order and each site in instance order, start as many
conversion blocks as allowed (conversion window, max_blocks, racks, ownership, the capex budget
of every calendar year the capex falls in, max_converted_share, min_mining_share; without
retirement allowed, only racks free of ASICs). Then leases in decreasing rent per MW
(``rate_usd_per_kw_month``), each at its earliest feasible hand-over (sites in eligible
order). Then fit the fleet.

greedy: leases in decreasing expected value per MW (below, at their earliest in-window hand-over
at their first eligible site). For each lease, every eligible site and in-window hand-over
``tau`` is costed: ``k`` = blocks needed so that the site's free HPC racks cover the lease in
every period it runs, started just in time at the latest allowed period ``t0`` with
``t0 + lead <= tau`` where the ``k`` blocks pass the conversion checks above. Its net value is
  V = sum_t DF_t (rent - lease opex)_t + DF_{T-1} x remaining NOI after the horizon
      - sum_t DF_t x HPC MWh_t x E[pi]_t                         (energy, unless passed through)
  C = capex of the k blocks, discounted + HPC fixed opex of their MW from t0 + lead, discounted
      + mining margin of the units the k blocks displace, discounted, over the periods from t0
        to the lease's last period inside the horizon (plus the terminal mining value of the
        displaced units when the lease runs past the horizon),
with the mining margin of a unit in period t = max(0, E[P x btc_unit]_t - E[pi]_t x MWh_unit_t)
- fixed mining opex, at the site's current fleet mix (its installed units by model at the
horizon start; the whole fleet's mix at a site without units). E[.] is the probability-weighted
mean over scenarios. The option with the largest V - C is taken when V - C > 0 (the lease is
signed and the k blocks are converted); otherwise the lease is left unsigned. Then fit the fleet.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from optimizer.economics.data import Data, compile_instance, lease_credit_price
from optimizer.evaluate.evaluator import Evaluation, evaluate_as_given
from optimizer.evaluate.firststage import State, build_state, policy_limits, tol
from optimizer.evaluate.operations import complete_operations, complete_with_cash
from optimizer.instance.schema import FixedContract, IndexContract, Instance
from optimizer.plan import Plan

BASELINES = ("keep-mining", "convert-asap", "greedy")


def baseline_plan(instance: Instance, name: str, data: Data | None = None) -> Plan:
    """The named baseline's plan: first stage by its rule plus completed operations."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    data = data if data is not None else compile_instance(instance)
    b = _Builder(instance, data)
    b.apply_fixed()
    b.place_leases([], fixed_only=True)  # pinned leases first: they may need conversion blocks
    if name == "convert-asap":
        b.convert_asap()
        b.place_leases(sorted(instance.leases, key=lambda l: -l.rate_usd_per_kw_month))
    elif name == "greedy":
        b.greedy()
    b.fit_fleet()
    return complete_operations(instance, b.exit_idle_sites(b.plan(name)), data)


def baseline_plans(instance: Instance) -> dict[str, Plan]:
    data = compile_instance(instance)
    return {n: baseline_plan(instance, n, data) for n in BASELINES}


def evaluate_baselines(instance: Instance) -> dict[str, Evaluation]:
    """Every baseline's plan (operations completed) evaluated."""
    data = compile_instance(instance)
    return {n: evaluate_as_given(instance, baseline_plan(instance, n, data), data) for n in BASELINES}


# ---------------------------------------------------------------- the builder


class _Builder:
    def __init__(self, inst: Instance, data: Data) -> None:
        self.inst, self.d = inst, data
        self.limits = policy_limits(data)
        self.conv: dict[tuple[str, int], float] = {}
        self.leases: dict[str, tuple[str, int]] = {}
        self.signed: set[str] = set()
        self.unsigned: set[str] = set()
        self.purchases: list[tuple[str, str, int, float]] = []
        self.events: list[tuple[str, str, int]] = []
        self.expansions: list[tuple[str, str, int]] = []
        self.retirements: list[tuple[str, str, int, float]] = []
        self.pinned_conv: set[tuple[str, int]] = set()
        self.lease_must_sign: list[str] = []
        # GPU cloud contracts need GPUs, which no baseline buys (nor new-build halls)
        self.lease_never: set[str] = {l.id for l in inst.leases if l.gpu_option is not None}

    # ------------------------------------------------------------ plan tables

    def plan(self, name: str = "plan", with_retirements: bool = True) -> Plan:
        lab = self.d.labels
        return Plan(
            name=name,
            conversions=pd.DataFrame([(s, lab[t], b) for (s, t), b in self.conv.items() if b > 0 or (s, t) in self.pinned_conv],
                                     columns=["site", "month", "blocks"]),
            leases=pd.DataFrame([(l, s, lab[t], 1.0) for l, (s, t) in self.leases.items()], columns=["lease", "site", "month", "share"]),
            contracts=pd.DataFrame([(c, True) for c in sorted(self.signed)] + [(c, False) for c in sorted(self.unsigned)],
                                   columns=["contract", "signed"]),
            purchases=pd.DataFrame([(o, s, lab[t], u) for o, s, t, u in self.purchases], columns=["option", "site", "month", "units"]),
            site_events=pd.DataFrame([(s, e, lab[t]) for s, e, t in self.events], columns=["site", "event", "month"]),
            grid_expansions=pd.DataFrame([(s, g, lab[t]) for s, g, t in self.expansions], columns=["site", "option", "month"]),
            retirements=pd.DataFrame([(s, m, lab[t], u) for s, m, t, u in self.retirements] if with_retirements else [],
                                     columns=["site", "model", "month", "units"]),
        )

    def state(self) -> State:
        """First-stage state of the decisions so far (cached until a decision changes)."""
        key = (tuple(sorted(self.conv.items())), tuple(sorted(self.leases.items())))
        if getattr(self, "_cache_key", None) != key:
            self._cache_key, self._cache = key, build_state(self.d, self.plan(with_retirements=False))
        return self._cache

    # ------------------------------------------------------------ fixed decisions

    def apply_fixed(self) -> None:
        d = self.d
        for fx in self.inst.policy.fixed_decisions:
            t = d.period(fx.month) if getattr(fx, "month", None) else None
            if fx.kind == "conversion":
                self.conv[(fx.site, t)] = float(fx.blocks)
                self.pinned_conv.add((fx.site, t))
            elif fx.kind == "lease":
                if not fx.signed:
                    self.lease_never.add(fx.lease)
                elif fx.site is not None and t is not None:
                    self.leases[fx.lease] = (fx.site, t)
                else:
                    self.lease_must_sign.append(fx.lease)
                    self._lease_hint = getattr(self, "_lease_hint", {})
                    self._lease_hint[fx.lease] = (fx.site, t)
            elif fx.kind == "contract":
                (self.signed if fx.signed else self.unsigned).add(fx.contract)
            elif fx.kind == "purchase":
                self.purchases.append((fx.option, fx.site, t, float(fx.units)))
            elif fx.kind in ("sale", "acquisition"):
                if fx.happens:
                    self.events.append((fx.site, fx.kind, t))
            elif fx.kind == "grid_expansion":
                if fx.happens:
                    site = self.inst.site_by_id[fx.site]
                    g = next(g for g in site.grid_expansions if g.id == fx.option)
                    if t is None:
                        ps = d.expansion_periods(fx.site, g)
                        t = ps[0] if ps else 0
                    self.expansions.append((fx.site, fx.option, t))

    # ------------------------------------------------------------ conversions

    def _spend(self) -> dict[int, float]:
        return dict(self.state().spend_by_year)

    def can_convert(self, st: State, spend: dict[int, float], sid: str, t: int, k: int) -> bool:
        """Whether k more blocks may start at (sid, t) given the current plan (state ``st``)."""
        d, site = self.d, self.inst.site_by_id[sid]
        conv = site.conversion
        if conv is None or k <= 0 or (sid, t) in self.pinned_conv:
            return False
        if t not in d.conversion_periods(sid) or st.own[sid][t] < 0.5:
            return False
        done = sum(b for (s, _), b in self.conv.items() if s == sid)
        if done + k > site.max_conversion_blocks:
            return False
        rpb = conv.racks_per_block
        if not self.inst.fleet.allow_retirement:
            after = st.mining_racks[sid] - k * rpb * (np.arange(d.T) >= t)
            if np.any(st.site_units(sid) > site.asics_per_rack * after + tol(st.site_units(sid))):
                return False
        lead = d.lead_periods(conv.lead_months)
        periods = d.capex_periods(t, lead)
        per = k * site.block_it_mw * conv.capex_usd_per_mw / len(periods) * d.share(sid)
        add: dict[int, float] = {}
        for p in periods:
            y = int(d.period_years[p])
            add[y] = add.get(y, 0.0) + per
        for y, x in add.items():
            b = d.capex_budget(y)
            if b is not None and spend.get(y, 0.0) + x > b + tol(b):
                return False
        lim = self.limits
        converted = sum(s.mining_racks - st.mining_racks[s.id][-1] for s in self.inst.sites)
        if converted + k * rpb > lim.max_converted_racks + 1e-9:
            return False
        if sid in lim.owned0 and self.inst.policy.min_mining_share > 0:
            mining_end = sum(st.mining_racks[s][-1] for s in lim.owned0)
            if mining_end - k * rpb < lim.min_mining_racks - 1e-9:
                return False
        return True

    def _add_conv(self, sid: str, t: int, k: int) -> None:
        self.conv[(sid, t)] = self.conv.get((sid, t), 0.0) + k
        if self.conv[(sid, t)] == 0 and (sid, t) not in self.pinned_conv:
            del self.conv[(sid, t)]

    def convert_asap(self) -> None:
        for t in range(self.d.T):
            for site in self.inst.sites:
                if site.conversion is None:
                    continue
                st = self.state()
                left = site.max_conversion_blocks - sum(b for (s, _), b in self.conv.items() if s == site.id)
                k = next((k for k in range(int(left), 0, -1) if self.can_convert(st, st.spend_by_year, site.id, t, k)), 0)
                # with cash modelled, fewer blocks when the cash minimum would break
                while k and not self._accept(lambda: self._add_conv(site.id, t, k), lambda: self._add_conv(site.id, t, -k),
                                             self._conversion_cash_bound(st, site.id, t, k)):
                    k -= 1

    # ------------------------------------------------------------ leases

    def _firm_room(self, st: State, sid: str) -> np.ndarray:
        """[T] MWh of firm load the site can still carry: min(grid, contract capacity) - HPC load."""
        d = self.d
        supply = np.zeros(d.T)
        for c in self.inst.contracts:
            if c.site != sid:
                continue
            h = st.contract_hours[c.id]
            if isinstance(c, IndexContract) and c.mw_cap is None:
                supply = supply + np.where(h > 0, np.inf, 0.0)
            else:
                supply = supply + (c.mw_cap if isinstance(c, (FixedContract, IndexContract)) else c.mw) * h
        return np.minimum(st.grid_mw[sid] * d.hours, supply) - st.hpc_mwh(sid).max(axis=0)

    def lease_fits(self, st: State, lid: str, sid: str, tau: int, extra_racks: np.ndarray | None = None) -> bool:
        d = self.d
        l = d.leases[lid].lease
        if l.eligible_sites is not None and sid not in l.eligible_sites:
            return False
        ld = d.leases[lid]
        act = ld.active[tau].astype(bool)
        if not act.any() or np.any(st.own[sid][act] < 0.5):
            return False
        free = st.hpc_racks[sid] - st.used_racks(sid)
        if extra_racks is not None:
            free = free + extra_racks
        need = d.lease_racks_needed[(lid, sid)]
        if np.any(free[act] < need - 1e-9):
            return False
        load = l.it_mw * self.inst.site_by_id[sid].pue_hpc * ld.active_hours[tau]
        return bool(np.all(load <= self._firm_room(st, sid) + 1e-9))

    def _windows(self, lid: str) -> list[int]:
        ld = self.d.leases[lid]
        return [t for t in ld.handover_periods if ld.months_late[t] == 0] or list(ld.handover_periods)

    def place_leases(self, order, fixed_only: bool = False) -> None:
        """Sign each lease of ``order`` (then the leases pinned as signed) at its earliest feasible hand-over."""
        hints = getattr(self, "_lease_hint", {})
        todo = [l.id for l in order] if not fixed_only else []
        todo += [lid for lid in self.lease_must_sign if lid not in todo]
        for lid in todo:
            if lid in self.leases or lid in self.lease_never:
                continue
            site_hint, t_hint = hints.get(lid, (None, None))
            st = self.state()
            sites = [site_hint] if site_hint else self.inst.eligible_sites(self.d.leases[lid].lease)
            taus = [t_hint] if t_hint is not None else self._windows(lid)
            placed = next(((s, tau) for tau in taus for s in sites if self.lease_fits(st, lid, s, tau)), None)
            if lid in self.lease_must_sign:
                if placed is None:
                    placed = self._place_with_conversion(st, lid, sites, taus) or (sites[0], taus[0])
                self.leases[lid] = placed
            elif placed is not None:
                self._accept(lambda: self.leases.__setitem__(lid, placed), lambda: self.leases.pop(lid))

    def _place_with_conversion(self, st: State, lid: str, sites, taus):
        """A pinned lease with no free racks: the first (hand-over, site) that conversion blocks
        started just in time can serve; the blocks are added. None when there is none."""
        if not hasattr(self, "e_pi"):
            self._expected()
        for tau in taus:
            for sid in sites:
                opt = self._option(st, lid, sid, tau)
                if opt is not None:
                    if opt[4] > 0:
                        self._add_conv(sid, opt[3], opt[4])
                    return sid, tau
        return None

    # ------------------------------------------------------------ cash

    def _cash_path(self):
        """(cash - min_cash, optimistic headroom) [W, T] of the decisions so far, with the fleet
        fitted and operations and treasury sales by the operating rule; None without cash. The
        headroom adds what selling all treasury BTC left could raise (when sales are allowed)."""
        tr = self.inst.treasury
        if tr.cash_start_usd is None:
            return None
        key = (tuple(sorted(self.conv.items())), tuple(sorted(self.leases.items())))
        memo = self.__dict__.setdefault("_cash_memo", {})
        if key not in memo:
            saved = list(self.retirements)
            self.fit_fleet()
            plan = self.plan()
            self.retirements = saved
            _, margin, left = complete_with_cash(self.inst, plan, self.d)
            room = margin + (left * np.maximum.accumulate(self.d.btc_price_usd, axis=1) if tr.allow_treasury_sales else 0.0)
            memo[key] = (margin, room)
        return memo[key]

    def _accept(self, apply, undo, delta: np.ndarray | None = None) -> bool:
        """Apply a change; with cash modelled keep it only if it does not break (or lower) the
        cash minimum. ``delta`` ([T], optional): an optimistic bound on the change's effect on
        cumulative cash, to reject hopeless changes without completing the plan."""
        if self.inst.treasury.cash_start_usd is None:
            apply()
            return True
        margin, room = self._cash_path()
        before = float(margin.min())
        eps = tol(self.inst.treasury.min_cash_usd)
        if delta is not None:
            est = float((room + delta[None, :]).min())
            if est < -eps and est < before - tol(before):
                return False
        apply()
        after = float(self._cash_path()[0].min())
        if after >= -eps or after >= before - tol(before):
            return True
        undo()
        return False

    def _conversion_cash_bound(self, st: State, sid: str, t0: int, k: int) -> np.ndarray:
        """[T] optimistic effect of k blocks at (sid, t0) on cumulative cash: - capex + salvage and
        saved mining fixed opex of the units displaced (their lost mining margin, >= 0 under the
        operating rule, is left out)."""
        d, site = self.d, self.inst.site_by_id[sid]
        conv = site.conversion
        lead = d.lead_periods(conv.lead_months)
        flow = np.zeros(d.T)
        periods = d.capex_periods(t0, lead)
        for p in periods:
            if p < d.T:
                flow[p] -= k * site.block_it_mw * conv.capex_usd_per_mw / len(periods)
        units = st.site_units(sid)
        pos_now = site.asics_per_rack * np.maximum(st.mining_racks[sid], 0)
        pos_after = np.maximum(pos_now - site.asics_per_rack * k * conv.racks_per_block * (np.arange(d.T) >= t0), 0)
        displaced = np.maximum(units - pos_after, 0) - np.maximum(units - pos_now, 0)
        models = self.inst.fleet.asic_models
        salvage = max(m.salvage_usd_per_unit for m in models)
        opex = max(d.mining_opex_usd_per_unit(sid, m.name) for m in models)
        flow += np.diff(np.concatenate([[0.0], displaced])).clip(min=0) * salvage + displaced * opex
        if self.inst.treasury.mined_btc == "hold":  # mining earns no cash: its energy bill is saved
            flow += displaced * np.max([d.mwh_per_unit(sid, m.name) for m in models], axis=0) * self._max_energy_price(sid)
        return np.cumsum(flow)

    def _max_energy_price(self, sid: str) -> np.ndarray:
        """[T] highest USD/MWh any of the site's contracts could charge, over scenarios."""
        d = self.d
        pi = d.site_power_price(sid).max(axis=0)
        out = np.zeros(d.T)
        for c in self.inst.contracts:
            if c.site == sid:
                if isinstance(c, FixedContract):
                    p = d.contracts[c.id].price_usd_per_mwh
                elif isinstance(c, IndexContract):
                    p = pi + c.adder_usd_per_mwh
                else:
                    p = np.full(d.T, c.variable_cost_usd_per_mwh)
                out = np.maximum(out, p)
        return np.maximum(out, 0.0)

    # ------------------------------------------------------------ greedy

    def _expected(self) -> None:
        d = self.d
        p = d.prob
        self.e_pi = {s.id: p @ d.site_power_price(s.id) for s in self.inst.sites}
        self.e_rev = {m.name: p @ (d.btc_price_usd * d.btc_per_unit[m.name]) for m in self.inst.fleet.asic_models}

    def _unit_margin(self, sid: str) -> np.ndarray:
        """[T] expected mining margin (USD) of one unit of the site's current fleet mix."""
        d = self.d
        mix = {m: u for (s, m), u in d.initial_units.items() if s == sid and u > 0}
        if not mix:
            mix = {}
            for (_, m), u in d.initial_units.items():
                mix[m] = mix.get(m, 0.0) + u
        total = sum(mix.values())
        if total <= 0:
            return np.zeros(d.T)
        out = np.zeros(d.T)
        for m, u in mix.items():
            run = np.maximum(self.e_rev[m] - self.e_pi[sid] * d.mwh_per_unit(sid, m), 0.0)
            out += u / total * (run - d.mining_opex_usd_per_unit(sid, m))
        return out

    def lease_value(self, lid: str, sid: str, tau: int) -> float:
        d = self.d
        ld = d.leases[lid]
        l = ld.lease
        v = float(d.df @ (ld.rent_usd[tau] - ld.opex_usd[tau]))
        if ld.runs_past_horizon[tau]:   # NOI after the horizon net of fixed HPC opex and power (0 when not counted)
            v += float(d.df_end * (d.prob @ d.lease_terminal_usd(lid, tau, sid)))
        v -= float(ld.months_late[tau] * (l.late_penalty_usd_per_mw_month or 0.0) * l.it_mw * d.df[tau])
        if lease_credit_price(l) is None:   # the landlord bears the lease's power (no pass-through, margin before power)
            mwh = l.it_mw * self.inst.site_by_id[sid].pue_hpc * ld.active_hours[tau]
            v -= float(d.df @ (mwh * self.e_pi[sid]))
        return v

    def _conversion_cost(self, st: State, lid: str, sid: str, tau: int, t0: int, k: int) -> float:
        d, site = self.d, self.inst.site_by_id[sid]
        conv = site.conversion
        lead = d.lead_periods(conv.lead_months)
        mw = k * site.block_it_mw
        periods = d.capex_periods(t0, lead)
        cost = sum(d.df[p] for p in periods if p < d.T) * mw * conv.capex_usd_per_mw / len(periods)
        ready = np.arange(d.T) >= t0 + lead
        cost += float(d.df @ (ready * mw * site.fixed_opex_hpc_usd_per_mw_month * d.tl.period_months))
        # units displaced by the k blocks, on top of those earlier conversions already displace
        units = st.site_units(sid)
        pos_now = site.asics_per_rack * st.mining_racks[sid]
        pos_after = pos_now - site.asics_per_rack * k * conv.racks_per_block * (np.arange(d.T) >= t0)
        displaced = np.maximum(units - np.maximum(pos_after, 0), 0) - np.maximum(units - np.maximum(pos_now, 0), 0)
        ld = d.leases[lid]
        last = int(np.nonzero(ld.active[tau])[0][-1])
        window = (np.arange(d.T) >= t0) & (np.arange(d.T) <= last)
        margin = self._unit_margin(sid)
        cost += float(d.df @ (window * displaced * margin))
        mult = self.inst.horizon.terminal.mining_margin_multiple
        if mult > 0 and ld.runs_past_horizon[tau]:
            cost += float(d.df_end * d.terminal_mining_factor * displaced[-1] * max(margin[-1], 0.0))
        return cost

    def greedy(self) -> None:
        self._expected()
        d = self.d
        order = []
        for l in self.inst.leases:
            if l.id in self.leases or l.id in self.lease_never:
                continue
            taus = self._windows(l.id)
            s0 = self.inst.eligible_sites(l)[0]
            order.append((-self.lease_value(l.id, s0, taus[0]) / l.it_mw, l.id))
        for _, lid in sorted(order):
            st = self.state()
            opts = [self._option(st, lid, sid, tau) for sid in self.inst.eligible_sites(d.leases[lid].lease)
                    for tau in self._windows(lid)]
            # best V - C first; the next best only if the cash minimum rejects it
            for value, sid, tau, t0, k in sorted((o for o in opts if o is not None and o[0] > 0), key=lambda o: -o[0]):
                bound = self._conversion_cash_bound(st, sid, t0, k) if k > 0 else None
                if self._accept(lambda: self._take(lid, sid, tau, t0, k), lambda: self._untake(lid, sid, t0, k), bound):
                    break

    def _take(self, lid: str, sid: str, tau: int, t0: int, k: int) -> None:
        if k > 0:
            self._add_conv(sid, t0, k)
        self.leases[lid] = (sid, tau)

    def _untake(self, lid: str, sid: str, t0: int, k: int) -> None:
        if k > 0:
            self._add_conv(sid, t0, -k)
        self.leases.pop(lid)

    def _option(self, st: State, lid: str, sid: str, tau: int):
        """(V - C, site, tau, t0, k) of hosting lease lid at sid from tau, or None when infeasible."""
        d, site = self.d, self.inst.site_by_id[sid]
        if self.lease_fits(st, lid, sid, tau):
            return self.lease_value(lid, sid, tau), sid, tau, -1, 0
        conv = site.conversion
        if conv is None:
            return None
        ld = d.leases[lid]
        act = ld.active[tau].astype(bool)
        free = st.hpc_racks[sid] - st.used_racks(sid)
        short = float(np.max(d.lease_racks_needed[(lid, sid)] - free[act])) if act.any() else 0.0
        k = max(1, math.ceil(short / conv.racks_per_block - 1e-9))
        lead = d.lead_periods(conv.lead_months)
        for t0 in sorted((t for t in d.conversion_periods(sid) if t + lead <= tau), reverse=True):
            if not self.can_convert(st, st.spend_by_year, sid, t0, k):
                continue
            extra = k * conv.racks_per_block * (np.arange(d.T) >= t0 + lead)
            if not self.lease_fits(st, lid, sid, tau, extra):
                return None
            value = self.lease_value(lid, sid, tau) - self._conversion_cost(st, lid, sid, tau, t0, k)
            return value, sid, tau, t0, k
        return None

    # ------------------------------------------------------------ mining exits

    def exit_idle_sites(self, plan: Plan) -> Plan:
        """A site with ``mining_overhead`` whose ASICs are all gone from period t0 to the end (converted,
        retired, never bought) exits mining in t0 when the overhead it would still pay, discounted,
        exceeds the exit cost; a site that holds ASICs keeps mining (its overhead is part of mining)."""
        d = self.d
        st = build_state(d, plan)
        rows = []
        L = d.tl.period_months
        for site in self.inst.sites:
            mo = site.mining_overhead
            if mo is None:
                continue
            units = st.site_units(site.id) * (st.own[site.id] > 0.5)
            held = np.nonzero(units > tol(0))[0]
            t0 = int(held[-1]) + 1 if len(held) else 0
            if t0 > d.T - 1:
                continue
            owned = st.own[site.id][t0:]
            if not owned.any():
                continue
            saved = mo.usd_per_month * L * float(np.sum(owned * d.df[t0:]))
            if saved > mo.exit_cost_usd * d.df[t0]:
                rows.append((site.id, d.labels[t0]))
        if not rows:
            return plan
        return plan.replace(mining_exits=pd.DataFrame(rows, columns=["site", "month"]))

    # ------------------------------------------------------------ retirements

    def fit_fleet(self) -> None:
        """Retire units that no longer fit the mining racks (or sit at an unowned site),
        most power-hungry per TH first, in the period they stop fitting."""
        if not self.inst.fleet.allow_retirement:
            return
        st = self.state()
        models = sorted(self.inst.fleet.asic_models, key=lambda m: -m.efficiency_j_per_th)
        for site in self.inst.sites:
            cap = site.asics_per_rack * np.maximum(st.mining_racks[site.id], 0) * (st.own[site.id] > 0.5)
            gone = {m.name: 0.0 for m in models}
            for t in range(self.d.T):
                have = {m.name: st.units[(site.id, m.name)][t] - gone[m.name] for m in models}
                excess = sum(have.values()) - cap[t]
                if excess <= tol(cap[t]):
                    continue
                for m in models:
                    r = min(excess, max(have[m.name], 0.0))
                    if r > 0:
                        self.retirements.append((site.id, m.name, t, r))
                        gone[m.name] += r
                        excess -= r
                    if excess <= 0:
                        break
