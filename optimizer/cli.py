"""The ``optimizer`` command line, and the only module that prints or maps exit codes.

Commands: validate, schema, evaluate, solve, frontier, ph, sweep, breakeven, tornado, report,
doctor. Exit codes are ``optimizer.constants.ExitCode`` (README, "Exit codes"): 0 ok;
1 internal error; 2 bad input (one line on stderr, never a traceback); 3 infeasible (or
unbounded); 4 no solution within the time limit; 5 partial (some sweep points failed);
6 the evaluated plan breaks rules; 7 a sweep's worker process died; 130 interrupted.
Set ``OPTIMIZER_DEBUG=1`` to see the traceback of an internal error.

The domain modules it drives return values and take a ``progress`` Reporter
(``optimizer.constants``); ``TerminalProgress`` here draws a bar on a terminal and writes
plain lines otherwise. Imports of the heavy layers (Pyomo, HiGHS, pandas) are placed inside the
commands on purpose, so that ``optimizer --help`` and ``validate`` start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from optimizer.constants import BREAKEVEN_TARGET_HELP, ExitCode
from optimizer.errors import InputError, one_line
from optimizer.instance.checks import plain_impossibilities
from optimizer.instance.loading import load_instance
from optimizer.instance.messages import format_validation_error
from optimizer.instance.schema import Instance
from optimizer.output.fmt import usd

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INFEASIBLE, EXIT_NO_SOLUTION = (
    ExitCode.OK, ExitCode.INTERNAL, ExitCode.INPUT, ExitCode.INFEASIBLE, ExitCode.NO_SOLUTION)

app = typer.Typer(
    name="optimizer",
    help="Plan how Bitcoin miners split sites, power contracts and racks between mining and AI/HPC leases (max NPV).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,   # plain click help: flags without a <bool> type, long examples wrapped, not cut
)
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


DATA_DIR_HELP = ("folder the instance's CSV series may be read from (default: the instance file's folder); "
                 "CSV paths stay relative to the instance file and must resolve inside this folder")


def _data_dir_option():
    return typer.Option(None, "--data-dir", help=DATA_DIR_HELP, file_okay=False)


_usd = usd  # $537.20M (optimizer.output.fmt, as in the report)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mining-hpc-optimizer")
    except PackageNotFoundError:  # run from a source tree without an install
        from optimizer import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        out.print(f"optimizer {_version()}", markup=False)
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Plan how Bitcoin miners split sites, power contracts and racks between mining and AI/HPC leases (max NPV)."""


# ---------------------------------------------------------------- progress


class TerminalProgress:
    """A ``Reporter`` (optimizer.constants) for people. On a terminal: a progress bar with an ETA.
    Otherwise (a log file, CI): plain lines on stderr, one each ``every_s`` seconds while the work
    runs (what step it is at, how far, how long so far) and one when it ends, so work shorter than
    ``every_s`` prints nothing and long work (a breakeven, value-of-information solves, a diagnosis,
    a sweep) is never silent. ``every_s`` defaults to $OPTIMIZER_PROGRESS_S, else 10 s; 0 prints
    every step. Notes go to stderr as they come."""

    def __init__(self, every_s: float | None = None, console: Console | None = None) -> None:
        self.console = console or err
        if every_s is None:
            try:
                every_s = float(os.environ.get("OPTIMIZER_PROGRESS_S", "10"))
            except ValueError:
                every_s = 10.0
        self.every_s = max(every_s, 0.0)
        self._bar = None
        self._task = None
        self._label, self._total, self._done, self._t0, self._last = "", None, 0, 0.0, 0.0
        self._printed = False

    def start(self, label: str, total: int | None = None) -> None:
        self._label, self._total, self._done, self._printed = label, total, 0, False
        self._t0 = self._last = time.perf_counter()
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)
        elif self.every_s == 0:
            self._line(f"{label}: started" + (f" ({total} steps)" if total else ""))

    def advance(self, n: int = 1, label: str | None = None) -> None:
        self._done += n
        if label:
            self._label = label
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=self._label)
            return
        now = time.perf_counter()
        if now - self._last >= self.every_s:
            self._last = now
            of = f"/{self._total}" if self._total else ""
            self._line(f"{self._label}: {self._done}{of} done, {now - self._t0:.0f} s")

    def note(self, message: str) -> None:
        (self._bar.console if self._bar is not None else self.console).print(one_line(message), markup=False, soft_wrap=True)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._printed or time.perf_counter() - self._t0 >= self.every_s:
            of = f"/{self._total}" if self._total else ""
            self._line(f"{self._label}: {self._done}{of} done in {time.perf_counter() - self._t0:.1f} s")

    def _line(self, text: str) -> None:
        self._printed = True
        self.console.print(text, markup=False, soft_wrap=True)


def _progress(enabled: bool) -> TerminalProgress | None:
    return TerminalProgress() if enabled else None


# ---------------------------------------------------------------- validate


def describe_instance(inst) -> str:
    """One paragraph: sites, racks, MW, fleet, leases, contracts, scenarios, horizon."""
    from optimizer.economics.data import compile_instance
    from optimizer.kernel.timeline import month_label

    tl = inst.timeline
    mining_racks = sum(s.mining_racks for s in inst.sites)
    hpc_racks = sum(s.hpc_racks for s in inst.sites)
    grid_mw = sum(s.grid_interconnect_mw for s in inst.sites)
    hpc_mw = sum(s.hpc_racks * s.hpc_mw_per_rack for s in inst.sites)
    convertible_mw = sum(s.convertible_it_mw for s in inst.sites)
    buildable_mw = sum(s.max_built_racks("hpc") * s.hpc_mw_per_rack for s in inst.sites)
    gpu = f"; GPU cloud: {len(inst.gpu_cloud.options)} GPU option(s)" if inst.gpu_cloud is not None else ""
    models = inst.model_by_name
    units = sum(u.units for u in inst.fleet.installed)
    eh_s = sum(u.units * models[u.model].hashrate_th_s for u in inst.fleet.installed) / 1e6
    asic_mw = sum(u.units * models[u.model].power_w for u in inst.fleet.installed) / 1e6
    lease_mw = sum(l.it_mw for l in inst.leases)
    kinds: dict[str, int] = {}
    for c in inst.contracts:
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    optional = sum(1 for c in inst.contracts if c.optional)
    data = compile_instance(inst)
    hp = ", ".join(f"{s.name} {p:.0%} (hashprice {data.hashprice_usd_per_ph_day[w, 0]:.1f} $/PH/day at start)"
                   for w, (s, p) in enumerate(zip(inst.scenarios, data.prob)))
    sites = ", ".join(f"{s.id} ({s.market}, {s.grid_interconnect_mw:g} MW)" for s in inst.sites)
    contracts = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"
    period = "monthly" if tl.period_months == 1 else "quarterly"
    tree = data.tree
    if not tree.two_stage:
        hp = (f"{hp}; scenario tree: {tree.K + 1} stages (branch months {', '.join(tree.describe()['branch_months'])}), "
              f"{len(tree.nodes)} nodes, {len(tree.leaves)} leaves")
    return (
        f"{inst.name}: {len(inst.sites)} site(s) [{sites}], {grid_mw:,.1f} MW of grid interconnect; "
        f"{mining_racks:,} mining and {hpc_racks:,} HPC rack positions ({hpc_mw:,.1f} MW HPC IT built, "
        f"up to {convertible_mw:,.1f} MW IT convertible" + (f", {buildable_mw:,.1f} MW IT by new build" if buildable_mw else "")
        + f"){gpu}; fleet of {units:,.0f} ASICs in {len(models)} model(s) "
        f"({eh_s:,.2f} EH/s, {asic_mw:,.1f} MW nameplate); {len(inst.leases)} lease offer(s) totalling "
        f"{lease_mw:,.1f} MW IT; {len(inst.contracts)} power contract(s) ({contracts}; {optional} optional); "
        f"{len(inst.scenarios)} scenario(s): {hp}; horizon {tl.n_periods} {period} periods "
        f"{month_label(tl.start)}..{month_label(tl.end)}, discount rate {inst.horizon.discount_rate:.1%}/yr."
    )


@app.command()
def validate(file: Path = typer.Argument(..., help="instance file (YAML or JSON)"),
             data_dir: Optional[Path] = _data_dir_option()) -> None:
    """Check an instance file and print a one-paragraph summary of it; plain impossibilities
    (a lease no eligible site can host, ...) are printed as "warning:" lines on stderr."""
    inst = load_instance(file, data_dir)
    try:
        text = describe_instance(inst)
    except ValueError as e:  # compiling the series can still reject values (e.g. a CSV gap)
        raise InputError(f"{file}: {e}") from None
    for warning in plain_impossibilities(inst):
        err.print(f"warning: {one_line(warning)}", markup=False, soft_wrap=True)
    out.print("OK " + text, markup=False, soft_wrap=True)


# ---------------------------------------------------------------- schema


@app.command()
def schema() -> None:
    """Print the JSON Schema of the instance format (for editors and validators)."""
    sys.stdout.write(json.dumps(Instance.model_json_schema(), indent=2) + "\n")


# ---------------------------------------------------------------- evaluate


def _npv_tables(summary: dict) -> None:
    t = Table(title="NPV by scenario")
    t.add_column("scenario")
    t.add_column("NPV", justify="right")
    for name, v in summary["npv_usd_by_scenario"].items():
        t.add_row(name, _usd(v))
    t.add_row("expected", _usd(summary["npv_usd"]), style="bold")
    out.print(t)
    bd = summary.get("npv_breakdown_usd") or {}
    if bd:
        b = Table(title="Expected NPV by cash-flow line")
        b.add_column("line")
        b.add_column("NPV", justify="right")
        for k, v in bd.items():
            if abs(v) >= 0.5:
                b.add_row(k, _usd(v))
        out.print(b)


def _print_violations(violations: list[str], limit: int = 10, header: bool = True) -> None:
    if not violations:
        out.print("No constraint violations.")
        return
    if header:
        out.print(f"[bold red]{len(violations)} constraint violation(s):[/]")
    for v in violations[:limit]:
        out.print(f"  - {v}", markup=False, soft_wrap=True)
    if len(violations) > limit:
        out.print(f"  ... and {len(violations) - limit} more (see summary.json)")


@app.command()
def evaluate(
    file: Path = typer.Argument(..., help="instance file"),
    plan: Optional[Path] = typer.Option(None, "--plan", help="plan directory (one CSV/Parquet per table) or plan JSON file"),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="built-in plan: keep-mining, convert-asap or greedy"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="write summary.json, cashflows.csv and plan/ here"),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Recompute the NPV, cash flows and constraint violations of a plan."""
    inst = load_instance(file, data_dir)
    if (plan is None) == (baseline is None):
        raise InputError("evaluate: give exactly one of --plan PLAN or --baseline NAME")
    from optimizer.evaluate import BASELINES, baseline_plan
    from optimizer.evaluate import evaluate as run_evaluation
    from optimizer.plan import Plan
    from optimizer.solve.resultdir import write_result_dir

    if baseline is not None:
        if baseline not in BASELINES:
            raise InputError(f"--baseline: unknown baseline {baseline!r} (choose from {', '.join(BASELINES)})")
        the_plan = baseline_plan(inst, baseline)
        plan_name = baseline
    else:
        if not plan.exists():
            raise InputError(f"--plan: {plan}: file or directory not found")
        try:
            the_plan = Plan.load(plan)
        except (ValueError, KeyError) as e:
            raise InputError(f"--plan {plan}: {e}") from None
        plan_name = str(plan)
    try:
        ev = run_evaluation(inst, the_plan)
    except InputError:
        raise
    except (ValueError, KeyError) as e:  # a plan naming unknown sites, months outside the horizon, ...
        raise InputError(f"plan {plan_name}: {e}") from None
    from optimizer.output.decisions import describe_plan, mark_terminal, not_taken, write_decisions

    summary = ev.summary(inst.name, plan_name)
    out.print(f"Plan [bold]{plan_name}[/] on instance [bold]{inst.name}[/]")
    broken = summary["violations"]
    if broken:  # the rules come first: the NPV of a plan that breaks them is not attainable as planned
        from optimizer.output.headline import broken_rules_sentence

        out.print(broken_rules_sentence(len(broken)), style="bold red", markup=False, soft_wrap=True)
        _print_violations(broken, header=False)
    _npv_tables(summary)
    term = summary.get("terminal") or {}
    out.print(f"NPV without terminal values: {_usd(term.get('npv_without_terminal_usd'))} "
              f"(terminal values {_usd(term.get('terminal_usd'))})", markup=False)
    _print_decisions(mark_terminal(describe_plan(ev.plan, inst), term.get("flags")), not_taken(ev.plan, inst))
    _print_terminal(summary)
    if not broken:
        _print_violations(broken)
    if out_dir is not None:
        write_result_dir(out_dir, summary, ev.tables(), ev.plan, kind="evaluate")
        write_decisions(out_dir, ev.plan, inst, title=f"Decisions of plan {plan_name} for {inst.name}",
                        terminal_flags=term.get("flags"))
        out.print(f"Wrote {out_dir}/summary.json, decisions.md, cashflows.csv and plan/", markup=False)
    if broken:
        err.print(f"error: plan {plan_name} breaks {len(broken)} rule{'s' if len(broken) != 1 else ''}; first: {one_line(broken[0])}",
                  markup=False, soft_wrap=True)
        raise typer.Exit(ExitCode.RULES_BROKEN)


# ---------------------------------------------------------------- solve


def _print_headline(h) -> None:
    """The CFO headline: the recommendation, its value, the key figures (output.headline)."""
    out.print(f"[bold]Recommendation for {h.instance}[/]")
    if h.broken_rules:
        out.print(h.broken_rules, style="bold red", markup=False, soft_wrap=True)
    if h.recommendation:
        out.print(h.recommendation, markup=False, soft_wrap=True)
    if h.value_sentence:
        out.print(h.value_sentence, markup=False, soft_wrap=True)
    t = Table(title="Key figures", show_header=False)
    t.add_column("")
    t.add_column("", justify="right")
    for k, v in h.figures():
        t.add_row(k, v)
    out.print(t)
    for w in h.warnings:
        out.print(f"[bold yellow]Note:[/] {w}", soft_wrap=True)


def _tree_digest(s: dict) -> None:
    """A staged tree: what to decide now and, per node, what to do when it is reached."""
    if (s.get("tree") or {}).get("form") != "multistage":
        return
    out.print("Decide now:", markup=False)
    for line in s.get("decide_now") or ["nothing"]:
        out.print(f"  - {line}", markup=False, soft_wrap=True)
    plan = s.get("contingent_plan") or {}
    shown = 0
    for node, v in plan.items():
        if v.get("decisions") == ["nothing new"]:
            continue
        if shown == 12:
            out.print(f"  ... {len(plan) - shown} more nodes in plan/decisions_by_node.csv", markup=False)
            break
        out.print(f"From {v.get('from') or 'then'}, at node {node} (p={v['probability']:.2f}; {v['description']}):", markup=False, soft_wrap=True)
        for line in v["decisions"][:8]:
            out.print(f"  - {line}", markup=False, soft_wrap=True)
        if len(v["decisions"]) > 8:
            out.print(f"  - ... {len(v['decisions']) - 8} more", markup=False)
        shown += 1


def _print_terminal(s: dict) -> None:
    """Flags of decisions only terminal values pay for, and the terminal check's changes."""
    flags = (s.get("terminal") or {}).get("flags") or []
    if flags:
        out.print(f"[bold yellow]{len(flags)} decision(s) only terminal values pay for:[/]")
        for f in flags:
            out.print(f"  - {f['sentence']}", markup=False, soft_wrap=True)
    tc = s.get("terminal_check")
    if tc is None:
        return
    changes = tc.get("changes") or []
    alt = tc.get("alternative_npv_without_terminal_usd")
    out.print(f"Terminal check: re-solved with terminal values off ({tc.get('status')}): "
              f"{len(changes)} first-stage decision(s) change; NPV without terminal values "
              f"{_usd(tc.get('npv_without_terminal_usd'))} for this plan, {_usd(alt)} for the plan solved without them.",
              markup=False, soft_wrap=True)
    if changes:
        t = Table(title="First-stage decisions that change without terminal values")
        for c in ("decision", "key", "with terminal values", "without"):
            t.add_column(c)
        for c in changes:
            t.add_row(c["decision"], c["key"], c["with_terminal"], c["without_terminal"])
        out.print(t)


def _print_decisions(decisions, not_done: list[str]) -> None:
    """Every decision of the plan, one sentence a line (output.decisions)."""
    from optimizer.output.decisions import CONTINUOUS_NOTE, needs_continuous_note

    out.print(f"[bold]Decisions ({len(decisions)})[/]")
    if not decisions:
        out.print("  The plan takes no decision: it keeps every site as it is.")
    width = len(str(len(decisions)))
    for i, d in enumerate(decisions, 1):
        out.print(f"  {i:>{width}}. {d.sentence}" + (f" ({d.terminal_note})" if d.terminal_note else ""), markup=False, soft_wrap=True)
    for line in not_done:
        out.print(f"  - {line}", markup=False, soft_wrap=True)
    if needs_continuous_note(decisions):
        out.print(f"  {CONTINUOUS_NOTE}", markup=False, soft_wrap=True, style="dim")


def _print_baselines(s: dict) -> None:
    base = s.get("baselines") or {}
    if not base:
        return
    text = ", ".join(f"{k} {_usd(v)}" for k, v in base.items())
    up = s.get("uplift_over_best_baseline_usd")
    more = f"; this plan adds {_usd(up)} over the best ({s.get('best_baseline')})" if up is not None else ""
    out.print(f"Baseline plans (evaluated, not optimised): {text}{more}.", markup=False, soft_wrap=True)


@app.command()
def solve(
    file: Path = typer.Argument(..., help="instance file"),
    out_dir: Path = typer.Option(..., "--out", help="output directory (summary.json, plan.csv, cashflows.csv, ...)"),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="wall seconds per solve, preparation (build, MIP start) included; returns the best plan found when reached"),
    gap: float = typer.Option(0.005, "--gap", help="relative MIP gap to stop at"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="solver threads"),
    no_baselines: bool = typer.Option(False, "--no-baselines", help="skip evaluating the baseline plans"),
    mip_start: bool = typer.Option(True, "--mip-start/--no-mip-start",
                                   help="start HiGHS from the best feasible baseline plan (computing it takes a few seconds on large instances)"),
    portfolio: bool = typer.Option(True, "--portfolio/--no-portfolio",
                                   help="a solve still running after 2 s also solves the full model in a second process (the other core); the better answer is kept"),
    report: bool = typer.Option(False, "--report", help="also write DIR/report.html (self-contained)"),
    excel: bool = typer.Option(False, "--excel", help="also write DIR/results.xlsx"),
    risk_weight: Optional[float] = typer.Option(None, "--risk-weight", help="w in (1 - w) E[NPV] + w CVaR (default: the instance's risk.weight, else 0)"),
    risk_alpha: Optional[float] = typer.Option(None, "--risk-alpha", help="CVaR level alpha in [0, 1) (default: the instance's risk.alpha, else 0.95)"),
    no_voi: bool = typer.Option(False, "--no-voi", help="skip EVPI and VSS (extra solves) on stochastic instances"),
    no_flexibility: bool = typer.Option(False, "--no-flexibility", help="on a scenario tree: skip the two-stage solve of the same leaves (value of flexibility)"),
    terminal_check: bool = typer.Option(False, "--terminal-check", help="re-solve with every terminal value off and list the first-stage decisions that change (summary.json terminal_check, terminal_check.csv)"),
    diagnosis_time_limit: float = typer.Option(60.0, "--diagnosis-time-limit",
                                               help="seconds the infeasibility diagnosis may take; it reports what it has then"),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Solve the planning MILP (expected NPV over the scenarios, or with a CVaR weight) and write the plan and cash flows."""
    if time_limit is not None and time_limit <= 0:
        raise InputError(f"--time-limit: must be > 0 seconds, got {time_limit:g}")
    if not diagnosis_time_limit > 0:
        raise InputError(f"--diagnosis-time-limit: must be > 0 seconds, got {diagnosis_time_limit:g}")
    if not 0 <= gap < 1:
        raise InputError(f"--gap: must be a fraction in [0, 1), got {gap:g}")
    _check_risk(risk_weight, risk_alpha)
    inst = load_instance(file, data_dir)
    from optimizer.economics.data import compile_instance
    from optimizer.output.decisions import describe_plan, mark_terminal, not_taken, write_decisions
    from optimizer.output.headline import build_headline, solver_note
    from optimizer.solve import solve as run_solve

    started = time.perf_counter()
    result = run_solve(inst, progress=TerminalProgress(), time_limit_s=time_limit, mip_gap=gap, threads=threads,
                       baselines=not no_baselines, mip_start=mip_start, portfolio=portfolio, cvar_weight=risk_weight,
                       cvar_alpha=risk_alpha, value_of_information=False if no_voi else None, value_of_flexibility=False if no_flexibility else None,
                       diagnosis_time_limit_s=diagnosis_time_limit)
    result.instance_path = str(Path(file).resolve())
    check = None
    if terminal_check and result.solved:
        from optimizer.analysis.horizon import terminal_check as run_terminal_check

        err.print("Terminal check: solving again with every terminal value off ...", markup=False)
        check = run_terminal_check(inst, result, progress=TerminalProgress(), time_limit_s=time_limit, mip_gap=gap,
                                   threads=threads, baselines=False, cvar_weight=risk_weight, cvar_alpha=risk_alpha)
        result.terminal_check = check.summary()
    result.write(out_dir)
    s = result.summary
    if result.has_plan:
        data = compile_instance(inst)
        flags = (s.get("terminal") or {}).get("flags")
        write_decisions(out_dir, result.plan, data, terminal_flags=flags)
        _print_headline(build_headline(s, result.evaluation.cashflows, result.plan, data))
        if (s.get("tree") or {}).get("form") == "multistage":
            _tree_digest(s)  # decide now, then per node (decisions.md has every sentence)
        else:
            _print_decisions(mark_terminal(describe_plan(result.plan, data), flags), not_taken(result.plan, data))
        _print_terminal(s)
        _print_violations(list(s.get("violations") or []))
        _print_baselines(s)
    out.print(solver_note(s), markup=False, soft_wrap=True, style="dim")
    if not result.solved:  # infeasible, unbounded, or nothing found in time: say why on stderr
        message = one_line(s.get("message") or s.get("status"))
        err.print(f"error: {message}", markup=False)
        for line in s.get("diagnosis") or []:
            if one_line(line) not in message:
                err.print(f"diagnosis: {one_line(line)}", markup=False)
    if result.solved and report:
        from optimizer.output.report import render_report

        out.print(f"Report: {render_report(out_dir, instance=inst)}", markup=False)
    if result.solved and excel:
        from optimizer.output.excel import write_workbook

        out.print(f"Workbook: {write_workbook(out_dir, Path(out_dir) / 'results.xlsx', instance=inst)}", markup=False)
    written = "summary.json, decisions.md, plan/, plan.csv, allocation.csv, cashflows.csv, ..." if result.has_plan else "summary.json"
    out.print(f"Wrote {out_dir}/ ({written}) in {time.perf_counter() - started:.1f} s", markup=False, soft_wrap=True)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def _check_risk(weight: float | None, alpha: float | None) -> None:
    if weight is not None and not 0 <= weight <= 1:
        raise InputError(f"--risk-weight: must be in [0, 1], got {weight:g}")
    if alpha is not None and not 0 <= alpha < 1:
        raise InputError(f"--risk-alpha / --alpha: must be in [0, 1), got {alpha:g}")


# ---------------------------------------------------------------- risk frontier, progressive hedging


@app.command()
def frontier(
    file: Path = typer.Argument(..., help="instance file"),
    weights: str = typer.Option("0,0.25,0.5,0.75,1", "--weights", help="comma-separated CVaR weights in [0, 1]"),
    out_dir: Path = typer.Option(..., "--out", help="writes DIR/frontier.csv and DIR/frontier.png"),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="CVaR level (default: the instance's risk.alpha, else 0.95)"),
    gap: float = typer.Option(0.005, "--gap", help="relative MIP gap per solve"),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="seconds per solve"),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Solve at each CVaR weight: expected NPV against CVaR, with each plan's first-stage decisions."""
    try:
        ws = [float(x) for x in weights.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--weights: give comma-separated numbers, got {weights!r}") from None
    if not ws:
        raise InputError("--weights: give at least one weight")
    for w in ws:
        _check_risk(w, alpha)
    _check_risk(None, alpha)
    if not 0 <= gap < 1:
        raise InputError(f"--gap: must be a fraction in [0, 1), got {gap:g}")
    inst = load_instance(file, data_dir)
    from optimizer.analysis.risk import frontier_chart, risk_frontier

    started = time.perf_counter()
    t = Table(title=f"Risk frontier of {inst.name}")
    for c in ("weight", "status", "E[NPV]", "CVaR", "leases signed", "s"):
        t.add_column(c)

    df = risk_frontier(inst, ws, alpha, progress=TerminalProgress(), mip_gap=gap, time_limit_s=time_limit)
    from optimizer.solve.resultdir import write_result_dir

    write_result_dir(out_dir, None, {"frontier": df}, figures={"frontier.png": lambda p: frontier_chart(df, p)}, kind="frontier")
    png = Path(out_dir) / "frontier.png"
    for r in df.itertuples(index=False):
        t.add_row(f"{r.weight:g}", r.status, _usd(r.expected_npv_usd), _usd(r.cvar_usd), r.leases_signed or "-", f"{r.solve_s:.1f}")
    out.print(t)
    out.print(f"Wrote {Path(out_dir) / 'frontier.csv'} and {png} in {time.perf_counter() - started:.1f} s", markup=False)
    if (df["status"].isin(["infeasible", "unbounded"])).all():
        raise typer.Exit(EXIT_INFEASIBLE)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def ph(ctx: typer.Context, file: Path = typer.Argument(..., help="stochastic instance file"),
       data_dir: Optional[Path] = _data_dir_option()) -> None:
    """Progressive hedging (mpi-sppy); under MPI: mpiexec -n N optimizer ph FILE --out DIR. Options: python -m optimizer.ph --help."""
    load_instance(file, data_dir)  # bad input: one line, exit 2, before MPI starts
    code = ph_main([str(file), *([] if data_dir is None else ["--data-dir", str(data_dir)]), *ctx.args])
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- sweeps, breakevens, tornado, reports


def _exit(code: int) -> None:
    """End a command with the exit code its *_command helper returned (``ExitCode``)."""
    if code:
        raise typer.Exit(int(code))


_SOLVE_HELP = "relative MIP gap per solve"


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="instance file"),
    param: list[str] = typer.Option(..., "--param", help="PATH=SPEC; repeat for several. SPEC: values 0.08,0.1,0.12; a range LO:HI:N; "
                                    "multipliers x0.8,1,1.2; add:-20,0,20; shift:-2,0,2 (months). Example on the demo: "
                                    "--param 'leases[L3-ailab].rate_usd_per_kw_month=120:180:7' --param horizon.discount_rate=0.10,0.12"),
    out_dir: Path = typer.Option(..., "--out", help="results store (points.csv); re-running resumes"),
    mode: str = typer.Option("product", "--mode", help="product, zip or lhs"),
    samples: Optional[int] = typer.Option(None, "--samples", help="points for --mode lhs"),
    seed: int = typer.Option(0, "--seed", help="seed for --mode lhs"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local processes (with --dask: LocalCluster workers)"),
    dask: bool = typer.Option(False, "--dask", help="run on dask.distributed (a LocalCluster unless --scheduler)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler address, e.g. tcp://10.0.0.5:8786"),
    cold: bool = typer.Option(False, "--cold", help="rebuild the model at every point (no persistent re-use)"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="solve again the points whose solve failed"),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="seconds per solve"),
    gap: float = typer.Option(0.005, "--gap", help=_SOLVE_HELP),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Solve the instance at every point of a parameter grid; each point is stored as it finishes."""
    executor = "dask" if (dask or scheduler) else ("processes" if workers else "inprocess")
    _exit(sweep_command(file, param, out_dir, mode=mode, n_samples=samples, seed=seed, executor=executor,
                        workers=workers, scheduler=scheduler, persistent=not cold, retry_failed=retry_failed,
                        solve_options={"time_limit_s": time_limit, "mip_gap": gap}, data_dir=data_dir))


@app.command()
def simulate(
    file: Path = typer.Argument(..., help="instance file with a scenario_generator (and usually a tree)"),
    paths: int = typer.Option(20, "--paths", help="fresh price paths to sample", min=1),
    out_dir: Path = typer.Option(..., "--out", help="results store (simulation.csv, simulation.png); re-running resumes"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed of the fresh paths (default: the generator's seed + 1)"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local processes (with --dask: LocalCluster workers)"),
    dask: bool = typer.Option(False, "--dask", help="run on dask.distributed (a LocalCluster unless --scheduler)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler address"),
    time_limit: Optional[float] = typer.Option(None, "--time-limit", help="seconds per solve"),
    gap: float = typer.Option(0.005, "--gap", help=_SOLVE_HELP),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="solver threads per solve"),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Test the tree policy out of sample: on fresh paths, re-plan at each branch month from the realized
    state and compare the realized NPV with the static two-stage plan and the baselines."""
    executor = "dask" if (dask or scheduler) else ("processes" if workers else "inprocess")
    _exit(simulate_command(file, paths, out_dir, seed=seed, executor=executor, workers=workers, scheduler=scheduler,
                           solve_options={"time_limit_s": time_limit, "mip_gap": gap, "threads": threads}, data_dir=data_dir))


@app.command()
def breakeven(
    file: Path = typer.Argument(..., help="instance file"),
    param: str = typer.Option(..., "--param", help="dotted path of the parameter to move"),
    lo: str = typer.Option(..., "--lo", help="low end of the bracket (a value, xMULT or add:SHIFT)"),
    hi: str = typer.Option(..., "--hi", help="high end of the bracket"),
    target: str = typer.Option("npv", "--target", help=BREAKEVEN_TARGET_HELP),
    rel_tol: float = typer.Option(1e-4, "--rel-tol", help="relative tolerance on the parameter"),
    max_solves: int = typer.Option(40, "--max-solves"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="write breakeven.json and the history here"),
    gap: float = typer.Option(0.005, "--gap", help=_SOLVE_HELP),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Find the parameter value at which the NPV crosses a value or a first-stage decision flips (ITP / bisection; reports the bracket)."""
    _exit(breakeven_command(file, param, lo, hi, target=target, rel_tol=rel_tol, max_solves=max_solves,
                            out=out_dir, solve_options={"mip_gap": gap}, data_dir=data_dir))


@app.command()
def tornado(
    file: Path = typer.Argument(..., help="instance file"),
    param: list[str] = typer.Option(..., "--param", help="PATH=LOW,HIGH (values, xMULT or shifts); repeat"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="write tornado.csv and tornado.png here"),
    workers: Optional[int] = typer.Option(None, "--workers", help="local processes"),
    gap: float = typer.Option(0.005, "--gap", help=_SOLVE_HELP),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """One-at-a-time low/high sensitivities ranked by NPV swing."""
    _exit(tornado_command(file, param, out_dir, executor="processes" if workers else "inprocess",
                          workers=workers, solve_options={"mip_gap": gap}, data_dir=data_dir))


@app.command()
def report(
    result_dir: Path = typer.Argument(..., help="a directory written by solve, evaluate, sweep or frontier"),
    out: Optional[Path] = typer.Option(None, "--out", help="HTML file (default RESULT_DIR/report.html)"),
    instance: Optional[Path] = typer.Option(None, "--instance", help="instance file, when the directory does not name it"),
    excel: bool = typer.Option(False, "--excel", help="also write RESULT_DIR/results.xlsx"),
    data_dir: Optional[Path] = _data_dir_option(),
) -> None:
    """Render a self-contained HTML report (and optionally an Excel workbook) of a result directory."""
    code = report_command(result_dir, out, instance, data_dir=data_dir)
    if code == 0 and excel:
        code = excel_command(result_dir)
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- command helpers (also called by tests)


def sweep_command(file: str | Path, params: list[str], out: str | Path | None = None, *, mode: str = "product",
                  n_samples: int | None = None, seed: int = 0, executor: str | None = None, workers: int | None = None,
                  scheduler: str | None = None, persistent: bool = True, progress: bool = True, retry_failed: bool = False,
                  solve_options: dict | None = None, solver: Any = None, data_dir: str | Path | None = None) -> int:
    """``optimizer sweep``; returns the exit code (``ExitCode``): 0 all points solved, 2 bad input
    (one line on stderr), 5 finished but some points failed (their errors are in the store),
    7 a worker process died, 130 interrupted (7 and 130: finished points are saved, rerun resumes)."""

    from optimizer.analysis.sweep import WorkerDied, pick_executor
    from optimizer.analysis.sweep import sweep as run_sweep
    try:
        inst = load_instance(file, data_dir)
        df = run_sweep(inst, list(params), out_dir=out, mode=mode, n_samples=n_samples, seed=seed,
                       executor=pick_executor(executor, workers, scheduler), workers=workers,
                       scheduler_address=scheduler, persistent=persistent, progress=_progress(progress), solver=solver,
                       retry_failed=retry_failed, **(solve_options or {}))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.INPUT
    except KeyboardInterrupt:
        print(f"interrupted; finished points are saved{f' in {out}' if out else ''}; rerun to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except WorkerDied as e:
        print(f"error: {one_line(e)}{f' (store: {out})' if out else ''}", file=sys.stderr)
        return ExitCode.WORKER_DIED
    from optimizer.analysis.sweep import params_from

    print(_points_text(df, [p.column for p in params_from(list(params))]))
    n_err = int((df["error"].astype(str) != "").sum())
    where = f" -> {Path(out) / 'points.csv'}" if out else ""
    print(f"{len(df)} points, {n_err} failed{where}")
    if n_err:
        first = df.loc[df["error"].astype(str) != "", "error"].iloc[0]
        print(f"first error: {first}", file=sys.stderr)
    return ExitCode.PARTIAL if n_err else ExitCode.OK


def simulate_command(file: str | Path, n_paths: int, out: str | Path, *, seed: int | None = None, executor: str = "inprocess",
                     workers: int | None = None, scheduler: str | None = None, progress: bool = True,
                     solve_options: dict | None = None, data_dir: str | Path | None = None) -> int:
    """``optimizer simulate``; returns the exit code (``ExitCode``): 0 every path simulated, 2 bad
    input, 1 aborted, 5 some paths had errors, 130 interrupted (finished paths are saved)."""
    import pandas as pd

    from optimizer.analysis.simulate import simulate as run_simulate
    try:
        inst = load_instance(file, data_dir)
        opts = {k: v for k, v in (solve_options or {}).items() if v is not None}
        df = run_simulate(inst, n_paths, out_dir=out, seed=seed, executor=executor, workers=workers, scheduler_address=scheduler,
                          progress=_progress(progress), **opts)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.INPUT
    except KeyboardInterrupt:
        print(f"interrupted; finished paths are saved in {out}; rerun to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except RuntimeError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return ExitCode.INTERNAL
    stats = df.groupby("policy", sort=False)["realized_npv_usd"].agg(["count", "mean", "std", "min", "median", "max"])
    with pd.option_context("display.width", 200, "display.float_format", lambda x: f"{x / 1e6:,.1f} M$"):
        print(stats.rename(columns={"count": "paths"}).to_string())
    n_err = int((df["error"].astype(str) != "").sum())
    rate = df.attrs.get("paths_simulated", 0) / df.attrs["path_seconds"] * 60 if df.attrs.get("path_seconds") else 0.0
    print(f"{df['path'].nunique()} paths x {df['policy'].nunique()} policies, {n_err} rows with errors -> {Path(out) / 'simulation.csv'}, "
          f"{Path(out) / 'simulation.png'} ({rate:.2f} paths per minute)")
    if n_err:
        print(f"first error: {df.loc[df['error'].astype(str) != '', 'error'].iloc[0]}", file=sys.stderr)
    return ExitCode.PARTIAL if n_err else ExitCode.OK


def _points_text(df, param_columns: list[str]) -> str:
    """A sweep's points for people: parameters by name and unit, NPV in M$, gap in %, MW converted,
    the first-stage decisions; 40 rows at most (the store has them all)."""
    import pandas as pd

    from optimizer.analysis.digest import param_label

    show = pd.DataFrame(index=df.index)
    for c in param_columns:
        show[param_label(c)] = df[c]
    show["status"] = df["status"]
    show["NPV (M$)"] = pd.to_numeric(df["npv_usd"], errors="coerce").map(lambda v: "-" if pd.isna(v) else f"{v / 1e6:,.2f}")
    show["gap (%)"] = pd.to_numeric(df["mip_gap"], errors="coerce").map(lambda v: "-" if pd.isna(v) else f"{100 * v:.3g}")
    for c in [c for c in df.columns if str(c).startswith("converted_mw_")]:
        show[f"{c.removeprefix('converted_mw_')} MW converted"] = pd.to_numeric(df[c], errors="coerce").map(
            lambda v: "-" if pd.isna(v) else f"{v:,.4g}")
    for c, title in (("leases_signed", "leases"), ("site_events", "site sales/buys"), ("contracts_signed", "contracts")):
        if c in df.columns and (df[c].astype(str) != "").any():
            show[title] = df[c].astype(str).replace("", "-")
    show["solve (s)"] = pd.to_numeric(df["solve_s"], errors="coerce").map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    with pd.option_context("display.width", 240, "display.max_columns", 30, "display.max_colwidth", 40):
        return show.to_string(max_rows=40, index=False)


def breakeven_command(file: str | Path, param: str, lo: str | float, hi: str | float, *, target: str = "npv",
                      abs_tol: float | None = None, rel_tol: float = 1e-4, max_solves: int = 40,
                      out: str | Path | None = None, persistent: bool = True, progress: bool = True,
                      solve_options: dict | None = None, solver: Any = None, data_dir: str | Path | None = None) -> int:
    """``optimizer breakeven``: prints the breakeven; writes DIR/breakeven.json and
    DIR/breakeven_history.csv when ``out`` is given. Returns the exit code: 0 found, 2 bad input /
    no bracket / failed solve, 5 stopped at max_solves before reaching the tolerance."""
    from optimizer.analysis.breakeven import _parse_bound
    from optimizer.analysis.breakeven import breakeven as run_breakeven
    from optimizer.solve.resultdir import write_breakeven_dir
    try:
        (k_lo, v_lo), (k_hi, v_hi) = _parse_bound(lo), _parse_bound(hi)
        if k_lo != k_hi:
            raise InputError(f"breakeven: lo {lo!r} and hi {hi!r} must be of the same kind (both values, both xMULT or both add:)")
        inst = load_instance(file, data_dir)
        res = run_breakeven(inst, param, v_lo, v_hi, target=target, kind=k_lo, abs_tol=abs_tol, rel_tol=rel_tol,
                            max_solves=max_solves, persistent=persistent, solver=solver, progress=_progress(progress),
                            **(solve_options or {}))
    except (InputError, RuntimeError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return ExitCode.INPUT
    print(res.sentence())
    print(res.summary())
    if out is not None:
        write_breakeven_dir(out, res.as_dict(), res.history)
    return ExitCode.OK if res.converged else ExitCode.PARTIAL


def tornado_command(file: str | Path, params: list[str], out: str | Path | None = None, *, executor: str | None = None,
                    workers: int | None = None, scheduler: str | None = None, persistent: bool = True,
                    progress: bool = True, solve_options: dict | None = None, solver: Any = None,
                    data_dir: str | Path | None = None) -> int:
    """``optimizer tornado``: prints the ranked table; with ``out`` writes DIR/tornado.csv,
    DIR/tornado.png and the point store DIR/tornado_points.csv. Returns the exit code: 0 ok, 2 bad
    input, 5 some solves failed, 7 a worker process died, 130 interrupted."""

    from optimizer.analysis.sweep import WorkerDied, pick_executor
    from optimizer.analysis.tornado import plot_tornado
    from optimizer.analysis.tornado import tornado as run_tornado
    try:
        inst = load_instance(file, data_dir)
        df = run_tornado(inst, list(params), out_dir=out, executor=pick_executor(executor, workers, scheduler),
                         workers=workers, scheduler_address=scheduler, persistent=persistent, progress=_progress(progress),
                         solver=solver, **(solve_options or {}))
    except InputError as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return ExitCode.INPUT
    except KeyboardInterrupt:
        print("interrupted; finished points are saved; rerun to resume", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except WorkerDied as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return ExitCode.WORKER_DIED
    print(_tornado_text(df))
    if out is not None:
        from optimizer.solve.resultdir import write_result_dir

        write_result_dir(out, None, {"tornado": df}, figures={"tornado.png": lambda p: plot_tornado(df, p)}, kind="tornado")
        print(f"-> {Path(out) / 'tornado.csv'}, {Path(out) / 'tornado.png'}")
    n_err = int((df["error"] != "").sum())
    if n_err:
        print(f"{n_err} parameter(s) with failed solves; first: {df.loc[df['error'] != '', 'error'].iloc[0]}", file=sys.stderr)
    return ExitCode.PARTIAL if n_err else ExitCode.OK


def _tornado_text(df) -> str:
    """The tornado ranked, for people: parameter by name and unit, its low/high, NPVs and swing in M$."""
    import pandas as pd

    from optimizer.analysis.digest import param_label

    mark = {"value": "", "mul": "x", "add": "+", "shift": "shift "}
    m = lambda v: "-" if pd.isna(v) else f"{v / 1e6:,.2f}"  # noqa: E731
    show = pd.DataFrame({
        "parameter": [param_label(p) for p in df["parameter"]],
        "low / high": [f"{mark.get(k, '')}{lo:g} / {mark.get(k, '')}{hi:g}" if isinstance(lo, (int, float)) else f"{lo} / {hi}"
                       for k, lo, hi in zip(df["kind"], df["low"], df["high"])],
        "NPV low (M$)": df["npv_low_usd"].map(m), "NPV high (M$)": df["npv_high_usd"].map(m), "swing (M$)": df["swing_usd"].map(m),
    })
    base = df["base_npv_usd"].dropna()
    head = f"base NPV {_usd(float(base.iloc[0]))}\n" if len(base) else ""
    with pd.option_context("display.width", 240, "display.max_columns", 10, "display.max_colwidth", 60):
        return head + show.to_string(index=False)


def report_command(result_dir: str | Path, out: str | Path | None = None, instance: str | Path | None = None, *,
                   data_dir: str | Path | None = None) -> int:
    """Render the report (default RESULT_DIR/report.html), print its path; one-line error and
    exit code 2 on bad input. ``instance``: the instance file, when summary.json lacks
    ``instance_path`` (it supplies probabilities, the halving and grid limits)."""
    from optimizer.output.report import render_report

    try:
        path = render_report(result_dir, out, instance=instance, data_dir=data_dir)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def excel_command(result_dir: str | Path, out: str | Path | None = None) -> int:
    """Write ``result_dir/results.xlsx`` (or ``out``), print its path; exit code 2 on bad input."""
    from optimizer.output.excel import write_workbook

    try:
        path = write_workbook(result_dir, out if out is not None else Path(result_dir) / "results.xlsx")
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


def ph_main(argv: list[str] | None = None) -> int:
    """``python -m optimizer.ph`` / ``optimizer ph``: progressive hedging, one process per MPI rank."""
    p = argparse.ArgumentParser(prog="python -m optimizer.ph", description="Progressive hedging (mpi-sppy) of a stochastic instance.")
    p.add_argument("file", help="stochastic instance (YAML or JSON)")
    p.add_argument("--out", help="write DIR/ph_summary.json and DIR/plan/ (rank 0)")
    p.add_argument("--rho", type=float, default=0.01, help="PH penalty rho as a share of |E[NPV]| of iteration 0, per unit^2 of a first-stage decision")
    p.add_argument("--iterations", type=int, default=10, help="maximum PH iterations")
    p.add_argument("--conv", type=float, default=1e-4, help="stop when sum |x - xbar| / nonants falls below this")
    p.add_argument("--gap", type=float, default=1e-4, help="relative MIP gap of each subproblem solve")
    p.add_argument("--extensive-form", action="store_true", help="also solve the extensive form (rank 0) and compare")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    a = p.parse_args(argv)
    from mpisppy import MPI  # optional extra [ph]

    from optimizer.analysis.ph import run_ph

    rank = MPI.COMM_WORLD.rank
    try:
        inst = load_instance(Path(a.file), a.data_dir)
        res = run_ph(inst, rho=a.rho, max_iterations=a.iterations, conv_threshold=a.conv, mip_gap=a.gap, verbose=a.verbose)
    except Exception as e:  # one line, no traceback, from rank 0; bad input 2, anything else 1
        if rank == 0:
            print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, (InputError, ValueError, FileNotFoundError)) else 1
    if rank != 0:
        return 0
    summary = {"instance": inst.name, **res.summary()}
    if a.extensive_form:
        from optimizer.solve import solve

        t = time.perf_counter()
        ef = solve(inst, mip_gap=a.gap, baselines=False, shadow_prices=False, value_of_information=False, value_of_flexibility=False)
        summary["extensive_form"] = {"status": ef.status, "npv_usd": ef.npv_usd, "seconds": time.perf_counter() - t}
        if ef.npv_usd and res.objective_usd is not None:
            summary["ph_vs_extensive_form_rel"] = (res.objective_usd - ef.npv_usd) / abs(ef.npv_usd)
    print(json.dumps(summary, indent=2, default=str))
    if a.out:
        from optimizer import manifest

        out = manifest.begin(Path(a.out), stale=["ph_summary.json", "plan"])
        files = ["ph_summary.json"]
        if res.plan is not None:
            res.plan.to_dir(out / "plan")
            files += [f"plan/{p.name}" for p in sorted((out / "plan").iterdir()) if p.is_file()]
        manifest.write_text(out / "ph_summary.json", json.dumps(summary, indent=2, default=str))
        manifest.finish(out, files, "ph")
    return 0 if res.objective_usd is not None and not res.violations else 1


# ---------------------------------------------------------------- doctor


@app.command()
def doctor() -> None:
    """Check the install: versions, and a tiny MILP solved by HiGHS through Pyomo and highspy."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    ok = True
    out.print(f"python {platform.python_version()}")
    for pkg in ("pyomo", "highspy", "pandas", "numpy", "pydantic", "typer", "rich", "pyyaml"):
        try:
            out.print(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            out.print(f"{pkg} [red]MISSING[/]")
            ok = False
    # max 3x + 2y  s.t.  x + y <= 4,  x + 3y <= 6,  0 <= x <= 3,  x, y integer.
    # LP optimum is fractional; the integer optimum is x = 3, y = 1, objective 11.
    try:
        import highspy
        import numpy as np

        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = 2, 2
        lp.col_cost_ = np.array([-3.0, -2.0])
        lp.col_lower_, lp.col_upper_ = np.array([0.0, 0.0]), np.array([3.0, highspy.kHighsInf])
        lp.row_lower_, lp.row_upper_ = np.array([-highspy.kHighsInf] * 2), np.array([4.0, 6.0])
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = [0, 2, 4], [0, 1, 0, 1], [1.0, 1.0, 1.0, 3.0]
        lp.integrality_ = [highspy.HighsVarType.kInteger] * 2
        h.passModel(lp)
        h.run()
        x = list(h.getSolution().col_value)
        good = abs(-h.getInfo().objective_function_value - 11) < 1e-6 and abs(x[0] - 3) < 1e-6 and abs(x[1] - 1) < 1e-6
        out.print(f"highspy tiny MILP: objective {-h.getInfo().objective_function_value:g} (expected 11) {'OK' if good else 'WRONG'}")
        ok &= good
    except Exception as e:  # report, do not crash: this command diagnoses broken installs
        out.print(f"highspy tiny MILP: FAILED ({one_line(e)})", markup=False)
        ok = False
    try:
        import pyomo.environ as pyo
        from pyomo.contrib.solver.common.factory import SolverFactory

        m = pyo.ConcreteModel()
        m.x = pyo.Var(domain=pyo.NonNegativeIntegers, bounds=(0, 3))
        m.y = pyo.Var(domain=pyo.NonNegativeIntegers)
        m.c1 = pyo.Constraint(expr=m.x + m.y <= 4)
        m.c2 = pyo.Constraint(expr=m.x + 3 * m.y <= 6)
        m.obj = pyo.Objective(expr=3 * m.x + 2 * m.y, sense=pyo.maximize)
        res = SolverFactory("highs").solve(m)
        obj = float(res.incumbent_objective)
        good = abs(obj - 11) < 1e-6 and abs(pyo.value(m.x) - 3) < 1e-6
        out.print(f"pyomo + highs tiny MILP: objective {obj:g} (expected 11) {'OK' if good else 'WRONG'}")
        ok &= good
    except Exception as e:
        out.print(f"pyomo + highs tiny MILP: FAILED ({one_line(e)})", markup=False)
        ok = False
    out.print("[bold green]OK[/]" if ok else "[bold red]PROBLEMS FOUND[/]")
    if not ok:
        raise typer.Exit(EXIT_INTERNAL)


# ---------------------------------------------------------------- entry point


def _fail(message: str, code: int = EXIT_INPUT) -> int:
    err.print(f"error: {one_line(message)}", markup=False, soft_wrap=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and an exit code, never a traceback."""
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="optimizer", standalone_mode=False)
        return rv if isinstance(rv, int) else EXIT_OK
    except InputError as e:
        return _fail(str(e))
    except ValidationError as e:
        return _fail(format_validation_error(e, root=Instance if e.title == "Instance" else None))
    except FileNotFoundError as e:
        return _fail(f"{e.filename or e}: file not found")
    except yaml.YAMLError as e:
        return _fail(f"invalid YAML: {e}")
    except typer.exceptions.TyperException as e:  # usage errors: bad option, missing argument
        if type(e).__name__ == "NoArgsIsHelpError":
            e.show()
            return e.exit_code
        ctx = getattr(e, "ctx", None)
        where = f"optimizer {ctx.info_name}" if ctx is not None and ctx.info_name != "optimizer" else "optimizer"
        return _fail(f"{e.format_message()} (see `{where} --help`)", getattr(e, "exit_code", EXIT_INPUT))
    except typer.Abort:
        return _fail("aborted", 130)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return EXIT_OK
    except Exception as e:
        if os.environ.get("OPTIMIZER_DEBUG"):
            raise
        return _fail(f"internal error: {type(e).__name__}: {e} (rerun with OPTIMIZER_DEBUG=1 for the traceback)", EXIT_INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
