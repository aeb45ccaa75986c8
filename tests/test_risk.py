"""Risk: the discrete CVaR, the risk-averse objective (1 - w) E[NPV] + w CVaR, the frontier, the CLI.

Expected values are closed forms or hand calculations written out below; the worst-case test
also checks against the worse scenario solved alone (an independent route).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from optimizer.analysis.risk import risk_frontier
from optimizer.cli import main
from optimizer.instance import Instance, Risk
from optimizer.instance.variants import scenario_instance
from optimizer.kernel.finance import cvar_usd
from optimizer.solve import solve

HERE = Path(__file__).parent
TWO = HERE / "instances" / "risk_two.yaml"
SMALL = HERE / "instances" / "stochastic_small.yaml"
TIGHT = {"mip_gap": 1e-6, "baselines": False, "shadow_prices": False, "value_of_information": False}


@pytest.fixture(scope="module")
def two() -> Instance:
    return Instance.from_yaml(TWO)


# ---------------------------------------------------------------- discrete CVaR


def test_cvar_closed_forms():
    v, p = [10.0, 20.0, 30.0, 40.0], [0.25] * 4
    assert cvar_usd(v, p, 0.0) == pytest.approx(25.0)             # alpha 0: the mean
    assert cvar_usd(v, p, 0.75) == pytest.approx(10.0)            # tail 0.25 = the worst atom exactly
    assert cvar_usd(v, p, 0.99) == pytest.approx(10.0)            # tail inside the worst atom
    # tail 0.4: all of 10 (0.25) and 0.15 of 20: (0.25 x 10 + 0.15 x 20) / 0.4 = 5.5 / 0.4
    assert cvar_usd(v, p, 0.6) == pytest.approx(13.75)
    # unsorted, unequal: -3 (0.3), 5 (0.1), 8 (0.6); tail 0.5 = 0.3 of -3, 0.1 of 5, 0.1 of 8
    # (-0.9 + 0.5 + 0.8) / 0.5 = 0.8; Rockafellar-Uryasev at eta = 8 (the quantile):
    # 8 - (0.3 x 11 + 0.1 x 3) / 0.5 = 8 - 7.2 = 0.8, and at eta = 5: 5 - 0.3 x 8 / 0.5 = 0.2 < 0.8
    assert cvar_usd([5.0, -3.0, 8.0], [0.1, 0.3, 0.6], 0.5) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="alpha"):
        cvar_usd(v, p, 1.0)


# ---------------------------------------------------------------- the objective


def test_weight_zero_is_the_risk_neutral_optimum(two):
    neutral = solve(two, **TIGHT)
    via_options = solve(two, cvar_weight=0.0, cvar_alpha=0.9, **TIGHT)
    via_instance = solve(two.model_copy(update={"risk": Risk(weight=0.0, alpha=0.5)}), **TIGHT)
    for r in (neutral, via_options, via_instance):
        r.verify()
        assert r.npv_usd == pytest.approx(neutral.npv_usd, rel=1e-9)
    assert via_options.cvar_alpha == 0.9 and via_instance.cvar_alpha == 0.5


def bust_npv_by_hand() -> float:
    """Hand calculation of the bust optimum (risk_two.yaml): retire 3,000 units in 2026-01
    (+1,500,000 salvage), conversion capex 1 MW x 1 M$ spread over the 2-month lead
    (-500,000 in 2026-01 and 2026-02), L1 handed over in 2026-03: each month NOI
    200,000 - 10% opex = 180,000 minus HPC power 1 MW x 1.2 x hours x 45 USD/MWh.
    Discount factor of month t: 1.12^(-(t+1)/12). The 8 lease months after the horizon
    (Jul..Feb) add NOI 180,000 minus power at the last market price 40 USD/MWh, each
    discounted (1.12)^(-k/12) to the horizon end, then with the June factor."""
    df = [1.12 ** (-(t + 1) / 12) for t in range(6)]
    hours = [31 * 24, 28 * 24, 31 * 24, 30 * 24, 31 * 24, 30 * 24]
    flows = [1_500_000 - 500_000, -500_000] + [180_000 - 1.2 * h * 45 for h in hours[2:]]
    after_days = [31, 31, 30, 31, 30, 31, 31, 28]
    terminal = sum((180_000 - 1.2 * 24 * d * 40) * 1.12 ** (-k / 12) for k, d in enumerate(after_days, 1))
    return sum(f * d for f, d in zip(flows, df)) + df[5] * terminal   # = 2,089,184.79 USD


def test_weight_one_alpha_near_one_is_the_worst_case_optimum(two):
    bust_npv = bust_npv_by_hand()

    alone = solve(scenario_instance(two, 1), **TIGHT)                     # bust with probability 1
    assert alone.npv_usd == pytest.approx(bust_npv, rel=1e-7)

    # tail mass 1 - 0.9 = 0.1 < 0.5: CVaR is the worse NPV, and the worse scenario is always bust
    r = solve(two, cvar_weight=1.0, cvar_alpha=0.9, **TIGHT)
    r.verify()  # also checks the model's CVaR against the evaluator's
    assert r.cvar_usd == pytest.approx(bust_npv, rel=1e-7)
    assert r.cvar_model_usd == pytest.approx(bust_npv, rel=1e-7)
    assert r.npv_usd_by_scenario["bust"] == pytest.approx(bust_npv, rel=1e-7)
    assert list(r.plan.leases.itertuples(index=False, name=None)) == [("L1", "s1", "2026-03", 1.0)]
    # the risk-neutral plan keeps mining longer: more in boom, less in bust
    n = solve(two, **TIGHT)
    assert n.npv_usd_by_scenario["boom"] > r.npv_usd_by_scenario["boom"] + 1e6
    assert n.npv_usd_by_scenario["bust"] < bust_npv - 1e3
    assert n.npv_usd > r.npv_usd


def test_mid_weight_model_cvar_equals_evaluator_cvar(two):
    r = solve(two, cvar_weight=0.5, cvar_alpha=0.3, **TIGHT)
    r.verify()
    by = r.npv_usd_by_scenario
    lo, hi = min(by.values()), max(by.values())
    # tail 0.7 = all of the worse (0.5) + 0.2 of the better: (0.5 lo + 0.2 hi) / 0.7
    assert r.cvar_usd == pytest.approx((0.5 * lo + 0.2 * hi) / 0.7, rel=1e-12)
    assert r.cvar_model_usd == pytest.approx(r.cvar_usd, rel=1e-6)


# ---------------------------------------------------------------- frontier


@pytest.mark.slow
def test_frontier_is_monotone():
    inst = Instance.from_yaml(SMALL)
    ws = [0.0, 0.25, 0.5, 0.75, 1.0]
    f = risk_frontier(inst, ws, 0.9, mip_gap=1e-6)
    assert list(f["weight"]) == ws and (f["status"] == "optimal").all()
    # a looser weight-0 optimum would beat itself: tolerance = gap x |objective| + 1 USD
    tol = 1e-6 * f["expected_npv_usd"].abs().max() + 1.0
    e, c = f["expected_npv_usd"].to_numpy(), f["cvar_usd"].to_numpy()
    for k in range(len(ws) - 1):
        assert e[k + 1] <= e[k] + tol, f"E[NPV] rose from w={ws[k]} to w={ws[k + 1]}"
        assert c[k + 1] >= c[k] - tol, f"CVaR fell from w={ws[k]} to w={ws[k + 1]}"
    assert e[0] > e[-1] and c[-1] > c[0]  # this instance has a real trade-off
    for col in ("converted_mw_tx-1", "converted_mw_nd-1", "leases_signed"):
        assert col in f.columns


# ---------------------------------------------------------------- CLI


def test_cli_solve_writes_risk_and_value_of_information(tmp_path, capsys):
    code = main(["solve", str(TWO), "--out", str(tmp_path), "--gap", "1e-6", "--risk-weight", "0.5",
                 "--risk-alpha", "0.9", "--no-baselines"])
    assert code == 0, capsys.readouterr().err
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["risk"]["weight"] == 0.5 and s["risk"]["alpha"] == 0.9
    # alpha 0.9 with two 50% scenarios: CVaR = the worse scenario's NPV
    assert s["risk"]["cvar_usd"] == pytest.approx(min(s["npv_usd_by_scenario"].values()), rel=1e-12)
    assert s["evpi_usd"] is not None and s["evpi_usd"] >= -1.0
    assert s["vss_usd"] is not None and s["vss_usd"] >= -1.0
    code = main(["solve", str(TWO), "--out", str(tmp_path / "novoi"), "--no-voi", "--no-baselines"])
    s = json.loads((tmp_path / "novoi" / "summary.json").read_text())
    assert code == 0 and s["evpi_usd"] is None and s["risk"]["weight"] == 0.0


def test_cli_bad_risk_options(tmp_path, capsys):
    assert main(["solve", str(TWO), "--out", str(tmp_path), "--risk-weight", "1.5"]) == 2
    assert "--risk-weight: must be in [0, 1]" in capsys.readouterr().err
    assert main(["frontier", str(TWO), "--out", str(tmp_path), "--weights", "0,x"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_cli_frontier_writes_table_and_chart(tmp_path, capsys):
    code = main(["frontier", str(TWO), "--weights", "0,0.5,1", "--alpha", "0.9", "--out", str(tmp_path), "--gap", "1e-6"])
    assert code == 0, capsys.readouterr().err
    f = pd.read_csv(tmp_path / "frontier.csv")
    assert list(f["weight"]) == [0.0, 0.5, 1.0]
    for col in ("alpha", "expected_npv_usd", "cvar_usd", "converted_mw_s1", "leases_signed"):
        assert col in f.columns
    png = (tmp_path / "frontier.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    # weight 1: one block of 10 racks x 100 kW = 1 MW converted, L1 signed (the bust optimum)
    assert f["converted_mw_s1"].iloc[-1] == pytest.approx(1.0)
    assert f["leases_signed"].iloc[-1] == "L1@s1:2026-03"


def test_instance_risk_section_is_the_default(two):
    inst = Instance.from_dict({**two.model_dump(mode="json", exclude_unset=True), "risk": {"weight": 1.0, "alpha": 0.9}},
                              base_dir=TWO.parent)
    r = solve(inst, **TIGHT)
    assert (r.cvar_weight, r.cvar_alpha) == (1.0, 0.9)
    # same plan as the explicit weight-1 solve: the bust optimum's NPV in bust (hand calculation above)
    assert r.npv_usd_by_scenario["bust"] == pytest.approx(bust_npv_by_hand(), rel=1e-7)
    assert solve(inst, cvar_weight=0.0, **TIGHT).cvar_weight == 0.0  # an explicit option wins


def test_cvar_at_alpha_zero_is_the_mean(two):
    # alpha = 0: the tail is the whole distribution, CVaR_0 = E[NPV]; any weight then gives the
    # E[NPV] optimum, and the model's CVaR equals the probability-weighted mean of its NPVs
    r = solve(two, cvar_weight=0.5, cvar_alpha=0.0, **TIGHT)
    r.verify()
    by = r.npv_usd_by_scenario
    mean = sum(p * by[s.name] for s, p in zip(two.scenarios, (s.probability for s in two.scenarios)))
    assert r.cvar_usd == pytest.approx(mean, rel=1e-12)
    assert r.cvar_model_usd == pytest.approx(mean, rel=1e-6)
    assert r.objective_usd == pytest.approx(solve(two, **TIGHT).objective_usd, rel=1e-6)
