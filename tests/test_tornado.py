"""Tornado: one-at-a-time low/high NPVs ranked by swing (stand-in closed form)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _sweep_standins import standin

from optimizer.analysis.tornado import plot_tornado, tornado
from optimizer.cli import tornado_command
from optimizer.errors import InputError
from optimizer.instance import Instance

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "instances" / "tiny.yaml"
RATE = "leases[L1].rate_usd_per_kw_month"

# stand-in on tiny: npv = 1000 x 1 MW x rate x 12 + 1e6 x btc_scale - 1e7 x discount_rate
# base: 12_000 x 150 + 1_000_000 - 1_200_000 = 1_600_000
PARAMS = {
    RATE: ({"mul": 0.8}, {"mul": 1.2}),                 # rate 120 / 180: 1,240,000 / 1,960,000 -> swing +720,000
    "horizon.discount_rate": (0.08, 0.16),               # 2,000,000 / 1,200,000 -> swing -800,000
    "scenarios[*].btc_price_usd.scale": (0.9, 1.1),      # 1,500,000 / 1,700,000 -> swing +200,000
}


@pytest.fixture(scope="module")
def tiny() -> Instance:
    return Instance.from_yaml(TINY)


def test_tornado_values_and_ranking(tiny, tmp_path):
    df = tornado(tiny, PARAMS, solver=standin, out_dir=tmp_path, progress=False)
    assert list(df["parameter"]) == ["horizon.discount_rate", RATE, "scenarios[*].btc_price_usd.scale"]
    assert (df["base_npv_usd"] == 1_600_000).all()
    exp = {"horizon.discount_rate": (2_000_000, 1_200_000), RATE: (1_240_000, 1_960_000),
           "scenarios[*].btc_price_usd.scale": (1_500_000, 1_700_000)}
    for r in df.itertuples():
        lo, hi = exp[r.parameter]
        assert r.npv_low_usd == pytest.approx(lo) and r.npv_high_usd == pytest.approx(hi)
        assert r.swing_usd == pytest.approx(hi - lo)
    assert df.loc[1, "kind"] == "mul" and (df.loc[1, "low"], df.loc[1, "high"]) == (0.8, 1.2)
    # 1 base + 2 x 3 one-at-a-time points, stored for resume
    assert len(__import__("pandas").read_csv(tmp_path / "tornado_points.csv")) == 7
    assert not (tmp_path / "points.csv").exists()       # a sweep may share the directory
    png = plot_tornado(df, tmp_path / "t.png")
    assert png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG"


def test_tornado_spec_strings_and_errors(tiny):
    df = tornado(tiny, [f"{RATE}=x0.8,1.2", "horizon.discount_rate=0.08,0.16"], solver=standin, progress=False)
    assert set(df["parameter"]) == {RATE, "horizon.discount_rate"}
    with pytest.raises(InputError, match="exactly two values"):
        tornado(tiny, [f"{RATE}=1,2,3"], solver=standin, progress=False)
    with pytest.raises(InputError, match="no item with id"):
        tornado(tiny, {"leases[zz].rate_usd_per_kw_month": (1, 2)}, solver=standin, progress=False)


def test_failed_solve_ranks_last(tiny):
    # rate x 1.2 = 180 > 170 fails in the stand-in; the other parameters still get their row
    df = tornado(tiny, PARAMS, solver=standin, progress=False, fail_above_rate=170)
    assert df.iloc[-1]["parameter"] == RATE and "refuses" in df.iloc[-1]["error"]
    assert (df.iloc[:-1]["error"] == "").all()


def test_tornado_command(tmp_path, capsys):
    assert tornado_command(TINY, [f"{RATE}=x0.8,1.2"], tmp_path, solver=standin, progress=False) == 0
    assert (tmp_path / "tornado.csv").exists() and (tmp_path / "tornado.png").exists()
    assert tornado_command(TINY, ["nope.field=1,2"], None, solver=standin, progress=False) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_real_tornado_lease_rate_raises_npv(tiny):
    df = tornado(tiny, {RATE: ({"mul": 0.5}, {"mul": 2.0})}, progress=False)
    assert df.loc[0, "error"] == ""
    # doubling the rent can only help: the plan at half the rent stays feasible
    assert df.loc[0, "npv_low_usd"] <= df.loc[0, "base_npv_usd"] + 1e-6 <= df.loc[0, "npv_high_usd"] + 2e-6
