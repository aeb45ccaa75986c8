"""The HTML report renders every section its data supports, is self-contained, and opens in
headless Chromium without errors. Fixture: tests/fixtures/report_dir (see make_report_dir.py)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from fixtures.make_report_dir import seal

from optimizer.cli import report_command
from optimizer.errors import InputError
from optimizer.output.report import _halvings, _load_context, render_report
from optimizer.solve.resultdir import write_result_dir

FIX = Path(__file__).parent / "fixtures" / "report_dir"
ALL_SECTIONS = ["headline", "decisions", "allocation", "hpc-online", "hashprice", "npv-waterfall", "cashflow",
                "scenario-fan", "sweep", "tornado", "frontier"]
CHARTS = ALL_SECTIONS[2:]        # every section after the headline and the decision tables is a chart


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([a-z-]+)"', html)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    return render_report(FIX, tmp_path_factory.mktemp("rep") / "report.html")


def test_every_section_present_in_order(full_report):
    html = full_report.read_text()
    assert _sections(html) == ALL_SECTIONS
    assert "not-available" not in html          # the fixture has every input, so nothing is missing


def test_self_contained(full_report):
    html = full_report.read_text()
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html
    srcs = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(srcs) == len(CHARTS)               # one embedded figure per chart section
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        png = base64.b64decode(s.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_headline_numbers(full_report):
    html = full_report.read_text()
    s = json.loads((FIX / "summary.json").read_text())
    # The fixture sets each baseline to NPV minus a round amount, so the uplifts are those amounts:
    # keep_mining 12.4e6 -> "$12.40M", convert_all_early 41.0e6 -> "$41.00M", greedy 3.1e6 -> "$3.10M".
    for up in ("$12.40M", "$41.00M", "$3.10M"):
        assert f"<td>{up}</td>" in html
    npv_m = s["npv_usd"] / 1e6
    assert f"${npv_m:,.2f}M" in html
    # gap 9,000 / NPV, in percent with 3 significant digits
    assert f"{100 * 9000 / s['npv_usd']:.3g} %" in html
    # the waterfall note: line items sum to the NPV (the fixture derives both from cashflows.csv)
    assert f"Sum of line items ${npv_m:,.2f}M; reported NPV ${npv_m:,.2f}M." in html


def _html_tables(fragment: str) -> list[pd.DataFrame]:
    """The <table>s of an HTML fragment as DataFrames of strings (no lxml needed)."""
    out = []
    for t in re.findall(r"<table.*?</table>", fragment, flags=re.S):
        rows = [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r, flags=re.S) for r in re.findall(r"<tr.*?</tr>", t, flags=re.S)]
        out.append(pd.DataFrame([[c.strip() for c in r] for r in rows[1:]], columns=[c.strip() for c in rows[0]]))
    return out


def test_decision_tables_with_sizes_from_instance(full_report):
    html = full_report.read_text()
    tables = _html_tables(html.split('id="decisions"')[1].split("</section>")[0])
    leases = next(t for t in tables if "lease" in t.columns)
    assert leases[["lease", "site", "month"]].values.tolist() == [["L1", "tx1", "2028-07"], ["L2", "tx1", "2028-10"]]
    assert leases["it_mw"].tolist() == ["5", "4"]        # from instance.yaml
    conv = next(t for t in tables if "blocks" in t.columns)
    assert conv[["site", "month", "hpc_mw"]].values.tolist() == [["tx1", "2028-01", "10"]]  # 2 blocks x 50 racks x 100 kW
    contracts = next(t for t in tables if "contract" in t.columns)
    assert contracts.values.tolist() == [["nd1-gas", "False"]]


def test_halving_date_from_block_height():
    # start_height 1,037,500; halving at 1,050,000: 12,500 blocks / 144 per day = 86.81 days
    # after 2028-01-01 (Jan 31 + Feb 29 = 60 days) -> day 26.81 of March -> 2028-03-27.
    ctx = _load_context(FIX, None)
    (when, height), = _halvings(ctx)
    assert height == 1_050_000
    assert when.strftime("%Y-%m-%d") == "2028-03-27"
    assert ctx.probs == {"bull": 0.4, "bear": 0.6}


def _copy_fixture(tmp_path: Path, drop=(), instance=True) -> Path:
    d = tmp_path / "res"
    shutil.copytree(FIX, d)
    for name in drop:
        (d / name).unlink()
    if not instance:
        (d / "instance.yaml").unlink()
        s = json.loads((d / "summary.json").read_text())
        s.pop("instance_path")
        (d / "summary.json").write_text(json.dumps(s))
    seal(d)                                        # the copy, as edited, is a complete directory
    return d


def test_absent_data_omits_sections_and_lists_them(tmp_path):
    d = _copy_fixture(tmp_path, drop=("points.csv", "tornado.csv", "frontier.csv"), instance=False)
    html = render_report(d).read_text()
    assert (d / "report.html").is_file()
    assert _sections(html) == ALL_SECTIONS[:8] + ["not-available"]
    for title in ("Sweep curves (needs points.csv)", "Tornado (needs tornado.csv)", "Risk frontier (needs frontier.csv)"):
        assert f"not available: {title}" in html
    assert "weighted equally" in html              # no instance: probabilities unknown, said so
    assert "Halving not marked: no instance available." in html


def test_waterfall_from_cashflows_when_breakdown_lacks_items(tmp_path):
    # an npv_breakdown.csv written without its item index: the waterfall is rebuilt from cashflows.csv
    # as sum over rows of probability x pv_usd (bull 0.4, bear 0.6), which is the NPV by definition
    d = _copy_fixture(tmp_path)
    pd.read_csv(d / "npv_breakdown.csv")[["pv_usd"]].to_csv(d / "npv_breakdown.csv", index=False)
    html = render_report(d).read_text()
    assert "npv-waterfall" in _sections(html)
    npv = json.loads((d / "summary.json").read_text())["npv_usd"]
    assert f"Sum of line items ${npv / 1e6:,.2f}M; reported NPV ${npv / 1e6:,.2f}M." in html


def test_many_scenarios_drawn_as_bands(tmp_path):
    # 24 scenarios (copies of bull/bear scaled) switch the hashprice, margin and cumulative-PV
    # charts to quantile bands and the NPV bars to a histogram; all sections still render.
    d = _copy_fixture(tmp_path, instance=False)
    cf, k = pd.read_csv(d / "cashflows.csv"), pd.read_csv(d / "kpis.csv")
    cfs, ks = [], []
    for i in range(24):
        f, base = 0.8 + 0.02 * i, ("bull" if i % 2 else "bear")
        c = cf[cf["scenario"] == base].assign(scenario=f"s{i}")
        c[["usd", "pv_usd"]] *= f
        cfs.append(c)
        ks.append(k[k["scenario"] == base].assign(scenario=f"s{i}"))
    pd.concat(cfs).to_csv(d / "cashflows.csv", index=False)
    pd.concat(ks).to_csv(d / "kpis.csv", index=False)
    s = json.loads((d / "summary.json").read_text())
    s["npv_usd_by_scenario"] = {}                     # fall back to cashflows.csv for per-scenario NPVs
    (d / "summary.json").write_text(json.dumps(s))
    html = render_report(d).read_text()
    assert _sections(html) == ALL_SECTIONS + ["not-available"]   # the only note: equal weights
    assert "weighted equally" in html


def test_infeasible_result_renders_headline_only(tmp_path):
    d = write_result_dir(tmp_path / "res", {"instance": "x", "status": "infeasible", "npv_usd": None,
                                            "diagnosis": ["site s1: HPC racks needed 40 > available 30"]}, {})
    html = render_report(d).read_text()
    assert _sections(html) == ["headline", "not-available"]
    assert "site s1: HPC racks needed 40 &gt; available 30" in html
    assert "not available: Allocation over time per site (needs plan.csv)" in html


def test_bad_directory_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(InputError, match="result directory not found"):
        render_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert report_command(tmp_path / "empty") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no summary.json or result tables" in err


def test_report_command_prints_path(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert report_command(FIX, out) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.stat().st_size > 100_000


# ---------------------------------------------------------------- headless browser


def _chromium() -> str:
    exe = os.environ.get("CHROMIUM") or next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                                              if shutil.which(n)), None)
    if not exe:
        pytest.fail("chromium not found: install it with `apt-get install -y chromium` or set CHROMIUM=/path/to/it (`make test` does the install)")
    return exe


def _chromium_args(exe: str, profile: Path) -> list[str]:
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0"]


def test_opens_in_headless_chromium_with_screenshot(full_report, tmp_path):
    exe = _chromium()
    png = tmp_path / "report.png"
    url = full_report.resolve().as_uri()
    shot = subprocess.run(_chromium_args(exe, tmp_path / "p1") + [f"--screenshot={png}", "--window-size=1400,4000", url],
                          capture_output=True, text=True, timeout=180)
    assert png.is_file(), f"no screenshot; chromium said: {shot.stderr[-2000:]}"
    assert png.stat().st_size > 10_000
    console = [l for l in shot.stderr.splitlines() if "CONSOLE" in l]
    assert not [l for l in console if "Uncaught" in l or "Failed to load resource" in l], console
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1400, 4000)
        colors = im.convert("RGB").resize((140, 400)).getcolors(maxcolors=100_000)
        assert colors is not None and len(colors) > 200      # charts drawn, not a blank page
    dom = subprocess.run(_chromium_args(exe, tmp_path / "p2") + ["--dump-dom", url],
                         capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _sections(dom.stdout) == ALL_SECTIONS
    assert dom.stdout.count("<img") == len(CHARTS)


def test_renders_an_evaluation_directory_of_tiny(tmp_path):
    """End to end on the real evaluator's output (the evaluate --out writer): tiny.yaml under
    the convert-asap baseline converts 3 blocks in 2026-01 and hands L1 (1 MW) over in 2026-03."""
    from optimizer.evaluate import baseline_plan, evaluate
    from optimizer.instance.loading import load_instance
    from optimizer.solve.resultdir import write_result_dir

    tiny = Path(__file__).parents[1] / "instances" / "tiny.yaml"
    inst = load_instance(tiny)
    ev = evaluate(inst, baseline_plan(inst, "convert-asap"))
    d = write_result_dir(tmp_path / "ev", ev.summary(inst.name, "convert-asap"), ev.tables(), ev.plan)
    html = render_report(d, instance=tiny).read_text()
    assert _sections(html) == ALL_SECTIONS[:8] + ["not-available"]
    assert "evaluated plan convert-asap" in html
    leases = next(t for t in _html_tables(html.split('id="decisions"')[1].split("</section>")[0]) if "lease" in t.columns)
    assert leases[["lease", "site", "month", "it_mw"]].values.tolist() == [["L1", "s1", "2026-03", "1"]]
    assert "Halving not marked: it falls outside the horizon." in html   # 2026-01..06, halving ~2028
