"""Fixing a plan's first stage in a built model (EEV of value of information, pinned first
stage in ``solve(first_stage=...)``, progressive hedging's nonanticipative variables)."""

from __future__ import annotations

from optimizer.model.extract import mip_start_values

# first-stage decision variables of the MILP: the rest of the first stage
# (nb, gcum, nbcum, own, inst, hpc_gwh, hpc_own, signed_owned, first_stage_net) is defined from them
FIRST_STAGE_VARS = ("conv", "gx", "nbuild", "gbuy", "buy", "ret", "x", "y", "sign", "sell", "acq", "draw", "issue")


def first_stage_vars(m) -> list:
    """The first-stage decision VarData of a built model, in a deterministic order."""
    out = []
    for name in FIRST_STAGE_VARS:
        var = getattr(m, name)
        out += [var[k] for k in getattr(m, name + "_index")]
    return out


def fix_first_stage(m, data, plan) -> None:
    """Fix the model's first-stage decisions to ``plan``'s (ValueError if the plan uses a
    decision the model does not have)."""
    vals = mip_start_values(m, data, plan.first_stage())
    for v in first_stage_vars(m):
        v.fix(vals[v])
    # Shares of a splittable lease are floats (e.g. 0.9999999999999998 from a solve): with every
    # term fixed, Pyomo rejects lease_split (sum_s x = y) as trivially infeasible unless it holds
    # exactly. Free the largest share of each row within 1e-12 of its value: noise is absorbed, a
    # plan whose shares really do not sum to 1 stays infeasible.
    rows = {k: [] for k in getattr(m, "lease_split", {})}
    for k in m.x_index:
        if (k[0], k[2]) in rows:
            rows[(k[0], k[2])].append(m.x[k])
    for xs in rows.values():
        if xs:
            v = max(xs, key=lambda x: x.value)
            v.unfix()
            v.setlb(max(0.0, v.value - 1e-12))
            v.setub(min(1.0, v.value + 1e-12))


