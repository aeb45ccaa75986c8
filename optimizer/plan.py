"""The Plan: every decision of DESIGN section 4 as tidy pandas tables.

Months are ``YYYY-MM`` labels of the period in which a decision takes effect. Investment
tables (first stage) hold no scenario column; operation tables hold one. A table left
empty means "nothing of that kind". Operation tables may be left empty as a whole, in
which case :func:`optimizer.operations.complete_operations` fills them by the documented
operating rule before evaluation.

Tables and columns (units in the names):

- ``conversions``: site, month, blocks                        (blocks started that month)
- ``grid_expansions``: site, option, month                    (project started that month)
- ``new_builds``: site, option, month, blocks                 (new-build blocks started that month)
- ``gpu_purchases``: option, site, month, mw                   (MW of critical IT of GPUs ordered and paid that month)
- ``purchases``: option, site, month, units                   (ordered and paid that month)
- ``retirements``: site, model, month, units                  (removed at the start of the month, salvaged)
- ``leases``: lease, site, month, share                       (hand-over month; share of the lease at that site, 1 unless splittable)
- ``contracts``: contract, signed                             (optional contracts; absent = not signed)
- ``site_events``: site, event, month                         (event: sale | acquisition)
- ``debt``: instrument, month, usd                             (project facility drawn / notes issued that month; financing section)
- ``mining_exits``: site, month                               (first month the site no longer mines, for good; ``sites[*].mining_overhead``)
- ``overhead_cuts``: reduction, month                         (G&A reduction taken that month; ``overhead.reductions``)
- ``hedges``: forward, month, ph_s                            (PH/s of hashprice sold forward for that delivery month; ``hedges.forwards``)
- ``operations``: scenario, site, model, month, units         (ASIC units operating, average over the period)
- ``energy``: scenario, contract, month, delivered_mwh, used_mwh, sold_mwh
- ``btc_sales``: scenario, month, btc                          (treasury BTC sold)
- ``curtailment``: scenario, site, model, month, dr_units, peak_units  (operating units enrolled in demand response /
  curtailed around the transmission peak; at most the operating units; ``markets``)
- ``plant_feeds``: scenario, contract, site, month, mwh       (energy of an owned plant used at another site it feeds)

On a staged scenario tree (``instance.tree``, models/trees.md) the investment tables carry an
optional ``node`` column: the tree node taking the decision (blank or absent = the root, i.e.
the same decision in every scenario). Plans without it read and evaluate as before.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer import manifest
from optimizer.errors import InputError

COLUMNS: dict[str, list[str]] = {
    "conversions": ["site", "month", "blocks"],
    "grid_expansions": ["site", "option", "month"],
    "new_builds": ["site", "option", "month", "blocks"],
    "gpu_purchases": ["option", "site", "month", "mw"],
    "purchases": ["option", "site", "month", "units"],
    "retirements": ["site", "model", "month", "units"],
    "leases": ["lease", "site", "month", "share"],
    "contracts": ["contract", "signed"],
    "site_events": ["site", "event", "month"],
    "debt": ["instrument", "month", "usd"],
    "mining_exits": ["site", "month"],
    "overhead_cuts": ["reduction", "month"],
    "hedges": ["forward", "month", "ph_s"],
    "operations": ["scenario", "site", "model", "month", "units"],
    "energy": ["scenario", "contract", "month", "delivered_mwh", "used_mwh", "sold_mwh"],
    "btc_sales": ["scenario", "month", "btc"],
    "curtailment": ["scenario", "site", "model", "month", "dr_units", "peak_units"],
    "plant_feeds": ["scenario", "contract", "site", "month", "mwh"],
}
NODE = "node"  # optional last column of the FIRST_STAGE tables: the tree node taking the decision
RESULT_PLAN = "result-plan"  # manifest kind of the plan/ folder of a result directory
FIRST_STAGE = ["conversions", "grid_expansions", "new_builds", "gpu_purchases", "purchases", "retirements", "leases", "contracts",
               "site_events", "debt", "mining_exits", "overhead_cuts", "hedges"]
OPERATIONS = ["operations", "energy", "btc_sales", "curtailment", "plant_feeds"]
_NUMERIC = {"blocks", "units", "share", "delivered_mwh", "used_mwh", "sold_mwh", "btc", "usd", "mw", "dr_units", "peak_units", "mwh", "ph_s"}


_STR = pd.Series([], dtype=object).astype(str).dtype  # the dtype ``astype(str)`` gives a text column (pandas 3: str)


def _dtype(column: str):
    """The dtype ``Plan`` gives a column: float for amounts, bool for ``signed``, text otherwise."""
    return np.float64 if column in _NUMERIC else (bool if column == "signed" else _STR)


@functools.cache
def _empty_template(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS[name]})


def _empty(name: str) -> pd.DataFrame:
    """The empty table (the template itself: ``Plan.__post_init__`` stores a shallow copy of it)."""
    return _empty_template(name)


def _normalized(df: pd.DataFrame, cols: list[str]) -> bool:
    """True if ``df`` is already what ``Plan.__post_init__`` makes of a table: exactly ``cols`` in
    order, the index 0..n-1, every column in its dtype (``_dtype``) and no -0.0 among the amounts.
    Such a table is kept as it is (a shallow copy): rebuilding every column of the 18 tables cost
    ~25 ms a plan, which a sweep paid at every point (extracting and evaluating each plan)."""
    idx = df.index
    if list(df.columns) != cols or not (isinstance(idx, pd.RangeIndex) and idx.start == 0 and idx.step == 1):
        return False
    for c in cols:
        s = df[c]
        if s.dtype != _dtype(c):
            return False
        if c in _NUMERIC:
            v = s.to_numpy()
            if np.signbit(v[v == 0]).any():
                return False
    return True


def _table(name: str):
    return field(default_factory=lambda: _empty(name))


@dataclass
class Plan:
    conversions: pd.DataFrame = _table("conversions")
    grid_expansions: pd.DataFrame = _table("grid_expansions")
    new_builds: pd.DataFrame = _table("new_builds")
    gpu_purchases: pd.DataFrame = _table("gpu_purchases")
    purchases: pd.DataFrame = _table("purchases")
    retirements: pd.DataFrame = _table("retirements")
    leases: pd.DataFrame = _table("leases")
    contracts: pd.DataFrame = _table("contracts")
    site_events: pd.DataFrame = _table("site_events")
    debt: pd.DataFrame = _table("debt")
    mining_exits: pd.DataFrame = _table("mining_exits")
    overhead_cuts: pd.DataFrame = _table("overhead_cuts")
    hedges: pd.DataFrame = _table("hedges")
    operations: pd.DataFrame = _table("operations")
    energy: pd.DataFrame = _table("energy")
    btc_sales: pd.DataFrame = _table("btc_sales")
    curtailment: pd.DataFrame = _table("curtailment")
    plant_feeds: pd.DataFrame = _table("plant_feeds")
    name: str = "plan"

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "name":
                continue
            df = getattr(self, f.name)
            if df is None:
                df = _empty(f.name)
            elif not isinstance(df, pd.DataFrame):
                df = pd.DataFrame(df)
            missing = [c for c in COLUMNS[f.name] if c not in df.columns]
            if missing and len(df):
                raise ValueError(f"plan.{f.name}: missing column(s) {', '.join(missing)}")
            cols = COLUMNS[f.name] + ([NODE] if f.name in FIRST_STAGE and NODE in df.columns else [])
            if missing:
                df, cols = _empty(f.name), COLUMNS[f.name]
            extra = [c for c in df.columns if c not in cols]
            if extra:
                raise ValueError(f"plan.{f.name}: unknown column(s) {', '.join(map(str, extra))}")
            if NODE not in df.columns and _normalized(df, cols):
                setattr(self, f.name, df.copy(deep=False))  # copy-on-write: the caller's frame stays its own
                continue
            if NODE in df.columns and not missing:
                df[NODE] = df[NODE].where(df[NODE].notna(), "root").astype(str).replace({"": "root", "nan": "root"})
                if (df[NODE] == "root").all():
                    df = df.drop(columns=NODE)  # every row at the root: the two-stage table
                    cols = COLUMNS[f.name]
            df = df[cols].reset_index(drop=True)
            out = {}  # the columns converted, then one frame (assigning them one by one cost more than converting)
            for c in cols:
                if c in _NUMERIC:
                    try:
                        out[c] = pd.to_numeric(df[c], errors="raise").astype(float) + 0.0  # + 0.0: no -0.0
                    except (ValueError, TypeError) as e:  # name the table and column for the user
                        raise ValueError(f"plan.{f.name}.{c}: must be numbers ({e})") from None
                elif c == "signed":
                    out[c] = df[c].astype(bool)
                else:
                    out[c] = df[c].astype(str)
            setattr(self, f.name, pd.DataFrame(out, index=df.index))

    # ------------------------------------------------------------ helpers

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in COLUMNS}

    @property
    def has_operations(self) -> bool:
        return len(self.operations) > 0 or len(self.energy) > 0

    def first_stage(self) -> "Plan":
        """A copy holding only the investment decisions."""
        return Plan(**{k: getattr(self, k).copy() for k in FIRST_STAGE}, name=self.name)

    def replace(self, **tables) -> "Plan":
        kw = {k: getattr(self, k).copy() for k in COLUMNS}
        kw.update(tables)
        return Plan(**kw, name=self.name)

    # ------------------------------------------------------------ I/O

    def to_dir(self, path: str | Path, fmt: str = "csv", in_result: bool = False) -> Path:
        """Write one file per table (``csv`` or ``parquet``), each whole, then ``manifest.json``
        listing them (``optimizer.manifest``): a folder cut short by a kill has no manifest.
        ``in_result``: the folder is the ``plan/`` of a result directory (its manifest says so,
        and ``from_dir`` then reads it only while that result is complete)."""
        ext = "parquet" if fmt == "parquet" else "csv"
        other = "csv" if ext == "parquet" else "parquet"
        path = manifest.begin(path, stale=[f"{name}.{other}" for name in COLUMNS])  # from_dir prefers parquet
        for name, df in self.tables().items():
            with manifest.atomic_file(path / f"{name}.{ext}") as tmp:
                if ext == "parquet":
                    df.to_parquet(tmp, index=False)
                else:
                    df.to_csv(tmp, index=False, float_format="%.15g")  # 15 digits: no 0.30000000000000004
        manifest.finish(path, [f"{name}.{ext}" for name in COLUMNS], RESULT_PLAN if in_result else "plan")
        return path

    @classmethod
    def from_dir(cls, path: str | Path) -> "Plan":
        """Read a plan folder. One the optimizer wrote carries ``manifest.json`` and must be
        complete, and if it is the ``plan/`` of a result directory, that whole result must be
        complete too (a plan cut from an interrupted solve is refused). A folder without a
        manifest is taken as made by hand, unless it sits in a result directory."""
        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"plan directory not found: {path}")
        parent = path.parent
        if manifest.has_manifest(path):
            manifest.check_complete(path, "plan directory")
            if manifest.kind_of(path) == RESULT_PLAN or manifest.has_manifest(parent):
                manifest.check_complete(parent)
        elif manifest.being_written(path) or manifest.being_written(parent) or any(
                (parent / f).is_file() for f in (manifest.MANIFEST, "summary.json", "ph_summary.json")):
            raise InputError(f"{path}: incomplete plan directory: no {manifest.MANIFEST} (the run writing it was interrupted); "
                             "re-run the command that wrote it")
        tables = {}
        for name in COLUMNS:
            csv, pq = path / f"{name}.csv", path / f"{name}.parquet"
            if pq.exists():
                tables[name] = pd.read_parquet(pq)
            elif csv.exists():
                tables[name] = pd.read_csv(csv, dtype={"month": str, NODE: str})
        return cls(**tables, name=path.name)

    def to_json(self) -> str:
        return json.dumps({name: df.to_dict(orient="records") for name, df in self.tables().items()}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Plan":
        data = json.loads(text)
        unknown = set(data) - set(COLUMNS)
        if unknown:
            raise ValueError(f"plan: unknown table(s) {', '.join(sorted(unknown))}")
        return cls(**{k: pd.DataFrame(v) for k, v in data.items()})

    @classmethod
    def load(cls, path: str | Path) -> "Plan":
        """A plan directory (CSV/Parquet per table) or a JSON file."""
        path = Path(path)
        if path.is_dir():
            return cls.from_dir(path)
        if path.suffix.lower() == ".json" and path.is_file():
            return cls.from_json(path.read_text())
        raise ValueError(f"plan: {path} is neither a plan directory nor a .json file")
