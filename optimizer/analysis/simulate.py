"""Out-of-sample policy simulation: play a policy forward on fresh price paths (models/trees.md).

``simulate(instance, n_paths, ...)`` samples ``n_paths`` new monthly paths from the instance's
``scenario_generator`` with a new seed (default: the generator's seed + 1), and on each path
plays these policies, each from the same start:

- ``rolling``: re-plan at every stage. At the horizon start the commitments of the first stage
  are the root decisions of the instance's own tree solve (the same for every path). At each
  later branch month ``B_k`` the realized path is known up to ``B_k - 1``: a fresh tree is sampled
  from that history (the generator continued from the path's own shocks, the instance's children
  and samples per node for the remaining branch months, a seed per path and stage), every
  decision of the months before ``B_k`` is fixed to what was committed (conversions, leases,
  purchases, retirements, site events, contract signings, treasury sales), the tree is solved, and
  its root's commitments for the months ``B_k .. B_{k+1} - 1`` are committed. The root of that
  tree takes them before the stage's prices are seen (economics/tree.py), so nothing is decided
  on prices not yet realized.
- ``two-stage``: the now-or-never plan, the two-stage solve of the instance's scenarios (the
  tree's leaves), committed whole at the start.
- the baselines (``keep-mining``, ``convert-asap``, ``greedy``), built on the instance's scenarios.

Realized NPV: the path alone (one scenario) with every commitment and treasury sale of the
policy fixed; the optimized policies' operations (units running, energy) are re-optimised on the
path by the MILP (an LP: operations react to the month's prices as on a tree node; the plan's
treasury sales are fixed), the baselines' by the evaluator's operating rule, their definition.
The NPV is the plan evaluator's.

With ``resample=False`` and ``scenarios`` naming the instance's own scenarios, the paths are
those scenarios and each re-plan solves the instance's own sub-tree below the node reached
instead of a fresh sample ("no re-solve noise"): the realized NPV of ``rolling`` on a scenario
then equals the tree solution's NPV of that scenario.

Store: ``DIR/simulation.csv`` gets one row per path and policy (realized NPV and the key
decisions), appended and fsync'ed as each path finishes; a re-run with the same settings
simulates only the paths missing (``DIR/simulation.json`` holds the settings; other settings
are refused). ``DIR/simulation.png``: the distribution of realized NPV per policy;
``DIR/simulation_summary.json``: mean, percentiles, CVaR and throughput per policy.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from optimizer.analysis.sweep import Store
from optimizer.constants import Reporter, reporter
from optimizer.economics.data import compile_instance
from optimizer.errors import InputError, one_line
from optimizer.evaluate import BASELINES, baseline_plan, evaluate
from optimizer.instance.base import TreeSpec
from optimizer.instance.scengen import Shocks, branch_offsets, draw_shocks, paths_from_shocks, sample_tree, scenario_dicts
from optimizer.instance.schema import Instance, Scenario
from optimizer.instance.variants import scenario_instance, two_stage_instance
from optimizer.kernel.finance import cvar_usd
from optimizer.kernel.timeline import month_label
from optimizer.plan import FIRST_STAGE, Plan
from optimizer.solve import solve

POLICIES = ("rolling", "two-stage") + BASELINES
COLUMNS = ["point_id", "path", "policy", "status", "realized_npv_usd", "converted_mw", "first_conversion_month",
           "leases_signed", "asics_bought", "asics_retired", "btc_sold", "sites_sold", "btc_price_end_usd",
           "mean_hashprice_usd_per_ph_day", "solves", "seconds", "error"]
_STR = {"point_id", "path", "policy", "status", "first_conversion_month", "leases_signed", "sites_sold", "error"}


# ---------------------------------------------------------------- the job


@dataclass
class SimJob:
    """Everything a worker needs to play the policies on one path."""

    instance: Instance
    offsets: list[int]                   # branch months, as months from the horizon start
    children: list[int]
    samples: int | None
    method: str
    seed: int
    resample: bool
    first: Plan                          # the rolling policy's first-stage commitments (root of the instance's tree)
    two_stage: Plan                      # the now-or-never plan's commitments and sales
    baselines: dict[str, Plan] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    policies: tuple[str, ...] = POLICIES


def _spec(instance: Instance):
    if instance.scenario_generator is None:
        raise InputError("simulate: the instance needs a scenario_generator (fresh paths are sampled from it)")
    return instance.scenario_generator


def _markets(instance: Instance) -> list[str]:
    return sorted({s.market for s in instance.sites})


def _tree_shape(instance: Instance) -> tuple[list[int], list[int], int | None, str]:
    """Branch offsets (months), children per branch month, samples per node, reduction method."""
    t = instance.tree
    if t is None:  # two-stage: one branch at the start; re-planning has nothing to add
        return [0], [1], None, "kmedoids"
    offsets = branch_offsets(t, instance.horizon)
    if t.children is not None:
        return offsets, t.children_per_stage, t.samples_per_node, t.reduction_method
    return offsets, [1] * len(offsets), None, t.reduction_method


def commitments(plan: Plan, lo: str | None, hi: str | None) -> Plan:
    """The commitments (first-stage rows at the root, and treasury sales) of months ``lo <= m < hi``;
    treasury sales become one row per month (scenario ``*``)."""
    def within(m: pd.Series) -> pd.Series:
        m = m.astype(str)
        ok = pd.Series(True, index=m.index)
        if lo:
            ok &= m >= lo
        if hi:
            ok &= m < hi
        return ok

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        if "node" in df.columns:
            df = df[df["node"].astype(str).isin(["root", "", "nan"])].drop(columns="node")
        return df[within(df["month"])].reset_index(drop=True)

    tables = {name: keep(getattr(plan, name)) for name in FIRST_STAGE if name != "contracts"}
    c = plan.contracts  # signings have no month: the root's (those of the root's months, earlier ones fixed)
    tables["contracts"] = c[c["node"].astype(str) == "root"].drop(columns="node").reset_index(drop=True) if "node" in c.columns else c
    s = plan.btc_sales
    if len(s):
        s = s[within(s["month"])]
        s = s.groupby("month", as_index=False)["btc"].max().assign(scenario="*")[["scenario", "month", "btc"]]
    tables["btc_sales"] = s
    return Plan(**tables, name=plan.name)


def join(a: Plan, b: Plan) -> Plan:
    """The commitments of both plans (contracts: ``b``'s signing wins for a contract in both)."""
    tables = {name: pd.concat([getattr(a, name), getattr(b, name)], ignore_index=True) for name in FIRST_STAGE + ["btc_sales"]}
    tables["contracts"] = tables["contracts"].drop_duplicates("contract", keep="last")
    return Plan(**tables, name=a.name)


def _with(instance: Instance, scenarios: list, tree: TreeSpec | None) -> Instance:
    """The instance with these scenarios (dicts or Scenario objects) and tree."""
    scen = [s if isinstance(s, Scenario) else Scenario.model_validate(s) for s in scenarios]
    sub = instance.model_copy(update={"scenarios": scen, "scenario_generator": None, "tree": tree})
    sub._data_folder = instance.data_folder
    return sub


def _seed(*parts: int) -> int:
    return int.from_bytes(hashlib.sha256(json.dumps(list(parts)).encode()).digest()[:4], "little")


# ---------------------------------------------------------------- one path


def _realized(job: SimJob, path_inst: Instance, plan: Plan, optimized: bool):
    """(Result or Evaluation, NPV, status) of a policy's commitments on the path alone."""
    if optimized:
        r = solve(path_inst, first_stage=plan, first_stage_sales=True, **job.options)
        return r, (r.npv_usd if r.solved else math.nan), str(r.status), (r.plan if r.solved else plan)
    ev = evaluate(path_inst, plan)
    return ev, ev.npv_usd, "evaluated" if not ev.violations else "violations", ev.plan


def _decisions(inst: Instance, plan: Plan | None) -> dict:
    if plan is None:
        return {}
    conv = plan.conversions
    mw = float(sum(r.blocks * inst.site_by_id[r.site].block_it_mw for r in conv.itertuples())) if len(conv) else 0.0
    leases = plan.leases
    ev = plan.site_events
    return {
        "converted_mw": mw,
        "first_conversion_month": str(conv["month"].min()) if len(conv) else "",
        "leases_signed": ";".join(sorted(set(leases.loc[leases["share"] > 0, "lease"]))) if len(leases) else "",
        "asics_bought": float(plan.purchases["units"].sum()) if len(plan.purchases) else 0.0,
        "asics_retired": float(plan.retirements["units"].sum()) if len(plan.retirements) else 0.0,
        "btc_sold": float(plan.btc_sales.groupby("month")["btc"].max().sum()) if len(plan.btc_sales) else 0.0,
        "sites_sold": ";".join(sorted(ev.loc[ev["event"] == "sale", "site"])) if len(ev) else "",
    }


def _stage_instance(job: SimJob, k: int, shocks: Shocks | None, scenario: str | None, path: int) -> Instance:
    """The tree to re-plan on at branch month ``offsets[k]``: fresh (sampled from the path's
    history) or, without resampling, the instance's own sub-tree below the node reached."""
    inst, offs = job.instance, job.offsets
    labels = [month_label(inst.timeline.start + o) for o in offs[k:]]
    if job.resample:
        spec = inst.scenario_generator
        ts = sample_tree(spec, inst.horizon.start_month, inst.timeline.n_months, inst.bitcoin, _markets(inst),
                         offs[k:], job.children[k:], job.samples, job.method, seed=_seed(job.seed, path, k), prefix=shocks)
        return _with(inst, ts.scenarios(), TreeSpec(branch_months=labels, paths=ts.labels))
    paths = inst.tree.paths
    mine = paths[scenario][:k]  # the node reached: depth k - 1 ... its scenarios share labels up to k
    members = [s for s in inst.scenarios if paths[s.name][:k] == mine]
    total = sum(s.probability for s in members)
    scen = [s.model_copy(update={"probability": s.probability / total}) for s in members]
    return _with(inst, scen, TreeSpec(branch_months=labels, paths={s.name: paths[s.name][k:] for s in members}))


def play_path(job: SimJob, path: int, shocks: Shocks | None = None, scenario: str | None = None) -> list[dict]:
    """Every policy on one path: one row each (see ``COLUMNS``)."""
    inst = job.instance
    if scenario is not None:
        path_inst = scenario_instance(inst, [s.name for s in inst.scenarios].index(scenario))
    else:
        paths = paths_from_shocks(inst.scenario_generator, shocks, inst.horizon.start_month, inst.bitcoin)
        path_inst = _with(inst, scenario_dicts(paths, [f"path{path:04d}"], [1.0]), None)
    data = compile_instance(path_inst)
    about = {"path": scenario or f"path{path:04d}", "btc_price_end_usd": float(data.btc_price_usd[0, -1]),
             "mean_hashprice_usd_per_ph_day": float(data.hashprice_usd_per_ph_day[0].mean())}
    rows = []
    for policy in job.policies:
        t1 = time.perf_counter()
        row = {**about, "policy": policy, "point_id": f"{about['path']}/{policy}", "solves": 0}
        try:
            if policy == "rolling":
                plan, n = _rolling(job, path, shocks, scenario)
                _, npv, status, done = _realized(job, path_inst, plan, True)
                row["solves"] = n + 1
            elif policy == "two-stage":
                _, npv, status, done = _realized(job, path_inst, job.two_stage, True)
                row["solves"] = 1
            else:
                _, npv, status, done = _realized(job, path_inst, job.baselines[policy], False)
            row.update(status=status, realized_npv_usd=npv, **_decisions(inst, done))
            if not math.isfinite(npv):
                row["error"] = f"no realized NPV (status {status})"
        except Exception as e:  # noqa: BLE001 - recorded in the store, the simulation goes on
            row.update(status="error", error=one_line(f"{type(e).__name__}: {e}"))
        row["seconds"] = time.perf_counter() - t1
        rows.append(row)
    return rows


def _rolling(job: SimJob, path: int, shocks: Shocks | None, scenario: str | None) -> tuple[Plan, int]:
    """The rolling policy's commitments on one path, and the number of tree solves."""
    inst, offs = job.instance, job.offsets
    lab = lambda o: month_label(inst.timeline.start + o)  # noqa: E731
    committed = job.first
    solves = 0
    for k in range(1, len(offs)):
        stage = _stage_instance(job, k, shocks, scenario, path)
        r = solve(stage, first_stage=committed, first_stage_until=lab(offs[k]), first_stage_sales=True, **job.options)
        solves += 1
        if not r.solved:
            raise RuntimeError(f"re-plan at {lab(offs[k])}: {r.status} ({one_line(r.message)})")
        hi = lab(offs[k + 1]) if k + 1 < len(offs) else None
        committed = join(committed, commitments(r.plan, lab(offs[k]), hi))
    return committed, solves


# ---------------------------------------------------------------- preparation


def prepare(instance: Instance, *, seed: int | None = None, resample: bool = True, policies=POLICIES,
            progress: Reporter | None = None, **solve_options) -> SimJob:
    """Solve what every path shares: the instance's tree (its root commitments start the rolling
    policy) and its two-stage form (the static plan); build the baselines' first stages."""
    spec = _spec(instance) if resample else instance.scenario_generator
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise InputError(f"simulate: unknown polic{'ies' if len(bad) > 1 else 'y'} {', '.join(bad)} (known: {', '.join(POLICIES)})")
    offsets, children, samples, method = _tree_shape(instance)
    if not resample and instance.tree is not None and instance.tree.paths is None:
        raise InputError("simulate: without resampling the instance needs a tree with paths")
    opts = {"mip_gap": 0.005, **solve_options, "baselines": False, "shadow_prices": False, "value_of_information": False,
            "value_of_flexibility": False}
    rep = reporter(progress)
    base_seed = spec.seed + 1 if spec is not None else 1
    job = SimJob(instance, offsets, children, samples, method, base_seed if seed is None else seed, resample,
                 Plan(), Plan(), options=opts, policies=tuple(policies))
    lab = lambda o: month_label(instance.timeline.start + o)  # noqa: E731
    if "rolling" in policies:
        rep.note("solving the instance's tree (the first stage of the rolling policy)")
        tree = solve(instance, **opts)
        if not tree.solved:
            raise RuntimeError(f"simulate: the instance's tree solve ended {tree.status}: {one_line(tree.message)}")
        job.first = commitments(tree.plan, None, lab(offsets[1]) if len(offsets) > 1 else None)
    if "two-stage" in policies:
        rep.note("solving the two-stage form (the static now-or-never plan)")
        two = solve(two_stage_instance(instance), **opts)
        if not two.solved:
            raise RuntimeError(f"simulate: the two-stage solve ended {two.status}: {one_line(two.message)}")
        job.two_stage = commitments(two.plan, None, None)
    data = compile_instance(instance)
    for name in BASELINES:
        if name in policies:
            job.baselines[name] = baseline_plan(instance, name, data).first_stage()
    return job


# ---------------------------------------------------------------- running paths


_POOL_JOB: SimJob | None = None


def _pool_init(job: SimJob) -> None:
    global _POOL_JOB
    _POOL_JOB = job


def _pool_task(path: int, shocks: Shocks | None, scenario: str | None) -> list[dict]:
    return play_path(_POOL_JOB, path, shocks, scenario)


def _run(job: SimJob, todo: list[tuple[int, Shocks | None, str | None]], executor: str, workers: int | None,
         scheduler_address: str | None) -> Iterator[list[dict]]:
    if executor == "inprocess":
        for p, sh, sc in todo:
            yield play_path(job, p, sh, sc)
        return
    if executor == "processes":
        ex = ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_pool_init, initargs=(job,))
        try:
            futures = [ex.submit(_pool_task, p, sh, sc) for p, sh, sc in todo]
            for f in as_completed(futures):
                yield f.result()
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return
    import logging

    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_completed

    cluster = None
    if scheduler_address:
        client = Client(scheduler_address)
    else:
        cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        job_f = client.scatter(job, broadcast=True)
        futures = [client.submit(play_path, job_f, p, sh, sc, pure=False) for p, sh, sc in todo]
        for f in dask_completed(futures):
            yield f.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _meta(job: SimJob, n_paths: int, scenarios: list[str] | None) -> dict:
    inst = job.instance
    fp = hashlib.sha256(inst.model_dump_json().encode()).hexdigest()[:16]
    return {"instance": inst.name, "instance_fingerprint": fp, "paths": n_paths, "scenarios": scenarios, "seed": job.seed,
            "resample": job.resample, "policies": list(job.policies), "branch_months": [month_label(inst.timeline.start + o) for o in job.offsets],
            "children": job.children, "samples_per_node": job.samples,
            "solve_options": json.loads(json.dumps(job.options, sort_keys=True, default=repr)), "columns": COLUMNS}


def _store(out_dir, meta: dict) -> Store:
    """The sweep's append-only, fsync'ed store as ``DIR/simulation.csv`` (settings in ``simulation.json``)."""
    if out_dir is None:
        return Store(None, COLUMNS, "simulation.csv", text_columns=_STR)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    old = out / "simulation.json"
    if old.exists():
        try:
            prev = json.loads(old.read_text())
        except json.JSONDecodeError:
            prev = {}
        keys = ("instance_fingerprint", "seed", "resample", "policies", "scenarios", "solve_options")
        if any(prev.get(k) != meta[k] for k in keys if k in prev):
            raise InputError(f"{out}: holds a simulation with other settings (instance, seed, policies or solve options); "
                             "use another output directory or delete it")
    store = Store(out, COLUMNS, "simulation.csv", text_columns=_STR)
    tmp = out / "simulation.json.tmp"
    tmp.write_text(json.dumps(meta, indent=1, default=repr))
    os.replace(tmp, out / "simulation.json")
    return store


def simulate(instance: Instance, n_paths: int = 20, *, out_dir: str | Path | None = None, seed: int | None = None,
             resample: bool = True, scenarios: list[str] | None = None, policies=POLICIES, executor: str = "inprocess",
             workers: int | None = None, scheduler_address: str | None = None, progress: Reporter | None = None,
             job: SimJob | None = None, **solve_options) -> pd.DataFrame:
    """Play the policies on ``n_paths`` fresh paths (or on the instance's own ``scenarios``);
    one row per path and policy, in path then policy order (see the module doc). ``executor``:
    ``inprocess``, ``processes`` (a spawned pool of ``workers``) or ``dask`` (``scheduler_address``
    or a LocalCluster of ``workers``). ``job``: a prepared ``SimJob`` to re-use."""
    if executor not in ("inprocess", "processes", "dask"):
        raise InputError(f"simulate: executor must be inprocess, processes or dask, got {executor!r}")
    if scenarios is None and (not isinstance(n_paths, int) or n_paths < 1):
        raise InputError(f"simulate: --paths must be a whole number >= 1, got {n_paths!r}")
    if scenarios is None:
        _spec(instance)
    else:
        unknown = [s for s in scenarios if s not in {x.name for x in instance.scenarios}]
        if unknown:
            raise InputError(f"simulate: unknown scenario {unknown[0]!r}")
        n_paths = len(scenarios)
    rep = reporter(progress)
    t0 = time.perf_counter()
    job = job or prepare(instance, seed=seed, resample=resample, policies=policies, progress=progress, **solve_options)
    meta = _meta(job, n_paths, scenarios)
    store = _store(out_dir, meta)
    if scenarios is not None:
        todo = [(i, None, s) for i, s in enumerate(scenarios)]
        names = list(scenarios)
    else:
        shocks = draw_shocks(instance.scenario_generator, n_paths, instance.timeline.n_months, _markets(instance), seed=job.seed)
        todo = [(p, shocks.rows([p]), None) for p in range(n_paths)]
        names = [f"path{p:04d}" for p in range(n_paths)]
    done = {pid.split("/")[0] for pid in store.done}
    todo = [x for x, n in zip(todo, names) if n not in done]
    if len(todo) < n_paths:
        rep.note(f"simulate: {n_paths - len(todo)} of {n_paths} paths already in {store.path}")
    rep.start("simulate", len(todo))
    n_err = 0
    t_paths = time.perf_counter()
    try:
        for rows in _run(job, todo, executor, workers, scheduler_address):
            for row in rows:
                store.append(row)
            n_err += any(r.get("error") for r in rows)
            rep.advance(1, f"simulate ({n_err} with errors)" if n_err else "simulate")
    finally:
        rep.finish()
    df = store.read()
    order = {n: i for i, n in enumerate(names)}
    pol = {p: i for i, p in enumerate(job.policies)}
    df = df[df["path"].isin(order)].copy()
    df = df.sort_values(["path", "policy"], key=lambda s: s.map(order) if s.name == "path" else s.map(pol)).reset_index(drop=True)
    df.attrs["seconds"] = time.perf_counter() - t0
    df.attrs["path_seconds"] = time.perf_counter() - t_paths
    df.attrs["paths_simulated"] = len(todo)
    if out_dir is not None:
        summary = summarize(df)
        summary.update({"seconds": df.attrs["seconds"], "paths_simulated_now": len(todo),
                        "paths_per_minute": 60.0 * len(todo) / df.attrs["path_seconds"] if todo and df.attrs["path_seconds"] > 0 else None,
                        **{k: meta[k] for k in ("instance", "seed", "resample", "branch_months", "children")}})
        (Path(out_dir) / "simulation_summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")
        chart(df, Path(out_dir) / "simulation.png")
    return df


def summarize(df: pd.DataFrame) -> dict:
    """Per policy: paths, mean, std, p10/p50/p90 and CVaR_0.9 (worst 10%) of the realized NPV (USD)."""
    out: dict = {"policies": {}}
    for policy, g in df.groupby("policy", sort=False):
        x = pd.to_numeric(g["realized_npv_usd"], errors="coerce").dropna().to_numpy(float)
        if not len(x):
            out["policies"][policy] = {"paths": 0}
            continue
        out["policies"][policy] = {
            "paths": int(len(x)), "mean_usd": float(x.mean()), "std_usd": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
            "p10_usd": float(np.percentile(x, 10)), "p50_usd": float(np.percentile(x, 50)), "p90_usd": float(np.percentile(x, 90)),
            "cvar90_usd": float(cvar_usd(list(x), [1.0 / len(x)] * len(x), 0.9)),
        }
    return out


def chart(df: pd.DataFrame, path: Path) -> Path:
    """The empirical distribution (CDF) of realized NPV per policy, means marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for policy, g in df.groupby("policy", sort=False):
        x = np.sort(pd.to_numeric(g["realized_npv_usd"], errors="coerce").dropna().to_numpy(float)) / 1e6
        if not len(x):
            continue
        line, = ax.step(x, np.arange(1, len(x) + 1) / len(x), where="post", label=f"{policy} (mean {x.mean():,.0f} M$)")
        ax.axvline(x.mean(), color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("realized NPV (M$)")
    ax.set_ylabel("share of paths")
    ax.set_title("Out-of-sample simulation: realized NPV by policy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
