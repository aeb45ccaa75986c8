"""Cheap stand-in solvers for the sweep / breakeven / tornado tests, with closed-form results.

They read the (overridden) instance's fields, so they exercise the override and store machinery
exactly like the MILP would, without solving anything. Importable by spawned workers because
pytest puts tests/ on sys.path and spawn/dask workers inherit it.

Closed form, with rate = leases[0].rate_usd_per_kw_month, it_mw = leases[0].it_mw,
term = leases[0].term_months, r = horizon.discount_rate, k = scenarios[0].btc_price_usd.scale:

    npv_usd = 1000 * it_mw * rate * term + 1_000_000 * k - 10_000_000 * r

On tiny.yaml (it_mw 1, term 12, r 0.12, k 1): 12_000 * rate + 1_000_000 - 1_200_000 = 12_000 * rate - 200_000.
The lease is signed (and it_mw converted at the first site) iff rate >= SIGN_RATE.
"""

from __future__ import annotations

import os
import time

SIGN_RATE = 125.0


def standin_npv(inst) -> float:
    lease = inst.leases[0]
    k = inst.scenarios[0].btc_price_usd.scale
    return 1000.0 * lease.it_mw * lease.rate_usd_per_kw_month * lease.term_months + 1_000_000.0 * k - 10_000_000.0 * inst.horizon.discount_rate


def standin(inst, **opts) -> dict:
    """Deterministic dict row; ``fail_above_rate`` raises for rates above it (a failing point).
    $STANDIN_SLEEP_S: sleep that long first (a solve that takes time); $STANDIN_SLOW_ABOVE: for
    rates above it, first run a real HiGHS solve that cannot finish (``hard_highs_solve``)."""
    lease = inst.leases[0]
    _log(inst)
    if os.environ.get("STANDIN_SLEEP_S"):
        time.sleep(float(os.environ["STANDIN_SLEEP_S"]))
    slow = os.environ.get("STANDIN_SLOW_ABOVE")
    if slow and lease.rate_usd_per_kw_month > float(slow):
        _log_line(f"{os.getpid()} slow")
        hard_highs_solve(60.0)
    if "fail_above_rate" in opts and lease.rate_usd_per_kw_month > opts["fail_above_rate"]:
        raise ValueError(f"stand-in refuses rate {lease.rate_usd_per_kw_month}")
    signed = lease.rate_usd_per_kw_month >= SIGN_RATE
    return {
        "status": "optimal",
        "npv_usd": standin_npv(inst),
        "mip_gap": 0.0,
        "converted_mw": {inst.sites[0].id: lease.it_mw if signed else 0.0},
        "leases_signed": [lease.id] if signed else [],
        "build_s": 0.0,
        "solve_s": 0.0,
    }


def hard_highs_solve(time_limit_s: float):
    """A market-split MILP (Cornuejols-Dawande: 4 equality rows, 30 binaries, seed 7) through the
    product's HiGHS backend: HiGHS finds no solution and keeps branching until the time limit
    (measured: no solution after 20 s, dual bound 193). A solve that is surely running when a
    test sends a signal."""
    import numpy as np
    import pyomo.environ as pyo

    from optimizer.solve.backend import HighsBackend

    rng = np.random.default_rng(7)
    a = rng.integers(0, 100, size=(4, 30))
    b, c = a.sum(axis=1) // 2, rng.integers(1, 20, size=30)
    m = pyo.ConcreteModel()
    m.x = pyo.Var(range(30), domain=pyo.Binary)
    m.rows = pyo.Constraint(range(4), rule=lambda m, i: sum(int(a[i, j]) * m.x[j] for j in range(30)) == int(b[i]))
    m.obj = pyo.Objective(expr=sum(int(c[j]) * m.x[j] for j in range(30)), sense=pyo.maximize)
    return HighsBackend(m).solve(time_limit_s=time_limit_s, mip_gap=0.0, threads=1)


def _log_line(text: str) -> None:
    path = os.environ.get("STANDIN_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(text + "\n")


def _log(inst) -> None:
    """Append 'pid rate' to $STANDIN_CALL_LOG (counts calls across processes); after
    $STANDIN_EXIT_AFTER calls in this process, die like kill -9 (os._exit, no cleanup)."""
    path = os.environ.get("STANDIN_CALL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{os.getpid()} {inst.leases[0].rate_usd_per_kw_month!r}\n")
    limit = os.environ.get("STANDIN_EXIT_AFTER")
    if limit:
        _CALLS[0] += 1
        if _CALLS[0] >= int(limit):
            os._exit(3)


_CALLS = [0]


class StandinPersistent:
    """Persistent-route stand-in: the constructor is the 'build' (logged to $STANDIN_BUILD_LOG)."""

    def __init__(self, inst, **opts):
        self.opts = opts
        path = os.environ.get("STANDIN_BUILD_LOG")
        if path:
            with open(path, "a") as f:
                f.write(f"{os.getpid()}\n")

    def solve_with(self, inst) -> dict:
        return standin(inst, **self.opts)
