"""Value of information: EVPI = WS - RP >= 0 and VSS = RP - EEV >= 0 on every stochastic
instance; both 0 when one scenario holds all the probability; the mean-value instance and the
fixed-first-stage re-solve behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.instance import Instance
from optimizer.solve import solve
from optimizer.instance.variants import mean_value_instance, scenario_instance
from optimizer.solve.voi import value_of_information

ROOT = Path(__file__).parent.parent
TWO = Path(__file__).parent / "instances" / "risk_two.yaml"
GAP = 1e-6
TIGHT = {"mip_gap": GAP, "baselines": False, "shadow_prices": False}
BUST_NPV = 2_089_184.79  # bust optimum of risk_two.yaml, hand calculation in tests/test_risk.py


def _stochastic_instances() -> list[Path]:
    out = []
    for f in sorted((ROOT / "instances").glob("*.yaml")):
        if len(Instance.from_yaml(f).scenarios) > 1:
            out.append(f)
    return out


@pytest.mark.parametrize("path", _stochastic_instances(), ids=lambda p: p.stem)
@pytest.mark.slow
def test_evpi_and_vss_are_nonnegative(path):
    inst = Instance.from_yaml(path)
    r = solve(inst, **TIGHT)
    r.verify()
    v = r.voi
    assert v is not None and not v.notes, v.notes
    # every solve stops within the relative gap GAP: values may be off by GAP x |NPV|
    tol = 2 * GAP * max(abs(v.wait_and_see_usd), abs(v.here_and_now_usd)) + 1.0
    assert v.evpi_usd >= -tol and v.vss_usd >= -tol
    # the definitions: WS = sum_w p_w max NPV_w, EVPI = WS - RP, VSS = RP - EEV
    ws = sum(s.probability * v.wait_and_see_by_scenario_usd[s.name] for s in inst.scenarios)
    assert v.wait_and_see_usd == pytest.approx(ws, rel=1e-12)
    assert v.evpi_usd == pytest.approx(v.wait_and_see_usd - r.npv_usd, abs=1e-6)
    assert v.vss_usd == pytest.approx(r.npv_usd - v.mean_value_plan_usd, abs=1e-6)
    s = r.summary()
    assert s["evpi_usd"] == v.evpi_usd and s["vss_usd"] == v.vss_usd


def test_both_zero_when_one_scenario_has_all_the_probability():
    inst = Instance.from_yaml(TWO)
    scen = [inst.scenarios[0].model_copy(update={"probability": 1.0}),
            inst.scenarios[1].model_copy(update={"probability": 0.0})]
    one = inst.model_copy(update={"scenarios": scen})
    v = value_of_information(one, **TIGHT)
    tol = GAP * abs(v.here_and_now_usd) + 1.0
    assert v.evpi_usd == pytest.approx(0.0, abs=tol)
    assert v.vss_usd == pytest.approx(0.0, abs=tol)


def test_wait_and_see_of_risk_two_uses_the_hand_optimum():
    inst = Instance.from_yaml(TWO)
    v = solve(inst, **TIGHT).voi
    # bust solved alone has the hand-computed optimum; EVPI > 0: the here-and-now plan cannot
    # both keep mining for boom and convert at once for bust
    assert v.wait_and_see_by_scenario_usd["bust"] == pytest.approx(BUST_NPV, abs=0.01)
    assert v.evpi_usd > 1e4


def test_mean_value_instance_is_the_probability_weighted_path():
    inst = Instance.from_yaml(TWO)
    mv = mean_value_instance(inst)
    assert [s.name for s in mv.scenarios] == ["mean"] and mv.scenarios[0].probability == 1.0
    tl = inst.timeline
    # 0.5 x 150,000 + 0.5 x 30,000 = 90,000 USD every month; hashrate and power are the same in both
    assert list(mv.scenarios[0].btc_price_usd.monthly(tl.start, tl.n_months)) == pytest.approx([90_000.0] * 6)
    assert list(mv.scenarios[0].network_hashrate_eh_s.monthly(tl.start, tl.n_months)) == pytest.approx([1000.0] * 6)
    assert list(mv.scenarios[0].power_price_usd_per_mwh["ercot"].monthly(tl.start, tl.n_months)) == pytest.approx([40.0] * 6)
    sub = scenario_instance(inst, 1)
    assert [(s.name, s.probability) for s in sub.scenarios] == [("bust", 1.0)]


def test_fixed_first_stage_reproduces_the_optimum():
    inst = Instance.from_yaml(ROOT / "instances" / "demo.yaml")
    rp = solve(inst, value_of_information=False, **TIGHT)
    fixed = solve(inst, first_stage=rp.plan, **TIGHT)
    fixed.verify()
    assert fixed.n_integer == 0  # integers fixed: the re-solve is an LP
    assert fixed.npv_usd == pytest.approx(rp.npv_usd, rel=2 * GAP)
    for table in ("conversions", "leases", "contracts", "site_events"):
        a, b = getattr(rp.plan, table), getattr(fixed.plan, table)
        assert a.reset_index(drop=True).equals(b.reset_index(drop=True)), table
