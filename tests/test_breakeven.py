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
    # ITP: at most the two ends + ceil(log2(174 / 1e-3)) + 1 = 2 + 18 + 1 = 21 solves; on a line the
    # regula-falsi point is exact, so far fewer (each step truncated towards the midpoint by 0.2 x width^2 / 174)
    assert res.n_solves == len(res.history) and res.n_solves <= 10
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
    ({"target": "signed:L7"}, "no lease or optional contract 'L7'"),
    ({"target": "signed:idx"}, "it is not optional"),
    ({"target": "sold:s1"}, "has no sale option"),
    ({"target": "bought:nothing"}, "unknown purchase option"),
    ({"target": "expands:s1"}, "has no grid expansion option"),
    ({"target": "bogus"}, "expected one of npv, npv=VALUE, converts:SITE"),
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


# ---------------------------------------------------------------- flat-sided NPV: ITP reaches the tolerance

FLAT_ROOT = 1.458 - 10 / 1e6     # -10 + 1e6 x (1.458 - x) = 0


def flat_standin(inst, **opts) -> dict:
    """NPV constant (-10) above x = 1.458 (the 'buy or not' shape: nothing happens until buying
    starts), rising 1e6 per unit of x below it; x = the first lease's rate."""
    x = inst.leases[0].rate_usd_per_kw_month
    return {"status": "optimal", "npv_usd": -10 + 1e6 * max(0.0, 1.458 - x), "mip_gap": 0.0}


def test_flat_side_reaches_the_tolerance(tiny):
    # Illinois regula falsi crawls along the flat side (-10 against +1e6 on the other end): on this
    # function it stopped after 40 solves with a bracket 377 times its tolerance. ITP needs at most
    # 2 + ceil(log2(2.5 / 2.5e-4)) + 1 = 2 + 14 + 1 = 17 solves.
    res = breakeven(tiny, RATE, 0.5, 3.0, target="npv", solver=flat_standin, abs_tol=2.5e-4, rel_tol=0)
    assert res.converged and res.method == "itp"
    a, b = res.bracket
    assert b - a <= 2.5e-4 * (1 + 1e-9) and a <= FLAT_ROOT <= b
    assert abs(res.value - FLAT_ROOT) <= 2.5e-4
    assert res.n_solves <= 17
    assert res.bracket_values[0] > 0 > res.bracket_values[1]      # NPV - level at each end of the bracket
    assert "bracket [" in res.summary() and "NOT converged" not in res.summary()


@pytest.mark.parametrize("shape, lo, hi, root", [
    (lambda x: -10 + 1e6 * max(0.0, 1.458 - x), 0.5, 3.0, FLAT_ROOT),                       # flat right
    (lambda x: -5e5 if x < 120 else -5e5 + 1e4 * (x - 120), 37.0, 211.0, 170.0),              # flat left
    (lambda x: (x - 120) * 1e3 if x < 100 else -2e4 + (x - 100) * 3e4, 37.0, 211.0, 100 + 2 / 3),      # kinked
    (lambda x: -1.0 if x < 133.3333 else 1.0, 37.0, 211.0, 133.3333),                         # a jump
])
def test_itp_bound_on_kinked_and_flat_functions(shape, lo, hi, root):
    import math

    from optimizer.analysis.breakeven import itp

    calls = []

    def f(x):
        calls.append(x)
        return shape(x)

    tol = 1e-4 * max(abs(lo), abs(hi))
    value, a, b, fa, fb, converged = itp(f, lo, hi, shape(lo), shape(hi), tol, 40)
    assert converged and b - a <= tol * (1 + 1e-9) and a <= root <= b and abs(value - root) <= tol
    assert len(calls) <= math.ceil(math.log2((hi - lo) / tol)) + 1        # the minmax bound of ITP


# ---------------------------------------------------------------- every first-stage decision kind, real MILP
#
# HAND2 below: one site, three months Jan-Mar 2026 (744 + 672 + 744 = 2,160 h, 31 + 28 + 31 = 90 days),
# no discounting, BTC 100,000 USD, 1,000 EH/s, subsidy 3.125: a 100 TH/s unit (2 kW) mines
# 4.5 USD a day and draws 0.048 MWh a day; at 60 USD/MWh it nets 1.62 USD a day: 145.8 USD over the
# horizon, of which 50.22 in March (31 days). No terminal value (no multiple, no salvage).

HAND2 = {
    "name": "breakeven-decisions",
    "horizon": {"start_month": "2026-01", "periods": 3, "discount_rate": 0.0,
                "terminal": {"asic_salvage": False, "treasury_btc": False}},
    "bitcoin": {"start_height": 940000},
    "scenarios": [{"name": "base", "probability": 1.0, "btc_price_usd": 100000, "network_hashrate_eh_s": 1000,
                   "power_price_usd_per_mwh": {"m": 60}}],
    "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 10, "pue_mining": 1.0, "pue_hpc": 1.0,
               "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "mining", "racks": 10}]}],
    "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 2000, "salvage_usd_per_unit": 0}]},
    "contracts": [{"id": "ix", "site": "a", "kind": "index"}],
}


def hand2(edit) -> Instance:
    import copy

    raw = copy.deepcopy(HAND2)
    edit(raw)
    return Instance.from_dict(raw)


def with_fleet(raw):
    raw["fleet"]["installed"] = [{"site": "a", "model": "x", "units": 1000}]


def _flip(inst, path, lo, hi, target, want, tol, usd_per_unit=1.0):
    """The flip's bracket is at most tol wide and holds the hand value, up to the MILP's resolution:
    HiGHS resolves the objective ($M) to about 1e-6, 1 USD, so the two plans' NPVs are told apart
    only beyond ~2 USD: 2 / usd_per_unit in the parameter (usd_per_unit = dNPV / dparameter)."""
    res = breakeven(inst, path, lo, hi, target=target, abs_tol=tol, rel_tol=0, mip_gap=0.0)
    assert res.converged and res.method == "bisection", res.summary()
    a, b = res.bracket
    slack = 2.0 / usd_per_unit
    assert a - slack <= want <= b + slack and b - a <= tol, res.summary()
    return res


def test_signed_contract():
    # an optional fixed contract at 40 USD/MWh (cap 5 MW) saves (60 - 40) x 1,000 units x 2 kW x 2,160 h
    # = 20 x 4,320 MWh = 86,400 USD: signed iff its signing fee is below 86,400
    def edit(raw):
        with_fleet(raw)
        raw["contracts"].append({"id": "ppa", "site": "a", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 5,
                                 "optional": True, "signing_fee_usd": 0})
    res = _flip(hand2(edit), "contracts[ppa].signing_fee_usd", 50_000, 150_000, "signed:ppa", 86_400, 1.0)
    h = res.history.sort_values("contracts[ppa].signing_fee_usd")
    assert list(h["target_value"])[0] == 1.0 and list(h["target_value"])[-1] == 0.0   # cheap fee: signed


def test_sold_site():
    # selling in month t forgoes the margin from t on (1,000 units): the cheapest month to sell is
    # March, forgoing 50,220; so the site is sold iff its price exceeds 50,220
    def edit(raw):
        with_fleet(raw)
        raw["sites"][0]["sale"] = {"price_usd": 0}
    _flip(hand2(edit), "sites[a].sale.price_usd", 10_000, 100_000, "sold:a", 50_220, 1.0)


def test_acquired_site():
    # site b (1 MW HPC hall, 10 racks x 100 kW) can be bought from 2026-01; lease L (1 MW at 50
    # USD/kW-month, NOI margin 1, pass-through at the site's price: the power nets to 0) runs three
    # months there: 3 x 50,000 = 150,000. Bought iff the price is below 150,000
    def edit(raw):
        raw["sites"].append({"id": "b", "market": "m", "grid_interconnect_mw": 5, "pue_mining": 1.0, "pue_hpc": 1.2,
                             "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "hb", "use": "hpc", "racks": 10}],
                             "acquisition": {"price_usd": 0, "available_from": "2026-01"}})
        raw["contracts"].append({"id": "ixb", "site": "b", "kind": "index"})
        raw["leases"] = [{"id": "L", "it_mw": 1.0, "rate_usd_per_kw_month": 50, "term_months": 3, "window_start": "2026-01",
                          "window_end": "2026-01", "noi_margin": 1.0, "power_passthrough": True, "eligible_sites": ["b"]}]
    _flip(hand2(edit), "sites[b].acquisition.price_usd", 50_000, 300_000, "acquired:b", 150_000, 1.0)


def test_bought_option():
    # option p (from 2026-01, no lead) sells units at usd_per_th x 100 TH: bought iff the price is
    # below the 145.8 USD a unit nets over the horizon, usd_per_th < 1.458
    def edit(raw):
        raw["fleet"]["purchase_options"] = [{"id": "p", "model": "x", "usd_per_th": 1, "first_month": "2026-01", "max_units": 1000}]
    _flip(hand2(edit), "fleet.purchase_options[p].usd_per_th", 0.5, 3.0, "bought:p", 1.458, 1e-3, usd_per_unit=1e5)


def test_npv_target_with_a_flat_side_on_the_milp():
    # the same option: NPV = 1,000 x (145.8 - 100 x usd_per_th) while buying pays, 0 above 1.458 (flat):
    # NPV = 10,000 at usd_per_th = (145.8 - 10) / 100 = 1.358
    def edit(raw):
        raw["fleet"]["purchase_options"] = [{"id": "p", "model": "x", "usd_per_th": 1, "first_month": "2026-01", "max_units": 1000}]
    res = breakeven(hand2(edit), "fleet.purchase_options[p].usd_per_th", 0.5, 3.0, target="npv=10000",
                    abs_tol=1e-4, rel_tol=0, mip_gap=0.0)
    assert res.converged and abs(res.value - 1.358) <= 1e-4, res.summary()
    assert res.n_solves <= 2 + 15 + 1                                 # ceil(log2(2.5 / 1e-4)) = 15


def test_expands_site():
    # the grid (1 MW) runs 500 of the 1,000 units (2 kW each); expansion g (+1 MW, no lead) runs the
    # other 500: 500 x 145.8 = 72,900 USD; started iff it costs less
    def edit(raw):
        with_fleet(raw)
        raw["sites"][0]["grid_interconnect_mw"] = 1
        raw["sites"][0]["grid_expansions"] = [{"id": "g", "mw": 1, "capex_usd": 0}]
    inst = hand2(edit)
    _flip(inst, "sites[a].grid_expansions[g].capex_usd", 10_000, 100_000, "expands:a", 72_900, 1.0)
    _flip(inst, "sites[a].grid_expansions[g].capex_usd", 10_000, 100_000, "expands:a/g", 72_900, 1.0)


def test_retires_site():
    # no terminal salvage: retiring in March gives the salvage and forgoes March's 50.22 a unit;
    # retired iff the salvage per unit exceeds 50.22
    _flip(hand2(with_fleet), "fleet.asic_models[x].salvage_usd_per_unit", 10, 100, "retires:a", 50.22, 1e-3, usd_per_unit=1e3)


def test_target_names_are_the_same_in_help_errors_and_readme(capsys):
    from optimizer.cli import main
    from optimizer.constants import BREAKEVEN_TARGETS

    assert main(["breakeven", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())   # the help's box, unwrapped
    readme = (ROOT / "README.md").read_text()
    with pytest.raises(InputError) as e:
        breakeven(Instance.from_yaml(TINY), RATE, 50, 200, target="bogus", solver=standin)
    for name in BREAKEVEN_TARGETS:
        assert name in text, name
        assert name in str(e.value), name
        assert name in readme, name
