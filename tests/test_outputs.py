"""Analyst-ready outputs: decisions in words, the CFO headline, the workbook, progress, the tidy API.

Hand values are derived in the comments from the instance files (instances/demo.yaml,
instances/tiny.yaml); nothing is copied from the code's output.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from rich.console import Console

from optimizer.analysis.digest import first_stage_summary, param_label
from optimizer.cli import TerminalProgress, main
from optimizer.evaluate import baseline_plan, evaluate
from optimizer.instance.loading import load_instance
from optimizer.output.decisions import covered_rows, decision_rows, decisions_markdown, describe_plan, not_taken
from optimizer.output.headline import build_headline
from optimizer.plan import Plan
from optimizer.solve import solve
from optimizer.solve.pipeline import PHASES

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "instances" / "demo.yaml"
TINY = ROOT / "instances" / "tiny.yaml"
BUNDLED = sorted((ROOT / "instances").glob("*.yaml")) + sorted((ROOT / "tests" / "instances").glob("*.yaml"))


# ---------------------------------------------------------------- decisions in words


def _full_plan(inst) -> Plan:
    """One row of every decision table the instance allows (feasibility does not matter here:
    sentences describe any plan). Units are continuous on purpose (1000.5) for the 'about' wording."""
    tl = inst.timeline
    first, second, last = tl.labels[0], tl.labels[min(1, len(tl.labels) - 1)], tl.labels[-1]
    conv = [(s.id, first, 1.0) for s in inst.sites if s.conversion is not None]
    gx = [(s.id, g.id, first) for s in inst.sites for g in s.grid_expansions]
    buy = [(p.id, (p.sites or [inst.sites[0].id])[0], p.first_month, 1000.5) for p in inst.fleet.purchase_options]
    ret = [(u.site, u.model, second, u.units / 2) for u in inst.fleet.installed if u.units > 0]
    leases = [(l.id, inst.eligible_sites(l)[0], l.window_start, 0.5 if l.splittable else 1.0) for l in inst.leases]
    contracts = [(c.id, i % 2 == 0) for i, c in enumerate(c for c in inst.contracts if c.optional)]
    events = [(s.id, "sale", last) for s in inst.sites if s.sale is not None]
    events += [(s.id, "acquisition", s.acquisition.available_from) for s in inst.sites if s.acquisition is not None]
    fin = inst.financing
    debt = [(f.id, m, 1e6) for f in (fin.project_facilities if fin else []) for m in (f.draw_first_month or first, f.draw_last_month)]
    debt += [(n.id, n.first_month, 5e6) for n in (fin.new_issues if fin else [])]
    exits = [(s.id, second) for s in inst.sites if s.mining_overhead is not None]
    cuts = [(r.id, r.earliest_month or first) for r in (inst.overhead.reductions if inst.overhead else [])]
    hedges = [(f.id, m, 100.0) for f in (inst.hedges.forwards if inst.hedges else []) for m in dict.fromkeys((f.first_month, f.last_month))]
    names = [s.name for s in inst.scenarios]
    # scenario 0 sells 10 BTC, the others 20 (two groups unless one scenario), plus a zero row (no decision)
    sales = [(n, first, 10.0 if w == 0 else 20.0) for w, n in enumerate(names)] + [(names[0], last, 0.0)]
    df = pd.DataFrame
    return Plan(conversions=df(conv, columns=["site", "month", "blocks"]),
                grid_expansions=df(gx, columns=["site", "option", "month"]),
                purchases=df(buy, columns=["option", "site", "month", "units"]),
                retirements=df(ret, columns=["site", "model", "month", "units"]),
                leases=df(leases, columns=["lease", "site", "month", "share"]),
                contracts=df(contracts, columns=["contract", "signed"]),
                site_events=df(events, columns=["site", "event", "month"]),
                debt=df(debt, columns=["instrument", "month", "usd"]),
                mining_exits=df(exits, columns=["site", "month"]),
                overhead_cuts=df(cuts, columns=["reduction", "month"]),
                hedges=df(hedges, columns=["forward", "month", "ph_s"]),
                btc_sales=df(sales, columns=["scenario", "month", "btc"]))


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_sentences_cover_every_decision_table_on_every_bundled_instance(path):
    inst = load_instance(path)
    plan = _full_plan(inst)
    for source in (inst, None):                     # with the instance, and bare (a result directory without one)
        decisions = describe_plan(plan, source)
        assert covered_rows(plan, decisions) == decision_rows(plan), path.stem
        for d in decisions:
            assert d.sentence.endswith(".") and len(d.sentence) > 15
            for word in (d.site, d.subject if d.kind != "purchase" else None, d.month):
                if word:
                    assert word in d.sentence, (d.kind, word, d.sentence)
    # every row of every table is counted once: e.g. one sentence per lease row, per retirement row
    decisions = describe_plan(plan, inst)
    assert sum(d.kind == "lease" for d in decisions) == len(plan.leases)
    assert sum(d.kind in ("contract", "contract_unsigned") for d in decisions) == len(plan.contracts)
    assert sum(len(d.rows) for d in decisions if d.kind == "btc_sale") == len(inst.scenarios)   # the zero row is no sale
    if len(plan.purchases):
        assert any("about 1,000" in d.sentence or "about 1,001" in d.sentence for d in decisions if d.kind == "purchase")
        assert "continuous" in decisions_markdown(decisions)


def test_sentences_carry_hand_computed_figures_on_demo():
    inst = load_instance(DEMO)
    plan = Plan(conversions=pd.DataFrame({"site": ["nd-1"], "month": ["2026-01"], "blocks": [2]}),
                retirements=pd.DataFrame({"site": ["tx-1"], "model": ["Antminer S21 XP"], "month": ["2028-05"], "units": [20000]}),
                leases=pd.DataFrame({"lease": ["L3-ailab"], "site": ["nd-1"], "month": ["2027-07"], "share": [1.0]}),
                contracts=pd.DataFrame({"contract": ["pa-ppa"], "signed": [False]}),
                site_events=pd.DataFrame({"site": ["pa-1"], "event": ["sale"], "month": ["2027-01"]}),
                btc_sales=pd.DataFrame({"scenario": ["bear", "base", "bull"], "month": ["2026-01"] * 3, "btc": [2000.0] * 3}))
    got = [d.sentence for d in describe_plan(plan, inst)]
    assert got == [
        "Leave the optional fixed-price power contract pa-ppa at pa-1 unsigned.",
        # nd-1: 100 racks per block x 130 kW = 13 MW per block, 2 blocks = 26 MW; lead 18 months from 2026-01 -> 2027-07;
        # capex 26 MW x 10,000,000 USD/MW = 260 M$
        "Convert 2 blocks (26 MW IT) at nd-1 from 2026-01, online 2027-07; capex $260M.",
        # every scenario's BTC price in 2026-01 is 87,000: 2,000 x 87,000 = 174 M$
        "Sell 2,000 BTC from the treasury in 2026-01 (every scenario), about $174M.",
        # sale option price_usd 27,000,000
        "Sell site pa-1 in 2027-01 for $27M.",
        # L3-ailab: it_mw 30, term 180 months, rate 159 USD/kW-month
        "Sign lease L3-ailab (30 MW IT, 180 months at $159/kW-month), hand-over 2027-07 at nd-1.",
        # S21 XP salvage 1,620 USD/unit x 20,000 = 32.4 M$
        "Retire 20,000 Antminer S21 XP at tx-1 in 2028-05 (salvage $32.4M).",
    ]
    # the demo offers ASIC purchases the plan leaves unused
    assert "No ASIC purchase." in not_taken(plan, inst)


# ---------------------------------------------------------------- the headline


def test_headline_figures_by_hand():
    """Two scenarios (p = 0.5 each), three months. Cash (USD):
    a: capex -10 in each month, revenue 0 / 5 / 40          -> net -10, -5, +30; cumulative -10, -15, +15
    b: capex -10 in each month, revenue -20 / 20 / 20 (sic)  -> net -30, +10, +10; cumulative -30, -20, -10
    plus b's terminal value +100 in the last month (not cash). Peak funding need: worst scenario b,
    30 in 2026-01. Capex: 30 (the same in both). Keep-mining baseline 100, NPV 150 -> uplift 50."""
    rows = []
    for sc, rev in (("a", [0, 5, 40]), ("b", [-20, 20, 20])):
        for t, m in enumerate(["2026-01", "2026-02", "2026-03"]):
            rows.append((sc, m, "s", "capex_usd", -10.0, -10.0))
            rows.append((sc, m, "s", "mining_revenue_usd", float(rev[t]), float(rev[t])))
    rows.append(("b", "2026-03", "s", "terminal_hpc_usd", 100.0, 90.0))
    cf = pd.DataFrame(rows, columns=["scenario", "month", "site", "item", "usd", "pv_usd"])
    summary = {"instance": "x", "status": "optimal", "npv_usd": 150.0, "npv_usd_by_scenario": {"a": 100.0, "b": 200.0},
               "scenario_probabilities": {"a": 0.5, "b": 0.5}, "baselines": {"keep-mining": 100.0}, "mip_gap": 0.001}
    h = build_headline(summary, cf, Plan(), None)
    assert h.peak_funding_usd == pytest.approx(30.0) and h.peak_funding_scenario == "b" and h.peak_funding_month == "2026-01"
    assert h.capex_usd == pytest.approx(30.0)
    assert h.uplift_over_keep_mining_usd == pytest.approx(50.0)
    assert h.terminal_pv_usd == pytest.approx(0.5 * 90.0)         # expected PV of the terminal line
    assert h.recommendation.startswith("Keep mining")               # no conversion, no lease
    assert "MIP gap 0.1 %" in h.solver_note and "optimal" in h.solver_note
    figures = dict(h.figures())
    assert figures["NPV range across scenarios"] == "$100 (a) to $200 (b)"


# ---------------------------------------------------------------- the whole path, as the issue's "done when"


def _chromium() -> str | None:
    import shutil

    return os.environ.get("CHROMIUM") or next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                                               if shutil.which(n)), None)


@pytest.mark.slow
def test_solve_demo_report_excel_decisions_progress(tmp_path):
    out = tmp_path / "demo"
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "OPTIMIZER_PROGRESS_S": "0"}
    with open(stdout, "w") as o, open(stderr, "w") as e:    # not a terminal: progress as plain lines
        proc = subprocess.run([sys.executable, "-m", "optimizer", "solve", str(DEMO), "--out", str(out), "--report", "--excel"],
                              stdout=o, stderr=e, cwd=ROOT, env=env, timeout=600)
    text, log = stdout.read_text(), stderr.read_text()
    assert proc.returncode == 0, log
    # every decision in words, the same sentences in decisions.md and on the console
    md = (out / "decisions.md").read_text()
    sentences = [re.sub(r"^\d+\. ", "", line) for line in md.splitlines() if re.match(r"^\d+\. ", line)]
    assert sentences and all(s in text for s in sentences)
    plan = Plan.from_dir(out / "plan")
    inst = load_instance(DEMO)
    assert sentences == [d.sentence for d in describe_plan(plan, inst)]
    assert covered_rows(plan, describe_plan(plan, inst)) == decision_rows(plan)
    # the CFO headline before the solver's words; the solver status in the footnote
    summary = json.loads((out / "summary.json").read_text())
    assert text.index("Recommendation for demo") < text.index("Solver status: optimal")
    assert f"Expected NPV ${summary['npv_usd'] / 1e6:,.2f}M" in text
    # progress lines on stderr (not a terminal): each phase of the solve and the value-of-information solves
    assert "solve demo: started (7 steps)" in log and "value of information (EVPI, VSS): started" in log
    # report headline: recommendation, keep-mining uplift card, solver footnote
    html = (out / "report.html").read_text()
    uplift = summary["npv_usd"] - summary["baselines"]["keep-mining"]
    assert "<b>Recommendation.</b>" in html and f"${uplift / 1e6:,.2f}M" in html and 'class="note footnote"' in html
    for s in sentences:
        assert f"<li>{s}</li>" in html.replace("&#x27;", "'")
    _check_workbook(out, summary, sentences, inst)
    exe = _chromium()
    if exe is None:
        pytest.fail("chromium not found: `make test` installs it (or set CHROMIUM=/path/to/it)")
    png = tmp_path / "demo.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={png}", "--window-size=1400,2400", (out / "report.html").resolve().as_uri()],
                   capture_output=True, text=True, timeout=180)
    assert png.is_file() and png.stat().st_size > 10_000


def _check_workbook(out: Path, summary: dict, sentences: list[str], inst) -> None:
    wb = openpyxl.load_workbook(out / "results.xlsx")
    assert wb.sheetnames[:6] == ["Decisions", "Headline", "Annual", "Annual by site", "Cash flow", "MW by use"]
    ws = wb["Decisions"]
    head = [c.value for c in ws[1]]
    rows = [r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] is not None]
    assert [r[head.index("decision")] for r in rows] == sentences
    dated = [r[head.index("month")] for r in rows if r[head.index("month")] is not None]
    assert dated and all(d.day == 1 for d in dated)           # real Excel dates, first day of the month
    assert ws.cell(2 + next(i for i, r in enumerate(rows) if r[1] is not None), 2).number_format == "yyyy-mm"
    assert ws.auto_filter.ref is not None
    assert wb["cashflows"]["B2"].is_date
    assert len(wb["Cash flow"]._charts) == 2 and len(wb["MW by use"]._charts) == 1 + len(inst.sites)
    # treasury sales have their sheet when the plan sells (demo's optimum holds its BTC since sales
    # became one schedule for every scenario: models/trees.md)
    sells = bool((Plan.from_dir(out / "plan").btc_sales["btc"] > 1e-9).any())
    assert ("plan_btc_sales" in wb.sheetnames) == sells
    # Annual: the cached values of the formulas; totals by year against cashflows.csv weighted by the
    # demo's probabilities (bear 0.3, base 0.5, bull 0.2), and the PV column's NPV against summary.json
    cached = openpyxl.load_workbook(out / "results.xlsx", data_only=True)["Annual"]
    grid = [[c for c in r] for r in cached.iter_rows(values_only=True)]
    years = [str(y) for y in grid[0][1:] if y not in ("total", "PV (expected)")]
    net = next(r for r in grid if r[0] == "Net cash flow")
    cf = pd.read_csv(out / "cashflows.csv", dtype={"month": str})
    p = cf["scenario"].map({"bear": 0.3, "base": 0.5, "bull": 0.2})
    cash = cf[~cf["item"].str.startswith("terminal_")]
    by_year = (cash["usd"] * p[cash.index]).groupby(cash["month"].str[:4]).sum()
    for j, y in enumerate(years, start=1):
        assert net[j] == pytest.approx(by_year[y], rel=1e-9, abs=1e-3)
    npv_row = next(r for r in grid if str(r[0]).startswith("NPV"))
    assert npv_row[-1] == pytest.approx(summary["npv_usd"], rel=1e-9)


def test_version(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"optimizer {version('mining-hpc-optimizer')}"


def test_help_is_plain_and_has_no_bool_metavar(capsys):
    assert main(["solve", "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text and "--excel" in text
    assert main(["sweep", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    # the example names a lease the demo has, whole (not cut off)
    assert "leases[L3-ailab].rate_usd_per_kw_month=120:180:7" in text and "horizon.discount_rate=0.10,0.12" in text
    assert "L3-ailab" in {l.id for l in load_instance(DEMO).leases}


# ---------------------------------------------------------------- progress


class Recorder:
    """A Reporter that records what it hears."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, label, total=None):
        self.events.append(("start", label, total))

    def advance(self, n=1, label=None):
        self.events.append(("advance", n, label))

    def note(self, message):
        self.events.append(("note", message))

    def finish(self):
        self.events.append(("finish",))


def test_plain_progress_lines_when_not_a_terminal():
    buf = io.StringIO()
    p = TerminalProgress(every_s=0, console=Console(file=buf, force_terminal=False, width=200))
    p.start("breakeven of x", total=3)
    for k in range(3):
        p.advance(1, label=f"breakeven of x: solve {k + 1}")
    p.finish()
    lines = buf.getvalue().splitlines()
    assert lines[0] == "breakeven of x: started (3 steps)"
    assert [l.split(",")[0] for l in lines[1:4]] == ["breakeven of x: solve 1: 1/3 done", "breakeven of x: solve 2: 2/3 done",
                                                     "breakeven of x: solve 3: 3/3 done"]
    assert lines[4].startswith("breakeven of x: solve 3: 3/3 done in ")
    quiet = io.StringIO()
    q = TerminalProgress(every_s=3600, console=Console(file=quiet, force_terminal=False))
    q.start("quick", total=2)
    q.advance(2)
    q.finish()
    assert quiet.getvalue() == ""                 # short work prints nothing; notes always do
    q.note("warning: something")
    assert quiet.getvalue() == "warning: something\n"


def test_solve_reports_each_phase_and_value_of_information():
    rec = Recorder()
    res = solve(load_instance(ROOT / "tests" / "instances" / "stochastic_small.yaml"), progress=rec)
    assert res.solved and res.voi is not None
    labels = [e[2] for e in rec.events if e[0] == "advance" and e[2]]
    phases = [l.split(": ", 1)[1] for l in labels if l.startswith("solve ") and l.split(": ", 1)[1] in PHASES]
    assert phases == list(PHASES)                 # in order, each once
    starts = [e for e in rec.events if e[0] == "start"]
    n = len(load_instance(ROOT / "tests" / "instances" / "stochastic_small.yaml").scenarios)
    assert starts[1] == ("start", "value of information (EVPI, VSS)", n + 2)   # one solve per scenario + 2 (here-and-now re-used)
    assert sum(e[1] for e in rec.events[rec.events.index(starts[1]):] if e[0] == "advance") == res.voi.solves
    assert rec.events.count(("finish",)) == 2


def test_breakeven_and_frontier_report_progress():
    from optimizer.analysis.breakeven import breakeven
    from optimizer.analysis.risk import risk_frontier

    sys.path.insert(0, str(Path(__file__).parent))
    from _sweep_standins import SIGN_RATE, standin

    rec = Recorder()
    res = breakeven(load_instance(TINY), "leases[L1].rate_usd_per_kw_month", 10, 400, target="lease:L1", solver=standin,
                    persistent=False, progress=rec)
    assert abs(res.value - SIGN_RATE) <= res.tolerance
    assert rec.events[0] == ("start", "breakeven of leases[L1].rate_usd_per_kw_month", 40)
    assert sum(e[1] for e in rec.events if e[0] == "advance") == res.n_solves and rec.events[-1] == ("finish",)
    rec = Recorder()
    f = risk_frontier(load_instance(ROOT / "tests" / "instances" / "risk_two.yaml"), [0.0, 1.0], 0.9, progress=rec)
    notes = [e[1] for e in rec.events if e[0] == "note"]
    assert len(f) == 2 and [n.split(":")[0] for n in notes] == ["weight 0", "weight 1"]


# ---------------------------------------------------------------- the tidy API


@pytest.fixture(scope="module")
def tiny_result():
    return solve(load_instance(TINY), value_of_information=False)


def test_frames_have_period_months_and_tidy_allocation(tiny_result):
    r = tiny_result
    for name in ("cashflows", "kpis", "allocation", "site_allocation", "energy"):
        df = getattr(r, name)
        assert isinstance(df["month"].dtype, pd.PeriodDtype) and df["month"].dtype == pd.PeriodDtype("M"), name
    a, wide = r.allocation, r.site_allocation
    assert list(a.columns) == ["site", "month", "owned", "use", "asset", "racks", "mw", "units"]
    assert not any(c.startswith(("units_", "racks_")) for c in a.columns)
    uses = ["mining", "mining_empty", "converting", "hpc_leased", "hpc_unleased"]
    w = wide.set_index(["site", "month"])
    racks = a.groupby(["site", "month", "use"])["racks"].sum().unstack("use").reindex(index=w.index, columns=uses, fill_value=0.0)
    racks = racks.fillna(0.0)
    assert np.allclose(racks["mining"] + racks["mining_empty"], w["mining_racks"])
    assert np.allclose(racks["converting"], w["converting_racks"])
    assert np.allclose(racks["hpc_leased"] + racks["hpc_unleased"], w["hpc_racks"])
    mw = a[a["use"] == "mining"].groupby(["site", "month"])["mw"].sum()
    assert np.allclose(mw.reindex(w.index, fill_value=0.0), w["mining_mw"])
    # the breakdown: ledger order, words, and it sums to the NPV
    bd = r.npv_breakdown
    assert list(bd.columns) == ["item", "label", "kind", "pv_usd"] and bd["pv_usd"].sum() == pytest.approx(r.npv_usd, rel=1e-12)
    # summary: a dict, and callable as before
    assert r.summary["npv_usd"] == r.summary()["npv_usd"] == r.npv_usd


def test_statistics_by_hand():
    # tiny, keep mining: 3,000 units x 3,500 W = 10.5 MW at PUE 1.0, profitable every month (revenue
    # 200 TH x 4.5e-7 BTC/TH/day x 100,000 = 9 USD/day against 3.5 kW x 24 h x 45 USD/MWh = 3.78 USD/day),
    # so all run: 2026-01..06 has 181 days = 4,344 h -> 10.5 x 4,344 = 45,612 MWh, no HPC energy
    inst = load_instance(TINY)
    ev = evaluate(inst, baseline_plan(inst, "keep-mining"))
    e = ev.statistics.energy(by="use").set_index("use")["mwh"]
    assert e["mining"] == pytest.approx(45_612.0, rel=1e-12) and e.get("hpc", 0.0) == 0.0
    # demo: 2 blocks at nd-1 from 2026-01 = 26 MW x 10 M$ = 260 M$ spread evenly over the 18-month lead:
    # 12 months in 2026 -> 173.33 M$, 6 in 2027 -> 86.67 M$
    demo = load_instance(DEMO)
    plan = Plan(conversions=pd.DataFrame({"site": ["nd-1"], "month": ["2026-01"], "blocks": [2]}))
    st = evaluate(demo, plan).statistics
    capex = st.capex(by="year").set_index("year")["usd"]
    assert capex[2026] == pytest.approx(260e6 * 12 / 18, rel=1e-12) and capex[2027] == pytest.approx(260e6 * 6 / 18, rel=1e-12)
    # by site: the expected PVs add up to the NPV; per scenario, to each scenario's NPV
    ev2 = evaluate(demo, plan)
    assert ev2.statistics.npv(by="site")["pv_usd"].sum() == pytest.approx(ev2.npv_usd, rel=1e-12)
    per = ev2.statistics.npv(by="scenario").set_index("scenario")["pv_usd"]
    assert per.to_dict() == pytest.approx(ev2.npv_usd_by_scenario, rel=1e-12)
    with pytest.raises(ValueError, match="unknown key"):
        st.capex(by="colour")


def test_to_xarray(tiny_result):
    pytest.importorskip("xarray")
    ds = tiny_result.to_xarray()
    pv = (ds["pv_usd"].sum(["month", "site", "item"]) * ds["probability"]).sum()
    assert float(pv) == pytest.approx(tiny_result.npv_usd, rel=1e-12)
    assert str(ds["month"].dtype).startswith("datetime64")


def test_no_plan_is_a_clear_error():
    from optimizer.errors import NoSolutionError
    from optimizer.solve.result import Result, SolverReport

    r = Result(SolverReport(status="infeasible", diagnosis=["site s1: HPC racks needed 40 > available 30"]))
    assert not r.has_plan and not r.solved and r.plan_or_none is None
    with pytest.raises(NoSolutionError, match="status infeasible: site s1: HPC racks needed 40 > available 30"):
        _ = r.plan
    with pytest.raises(NoSolutionError):
        _ = r.statistics


# ---------------------------------------------------------------- sweeps: labels and first-stage digest


def test_param_labels():
    assert param_label("leases[L2].rate_usd_per_kw_month") == "lease L2: rate (USD/kW-month)"
    assert param_label("horizon.discount_rate") == "discount rate"
    assert param_label("scenarios[*].btc_price_usd:mul") == "every scenario: BTC price (USD) [x instance value]"
    assert param_label("sites[tx-1].conversion.capex_usd_per_mw") == "site tx-1, conversion: capex (USD/MW)"
    assert param_label("sites[tx-1].conversion.lead_months:add") == "site tx-1, conversion: lead (months) [+ amount]"


def test_points_record_every_first_stage_decision():
    inst = load_instance(DEMO)
    plan = _full_plan(inst)
    d = first_stage_summary(inst, plan)
    # tx-1: 125 racks x 130 kW = 16.25 MW per block; nd-1 13 MW; pa-1 100 x 190 kW = 19 MW (one block each)
    assert (d["converted_mw_tx-1"], d["converted_mw_nd-1"], d["converted_mw_pa-1"]) == pytest.approx((16.25, 13.0, 19.0))
    assert d["leases_signed"] == ";".join(sorted(l.id for l in inst.leases))
    assert d["conversions"] == "nd-1:2026-01x1;pa-1:2026-01x1;tx-1:2026-01x1"
    assert d["contracts_signed"] == "pa-ppa" and d["site_events"] == "sale:pa-1:2030-12"
    assert d["asics_retired_units"] == pytest.approx(sum(u.units for u in inst.fleet.installed) / 2)
    # BTC sold: bear (0.3) 10, base (0.5) and bull (0.2) 20 -> 3 + 10 + 4 = 17
    assert d["btc_sold_expected"] == pytest.approx(17.0)
    from optimizer.analysis.sweep import TAIL_COLUMNS

    assert {"lease_handovers", "conversions", "grid_expansions", "contracts_signed", "site_events",
            "asics_bought_units", "asics_retired_units", "btc_sold_expected"} <= set(TAIL_COLUMNS)
