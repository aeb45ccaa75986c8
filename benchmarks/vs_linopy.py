"""Build + hand-off of the product's model side by side with linopy on the same matrix (issue 15, item 5).

    pip install -e '.[bench]'          # linopy, a benchmark requirement only
    python benchmarks/vs_linopy.py [--sizes medium large] [--seed 0] [--runs 3]

Per size (a generated instance, benchmarks/generate.py) and run, in this process:
- **product**: `compile_instance` + `build_model` (the Pyomo model, element by element), then
  `HighsBackend` (Pyomo's standard-form compiler + one `passModel`): what `solve()` spends before
  HiGHS starts.
- **linopy, same matrix**: the product's own standard form (columns, rows, bounds, costs,
  integrality) rebuilt as a linopy model from numpy arrays, vectorized (two variable arrays,
  continuous and integer; constraint blocks grouped by row length so that padding stays below 2x;
  the objective), then `Model.to_highspy()`. This is linopy's cost for a model of exactly this
  size and sparsity when its coefficients are already arrays: the floor a vectorized build layer
  could reach, not a linopy formulation of the economics (which would add its own arithmetic).
- **raw highspy**: `passModel` of the same arrays (the hand-off alone).
- **floor of a Pyomo build**: `compile_instance`, then the model's Pyomo elements alone (the same
  Vars over the same index Sets, one constraint data object per row without any expression, the
  same mutable Params), then the raw `passModel`: what any build keeping a Pyomo object per
  variable, row and Param spends before it computes its first coefficient (a vectorised build
  included). Against 2x linopy it says how much time such a build would have left for its rows.

linopy runs after the product's Pyomo model is freed (its millions of objects would slow every
garbage collection linopy triggers: 1.5 s instead of 0.3 s on large). Both HiGHS models are
checked to be the same problem: the LP relaxation objectives are compared.
Prints medians over --runs (and the worst), and the ratio product / linopy.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import highspy
import numpy as np
import scipy.sparse  # noqa: F401  (as in the backend: keep scipy's import out of the timings)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def product(size: str, seed: int):
    from generate import generate

    from optimizer.economics.data import compile_instance
    from optimizer.model.build import build_model
    from optimizer.solve.backend import HighsBackend

    inst = generate(size, seed, "funded")
    t0 = time.perf_counter()
    data = compile_instance(inst)
    compile_s = time.perf_counter() - t0
    m = build_model(data)
    build_s = time.perf_counter() - t0
    b = HighsBackend(m)
    return build_s, b.handoff_s, b, compile_s


def element_keys(model) -> dict:
    """The indices of the model's Vars, rows and mutable Params, per component (for `pyomo_floor`)."""
    import pyomo.environ as pyo

    return {"vars": {v.local_name: list(v.keys()) for v in model.component_objects(pyo.Var)},
            "rows": {c.local_name: list(c.keys()) for c in model.component_objects(pyo.Constraint)},
            "params": {p.local_name: {k: pyo.value(p[k]) for k in p.keys()}
                       for p in model.component_objects(pyo.Param) if p.mutable}}


def pyomo_floor(keys: dict) -> float:
    """Seconds to create the model's Pyomo elements alone: the same Vars over the same ordered
    index Sets, one constraint data object per row *without* any expression, and the same mutable
    Params. What any build that keeps a Pyomo object per variable, row and Param spends before its
    first coefficient, however its rows are computed (a vectorised build included)."""
    import pyomo.environ as pyo
    from pyomo.common.gc_manager import PauseGC
    from pyomo.core.base.constraint import ConstraintData, IndexedConstraint

    class BareRows(IndexedConstraint):
        def construct(self, data=None):
            if self._constructed:
                return
            self._constructed = True
            for k in self._index_set:
                d = self._data[k] = ConstraintData(component=self)
                d._index = k

    with PauseGC():
        m = pyo.ConcreteModel()
        t0 = time.perf_counter()
        for name, ks in keys["vars"].items():
            setattr(m, name + "_index", pyo.Set(initialize=ks, ordered=True))
            setattr(m, name, pyo.Var(getattr(m, name + "_index"), domain=pyo.NonNegativeReals))
        for name, ks in keys["rows"].items():
            setattr(m, name + "_index", pyo.Set(initialize=ks, ordered=True))
            setattr(m, name, BareRows(getattr(m, name + "_index")))
        for name, values in keys["params"].items():
            setattr(m, name + "_index", pyo.Set(initialize=list(values), ordered=True))
            setattr(m, name, pyo.Param(getattr(m, name + "_index"), initialize=values, mutable=True))
        return time.perf_counter() - t0


def linopy_same_matrix(sf):
    """The standard form `sf` as a linopy model built from arrays; (build s, hand-off s, Highs)."""
    import linopy
    import pandas as pd
    import xarray as xr

    t0 = time.perf_counter()
    n = sf.cost.size
    is_int = sf.integrality.astype(bool)
    cont, ints = np.flatnonzero(~is_int), np.flatnonzero(is_int)
    m = linopy.Model()
    xc = m.add_variables(lower=pd.Series(sf.col_lower[cont]), upper=pd.Series(sf.col_upper[cont]), name="xc")
    xi = m.add_variables(lower=pd.Series(sf.col_lower[ints]), upper=pd.Series(sf.col_upper[ints]), name="xi",
                         integer=True)
    label = np.empty(n, dtype=np.int64)  # column j -> linopy variable label
    label[cont] = xc.labels.values
    label[ints] = xi.labels.values
    A = sf.A.tocsr()
    lo, up = sf.row_lower, sf.row_upper
    length = np.diff(A.indptr)
    # one row per finite side: "=" rows, "<=" rows, ">=" rows (a ranged row gives one of each side)
    eq = np.isfinite(lo) & (lo == up)
    sides = [("=", np.flatnonzero(eq), up), ("<=", np.flatnonzero(~eq & np.isfinite(up)), up),
             (">=", np.flatnonzero(~eq & np.isfinite(lo)), lo)]
    block = 0
    for sign, rows, rhs in sides:
        if not rows.size:
            continue
        width = np.maximum(1, 2 ** np.ceil(np.log2(np.maximum(length[rows], 1)))).astype(np.int64)
        for w in np.unique(width):
            r = rows[width == w]
            coeffs = np.zeros((r.size, w))
            var = np.full((r.size, w), -1, dtype=np.int64)
            k = np.arange(w)
            start, cnt = A.indptr[r], length[r]
            mask = k[None, :] < cnt[:, None]
            pos = (start[:, None] + k[None, :])[mask]
            coeffs[mask] = A.data[pos]
            var[mask] = label[A.indices[pos]]
            ds = xr.Dataset({"coeffs": (("row", "_term"), coeffs), "vars": (("row", "_term"), var),
                             "const": ("row", np.zeros(r.size))}, coords={"row": np.arange(r.size)})
            m.add_constraints(linopy.LinearExpression(ds, m), sign, xr.DataArray(rhs[r], dims="row"),
                              name=f"c{block}")
            block += 1
    nz = np.flatnonzero(sf.cost)  # linopy takes no objective constant: sf.offset is added back in the LP check
    obj = xr.Dataset({"coeffs": (("_term",), sf.cost[nz]), "vars": (("_term",), label[nz]), "const": ((), 0.0)})
    m.add_objective(linopy.LinearExpression(obj, m), sense="max" if sf.sense == -1 else "min")
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    h = m.to_highspy()
    return build_s, time.perf_counter() - t0, h


def _arrays(sf) -> SimpleNamespace:
    """The standard form's arrays only (no Pyomo objects)."""
    keys = ("cost", "col_lower", "col_upper", "row_lower", "row_upper", "integrality", "sense", "offset")
    return SimpleNamespace(A=sf.A.copy(), **{k: np.copy(getattr(sf, k)) for k in keys})


def raw_pass(sf) -> tuple[float, highspy.Highs]:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    A = sf.A
    t0 = time.perf_counter()
    h.passModel(sf.cost.size, sf.row_lower.size, A.nnz, int(highspy.MatrixFormat.kColwise), sf.sense, sf.offset,
                sf.cost, sf.col_lower, sf.col_upper, sf.row_lower, sf.row_upper,
                A.indptr.astype(np.int32), A.indices.astype(np.int32), A.data, sf.integrality)  # fmt: skip
    return time.perf_counter() - t0, h


def lp_objective(h: highspy.Highs) -> float:
    h.setOptionValue("output_flag", False)
    lp = h.getLp()
    n = lp.num_col_
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.zeros(n, dtype=np.uint8))
    h.run()
    return h.getInfo().objective_function_value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["medium", "large"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-lp-check", action="store_true", help="skip the LP relaxation comparison (large: ~1 min)")
    a = ap.parse_args()
    try:
        import linopy
    except ImportError:
        print("linopy is not installed: pip install -e '.[bench]'")
        return 2
    print(f"# linopy {linopy.__version__}, highspy {highspy.Highs().version()}, seed {a.seed}, {a.runs} runs")
    for size in a.sizes:
        rows = []
        for _ in range(a.runs):
            pb, ph, b, cs = product(size, a.seed)
            sf = _arrays(b._sf)
            keys = element_keys(b.model)
            del b  # the Pyomo model: its millions of objects would slow every garbage collection linopy triggers
            gc.collect()
            lb, lh, h = linopy_same_matrix(sf)
            raw_s, h_raw = raw_pass(sf)
            floor_s = pyomo_floor(keys)
            del keys
            gc.collect()
            rows.append({"product build": pb, "product hand-off": ph, "linopy build": lb, "linopy hand-off": lh,
                         "raw passModel": raw_s, "compile_instance": cs, "Pyomo elements": floor_s})
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        worst = {k: max(r[k] for r in rows) for k in rows[0]}
        prod, lin = med["product build"] + med["product hand-off"], med["linopy build"] + med["linopy hand-off"]
        print(f"\n{size}: {sf.cost.size} columns, {sf.row_lower.size} rows, {sf.A.nnz} nonzeros (seed {a.seed})")
        for k in med:
            print(f"  {k:18s} median {med[k]:7.2f} s   worst {worst[k]:7.2f} s")
        print(f"  product build + hand-off {prod:.2f} s, linopy {lin:.2f} s: ratio {prod / lin:.1f}x")
        floor = med["compile_instance"] + med["Pyomo elements"] + med["raw passModel"]
        print(f"  floor of a build with a Pyomo object per variable, row and Param: compile_instance "
              f"{med['compile_instance']:.2f} + Pyomo elements {med['Pyomo elements']:.2f} + passModel "
              f"{med['raw passModel']:.2f} = {floor:.2f} s, before any coefficient ({floor / lin:.1f}x linopy; "
              f"2x linopy leaves {2 * lin - floor:.2f} s for every row's and the objective's coefficients)")
        if not a.no_lp_check:
            lp_p, lp_l = lp_objective(h_raw), lp_objective(h) + sf.offset
            print(f"  same problem: LP relaxation product {lp_p:.6f}, linopy {lp_l:.6f} "
                  f"(relative difference {abs(lp_p - lp_l) / max(1.0, abs(lp_p)):.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
