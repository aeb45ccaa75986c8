"""The rules of models/economics.md that the horizon's end and the power contracts changed, one
small instance each, against hand arithmetic (written in each test), and the MILP against the
evaluator on the same instances.

The base instance: one site ``a`` (market ``m``, PUE_hpc 1.25, one HPC hall of 10 racks x 100 kW =
1 MW), twelve months 2026-01 .. 2026-12 at r = 12 %, BTC 100,000 USD, 1,000 EH/s, height 940,000
(subsidy 3.125 BTC, the next halving in 2028): one 100 TH/s unit mines 3.125 x 144 / 1e6 x 0.1 =
0.000045 BTC = 4.5 USD a day and draws 2 kW = 0.048 MWh a day.
Months after the horizon end: k = 1, 2, ...; DF(k) = 1.12^(-k/12); a(n) = sum_{k=1..n} DF(k).
"""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from optimizer.evaluate import evaluate
from optimizer.instance import Instance
from optimizer.plan import Plan
from optimizer.solve import solve

R = 0.12
I_M = 1.12 ** (1 / 12) - 1                       # monthly rate


def DF(k: int) -> float:
    return 1.12 ** (-k / 12)


def a(n: int) -> float:
    return sum(DF(k) for k in range(1, n + 1))


DAYS_2027 = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]   # months after the end (2027)
DAYS_AFTER = DAYS_2027 + DAYS_2027[:1] + [29] + DAYS_2027[2:]  # 2027 then 2028 (leap)


def base(**terminal) -> dict:
    return {
        "name": "rules-at-the-end",
        "horizon": {"start_month": "2026-01", "periods": 12, "discount_rate": R,
                    "terminal": {"asic_salvage": False, "treasury_btc": False, **terminal}},
        "bitcoin": {"start_height": 940_000},
        "scenarios": [{"name": "s", "probability": 1.0, "btc_price_usd": 100_000, "network_hashrate_eh_s": 1000,
                       "power_price_usd_per_mwh": {"m": 60}}],
        "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 20, "pue_mining": 1.0, "pue_hpc": 1.25,
                   "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "h", "use": "hpc", "racks": 10}]}],
        "fleet": {"asic_models": [{"name": "x", "hashrate_th_s": 100, "power_w": 2000, "salvage_usd_per_unit": 50}]},
        "contracts": [{"id": "ix", "site": "a", "kind": "index"}],
        "leases": [],
    }


def lease(rate: float, **kw) -> dict:
    """1 MW (10 racks), handed over 2026-01, 36 months (24 after the horizon), NOI margin 1."""
    return {"id": "L", "it_mw": 1.0, "rate_usd_per_kw_month": rate, "term_months": 36, "window_start": "2026-01",
            "window_end": "2026-01", "noi_margin": 1.0, **kw}


SIGNED = Plan(leases=pd.DataFrame([("L", "a", "2026-01", 1.0)], columns=["lease", "site", "month", "share"]))


def terminal(ev, item: str | None = None) -> float:
    cf = ev.cashflows
    sel = cf["item"].str.startswith("terminal_") if item is None else cf["item"] == item
    return float(cf.loc[sel, "usd"].sum())


def check_milp(raw: dict) -> None:
    """The MILP's objective equals the evaluator's NPV of its plan (economics.md: written twice)."""
    res = solve(Instance.from_dict(raw), mip_gap=1e-9, baselines=False, value_of_information=False, shadow_prices=False)
    assert res.status == "optimal", res.message
    res.verify(rtol=1e-9)


# ---------------------------------------------------------------- rule 1: leased HPC reverts to market value


def test_lease_at_market_noi_is_worth_what_empty_capacity_is():
    # market NOI 120,000 USD/MW-year, cap 8 %: V = 120,000 / 0.08 = 1,500,000 per MW; a month of
    # market NOI = V x 0.08 / 12 = 10,000. The lease pays 10 USD/kW-month x 1,000 kW = 10,000 a
    # month (NOI margin 1, pass-through at the site's price: no power cost to the landlord).
    # 8 % < 12 x (1.12^(1/12) - 1) = 11.39 %: rho(24) = 1 - 0.08/12 x a(24), so
    #   leased = 10,000 a(24) + 1,500,000 (1 - 0.08/12 a(24)) = 1,500,000 = empty.
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.08)
    raw["leases"] = [lease(10, power_passthrough=True)]
    inst = Instance.from_dict(raw)
    leased, empty = evaluate(inst, SIGNED), evaluate(inst, Plan())
    assert leased.violations == [] and empty.violations == []
    assert terminal(leased, "terminal_lease_noi_usd") == pytest.approx(10_000 * a(24), rel=1e-12)
    assert terminal(leased, "terminal_hpc_usd") == pytest.approx(1_500_000 * (1 - 0.08 / 12 * a(24)), rel=1e-12)
    assert terminal(leased) == pytest.approx(1_500_000, rel=1e-12)
    assert terminal(empty) == pytest.approx(1_500_000, rel=1e-12)
    # the old rule gave the leased MW its NOI only: 10,000 x a(24) = 213,700, 14 % of the empty MW
    assert 10_000 * a(24) < 0.15 * 1_500_000
    check_milp(raw)


@pytest.mark.parametrize("rate, spread", [(12, 2_000), (8, -2_000)])
def test_lease_above_or_below_market_adds_or_removes_its_spread(rate, spread):
    # leased - empty = PV over the 24 months after the end of (contracted NOI - market NOI) = spread x a(24)
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.08)
    raw["leases"] = [lease(rate, power_passthrough=True)]
    inst = Instance.from_dict(raw)
    diff = terminal(evaluate(inst, SIGNED)) - terminal(evaluate(inst, Plan()))
    assert diff == pytest.approx(spread * a(24), rel=1e-9)


def test_cap_rate_above_the_discount_rate_discounts_the_market_value_from_the_lease_end():
    # cap 15 % > 11.39 %: V = 120,000 / 0.15 = 800,000; rho(24) = DF(24) = 1.12^-2 (the market value
    # discounted from the lease's end); leased at the market NOI 800,000 x 0.15 / 12 = 10,000 a month:
    #   leased = 10,000 a(24) + 800,000 x 1.12^-2 = 213,700 + 637,755 = 851,455 >= 800,000 = empty
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.15)
    raw["leases"] = [lease(10, power_passthrough=True)]
    inst = Instance.from_dict(raw)
    leased = terminal(evaluate(inst, SIGNED))
    assert leased == pytest.approx(10_000 * a(24) + 800_000 * 1.12 ** -2, rel=1e-12)
    assert leased >= terminal(evaluate(inst, Plan())) == pytest.approx(800_000)


# ---------------------------------------------------------------- rule 2: costs after the horizon


def test_fixed_hpc_opex_is_deducted_after_the_horizon_too():
    # fixed HPC opex 1,000 USD/MW-month on every owned HPC MW:
    #   the leased MW pays it while its lease runs after the end: 10,000 a(24) - 1,000 a(24)
    #   the market value is net of it: V = (120,000 - 12 x 1,000) / 0.08 = 1,350,000
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.08)
    raw["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 1_000
    raw["leases"] = [lease(10, power_passthrough=True)]
    inst = Instance.from_dict(raw)
    ev = evaluate(inst, SIGNED)
    assert terminal(ev, "terminal_lease_noi_usd") == pytest.approx(9_000 * a(24), rel=1e-12)
    assert terminal(ev, "terminal_hpc_usd") == pytest.approx(1_350_000 * (1 - 0.08 / 12 * a(24)), rel=1e-12)
    assert terminal(evaluate(inst, Plan()), "terminal_hpc_usd") == pytest.approx(1_350_000, rel=1e-12)
    check_milp(raw)


def test_power_after_the_horizon_is_priced_at_the_contract_still_running():
    # A fixed contract at 30 USD/MWh (cap 5 MW) runs 18 months from 2026-01: 6 months past the end.
    # The lease (no pass-through, the landlord pays its power) draws 1 MW x PUE 1.25: after the end
    #   power = 1.25 x sum_k hours_k DF(k) x (30 for k = 1..6, then the market 60 for k = 7..24)
    # (the old rule priced all 24 months at the market price 60)
    raw = base()
    raw["contracts"].append({"id": "ppa", "site": "a", "kind": "fixed", "price_usd_per_mwh": 30, "mw_cap": 5,
                             "term_months": 18})
    raw["leases"] = [lease(10)]
    ev = evaluate(Instance.from_dict(raw), SIGNED)
    power = 1.25 * sum(24 * d * DF(k) * (30 if k <= 6 else 60) for k, d in enumerate(DAYS_AFTER[:24], start=1))
    assert terminal(ev, "terminal_lease_noi_usd") == pytest.approx(10_000 * a(24) - power, rel=1e-12)
    check_milp(raw)


# ---------------------------------------------------------------- rule 2b: a tranche planned after the end


def late_tranche(hall_racks: int = 10) -> dict:
    """Lease P handed over in the last month (2026-12), 12 months a tranche, two tranches of 0.5 MW
    (5 racks each): the first planned at the hand-over, the second 3 months later (2027-03, after
    the end). Rent 10 USD/kW-month = 5,000 a tranche-month, NOI margin 1, pass-through at the
    site's price (no power to the landlord); fixed HPC opex 1,000 USD/MW-month; V = 1,350,000."""
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.08)
    raw["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 1_000
    raw["sites"][0]["halls"][0]["racks"] = hall_racks
    raw["leases"] = [{"id": "P", "it_mw": 1.0, "rate_usd_per_kw_month": 10, "term_months": 12, "noi_margin": 1.0,
                      "window_start": "2026-12", "window_end": "2026-12", "power_passthrough": True,
                      "tranches": [{"it_mw": 0.5, "offset_months": 0}, {"it_mw": 0.5, "offset_months": 3}]}]
    return raw


LATE = Plan(leases=pd.DataFrame([("P", "a", "2026-12", 1.0)], columns=["lease", "site", "month", "share"]))


def rho(n: int, cap: float = 0.08) -> float:
    return max(DF(n), 1 - cap / 12 * a(n))


def test_a_tranche_planned_after_the_end_holds_its_racks_from_the_end():
    # Tranche 1 runs 2026-12 .. 2027-11: 11 months after the end (k = 1..11).
    # Tranche 2 is planned for 2027-03 and runs to 2028-02: it holds its 5 racks from the end,
    # 14 months (k = 1..14), rent in k = 3..14, idle in k = 1, 2.
    #   terminal lease NOI = 5,000 (a(11) + a(14) - a(2)) - 1,000 x 0.5 MW x (a(11) + a(14))
    #   terminal HPC = V x [(10 - 5 - 5) racks x 0.1 + 0.5 rho(11) + 0.5 rho(14)]
    # The old rule counted tranche 2's racks free at the end (675,000 x (1 - rho(14)) = 58,735 more
    # than this rule, on top of the rent it still counted) and charged its fixed opex over the 12
    # months it runs only (500 x a(2) = 986 less).
    inst = Instance.from_dict(late_tranche())
    ev = evaluate(inst, LATE)
    assert ev.violations == []
    noi = 5_000 * (a(11) + a(14) - a(2)) - 1_000 * 0.5 * (a(11) + a(14))
    assert terminal(ev, "terminal_lease_noi_usd") == pytest.approx(noi, rel=1e-12)
    hpc = 1_350_000 * (0.5 * rho(11) + 0.5 * rho(14))
    assert terminal(ev, "terminal_hpc_usd") == pytest.approx(hpc, rel=1e-12)
    # both tranches hold their racks in the last period (tranche 2's is planned after it)
    assert ev.allocation.set_index(["site", "month"]).loc[("a", "2026-12"), "hpc_mw_leased"] == pytest.approx(1.0)
    check_milp(late_tranche())


def test_a_tranche_planned_after_the_end_needs_its_racks_built_by_the_end():
    # a hall of 5 racks holds tranche 1 but not tranche 2 as well: its rent after the end is counted
    # only for capacity built (and paid for) inside the horizon, so signing is refused at 2026-12
    inst = Instance.from_dict(late_tranche(hall_racks=5))
    ev = evaluate(inst, LATE)
    assert any("2026-12" in v and "rack" in v for v in ev.violations), ev.violations
    res = solve(inst, mip_gap=1e-9, baselines=False, value_of_information=False, shadow_prices=False)
    assert res.status == "optimal", res.message
    assert res.plan.leases.empty


# ---------------------------------------------------------------- rule 3: mining terminal floored at salvage

MINER = {"id": "mine", "use": "mining", "racks": 10}      # 1,000 units of x (2 kW each)


def miner(power_price, salvage: float, **terminal) -> dict:
    raw = base(mining_margin_multiple=1.0, asic_salvage=True, **terminal)
    site = raw["sites"][0]
    site["halls"] = [MINER]
    site["fixed_opex_mining_usd_per_mw_month"] = 1_000          # 2 MW x 1,000 = 2,000 a month
    raw["fleet"]["asic_models"][0]["salvage_usd_per_unit"] = salvage
    raw["fleet"]["installed"] = [{"site": "a", "model": "x", "units": 1000}]
    raw["scenarios"][0]["power_price_usd_per_mwh"] = {"m": power_price}
    return raw


def test_a_fleet_losing_money_at_the_end_is_retired_not_valued_negative():
    # Power 150 USD/MWh in December: a unit earns 4.5 USD a day and costs 0.048 x 150 = 7.2: the
    # operating rule curtails all of it. Margin of December = - fixed opex 2,000; keep mining is worth
    # 1 x 12 x (-2,000) = -24,000 (the old line); retiring gives the salvage 1,000 x 50 = 50,000.
    #   terminal_mining_usd = max(0, -24,000 - 50,000) = 0; terminal_asic_salvage_usd = 50,000
    raw = miner({"points": {"2026-11": 60, "2026-12": 150}}, 50)
    ev = evaluate(Instance.from_dict(raw), Plan())
    assert terminal(ev, "terminal_mining_usd") == 0.0
    assert terminal(ev, "terminal_asic_salvage_usd") == pytest.approx(50_000)
    check_milp(raw)


def test_mining_terminal_above_salvage_is_what_keeping_adds():
    # Power 60 USD/MWh: every unit runs. December (31 days): revenue 1,000 x 4.5 x 31 = 139,500;
    # power 1,000 x 0.048 x 31 x 60 = 89,280; fixed opex 2,000: margin 48,220; keep = 12 x 48,220 = 578,640
    #   salvage 50 a unit: S = 50,000, terminal_mining_usd = 578,640 - 50,000 = 528,640 (total 578,640)
    #   salvage 600 a unit: S = 600,000 > 578,640: retire, terminal_mining_usd = 0 (total 600,000)
    ev = evaluate(Instance.from_dict(miner(60, 50)), Plan())
    assert terminal(ev, "terminal_mining_usd") == pytest.approx(528_640, rel=1e-9)
    assert terminal(ev) == pytest.approx(578_640, rel=1e-9)
    ev = evaluate(Instance.from_dict(miner(60, 600)), Plan())
    assert terminal(ev, "terminal_mining_usd") == 0.0
    assert terminal(ev) == pytest.approx(600_000)
    check_milp(miner(60, 600))


def test_keep_or_retire_is_decided_for_the_whole_site_not_model_by_model():
    # Two models at one site (15 racks x 100 = 1,500 positions): 1,000 units of x as above and 500
    # units of y (100 TH/s at 4 kW: 0.096 MWh a day x 60 = 5.76 USD against 4.5 of revenue, so the
    # operating rule switches y off). Fixed opex 1,000 USD/MW-month on 2 + 2 MW = 4,000 a month.
    #   December margin = 139,500 - 89,280 - 4,000 = 46,220; keeping is worth 12 x 46,220 = 554,640
    #   retiring gives S = 1,000 x 50 + 500 x 400 = 250,000 < 554,640: keep the whole site,
    #   terminal_mining_usd = 554,640 - 250,000 = 304,640 (terminal total 554,640).
    # Deciding model by model would keep x (12 x 48,220 - 50,000 = 528,640) and retire y (its 200,000
    # of salvage): a terminal total of 778,640, which the rule does not allow (economics.md). With the
    # first stage pinned to "retire nothing", the MILP must value the kept site exactly so: its convex
    # hull rows (fleet.terminal_mining_floor) may split units between kept and retired parts only
    # when tkeep is fractional.
    raw = miner(60, 50)
    raw["sites"][0]["halls"] = [{**MINER, "racks": 15}]
    raw["fleet"]["asic_models"].append({"name": "y", "hashrate_th_s": 100, "power_w": 4000, "salvage_usd_per_unit": 400})
    raw["fleet"]["installed"].append({"site": "a", "model": "y", "units": 500})
    inst = Instance.from_dict(raw)
    ev = evaluate(inst, Plan())
    assert terminal(ev, "terminal_mining_usd") == pytest.approx(304_640, rel=1e-9)
    assert terminal(ev) == pytest.approx(554_640, rel=1e-9)
    res = solve(inst, first_stage=Plan(), mip_gap=1e-9, baselines=False, value_of_information=False, shadow_prices=False)
    assert res.status == "optimal", res.message
    res.verify(rtol=1e-9)
    assert terminal(res.evaluation, "terminal_mining_usd") == pytest.approx(304_640, rel=1e-9)


def test_mining_terminal_power_at_the_contract_still_running():
    # The site buys at 40 USD/MWh under a fixed contract running 6 months past the end, market 60:
    # the 12 months the multiple values are priced 40 for k = 1..6 and 60 for k = 7..12, hours-weighted:
    #   p = (24 x 40 x (31+28+31+30+31+30) + 24 x 60 x (31+31+30+31+30+31)) / (24 x 365)
    raw = miner(60, 50)
    raw["contracts"].append({"id": "ppa", "site": "a", "kind": "fixed", "price_usd_per_mwh": 40, "mw_cap": 5,
                             "term_months": 18})
    p = (40 * 181 + 60 * 184) / 365
    margin = 139_500 - 1_000 * 0.048 * 31 * p - 2_000
    ev = evaluate(Instance.from_dict(raw), Plan())
    assert terminal(ev, "terminal_mining_usd") == pytest.approx(12 * margin - 50_000, rel=1e-9)
    check_milp(raw)


# ---------------------------------------------------------------- rule 4: pass-through at what the site pays


def passthrough(**kw) -> dict:
    raw = base()
    raw["contracts"].append({"id": "ppa", "site": "a", "kind": "fixed", "price_usd_per_mwh": 30, "mw_cap": 5})
    raw["leases"] = [lease(10, power_passthrough=True, **kw)]
    return raw


def test_passthrough_is_reimbursed_at_the_contract_price():
    # 1 MW x PUE 1.25 x 744 h (January) = 930 MWh; the site buys at the fixed contract's 30 USD/MWh
    # (fixed supply first; the index contract is the rest): the tenant pays 930 x 30 = 27,900, not
    # 930 x 60 (the market) = 55,800, which gave the landlord a 27,900 spread on the tenant's power
    ev = evaluate(Instance.from_dict(passthrough()), SIGNED)
    assert ev.violations == []
    cf = ev.cashflows
    jan = cf[(cf["item"] == "power_passthrough_usd") & (cf["month"] == "2026-01")]["usd"].sum()
    assert jan == pytest.approx(930 * 30)
    check_milp(passthrough())


def test_passthrough_at_market_when_the_lease_says_so():
    ev = evaluate(Instance.from_dict(passthrough(passthrough_price="market")), SIGNED)
    cf = ev.cashflows
    jan = cf[(cf["item"] == "power_passthrough_usd") & (cf["month"] == "2026-01")]["usd"].sum()
    assert jan == pytest.approx(930 * 60)
    # after the horizon the landlord then keeps the spread: its power 30 (contract without term ends
    # with the horizon: the market 60 after) minus the reimbursement 60 = 0 a MWh after the end
    assert terminal(ev, "terminal_lease_noi_usd") == pytest.approx(10_000 * a(24), rel=1e-12)


# ---------------------------------------------------------------- rule 5: noi_margin before power


def test_after_power_margin_with_passthrough_is_rejected():
    raw = base()
    raw["leases"] = [lease(10, power_passthrough=True, noi_margin=0.6, noi_margin_basis="after_power")]
    with pytest.raises(ValueError, match="counts the lease's power twice"):
        Instance.from_dict(raw)
    raw["leases"] = [lease(10, noi_margin=None, opex_usd_per_mw_month=1000, noi_margin_basis="after_power")]
    with pytest.raises(ValueError, match="noi_margin_basis: after_power describes noi_margin"):
        Instance.from_dict(raw)
    raw["leases"] = [lease(10, passthrough_price="market")]
    with pytest.raises(ValueError, match="passthrough_price: applies only with power_passthrough"):
        Instance.from_dict(raw)


def test_after_power_margin_credits_the_power_back():
    # A gross lease: margin 0.6 is after the landlord's power. January: rent 10,000, lease opex
    # 0.4 x 10,000 = 4,000 (which holds the power), and the contracts also charge the 930 MWh: the
    # credit 930 x 60 (the site pays the market price: index contract only) comes off the opex.
    # After the horizon the margin's NOI is net of power: no power deducted again.
    raw = base()
    raw["leases"] = [lease(10, noi_margin=0.6, noi_margin_basis="after_power")]
    ev = evaluate(Instance.from_dict(raw), SIGNED)
    cf = ev.cashflows
    jan = cf[(cf["item"] == "opex_usd") & (cf["month"] == "2026-01")]["usd"].sum()
    assert jan == pytest.approx(-4_000 + 930 * 60)
    assert terminal(ev, "terminal_lease_noi_usd") == pytest.approx(6_000 * a(24), rel=1e-12)
    check_milp(raw)


# ---------------------------------------------------------------- rule 6: halving heights after the start


def test_listing_only_the_next_halving_keeps_the_current_subsidy():
    from optimizer.economics.data import compile_instance

    # From 940,000 the interval schedule has halved 4 times: 50 / 16 = 3.125 BTC. [1,050,000] moves
    # nothing: hashprice = 100,000 x 3.125 x 144 / 1e6 = 45 USD/PH/day (the trap: 50 BTC gave 720).
    raw = base()
    raw["bitcoin"]["halving_heights"] = [1_050_000]
    d = compile_instance(Instance.from_dict(raw))
    assert list(d.subsidy_btc_per_block) == [3.125] * 12
    assert d.hashprice_usd_per_ph_day[0, 0] == pytest.approx(45.0)
    # moving the next halving to 960,000: 20,000 blocks / 144 a day = 138.9 days: Jan-Apr (120 days)
    # at 3.125, May holds it (18.9 days at 3.125 of 31), then 1.5625
    raw["bitcoin"]["halving_heights"] = [960_000]
    d = compile_instance(Instance.from_dict(raw))
    may = (2_720 * 3.125 + (4_464 - 2_720) * 1.5625) / 4_464     # 20,000 - 120 x 144 = 2,720 blocks before
    assert list(d.subsidy_btc_per_block[:6]) == pytest.approx([3.125] * 4 + [may, 1.5625], rel=1e-12)


def test_halving_heights_at_or_below_the_start_are_rejected_with_the_reason():
    raw = base()
    raw["bitcoin"]["halving_heights"] = [840_000, 1_050_000]
    with pytest.raises(ValueError, match=r"halving_heights: list only the halvings after start_height 940,000 "
                                         r"\(got 840,000\).*= 3.125 BTC"):
        Instance.from_dict(raw)


# ---------------------------------------------------------------- rule 7: quarters discounted month by month


def test_quarterly_flows_are_discounted_as_monthly_thirds():
    # The same lease in quarters: 30,000 USD rent a quarter; each month's 10,000 discounted at the
    # month's end: the quarters' PVs sum to the monthly instance's, and terminal values sit at the
    # horizon's end (12 months) in both
    raw = base(hpc_unleased_noi_usd_per_mw_year=120_000, hpc_cap_rate=0.08)
    raw["leases"] = [lease(10, power_passthrough=True)]
    monthly = evaluate(Instance.from_dict(raw), SIGNED)
    q = copy.deepcopy(raw)
    q["horizon"].update(periods=4, period_months=3)
    quarterly = evaluate(Instance.from_dict(q), SIGNED)
    rent_pv = sum(10_000 * DF(k) for k in range(1, 13))
    for ev in (monthly, quarterly):
        cf = ev.cashflows
        assert cf.loc[cf["item"] == "lease_revenue_usd", "pv_usd"].sum() == pytest.approx(rent_pv, rel=1e-12)
        assert list(cf.loc[cf["item"].str.startswith("terminal_"), "discount_factor"]) == [pytest.approx(DF(12))] * 2
    assert quarterly.npv_usd == pytest.approx(monthly.npv_usd, rel=1e-9)
    check_milp(q)
