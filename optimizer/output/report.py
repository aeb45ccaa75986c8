"""A self-contained HTML report of a result directory (what ``Result.write`` produces).

The report reads files, not Python objects, so any result directory can be rendered later:
``summary.json``, ``plan.csv`` (site x month allocation), ``cashflows.csv``, ``kpis.csv``,
``npv_breakdown.csv``, ``leases.csv``, ``contracts.csv``, ``plan/`` (decision tables) and,
when present, ``points.csv`` (sweep), ``tornado.csv`` and ``frontier.csv`` (risk frontier).
When ``summary.json`` names ``instance_path`` (or an instance is passed), scenario
probabilities, the halving and the grid limits come from the compiled instance.

The headline is the CFO's (``optimizer.output.headline``): the recommendation and its value,
the key figures (NPV and its range, uplift over keeping mining, MW converted, leases, capex,
peak funding need, BTC sold, terminal share), the uplift over each baseline, and how the plan
was obtained (solver status, gap, bound, times) as a footnote. The decision section lists
every decision in words (``optimizer.output.decisions``), then the decision tables.

Charts are matplotlib (Agg) PNGs embedded as base64, CSS is inline: the file opens offline.
A section whose data is absent is left out and listed under "Not available".
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from optimizer.analysis.digest import param_label
from optimizer.constants import SOLVED, Status
from optimizer.economics.data import Data, compile_instance
from optimizer.instance.loading import load_instance
from optimizer.kernel import protocol
from optimizer.output.decisions import CONTINUOUS_NOTE, describe_plan, needs_continuous_note, not_taken
from optimizer.output.fmt import usd
from optimizer.output.headline import build_headline, solver_note
from optimizer.plan import Plan
from optimizer.solve.resultdir import read_result_dir

TERMINAL_PREFIX = "terminal_"
C_MINING, C_HPC, C_HPC_IDLE, C_IDLE = "#e8930c", "#1f5fa8", "#9cc3e6", "#b5b5b5"
C_POS, C_NEG, C_TOTAL = "#2e8b57", "#c0392b", "#1f5fa8"
# fixed colours per cash-flow line so the same item looks the same in every chart
ITEM_COLORS = {
    "mining_revenue_usd": C_MINING, "lease_revenue_usd": C_HPC, "power_passthrough_usd": "#17becf",
    "power_sold_usd": "#98df8a", "power_cost_usd": "#d62728", "opex_usd": "#7f7f7f", "lease_penalty_usd": "#ff9896",
    "capex_usd": "#6a3d9a", "asic_purchases_usd": "#8c564b", "salvage_usd": "#2ca02c", "site_sales_usd": "#aec7e8",
    "acquisitions_usd": "#c49c94", "contract_fees_usd": "#f7b6d2", "treasury_sales_usd": "#dbdb8d",
    "btc_retained_usd": "#bcbd22",
}
_ITEM_ORDER = {k: i for i, k in enumerate(list(ITEM_COLORS) + ["terminal_lease_noi_usd", "terminal_hpc_usd",
                                                                "terminal_mining_usd", "terminal_asic_salvage_usd", "terminal_generation_usd",
                                                                "terminal_treasury_usd"])}
# scenario colours avoid the HPC blue and the halving red so lines stay distinguishable
SCENARIO_COLORS = ["#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]


# ---------------------------------------------------------------- context shared by the sections


class _Missing(Exception):
    """A section cannot be drawn; the message says which data is absent."""


@dataclass
class _Ctx:
    summary: dict
    tables: dict[str, pd.DataFrame]
    data: Data | None = None                    # compiled data of the instance, if known
    probs: dict[str, float] = field(default_factory=dict)
    probs_known: bool = False
    period_months: int = 1
    notes: list[str] = field(default_factory=list)
    plan: Plan | None = None                    # the decision tables of plan/, when present

    def table(self, name: str, *cols: str) -> pd.DataFrame:
        df = self.tables.get(name)
        if df is None or df.empty:
            raise _Missing(f"{name}.csv")
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise _Missing(f"{name}.csv columns {', '.join(missing)}")
        return df

    def expected(self, df: pd.DataFrame, by: list[str], cols: list[str]) -> pd.DataFrame:
        """Probability-weighted sum over scenarios of ``cols`` grouped by ``by``."""
        if "scenario" not in df.columns:
            return df.groupby(by, sort=True)[cols].sum().reset_index()
        w = df["scenario"].map(self.probs).fillna(0.0)
        x = df[by].copy()
        for c in cols:
            x[c] = df[c].astype(float) * w
        return x.groupby(by, sort=True)[cols].sum().reset_index()


def load_context(result_dir: Path, instance=None, data_dir=None) -> _Ctx:
    """The result directory's summary, tables, plan and (when known) compiled instance; an
    instance file is read with the data folder ``data_dir`` (default its own folder)."""
    result_dir = Path(result_dir)
    summary, tables = read_result_dir(result_dir)
    plan, notes = None, []
    if (result_dir / "plan").is_dir():
        try:
            plan = Plan.from_dir(result_dir / "plan")
        except ValueError as e:      # a hand-edited plan/: the decision sentences are left out, said so
            notes.append(f"plan/ not readable ({e}); decisions in words not shown")
    ctx = make_context(summary, tables, plan, instance, base_dir=result_dir, data_dir=data_dir)
    ctx.notes[:0] = notes
    return ctx


def make_context(summary: dict, tables: dict[str, pd.DataFrame], plan: Plan | None = None, instance=None,
                 base_dir: Path | None = None, data_dir=None) -> _Ctx:
    """A context from tables in memory; ``instance``: an Instance, a path, or None (then
    summary.json's ``instance_path``, relative to ``base_dir``, when it names one)."""
    ctx = _Ctx(summary, tables, plan=plan)
    inst = instance
    if inst is None and summary.get("instance_path"):
        p = Path(summary["instance_path"])
        cand = [p] if p.is_absolute() or base_dir is None else [base_dir / p, p]
        found = next((c for c in cand if c.is_file()), None)
        if found is None:
            ctx.notes.append(f"instance file {summary['instance_path']} not found; halving and grid limits not shown")
        else:
            inst = load_instance(found, data_dir)
    elif isinstance(inst, (str, Path)):
        inst = load_instance(inst, data_dir)
    if inst is not None:
        ctx.data = compile_instance(inst)
        ctx.probs = dict(zip(ctx.data.scenario_names, map(float, ctx.data.prob)))
        ctx.probs_known = True
        ctx.period_months = int(inst.horizon.period_months)
    else:
        sp = summary.get("scenario_probabilities")
        if isinstance(sp, dict) and sp:
            ctx.probs, ctx.probs_known = {str(k): float(v) for k, v in sp.items()}, True
        else:
            names = _scenarios(tables, summary)
            ctx.probs = {n: 1.0 / len(names) for n in names} if names else {}
            if len(names) > 1:
                ctx.notes.append("scenario probabilities unknown (no instance): scenarios are weighted equally in expected-value charts")
        ctx.period_months = _infer_period_months(tables)
    return ctx


def _scenarios(tables: dict[str, pd.DataFrame], summary: dict) -> list[str]:
    for name in ("kpis", "cashflows"):
        df = tables.get(name)
        if df is not None and "scenario" in df.columns:
            return list(dict.fromkeys(df["scenario"].astype(str)))
    return list((summary.get("npv_usd_by_scenario") or {}).keys())


def _infer_period_months(tables: dict[str, pd.DataFrame]) -> int:
    for name in ("kpis", "plan", "cashflows"):
        df = tables.get(name)
        if df is not None and "month" in df.columns and df["month"].nunique() > 1:
            m = sorted({_ordinal(x) for x in df["month"]})
            return int(min(np.diff(m)))
    return 1


def _ordinal(month: str) -> int:
    y, m = str(month).split("-")[:2]
    return int(y) * 12 + int(m) - 1


def _dates(months) -> pd.DatetimeIndex:
    return pd.to_datetime([f"{m}-01" for m in months])


def _xext(months, period_months: int) -> pd.DatetimeIndex:
    """Period start dates plus the end of the last period, so post-steps show the last period."""
    x = _dates(months)
    return x.append(pd.DatetimeIndex([x[-1] + pd.DateOffset(months=period_months)])) if len(x) else x


def _yext(y) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return np.append(y, y[-1]) if len(y) else y


def _step(ax, ctx, months, y, **kw):
    return ax.step(_xext(months, ctx.period_months), _yext(y), where="post", **kw)


_load_context = load_context  # the tests' older name


# ---------------------------------------------------------------- formatting


_usd = usd   # $537.20M (optimizer.output.fmt: the console and the workbook read the same)


def _label(item: str) -> str:
    return item.removesuffix("_usd").replace("_", " ")


def _esc(x) -> str:
    return html.escape(str(x))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold",
                         "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 9, "legend.framealpha": 0.9})
    return plt


def _img(fig, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100)
    _plt().close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="chart" alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


def _date_axis(ax) -> None:
    import matplotlib.dates as mdates

    loc = mdates.AutoDateLocator(minticks=4, maxticks=12)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _musd_axis(ax, axis: str = "y") -> None:
    _usd_axis(ax, axis, 1e6)


def _usd_axis(ax, axis: str, scale: float) -> str:
    """Tick labels in USD / scale; returns the unit word for the axis label."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v / scale:,.{0 if abs(v) >= 10 * scale or v == 0 else 1}f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)
    return {1e6: "USD million", 1e3: "USD thousand"}.get(scale, "USD")


def _table_html(df: pd.DataFrame, max_rows: int = 40) -> str:
    shown = df.head(max_rows)
    fmt = {c: (lambda v: _usd(v)) for c in shown.columns if str(c).endswith("_usd")}
    out = shown.to_html(index=False, classes="data", border=0, na_rep="", formatters=fmt,
                        float_format=lambda v: f"{v:,.6g}")
    if len(df) > max_rows:
        out += f'<p class="note">{len(df) - max_rows} more rows in the CSV file.</p>'
    return out


# ---------------------------------------------------------------- sections


def _headline(ctx: _Ctx) -> str:
    """The CFO headline (output.headline): recommendation, value, key figures, uplift per
    baseline; how the plan was obtained (solver status, gap, bound, times) in a footnote."""
    s = ctx.summary
    if not s:
        raise _Missing("summary.json")
    npv = s.get("npv_usd", s.get("evaluator_npv_usd"))
    h = build_headline(s, ctx.tables.get("cashflows"), ctx.plan, ctx.data)
    parts = []
    if h.broken_rules:          # before the NPV: a plan that breaks rules does not earn it
        parts.append(f'<p class="warn"><b>{_esc(h.broken_rules)}</b></p>')
    if h.recommendation:
        parts.append(f'<p class="reco"><b>Recommendation.</b> {_esc(h.recommendation)}</p>')
    if h.value_sentence:
        parts.append(f'<p class="value">{_esc(h.value_sentence)}</p>')
    for w in h.warnings:
        parts.append(f'<p class="warn">{_esc(w)}</p>')
    cards = h.figures() if npv is not None else []
    if s.get("plan"):
        cards.append(("Plan", f"evaluated plan {s['plan']}"))
    elif npv is None:
        cards.append(("Status", str(s.get("status") or "n/a")))
    parts += ['<div class="cards">'] + [f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
                                        for k, v in cards] + ["</div>"]
    base = s.get("baselines") or {}
    if base and npv is not None:
        parts.append('<h3>Uplift over each baseline plan</h3><table class="data"><tr><th>baseline</th><th>baseline NPV</th>'
                     '<th>uplift of this plan</th><th>uplift %</th></tr>')
        for name, v in sorted(base.items(), key=lambda kv: -(kv[1] if kv[1] is not None else -np.inf)):
            up = None if v is None else npv - v
            pct = "" if v is None or v == 0 else f"{100 * up / abs(v):,.1f} %"
            parts.append(f"<tr><td>{_esc(name)}</td><td>{_usd(v)}</td><td>{_usd(up)}</td><td>{pct}</td></tr>")
        parts.append("</table>")
    for key, title in (("violations", "Evaluator violations"), ("diagnosis", "Diagnosis")):
        if s.get(key):
            parts.append(f"<h3>{title}</h3><ul>" + "".join(f"<li>{_esc(x)}</li>" for x in s[key]) + "</ul>")
    note = solver_note(s)
    if note:
        parts.append(f'<p class="note footnote">{_esc(note)}</p>')
    return "".join(parts)


def _decisions(ctx: _Ctx) -> str:
    """Every decision in words (output.decisions), then the decision tables themselves."""
    parts = []
    if ctx.plan is not None:
        decisions = describe_plan(ctx.plan, ctx.data)
        items = "".join(f"<li>{_esc(d.sentence)}</li>" for d in decisions)
        parts.append(f'<ol class="decisions">{items}</ol>' if decisions else "<p>The plan takes no decision.</p>")
        missed = not_taken(ctx.plan, ctx.data)
        if missed:
            parts.append("<ul>" + "".join(f"<li>{_esc(x)}</li>" for x in missed) + "</ul>")
        if needs_continuous_note(decisions):
            parts.append(f'<p class="note">{_esc(CONTINUOUS_NOTE)}</p>')
        if ctx.data is None:
            parts.append('<p class="note">No instance available: sentences without MW, lead times and amounts.</p>')
    titles = {"plan_conversions": "Conversions started (blocks of racks)", "leases": "Leases signed (hand-over month)",
              "contracts": "Optional power contracts", "plan_purchases": "ASIC purchases",
              "plan_retirements": "ASIC retirements", "plan_grid_expansions": "Grid expansions",
              "plan_new_builds": "New-build capacity started (blocks of racks)", "plan_gpu_purchases": "GPU purchases (MW of critical IT)",
              "plan_site_events": "Site sales and acquisitions", "plan_btc_sales": "Treasury BTC sales (per scenario)"}
    for name, title in titles.items():
        df = ctx.tables.get(name)
        if df is None or df.empty:
            continue
        df = df.copy()
        if name == "plan_btc_sales":
            df = df[pd.to_numeric(df["btc"], errors="coerce") > 1e-9]
            if df.empty:
                continue
        if name == "leases" and ctx.data is not None:
            leases = ctx.data.inst.leases
            df["it_mw"] = df["lease"].map({l.id: l.it_mw for l in leases})
            df["rate_usd_per_kw_month"] = df["lease"].map({l.id: l.rate_usd_per_kw_month for l in leases})
            df["term_months"] = df["lease"].map({l.id: l.term_months for l in leases})
        if name == "plan_conversions" and ctx.data is not None:
            sites = ctx.data.inst.site_by_id
            df["hpc_mw"] = [b * sites[s].block_it_mw
                            if s in sites and sites[s].conversion else np.nan for s, b in zip(df["site"], df["blocks"])]
        parts.append(f"<h3>{title}</h3>" + _table_html(df))
    if not parts:
        raise _Missing("decision tables (plan/conversions.csv, leases.csv, contracts.csv)")
    return "".join(parts)


def _allocation_frame(ctx: _Ctx) -> pd.DataFrame:
    a = ctx.table("plan", "site", "month", "mining_mw", "hpc_mw")
    cols = [c for c in ("mining_mw", "hpc_mw", "hpc_mw_leased", "hpc_racks", "hpc_racks_leased", "idle_mw", "grid_mw")
            if c in a.columns]
    return ctx.expected(a, ["site", "month"], cols) if "scenario" in a.columns else a


def _allocation(ctx: _Ctx) -> str:
    plt = _plt()
    a = _allocation_frame(ctx)
    sites = list(dict.fromkeys(a["site"]))
    ncol = 1 if len(sites) == 1 else 2
    nrow = -(-len(sites) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(13, 0.6 + 3.4 * nrow), squeeze=False)
    handles = {}
    for ax, site in zip(axes.flat, sites):
        g = a[a["site"] == site].sort_values("month")
        x = _xext(g["month"], ctx.period_months)
        mining, hpc = g["mining_mw"].to_numpy(float), g["hpc_mw"].to_numpy(float)
        if "hpc_mw_leased" in g.columns:
            leased = np.minimum(g["hpc_mw_leased"].to_numpy(float), hpc)
            layers = [(mining, "mining (ASICs installed)", C_MINING), (leased, "HPC leased (critical IT)", C_HPC),
                      (hpc - leased, "HPC built, not leased (idle)", C_HPC_IDLE)]
        elif {"hpc_racks", "hpc_racks_leased"} <= set(g.columns):
            share = np.divide(g["hpc_racks_leased"].to_numpy(float), g["hpc_racks"].to_numpy(float),
                              out=np.zeros(len(g)), where=g["hpc_racks"].to_numpy(float) > 0)
            layers = [(mining, "mining (ASICs installed)", C_MINING), (hpc * share, "HPC leased (critical IT)", C_HPC),
                      (hpc * (1 - share), "HPC built, not leased (idle)", C_HPC_IDLE)]
        else:
            layers = [(mining, "mining (ASICs installed)", C_MINING), (hpc, "HPC (critical IT)", C_HPC)]
        if "idle_mw" in g.columns:
            layers.append((g["idle_mw"].to_numpy(float), "idle", C_IDLE))
        polys = ax.stackplot(x, *[_yext(l[0]) for l in layers], labels=[l[1] for l in layers],
                             colors=[l[2] for l in layers], step="post", alpha=0.9)
        for poly, l in zip(polys, layers):
            handles.setdefault(l[1], poly)
        if "grid_mw" in g.columns:
            handles.setdefault("grid interconnect", _step(ax, ctx, g["month"], g["grid_mw"], color="k", ls="--", lw=1)[0])
        elif ctx.data is not None and site in ctx.data.inst.site_by_id:
            handles.setdefault("grid interconnect", ax.axhline(ctx.data.inst.site_by_id[site].grid_interconnect_mw,
                                                               color="k", ls="--", lw=1))
        ax.set_title(f"Site {site}: capacity by use")
        ax.set_ylabel("MW")
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.05)
        _date_axis(ax)
    for ax in list(axes.flat)[len(sites):]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), list(handles), loc="upper center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return _img(fig, "allocation over time per site") + (
        '<p class="note">Stacked MW per site and month (expected over scenarios where operations differ). '
        "Mining MW is the installed ASICs' power as reported in plan.csv; HPC MW is critical IT built; "
        "the grid line is the site's interconnect (with expansions online).</p>")


def _hpc_online(ctx: _Ctx) -> str:
    plt = _plt()
    k = ctx.table("kpis", "month", "hpc_mw_online")
    # The evaluator reports built MW as hpc_mw_online and leased MW as hpc_mw_leased; older
    # tables had only hpc_mw_online (= leased).
    leased_col = "hpc_mw_leased" if "hpc_mw_leased" in k.columns else "hpc_mw_online"
    cols = list(dict.fromkeys(["hpc_mw_online", leased_col]))
    on = ctx.expected(k, ["month"], cols) if "scenario" in k.columns else k.groupby("month", as_index=False)[cols].sum()
    fig, ax = plt.subplots(figsize=(13, 4.2))
    _step(ax, ctx, on["month"], on[leased_col], color=C_HPC, lw=2.2, label="HPC MW leased to tenants (expected)")
    if leased_col != "hpc_mw_online":
        _step(ax, ctx, on["month"], on["hpc_mw_online"], color=C_HPC_IDLE, lw=2, ls="--", label="HPC MW online (built, critical IT)")
    else:
        a = ctx.tables.get("plan")
        if a is not None and {"month", "hpc_mw"} <= set(a.columns):
            built = _allocation_frame(ctx).groupby("month", as_index=False)["hpc_mw"].sum()
            _step(ax, ctx, built["month"], built["hpc_mw"], color=C_HPC_IDLE, lw=2, ls="--", label="HPC MW built (critical IT)")
    on = on.rename(columns={leased_col: "level"})
    leases = ctx.tables.get("leases")
    if leases is not None and not leases.empty and "month" in leases.columns:
        level = dict(zip(on["month"], on["level"]))
        mw = {l.id: l.it_mw for l in ctx.data.inst.leases} if ctx.data is not None else {}
        for i, r in enumerate(leases.sort_values("month").itertuples(index=False)):
            y = level.get(r.month, 0.0)
            ax.plot(_dates([r.month]), [y], marker="v", ms=11, color=C_POS, ls="none",
                    label="lease hand-over" if i == 0 else None)
            size = f", {mw[r.lease] * getattr(r, 'share', 1.0):g} MW" if r.lease in mw else ""
            ax.annotate(f"{r.lease} @ {r.site}{size}", (_dates([r.month])[0], y), textcoords="offset points",
                        xytext=(-6, 12), ha="right", fontsize=8.5,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    conv = ctx.tables.get("plan_conversions")
    if conv is not None and not conv.empty:
        for i, m in enumerate(sorted(set(conv["month"]))):
            ax.axvline(_dates([m])[0], color="grey", ls=":", lw=1.4, label="conversion works start" if i == 0 else None)
    ax.set_title("HPC capacity online against lease hand-overs")
    ax.set_ylabel("MW (critical IT)")
    ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1] * 1.2))
    _date_axis(ax)
    ax.legend(loc="upper left")
    fig.tight_layout()
    return _img(fig, "HPC MW online and lease hand-overs")


def _halvings(ctx: _Ctx) -> list[tuple[pd.Timestamp, int]]:
    """(date, height) of each halving inside the horizon, placed by the expected block height."""
    if ctx.data is None:
        return []
    b, d = ctx.data.inst.bitcoin, ctx.data
    hb = protocol.block_heights_at_boundaries(b.start_height, d.days, b.block_interval_minutes)
    out = []
    for h in protocol.halving_heights(hb[0], hb[-1], b.halving_interval_blocks, b.halving_heights):
        if not hb[0] < h <= hb[-1]:
            continue
        t = int(np.searchsorted(hb, h, side="right") - 1)
        frac = (h - hb[t]) / (hb[t + 1] - hb[t])
        out.append((_dates([d.labels[t]])[0] + pd.Timedelta(days=float(frac * d.days[t])), int(h)))
    return out


def _scolor(ctx: _Ctx, name) -> str:
    order = list(ctx.probs) or [name]
    i = order.index(name) if name in order else len(order)
    return SCENARIO_COLORS[i % len(SCENARIO_COLORS)]


def _scenario_steps(ax, ctx, wide: pd.DataFrame, label: str, **kw) -> None:
    """One post-step per scenario row, or expected + 10-90 % band when there are many."""
    if len(wide) > 6:
        x = _xext(wide.columns, ctx.period_months)
        ax.fill_between(x, _yext(wide.quantile(0.1).values), _yext(wide.quantile(0.9).values), step="post",
                        color=SCENARIO_COLORS[0], alpha=0.25, label=f"{label}: 10-90 % of {len(wide)} scenarios")
        exp = wide.mul(pd.Series(ctx.probs).reindex(wide.index).fillna(0.0), axis=0).sum()
        _step(ax, ctx, wide.columns, exp.values, color=SCENARIO_COLORS[0], label=f"{label}: expected", **kw)
        return
    order = [n for n in ctx.probs if n in wide.index] + [n for n in wide.index if n not in ctx.probs]
    for name in order:
        _step(ax, ctx, wide.columns, wide.loc[name].values, color=_scolor(ctx, name), label=f"{label} ({name})", **kw)


def _hashprice(ctx: _Ctx) -> str:
    plt = _plt()
    L = ctx.period_months
    if ctx.data is not None:
        hp = pd.DataFrame(ctx.data.hashprice_usd_per_ph_day, index=ctx.data.scenario_names, columns=ctx.data.labels)
    else:
        k = ctx.table("kpis", "scenario", "month", "hashprice_usd_per_ph_day")
        hp = k.pivot(index="scenario", columns="month", values="hashprice_usd_per_ph_day")
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(13, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1.1]})
    _scenario_steps(ax1, ctx, hp, "hashprice", lw=2)
    ax1.set_title("Hashprice by scenario")
    ax1.set_ylabel("USD per PH/s per day")
    ax1.set_ylim(bottom=0, top=ax1.get_ylim()[1] * 1.1)
    # revenue per MW-month: leases from cash flows; mining margin = revenue - cost to mine x BTC mined
    cf, k = ctx.tables.get("cashflows"), ctx.tables.get("kpis")
    series = []
    if cf is not None and k is not None and {"item", "usd", "month", "scenario"} <= set(cf.columns) \
            and {"scenario", "month"} <= set(k.columns):
        rev = cf.astype({"usd": float}).pivot_table(index=["scenario", "month"], columns="item", values="usd", aggfunc="sum", fill_value=0.0)
        kk = k.set_index(["scenario", "month"])
        mwc = "hpc_mw_leased" if "hpc_mw_leased" in kk.columns else "hpc_mw_online"
        if "lease_revenue_usd" in rev.columns and mwc in kk.columns:
            j = rev[["lease_revenue_usd"]].join(kk[mwc], how="inner")
            j = j[j[mwc] > 0]
            if not j.empty:
                per = (j["lease_revenue_usd"] / j[mwc] / L).rename("v").reset_index()
                per = ctx.expected(per, ["month"], ["v"])
                series.append(("lease", per))
        a = ctx.tables.get("plan")
        if "mining_revenue_usd" in rev.columns and {"btc_mined", "cost_to_mine_usd_per_btc"} <= set(kk.columns) \
                and a is not None and "mining_mw" in a.columns:
            mw = _allocation_frame(ctx).groupby("month")["mining_mw"].sum()
            j = rev[["mining_revenue_usd"]].join(kk[["btc_mined", "cost_to_mine_usd_per_btc"]], how="inner")
            cost = (j["btc_mined"] * j["cost_to_mine_usd_per_btc"]).fillna(0.0)
            months = j.index.get_level_values("month")
            j["v"] = (j["mining_revenue_usd"] - cost) / months.map(mw).to_numpy(float) / L
            series.append(("mining", j["v"].replace([np.inf, -np.inf], np.nan).unstack("month")))
    if series:
        vmax = max(float(np.nanmax(np.abs(s["v"] if n == "lease" else s.values))) for n, s in series)
        scale = 1e6 if vmax >= 2e6 else 1e3
        for name, sdf in series:
            if name == "lease":
                _step(ax2, ctx, sdf["month"], sdf["v"], color=C_HPC, lw=2.6, label="HPC lease revenue per leased MW")
            else:
                _scenario_steps(ax2, ctx, sdf, "mining margin per MW", lw=1.8, ls="--")
        ax2.axhline(0, color="k", lw=0.8)
        ax2.set_title("HPC lease revenue against mining margin, per MW")
        ax2.set_ylabel(f"{_usd_axis(ax2, 'y', scale)} per MW-month")
    else:
        ax2.set_visible(False)
        ctx.notes.append("revenue per MW not drawn: cashflows.csv/kpis.csv/plan.csv lack the needed columns")
    halvings = _halvings(ctx)
    for ax in (ax1, ax2):
        for n, (when, h) in enumerate(halvings):
            ax.axvline(when, color="crimson", lw=2, ls="-.",
                       label=f"halving, block {h:,} (~{when:%Y-%m-%d})" if n == 0 or ax is ax1 else None)
        _date_axis(ax)
    ax1.legend(loc="upper right", ncol=2)
    if series:
        ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=8.5, ncol=3, frameon=False)
    fig.tight_layout()
    note = ("Mining margin = mining revenue minus cost to mine (power and fixed opex of operating ASICs), per MW of mining load "
            "(zero when the fleet is curtailed). "
            + ("The halving is placed at the expected date of its block height." if halvings else
               "Halving not marked: " + ("it falls outside the horizon." if ctx.data is not None else "no instance available.")))
    return _img(fig, "hashprice against HPC revenue and mining margin per MW") + f'<p class="note">{_esc(note)}</p>'


def _waterfall(ctx: _Ctx) -> str:
    plt = _plt()
    try:
        b = ctx.table("npv_breakdown", "item", "pv_usd")
    except _Missing:
        cf = ctx.table("cashflows", "item", "pv_usd")
        b = ctx.expected(cf, ["item"], ["pv_usd"])
        b = b.iloc[np.argsort([_ITEM_ORDER.get(i, 99) for i in b["item"]], kind="stable")]
    b = b[~b["item"].astype(str).str.lower().isin({"total", "npv", "npv_usd", "total_usd"})]
    b = b[b["pv_usd"].abs() > 0]
    items, vals = list(b["item"]), b["pv_usd"].to_numpy(float)
    total = float(vals.sum())
    starts = np.concatenate([[0.0], np.cumsum(vals)[:-1]])
    fig, ax = plt.subplots(figsize=(13, 5.4))
    xs = np.arange(len(items) + 1)
    ax.bar(xs[:-1], vals, bottom=starts, color=[C_POS if v >= 0 else C_NEG for v in vals], edgecolor="k", lw=0.5)
    ax.bar(xs[-1], total, color=C_TOTAL, edgecolor="k", lw=0.5)
    for x, s, v in zip(xs[:-1], starts, vals):
        ax.plot([x + 0.4, x + 0.6], [s + v, s + v], color="grey", lw=0.8)
        ax.annotate(f"{v / 1e6:+,.1f}", (x, max(s, s + v)), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=8.5)
    ax.annotate(f"{total / 1e6:,.1f}", (xs[-1], max(total, 0)), textcoords="offset points", xytext=(0, 3), ha="center",
                fontsize=9.5, fontweight="bold")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.08 * (hi - lo))
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(xs, [_label(i) for i in items] + ["NPV"], rotation=30, ha="right")
    ax.set_ylabel("present value, USD million")
    _musd_axis(ax)
    ax.set_title("NPV waterfall by line item (expected present value, USD million)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=C_POS, label="inflow"), Patch(color=C_NEG, label="outflow"), Patch(color=C_TOTAL, label="NPV")],
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    npv = ctx.summary.get("npv_usd")
    note = f"Sum of line items {_usd(total)}" + (f"; reported NPV {_usd(npv)}." if npv is not None else ".")
    return _img(fig, "NPV waterfall") + f'<p class="note">{_esc(note)}</p>'


def _cashflow(ctx: _Ctx) -> str:
    plt = _plt()
    cf = ctx.table("cashflows", "month", "item", "usd")
    ops = cf[~cf["item"].astype(str).str.startswith(TERMINAL_PREFIX)]
    e = ctx.expected(ops, ["month", "item"], ["usd"])
    wide = e.pivot(index="month", columns="item", values="usd").fillna(0.0).sort_index()
    yearly = len(wide) > 36
    if yearly:
        wide = wide.groupby(wide.index.str[:4]).sum()
    wide = wide.loc[:, (wide.abs() > 0).any()]
    order = wide.abs().sum().sort_values(ascending=False).index
    wide = wide[order]
    fig, ax = plt.subplots(figsize=(13, 5.5))
    x = np.arange(len(wide))
    pos_b, neg_b = np.zeros(len(wide)), np.zeros(len(wide))
    cmap = plt.get_cmap("tab20")
    for i, item in enumerate(wide.columns):
        v = wide[item].to_numpy(float)
        p, n = np.clip(v, 0, None), np.clip(v, None, 0)
        c = ITEM_COLORS.get(item, cmap(i % 20))
        ax.bar(x, p, bottom=pos_b, color=c, label=_label(item), width=0.8)
        ax.bar(x, n, bottom=neg_b, color=c, width=0.8)
        pos_b += p
        neg_b += n
    ax.plot(x, wide.sum(axis=1).to_numpy(), color="k", marker="o", ms=4, lw=1.5, label="net cash flow")
    ax.axhline(0, color="k", lw=0.8)
    step = max(1, len(wide) // 18)
    ax.set_xticks(x[::step], list(wide.index)[::step], rotation=45 if not yearly else 0, ha="right" if not yearly else "center")
    ax.set_xlabel("year" if yearly else "period (first month)")
    ax.set_ylabel("USD million per period" if not yearly else "USD million per year")
    _musd_axis(ax)
    ax.set_title("Cash flow by period and line item (expected, undiscounted)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    term = cf[cf["item"].astype(str).str.startswith(TERMINAL_PREFIX)]
    note = "Terminal values are left out here (they sit in the last period and are shown in the waterfall)." if len(term) else ""
    return _img(fig, "cash flow by period") + (f'<p class="note">{note}</p>' if note else "")


def _scenario_fan(ctx: _Ctx) -> str:
    plt = _plt()
    by = ctx.summary.get("npv_usd_by_scenario") or {}
    cf = ctx.tables.get("cashflows")
    has_cf = cf is not None and {"scenario", "month", "pv_usd"} <= set(cf.columns)
    if not by and has_cf:
        by = cf.groupby("scenario")["pv_usd"].sum().to_dict()
    if not by:
        raise _Missing("npv_usd_by_scenario in summary.json or cashflows.csv with pv_usd")
    names = sorted(by, key=lambda n: by[n])
    npv = np.array([by[n] for n in names], float)
    prob = np.array([ctx.probs.get(n, np.nan) for n in names], float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1, 1.4]})
    if len(names) <= 20:
        y = np.arange(len(names))
        ax1.barh(y, npv, color=[C_POS if v >= 0 else C_NEG for v in npv], alpha=0.85)
        ptxt = [f"{n}  (p={p:.2f})" if ctx.probs_known else n for n, p in zip(names, prob)]
        ax1.set_yticks(y, ptxt)
        ax1.set_ylabel("scenario (probability)")
    else:
        ax1.hist(npv, bins=min(30, len(names) // 2), weights=prob if ctx.probs_known else None, color=C_HPC, alpha=0.8)
        ax1.set_ylabel("probability" if ctx.probs_known else "number of scenarios")
    exp = float(np.nansum(npv * prob)) if ctx.probs_known else ctx.summary.get("npv_usd")
    if exp is not None:
        ax1.axvline(exp, color="k", ls="--", lw=1.5, label=f"expected NPV {_usd(exp)}")
    ax1.axvline(0, color="grey", lw=0.8)
    _musd_axis(ax1, "x")
    ax1.set_xlabel("NPV, USD million")
    ax1.set_title("NPV by scenario")
    ax1.legend(loc="best")
    if has_cf:
        cum = cf.groupby(["scenario", "month"])["pv_usd"].sum().unstack("month").cumsum(axis=1)
        x = _xext(cum.columns, ctx.period_months)
        if len(cum) <= 8:
            for n, row in cum.iterrows():
                _step(ax2, ctx, cum.columns, row.values, lw=1.8, color=_scolor(ctx, n), label=n)
        else:
            for lo, hi, a in ((0.0, 1.0, 0.15), (0.1, 0.9, 0.3), (0.25, 0.75, 0.45)):
                ax2.fill_between(x, _yext(cum.quantile(lo).values), _yext(cum.quantile(hi).values), step="post",
                                 color=C_HPC, alpha=a, label=f"{int(lo * 100)}-{int(hi * 100)} % of scenarios")
            _step(ax2, ctx, cum.columns, cum.median().values, color="k", lw=1.5, label="median")
        ax2.axhline(0, color="grey", lw=0.8)
        _musd_axis(ax2)
        _date_axis(ax2)
        ax2.set_ylabel("cumulative PV, USD million")
        ax2.set_title("Cumulative discounted cash flow by scenario")
        ax2.legend(loc="upper left", fontsize=8)
    else:
        ax2.set_visible(False)
    fig.tight_layout()
    return _img(fig, "scenario fan of NPV") + ('<p class="note">Cumulative PV includes terminal values, '
                                               "which arrive in the last period.</p>" if has_cf else "")


_OUTPUTS = {"status", "npv_usd", "objective_usd", "best_bound_usd", "mip_gap", "gap", "build_s", "solve_s", "handoff_s",
            "wall_s", "message", "error", "leases_signed", "point", "point_id", "id", "index"}
SOLVED_STATUSES = tuple(sorted(SOLVED | {Status.EVALUATED}))


def _sweep_params(p: pd.DataFrame) -> list[str]:
    """Parameter columns: those before ``status`` (how optimizer.sweep writes points.csv), else
    every column that is not a known output; only columns that vary."""
    cols = list(p.columns)
    if "status" in cols:
        cols = cols[: cols.index("status")]
    return [c for c in cols if c not in _OUTPUTS and not str(c).endswith("_usd") and not str(c).startswith("converted_mw_")
            and p[c].nunique() > 1]


def _xvalues(col: pd.Series) -> tuple[np.ndarray, list | None]:
    """Numeric x for a parameter column; text values (months) become positions with labels."""
    num = pd.to_numeric(col, errors="coerce")
    if num.notna().all():
        return num.to_numpy(float), None
    cats = sorted(col.astype(str).unique())
    return col.astype(str).map({c: i for i, c in enumerate(cats)}).to_numpy(float), cats


def _sweep(ctx: _Ctx) -> str:
    plt = _plt()
    p = ctx.table("points", "npv_usd")
    params = _sweep_params(p)
    if not params:
        raise _Missing("points.csv parameter columns")
    p = p.copy()
    p["npv_usd"] = pd.to_numeric(p["npv_usd"], errors="coerce")
    ok = p["npv_usd"].notna()
    if "status" in p.columns:
        ok &= p["status"].astype(str).isin(SOLVED_STATUSES)
    conv = [c for c in p.columns if str(c).startswith("converted_mw_") and pd.to_numeric(p[c], errors="coerce").notna().any()]
    groups = [params] if len(params) <= 2 else [[c] for c in params]
    nrow = 2 if conv else 1
    fig, axes = plt.subplots(nrow, len(groups), figsize=(13 if len(groups) == 1 else 4.6 * len(groups), 4.6 * nrow),
                             squeeze=False)
    for k, g in enumerate(groups):
        xcol = g[0]
        x_all, cats = _xvalues(p[xcol])
        p["_x"] = x_all
        series = list(p[ok].groupby(g[1], sort=True)) if len(g) == 2 else [(None, p[ok])]
        ax = axes[0, k]
        for v, sub in series:
            sub = sub.sort_values("_x")
            ax.plot(sub["_x"], sub["npv_usd"], marker="o", lw=1.8, label="NPV of the optimal plan" if v is None else f"{param_label(g[1])} = {v}")
        bad = p[~ok]
        if len(bad):
            ax.plot(bad["_x"], np.zeros(len(bad)), "x", color=C_NEG, ms=9, label="no solution (see status)")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylabel("NPV, USD million")
        _musd_axis(ax)
        ax.set_title(f"NPV against {param_label(xcol)}", fontsize=11)
        ax.legend(loc="best", fontsize=8.5)
        if conv:
            ax2 = axes[1, k]
            styles = ["-", "--", ":", "-."]
            for j, (v, sub) in enumerate(series):
                sub = sub.sort_values("_x")
                for i, c in enumerate(conv):
                    ax2.plot(sub["_x"], pd.to_numeric(sub[c], errors="coerce"), marker="o", ms=4, ls=styles[j % 4],
                             color=SCENARIO_COLORS[i % len(SCENARIO_COLORS)],
                             label=c.removeprefix("converted_mw_") + ("" if v is None else f", {param_label(g[1])} = {v}"))
            ax2.set_ylabel("MW converted to HPC (critical IT)")
            ax2.set_title(f"MW converted against {param_label(xcol)}, per site", fontsize=11)
            ax2.set_ylim(bottom=0)
            ax2.legend(loc="best", fontsize=8)
        for ax_ in axes[:, k]:
            ax_.set_xlabel(param_label(xcol))
            if cats is not None:
                ax_.set_xticks(range(len(cats)), cats, rotation=30, ha="right")
    fig.tight_layout()
    return _img(fig, "sweep curves") + f'<p class="note">{len(p)} sweep points, {int((~ok).sum())} without a solution.</p>'


def _tornado(ctx: _Ctx) -> str:
    plt = _plt()
    t = ctx.table("tornado", "npv_low_usd", "npv_high_usd").copy()
    name = next((c for c in ("parameter", "param") if c in t.columns), None)
    if name is None:
        raise _Missing("tornado.csv column parameter")
    t = t[t["npv_low_usd"].notna() & t["npv_high_usd"].notna()]
    if t.empty:
        raise _Missing("tornado.csv rows with both NPVs")
    t["_swing"] = (t["npv_high_usd"] - t["npv_low_usd"]).abs()
    t = t.sort_values("_swing", kind="stable")
    if "base_npv_usd" in t.columns and t["base_npv_usd"].notna().any():
        base = float(t["base_npv_usd"].dropna().iloc[0])
    else:
        base = ctx.summary.get("npv_usd")
        if base is None:
            base = float(((t["npv_low_usd"] + t["npv_high_usd"]) / 2).median())
    fig, ax = plt.subplots(figsize=(13, 1.4 + 0.6 * len(t)))
    y = np.arange(len(t))
    ax.barh(y, t["npv_low_usd"] - base, left=base, color="#d98c2b", label="parameter at its low value")
    ax.barh(y, t["npv_high_usd"] - base, left=base, color="#3a78b5", label="parameter at its high value", alpha=0.85)
    has_range = {"low", "high"} <= set(t.columns)
    lab = [f"{param_label(p)}  ({lo:g} / {hi:g})" if has_range and _isnum(lo) and _isnum(hi) else
           (f"{param_label(p)}  ({lo} / {hi})" if has_range else param_label(p))
           for p, lo, hi in zip(t[name], t.get("low", t[name]), t.get("high", t[name]))]
    ax.set_yticks(y, lab)
    ax.axvline(base, color="k", lw=1.2, label=f"base NPV {_usd(base)}")
    _musd_axis(ax, "x")
    ax.set_xlabel("NPV, USD million")
    ax.set_ylabel("parameter (low / high)")
    ax.set_title("Tornado: NPV swing per parameter, largest on top")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.4 / fig.get_figheight()), ncol=3, frameon=False)
    fig.tight_layout()
    return _img(fig, "tornado")


def _isnum(x) -> bool:
    try:
        float(x)
        return True
    except (TypeError, ValueError):
        return False


def _frontier(ctx: _Ctx) -> str:
    plt = _plt()
    f = ctx.table("frontier", "expected_npv_usd", "cvar_usd")
    fig, ax = plt.subplots(figsize=(10, 5))
    groups = f.groupby("alpha") if "alpha" in f.columns else [(None, f)]
    for a, g in groups:
        g = g.sort_values("weight") if "weight" in g.columns else g
        ax.plot(g["cvar_usd"], g["expected_npv_usd"], marker="o", lw=1.8,
                label="efficient plans" if a is None else f"CVaR level alpha = {a:g}")
        if "weight" in g.columns:
            for r in g.itertuples(index=False):
                ax.annotate(f"w={r.weight:g}", (r.cvar_usd, r.expected_npv_usd), textcoords="offset points", xytext=(5, 5), fontsize=8)
    _musd_axis(ax)
    _musd_axis(ax, "x")
    ax.set_xlabel("CVaR of NPV (mean of the worst tail), USD million")
    ax.set_ylabel("expected NPV, USD million")
    ax.set_title("Risk frontier: expected NPV against CVaR")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return _img(fig, "risk frontier") + '<p class="note">w is the weight on CVaR in (1 - w) E[NPV] + w CVaR.</p>'


def _financing(ctx: _Ctx) -> str | None:
    """Valuation (project and equity NPV, IRRs), the debt schedule and the tax schedule per year;
    None (no section, nothing missing) when the instance has no financing section."""
    s = ctx.summary
    if "equity_npv_usd" not in s:
        return None

    def pct(x):
        return "n/a (no sign change)" if x is None else f"{100 * x:.2f} %"

    cards = [("Equity NPV (levered, after tax)", _usd(s.get("equity_npv_usd"))),
             ("Project NPV (unlevered, after tax)", _usd(s.get("project_npv_usd"))),
             ("Equity IRR", pct(s.get("equity_irr"))), ("Project IRR", pct(s.get("project_irr"))),
             ("Objective", f"{s.get('objective', 'equity')} NPV")]
    parts = ['<div class="cards">'] + [f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
                                       for k, v in cards] + ["</div>"]
    for name, title in (("debt_schedule", "Debt schedule per year"), ("tax_schedule", "Tax schedule per year")):
        df = ctx.tables.get(name)
        if df is not None and not df.empty:
            parts.append(f"<h3>{title}</h3>" + _table_html(df, max_rows=60))
    return "".join(parts)


SECTIONS = [
    ("headline", "Headline", _headline),
    ("decisions", "Key decisions of the plan", _decisions),
    ("allocation", "Allocation over time per site", _allocation),
    ("hpc-online", "HPC MW online and lease hand-overs", _hpc_online),
    ("hashprice", "Hashprice, HPC revenue and mining margin", _hashprice),
    ("npv-waterfall", "NPV waterfall", _waterfall),
    ("financing", "Financing, taxes and valuation", _financing),
    ("cashflow", "Cash flow by period", _cashflow),
    ("scenario-fan", "NPV across scenarios", _scenario_fan),
    ("sweep", "Sweep curves", _sweep),
    ("tornado", "Tornado", _tornado),
    ("frontier", "Risk frontier", _frontier),
]

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
main{max-width:1320px;margin:0 auto;padding:18px 28px 40px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:19px;border-bottom:2px solid #1f5fa8;padding-bottom:4px;margin-top:0}
h3{font-size:15px;margin:14px 0 6px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.sub{color:#666;font-size:13px}.note{color:#555;font-size:12.5px}
img.chart{max-width:100%;height:auto;display:block;margin:6px auto}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:12px}
.card{flex:1 1 200px;background:#eef3fa;border-radius:6px;padding:10px 14px}
.card .k{font-size:12px;color:#555}.card .v{font-size:20px;font-weight:600;color:#1f5fa8}
p.reco{font-size:15px;line-height:1.45}p.value{font-size:14px}p.warn{background:#fff4e5;border-left:4px solid #e8930c;padding:6px 10px}
p.footnote{border-top:1px solid #ddd;padding-top:6px;margin-top:14px}ol.decisions li{margin:2px 0}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{padding:4px 10px;border-bottom:1px solid #e3e3e3;text-align:left}
table.data th{background:#f0f2f5}table.kv th{font-weight:600;color:#444;width:260px}
td{font-variant-numeric:tabular-nums}
nav a{margin-right:12px;font-size:13px;color:#1f5fa8}
"""


def render_report(result_dir: str | Path, out_path: str | Path | None = None, instance=None, data_dir=None) -> Path:
    """Write one self-contained HTML report of ``result_dir``; return its path
    (default ``result_dir/report.html``). ``instance``: an Instance or a path to one (read with
    the data folder ``data_dir``, default its own folder)."""
    result_dir = Path(result_dir)
    ctx = load_context(result_dir, instance, data_dir)
    body, missing, nav = [], [], []
    for sid, title, fn in SECTIONS:
        try:
            content = fn(ctx)
        except _Missing as e:
            missing.append(f"{title} (needs {e})")
            continue
        if content is None:  # a section that does not apply to this result (e.g. financing without debt or taxes)
            continue
        nav.append(f'<a href="#{sid}">{_esc(title)}</a>')
        body.append(f'<section id="{sid}"><h2>{_esc(title)}</h2>{content}</section>')
    tail = ""
    if missing or ctx.notes:
        tail = ('<section id="not-available"><h2>Not available</h2><ul>'
                + "".join(f"<li>not available: {_esc(m)}</li>" for m in missing)
                + "".join(f"<li>{_esc(n)}</li>" for n in ctx.notes) + "</ul></section>")
    name = ctx.summary.get("instance") or (ctx.data.inst.name if ctx.data is not None else result_dir.name)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Plan report: {_esc(name)}</title>'
           f"<style>{_CSS}</style></head><body><main><h1>Plan report: {_esc(name)}</h1>"
           f'<p class="sub">Result directory {_esc(result_dir)} &middot; generated {stamp}</p>'
           f"<nav>{''.join(nav)}</nav>{''.join(body)}{tail}</main></body></html>")
    out = Path(out_path) if out_path is not None else result_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out
