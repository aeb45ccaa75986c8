"""Fixing a plan's first stage in a built model (EEV of value of information, pinned first
stage in ``solve(first_stage=...)``, progressive hedging's nonanticipative variables, the
decisions already taken when a policy re-plans in ``analysis.simulate``)."""

from __future__ import annotations

from optimizer.model.common import isplit, rk
from optimizer.model.extract import mip_start_values

# first-stage decision variables of the MILP: the rest of the first stage
# (nb, gcum, nbcum, own, inst, hpc_gwh, hpc_own, signed_owned, mine_exit, first_stage_net) is defined from them
FIRST_STAGE_VARS = ("conv", "gx", "nbuild", "gbuy", "buy", "ret", "x", "y", "sign", "sell", "acq", "draw", "issue", "cut", "hv", "mine_on")


def first_stage_vars(m) -> list:
    """The first-stage decision VarData of a built model, in a deterministic order."""
    out = []
    for name in FIRST_STAGE_VARS:
        var = getattr(m, name)
        out += [var[k] for k in getattr(m, name + "_index")]
    return out


def decision_period(m, name: str, key) -> int:
    """The period whose commitments hold a first-stage variable (a contract's: its start period)."""
    if name == "sign":
        return m.sign_period[key if isinstance(key, str) else key[0]]
    nbase = {"conv": 1, "sell": 1, "acq": 1, "y": 1, "draw": 1, "issue": 1}.get(name, 2)
    return isplit(m, key, nbase)[1]


def fix_first_stage(m, data, plan, until: int | None = None, sales: bool = False) -> None:
    """Fix the model's first-stage decisions to ``plan``'s (ValueError if the plan uses a
    decision the model does not have): all of them, or with ``until`` those of the periods before
    it only (the later ones stay free). With ``sales``, treasury BTC sales of those periods are
    fixed too, to the plan's ``btc_sales`` of the month (the most any scenario row sells)."""
    vals = mip_start_values(m, data, plan.first_stage())
    for name in FIRST_STAGE_VARS:
        var = getattr(m, name)
        for k in getattr(m, name + "_index"):
            if until is None or decision_period(m, name, k) < until:
                var[k].fix(vals[var[k]])
    if sales and len(m.btc_sold):
        sold = plan.btc_sales.groupby("month")["btc"].max() if len(plan.btc_sales) else {}
        for k in m.btc_sold_index:
            t = k if isinstance(k, int) else k[0]
            if until is None or t < until:
                m.btc_sold[k].fix(float(sold.get(data.labels[t], 0.0)))
    # Shares of a splittable lease are floats (e.g. 0.9999999999999998 from a solve): with every
    # term fixed, Pyomo rejects lease_split (sum_s x = y) as trivially infeasible unless it holds
    # exactly. Free the largest share of each row within 1e-12 of its value: noise is absorbed, a
    # plan whose shares really do not sum to 1 stays infeasible.
    rows = {k: [] for k in getattr(m, "lease_split", {})}
    for k in m.x_index:
        (l, _s), tau, r = isplit(m, k, 2)
        key = rk(m, (l, tau), r)
        if key in rows:
            rows[key].append(m.x[k])
    for xs in rows.values():
        xs = [x for x in xs if x.fixed]
        if xs:
            v = max(xs, key=lambda x: x.value)
            v.unfix()
            v.setlb(max(0.0, v.value - 1e-12))
            v.setub(min(1.0, v.value + 1e-12))


