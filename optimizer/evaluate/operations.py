"""The operating rule: how a plan's first stage is run in every scenario, site and period.

Given the investment decisions (racks, installed units, running leases, signed contracts,
ownership, grid capacity), the rule fills the plan's ``operations``, ``energy`` and
``btc_sales`` tables. Periods and sites do not interact through operations (treasury aside),
so each (scenario, site, period) is a small LP solved exactly by a merit-order greedy:

Supply segments and their marginal cost of USE (USD/MWh; ``pi`` market price, ``h`` hours the
contract may deliver this period, ``M = min_share x cap x h``, ``C = cap x h``):
- fixed, no sell-back: delivered = used; the take-or-pay minimum is paid anyway, so the first
  ``M`` MWh cost 0 (sunk) and the rest up to ``C`` cost the escalated price ``p``.
- fixed with sell-back: energy taken and not used is sold at ``pi``. If ``pi >= p`` the whole cap
  is taken (every MWh earns pi - p >= 0) and using a MWh forgoes its sale: cost ``pi`` on all
  of ``C``. If ``pi < p`` only the minimum is taken when unused: the first ``M`` MWh cost
  ``max(pi, 0)`` (used, or else sold at pi; when pi < 0 it is better not to take it at all,
  the minimum being paid anyway) and the rest costs ``p``. In both cases:
  ``[M at max(pi, 0)] + [C - M at max(pi, p)]``.
- index: ``pi + adder`` up to the cap (no cap if none).
- owned generation with export: if ``pi >= variable cost`` generate fully and sell the surplus
  (cost of use ``pi``), else generate only what is used (cost ``var``): ``max(pi, var)``.
  Without export: ``var``.
Each segment's cost is the exact change in the period's cash flow per MWh used, given the
taking rule, so the period problem is: choose used MWh per segment and energy per ASIC model
to maximise ``sum(value x mining MWh) - sum(cost x used MWh)`` with used = load, load <= grid.

Demands: the HPC load of running leases is firm (served first, from the cheapest segments).
ASIC models follow in decreasing value per MWh ``value_per_unit / mwh_per_unit`` where the
value of a unit's BTC is ``P`` (``sell_monthly``) or, under ``hold``, ``P[T-1] x DF[T-1] / DF[t]``
(the coins are valued at the horizon end; 0 when terminal treasury value is off); in the last
period the terminal mining value adds ``k x (P x btc - mwh x pi)``, ``k = multiple x 12 / L``.
Each model runs (continuously) while its value per MWh >= the cost of the cheapest segment
left, within the grid room and its installed units.

Why the greedy is optimal: with one balance row (used = load) and one cap on the total, the
LP is a single-market clearing. Its surplus as a function of the total quantity is concave
(demand sorted by decreasing value, supply by increasing cost), so matching the best demand
with the cheapest supply and stopping where value < cost, or at the grid cap, is optimal
(any exchange of a served MWh for an unserved one, or of a used segment for an unused one,
cannot raise the surplus). The firm HPC load has infinite value and is served first.

Under ``hold`` on a scenario tree the final price is the mean over the scenarios through the
node running the operations (the scenario's own in the two-stage form), so scenarios that share
a node run alike.

Treasury: mined BTC follows ``treasury.mined_btc``. Treasury BTC is sold only when cash is
modelled and would fall below ``min_cash_usd``, or to repay debt due in treasury BTC, and then
just enough (if sales are allowed); a sale is a commitment, the same for every scenario through
the node taking the period's commitments: the most any of them needs, within the BTC each holds.
If the rule cannot make the plan feasible (HPC load beyond supply or grid) it serves what it
can and leaves the rest for the evaluator to report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimizer.economics.data import Data, compile_instance
from optimizer.economics.ledger import TERMINAL_ITEMS
from optimizer.evaluate.evaluator import evaluate_as_given
from optimizer.evaluate.firststage import State, build_state
from optimizer.evaluate.nonanticipativity import plan_groups
from optimizer.instance.schema import FixedContract, IndexContract, Instance, OwnedGeneration
from optimizer.plan import Plan


def complete_operations(instance: Instance, plan: Plan, data: Data | None = None) -> Plan:
    """A copy of ``plan`` with operations, energy and treasury sales filled by the operating rule
    for every scenario; a plan that already holds operation rows is returned unchanged, and
    treasury sales already in the plan are kept."""
    if plan.has_operations:
        return plan
    return complete_with_cash(instance, plan, data)[0]


def complete_with_cash(instance: Instance, plan: Plan, data: Data | None = None):
    """``complete_operations`` (for a plan without operations) and, when cash is modelled, the
    resulting cash balance minus ``min_cash_usd`` and the treasury BTC left, per scenario and
    period ([W, T] each; None, None without cash). On a tree, each scenario runs the first stage
    of its own path (``nonanticipativity.plan_groups``)."""
    data = data if data is not None else compile_instance(instance)
    groups, _ = plan_groups(data, plan)
    state_of: dict[int, State] = {}
    prep_of: dict[int, Prepared] = {}
    for ws, sub in groups:
        st = build_state(data, sub)
        prep = Prepared(st)
        state_of.update({w: st for w in ws})
        prep_of.update({w: prep for w in ws})
    op_rows: list[tuple] = []
    en_rows: list[tuple] = []
    feed_rows: list[tuple] = []
    cut_rows: list[tuple] = []
    for w, scen in enumerate(data.scenario_names):
        st = state_of[w]
        by_site: dict[str, list] = {s.id: [] for s in instance.sites}
        for t in range(data.T):
            lab = data.labels[t]
            sites_out, energy, feeds = run_period(st, w, t, prep_of[w])
            for sid, (ops, curt) in sites_out.items():
                by_site[sid].append((lab, ops, curt))
            for cid, e in energy.items():
                by_site[data.contracts[cid].contract.site].append((lab, None, (cid, e)))
            feed_rows += [(scen, cid, sid, lab, x) for (cid, sid), x in feeds.items() if x > 0]
        for sid, items in by_site.items():  # rows in scenario, site, period order
            for lab, ops, curt in items:
                if ops is None:
                    cid, (dl, u, sold) = curt
                    en_rows.append((scen, cid, lab, dl, u, sold))
                    continue
                op_rows += [(scen, sid, m, lab, u) for m, u in ops.items()]
                cut_rows += [(scen, sid, m, lab, a, b) for m, (a, b) in curt.items() if a > 0 or b > 0]
    out = plan.replace(
        operations=pd.DataFrame(op_rows, columns=["scenario", "site", "model", "month", "units"]),
        energy=pd.DataFrame(en_rows, columns=["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"]),
        curtailment=pd.DataFrame(cut_rows, columns=["scenario", "site", "model", "month", "dr_units", "peak_units"]),
        plant_feeds=pd.DataFrame(feed_rows, columns=["scenario", "contract", "site", "month", "mwh"]),
    )
    repay = _btc_repayments(data)
    if instance.treasury.cash_start_usd is None and not repay.any():
        return out, None, None
    sales, margin, btc_left = _treasury_sales(instance, out, data, repay)
    if instance.treasury.cash_start_usd is None:
        return out.replace(btc_sales=sales), None, None
    return out.replace(btc_sales=sales), margin, btc_left


# ---------------------------------------------------------------- one site, one period


def dispatch(firm_mwh: float, grid_mwh: float, demands: list[tuple[float, float]],
             segments: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Merit-order matching for one site and period.

    ``demands``: (value USD/MWh, max MWh) of the flexible loads; ``segments``: (cost USD/MWh,
    max MWh, may be inf) of the supply. The firm load is served first from the cheapest
    segments, whatever their cost; then each demand, best value first, takes the cheapest
    remaining supply while value >= cost, within ``grid_mwh - firm_mwh``.
    Returns (MWh served per demand, MWh used per segment), in the input orders.
    """
    order = sorted(range(len(segments)), key=lambda k: segments[k][0])
    left = [float(segments[k][1]) for k in order]
    used = [0.0] * len(segments)
    pos = 0

    def take(amount: float, max_cost: float) -> float:
        nonlocal pos
        got = 0.0
        while amount - got > 0 and pos < len(order) and segments[order[pos]][0] <= max_cost:
            x = min(amount - got, left[pos])
            left[pos] -= x
            used[order[pos]] += x
            got += x
            if left[pos] <= 0:
                pos += 1
        return got

    take(firm_mwh, np.inf)
    room = max(grid_mwh - firm_mwh, 0.0)
    served = [0.0] * len(demands)
    for i in sorted(range(len(demands)), key=lambda i: -demands[i][0]):
        value, cap = demands[i]
        if room <= 0:
            break
        served[i] = take(min(cap, room), value)
        room -= served[i]
    return served, used


def expected_final_price(d: Data, w: int, t: int) -> float:
    """E[P[T-1]] over the scenarios through the node running the operations of (t, w): the value a
    coin kept from period t can count on without seeing prices the node has not seen (P[w, T-1]
    itself in the two-stage form, where that node is scenario w's leaf)."""
    if d.tree is None:
        return float(d.btc_price_usd[w, d.T - 1])
    ws = list(d.tree.op_node(t, w).scenarios)
    p = d.prob[ws]
    return float(p @ d.btc_price_usd[ws, d.T - 1] / p.sum()) if p.sum() > 0 else float(d.btc_price_usd[w, d.T - 1])


def btc_value_usd(st: State, w: int, model: str, t: int) -> float:
    """Cash value (USD, at period t) of the BTC one operating unit of ``model`` mines in period ``t``:
    ``P`` x BTC (``sell_monthly``) or, under ``hold``, the coins valued at the horizon end."""
    d, inst = st.data, st.data.inst
    btc = float(d.btc_per_unit[model][w, t])
    if inst.treasury.mined_btc == "sell_monthly":
        return btc * float(d.btc_price_usd[w, t])
    if inst.horizon.terminal.treasury_btc:
        return btc * expected_final_price(d, w, t) * float(d.df_end / d.df[t])
    return 0.0


def unit_value_usd(st: State, w: int, site_id: str, model: str, t: int) -> float:
    """Cash value (USD, at period t) of running one unit of ``model`` for period ``t``: its BTC and,
    in the last period, the terminal mining value it adds."""
    d = st.data
    value = btc_value_usd(st, w, model, t)
    k = d.terminal_mining_factor
    if t == d.T - 1 and k > 0:
        btc = float(d.btc_per_unit[model][w, t])
        mwh = float(d.mwh_per_unit(site_id, model)[t])
        value += k * (btc * float(d.btc_price_usd[w, t]) - mwh * float(d.terminal_mining_price[site_id][w]))
    return value


def plant_cost_usd_per_mwh(st: State, c: OwnedGeneration, w: int, t: int) -> float:
    """Variable cost of one MWh a plant generates: variable cost + heat rate x fuel price."""
    fuel = st.data.lev.plants[c.id].fuel_usd_per_mwh
    return c.variable_cost_usd_per_mwh + (0.0 if fuel is None else float(fuel[w, t]))


def site_contracts(inst: Instance, site_id: str) -> list:
    """The contracts that may supply ``site_id``, in instance order: its own, and the plants that feed it."""
    return [c for c in inst.contracts if c.site == site_id or (isinstance(c, OwnedGeneration) and site_id in c.feeds)]


class Prepared:
    """What ``run_period`` reads for every scenario and period of one state and that depends on
    neither: each site's supplying contracts and its [W, T] firm HPC energy. Built once per
    state by ``complete_with_cash`` (a state's sites, contracts and leases do not change while
    its operations are run); ``run_period`` without it derives them for the one call."""

    def __init__(self, st: State) -> None:
        inst = st.data.inst
        self.contracts = {s.id: site_contracts(inst, s.id) for s in inst.sites}
        self.firm = {s.id: st.hpc_mwh(s.id) for s in inst.sites}


def _segments(st: State, w: int, site_id: str, t: int, plant_used: dict[str, float], contracts: list | None = None):
    """Supply segments (cost, MWh, contract id, part) of a site in a period (see the module doc);
    plants, the site's own and those feeding it, offer what is left of their capacity.
    ``contracts``: ``site_contracts(site_id)`` when the caller has them."""
    d = st.data
    pi = float(d.site_power_price(site_id)[w, t])
    segs = []
    for c in (site_contracts(d.inst, site_id) if contracts is None else contracts):
        h = float(st.contract_hours[c.id][t])
        if h <= 0:
            continue
        if isinstance(c, FixedContract):
            p = float(d.contracts[c.id].price_usd_per_mwh[t])
            M, C = c.take_or_pay_min_share * c.mw_cap * h, c.mw_cap * h
            if c.sell_back_allowed:
                segs += [(max(pi, 0.0), M, c.id, 1), (max(pi, p), C - M, c.id, 2)]
            else:
                segs += [(0.0, M, c.id, 1), (p, C - M, c.id, 2)]
        elif isinstance(c, IndexContract):
            segs.append((pi + c.adder_usd_per_mwh, np.inf if c.mw_cap is None else c.mw_cap * h, c.id, 1))
        elif isinstance(c, OwnedGeneration):
            var = plant_cost_usd_per_mwh(st, c, w, t)
            pi_home = float(d.site_power_price(c.site)[w, t])
            cost = max(pi_home, var) if c.can_export else var
            segs.append((cost, d.lev.plants[c.id].cap_mw * h - plant_used.get(c.id, 0.0), c.id, 1))
    return [s for s in segs if s[1] > 0], pi


def _curtail(st: State, w: int, site_id: str, t: int, ops: dict[str, float], mwh_unit: dict[str, float],
             firm: float, segs, used: list[float]) -> dict[str, tuple[float, float]]:
    """Units enrolled in demand response and off around the transmission peak, for the operations
    ``ops`` the merit order chose; ``used`` (MWh per segment) is lowered by the energy they free.

    A unit of model m curtailed under program p (rate ``R_p`` USD per MW, share ``phi_p`` of the
    period off) gains ``a = R_p x MW_m - phi_p x v_m`` (v_m: its BTC's value for the period) and
    frees ``e = phi_p x MWh_m`` of supply, which saves the cost of the dearest segment still used
    by mining. The savings are concave in the energy freed (segments dearest first), so filling the
    candidates in decreasing ``a / e`` while ``a / e + (cost of that segment) >= 0`` is optimal for
    the given operations. The operations themselves are not re-chosen for the programs (a unit is
    not switched on only to enroll it): the rule is exact for its operations, not jointly optimal."""
    d = st.data
    fx = d.flex(site_id)
    out = {m: [0.0, 0.0] for m in ops}
    if fx is None or not ops:
        return {}
    cands = []
    for m, units in ops.items():
        if units <= 0:
            continue
        v = btc_value_usd(st, w, m, t)
        mw = d.mw_per_unit(site_id, m)
        for col, rate, phi in ((0, float(fx.dr_pay_usd_per_mw[t]), float(fx.phi_dr[t])),
                               (1, float(fx.peak_usd_per_mw[t]), float(fx.phi_peak[t]))):
            if rate > 0:
                cands.append((rate * mw - phi * v, phi * mwh_unit[m], m, col, units))
    # mining's share of each segment: the firm load took the cheapest first (as dispatch did)
    order = sorted(range(len(segs)), key=lambda k: segs[k][0])
    mine, firm_left = [0.0] * len(segs), firm
    for k in order:
        f = min(used[k], firm_left)
        firm_left -= f
        mine[k] = used[k] - f
    stack = [k for k in order if mine[k] > 0]  # dearest last
    for a, e, m, col, units in sorted(cands, key=lambda c: -(c[0] / c[1]) if c[1] > 0 else -np.inf):
        if e <= 0:  # nothing curtailed in the period (no hours): a payment or a charge avoided for free
            if a >= 0:
                out[m][col] = units
            continue
        left = units
        while left > 1e-12 and stack:
            k = stack[-1]
            if a / e + segs[k][0] < 0:
                break
            x = min(left, mine[k] / e)
            out[m][col] += x
            left -= x
            mine[k] -= x * e
            used[k] -= x * e
            if mine[k] <= 1e-9 * max(1.0, used[k]):
                stack.pop()
    return {m: (a, b) for m, (a, b) in out.items()}


def run_period(st: State, w: int, t: int, prep: Prepared | None = None):
    """The operating rule for one scenario and period, every site: ({site: (units per model,
    {model: (dr units, peak units)})}, {contract: (delivered, used, sold) MWh}, {(plant, site): MWh
    fed}). Sites are served in instance order; a plant that feeds other sites offers each the
    capacity the sites before it left (a heuristic order, not a joint optimum across sites).
    ``prep``: ``Prepared(st)``, for a caller that runs many periods of one state."""
    d, inst = st.data, st.data.inst
    contracts = {c.id: c for c in inst.contracts}
    plant_used: dict[str, float] = {}
    parts: dict[str, dict[int, tuple[float, float]]] = {}  # non-plant contracts: part -> (offered, used)
    feeds: dict[tuple[str, str], float] = {}
    home: dict[str, float] = {}
    sites_out = {}
    for site in inst.sites:
        sid = site.id
        models = [m.name for m in inst.fleet.asic_models if st.units[(sid, m.name)][t] > 0]
        ops = {m: 0.0 for m in models}
        if st.own[sid][t] < 0.5:
            sites_out[sid] = (ops, {})
            continue
        if sid in st.mine_on and st.mine_on[sid][t] < 0.5:
            models = []  # the site has stopped mining
        segs, pi = _segments(st, w, sid, t, plant_used, None if prep is None else prep.contracts[sid])
        mwh_unit = {m: float(d.mwh_per_unit(sid, m)[t]) for m in models}
        demands = [(unit_value_usd(st, w, sid, m, t) / mwh_unit[m], st.units[(sid, m)][t] * mwh_unit[m]) for m in models]
        firm = float((st.hpc_mwh(sid) if prep is None else prep.firm[sid])[w, t])
        grid = float(st.grid_mw[sid][t] * d.hours[t])
        served, used = dispatch(firm, grid, demands, [(c, q) for c, q, _, _ in segs])
        for m, e in zip(models, served):
            ops[m] = e / mwh_unit[m]
        curt = _curtail(st, w, sid, t, {m: ops[m] for m in models}, mwh_unit, firm, segs, used)
        sites_out[sid] = (ops, curt)
        for (cost, q, cid, part), u in zip(segs, used):
            if isinstance(contracts[cid], OwnedGeneration):
                plant_used[cid] = plant_used.get(cid, 0.0) + u
                if contracts[cid].site == sid:
                    home[cid] = home.get(cid, 0.0) + u
                else:
                    feeds[(cid, sid)] = feeds.get((cid, sid), 0.0) + u
            else:
                parts.setdefault(cid, {})[part] = (q, u)
    energy = {}
    for cid, c in contracts.items():
        if isinstance(c, OwnedGeneration):
            h = float(st.contract_hours[cid][t])
            if h <= 0:
                continue
            u, fed = home.get(cid, 0.0), sum(x for (k, _), x in feeds.items() if k == cid)
            pi_home = float(d.site_power_price(c.site)[w, t])
            full = c.can_export and pi_home >= plant_cost_usd_per_mwh(st, c, w, t)
            dl = d.lev.plants[cid].cap_mw * h if full else u + fed
            sold = max(dl - u - fed, 0.0) if c.can_export else 0.0
        elif cid in parts:
            pi = float(d.site_power_price(c.site)[w, t])
            p_ = parts[cid]
            u = sum(x for _, x in p_.values())
            if isinstance(c, FixedContract) and c.sell_back_allowed:
                p = float(d.contracts[cid].price_usd_per_mwh[t])
                q1, u1 = p_.get(1, (0.0, 0.0))
                q2, u2 = p_.get(2, (0.0, 0.0))
                dl = (q1 if pi >= 0 else u1) + (q2 if pi >= p else u2)
            else:
                dl = u
            sold = max(dl - u, 0.0)
        else:
            continue
        if dl > 0 or u > 0:
            energy[cid] = (dl, u, sold)
    return sites_out, energy, feeds


def run_site_period(st: State, w: int, site_id: str, t: int):
    """Operating units per model and (delivered, used, sold) MWh per contract of one site, for one
    scenario and period, by the operating rule (``run_period``, restricted to the site)."""
    sites_out, energy, _ = run_period(st, w, t)
    return sites_out[site_id][0], {cid: e for cid, e in energy.items() if st.data.contracts[cid].contract.site == site_id}


# ---------------------------------------------------------------- treasury


def _btc_repayments(data: Data) -> np.ndarray:
    """[T] USD of corporate debt due in each period that must be repaid by selling treasury BTC."""
    out = np.zeros(data.T)
    if data.fin is not None:
        for cd in data.fin.corporate.values():
            if cd.debt.repayment_source == "treasury_btc" and cd.maturity_period <= data.T - 1:
                out[cd.maturity_period] += cd.debt.principal_usd
    return out


def _treasury_sales(instance: Instance, plan: Plan, data: Data, repay: np.ndarray | None = None):
    """Sell just enough treasury BTC, period by period, to keep cash at the minimum (when cash is
    modelled) and to cover debt due in treasury BTC (when sales are allowed and the plan has none of
    its own); also returns cash - min_cash and the BTC left in the treasury, [W, T] each.

    A sale is a commitment (models/trees.md): the scenarios through the node taking the
    commitments of the period sell the same amount, the most any of them needs, within the BTC
    each of them holds (one schedule for all in the two-stage form).

    With taxes a sale's gain raises the year's tax, paid later: the walk is repeated on the plan
    with its sales until no period falls short (sales only grow; without taxes the second walk adds
    nothing)."""
    tr = instance.treasury
    repay = np.zeros(data.T) if repay is None else repay
    sell = tr.allow_treasury_sales and len(plan.btc_sales) == 0
    W, T = data.W, data.T
    tree = data.tree
    sold = np.zeros((W, T))
    has_cash = tr.cash_start_usd is not None
    floor = tr.min_cash_usd
    scen = {n: i for i, n in enumerate(data.scenario_names)}
    for _ in range(20):
        sales = _sales_table(data, sold) if sell else plan.btc_sales
        ev = evaluate_as_given(instance, plan.replace(btc_sales=sales), data)
        cf = ev.cashflows[~ev.cashflows["item"].isin(TERMINAL_ITEMS)]
        net = np.zeros((W, T))
        if len(cf):
            np.add.at(net, (cf["scenario"].map(scen).to_numpy(int), cf["period"].to_numpy(int)), cf["usd"].to_numpy(float))
        mined = ev.kpis["btc_mined"].to_numpy(float).reshape(W, T)
        margin, left = np.zeros((W, T)), np.zeros((W, T))
        added = False
        cash = np.full(W, float(tr.cash_start_usd) if has_cash else 0.0)
        btc = np.full(W, float(tr.btc_held_start))
        for t in range(T):
            if tr.mined_btc == "hold":
                btc += mined[:, t]
            cash += net[:, t]  # includes this period's sales so far
            btc -= sold[:, t]
            P = data.btc_price_usd[:, t]
            for r in tree.inv_reps(t):
                ws = list(tree.inv_node(t, r).scenarios)
                need = np.zeros(len(ws))
                if repay[t] > 0:
                    need = np.maximum(need, (repay[t] - sold[ws, t] * P[ws]) / P[ws])
                if has_cash:
                    short = cash[ws] < floor - 1e-6 * max(1.0, abs(floor))
                    need = np.maximum(need, np.where(short, (floor - cash[ws]) / P[ws], 0.0))
                if sell and need.max() > 0 and btc[ws].min() > 1e-12:
                    x = min(float(need.max()), float(btc[ws].min()))
                    sold[ws, t] += x
                    btc[ws] -= x
                    cash[ws] += x * P[ws]
                    added = True
            margin[:, t] = cash - floor
            left[:, t] = btc
        if not added or not sell:
            break
    return (_sales_table(data, sold) if sell else plan.btc_sales), margin, left


def _sales_table(data: Data, sold: np.ndarray) -> pd.DataFrame:
    rows = [(name, data.labels[t], float(sold[w, t])) for w, name in enumerate(data.scenario_names)
            for t in range(data.T) if sold[w, t] > 0]
    return pd.DataFrame(rows, columns=["scenario", "month", "btc"])
