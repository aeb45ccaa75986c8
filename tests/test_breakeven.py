"""Breakeven search: on the stand-in (closed form) and, once the MILP exists, on an instance
whose breakeven is worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _sweep_standins import SIGN_RATE, StandinPersistent, standin

from optimizer import manifest
from optimizer.analysis.breakeven import BracketError, breakeven
from optimizer.cli import breakeven_command
from optimizer.errors import InputError
from optimizer.instance import Instance

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny.yaml"
RATE = "leases[L1].rate_usd_per_kw_month"



@pytest.fixture(scope="module")
def tiny() -> Instance:
    return Instance.from_yaml(TINY)


def test_npv_crossing_linear_standin(tiny):
    # stand-in on tiny: npv = 12_000 * rate - 200_000 (see _sweep_standins); npv = 1_000_000
    # at 12_000 * rate = 1_200_000 -> rate = 100
    res = breakeven(tiny, RATE, 37.0, 211.0, target="npv=1000000", solver=standin, abs_tol=1e-3, rel_tol=0)
    assert res.converged
    assert abs(res.value - 100.0) <= 1e-3
    assert res.bracket[0] <= 100.0 + 1e-9 and res.bracket[1] >= 100.0 - 1e-9
    assert res.n_solves == len(res.history) and res.n_solves <= 6    # regula falsi on a line: a few solves
    assert res.tolerance == 1e-3
    assert list(res.history[RATE][:2]) == [37.0, 211.0]             # the bracket ends are solved first


def test_npv_crossing_on_a_multiplier(tiny):
    # rate = 150 x m; 12_000 x 150 x m - 200_000 = 1_000_000 -> m = 1_200_000 / 1_800_000 = 2/3
    res = breakeven(tiny, RATE, 0.3, 1.7, kind="mul", target="npv=1e6", solver=standin, abs_tol=1e-6, rel_tol=0)
    assert abs(res.value - 2 / 3) <= 1e-6


def test_decision_flip_bisection(tiny):
    # the stand-in signs L1 (and converts 1 MW at s1) iff rate >= 125
    for target in ("signed:L1", "converts:s1", "lease:L1", "convert:s1"):   # with the CLI's aliases
        res = breakeven(tiny, RATE, 50.0, 200.0, target=target, solver=StandinPersistent, abs_tol=0.01, rel_tol=0)
        assert res.converged and abs(res.value - SIGN_RATE) <= 0.01
        a, b = res.bracket
        assert a < SIGN_RATE <= b and b - a <= 0.01
        # bisection from width 150 to <= 0.01 takes ceil(log2(150 / 0.01)) = 14 halvings, + 2 end solves
        assert res.n_solves == 2 + 14
        assert set(res.history["target_value"]) == {0.0, 1.0}


def test_no_sign_change_is_a_one_line_error(tiny):
    # npv(150) = 1_600_000 and npv(200) = 2_200_000, both above 1e6
    with pytest.raises(BracketError) as e:
        breakeven(tiny, RATE, 150.0, 200.0, target="npv=1000000", solver=standin)
    assert "same sign" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BracketError, match="at both ends"):
        breakeven(tiny, RATE, 130.0, 200.0, target="signed:L1", solver=standin)


@pytest.mark.parametrize("kw, words", [
    ({"target": "converts:nowhere"}, "unknown site"),
    ({"target": "signed:L7"}, "unknown lease"),
    ({"target": "bogus"}, "expected npv"),
    ({"lo": 200.0, "hi": 100.0}, "lo < hi"),
])
def test_bad_arguments(tiny, kw, words):
    args = {"lo": 50.0, "hi": 200.0, **kw}
    lo, hi = args.pop("lo"), args.pop("hi")
    with pytest.raises(InputError, match=words):
        breakeven(tiny, RATE, lo, hi, solver=standin, **args)


def test_bad_path_fails_before_solving(tiny, tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    monkeypatch.setenv("STANDIN_CALL_LOG", str(log))
    with pytest.raises(InputError, match="no item with id 'L9'"):
        breakeven(tiny, "leases[L9].rate_usd_per_kw_month", 50, 200, solver=standin)
    assert not log.exists()


def test_breakeven_command(tmp_path, capsys):
    code = breakeven_command(TINY, RATE, "x0.3", "x1.7", target="npv=1e6", abs_tol=1e-6, rel_tol=0,
                             out=tmp_path, solver=standin)
    assert code == 0
    assert "0.6666666" in capsys.readouterr().out                   # m = 2/3 as above
    # written like every result: each file whole, then a manifest naming both (kind breakeven)
    assert manifest.check_complete(tmp_path) == ["breakeven.json", "breakeven_history.csv"]
    assert manifest.kind_of(tmp_path) == "breakeven"
    meta = json.loads((tmp_path / "breakeven.json").read_text())
    assert meta["value"] == pytest.approx(2 / 3, rel=1e-6) and meta["converged"] is True
    assert len(pd.read_csv(tmp_path / "breakeven_history.csv")) == meta["n_solves"]
    assert breakeven_command(TINY, RATE, "150", "200", target="npv=1e6", solver=standin) == 2
    assert "same sign" in capsys.readouterr().err
    assert breakeven_command(TINY, RATE, "x0.5", "200", solver=standin) == 2


# ---------------------------------------------------------------- the real MILP, by hand

# One site, one lease, constant prices, no ASICs, no discounting: converting one block
# (10 racks x 100 kW = 1 MW) costs 1.2 M USD in 2026-01 (lead 0) and lets L1 (1 MW, 4-month term,
# hand-over only in 2026-01, NOI margin 1) run Jan-Apr 2026 inside the 4-month horizon.
#   rent       = 1000 kW x R USD/kW-month x 4 months          = 4000 R
#   HPC energy = 1 MW x PUE 1.25 x (31+28+31+30) days x 24 h x 50 USD/MWh
#              = 1.25 x 2880 x 50                             = 180,000
#   capex      = 1 MW x 1,200,000                             = 1,200,000
# NPV(sign) = 4000 R - 1,380,000; NPV(no lease) = 0 (nothing else earns or costs anything).
# Signing pays from R = 1,380,000 / 4000 = 345 USD/kW-month; NPV = 100,000 at R = 1,480,000 / 4000 = 370.
HAND = {
    "name": "breakeven-by-hand",
    "horizon": {"start_month": "2026-01", "periods": 4, "discount_rate": 0.0},
    "bitcoin": {"start_height": 930000},
    "scenarios": [{"name": "base", "probability": 1.0, "btc_price_usd": 100000, "network_hashrate_eh_s": 1000,
                   "power_price_usd_per_mwh": {"m": 50}}],
    "sites": [{"id": "s1", "market": "m", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.25,
               "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h1", "use": "mining", "racks": 10}],
               "conversion": {"racks_per_block": 10, "capex_usd_per_mw": 1200000, "lead_months": 0}}],
    "fleet": {"asic_models": [{"name": "m200", "hashrate_th_s": 200, "power_w": 3500}], "installed": []},
    "contracts": [{"id": "idx", "site": "s1", "kind": "index", "adder_usd_per_mwh": 0}],
    "leases": [{"id": "L1", "it_mw": 1.0, "rate_usd_per_kw_month": 300, "term_months": 4,
                "window_start": "2026-01", "window_end": "2026-01", "noi_margin": 1.0}],
}


def test_real_breakeven_known_by_hand():
    inst = Instance.from_dict(HAND)
    res = breakeven(inst, RATE, 200.0, 500.0, target="signed:L1", abs_tol=0.05, rel_tol=0)
    assert res.converged and abs(res.value - 345.0) <= 0.05, res.summary()
    res = breakeven(inst, RATE, 350.0, 500.0, target="npv=100000", abs_tol=1e-3, rel_tol=0)
    assert res.converged and abs(res.value - 370.0) <= 1e-3, res.summary()
