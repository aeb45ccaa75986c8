"""The plan evaluator: the NPV, cash flows and rule violations of any plan, by plain arithmetic.

Independent of Pyomo: it rebuilds the first stage from the plan's decisions
(``optimizer.evaluate.firststage``), reads the operations (completing them with the operating rule of
``optimizer.evaluate.operations`` when the plan has none), computes every cash-flow line of
models/economics.md per period, site and scenario, and checks every constraint, producing one
readable sentence per broken rule. The MILP's reported NPV must equal ``evaluate(...).npv_usd``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from optimizer.economics.data import Data, compile_instance, lease_credit_price
from optimizer.economics.ledger import ITEM_ORDER, ITEMS, LEVERED_ITEMS, PORTFOLIO, TERMINAL_ITEMS
from optimizer.evaluate import financing
from optimizer.evaluate.firststage import State, build_state, fmt, period_of, tol
from optimizer.evaluate.horizon import TerminalFlag, terminal_flags, terminal_summary
from optimizer.evaluate.nonanticipativity import check_nonanticipativity, plan_groups
from optimizer.evaluate.statistics import Statistics
from optimizer.instance.schema import FixedContract, IndexContract, Instance, OwnedGeneration
from optimizer.kernel import finance
from optimizer.plan import Plan


@dataclass
class Evaluation:
    """What ``evaluate`` returns.

    - ``plan``: the evaluated plan (operations completed by the operating rule if it had none).
    - ``cashflows``: scenario, month, period, site (or ``portfolio``), item (``ITEMS``), usd,
      discount_factor, pv_usd; zero rows dropped; terminal items sit in the last period.
    - ``npv_usd`` (probability-weighted), ``npv_usd_by_scenario``.
    - ``violations``: one sentence per broken rule (first offending period, with a count of the rest).
    - ``allocation``: site x month (wide, one row per site and period; ``plan.csv``; on a tree
      plan with one first stage per path, the probability-weighted mean, and per scenario in
      ``allocation_by_scenario``, ``plan_by_scenario.csv``): owned,
      mining_racks, converting_racks (left mining, not yet HPC), hpc_racks, hpc_racks_leased,
      racks_<lease>, idle_racks (empty ASIC positions counted in racks + unleased HPC racks),
      mining_mw (installed ASIC nameplate), hpc_mw (critical IT), hpc_mw_leased, grid_mw,
      units_<model> (installed).
    - ``allocation_long``: the same positions tidy (``allocation.csv``): site, month, owned, use,
      asset, racks, mw, units; one row per non-empty (site, month, use, asset). ``use``:
      ``mining`` (asset: the ASIC model; racks = units / ASICs per rack, mw = nameplate power),
      ``mining_empty`` (ASIC positions without ASICs), ``converting`` (racks in works; mw = the
      critical IT they will give), ``hpc_leased`` (asset: the lease; mw = its critical IT at the
      site), ``hpc_unleased`` (HPC racks built, not leased). Per site and month, the racks of
      ``mining`` + ``mining_empty`` are ``mining_racks``, of ``hpc_leased`` + ``hpc_unleased``
      are ``hpc_racks`` (unleased clipped at 0).
    - ``energy_use``: scenario, month, site, use (``mining``: operating ASICs; ``hpc``: the
      leases' firm load), mwh (cooling included, PUE).
    - ``kpis``: scenario x month: hashrate_eh_s (operating), btc_mined, hpc_mw_online (HPC MW
      built at owned sites), hpc_mw_leased, cost_to_mine_usd_per_btc (mining's MWh share of each
      site's power cost net of energy sold, plus mining fixed opex, per BTC mined),
      hashprice_usd_per_ph_day, btc_price_usd, treasury_btc (end of period).
    - ``terminal_flags``: first-stage decisions only terminal values pay for
      (``optimizer.evaluate.horizon``); ``terminal()`` the NPV with and without terminal values.
    - with a financing section: ``valuation`` (project_npv_usd, equity_npv_usd, their values by
      scenario, equity_irr, project_irr, objective), ``debt_schedule`` (instrument x month: drawn,
      fees, interest, principal, debt service, balance) and ``tax_schedule`` (scenario x tax year:
      taxable lines, depreciation, interest deducted, taxable income, losses used and carried, tax;
      the deemed sale of terminal values as year ``end``; the taxes without debt, for the project
      NPV, as rows of system ``unlevered``).
    """

    plan: Plan
    cashflows: pd.DataFrame
    npv_usd: float
    npv_usd_by_scenario: dict[str, float]
    violations: list[str]
    allocation: pd.DataFrame
    kpis: pd.DataFrame
    probabilities: dict[str, float] = field(default_factory=dict)
    terminal_flags: list[TerminalFlag] = field(default_factory=list)
    valuation: dict = field(default_factory=dict)
    debt_schedule: pd.DataFrame = field(default_factory=pd.DataFrame)
    tax_schedule: pd.DataFrame = field(default_factory=pd.DataFrame)
    allocation_long: pd.DataFrame = field(default_factory=pd.DataFrame)
    energy_use: pd.DataFrame = field(default_factory=pd.DataFrame)
    allocation_by_scenario: pd.DataFrame = field(default_factory=pd.DataFrame)  # tree plans with one first stage per path

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def statistics(self) -> Statistics:
        """Money and energy grouped by site, use, item, year (``optimizer.evaluate.statistics``)."""
        return Statistics(self)

    def npv_breakdown(self) -> pd.DataFrame:
        """Expected PV (probability-weighted, USD) of each cash-flow line, in economics.md order.
        Index: item; column: pv_usd. The column sums to ``npv_usd``."""
        cf = self.cashflows
        prob = cf["scenario"].map(self.probabilities).astype(float)
        pv = (cf["pv_usd"] * prob).groupby(cf["item"]).sum()
        out = pd.DataFrame({"pv_usd": [float(pv.get(i, 0.0)) for i in ITEMS]}, index=pd.Index(ITEMS, name="item"))
        return out

    def terminal(self) -> dict:
        """The NPV with and without terminal values, each terminal line's expected PV and the flags
        (models/economics.md, "Decisions that lean on the horizon"): summary.json's ``terminal``."""
        out = terminal_summary(self.npv_usd, self.npv_breakdown()["pv_usd"])
        out["flags"] = [f.as_dict() for f in self.terminal_flags]
        return out

    def summary(self, instance_name: str, plan_name: str) -> dict:
        """The headline of an evaluation directory's summary.json."""
        bd = self.npv_breakdown()["pv_usd"]
        return {
            "instance": instance_name,
            "plan": plan_name,
            "npv_usd": float(self.npv_usd),
            "npv_usd_by_scenario": {str(k): float(v) for k, v in self.npv_usd_by_scenario.items()},
            "npv_breakdown_usd": {str(k): float(v) for k, v in bd.items()},
            "terminal": self.terminal(),
            "violations": [str(v) for v in self.violations],
            **self.valuation_summary(),
        }

    @property
    def objective_npv_usd(self) -> float:
        """The NPV the optimizer maximises for this instance: the equity NPV (``npv_usd``), or the
        project NPV when financing.objective is ``project``."""
        if self.valuation.get("objective") == "project":
            return float(self.valuation["project_npv_usd"])
        return float(self.npv_usd)

    def valuation_summary(self) -> dict:
        """summary.json keys of the valuation (empty without a financing section)."""
        v = self.valuation
        if not v:
            return {}
        return {k: v[k] for k in ("project_npv_usd", "equity_npv_usd", "equity_irr", "project_irr", "objective",
                                  "project_npv_usd_by_scenario", "equity_npv_usd_by_scenario")}

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables of an evaluation directory (``optimizer.solve.resultdir``)."""
        out = {"cashflows": self.cashflows, "plan": self.allocation, "allocation": self.allocation_long, "kpis": self.kpis,
               "npv_breakdown": self.npv_breakdown().reset_index()}
        if len(self.allocation_by_scenario):
            out["plan_by_scenario"] = self.allocation_by_scenario
        if self.valuation or not self.debt_schedule.empty:  # the debt assumed with a plant needs no financing section
            out["debt_schedule"] = self.debt_schedule_by_year()
        if self.valuation:
            out["tax_schedule"] = self.tax_schedule
        return out

    def debt_schedule_by_year(self) -> pd.DataFrame:
        """The debt schedule per instrument and calendar year: sums of drawn, fees, interest,
        principal and debt service; balance_usd owed at the end of the year's last period."""
        ds = self.debt_schedule
        cols = ["instrument", "kind", "year", "drawn_usd", "fees_usd", "interest_usd", "principal_usd", "debt_service_usd", "balance_usd"]
        if ds.empty:
            return pd.DataFrame(columns=cols)
        ds = ds.assign(year=ds["month"].str[:4].astype(int))
        g = ds.groupby(["instrument", "kind", "year"], sort=False)
        out = g[["drawn_usd", "fees_usd", "interest_usd", "principal_usd", "debt_service_usd"]].sum()
        out["balance_usd"] = g["balance_usd"].last()
        return out.reset_index()[cols]


def evaluate_as_given(instance: Instance, plan: Plan, data: Data | None = None) -> Evaluation:
    """NPV, cash flows, allocation, KPIs and violations of ``plan`` exactly as given (a plan
    without operation rows operates nothing; ``optimizer.evaluate.evaluate`` completes it first).

    On a scenario tree, a plan whose commitment rows carry nodes has one first stage per group
    of scenarios sharing the same rows (``nonanticipativity.plan_groups``): each group is
    evaluated on its own scenarios and the results are joined (the allocation table then gains a
    ``scenario`` column). Every plan is checked for non-anticipativity."""
    data = data if data is not None else compile_instance(instance)
    groups, node_violations = plan_groups(data, plan)
    if len(groups) == 1:
        st = build_state(data, plan)
        ops = _Ops(st, plan)
        ev = _Evaluator(st, ops, plan)
        ev.run()
        out = ev.result(plan)
    else:
        parts = []
        for ws, sub in groups:
            st = build_state(data.restrict(ws), sub)
            ev = _Evaluator(st, _Ops(st, sub), sub)
            ev.run()
            parts.append((ws, ev.result(sub)))
        out = _join(data, plan, parts)
    out.violations = _unique(node_violations + out.violations + check_nonanticipativity(data, plan))
    return out


def _unique(sentences: list[str]) -> list[str]:
    return list(dict.fromkeys(sentences))


def _join(data: Data, plan: Plan, parts: list[tuple[list[int], Evaluation]]) -> Evaluation:
    """One Evaluation from those of groups of scenarios (disjoint, covering all of them). The
    site x month allocation becomes the probability-weighted mean of the groups'; per scenario it
    is ``allocation_by_scenario``, and the tidy ``allocation_long`` gains a ``scenario`` column.
    The terminal flags are the groups' (each group's expected PV is its scenarios' share, so a
    decision taken at a node is flagged with its own expected PV; a root decision that several
    groups evaluate is flagged once per group, each with that group's share)."""
    names = data.scenario_names
    order = {n: i for i, n in enumerate(names)}

    def by_scenario(frames: list[tuple[list[int], pd.DataFrame]]) -> pd.DataFrame:
        out = pd.concat([pd.concat([f.assign(scenario=names[w]) for w in ws]) for ws, f in frames if len(f)], ignore_index=True) \
            if any(len(f) for _, f in frames) else pd.DataFrame()
        if len(out):
            out = out[["scenario"] + [c for c in out.columns if c != "scenario"]]
            out = out.sort_values(["scenario"], key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
        return out

    def scenario_sorted(df: pd.DataFrame) -> pd.DataFrame:
        if not len(df) or "scenario" not in df.columns:
            return df
        return df.sort_values(["scenario"], key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    cf = pd.concat([e.cashflows for _, e in parts], ignore_index=True)
    if len(cf):
        cf = cf.sort_values(["scenario", "period", "site", "item"], key=lambda s: s.map(ITEMS.index) if s.name == "item" else s,
                            kind="stable").reset_index(drop=True)
    npv_by = {n: v for _, e in parts for n, v in e.npv_usd_by_scenario.items()}
    alloc_by = by_scenario([(ws, e.allocation) for ws, e in parts])
    return Evaluation(
        plan=plan, cashflows=cf, npv_usd=float(sum(e.npv_usd for _, e in parts)),
        npv_usd_by_scenario={n: float(npv_by[n]) for n in names},
        violations=_unique([v for _, e in parts for v in e.violations]), allocation=_expected_allocation(alloc_by, data),
        kpis=scenario_sorted(pd.concat([e.kpis for _, e in parts], ignore_index=True)),
        probabilities={n: float(p) for n, p in zip(names, data.prob)},
        terminal_flags=list({f.sentence: f for _, e in parts for f in e.terminal_flags}.values()),
        valuation=_join_valuation([e.valuation for _, e in parts]),
        debt_schedule=by_scenario([(ws, e.debt_schedule) for ws, e in parts]),
        tax_schedule=scenario_sorted(pd.concat([e.tax_schedule for _, e in parts], ignore_index=True)),
        allocation_long=by_scenario([(ws, e.allocation_long) for ws, e in parts]),
        energy_use=scenario_sorted(pd.concat([e.energy_use for _, e in parts], ignore_index=True)),
        allocation_by_scenario=alloc_by,
    )


def _expected_allocation(by: pd.DataFrame, data: Data) -> pd.DataFrame:
    """Site x month: the probability-weighted mean of a per-scenario allocation (``owned``: the
    probability of owning the site)."""
    if not len(by):
        return by
    p = by["scenario"].map(dict(zip(data.scenario_names, data.prob))).astype(float)
    cols = [c for c in by.columns if c not in ("scenario", "site", "month")]
    out = by[cols].astype(float).mul(p, axis=0).groupby([by["site"], by["month"]], sort=False).sum().reset_index()
    return out[["site", "month"] + cols]


def _join_valuation(parts: list[dict]) -> dict:
    """Project and equity NPVs of groups of scenarios (probability-weighted parts add up); the
    IRRs of the joined expected flows are not recomputed (None)."""
    parts = [v for v in parts if v]
    if not parts:
        return {}
    out = {"objective": parts[0]["objective"], "project_npv_usd": sum(v["project_npv_usd"] for v in parts),
           "equity_npv_usd": sum(v["equity_npv_usd"] for v in parts), "equity_irr": None, "project_irr": None}
    for k in ("project_npv_usd_by_scenario", "equity_npv_usd_by_scenario"):
        out[k] = {n: x for v in parts for n, x in v[k].items()}
    return out


# ---------------------------------------------------------------- operations tables -> arrays


class _Ops:
    """Operation tables as arrays: op[S, M, W, T] units, energy [C, W, T] MWh, btc_sold [W, T]."""

    def __init__(self, st: State, plan: Plan) -> None:
        d, inst = st.data, st.data.inst
        self.st = st
        self.sites = [s.id for s in inst.sites]
        self.models = [m.name for m in inst.fleet.asic_models]
        self.contracts = [c.id for c in inst.contracts]
        S, M, C, W, T = len(self.sites), len(self.models), len(self.contracts), d.W, d.T
        self.op = np.zeros((S, M, W, T))
        self.delivered, self.used, self.sold = np.zeros((C, W, T)), np.zeros((C, W, T)), np.zeros((C, W, T))
        self.btc_sold = np.zeros((W, T))
        self.dr, self.pk = np.zeros((S, M, W, T)), np.zeros((S, M, W, T))  # units enrolled / off around the peak
        self.fed = np.zeros((C, S, W, T))  # MWh of plant c used at site s (plant_feeds)
        scen = {n: i for i, n in enumerate(d.scenario_names)}
        self._months: dict[str, int | None] = {}

        df = plan.operations
        idx = self._index(df, "operations", [("scenario", scen, "scenario"), ("site", _pos(self.sites), "site"),
                                             ("model", _pos(self.models), "ASIC model")])
        if idx is not None:
            ok, (w, s, m), t = idx
            u = self._values(df, "operations", "units", ok)
            np.add.at(self.op, (s, m, w, t), u)
        df = plan.energy
        idx = self._index(df, "energy", [("scenario", scen, "scenario"), ("contract", _pos(self.contracts), "contract")])
        if idx is not None:
            ok, (w, c), t = idx
            for col, arr in (("delivered_mwh", self.delivered), ("used_mwh", self.used), ("sold_mwh", self.sold)):
                np.add.at(arr, (c, w, t), self._values(df, "energy", col, ok))
        df = plan.btc_sales
        idx = self._index(df, "btc_sales", [("scenario", scen, "scenario")])
        if idx is not None:
            ok, (w,), t = idx
            np.add.at(self.btc_sold, (w, t), self._values(df, "btc_sales", "btc", ok))
        df = plan.curtailment
        idx = self._index(df, "curtailment", [("scenario", scen, "scenario"), ("site", _pos(self.sites), "site"),
                                              ("model", _pos(self.models), "ASIC model")])
        if idx is not None:
            ok, (w, s, m), t = idx
            np.add.at(self.dr, (s, m, w, t), self._values(df, "curtailment", "dr_units", ok))
            np.add.at(self.pk, (s, m, w, t), self._values(df, "curtailment", "peak_units", ok))
        df = plan.plant_feeds
        idx = self._index(df, "plant_feeds", [("scenario", scen, "scenario"), ("contract", _pos(self.contracts), "contract"),
                                              ("site", _pos(self.sites), "site")])
        if idx is not None:
            ok, (w, c, s), t = idx
            np.add.at(self.fed, (c, s, w, t), self._values(df, "plant_feeds", "mwh", ok))

    def _period(self, month: str, table: str) -> int | None:
        if month not in self._months:
            self._months[month] = period_of(self.st, month, f"plan.{table}")
        return self._months[month]

    def _index(self, df: pd.DataFrame, table: str, cols):
        if not len(df):
            return None
        ok = np.ones(len(df), dtype=bool)
        out = []
        for col, mapping, what in cols:
            vals = df[col].astype(str)
            pos = vals.map(mapping)
            bad = pos.isna().to_numpy()
            for v in pd.unique(vals[bad]):
                n = int((vals[bad] == v).sum())
                self.st.violations.append(f"plan.{table}: unknown {what} {v!r} ({n} row{'s' if n > 1 else ''})")
            ok &= ~bad
            out.append(pos)
        tt = df["month"].astype(str).map(lambda m: self._period(m, table))
        bad_t = tt.isna().to_numpy()
        ok &= ~bad_t
        return ok, tuple(p.to_numpy()[ok].astype(int) for p in out), tt.to_numpy()[ok].astype(int)

    def _values(self, df: pd.DataFrame, table: str, col: str, ok: np.ndarray) -> np.ndarray:
        v = df[col].to_numpy(dtype=float)[ok]
        bad = ~np.isfinite(v) | (v < -1e-6 * np.maximum(1.0, np.abs(np.nan_to_num(v))))
        if bad.any():
            row = int(np.nonzero(ok)[0][np.nonzero(bad)[0][0]])
            x = float(df[col].iloc[row])
            what = f"{col} {fmt(x)} is negative" if np.isfinite(x) else f"{col} is not a number"
            more = f" (and {int(bad.sum()) - 1} more rows)" if bad.sum() > 1 else ""
            self.st.violations.append(f"plan.{table} row {row}: {what}{more}")
        return np.where(np.isfinite(v), np.maximum(v, 0.0), 0.0)


def _pos(ids: list[str]) -> dict[str, int]:
    return {x: i for i, x in enumerate(ids)}


# ---------------------------------------------------------------- the evaluation


class _Evaluator:
    def __init__(self, st: State, ops: _Ops, plan: Plan) -> None:
        self.st, self.ops, self.d, self.inst, self.plan = st, ops, st.data, st.data.inst, plan
        self.fin_report = financing.FinancingReport()
        W, T = self.d.W, self.d.T
        self.W, self.T = W, T
        self.lines: dict[tuple[str, str], np.ndarray] = {}
        self.btc_by_site = np.zeros((len(ops.sites), W, T))
        self.mining_mwh = np.zeros((len(ops.sites), W, T))        # mining energy drawn (curtailment deducted)
        self.mining_mwh_full = np.zeros((len(ops.sites), W, T))   # before curtailment (grid; terminal mining)
        self.btc_full = np.zeros((len(ops.sites), W, T))          # BTC the operating units would mine uncurtailed
        self.load_mwh = np.zeros((len(ops.sites), W, T))
        self.mining_opex = np.zeros((len(ops.sites), T))

    # helpers
    def add(self, site: str, item: str, usd) -> None:
        """Add a line at ``site`` (USD [W, T], broadcast); a joint-venture site books its share of it."""
        arr = np.broadcast_to(np.asarray(usd, dtype=float), (self.W, self.T))
        share = self.d.share(site)
        if share != 1.0:
            arr = share * arr
        if np.any(arr != 0):
            self.lines[(site, item)] = self.lines.get((site, item), 0.0) + arr

    def where(self, prefix: str, w: int, t: int) -> str:
        scen = f" (scenario {self.d.scenario_names[w]})" if self.W > 1 else ""
        return f"{prefix} {self.d.labels[t]}{scen}"

    def report(self, bad: np.ndarray, sentence) -> None:
        """One sentence for the first offending (period, scenario) of a [W, T] mask, with a count of the rest."""
        bad = np.broadcast_to(bad, (self.W, self.T))
        cells = np.argwhere(bad.T)  # period-major: earliest period first
        if len(cells):
            t, w = cells[0]
            msg = sentence(int(w), int(t))
            if len(cells) > 1:
                msg += f" (and {len(cells) - 1} more period/scenario case{'s' if len(cells) > 2 else ''})"
            self.st.violations.append(msg)

    def run(self) -> None:
        for i, site in enumerate(self.inst.sites):
            self._site(i, site)
        for j, c in enumerate(self.inst.contracts):
            self._contract(j, c)
        self._energy_balance()
        self._first_stage_lines()
        self._hedges()
        self._treasury()
        self._terminal()
        self._financing()
        self._cash()

    # ------------------------------------------------------------ sites: mining, leases, opex

    def _site(self, i: int, site) -> None:
        st, d, ops = self.st, self.d, self.ops
        sid, L = site.id, d.tl.period_months
        P = d.btc_price_usd
        pi = d.site_power_price(sid)
        mining_mwh = np.zeros((self.W, self.T))
        btc = np.zeros((self.W, self.T))
        opex_mining = np.zeros(self.T)
        fx = d.flex(sid)
        phi_dr = fx.phi_dr[None, :] if fx is not None else 0.0
        phi_pk = fx.phi_peak[None, :] if fx is not None else 0.0
        curtailed_mwh, btc_lost = np.zeros((self.W, self.T)), np.zeros((self.W, self.T))
        enrolled_mw, running_mw = np.zeros((self.W, self.T)), np.zeros((self.W, self.T))
        for k, m in enumerate(ops.models):
            op = ops.op[i, k]
            inst_units = st.units[(sid, m)]
            mining_mwh += op * d.mwh_per_unit(sid, m)[None, :]
            btc += op * d.btc_per_unit[m]
            opex_mining += d.mining_opex_usd_per_unit(sid, m) * np.maximum(inst_units, 0)
            have = np.maximum(inst_units, 0.0)[None, :]
            over = op > have + 1e-6 * np.maximum(1.0, have)
            self.report(over, lambda w, t, op=op, u=inst_units, m=m: (
                f"{self.where('site ' + sid, w, t)}: {fmt(op[w, t])} operating units of model {m} exceed {fmt(max(u[t], 0))} installed"))
            dr, pk = ops.dr[i, k], ops.pk[i, k]
            if dr.any() or pk.any():
                self._curtailment(sid, m, op, dr, pk, fx)
            # curtailed units are off phi of the period: their BTC and energy are not produced / drawn
            cut_units = phi_dr * dr + phi_pk * pk
            curtailed_mwh += cut_units * d.mwh_per_unit(sid, m)[None, :]
            btc_lost += cut_units * d.btc_per_unit[m]
            enrolled_mw += dr * d.mw_per_unit(sid, m)
            running_mw += (op - pk) * d.mw_per_unit(sid, m)
        hpc_mwh = st.hpc_mwh(sid)
        full = mining_mwh
        load = full - curtailed_mwh + hpc_mwh
        self.mining_mwh_full[i], self.btc_full[i] = full, btc
        self.mining_mwh[i], self.load_mwh[i], self.btc_by_site[i], self.mining_opex[i] = full - curtailed_mwh, load, btc - btc_lost, opex_mining
        cap_mwh = st.grid_mw[sid] * d.hours
        firm = full + hpc_mwh  # the grid carries the load before curtailment
        self.report(firm > cap_mwh[None, :] + 1e-6 * np.maximum(1.0, cap_mwh)[None, :], lambda w, t: (
            f"{self.where('site ' + sid, w, t)}: load {fmt(firm[w, t] / d.hours[t])} MW exceeds grid {fmt(st.grid_mw[sid][t])} MW "
            f"({fmt(firm[w, t])} MWh > {fmt(cap_mwh[t])} MWh)"))
        if sid in st.mine_on:
            off = (st.mine_on[sid] < 0.5)[None, :] & (full > 1e-6)
            self.report(off, lambda w, t: (f"{self.where('site ' + sid, w, t)}: mines {fmt(full[w, t])} MWh after exiting mining "
                                           f"in {d.labels[st.exit_at[sid]] if sid in st.exit_at else 'that month'}"))
        if fx is not None:
            self.add(sid, "demand_response_usd", fx.dr_pay_usd_per_mw[None, :] * enrolled_mw)
            hpc_mw = hpc_mwh / d.hours[None, :]
            self.add(sid, "peak_charge_usd", -fx.peak_usd_per_mw[None, :] * (running_mw + hpc_mw))
        self.add(sid, "mining_revenue_usd", P * self.btc_by_site[i])
        runs = st.site_leases(sid)
        zero = np.zeros((self.W, self.T))
        self.add(sid, "lease_revenue_usd", sum((r.rent_usd for r in runs), zero))
        self.add(sid, "lease_prepayment_usd", sum((r.prepayment_usd for r in runs), zero))
        self.add(sid, "tenant_credit_loss_usd", -sum((r.credit_loss_usd for r in runs), zero))
        self.add(sid, "lease_delay_damages_usd", -sum((r.damages_usd for r in runs), zero))
        # the lease's HPC energy credited to the landlord: the tenant's reimbursement (pass-through,
        # at the site's energy price or the market price) or, for an after-power NOI margin, the
        # power the margin's opex already holds, credited back at the site's energy price
        passthrough, credit = np.zeros((self.W, self.T)), np.zeros((self.W, self.T))
        for r in runs:
            lease = d.leases[r.lease].lease
            kind = lease_credit_price(lease)
            if kind is None:
                continue
            usd = site.pue_hpc * r.it_mwh * (d.site_energy_price[sid] if kind == "site" else pi)
            if lease.power_passthrough:
                passthrough += usd
            else:
                credit += usd
        self.add(sid, "power_passthrough_usd", passthrough)
        opex_hpc = site.fixed_opex_hpc_usd_per_mw_month * st.hpc_mw(sid) * st.own[sid] * L
        lease_opex = sum((r.opex_usd for r in runs), zero)
        gpu_opex, gpu_rev = np.zeros(self.T), zero
        for (oid, s2), g in st.gpus.items():
            if s2 != sid:
                continue
            gd = d.gpus[oid]
            gpu_opex = gpu_opex + gd.opex_usd_per_mw * g.online_mw
            merchant = g.online_mw - st.gpu_held.get((oid, sid), np.zeros(self.T))
            gpu_rev = gpu_rev + gd.merchant_usd_per_mw * merchant[None, :]
        self.add(sid, "gpu_cloud_revenue_usd", gpu_rev)
        self.add(sid, "opex_usd", credit - (opex_mining + opex_hpc + gpu_opex)[None, :] - lease_opex)

    def _curtailment(self, sid: str, m: str, op: np.ndarray, dr: np.ndarray, pk: np.ndarray, fx) -> None:
        """Units enrolled in demand response or off around the peak: at most the operating units, and
        only in periods where the market runs the program."""
        for arr, what, active in ((dr, "enrolled in demand response", None if fx is None else fx.dr_pay_usd_per_mw > 0),
                                  (pk, "off around the transmission peak", None if fx is None else fx.peak_usd_per_mw > 0)):
            self.report(arr > op + 1e-6 * np.maximum(1.0, op), lambda w, t, arr=arr, what=what: (
                f"{self.where('site ' + sid, w, t)}: {fmt(arr[w, t])} units of model {m} {what} exceed the {fmt(op[w, t])} operating"))
            no = arr > 1e-6
            if active is not None:
                no = no & ~active[None, :]
            self.report(no, lambda w, t, arr=arr, what=what: (
                f"{self.where('site ' + sid, w, t)}: {fmt(arr[w, t])} units of model {m} {what} but the site's market "
                f"has no such program that month"))

    # ------------------------------------------------------------ power contracts

    def _contract(self, j: int, c) -> None:
        st, d, ops = self.st, self.d, self.ops
        cd = d.contracts[c.id]
        dl, us, so = ops.delivered[j], ops.used[j], ops.sold[j]
        fed = ops.fed[j].sum(axis=0)  # [W, T] used at other sites
        pi = d.site_power_price(c.site)
        hours = st.contract_hours[c.id]  # term x signed x owned
        name = f"contract {c.id}"
        any_e = np.maximum(np.maximum(np.maximum(dl, us), so), fed)
        flow = any_e > 1e-6 * np.maximum(1.0, any_e)
        outside = flow & (cd.active_hours <= 0)[None, :]
        first, last = self.inst.contract_window(c)
        self.report(outside, lambda w, t: f"{self.where(name, w, t)}: {fmt(any_e[w, t])} MWh outside its term ({d.labels[first]}..{d.labels[last]})")
        unsigned = flow & ~outside & (not st.signed[c.id])
        self.report(unsigned, lambda w, t: f"{self.where(name, w, t)}: {fmt(any_e[w, t])} MWh used but the optional contract is not signed")
        unowned = flow & ~outside & ~unsigned & (st.own[c.site] < 0.5)[None, :]
        self.report(unowned, lambda w, t: f"{self.where(name, w, t)}: {fmt(any_e[w, t])} MWh while site {c.site} is not owned")
        avail = hours[None, :]

        def cap_check(x: np.ndarray, cap_mw: float, what: str) -> None:
            lim = cap_mw * avail
            bad = (x > lim + 1e-6 * np.maximum(1.0, lim)) & ~outside & ~unsigned & ~unowned
            self.report(bad, lambda w, t: f"{self.where(name, w, t)}: {what} {fmt(x[w, t])} MWh exceeds the cap {fmt(lim[0, t])} MWh ({fmt(cap_mw)} MW x {fmt(hours[t])} h)")

        can_sell = (isinstance(c, FixedContract) and c.sell_back_allowed) or (isinstance(c, OwnedGeneration) and c.can_export)
        if isinstance(c, IndexContract):
            if c.mw_cap is not None:
                cap_check(us, c.mw_cap, "used")
            self.add(c.site, "power_cost_usd", -(pi + c.adder_usd_per_mwh) * us)
        else:
            cap_check(dl, c.mw_cap if isinstance(c, FixedContract) else d.lev.plants[c.id].cap_mw, "delivered")
            self.report(us + fed > dl + 1e-6 * np.maximum(1.0, dl), lambda w, t: (
                f"{self.where(name, w, t)}: used {fmt(us[w, t])} MWh" + (f" + fed to other sites {fmt(fed[w, t])} MWh" if fed[w, t] else "")
                + f" exceeds delivered {fmt(dl[w, t])} MWh"))
            if isinstance(c, FixedContract):
                charge = finance.take_or_pay_charge_usd(cd.price_usd_per_mwh[None, :], dl, c.mw_cap, c.take_or_pay_min_share, avail)
                self.add(c.site, "power_cost_usd", -charge)
            else:
                fixed = c.fixed_cost_usd_per_month * cd.months_active * st.own[c.site] * float(st.signed[c.id])
                self.add(c.site, "power_cost_usd", -(c.variable_cost_usd_per_mwh * dl + fixed[None, :]))
                fuel = d.lev.plants[c.id].fuel_usd_per_mwh
                if fuel is not None:
                    self.add(c.site, "fuel_cost_usd", -fuel * dl)
        if fed.any():
            feeds = set(c.feeds) if isinstance(c, OwnedGeneration) else set()
            for i, site in enumerate(self.inst.sites):
                bad = ops.fed[j, i] > 1e-6
                if site.id not in feeds:
                    self.report(bad, lambda w, t, i=i, sid=site.id: (
                        f"{self.where(name, w, t)}: feeds {fmt(ops.fed[j, i][w, t])} MWh to site {sid}, which it may not feed "
                        "(an owned plant feeds the sites listed in its feeds)"))
        if not can_sell:
            self.report(so > 1e-6 * np.maximum(1.0, so), lambda w, t: f"{self.where(name, w, t)}: sells {fmt(so[w, t])} MWh but selling energy back is not allowed")
        else:
            room = dl - us - fed
            self.report(so > room + 1e-6 * np.maximum(1.0, dl), lambda w, t: (
                f"{self.where(name, w, t)}: sold {fmt(so[w, t])} MWh exceeds delivered - used" + (" - fed" if fed.any() else "")
                + f" = {fmt(room[w, t])} MWh"))
        self.add(c.site, "power_sold_usd", so * pi)

    def _energy_balance(self) -> None:
        for i, site in enumerate(self.inst.sites):
            js = [j for j, c in enumerate(self.inst.contracts) if c.site == site.id]
            used = self.ops.used[js].sum(axis=0) if js else np.zeros((self.W, self.T))
            used = used + self.ops.fed[:, i].sum(axis=0)  # energy of plants of other sites feeding this one
            load = self.load_mwh[i]
            self.report(np.abs(used - load) > 1e-6 * np.maximum(1.0, load), lambda w, t: (
                f"{self.where('site ' + site.id, w, t)}: energy used from contracts {fmt(used[w, t])} MWh differs from the load "
                f"{fmt(load[w, t])} MWh (mining {fmt(self.mining_mwh[i][w, t])} + HPC {fmt(load[w, t] - self.mining_mwh[i][w, t])})"))

    # ------------------------------------------------------------ first stage, treasury, terminal, cash

    def _first_stage_lines(self) -> None:
        for (site, item), arr in self.st.items.items():
            self.add(site, item, arr[None, :])

    def _treasury(self) -> None:
        tr, d = self.inst.treasury, self.d
        P = d.btc_price_usd
        # BTC mined at a joint-venture site: the company's share
        mined = sum(self.d.share(s.id) * self.btc_by_site[i] for i, s in enumerate(self.inst.sites))
        sold = self.ops.btc_sold
        if tr.mined_btc == "hold":
            self.add(PORTFOLIO, "btc_retained_usd", -P * mined)
            inflow = mined
        else:
            inflow = np.zeros_like(mined)
        self.treasury_btc = tr.btc_held_start + np.cumsum(inflow - sold, axis=1)
        self.add(PORTFOLIO, "treasury_sales_usd", P * sold)
        if not tr.allow_treasury_sales:
            self.report(sold > 1e-9, lambda w, t: f"{self.where('treasury', w, t)}: sells {fmt(sold[w, t])} BTC but treasury.allow_treasury_sales is false")
        tre = self.treasury_btc
        self.report(tre < -1e-6 * np.maximum(1.0, tr.btc_held_start), lambda w, t: f"{self.where('treasury', w, t)}: BTC balance {fmt(tre[w, t])} BTC is negative")

    def _terminal(self) -> None:
        """The terminal lines of models/economics.md ("Terminal values"), in the last period's rows
        (discounted with the horizon-end factor ``Data.df_end``)."""
        st, d, rule = self.st, self.d, self.inst.horizon.terminal
        T = self.T
        last = np.zeros(T)
        last[-1] = 1.0
        end = lambda v: np.asarray(v, dtype=float).reshape(-1, 1) * last[None, :]  # noqa: E731  [W] -> [W, T]
        for i, site in enumerate(self.inst.sites):
            sid = site.id
            mw_rack = site.hpc_mw_per_rack
            past = [r for r in st.site_leases(sid) if r.runs_past_horizon]
            if rule.lease_remaining_noi and past:
                # NOI after the horizon - the site's fixed HPC opex on the lease's racks over those
                # months - the power the landlord still bears (net of what the tenant reimburses):
                # Data.lease_terminal_usd (tranches, delays, renewals and credit included)
                self.add(sid, "terminal_lease_noi_usd", end(sum((r.terminal_usd for r in past), np.zeros(self.W))))
            if rule.hpc_unleased_noi_usd_per_mw_year > 0:
                # HPC MW not under lease at the end are worth the market value V; MW under a lease running
                # past the horizon revert to V when it ends (reversion factor of each tranche's months
                # after the end); GPUs in service at the end hold their racks (valued at book value)
                taken = sum(r.end_racks for r in past) + st.gpu_racks(sid)[-1]
                free_mw = (st.hpc_racks[sid][-1] * st.own[sid][-1] - taken) * mw_rack
                back_mw = sum(r.end_racks_back * mw_rack for r in past)
                self.add(sid, "terminal_hpc_usd", end((free_mw + back_mw) * d.hpc_value_usd_per_mw[sid]))
            if rule.mining_margin_multiple > 0:  # the operating units' margin, before any curtailment
                # keep mining (multiple x annualised margin of the last period at the site's energy price
                # after the horizon) or retire (salvage, counted in terminal_asic_salvage_usd): the line is
                # what keeping adds, max(0, k x margin - salvage)
                margin = (d.btc_price_usd[:, -1] * self.btc_full[i][:, -1]
                          - self.mining_mwh_full[i][:, -1] * d.terminal_mining_price[sid] - self.mining_opex[i][-1])
                retire = sum(max(st.units[(sid, m.name)][-1], 0.0) * d.mining_salvage_usd_per_unit(m.name)
                             for m in self.inst.fleet.asic_models)
                self.add(sid, "terminal_mining_usd", end(np.maximum(d.terminal_mining_factor * margin - retire, 0.0)))
            if rule.asic_salvage:
                units = sum(max(st.units[(sid, m.name)][-1], 0.0) * m.salvage_usd_per_unit for m in self.inst.fleet.asic_models)
                self.add(sid, "terminal_asic_salvage_usd", units * last)
        for c in self.inst.contracts:
            # a plant owned at the end keeps its residual value (only while its term runs to the end)
            if isinstance(c, OwnedGeneration) and c.residual_value_usd > 0 and d.contracts[c.id].runs_to_horizon_end:
                owned_end = st.own[c.site][-1] * float(st.signed[c.id])
                self.add(c.site, "terminal_generation_usd", c.residual_value_usd * owned_end * last)
        if rule.treasury_btc:
            self.add(PORTFOLIO, "terminal_treasury_usd", end(d.btc_price_usd[:, -1] * self.treasury_btc[:, -1]))

    def _hedges(self) -> None:
        """Hashprice forwards: each scenario's payoff PH/s x (price - hashprice) x delivery days; the
        PH/s sold for a period at most max_share x the expected hashrate produced then (company's share)."""
        st, d = self.st, self.d
        if not st.hedged_ph:
            return
        th = np.array([self.inst.model_by_name[m].hashrate_th_s for m in self.ops.models])
        ph = np.zeros((self.W, self.T))  # PH/s produced, the company's share
        for i, site in enumerate(self.inst.sites):  # produced: operating units less the curtailed share
            fx = d.flex(site.id)
            cut = 0.0 if fx is None else (fx.phi_dr[None, None, :] * self.ops.dr[i] + fx.phi_peak[None, None, :] * self.ops.pk[i])
            ph += d.share(site.id) * np.einsum("mwt,m->wt", self.ops.op[i] - cut, th) / 1000.0
        expected = d.prob @ ph
        for fid, sold in st.hedged_ph.items():
            fd = d.lev.forwards[fid]
            cap = fd.forward.max_share_of_expected_hashrate * expected
            bad = np.nonzero(sold > cap + 1e-6 * np.maximum(1.0, cap))[0]
            if len(bad):
                t = bad[0]
                st.violations.append(f"hashprice forward {fid} {d.labels[t]}: {fmt(sold[t])} PH/s sold exceed max_share_of_expected_hashrate "
                                     f"{fd.forward.max_share_of_expected_hashrate:g} x the {fmt(expected[t])} PH/s expected"
                                     + (f" (and {len(bad) - 1} more periods)" if len(bad) > 1 else ""))
            hp_days = d.hashprice_usd_per_ph_day * fd.days[None, :]
            self.add(PORTFOLIO, "hedge_payoff_usd", sold[None, :] * (fd.notional_usd_per_ph[None, :] - hp_days))

    def _financing(self) -> None:
        """Debt lines, then taxes (levered, into the lines; unlevered, kept for the project NPV)."""
        assumed = financing.run_assumed_debt(self)
        if self.d.fin is None:
            if len(self.plan.debt):
                self.st.violations.append(f"plan.debt: {len(self.plan.debt)} row(s) but the instance has no financing section")
            self.fin_report.debt_schedule = assumed
            return
        self.fin_report = financing.run_debt(self, self.plan)
        if len(assumed):
            self.fin_report.debt_schedule = pd.concat([self.fin_report.debt_schedule, assumed], ignore_index=True)
        tx = self.d.fin.taxes
        if tx is not None and tx.rate > 0:
            lev = financing.run_taxes(self, levered=True)
            self.fin_report.unlevered = financing.run_taxes(self, levered=False)
            financing.add_tax_lines(self, lev)
            self.fin_report.tax_schedule = pd.concat([lev.table.assign(system="levered")[["system", *lev.table.columns]],
                                                      self.fin_report.unlevered.table], ignore_index=True)

    def _cash(self) -> None:
        tr = self.inst.treasury
        if tr.cash_start_usd is None:
            return
        net = np.zeros((self.W, self.T))
        for (_s, item), arr in self.lines.items():
            if item not in TERMINAL_ITEMS:
                net = net + arr
        cash = tr.cash_start_usd + np.cumsum(net, axis=1)
        self.cash_usd = cash
        self.report(cash < tr.min_cash_usd - tol(tr.min_cash_usd), lambda w, t: (
            f"{self.where('cash', w, t)}: balance {fmt(cash[w, t])} USD is below the minimum {fmt(tr.min_cash_usd)} USD"))

    # ------------------------------------------------------------ result tables

    def result(self, plan: Plan) -> Evaluation:
        d = self.d
        keys = sorted(self.lines, key=lambda k: (k[0] == PORTFOLIO, k[0], ITEM_ORDER[k[1]]))
        names = d.scenario_names
        if keys:
            arr = np.stack([self.lines[k] for k in keys])  # [K, W, T]
            # terminal lines sit in the last period's rows but take the horizon-end factor (Data.item_df)
            dfs = np.stack([d.item_df(k[1]) for k in keys])  # [K, T]
            k, w, t = np.nonzero(arr)
            usd = arr[k, w, t]
            cf = pd.DataFrame({
                "scenario": np.array(names, dtype=object)[w], "month": np.array(d.labels, dtype=object)[t], "period": t,
                "site": np.array([x[0] for x in keys], dtype=object)[k], "item": np.array([x[1] for x in keys], dtype=object)[k],
                "usd": usd, "discount_factor": dfs[k, t], "pv_usd": usd * dfs[k, t],
            })
            cf = cf.sort_values(["scenario", "period", "site", "item"], key=lambda s: s.map(ITEMS.index) if s.name == "item" else s,
                                kind="stable").reset_index(drop=True)
            npv_w = np.einsum("kwt,kt->w", arr, dfs)
        else:
            cf = pd.DataFrame({c: pd.Series(dtype=float if c in ("usd", "discount_factor", "pv_usd") else (int if c == "period" else object))
                               for c in ["scenario", "month", "period", "site", "item", "usd", "discount_factor", "pv_usd"]})
            npv_w = np.zeros(self.W)
        return Evaluation(
            plan=plan, cashflows=cf, npv_usd=float(d.prob @ npv_w),
            npv_usd_by_scenario={n: float(v) for n, v in zip(names, npv_w)},
            violations=list(self.st.violations), allocation=self._allocation(), kpis=self._kpis(),
            probabilities={n: float(p) for n, p in zip(names, d.prob)}, terminal_flags=terminal_flags(self.st),
            valuation=self._valuation(npv_w), debt_schedule=self.fin_report.debt_schedule,
            tax_schedule=self.fin_report.tax_schedule,
            allocation_long=self._allocation_long(), energy_use=self._energy_use(),
        )

    def _valuation(self, equity_w: np.ndarray) -> dict:
        """Project NPV (unlevered lines + taxes without debt), equity NPV (every line) and IRRs of
        the expected cash flows (terminal values as a flow of the last period)."""
        d = self.d
        if d.fin is None:
            return {}
        names, prob = d.scenario_names, d.prob
        unl = self.fin_report.unlevered
        other = d.fin.df_class["other"]
        project_w = np.zeros(self.W)
        proj_flow, eq_flow = np.zeros((self.W, self.T)), np.zeros((self.W, self.T))
        for (_s, item), arr in self.lines.items():
            eq_flow += arr
            if item not in LEVERED_ITEMS:
                project_w += arr @ d.item_df(item)
                proj_flow += arr
        if unl is not None:
            project_w -= unl.tax @ other + unl.terminal_tax * d.item_df("terminal_tax_usd")[-1]
            proj_flow -= unl.tax
            proj_flow[:, -1] -= unl.terminal_tax
        L = d.tl.period_months
        return {
            "objective": d.fin.fin.objective,
            "project_npv_usd": float(prob @ project_w), "equity_npv_usd": float(prob @ equity_w),
            "project_npv_usd_by_scenario": {n: float(v) for n, v in zip(names, project_w)},
            "equity_npv_usd_by_scenario": {n: float(v) for n, v in zip(names, equity_w)},
            "equity_irr": finance.irr_per_year(prob @ eq_flow, L), "project_irr": finance.irr_per_year(prob @ proj_flow, L),
        }

    def _allocation(self) -> pd.DataFrame:
        st, d, inst = self.st, self.d, self.inst
        frames = []
        for site in inst.sites:
            sid = site.id
            units = {m.name: st.units[(sid, m.name)] for m in inst.fleet.asic_models}
            n_units = sum(units.values())
            leased = st.leased_racks(sid)
            f = pd.DataFrame({
                "site": sid, "month": d.labels, "owned": st.own[sid] > 0.5,
                "mining_racks": st.mining_racks[sid], "converting_racks": st.converting_racks[sid],
                "hpc_racks": st.hpc_racks[sid], "hpc_racks_leased": leased,
            })
            for l in inst.leases:
                f[f"racks_{l.id}"] = sum((r.racks for r in st.site_leases(sid) if r.lease == l.id), np.zeros(self.T))
            if inst.gpu_cloud is not None:
                f["hpc_racks_gpu"] = st.gpu_racks(sid)
            f["idle_racks"] = (np.maximum(st.mining_racks[sid] - n_units / site.asics_per_rack, 0.0)
                               + np.maximum(st.hpc_racks[sid] - st.used_racks(sid), 0.0))
            f["mining_mw"] = sum(units[m.name] * m.power_w / 1e6 for m in inst.fleet.asic_models)
            f["hpc_mw"] = st.hpc_mw(sid)
            f["hpc_mw_leased"] = sum((r.held_mw for r in st.site_leases(sid) if r.gpu_option is None), np.zeros(self.T))
            if inst.gpu_cloud is not None:
                f["gpu_mw"] = st.gpu_mw(sid)
            f["grid_mw"] = st.grid_mw[sid]
            for m, u in units.items():
                f[f"units_{m}"] = u
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def _allocation_long(self) -> pd.DataFrame:
        st, d, inst = self.st, self.d, self.inst
        cols = ["site", "month", "owned", "use", "asset", "racks", "mw", "units"]
        chunks: dict[str, list] = {c: [] for c in cols}  # one frame at the end (a frame per group cost ~5 ms a plan)
        labels = np.array(d.labels, dtype=object)

        def rows(sid, owned, use, asset, racks, mw, units=None) -> None:
            racks, mw = np.asarray(racks, float), np.asarray(mw, float)
            keep = (np.abs(racks) > 1e-9) | (np.abs(mw) > 1e-9)
            n = int(keep.sum())
            if n:
                for c, v in (("site", sid), ("use", use), ("asset", asset)):
                    chunks[c].append(np.full(n, v, dtype=object))
                chunks["month"].append(labels[keep])
                chunks["owned"].append(owned[keep])
                chunks["racks"].append(racks[keep])
                chunks["mw"].append(mw[keep])
                chunks["units"].append(np.full(n, np.nan) if units is None else np.asarray(units, float)[keep])

        for site in inst.sites:
            sid = site.id
            owned = st.own[sid] > 0.5
            n_units = np.zeros(self.T)
            for m in inst.fleet.asic_models:
                u = np.maximum(st.units[(sid, m.name)], 0.0)
                n_units += u
                rows(sid, owned, "mining", m.name, u / site.asics_per_rack, u * m.power_w / 1e6, u)
            rows(sid, owned, "mining_empty", "", np.maximum(st.mining_racks[sid] - n_units / site.asics_per_rack, 0.0), np.zeros(self.T))
            rows(sid, owned, "converting", "", st.converting_racks[sid], st.converting_racks[sid] * site.hpc_mw_per_rack)
            leased_racks, leased_mw = np.zeros(self.T), np.zeros(self.T)
            for l in inst.leases:
                runs = [r for r in st.site_leases(sid) if r.lease == l.id]
                racks = sum((r.racks for r in runs), np.zeros(self.T))
                mw = sum((r.held_mw for r in runs if r.gpu_option is None), np.zeros(self.T))
                leased_racks, leased_mw = leased_racks + racks, leased_mw + mw
                rows(sid, owned, "hpc_leased", l.id, racks, mw)
            for (oid, s2), g in st.gpus.items():
                if s2 == sid:
                    racks = g.online_mw * 1000.0 / site.hpc_kw_per_rack
                    leased_racks, leased_mw = leased_racks + racks, leased_mw + g.online_mw
                    rows(sid, owned, "gpu_cloud", oid, racks, g.online_mw)
            rows(sid, owned, "hpc_unleased", "", np.maximum(st.hpc_racks[sid] - leased_racks, 0.0),
                 np.maximum(st.hpc_mw(sid) - leased_mw, 0.0))
        if not chunks["site"]:
            return pd.DataFrame({c: pd.Series(dtype=float if c in ("racks", "mw", "units") else object) for c in cols})
        return pd.DataFrame({c: np.concatenate(v) for c, v in chunks.items()})

    def _energy_use(self) -> pd.DataFrame:
        """Rows ordered site, scenario, use (mining, then hpc), month; one frame built from arrays
        (a frame per site, scenario and use cost ~8 ms a plan on the demo, a sweep pays it per point)."""
        d, sites = self.d, self.inst.sites
        S, W, T = len(sites), self.W, self.T
        mwh = np.empty((S, W, 2, T))
        mwh[:, :, 0, :] = self.mining_mwh
        for i, site in enumerate(sites):
            mwh[i, :, 1, :] = self.st.hpc_mwh(site.id)
        s, w, u, t = (a.ravel() for a in np.indices((S, W, 2, T)))
        return pd.DataFrame({
            "scenario": np.array(d.scenario_names, dtype=object)[w], "month": np.array(d.labels, dtype=object)[t],
            "site": np.array([x.id for x in sites], dtype=object)[s], "use": np.array(["mining", "hpc"], dtype=object)[u],
            "mwh": mwh.ravel(),
        })

    def _kpis(self) -> pd.DataFrame:
        st, d, inst, ops = self.st, self.d, self.inst, self.ops
        th = np.array([inst.model_by_name[m].hashrate_th_s for m in ops.models])
        cut = np.zeros_like(ops.op)  # units off on average (demand response, peak avoidance)
        for i, site in enumerate(inst.sites):
            fx = d.flex(site.id)
            if fx is not None:
                cut[i] = fx.phi_dr[None, None, :] * ops.dr[i] + fx.phi_peak[None, None, :] * ops.pk[i]
        hashrate = np.einsum("smwt,m->wt", ops.op - cut, th) / 1e6
        btc = self.btc_by_site.sum(axis=0)
        # mining's share of each site's net power cost, pro rata to MWh, plus mining fixed opex
        cost = np.zeros((self.W, self.T))
        for i, site in enumerate(inst.sites):
            net = -sum(self.lines.get((site.id, x), 0.0) for x in ("power_cost_usd", "fuel_cost_usd", "power_sold_usd"))
            net = net / d.share(site.id)  # the whole site's, like its BTC (lines book a joint venture's share)
            share = np.divide(self.mining_mwh[i], self.load_mwh[i], out=np.zeros((self.W, self.T)), where=self.load_mwh[i] > 0)
            overhead = -self.lines.get((site.id, "site_overhead_usd"), 0.0) / d.share(site.id)
            cost += net * share + self.mining_opex[i][None, :] + overhead
        hpc_online = sum(st.hpc_mw(s.id) * st.own[s.id] for s in inst.sites)
        hpc_leased = sum((r.held_mw for r in st.leases if r.gpu_option is None), np.zeros(self.T))
        rows = []
        for w, name in enumerate(d.scenario_names):
            rows.append(pd.DataFrame({
                "scenario": name, "month": d.labels, "hashrate_eh_s": hashrate[w], "btc_mined": btc[w],
                "hpc_mw_online": hpc_online, "hpc_mw_leased": hpc_leased,
                "cost_to_mine_usd_per_btc": np.divide(cost[w], btc[w], out=np.full(self.T, np.nan), where=btc[w] > 1e-12),
                "hashprice_usd_per_ph_day": d.hashprice_usd_per_ph_day[w],
                "btc_price_usd": d.btc_price_usd[w], "treasury_btc": self.treasury_btc[w],
            }))
        return pd.concat(rows, ignore_index=True)
