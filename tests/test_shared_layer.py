"""The shared layer (compile_instance -> Data) against hand arithmetic, on non-trivial parameters.

The model and the evaluator both read these coefficients, so "solver objective == evaluator NPV"
cannot see a bug here. Every expected number below is written out from the instance's figures
(comments show the arithmetic); nothing is copied from the code's output and no kernel function
(optimizer.economics) is called for the expected side.

Two small instances, built inline:

- ``QUARTERLY``: 6 quarterly periods from 2026-01 (days 90, 91, 92, 92, 90, 91), a halving inside
  period 2, a 2 % pool fee, price / hashrate / fee / power / HPC-index points, two scenarios,
  contracts starting mid-quarter after the horizon start, leases with late hand-overs, both opex
  kinds, multi-MW and splittable leases, purchase options, conversion and grid-expansion leads.
- ``MONTHLY``: 6 monthly periods, 12-minute blocks, explicit halving heights after the start
  height with a non-default initial subsidy (two halvings inside the horizon), a 1.5 % pool fee.
- ``terminal_variant()``: QUARTERLY with terminal values on, fixed HPC opex at s1 and the fixed
  contract F running two months past the horizon (the horizon's-end coefficients).
"""

from __future__ import annotations

import copy

import pytest

from optimizer.economics.data import compile_instance
from optimizer.instance import Instance

REL = 1e-12


def approx(x):
    return pytest.approx(x, rel=REL, abs=1e-9)


# ---------------------------------------------------------------- instances

# Calendar of the quarterly horizon (2026-01 .. 2027-06):
#   months  Jan 31 Feb 28 Mar 31 | Apr 30 May 31 Jun 30 | Jul 31 Aug 31 Sep 30 |
#           Oct 31 Nov 30 Dec 31 | Jan 31 Feb 28 Mar 31 | Apr 30 May 31 Jun 30
#   days    90, 91, 92, 92, 90, 91      hours (x 24)  2160, 2184, 2208, 2208, 2160, 2184
Q_DAYS = [31 + 28 + 31, 30 + 31 + 30, 31 + 31 + 30, 31 + 30 + 31, 31 + 28 + 31, 30 + 31 + 30]
Q_HOURS = [24 * d for d in Q_DAYS]

QUARTERLY = {
    "name": "shared-quarterly",
    "horizon": {"start_month": "2026-01", "periods": 6, "period_months": 3, "discount_rate": 0.10},
    # 1,050,000 - 144 blocks/day x (90 + 91 + 30 days) = 1,050,000 - 30,384: the halving falls on
    # day 30 of period 2
    "bitcoin": {"start_height": 1_019_616, "pool_fee": 0.02},
    "scenarios": [
        {"name": "up", "probability": 0.6,
         "btc_price_usd": {"points": {"2026-01": 90_000, "2026-07": 120_000}},
         "network_hashrate_eh_s": {"points": {"2026-01": 800, "2026-04": 950}},
         "fees_btc_per_block": {"points": {"2026-02": 0.2, "2026-05": 0.05}},
         "power_price_usd_per_mwh": {"north": {"points": {"2026-01": 40, "2026-12": 62}}, "south": 35},
         "hpc_lease_rate_index": {"points": {"2026-01": 1.0, "2027-06": 1.17}}},
        {"name": "down", "probability": 0.4, "btc_price_usd": 60_000, "network_hashrate_eh_s": 1000,
         "power_price_usd_per_mwh": {"north": 30, "south": 35}},
    ],
    "sites": [
        {"id": "s1", "market": "north", "grid_interconnect_mw": 30, "pue_mining": 1.08, "pue_hpc": 1.25,
         "asics_per_rack": 80, "hpc_kw_per_rack": 130,
         "halls": [{"id": "m", "use": "mining", "racks": 50}, {"id": "h", "use": "hpc", "racks": 20}],
         "conversion": {"racks_per_block": 10, "capex_usd_per_mw": 2_000_000, "lead_months": 7, "earliest_month": "2026-04"},
         "grid_expansions": [{"id": "g1", "mw": 5, "capex_usd": 400_000, "lead_months": 0, "earliest_month": "2026-08"},
                             {"id": "g2", "mw": 5, "capex_usd": 400_000, "lead_months": 4}],
         "sale": {"price_usd": 1_000_000, "earliest_month": "2026-11"}},
        {"id": "s2", "market": "south", "grid_interconnect_mw": 10, "pue_mining": 1.1, "pue_hpc": 1.3,
         "asics_per_rack": 100, "hpc_kw_per_rack": 150, "halls": [{"id": "h2", "use": "hpc", "racks": 10}],
         "acquisition": {"price_usd": 2_000_000, "available_from": "2026-06"}},
    ],
    "fleet": {
        "asic_models": [{"name": "m200", "hashrate_th_s": 200, "power_w": 3500, "salvage_usd_per_unit": 300},
                        {"name": "m100", "hashrate_th_s": 100, "efficiency_j_per_th": 21.5}],
        "installed": [{"site": "s1", "model": "m200", "units": 1000}, {"site": "s1", "model": "m200", "units": 500},
                      {"site": "s1", "model": "m100", "units": 200}],
        "purchase_options": [
            {"id": "po", "model": "m200", "usd_per_th": 14, "first_month": "2026-03", "last_month": "2027-01", "lead_months": 5},
            {"id": "late", "model": "m100", "usd_per_th": 10, "first_month": "2027-02"},
        ],
    },
    "contracts": [
        {"id": "F", "site": "s1", "kind": "fixed", "start_month": "2026-05", "term_months": 14, "price_usd_per_mwh": 50,
         "escalator_per_year": 0.06, "mw_cap": 10, "take_or_pay_min_share": 0.7},
        {"id": "I", "site": "s1", "kind": "index", "start_month": "2026-02", "term_months": 4, "adder_usd_per_mwh": 3},
        {"id": "G", "site": "s2", "kind": "owned_generation", "start_month": "2026-09", "term_months": 7, "mw": 4,
         "variable_cost_usd_per_mwh": 20, "fixed_cost_usd_per_month": 10_000},
        {"id": "X", "site": "s1", "kind": "index"},
    ],
    "leases": [
        {"id": "LA", "it_mw": 2.5, "rate_usd_per_kw_month": 120, "escalator_per_year": 0.05, "term_months": 15,
         "window_start": "2026-02", "window_end": "2026-05", "late_penalty_usd_per_mw_month": 1000, "noi_margin": 0.8,
         "eligible_sites": ["s1"]},
        {"id": "LB", "it_mw": 1.2, "rate_usd_per_kw_month": 100, "escalator_per_year": 0.03, "term_months": 6,
         "window_start": "2026-02", "window_end": "2026-03", "opex_usd_per_mw_month": 7000, "eligible_sites": ["s2"]},
        {"id": "LC", "it_mw": 1.5, "rate_usd_per_kw_month": 90, "escalator_per_year": 0.02, "term_months": 30,
         "window_start": "2026-04", "window_end": "2026-10", "splittable": True},
    ],
    "policy": {"capex_budget_usd_per_year": {2026: 5_000_000}},
}

# Monthly horizon 2026-01 .. 2026-06: days 31, 28, 31, 30, 31, 30.
M_DAYS = [31, 28, 31, 30, 31, 30]
MONTHLY = {
    "name": "shared-monthly",
    "horizon": {"start_month": "2026-01", "periods": 6, "discount_rate": 0.08},
    # 12-minute blocks: 1440 / 12 = 120 blocks a day. At 499,000 the interval schedule has halved
    # twice (210,000, 420,000): 25 / 4 = 6.25; the listed halvings after the start: 3.125 from
    # 500,000, 1.5625 from 520,000.
    "bitcoin": {"start_height": 499_000, "block_interval_minutes": 12, "initial_subsidy_btc": 25,
                "halving_heights": [500_000, 520_000], "pool_fee": 0.015},
    "scenarios": [{"name": "only", "probability": 1.0,
                   "btc_price_usd": {"points": {"2026-02": 50_000, "2026-05": 80_000}},
                   "network_hashrate_eh_s": 400, "fees_btc_per_block": 0.25,
                   "power_price_usd_per_mwh": {"m": 45}}],
    "sites": [{"id": "a", "market": "m", "grid_interconnect_mw": 10, "pue_mining": 1.2, "pue_hpc": 1.3,
               "asics_per_rack": 100, "hpc_kw_per_rack": 100, "halls": [{"id": "x", "use": "mining", "racks": 10}]}],
    "fleet": {"asic_models": [{"name": "k150", "hashrate_th_s": 150, "power_w": 3000}]},
    "policy": {"capex_budget_usd_per_year": 3_000_000},
}


@pytest.fixture(scope="module")
def q():
    return compile_instance(Instance.from_dict(QUARTERLY))


@pytest.fixture(scope="module")
def m():
    return compile_instance(Instance.from_dict(MONTHLY))


# ---------------------------------------------------------------- time and discounting


def test_quarterly_calendar_and_discount_factors(q):
    assert q.T == 6 and q.W == 2
    assert q.labels == ["2026-01", "2026-04", "2026-07", "2026-10", "2027-01", "2027-04"]
    assert list(q.days) == [90, 91, 92, 92, 90, 91]
    assert list(q.hours) == [2160, 2184, 2208, 2208, 2160, 2184]
    # a quarter's flows in three monthly thirds, each discounted at its month's end:
    # DF_t = (1.1^(-(3t+1)/12) + 1.1^(-(3t+2)/12) + 1.1^(-(3t+3)/12)) / 3
    assert list(q.df) == [approx(sum(1.1 ** (-(3 * t + j) / 12) for j in (1, 2, 3)) / 3) for t in range(6)]
    # terminal values at the horizon's end, 18 months: 1.1^(-1.5)
    assert q.df_end == approx(1.1 ** -1.5)
    assert list(q.prob) == [0.6, 0.4] and q.scenario_names == ["up", "down"]
    assert list(q.period_years) == [2026, 2026, 2026, 2026, 2027, 2027]


def test_monthly_discount_factors(m):
    # month t ends t + 1 months from the start: DF = 1.08^(-(t + 1) / 12)
    assert list(m.df) == [approx(1.08 ** (-k / 12)) for k in (1, 2, 3, 4, 5, 6)]
    assert list(m.hours) == [744, 672, 744, 720, 744, 720]


# ---------------------------------------------------------------- bitcoin: blocks, subsidy, hashprice


def test_quarterly_blocks_and_subsidy_with_a_halving_inside_a_period(q):
    # 144 blocks a day x days
    assert list(q.blocks) == [144 * 90, 144 * 91, 144 * 92, 144 * 92, 144 * 90, 144 * 91]
    # heights at the period starts: 1,019,616; + 12,960 = 1,032,576; + 13,104 = 1,045,680; + 13,248 = 1,058,928.
    # Below 1,050,000 four halvings have passed (210k, 420k, 630k, 840k): 50 / 16 = 3.125, then 1.5625.
    # Period 2: 1,050,000 - 1,045,680 = 4,320 blocks at 3.125 and 13,248 - 4,320 = 8,928 at 1.5625.
    mix = (4_320 * 3.125 + 8_928 * 1.5625) / 13_248
    assert list(q.subsidy_btc_per_block) == [approx(3.125), approx(3.125), approx(mix),
                                             approx(1.5625), approx(1.5625), approx(1.5625)]


def test_monthly_subsidy_with_explicit_halving_heights(m):
    # 120 blocks a day: Jan 3720, Feb 3360, Mar 3720, Apr 3600, May 3720, Jun 3600
    assert list(m.blocks) == [120 * d for d in M_DAYS]
    # heights: Jan 499,000 -> 502,720; Feb -> 506,080; Mar -> 509,800; Apr -> 513,400; May -> 517,120;
    # Jun -> 520,720. Jan: 1,000 blocks at 6.25, 2,720 at 3.125; Jun: 520,000 - 517,120 = 2,880 at
    # 3.125 and 720 at 1.5625.
    jan = (1_000 * 6.25 + 2_720 * 3.125) / 3_720
    jun = (2_880 * 3.125 + 720 * 1.5625) / 3_600
    assert list(m.subsidy_btc_per_block) == [approx(jan), approx(3.125), approx(3.125), approx(3.125), approx(3.125), approx(jun)]


def test_quarterly_series_are_means_of_their_months(q):
    # up: price 90k in Jan rising 5,000 a month to 120k in Jul, flat after:
    #   Q0 (90 + 95 + 100) / 3 = 95k, Q1 (105 + 110 + 115) / 3 = 110k, then 120k
    assert list(q.btc_price_usd[0]) == [approx(95_000), approx(110_000)] + [approx(120_000)] * 4
    assert list(q.btc_price_usd[1]) == [60_000] * 6
    # hashrate 800 Jan, 850 Feb, 900 Mar, 950 from Apr: Q0 850, then 950
    assert list(q.hashrate_eh_s[0]) == [approx(850), approx(950), approx(950), approx(950), approx(950), approx(950)]
    # fees: flat 0.2 before Feb, then -0.05 a month to 0.05 in May: Jan 0.2, Feb 0.2, Mar 0.15 | Apr 0.1,
    # May 0.05, Jun 0.05 | 0.05 after
    assert list(q.fees_btc_per_block[0]) == [approx(0.55 / 3), approx(0.2 / 3)] + [approx(0.05)] * 4
    assert list(q.fees_btc_per_block[1]) == [0.0] * 6
    # north: 40 in Jan + 2 a month to 62 in Dec: Q0 (40 + 42 + 44) / 3 = 42, Q1 48, Q2 54, Q3 60, then 62
    assert list(q.power_price["north"][0]) == [approx(42), approx(48), approx(54), approx(60), approx(62), approx(62)]
    assert list(q.power_price["north"][1]) == [30.0] * 6
    assert list(q.site_power_price("s2")[0]) == [35.0] * 6
    # HPC index 1 + 0.01 per month after Jan 2026: Q0 months 0, 1, 2 -> 1.01; Q5 months 15, 16, 17 -> 1.16
    assert list(q.hpc_index[0]) == [approx(1.01), approx(1.04), approx(1.07), approx(1.10), approx(1.13), approx(1.16)]
    assert list(q.hpc_index[1]) == [1.0] * 6


def test_quarterly_hashprice_and_btc_per_unit(q):
    # hashprice BTC/PH/day = (subsidy + fees) x 144 / (EH/s x 1000)
    mix = (4_320 * 3.125 + 8_928 * 1.5625) / 13_248
    sub = [3.125, 3.125, mix, 1.5625, 1.5625, 1.5625]
    fees_up = [0.55 / 3, 0.2 / 3, 0.05, 0.05, 0.05, 0.05]
    h_up = [850, 950, 950, 950, 950, 950]
    p_up = [95_000, 110_000, 120_000, 120_000, 120_000, 120_000]
    hp_up = [(s + f) * 144 / (h * 1000) for s, f, h in zip(sub, fees_up, h_up)]
    hp_down = [s * 144 / (1000 * 1000) for s in sub]
    assert list(q.hashprice_btc_per_ph_day[0]) == [approx(x) for x in hp_up]
    assert list(q.hashprice_btc_per_ph_day[1]) == [approx(x) for x in hp_down]
    assert list(q.hashprice_usd_per_ph_day[0]) == [approx(x * p) for x, p in zip(hp_up, p_up)]
    assert list(q.hashprice_usd_per_ph_day[1]) == [approx(x * 60_000) for x in hp_down]
    # one m200 unit: 200 TH = 0.2 PH x hashprice x days x (1 - 2 % pool fee)
    assert list(q.btc_per_unit["m200"][0]) == [approx(0.2 * x * d * 0.98) for x, d in zip(hp_up, Q_DAYS)]
    assert list(q.btc_per_unit["m200"][1]) == [approx(0.2 * x * d * 0.98) for x, d in zip(hp_down, Q_DAYS)]
    # m100: 0.1 PH
    assert list(q.btc_per_unit["m100"][1]) == [approx(0.1 * x * d * 0.98) for x, d in zip(hp_down, Q_DAYS)]


def test_monthly_hashprice_and_btc_per_unit(m):
    jan = (1_000 * 6.25 + 2_720 * 3.125) / 3_720
    jun = (2_880 * 3.125 + 720 * 1.5625) / 3_600
    sub = [jan, 3.125, 3.125, 3.125, 3.125, jun]
    # 120 blocks a day, 400 EH/s = 400,000 PH/s, fees 0.25 BTC a block
    hp = [(s + 0.25) * 120 / 400_000 for s in sub]
    assert list(m.hashprice_btc_per_ph_day[0]) == [approx(x) for x in hp]
    # price flat 50k to Feb, +10k a month to 80k in May, flat after
    price = [50_000, 50_000, 60_000, 70_000, 80_000, 80_000]
    assert list(m.btc_price_usd[0]) == [approx(p) for p in price]
    assert list(m.hashprice_usd_per_ph_day[0]) == [approx(x * p) for x, p in zip(hp, price)]
    # 150 TH = 0.15 PH, pool fee 1.5 %
    assert list(m.btc_per_unit["k150"][0]) == [approx(0.15 * x * d * 0.985) for x, d in zip(hp, M_DAYS)]


def test_mwh_per_unit(q, m):
    # W x PUE_mining x hours / 1e6
    assert list(q.mwh_per_unit("s1", "m200")) == [approx(3500 * 1.08 * h / 1e6) for h in Q_HOURS]
    # m100 is given by efficiency: 21.5 J/TH x 100 TH = 2,150 W
    assert list(q.mwh_per_unit("s1", "m100")) == [approx(2150 * 1.08 * h / 1e6) for h in Q_HOURS]
    assert list(q.mwh_per_unit("s2", "m200")) == [approx(3500 * 1.1 * h / 1e6) for h in Q_HOURS]
    assert list(m.mwh_per_unit("a", "k150")) == [approx(3000 * 1.2 * 24 * d / 1e6) for d in M_DAYS]


# ---------------------------------------------------------------- power contracts


def test_fixed_contract_starting_mid_quarter_escalates_from_its_own_start(q):
    c = q.contracts["F"]
    # 14 months from May 2026: May 2026 .. Jun 2027.
    # Q1: May 744 + Jun 720; Q2: 744 + 744 + 720; Q3: 744 + 720 + 744; Q4: 744 + 672 + 744; Q5: 720 + 744 + 720
    assert list(c.active_hours) == [0, 744 + 720, 2208, 2208, 2160, 2184]
    assert list(c.months_active) == [0, 2, 3, 3, 3, 3]
    assert c.start_period == 1
    # contract year 1 starts in May 2027 (12 months after May 2026), not in Jan 2027 (12 months
    # after the horizon start): Q4 still pays 50; Q5 = (Apr 720 h x 50 + May 744 h x 53 + Jun 720 h x 53) / 2184 h
    q5 = (720 * 50 + 744 * 50 * 1.06 + 720 * 50 * 1.06) / 2184
    assert list(c.price_usd_per_mwh) == [0.0, approx(50), approx(50), approx(50), approx(50), approx(q5)]


def test_index_and_generation_contract_terms(q):
    i = q.contracts["I"]
    # Feb .. May 2026: Q0 Feb 672 + Mar 744; Q1 Apr 720 + May 744
    assert list(i.active_hours) == [672 + 744, 720 + 744, 0, 0, 0, 0]
    assert list(i.months_active) == [2, 2, 0, 0, 0, 0] and i.start_period == 0
    assert list(i.price_usd_per_mwh) == [0.0] * 6
    g = q.contracts["G"]
    # Sep 2026 .. Mar 2027: Q2 Sep 720; Q3 2208; Q4 2160
    assert list(g.active_hours) == [0, 0, 720, 2208, 2160, 0]
    assert list(g.months_active) == [0, 0, 1, 3, 3, 0] and g.start_period == 2
    x = q.contracts["X"]  # no start, no term: the whole horizon
    assert list(x.active_hours) == Q_HOURS and list(x.months_active) == [3] * 6 and x.start_period == 0


# ---------------------------------------------------------------- leases


def test_lease_hand_over_periods_and_months_late(q):
    la, lb, lc = q.leases["LA"], q.leases["LB"], q.leases["LC"]
    # LA: window 2026-02..05 with a late penalty: every period starting from Feb 2026 to the horizon
    # end, i.e. Apr 26, Jul 26, Oct 26, Jan 27, Apr 27 (Q0 starts in Jan, before the window)
    assert la.handover_periods == [1, 2, 3, 4, 5]
    # months after window_end (May 2026): Apr 0, Jul 2, Oct 5, Jan 8, Apr 2027 11
    assert la.months_late == {1: 0, 2: 2, 3: 5, 4: 8, 5: 11}
    # LB: window Feb..Mar holds no period start and has no penalty: the period holding Feb (Q0)
    assert lb.handover_periods == [0] and lb.months_late == {0: 0}
    # LC: window Apr..Oct 2026 without penalty: Apr, Jul, Oct
    assert lc.handover_periods == [1, 2, 3] and lc.months_late == {1: 0, 2: 0, 3: 0}


def test_lease_rent_opex_hours_per_hand_over(q):
    la = q.leases["LA"]
    # LA from Apr 2026 (tau 1): 15 months Apr 2026 .. Jun 2027; 2.5 MW x 1000 x 120 = 300,000 a
    # month in lease year 0 (Apr 2026 .. Mar 2027), x 1.05 = 315,000 in year 1 (Apr .. Jun 2027)
    assert list(la.rent_usd[1]) == [0, approx(3 * 300_000), approx(3 * 300_000), approx(3 * 300_000),
                                    approx(3 * 300_000), approx(3 * 315_000)]
    # opex = (1 - 0.8) x rent
    assert list(la.opex_usd[1]) == [0, approx(0.2 * 900_000), approx(0.2 * 900_000), approx(0.2 * 900_000),
                                    approx(0.2 * 900_000), approx(0.2 * 945_000)]
    assert list(la.active_hours[1]) == [0, 2184, 2208, 2208, 2160, 2184]
    assert list(la.active[1]) == [False, True, True, True, True, True]
    assert la.runs_past_horizon[1] is False
    assert la.terminal_noi_usd[1] == 0.0 and la.terminal_hours_disc[1] == 0.0
    # from Oct 2026 (tau 3): in the horizon Oct 2026 .. Jun 2027, all in lease year 0
    assert list(la.rent_usd[3]) == [0, 0, 0, approx(900_000), approx(900_000), approx(900_000)]
    assert list(la.active_hours[3]) == [0, 0, 0, 2208, 2160, 2184]
    assert la.runs_past_horizon[3] is True
    # LB from Jan 2026 (tau 0): 6 months Jan .. Jun 2026; 1.2 MW x 1000 x 100 = 120,000 a month;
    # opex 7,000 USD per MW-month x 1.2 MW = 8,400 a month
    lb = q.leases["LB"]
    assert list(lb.rent_usd[0]) == [approx(360_000), approx(360_000), 0, 0, 0, 0]
    assert list(lb.opex_usd[0]) == [approx(3 * 8_400), approx(3 * 8_400), 0, 0, 0, 0]
    assert list(lb.active_hours[0]) == [2160, 2184, 0, 0, 0, 0]
    assert lb.runs_past_horizon[0] is False
    # LC (no margin, no opex figure): opex 0; from Jul 2026: 1.5 x 1000 x 90 = 135,000 a month
    lc = q.leases["LC"]
    assert list(lc.rent_usd[2]) == [0, 0, approx(405_000), approx(405_000), approx(405_000), approx(405_000)]
    assert list(lc.opex_usd[2]) == [0.0] * 6


def test_terminal_lease_noi_and_discounted_hours(q):
    la, lc = q.leases["LA"], q.leases["LC"]
    d = lambda k: 1.1 ** (-k / 12)  # k months after the horizon end (Jun 2027)
    # LA from Oct 2026 runs to Dec 2027: after the horizon Jul .. Dec 2027 (k = 1..6). Lease year 1
    # starts Oct 2027 (k = 4). NOI = 0.8 x rent: 240,000 (k 1..3), 0.8 x 315,000 = 252,000 (k 4..6)
    noi = sum(240_000 * d(k) for k in (1, 2, 3)) + sum(252_000 * d(k) for k in (4, 5, 6))
    assert la.terminal_noi_usd[3] == approx(noi)
    # hours of Jul 744, Aug 744, Sep 720, Oct 744, Nov 720, Dec 744
    hours = 744 * d(1) + 744 * d(2) + 720 * d(3) + 744 * d(4) + 720 * d(5) + 744 * d(6)
    assert la.terminal_hours_disc[3] == approx(hours)
    # LA from Apr 2027 (tau 5, 11 months late): Apr 2027 .. Jun 2028; after: Jul 2027 .. Jun 2028
    # (k = 1..12), year 0 to Mar 2028 (k 1..9), year 1 Apr .. Jun 2028 (k 10..12)
    noi5 = sum(240_000 * d(k) for k in range(1, 10)) + sum(252_000 * d(k) for k in (10, 11, 12))
    assert la.terminal_noi_usd[5] == approx(noi5)
    days = [31, 31, 30, 31, 30, 31, 31, 29, 31, 30, 31, 30]  # Jul 2027 .. Jun 2028 (Feb 2028: 29)
    assert la.terminal_hours_disc[5] == approx(sum(24 * n * d(k) for k, n in enumerate(days, start=1)))
    # LC from Jul 2026 (30 months, to Dec 2028), no opex: NOI = rent. After the horizon Jul 2027 ..
    # Dec 2028 (k = 1..18); lease year 1 starts Jul 2027 (k = 1): 135,000 x 1.02, year 2 from Jul 2028
    # (k = 13): 135,000 x 1.02^2
    noi_c = sum(135_000 * 1.02 * d(k) for k in range(1, 13)) + sum(135_000 * 1.02 ** 2 * d(k) for k in range(13, 19))
    assert lc.terminal_noi_usd[2] == approx(noi_c)
    assert lc.runs_past_horizon[2] is True


def test_lease_racks(q):
    r = q.lease_racks_needed
    # unsplittable: whole racks. LA 2,500 kW / 130 kW = 19.23 -> 20 racks; LB 1,200 / 150 = 8 exactly -> 8
    assert r[("LA", "s1")] == 20.0
    assert r[("LB", "s2")] == 8.0
    # splittable: the fraction, per site
    assert r[("LC", "s1")] == approx(1500 / 130)
    assert r[("LC", "s2")] == approx(1500 / 150)
    # eligible sites only
    assert set(r) == {("LA", "s1"), ("LB", "s2"), ("LC", "s1"), ("LC", "s2")}
    # per period when handed over in Apr 2026 (tau 1, 15 months: to Jun 2027): LA's 20 racks from period 1
    assert q.lease_rack_need("LA", "s1", 1).tolist() == [0, 20, 20, 20, 20, 20]
    assert q.first_tranche_racks("LA", "s1") == 20.0 and q.first_tranche_racks("LC", "s2") == approx(10.0)


# ---------------------------------------------------------------- timing helpers, fleet, sites


def test_lead_and_capex_periods(q, m):
    # ceil(lead months / 3)
    assert [q.lead_periods(x) for x in (0, 1, 3, 4, 6, 7)] == [0, 1, 1, 2, 2, 3]
    assert [m.lead_periods(x) for x in (0, 1, 7)] == [0, 1, 7]
    # spread over max(lead, 1) periods from the start
    assert q.capex_periods(2, 0) == [2]
    assert q.capex_periods(1, 3) == [1, 2, 3]
    assert q.capex_periods(0, 1) == [0]


def test_conversion_purchase_expansion_sale_acquisition_periods(q):
    # conversion: lead 7 months = 3 quarters, earliest Apr 2026 (period 1); must finish by period 5:
    # t + 3 <= 5 -> periods 1, 2
    assert q.conversion_periods("s1") == [1, 2]
    assert q.conversion_periods("s2") == []
    # 'po': Mar 2026 (period 0) .. Jan 2027 (period 4), lead 5 months = 2 quarters: t + 2 <= 5 -> 0..3
    po, late = q.inst.fleet.purchase_options
    assert q.purchase_periods(po) == [0, 1, 2, 3]
    # 'late': from Feb 2027 (period 4), no last month, no lead -> 4, 5
    assert q.purchase_periods(late) == [4, 5]
    g1, g2 = q.inst.site_by_id["s1"].grid_expansions
    # g1: lead 0 from Aug 2026 (period 2); g2: lead 4 months = 2 quarters, no earliest month: t <= 3
    assert q.expansion_periods("s1", g1) == [2, 3, 4, 5]
    assert q.expansion_periods("s1", g2) == [0, 1, 2, 3]
    # sale from Nov 2026 (period 3); acquisition from Jun 2026 (period 1)
    assert q.sale_periods("s1") == [3, 4, 5] and q.sale_periods("s2") == []
    assert q.acquisition_periods("s2") == [1, 2, 3, 4, 5] and q.acquisition_periods("s1") == []
    assert q.owned_at_start("s1") is True and q.owned_at_start("s2") is False
    assert q.period("2026-08") == 2 and q.period("2027-06") == 5 and q.period(None, default=4) == 4


def test_purchase_and_sale_periods_at_the_horizon_edges(q):
    po = q.inst.fleet.purchase_options[0]
    # no lead, last month May 2026 (period 1): orders in periods 0 and 1 only
    assert q.purchase_periods(po.model_copy(update={"lead_months": 0, "last_month": "2026-05"})) == [0, 1]
    # lead 1 month = 1 quarter, last month Jul 2026 (period 2): 0..2, every delivery inside the horizon
    assert q.purchase_periods(po.model_copy(update={"lead_months": 1, "last_month": "2026-07"})) == [0, 1, 2]
    # no lead, last month in the last period (Jun 2027, period 5): every period 0..5
    assert q.purchase_periods(po.model_copy(update={"lead_months": 0, "last_month": "2027-06"})) == [0, 1, 2, 3, 4, 5]
    # a sale allowed from the first month: every period, the first included
    raw = copy.deepcopy(QUARTERLY)
    raw["sites"][0]["sale"]["earliest_month"] = "2026-01"
    assert compile_instance(Instance.from_dict(raw)).sale_periods("s1") == [0, 1, 2, 3, 4, 5]


def test_initial_units_and_capex_budget(q, m):
    # two rows of m200 at s1 add up: 1000 + 500
    assert q.initial_units == {("s1", "m200"): 1500.0, ("s1", "m100"): 200.0}
    # per-year dict: 2026 given, 2027 not; a single number applies to every year
    assert q.capex_budget(2026) == 5_000_000 and q.capex_budget(2027) is None
    assert m.capex_budget(2026) == 3_000_000 and m.capex_budget(2031) == 3_000_000


# ---------------------------------------------------------------- take-or-pay minimum and plant fixed cost


def _power_cost(ev) -> dict[tuple[str, str, int], float]:
    cf = ev.cashflows[ev.cashflows["item"] == "power_cost_usd"]
    return {(w, s, int(t)): float(v) for (w, s, t), v in cf.groupby(["scenario", "site", "period"])["usd"].sum().items()}


def test_take_or_pay_minimum_and_plant_fixed_cost_follow_term_and_ownership():
    """Nothing runs and no energy is taken: fixed contract F (10 MW, 70 % take-or-pay) pays its
    minimum 0.7 x 10 MW x its hours in the term at its escalated price while s1 is owned; plant G
    pays 10,000 USD per month of its term while s2 is owned (bought in 2026-10)."""
    import pandas as pd

    from optimizer.evaluate import evaluate
    from optimizer.plan import Plan

    inst = Instance.from_dict(QUARTERLY)
    idle = pd.DataFrame([("up", "s1", "m200", "2026-01", 0.0)], columns=["scenario", "site", "model", "month", "units"])
    buy_s2 = pd.DataFrame([("s2", "acquisition", "2026-10")], columns=["site", "event", "month"])
    q5 = (720 * 50 + 744 * 53 + 720 * 53) / 2184                 # escalated price of Apr .. Jun 2027
    ev = evaluate(inst, Plan(operations=idle, site_events=buy_s2))
    assert ev.violations == []
    got = _power_cost(ev)
    for w in ("up", "down"):
        # F: May + Jun 2026 = 1,464 h; then 2,208, 2,208, 2,160, 2,184 h
        assert got[(w, "s1", 1)] == approx(-50 * 0.7 * 10 * 1464)
        assert got[(w, "s1", 2)] == approx(-50 * 0.7 * 10 * 2208)
        assert got[(w, "s1", 4)] == approx(-50 * 0.7 * 10 * 2160)
        assert got[(w, "s1", 5)] == approx(-q5 * 0.7 * 10 * 2184)
        assert (w, "s1", 0) not in got                            # before the term
        # G (Sep 2026 .. Mar 2027) while s2 is owned (from 2026-10): 3 months in Q3 and in Q4; Sep is not owned
        assert got[(w, "s2", 3)] == approx(-3 * 10_000) and got[(w, "s2", 4)] == approx(-3 * 10_000)
        assert (w, "s2", 2) not in got and (w, "s2", 5) not in got
    # s1 sold in 2026-10 (its units retired then): no minimum from that quarter on
    sale = pd.DataFrame([("s1", "sale", "2026-10")], columns=["site", "event", "month"])
    retire = pd.DataFrame([("s1", "m200", "2026-10", 1500.0), ("s1", "m100", "2026-10", 200.0)],
                          columns=["site", "model", "month", "units"])
    ev = evaluate(inst, Plan(operations=idle, site_events=sale, retirements=retire))
    assert ev.violations == []
    got = _power_cost(ev)
    assert {t for (w, s, t) in got if s == "s1"} == {1, 2}


# ---------------------------------------------------------------- the horizon's end (models/economics.md, "Terminal values")


def terminal_variant(**terminal) -> dict:
    import copy

    raw = copy.deepcopy(QUARTERLY)
    raw["horizon"]["terminal"] = {"hpc_unleased_noi_usd_per_mw_year": 300_000, "hpc_cap_rate": 0.09,
                                  "mining_margin_multiple": 0.5, **terminal}
    raw["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 2_000
    raw["contracts"][0]["term_months"] = 16          # F: May 2026 .. Aug 2027, two months past the end
    return raw


@pytest.fixture(scope="module")
def qt():
    return compile_instance(Instance.from_dict(terminal_variant()))


def test_site_energy_price_in_the_horizon(q):
    # s1: F (fixed 50 from May 2026, 6 % from May 2027), I (index +3, Feb .. May 2026), X (index +0, no term)
    #   Q0: no fixed supply; index contracts run (X: +0 is the lowest adder): the quarter's north price
    #   Q1: Apr at the quarter's north price (48 up: (46 + 48 + 50) / 3; 30 down), May and Jun at 50
    #   Q2..Q4: 50; Q5: Apr 2027 at 50, May and Jun at 53
    north_up = [42, 48, 54, 60, 62, 62]
    for w, north in ((0, north_up), (1, [30] * 6)):
        want = [north[0], (720 * north[1] + 1464 * 50) / 2184, 50, 50, 50, (720 * 50 + 1464 * 53) / 2184]
        assert list(q.site_energy_price["s1"][w]) == [approx(x) for x in want]
    # s2: G (owned generation, 20 USD/MWh variable cost, Sep 2026 .. Mar 2027), south 35 otherwise:
    # Q2 = Jul 744 h and Aug 744 h at 35, Sep 720 h at 20
    want = [35, 35, (1488 * 35 + 720 * 20) / 2208, 20, 20, 35]
    for w in (0, 1):
        assert list(q.site_energy_price["s2"][w]) == [approx(x) for x in want]


def test_site_energy_price_after_the_horizon(qt):
    # F now runs to Aug 2027: months 1, 2 after the end at 53; then the last quarter's north price
    # (62 up, 30 down), no adder (X has no term: it ends with the horizon)
    for w, north in ((0, 62), (1, 30)):
        assert list(qt.site_energy_price_after["s1"][w][:4]) == [approx(53), approx(53), approx(north), approx(north)]
    # the terminal mining price: 0.5 x 12 = 6 months, Jul 744 h, Aug 744 h at 53, Sep 720, Oct 744,
    # Nov 720, Dec 744 h at the north price
    for w, north in ((0, 62), (1, 30)):
        want = (1488 * 53 + (720 + 744 + 720 + 744) * north) / (1488 + 720 + 744 + 720 + 744)
        assert qt.terminal_mining_price["s1"][w] == approx(want)


def test_hpc_market_value_and_reversion_factor(qt):
    # V = max(0, 300,000 x idx of the last quarter - 12 x 2,000) / 0.09; idx up 1.16 (Apr .. Jun 2027
    # = months 15..17 of 1 + 0.01 k), down 1.0; s2 has no fixed HPC opex
    assert list(qt.hpc_value_usd_per_mw["s1"]) == [approx((348_000 - 24_000) / 0.09), approx((300_000 - 24_000) / 0.09)]
    assert list(qt.hpc_value_usd_per_mw["s2"]) == [approx(348_000 / 0.09), approx(300_000 / 0.09)]
    # rho(n) = max(1.1^(-n/12), 1 - 0.09/12 x a(n)): 9 % < 12 x (1.1^(1/12) - 1) = 9.57 %, the second term
    a6 = sum(1.1 ** (-k / 12) for k in range(1, 7))
    assert qt.annuity_after(6) == approx(a6)
    assert qt.reversion_factor(6) == approx(1 - 0.09 / 12 * a6)
    assert qt.reversion_factor(6) > 1.1 ** -0.5
    assert qt.reversion_factor(0) == 1.0
    # a cap rate above the discount rate: the market value discounted from the lease's end
    hi = compile_instance(Instance.from_dict(terminal_variant(hpc_cap_rate=0.12)))
    assert hi.reversion_factor(6) == approx(1.1 ** -0.5)
    # a market NOI below the fixed HPC opex: worth 0, not negative
    low = compile_instance(Instance.from_dict(terminal_variant(hpc_unleased_noi_usd_per_mw_year=20_000)))
    assert list(low.hpc_value_usd_per_mw["s1"]) == [0.0, 0.0]


def test_lease_terminal_value_net_of_fixed_opex_and_power(qt):
    d = lambda k: 1.1 ** (-k / 12)  # noqa: E731
    # LA from Oct 2026 (tau 3) at s1: 6 months after the end (Jul .. Dec 2027); NOI as in
    # test_terminal_lease_noi_and_discounted_hours; fixed HPC opex 2,000 x 20 racks (2.5 MW / 0.13,
    # rounded up) x 0.13 MW = 5,200 a month; power: 2.5 MW x PUE 1.25 x hours x what s1 pays
    # (53 in Jul and Aug 2027 under F, then the north price)
    noi = sum(240_000 * d(k) for k in (1, 2, 3)) + sum(252_000 * d(k) for k in (4, 5, 6))
    hours = [744, 744, 720, 744, 720, 744]
    for w, north in ((0, 62), (1, 30)):
        price = [53, 53, north, north, north, north]
        power = sum(2.5 * 1.25 * h * p * d(k) for k, (h, p) in enumerate(zip(hours, price), start=1))
        want = noi - 5_200 * sum(d(k) for k in range(1, 7)) - power
        assert qt.lease_terminal_usd("LA", 3, "s1")[w] == approx(want)
    assert qt.leases["LA"].months_after[3] == 6
    # a term that ends inside the horizon: nothing
    assert list(qt.lease_terminal_usd("LA", 1, "s1")) == [0.0, 0.0]


def test_lease_terminal_power_follows_who_pays_it():
    d = lambda k: 1.1 ** (-k / 12)  # noqa: E731
    hours = [744, 744, 720, 744, 720, 744]
    raw = terminal_variant()
    la = raw["leases"][0]
    # pass-through at the site's price: the tenant pays what s1 pays, the landlord bears nothing
    la.update(power_passthrough=True)
    d1 = compile_instance(Instance.from_dict(raw))
    assert list(d1.lease_power_net_after(d1.leases["LA"].lease, "s1", 6)) == [0.0, 0.0]
    assert list(d1.lease_credit_price("LA", "s1")[0]) == list(d1.site_energy_price["s1"][0])
    # pass-through at market: the landlord pays 53 in Jul and Aug under F and gets the north price
    la.update(passthrough_price="market")
    d2 = compile_instance(Instance.from_dict(raw))
    for w, north in ((0, 62), (1, 30)):
        want = 1.25 * sum(h * (53 - north) * d(k) for k, h in ((1, 744), (2, 744)))
        assert d2.lease_power_net_after(d2.leases["LA"].lease, "s1", 6)[w] == approx(want)
    assert list(d2.lease_credit_price("LA", "s1")[1]) == list(d2.power_price["north"][1])
    # an after-power NOI margin (no pass-through): the power is inside the margin, credited back
    la.pop("passthrough_price")
    la.update(power_passthrough=False, noi_margin_basis="after_power")
    d3 = compile_instance(Instance.from_dict(raw))
    assert list(d3.lease_power_net_after(d3.leases["LA"].lease, "s1", 6)) == [0.0, 0.0]
    assert list(d3.lease_credit_price("LA", "s1")[0]) == list(d3.site_energy_price["s1"][0])
    # the landlord bears it: no credit in the horizon
    la.pop("noi_margin_basis")
    d4 = compile_instance(Instance.from_dict(raw))
    assert d4.lease_credit_price("LA", "s1") is None
    assert sum(hours) > 0


# ---------------------------------------------------------------- accessors the model and evaluator read (benchmarks/MUTATION.md)


def accessor_variant() -> dict:
    """terminal_variant() with: s1 a 60 % joint venture with fixed mining opex and a mining new-build,
    its conversion without an earliest month; s2 with an HPC and a mining new-build, an index
    contract J (+2) in Q0 and two fixed contracts around the owned generation G (Zb 1 MW at 30 in
    Q3, Za 0.5 MW at 40 from Oct 2026 to Jun 2027); contract I moved to the horizon's last month;
    no ASIC salvage; a GPU price index of 1.2 and a hand-over delay of 2 months in "down"; a demand-response
    program in the north market; a GPU cloud option; LB renewable once for 6 months at +3 % when
    the HPC index is at least that (holder mode); a fuel price path and a G&A reduction."""
    raw = terminal_variant(asic_salvage=False)
    s1, s2 = raw["sites"]
    s1.update(ownership_share=0.6, fixed_opex_mining_usd_per_mw_month=1_000,
              new_builds=[{"id": "nb_m", "use": "mining", "racks_per_block": 5, "capex_usd_per_mw": 500_000,
                           "mining_kw_per_rack": 300, "lead_months": 3, "max_blocks": 2}])
    s1["conversion"].pop("earliest_month")
    s2["new_builds"] = [{"id": "nb_m2", "use": "mining", "racks_per_block": 2, "capex_usd_per_mw": 400_000,
                         "mining_kw_per_rack": 350, "lead_months": 0, "max_blocks": 1},
                        {"id": "nb_h", "use": "hpc", "racks_per_block": 4, "capex_usd_per_mw": 9_000_000,
                         "lead_months": 6, "max_blocks": 3}]
    contracts = raw["contracts"]
    contracts[1].update(start_month="2027-06")               # I: index, from the last month
    contracts.insert(0, {"id": "Zb", "site": "s2", "kind": "fixed", "start_month": "2026-10", "term_months": 3,
                         "price_usd_per_mwh": 30, "mw_cap": 1})
    contracts.append({"id": "Za", "site": "s2", "kind": "fixed", "start_month": "2026-10", "term_months": 9,
                      "price_usd_per_mwh": 40, "mw_cap": 0.5})
    contracts.append({"id": "J", "site": "s2", "kind": "index", "start_month": "2026-01", "term_months": 3,
                      "adder_usd_per_mwh": 2})
    raw["leases"][1]["renewals"] = {"count": 1, "term_months": 6, "mode": "holder", "rent_step_share": 0.03}
    raw["fuels"] = [{"id": "gas", "price_usd_per_mmbtu": 3.5}]
    raw["overhead"] = {"g_and_a_usd_per_month": 100_000, "reductions": [
        {"id": "cut", "staff_cost_usd_per_year": 1_200_000, "cut_share": 0.1, "earliest_month": "2026-05", "latest_month": "2027-01"}]}
    raw["scenarios"][0]["gpu_price_index"] = 1.2
    raw["scenarios"][1]["handover_delay_months"] = 2
    raw["markets"] = [{"id": "north", "demand_response": {"payment_usd_per_mw_month": 5_000}}]
    raw["gpu_cloud"] = {"options": [{"id": "gx", "kw_per_gpu": 2.0, "usd_per_mw": 20_000_000, "price_usd_per_mw_month": 100_000,
                                     "useful_life_months": 36, "first_month": "2026-01"},
                                    {"id": "gy", "kw_per_gpu": 2.0, "usd_per_mw": 1_000_000, "price_usd_per_mw_month": 0,
                                     "opex_usd_per_mw_month": 10_000, "useful_life_months": 12, "first_month": "2026-04"}]}
    return raw


@pytest.fixture(scope="module")
def qv():
    return compile_instance(Instance.from_dict(accessor_variant()))


def test_site_accessors(qv, q):
    # W x PUE / 1e6: 3,500 x 1.08 / 1e6 MW per operating m200 at s1
    assert qv.mw_per_unit("s1", "m200") == approx(3_500 * 1.08 / 1e6)
    # the JV share of s1, 1 for s2 and the portfolio
    assert qv.share("s1") == 0.6 and qv.share("s2") == 1.0
    # s1's market (north) has a demand-response program: 5,000 USD per MW-month x 3 months a
    # quarter; s2's (south) has none
    assert qv.flex("s1").dr_pay_usd_per_mw.tolist() == [15_000.0] * 6 and qv.flex("s2") is None
    # the levers read the scenario series (a fuel at 3.5 USD/MMBtu in every period) and the
    # periods of months: the G&A cut may be taken from May 2026 (period 1) to Jan 2027 (period 4)
    assert qv.lev.fuel_price["gas"].tolist() == [[3.5] * 6, [3.5] * 6]
    assert qv.lev.reductions["cut"].periods == [1, 2, 3, 4]
    # new builds per site and use
    assert [b.option.id for b in qv.site_builds("s2")] == ["nb_m2", "nb_h"]
    assert [b.option.id for b in qv.site_builds("s2", "hpc")] == ["nb_h"]
    assert [b.option.id for b in qv.site_builds("s2", "mining")] == ["nb_m2"]
    assert [b.option.id for b in qv.site_builds("s1")] == ["nb_m"] and qv.site_builds("s1", "hpc") == []
    # conversion without an earliest month: from period 0, lead 3 quarters, done by period 5
    assert qv.conversion_periods("s1") == [0, 1, 2]
    # no salvage without terminal.asic_salvage (300 with it)
    assert qv.mining_salvage_usd_per_unit("m200") == 0.0 and q.mining_salvage_usd_per_unit("m200") == 300.0
    # the scenarios' GPU price index and hand-over delays
    assert qv.gpu_index.tolist() == [[1.2] * 6, [1.0] * 6]
    # merchant GPU revenue of a MW in service: 100,000 USD per MW-month x 3 months x the index
    assert qv.gpus["gx"].merchant_usd_per_mw.tolist() == [[approx(360_000)] * 6, [approx(300_000)] * 6]
    # gy may be ordered from 2026-04 (quarter 1) to the last quarter; its opex is 10,000 USD per
    # MW-month x 3 months a quarter; a 12-month life is 4 quarters
    assert qv.gpus["gy"].periods == [1, 2, 3, 4, 5] and qv.gpus["gx"].periods == [0, 1, 2, 3, 4, 5]
    assert qv.gpus["gy"].opex_usd_per_mw == approx(30_000) and qv.gpus["gy"].life == 4
    assert qv.delays.tolist() == [0, 2]
    # the HPC lease-rate index month by month (up: 1 + 0.01 per month from Jan 2026; down: 1)
    assert qv.hpc_index_monthly[0][:4].tolist() == [approx(1.0), approx(1.01), approx(1.02), approx(1.03)]
    assert set(qv.hpc_index_monthly[1].tolist()) == {1.0}
    # the contract each ContractData describes; I starts in the last month: it runs to the end
    assert qv.contracts["Za"].contract.id == "Za"
    assert qv.contracts["I"].runs_to_horizon_end is True and qv.contracts["Zb"].runs_to_horizon_end is False


def test_holder_renewal_follows_each_scenarios_index(qv):
    from optimizer.economics.data import lease_at

    # LB from Jan 2026 (tau 0), 6 months at 120,000 a month. "up": its renewal from Jul 2026 asks
    # 1.03 x the rate, the index is then 1.06: renewed, Jul .. Dec 2026 at 123,600 a month. "down":
    # delayed 2 months (Mar .. Aug 2026), the renewal from Sep 2026 asks 1.03, the index is 1.0:
    # not renewed.
    assert qv.leases["LB"].schedule(0, 0).rent_usd.tolist() == [approx(x) for x in (360_000, 360_000, 370_800, 370_800, 0, 0)]
    assert qv.leases["LB"].schedule(0, 1).rent_usd.tolist() == [approx(x) for x in (120_000, 360_000, 240_000, 0, 0, 0)]
    # handed over in Apr 2026 instead (outside its window): "up" renews from Oct 2026 (index 1.09)
    out = lease_at(qv, "LB", 1)
    assert out.schedule(1, 0).rent_usd.tolist() == [approx(x) for x in (0, 360_000, 360_000, 370_800, 370_800, 0)]


def test_tenant_capex(qv, q):
    la, lb = (qv.inst_lease(x) for x in ("LA", "LB"))
    # s1 has a conversion: its capex per MW and lead (7 months = 3 quarters)
    assert qv.tenant_capex(la, "s1") == (2_000_000, 3, "hpc_conversion", None)
    # s2 has none: its first HPC new-build (6 months = 2 quarters), not the mining one listed first
    assert qv.tenant_capex(lb, "s2") == (9_000_000, 2, "new_build", "nb_h")
    # neither (s2 of the base instance): None
    assert q.tenant_capex(lb, "s2") is None
    # evenly over the lead periods before the hand-over; before the horizon: in period 0; lead 0: in tau
    assert qv.tenant_capex_fractions(3, 2).tolist() == [0, 0.5, 0.5, 0, 0, 0]
    assert qv.tenant_capex_fractions(1, 3).tolist() == [1.0, 0, 0, 0, 0, 0]
    assert qv.tenant_capex_fractions(4, 0).tolist() == [0, 0, 0, 0, 1.0, 0]
    # hand-over in 5 after 4 periods of works: 1, 2, 3, 4
    assert qv.tenant_capex_fractions(5, 4).tolist() == [0, 0.25, 0.25, 0.25, 0.25, 0]
    # one period of works: all of it in the period before the hand-over; lead 0 in the last period
    assert qv.tenant_capex_fractions(3, 1).tolist() == [0, 0, 1.0, 0, 0, 0]
    assert qv.tenant_capex_fractions(5, 0).tolist() == [0, 0, 0, 0, 0, 1.0]


def test_site_energy_price_with_stacked_fixed_supply(qv):
    # s2 (south 35 in both scenarios): Q0 the index contract J: 35 + 2; Q1 the market; Q2 Jul and
    # Aug at 35, Sep under G (20); Q3 Zb 1 MW at 30, G 4 MW at 20, Za 0.5 MW at 40: 130 / 5.5;
    # Q4 G and Za: (80 + 20) / 4.5; Q5 Za alone (0.5 MW): 40
    want = [37, 35, (1488 * 35 + 720 * 20) / 2208, 130 / 5.5, 100 / 4.5, 40]
    for w in (0, 1):
        assert qv.site_energy_price["s2"][w].tolist() == [approx(x) for x in want]


def test_costs_after_the_horizon(qt, qv):
    d = lambda k: 1.1 ** (-k / 12)  # noqa: E731
    # hours of the months after Jun 2027, for as many months as the data holds: K = the longest
    # lease term (LC, 30) + ceil(12 x 0.5) + 1 = 37
    days = [31, 31, 30, 31, 30, 31, 31, 29, 31, 30, 31, 30] + [31, 31, 30, 31, 30, 31, 31, 28, 31, 30, 31, 30] \
        + [31, 31, 30, 31, 30, 31, 31, 28, 31, 30, 31, 30] + [31]
    assert len(qt.hours_after) == 37 == len(days)
    assert qt.hours_after.tolist() == [24.0 * n for n in days]
    # s2 pays south 35 after the horizon: a constant MW for n months, at the horizon end; past K
    # months the cost stops at K months
    assert qt.energy_cost_after("s2", 3)[0] == approx(35 * (744 * d(1) + 744 * d(2) + 720 * d(3)))
    full = 35 * sum(24 * n * d(k) for k, n in enumerate(days, start=1))
    assert qt.energy_cost_after("s2", 100).tolist() == [approx(full), approx(full)]
    # at the last period's market price: s1's north price of Q5 (62 up, 30 down)
    assert qt.market_cost_after("s1", 2).tolist() == [approx(62 * (744 * d(1) + 744 * d(2))),
                                                      approx(30 * (744 * d(1) + 744 * d(2)))]
    # one month after the end: max(1.1^(-1/12), 1 - 0.09 / 12 x 1.1^(-1/12)), the second here
    assert qt.reversion_factor(1) == approx(1 - 0.09 / 12 * d(1))
    # fixed mining opex of one installed unit for a quarter: 1,000 USD per MW-month x 3.5 kW (m200)
    # x 3 months = 10.5; 2,150 W (m100): 6.45
    assert qv.mining_opex_usd_per_unit("s1", "m200") == approx(10.5)
    assert qv.mining_opex_usd_per_unit("s1", "m100") == approx(6.45)


def test_prices_after_the_horizon_are_the_last_periods():
    d = lambda k: 1.08 ** (-k / 12)  # noqa: E731
    raw = copy.deepcopy(MONTHLY)
    raw["horizon"]["terminal"] = {"mining_margin_multiple": 1.0}
    sc = raw["scenarios"][0]
    sc["power_price_usd_per_mwh"] = {"m": {"points": {"2026-05": 45, "2026-06": 50}}}
    mm = compile_instance(Instance.from_dict(raw))
    # no lease: K = 12 x 1 + 1 months after the end
    assert len(mm.hours_after) == 13
    # May 45 USD/MWh, June 50
    assert mm.power_price["m"][0, 4:].tolist() == [45, 50]
    # a MW for one month after the end at June's market price: 50 x 744 h (July), discounted a month
    assert mm.market_cost_after("a", 1)[0] == approx(50 * 744 * d(1))
    # the terminal mining margin's power price: June's, in every month after the end
    assert mm.terminal_mining_price["a"].tolist() == [approx(50.0)]


def test_restrict_keeps_one_scenarios_arrays(q):
    r = q.restrict([1])
    assert r.W == 1 and r.prob.tolist() == [0.4] and r.scenario_names == ["down"]
    for name in ("btc_price_usd", "hashrate_eh_s", "fees_btc_per_block", "hashprice_btc_per_ph_day",
                 "hashprice_usd_per_ph_day", "hpc_index"):
        assert getattr(r, name).tolist() == [getattr(q, name)[1].tolist()], name
    for name in ("power_price", "btc_per_unit", "site_energy_price", "site_energy_price_after"):
        got, full = getattr(r, name), getattr(q, name)
        assert set(got) == set(full) and all(got[k].tolist() == [full[k][1].tolist()] for k in full), name
    # the down scenario: 60,000 USD, 1,000 EH/s, north 30
    assert set(r.btc_price_usd[0].tolist()) == {60_000.0} and set(r.power_price["north"][0].tolist()) == {30.0}


def test_lease_outside_its_window_and_the_tree(q):
    from optimizer.economics.data import instance_tree, lease_at

    # inside the window: the compiled lease itself
    assert lease_at(q, "LB", 0) is q.leases["LB"]
    # LB handed over in Jul 2026 (tau 2), outside its window: 6 months Jul .. Dec 2026 at
    # 1.2 MW x 1000 x 100 = 120,000 a month
    out = lease_at(q, "LB", 2)
    assert out.rent_usd[2].tolist() == [0, 0, approx(360_000), approx(360_000), 0, 0]
    # hours of the lease's periods: Jul .. Sep 2026 (92 days) and Oct .. Dec (92 days) x 24
    assert out.active_hours[2].tolist() == [0, 0, 2208, 2208, 0, 0]
    # the two-stage form: one branch at period 0; a tree branching in Jul 2026: period 2
    assert q.tree.branch_periods == [0]
    # "down" follows "up" until Jul 2026, then falls: the root holds Jan .. Jun 2026
    raw = copy.deepcopy(QUARTERLY)
    down = copy.deepcopy(raw["scenarios"][0])
    down.update(name="down", probability=0.4, btc_price_usd={"points": {"2026-01": 90_000, "2026-07": 120_000, "2026-10": 60_000}})
    raw["scenarios"][1] = down
    raw["tree"] = {"branch_months": ["2026-07"], "paths": {"up": ["u"], "down": ["d"]}}
    inst = Instance.from_dict(raw)
    tree = instance_tree(inst, q.tl, q.prob)
    assert tree.branch_periods == [2] and tree.labels == [("u",), ("d",)] and tree.scenario_names == ["up", "down"]
    assert tree.prob.tolist() == [0.6, 0.4]


def test_lease_terminal_of_tranches_and_of_one_month_after():
    d = lambda k: 1.1 ** (-k / 12)  # noqa: E731
    raw = terminal_variant()
    # LA in two tranches (1.5 MW at once, 1.0 MW three months later), a pass-through at the site's
    # price: the landlord bears no power after the horizon
    raw["leases"][0].update(tranches=[{"it_mw": 1.5, "offset_months": 0}, {"it_mw": 1.0, "offset_months": 3}],
                            power_passthrough=True, term_months=16)
    # LB runs 19 months from Jan 2026: to Jul 2027, one month after the horizon
    raw["leases"][1].update(term_months=19)
    # LC (splittable, at s2) in two tranches, 1.0 MW at once and 0.5 MW two months later; the
    # landlord bears the power (no pass-through, no after-power margin)
    raw["leases"][2].update(tranches=[{"it_mw": 1.0, "offset_months": 0}, {"it_mw": 0.5, "offset_months": 2}])
    dd = compile_instance(Instance.from_dict(raw))
    # LA (16 months each tranche) from Oct 2026 (tau 3): tranche 1 to Jan 2028 (7 months after),
    # tranche 2 Jan 2027 .. Apr 2028 (10 months after); s1's fixed HPC opex 2,000 USD per MW-month
    # on whole racks of 130 kW: 12 racks (1.56 MW) and 8 racks (1.04 MW). From Apr 2026 (tau 1):
    # tranche 1 to Jul 2027 (1 month after), tranche 2 Jul 2026 .. Oct 2027 (4 months after).
    # The contracted NOI after the horizon is the lease schedule's (tested on its own above).
    for tau, (n1, n2) in ((3, (7, 10)), (1, (1, 4))):
        fixed = 2_000 * (1.56 * sum(d(k) for k in range(1, n1 + 1)) + 1.04 * sum(d(k) for k in range(1, n2 + 1)))
        for w in (0, 1):
            noi = dd.leases["LA"].schedule(tau, w).terminal_noi_usd
            assert dd.lease_terminal_usd("LA", tau, "s1")[w] == approx(noi - fixed)
    # LC from Jul 2026 (tau 2), 30 months a tranche: to Dec 2028 (18 months after) and Sep 2026 ..
    # Feb 2029 (20 months after); s2 pays south 35 after the horizon, PUE 1.3, no fixed HPC opex
    hours = [24.0 * n for n in [31, 31, 30, 31, 30, 31, 31, 29, 31, 30, 31, 30] + [31, 31, 30, 31, 30, 31, 31, 28]]
    power = 1.3 * 35 * (1.0 * sum(h * d(k) for k, h in enumerate(hours[:18], start=1))
                        + 0.5 * sum(h * d(k) for k, h in enumerate(hours[:20], start=1)))
    for w in (0, 1):
        noi = dd.leases["LC"].schedule(2, w).terminal_noi_usd
        assert dd.lease_terminal_usd("LC", 2, "s2")[w] == approx(noi - power)
    # LA (15 months) from Apr 2026 (tau 1): tranche 1 ends with the horizon (Jun 2027), tranche 2
    # (Jul 2026 .. Sep 2027) runs 3 months after it; LC a pass-through at the market price: s2 pays
    # the market price after the horizon (the last quarter's: south rising 1 USD/MWh a month from 35
    # in Jan 2026, so every quarter differs), and the tenant reimburses that: the landlord bears nothing
    r15 = copy.deepcopy(raw)
    r15["leases"][0].update(term_months=15)
    r15["leases"][2].update(power_passthrough=True, passthrough_price="market")
    for sc in r15["scenarios"]:
        sc["power_price_usd_per_mwh"]["south"] = {"points": {"2026-01": 35, "2027-06": 52}}
    d15 = compile_instance(Instance.from_dict(r15))
    for w in (0, 1):
        noi = d15.leases["LA"].schedule(1, w).terminal_noi_usd
        assert d15.lease_terminal_usd("LA", 1, "s1")[w] == approx(noi - 2_000 * 1.04 * sum(d(k) for k in (1, 2, 3)))
        assert d15.lease_terminal_usd("LC", 2, "s2")[w] == approx(d15.leases["LC"].schedule(2, w).terminal_noi_usd)
    # LB as a GPU cloud contract: no prepaid rent, so no deferred revenue (the GPUs' book value
    # stands for what they earn after the horizon, economics/leases.py); its racks are the GPUs' and
    # their power is not the lease's (it would be 1.2 x 1.3 x 744 x 35 x d(1) as above): 0
    raw["gpu_cloud"] = {"options": [{"id": "gx", "kw_per_gpu": 2.0, "usd_per_mw": 20_000_000, "price_usd_per_mw_month": 100_000,
                                     "useful_life_months": 36, "first_month": "2026-01"}]}
    raw["leases"][1].update(gpu_option="gx")
    dg = compile_instance(Instance.from_dict(raw))
    for w in (0, 1):
        assert dg.leases["LB"].schedule(0, w).terminal_noi_usd == 0.0
    assert dg.lease_terminal_usd("LB", 0, "s2").tolist() == [0.0, 0.0]
    # LB (tau 0) at s2: no fixed HPC opex; the landlord bears the power of Jul 2027: 1.2 MW x PUE
    # 1.3 x 744 h x south 35, discounted one month
    for w in (0, 1):
        noi = dd.leases["LB"].schedule(0, w).terminal_noi_usd
        assert noi > 0
        assert dd.lease_terminal_usd("LB", 0, "s2")[w] == approx(noi - 1.2 * 1.3 * 744 * 35 * d(1))


def test_discount_factors_per_rate_class():
    # financing.discount_rates: merchant mining at 20 %, contracted lease NOI at 8 %, the rest at
    # the horizon's 10 %. A quarter's factor is the mean of its months' (1 + r)^(-m/12); a terminal
    # line takes its class's factor at the horizon end, (1 + r)^(-18/12).
    raw = copy.deepcopy(QUARTERLY)
    raw["financing"] = {"discount_rates": {"merchant_mining": 0.2, "contracted_lease": 0.08}}
    dd = compile_instance(Instance.from_dict(raw))

    def quarters(r):
        return [approx(sum((1 + r) ** (-(3 * t + j) / 12) for j in (1, 2, 3)) / 3) for t in range(6)]

    assert dd.item_df("mining_revenue_usd").tolist() == quarters(0.2)
    assert dd.item_df("lease_revenue_usd").tolist() == quarters(0.08)
    assert dd.item_df("power_cost_usd").tolist() == quarters(0.1)
    assert dd.item_df("terminal_mining_usd").tolist() == [approx(1.2 ** -1.5)] * 6
    assert dd.item_df("terminal_lease_noi_usd").tolist() == [approx(1.08 ** -1.5)] * 6
    assert dd.item_df("terminal_hpc_usd").tolist() == [approx(1.1 ** -1.5)] * 6
    # without a financing section every line takes the horizon's rate
    q0 = compile_instance(Instance.from_dict(QUARTERLY))
    assert q0.item_df("mining_revenue_usd").tolist() == quarters(0.1)
    assert q0.item_df("terminal_mining_usd").tolist() == [approx(1.1 ** -1.5)] * 6


# ---------------------------------------------------------------- the terminal lease NOI per scenario (Data.lease_terminal_usd)


def _terminal_lease(d: dict, lease: str, month: str, site: str):
    """Data.lease_terminal_usd of `lease` handed over in `month` at `site`, per scenario."""
    data = compile_instance(Instance.from_dict(d))
    return data.lease_terminal_usd(lease, data.tl.period_of(month), site)


def test_racks_held_past_the_end_pay_fixed_opex_in_a_scenario_whose_lease_has_ended():
    # lease T (1 MW = 10 racks of 100 kW, 100 USD/kW-month, pass-through) handed over 2026-03 for 10
    # months: on time it ends with the horizon (2026-12); scenario "late" starts it a month later, so
    # its rack stays reserved through 2027-01 (n = 1 month after the end) in every scenario.
    # r = 0, fixed HPC opex 1,000 USD/MW-month:
    #   on_time: no rent after the end, the held rack's opex 1,000 x 1 MW x 1 month = -1,000
    #   late:    2027-01 rent 1 MW x 1,000 kW x 100 = 100,000, less the same 1,000 = 99,000
    from test_hpc_levers import _tranche_instance

    d = _tranche_instance(tranches=None, term_months=10)
    d["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 1_000
    assert _terminal_lease(d, "T", "2026-03", "h").tolist() == pytest.approx([-1_000.0, 99_000.0])


def test_terminal_power_of_a_probable_renewal_follows_its_weights():
    # lease O (1 MW, 100 USD/kW-month from 2026-04 for 6 months, the landlord pays its power at the
    # index price 40 USD/MWh, PUE 1.2), two renewals of 3 months with probability 0.5, rent +10 % each;
    # renewal 2 runs 2027-01..03 after the end with weight 0.25 (r = 0):
    #   NOI 3 x 100,000 x 1.1^2 x 0.25 = 90,750; fixed opex 10,000 x 1 MW x 3 held months = 30,000;
    #   power 1.2 x 1 MW x 0.25 x (31 + 28 + 31) x 24 h x 40 = 25,920  ->  34,830
    from test_hpc_levers import _option_instance

    d = _option_instance(renewals={"count": 2, "term_months": 3, "probability": 0.5, "rent_step_share": 0.1},
                         power_passthrough=False)
    d["sites"][0]["fixed_opex_hpc_usd_per_mw_month"] = 10_000
    assert _terminal_lease(d, "O", "2026-04", "c").tolist() == pytest.approx([90_750 - 30_000 - 25_920])


def test_terminal_power_of_two_tranches_is_counted_tranche_by_tranche():
    # lease T in two tranches handed over 2026-03, 11 months each, no delay, the landlord pays the
    # power (40 USD/MWh, PUE 1.2): tranche 1 (0.6 MW, 2026-03..2027-01) runs 1 month after the end,
    # tranche 2 (0.4 MW from 2026-05, to 2027-03) 3 months. r = 0:
    #   rent 0.6 x 100,000 x 1 + 0.4 x 100,000 x 3 = 180,000
    #   power 1.2 x 40 x (0.6 x 744 h + 0.4 x (744 + 672 + 744) h) = 62,899.2  ->  117,100.8
    # (the whole lease's 1 MW priced over tranche 1's single month would give 180,000 - 35,712)
    from test_hpc_levers import _tranche_instance

    d = _tranche_instance(term_months=11, delay_exposed=False, power_passthrough=False)
    assert _terminal_lease(d, "T", "2026-03", "h").tolist() == pytest.approx([117_100.8, 117_100.8])


# ---------------------------------------------------------------- holder renewals and tax schedules
# (economics/leases.holder_exercise and kernel/tax.depreciation_fractions: pure functions of their
# arguments, valued here from models/economics.md's rules without compiling an instance)

def _holder_lease(term_months=18):
    from types import SimpleNamespace

    # a lease of 18 months escalating 3 %/year on each anniversary, three 12-month renewals each
    # stepping the rent 5 % (renewal j: x 1.05^j), in "holder" mode (the tenant renews while its
    # renewal rent, relative to the lease's rate, is at or below the market index)
    return SimpleNamespace(term_months=term_months, escalator_per_year=0.03,
                           renewals=SimpleNamespace(count=3, term_months=12, rent_step_share=0.05))


def test_holder_renewals_by_hand():
    import numpy as np

    from optimizer.economics.leases import holder_exercise
    from optimizer.kernel.timeline import Timeline

    tl = Timeline(start=24_300, n_periods=40)  # 40 monthly periods: horizon months 0..39
    s = tl.start + 2                            # the tranche starts in horizon month 2
    # renewal j starts at s + 18 + 12 (j - 1) = horizon month 20, 32, 44 (after the end: read at month 39);
    # its rent = 1.03^floor((18 + 12 (j - 1)) / 12) x 1.05^j:
    #   j=1: 1.03^1 x 1.05   = 1.0815
    #   j=2: 1.03^2 x 1.05^2 = 1.0609 x 1.1025 = 1.16964225
    #   j=3: 1.03^3 x 1.05^3 = 1.092727 x 1.157625 = 1.264968...
    lease = _holder_lease()

    def idx(**months):
        out = np.full(tl.n_months, 1.0)
        for k, v in months.items():
            out[int(k[1:])] = v
        return out

    assert holder_exercise(lease, s, np.full(tl.n_months, 2.0), tl) == 3            # every renewal below the market
    # market 1.09 everywhere: j=1 (1.0815 <= 1.09) renews, j=2 (1.1696 > 1.09) is refused: 1
    # (the escalator counts whole years: 1.03^1.5 x 1.05 = 1.0976 > 1.09 would refuse j=1)
    assert holder_exercise(lease, s, np.full(tl.n_months, 1.09), tl) == 1
    # the market exactly at j=1's rent: "at or below" renews
    assert holder_exercise(lease, s, idx(m20=1.03 * 1.05, m32=1.0, m39=2.0), tl) == 1
    # the first refusal ends the renewals (j=2 and 3 would be taken at month 32 and 39)
    assert holder_exercise(lease, s, idx(m20=1.0, m32=2.0, m39=2.0), tl) == 0
    # j=3 starts after the horizon: read at its last month 39 (1.20 < 1.265: refused), not month 38
    assert holder_exercise(lease, s, idx(m20=2.0, m32=2.0, m38=2.0, m39=1.20), tl) == 2
    assert holder_exercise(lease, s, idx(m20=2.0, m32=2.0, m38=1.0, m39=1.30), tl) == 3
    # a tranche that started 30 months before the horizon: its renewals start at months -12 and 0
    # (both read at month 0) and 12
    early = tl.start - 30
    assert holder_exercise(lease, early, idx(m0=2.0, m12=2.0), tl) == 3
    assert holder_exercise(lease, early, idx(m0=2.0, m1=2.0, m12=1.0), tl) == 2
    # the lease's own term is no renewal: a market below the lease's rate (0.9) before month 20 changes nothing
    low = np.full(tl.n_months, 0.9)
    low[[20, 32, 39]] = 2.0
    assert holder_exercise(lease, s, low, tl) == 3
    # a 24-month lease: renewal 1 starts two whole years in, 1.03^2 x 1.05 = 1.113945 > 1.10: refused
    assert holder_exercise(_holder_lease(24), s, np.full(tl.n_months, 1.10), tl) == 0
    # a lease with no renewal
    none = _holder_lease()
    none.renewals.count = 0
    assert holder_exercise(none, s, np.full(tl.n_months, 2.0), tl) == 0


def test_depreciation_schedules_by_hand():
    from optimizer.kernel.tax import depreciation_fractions

    assert list(depreciation_fractions("none")) == []
    # straight line over 4 years: 1/4 a year; with a 40 % bonus: 0.4 + 0.6/4 = 0.55, then 0.6/4 = 0.15
    assert list(depreciation_fractions("straight_line", 4)) == pytest.approx([0.25] * 4, abs=1e-15)
    assert list(depreciation_fractions("straight_line", 1)) == [1.0]
    assert list(depreciation_fractions("straight_line", 4, 0.4)) == pytest.approx([0.55, 0.15, 0.15, 0.15], abs=1e-15)
    # MACRS 3-year (IRS Pub. 946 Table A-1): 33.33 %, 44.45 %, 14.81 %, 7.41 %
    assert list(depreciation_fractions("macrs", 3)) == pytest.approx([0.3333, 0.4445, 0.1481, 0.0741], abs=1e-15)
    for bad, why in [(("straight_line", None), "needs years > 0, got None"), (("straight_line", 0), "needs years > 0, got 0"),
                     (("macrs", 4), "MACRS recovery period must be one of"), (("declining", 5), "unknown depreciation method 'declining'")]:
        with pytest.raises(ValueError, match=why):
            depreciation_fractions(*bad)
    for share in (-0.1, 1.1):
        with pytest.raises(ValueError, match=rf"bonus_share must be in \[0, 1\], got {share}"):
            depreciation_fractions("straight_line", 4, share)
    # the bounds themselves are allowed: 0 (none in year 0 beyond the schedule) and 1 (all of it)
    assert list(depreciation_fractions("straight_line", 2, 1.0)) == pytest.approx([1.0, 0.0], abs=1e-15)
    assert list(depreciation_fractions("straight_line", 2, 0.0)) == pytest.approx([0.5, 0.5], abs=1e-15)


def test_tree_paths_and_periods_by_hand():
    import numpy as np

    from optimizer.economics.tree import build_tree

    # 5 periods, branch months at periods 1 and 3: depth(t) = [0, 1, 1, 2, 2], commitments one depth
    # earlier: [0, 0, 0, 1, 1]. Paths s0 a/x, s1 a/y, s2 b/x, s3 b/x (s2 and s3 share a leaf).
    tree = build_tree(5, np.array([0.1, 0.2, 0.3, 0.4]), ["s0", "s1", "s2", "s3"], [f"p{t}" for t in range(5)],
                      branch_periods=[1, 3], paths={"s0": ["a", "x"], "s1": ["a", "y"], "s2": ["b", "x"], "s3": ["b", "x"]})
    by = tree.by_name
    assert tree.describe()["stages"] == 3 and tree.describe()["nodes"] == 6   # root, a, b, a/x, a/y, b/x
    assert by["a/y"].label == "y" and by["b"].label == "b" and by["root"].label == ""
    assert [n.name for n in tree.children(by["root"])] == ["a", "b"]
    assert [n.name for n in tree.children(by["b"])] == ["b/x"] and tree.children(by["a/x"]) == []
    assert [n.name for n in tree.path(1)] == ["root", "a", "a/y"] and [n.name for n in tree.path(3)] == ["root", "b", "b/x"]
    assert tree.op_periods(by["root"]) == [0] and tree.op_periods(by["a"]) == [1, 2] and tree.op_periods(by["b/x"]) == [3, 4]
    assert tree.inv_periods(by["root"]) == [0, 1, 2] and tree.inv_periods(by["b"]) == [3, 4] and tree.inv_periods(by["a/y"]) == []
    # one scenario per distinct node sequence, the smallest index of each:
    # operations over all periods: s0 (r,a,a,ax,ax), s1 (r,a,a,ay,ay), s2 = s3 (r,b,b,bx,bx) -> 0, 1, 2
    assert tree.path_reps(range(5), "op") == [0, 1, 2]
    assert tree.path_reps([0, 1, 2], "op") == [0, 2]           # up to the second branch: a or b
    assert tree.path_reps([3, 4]) == [0, 2]                     # commitments of periods 3, 4: at a or b
    assert tree.path_reps([0, 1, 2]) == [0]                     # commitments before the second branch: the root
    assert tree.path_reps([3], "op") == [0, 1, 2]


def test_gpu_service_periods_and_book_value_by_hand():
    from types import SimpleNamespace

    import numpy as np

    from optimizer.economics.hpc import GpuData

    # 10 periods; GPUs ordered in period u serve from u + 2 (lead) for 6 periods; $1M/MW, salvage 20 %
    g = GpuData(option=SimpleNamespace(capex_usd_per_mw=1_000_000.0, salvage_share=0.2), lead=2, life=6, periods=[],
                merchant_usd_per_mw=np.zeros((1, 10)), opex_usd_per_mw=0.0, T=10)
    assert list(g.online(1)) == [3, 4, 5, 6, 7, 8]        # 1 + 2 .. 1 + 2 + 6 - 1
    assert list(g.online(4)) == [6, 7, 8, 9]              # cut at the horizon's last period 9
    assert g.retire_period(1) == 9 and g.retire_period(4) == 12
    # book value at the end: straight line from cost to salvage over the life, for the periods of life left
    # after period 9: left = u + 2 + 6 - 10; value = 1e6 (0.2 + 0.8 left / 6), 0 when none is left or
    # the GPUs are not in service by period 9
    assert g.book_value_end_usd_per_mw(2) == 0.0                                   # left 0: retired at the end
    assert g.book_value_end_usd_per_mw(3) == pytest.approx(1e6 * (0.2 + 0.8 / 6))  # left 1: 333,333.33
    assert g.book_value_end_usd_per_mw(4) == pytest.approx(1e6 * (0.2 + 0.8 * 2 / 6))
    assert g.book_value_end_usd_per_mw(7) == pytest.approx(1e6 * (0.2 + 0.8 * 5 / 6))  # in service in period 9 only
    assert g.book_value_end_usd_per_mw(8) == 0.0                                   # would start in period 10


def test_facility_amortizing_in_the_last_period_and_after_the_end_by_hand():
    from optimizer.economics.financing import facility_unit

    # 1 USD drawn at the end of period 0, 1 % a period, interest paid in construction (periods 1, 2),
    # 4 level-principal payments from period a = 3
    # - horizon of 4 periods (a = T - 1): one payment inside it: interest 1 % x 1, principal 1/4, 3/4 owed
    u = facility_unit(0.01, 0, 3, 4, "level_principal", False, 0.0, 1, 4)
    assert list(u.interest) == pytest.approx([0.0, 0.01, 0.01, 0.01], abs=1e-15)
    assert list(u.principal) == pytest.approx([0.0, 0.0, 0.0, 0.25], abs=1e-15)
    assert u.end_balance == pytest.approx(0.75, abs=1e-15)
    # - amortization from period 5 of a 4-period horizon: nothing repaid inside it, 1 USD owed at the end
    u = facility_unit(0.01, 0, 5, 4, "level_principal", False, 0.0, 1, 4)
    assert list(u.principal) == [0.0] * 4 and u.end_balance == pytest.approx(1.0, abs=1e-15)
    # capitalized instead: the balance grows 1 % a period to the end: 1.01^(4 - 1 - 0)
    u = facility_unit(0.01, 0, 5, 4, "level_principal", True, 0.0, 1, 4)
    assert list(u.interest) == [0.0] * 4 and u.end_balance == pytest.approx(1.01 ** 3, rel=1e-15)


def test_balance_shares_annuity_and_sculpted_by_hand():
    from optimizer.economics.financing import _balance_shares

    # annuity at 1 % over 5 quarterly payments: owed after k payments = (1 - 1.01^-(5-k)) / (1 - 1.01^-5),
    # whatever growth is passed (growth shapes sculpted loans only: the 5th payment would be 10 % larger)
    want = [(1 - 1.01 ** -(5 - k)) / (1 - 1.01 ** -5) for k in range(6)]
    assert list(_balance_shares(0.01, 5, "annuity", 0.10, 3)) == pytest.approx(want, rel=1e-12)
    # sculpted, quarterly payments growing 10 % on each anniversary of the first, at 0 % interest:
    # payments 1, 1, 1, 1, 1.1 (x A = 1 / 5.1); owed after j payments = the payments left / 5.1
    assert list(_balance_shares(0.0, 5, "sculpted", 0.10, 3)) == pytest.approx(
        [1.0, 4.1 / 5.1, 3.1 / 5.1, 2.1 / 5.1, 1.1 / 5.1, 0.0], rel=1e-12, abs=1e-15)


def test_period_sums_of_scenario_rows_by_hand():
    import numpy as np

    from optimizer.economics.levers import _month_count, _period_sum
    from optimizer.kernel.timeline import Timeline, month_ordinal

    tl = Timeline(start=month_ordinal("2026-02"), n_periods=2, period_months=3)  # Feb-Apr, May-Jul
    # two scenario rows of six months each: period sums 1+2+3, 4+5+6 and 10+20+30, 40+50+60
    monthly = np.array([[1.0, 2, 3, 4, 5, 6], [10.0, 20, 30, 40, 50, 60]])
    assert _period_sum(monthly, tl).tolist() == [[6.0, 15.0], [60.0, 150.0]]
    assert _period_sum(monthly[0], tl).tolist() == [6.0, 15.0]
    # summer months June-August: none in Feb-Apr, June and July in May-Jul
    assert _month_count(tl, [6, 7, 8]).tolist() == [0.0, 2.0]


def test_tax_depreciation_matrix_facility_draws_and_terminal_tax_discount_by_hand():
    raw = copy.deepcopy(QUARTERLY)
    raw["financing"] = {
        "taxes": {"rate": 0.21, "depreciation": {"hpc_conversion": {"method": "straight_line", "years": 2},
                                                 "asics": {"method": "macrs", "years": 5, "bonus_share": 0.6},
                                                 "sites": {"method": "none"}}},
        "discount_rates": {"other": 0.15},
        "project_facilities": [
            # no first draw month (from the horizon start), draws allowed to the horizon's last month (2027-06),
            # sculpted on lease LA's escalator (5 %/year), amortized after the end
            {"id": "f1", "site": "s1", "lease": "LA", "commitment_usd": 1_000_000, "loan_to_cost": 0.8,
             "interest_rate_per_year": 0.08, "draw_last_month": "2027-06", "amortization_start_month": "2028-01",
             "tenor_months": 24, "amortization": "sculpted"},
            # draws in 2026-04 .. 2026-09 (periods 1, 2), interest capitalized, equal principal payments
            {"id": "f2", "site": "s1", "commitment_usd": 1_000_000, "loan_to_cost": 0.8, "interest_rate_per_year": 0.08,
             "draw_first_month": "2026-04", "draw_last_month": "2026-09", "amortization_start_month": "2026-10",
             "tenor_months": 12, "amortization": "level_principal", "construction_interest": "capitalized"},
        ],
    }
    fin = compile_instance(Instance.from_dict(raw)).fin
    # tax years 2026 (periods 0-3) and 2027 (periods 4, 5); 1 USD spent in period t is deducted in tax year
    # y by the fraction of its age y - year(t):
    # - straight line over 2 years: 0.5, 0.5 -> spent in 2026: [0.5, 0.5], basis left 0; in 2027: [0, 0.5], 0.5 left
    assert fin.dep_matrix["hpc_conversion"].tolist() == [[0.5, 0.5]] * 4 + [[0.0, 0.5]] * 2
    assert fin.dep_remaining["hpc_conversion"].tolist() == pytest.approx([0.0] * 4 + [0.5] * 2, abs=1e-15)
    # - MACRS 5-year with 60 % bonus: 0.6 + 0.4 x 0.20 = 0.68, then 0.4 x 0.32 = 0.128
    #   -> spent in 2026: [0.68, 0.128], 1 - 0.808 = 0.192 left; in 2027: [0, 0.68], 0.32 left
    assert fin.dep_matrix["asics"].ravel().tolist() == pytest.approx([0.68, 0.128] * 4 + [0.0, 0.68] * 2, abs=1e-15)
    assert fin.dep_remaining["asics"].tolist() == pytest.approx([0.192] * 4 + [0.32] * 2, abs=1e-12)
    # - land ("none"): never deducted, and no basis left to deduct either
    assert fin.dep_matrix["sites"].tolist() == [[0.0, 0.0]] * 6 and fin.dep_remaining["sites"].tolist() == [0.0] * 6
    # the terminal tax is due 12 months after the end, discounted at the "other" class rate: 1 / 1.15
    assert fin.terminal_tax_df == pytest.approx(1 / 1.15, rel=1e-14)
    f1, f2 = fin.facilities["f1"], fin.facilities["f2"]
    assert f1.draw_periods == [0, 1, 2, 3, 4, 5] and f1.growth == 0.05
    assert f1.amort_start == 8 and f1.n_amort == 8            # 2028-01 = quarter 8; 24 months = 8 quarters
    assert f2.draw_periods == [1, 2] and f2.amort_start == 3 and f2.n_amort == 4
    # capitalized: no interest paid while building (a draw of period 1 accrues through period 2)
    assert f2.units[1].interest[:3].tolist() == [0.0, 0.0, 0.0]


def test_days_in_february_by_the_calendar():
    from optimizer.kernel.timeline import days_in_month, month_ordinal

    # Gregorian leap years: 2024, 2028, 2032 (divisible by 4), not 2025, 2026, 2100 (a century not divisible by 400)
    assert [days_in_month(month_ordinal(f"{y}-02")) for y in (2024, 2025, 2026, 2028, 2032, 2100)] == [29, 28, 28, 29, 29, 28]
    assert [days_in_month(month_ordinal(f"2026-{m:02d}")) for m in (1, 4, 12)] == [31, 30, 31]


# ---------------------------------------------------------------- survivors of the evening's shared runs
# (benchmarks/MUTATION.md): lease variants, the holder tolerance, new-build and GPU periods, an
# amortizing assumed plant loan, forward delivery periods, facilities and corporate debt

def test_lease_variants_by_delay_and_the_single_variant_view():
    from test_hpc_levers import _tranche_instance

    # lease T (test_hpc_levers) is handed over in 2026-03, period 2 of the monthly 2026 horizon; scenario
    # on_time (delay 0) and late (delay 1 month) see different cash flows: two variants, scenario 0 is variant 0
    ld = compile_instance(Instance.from_dict(_tranche_instance())).leases["T"]
    assert ld.handover_periods == [2]
    assert ld.variant_of[2].tolist() == [0, 1] and ld.n_variants(2) == 2 and ld.varies(2)
    # the single-variant view is scenario 0's (on time): tranche 1 (0.6 MW x 1000 x 100 = 60,000) from
    # 2026-03, tranche 2 (0.4 MW: 100,000 in all) from 2026-05; late would start each a month later
    assert ld.rent_usd[2].tolist() == pytest.approx([0, 0, 60_000, 60_000] + [100_000] * 8)
    # not exposed to delays: both scenarios share one variant, which does not vary
    flat = compile_instance(Instance.from_dict(_tranche_instance(delay_exposed=False))).leases["T"]
    assert flat.variant_of[2].tolist() == [0, 0] and flat.n_variants(2) == 1 and not flat.varies(2)


def test_holder_renews_at_a_market_a_rounding_error_below_its_rent():
    import numpy as np

    from optimizer.economics.leases import holder_exercise
    from optimizer.kernel.timeline import Timeline

    # _holder_lease: renewal 1 of the 18-month lease starting in horizon month 2 starts in month 20 at
    # 1.03^floor(18 / 12) x 1.05 = 1.0815 of the lease's rate. A market index 1e-12 below that (a
    # rounding error of the index interpolation) is "at the market": renewal 1 is taken, renewal 2
    # (month 32, market 1.0 < 1.1696) refused
    tl = Timeline(start=24_300, n_periods=40)
    own = (1.0 + 0.03) ** 1.0 * (1.0 + 0.05) ** 1
    market = own - 1e-12
    assert market + 1e-12 == own  # the tolerance brings it back exactly to the rent in floating point
    idx = np.full(tl.n_months, 1.0)
    idx[20] = market
    assert holder_exercise(_holder_lease(), tl.start + 2, idx, tl) == 1


def test_new_build_start_periods_and_a_gpu_life_shorter_than_a_period_by_hand():
    from test_hpc_levers import _gpu_vs_colo, _greenfield

    # option hall of site g: lead 3 months on the monthly 2026 horizon (periods 0..11); a start in t is
    # allowed when its racks are in service inside the horizon, t + 3 <= 11: t = 0..8
    d = _greenfield()
    assert compile_instance(Instance.from_dict(d)).builds[("g", "hall")].periods == list(range(9))
    # not before its earliest month 2026-04 (period 3): 3..8
    d["sites"][0]["new_builds"][0]["earliest_month"] = "2026-04"
    assert compile_instance(Instance.from_dict(d)).builds[("g", "hall")].periods == [3, 4, 5, 6, 7, 8]
    # one block at most: still any of those periods; max_blocks 0: the option can never be started
    d["sites"][0]["new_builds"][0]["max_blocks"] = 1
    assert compile_instance(Instance.from_dict(d)).builds[("g", "hall")].periods == [3, 4, 5, 6, 7, 8]
    d["sites"][0]["new_builds"][0]["max_blocks"] = 0
    assert compile_instance(Instance.from_dict(d)).builds[("g", "hall")].periods == []
    # a block's MW: HPC, 10 racks x the site's 100 kW = 1 MW of critical IT; mining, 10 racks x its own
    # 350 kW = 3.5 design MW
    d["sites"][0]["new_builds"].append({"id": "mhall", "use": "mining", "racks_per_block": 10, "mining_kw_per_rack": 350,
                                        "capex_usd_per_mw": 500_000, "lead_months": 2, "max_blocks": 1})
    builds = compile_instance(Instance.from_dict(d)).builds
    assert builds[("g", "hall")].mw_per_block == pytest.approx(1.0) and builds[("g", "mhall")].mw_per_block == pytest.approx(3.5)
    # GPUs with a 1-month useful life on monthly periods serve 1 period: ordered in 2026-01 (no lead),
    # in service in period 0 only
    g = _gpu_vs_colo(300_000)
    g["gpu_cloud"]["options"][0]["useful_life_months"] = 1
    gd = compile_instance(Instance.from_dict(g)).gpus["gb"]
    assert gd.life == 1 and list(gd.online(0)) == [0]
    assert gd.periods == [0]   # ordered only in its first and last month 2026-01
    # 2 months on quarterly periods: 2 // 3 = 0 whole periods, at least one (they serve the quarter bought)
    g["horizon"].update(periods=4, period_months=3)
    g["gpu_cloud"]["options"][0]["useful_life_months"] = 2
    gd = compile_instance(Instance.from_dict(g)).gpus["gb"]
    assert gd.life == 1 and list(gd.online(0)) == [0]


def test_amortizing_assumed_plant_debt_and_forward_delivery_periods_by_hand():
    from test_levers import _bought_plant, _two_scenarios, make

    def edit(raw):
        _bought_plant(raw, 1_900_000)
        raw["contracts"][-1]["assumed_debt"].update(tenor_months=2, amortization="level_principal")

    # the plant bought in 2026-04 (period 0 of the April-June horizon) with 1.2M of debt at 12 %/yr
    # (1 % a month), repaid in 2 equal principal payments from the next period: 600,000 in May and
    # June; interest 1 % x 1.2M = 12,000 in May, 1 % x 0.6M = 6,000 in June; nothing owed at the end
    debt = compile_instance(make(edit)).lev.plants["plant"].debt
    assert debt.principal.tolist() == pytest.approx([0.0, 600_000.0, 600_000.0], abs=1e-6)
    assert debt.interest.tolist() == pytest.approx([0.0, 12_000.0, 6_000.0], abs=1e-6)
    assert debt.end_balance == pytest.approx(0.0, abs=1e-6)
    # forward f1 delivers May and June (31 and 30 days): periods 1 and 2, not April
    fwd = compile_instance(make(lambda raw: _two_scenarios(raw, 0.0))).lev.forwards["f1"]
    assert fwd.periods == [1, 2] and fwd.days.tolist() == [0.0, 31.0, 30.0]


def test_facility_draw_windows_sculpting_and_corporate_debt_by_hand():
    raw = copy.deepcopy(QUARTERLY)
    base = {"site": "s1", "commitment_usd": 1_000_000, "loan_to_cost": 0.8, "interest_rate_per_year": 0.08}
    raw["financing"] = {
        "project_facilities": [
            # drawn only in the first quarter (draws from the horizon start), 5 quarterly payments from
            # 2026-04 growing 10 % a year (given: not lease LA's 5 % escalator)
            {"id": "f3", "lease": "LA", **base, "draw_first_month": "2026-01", "draw_last_month": "2026-03",
             "amortization_start_month": "2026-04", "tenor_months": 15, "amortization": "sculpted",
             "sculpt_growth_per_year": 0.10},
            # sculpted without a growth: lease LA's 5 % escalator (and no draw_first_month: from the start)
            {"id": "f4", "lease": "LA", **base, "draw_last_month": "2026-03", "amortization_start_month": "2026-04",
             "tenor_months": 15, "amortization": "sculpted"},
            # test_tax_depreciation_matrix...'s f2: capitalized, 4 equal principal payments from 2026-10
            {"id": "f2", **base, "draw_first_month": "2026-04", "draw_last_month": "2026-09",
             "amortization_start_month": "2026-10", "tenor_months": 12, "amortization": "level_principal",
             "construction_interest": "capitalized"},
        ],
        "corporate_debt": [
            {"id": "due", "principal_usd": 1_000, "coupon_per_year": 0.08, "maturity_month": "2027-06"},
            {"id": "after", "principal_usd": 1_000, "coupon_per_year": 0.08, "maturity_month": "2028-03"},
            {"id": "early", "principal_usd": 1_000, "coupon_per_year": 0.08, "maturity_month": "2026-09"},
            {"id": "next", "principal_usd": 1_000, "coupon_per_year": 0.08, "maturity_month": "2027-08"},
        ],
    }
    fin = compile_instance(Instance.from_dict(raw)).fin
    f3, f4, f2 = fin.facilities["f3"], fin.facilities["f4"], fin.facilities["f2"]
    assert f3.draw_periods == [0] and f3.growth == 0.10 and f4.draw_periods == [0] and f4.growth == 0.05
    # 8 %/yr = 2 % a quarter; payment k (k = 1..5, quarters 1..5) = A x 1.1^floor(3 (k - 1) / 12):
    # A, A, A, A, 1.1 A, with A repaying 1 USD: 1 = A (v + v^2 + v^3 + v^4 + 1.1 v^5), v = 1 / 1.02
    v = [1.02 ** -k for k in range(1, 6)]
    a3 = 1.0 / (sum(v[:4]) + 1.1 * v[4])
    u = f3.units[0]
    assert (u.interest + u.principal).tolist() == pytest.approx([0.0, a3, a3, a3, a3, 1.1 * a3], rel=1e-12)
    assert u.end_balance == pytest.approx(0.0, abs=1e-12)
    a4 = 1.0 / (sum(v[:4]) + 1.05 * v[4])   # growing 5 %: A, A, A, A, 1.05 A
    u = f4.units[0]
    assert (u.interest + u.principal).tolist() == pytest.approx([0.0, a4, a4, a4, a4, 1.05 * a4], rel=1e-12)
    # f2: 1 USD drawn at the end of period 1 grows 2 % through period 2 (capitalized): 1.02 owed at the
    # first payment (period 3); 4 equal principal payments of 1.02 / 4 = 0.255, 3 of them inside the
    # horizon; interest 2 % of the balance owed before each: 0.0204, 0.0153, 0.0102; 0.255 owed at the end
    u = f2.units[1]
    assert u.principal.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.255, 0.255, 0.255], rel=1e-12)
    assert u.interest.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0204, 0.0153, 0.0102], rel=1e-12)
    assert u.end_balance == pytest.approx(0.255, rel=1e-12)
    # corporate notes of 1,000 at 8 %/yr: a coupon of 20 every quarter; maturing in the last period
    # (2027-06, period 5): repaid there, nothing owed at the end; maturing after: owed at the end
    due, after = fin.corporate["due"], fin.corporate["after"]
    assert due.interest.tolist() == pytest.approx([20.0] * 6) and due.principal.tolist() == [0.0] * 5 + [1_000.0]
    assert due.end_balance == 0.0
    assert after.interest.tolist() == pytest.approx([20.0] * 6) and after.principal.tolist() == [0.0] * 6
    assert after.end_balance == 1_000.0
    # maturing in 2026-09 (period 2): coupons in periods 0-2 only, repaid at the end of 2; maturing in 2027-08
    # (period 6, the quarter after the horizon): coupons in all 6 periods, owed at the end
    early, nxt = fin.corporate["early"], fin.corporate["next"]
    assert early.interest.tolist() == pytest.approx([20.0] * 3 + [0.0] * 3) and early.principal.tolist() == [0.0, 0.0, 1_000.0, 0.0, 0.0, 0.0]
    assert early.end_balance == 0.0
    assert nxt.interest.tolist() == pytest.approx([20.0] * 6) and nxt.principal.tolist() == [0.0] * 6 and nxt.end_balance == 1_000.0


def test_new_issue_windows_and_bullet_schedules_by_hand():
    raw = copy.deepcopy(QUARTERLY)
    raw["financing"] = {"new_issues": [
        # notes of 6 months (2 quarters) at 8 %/yr (2 % a quarter), issued in 2026-04..2026-12: periods 1, 2, 3
        {"id": "n1", "max_usd": 1_000_000, "coupon_per_year": 0.08, "tenor_months": 6, "first_month": "2026-04",
         "last_month": "2026-12"},
        # 12 months (4 quarters) from 2027-01 to the horizon end (no last month): periods 4, 5
        {"id": "n2", "max_usd": 1_000_000, "coupon_per_year": 0.08, "tenor_months": 12, "first_month": "2027-01"},
        # 6 months, only in the horizon's first quarter (period 0)
        {"id": "n3", "max_usd": 500_000, "coupon_per_year": 0.08, "tenor_months": 6, "first_month": "2026-01",
         "last_month": "2026-01"},
        # 3 months (1 quarter), only in the last quarter (period 5): it matures at the end of period 6, after the horizon
        {"id": "n4", "max_usd": 500_000, "coupon_per_year": 0.08, "tenor_months": 3, "first_month": "2027-04",
         "last_month": "2027-06"},
    ]}
    fin = compile_instance(Instance.from_dict(raw)).fin
    n1, n2 = fin.issues["n1"], fin.issues["n2"]
    assert n1.periods == [1, 2, 3] and n1.tenor_periods == 2 and n1.rate == pytest.approx(0.02, rel=1e-15)
    assert n2.periods == [4, 5] and n2.tenor_periods == 4
    # 1 USD issued at the end of period 1: coupons 0.02 in periods 2 and 3, repaid at the end of 3
    u = n1.units[1]
    assert u.interest.tolist() == pytest.approx([0, 0, 0.02, 0.02, 0, 0], abs=1e-15)
    assert u.principal.tolist() == [0, 0, 0, 1.0, 0, 0] and u.end_balance == 0.0
    # issued in period 3: coupons in 4 and 5, repaid at the end of 5 (the horizon's last period)
    u = n1.units[3]
    assert u.interest.tolist() == pytest.approx([0, 0, 0, 0, 0.02, 0.02], abs=1e-15)
    assert u.principal.tolist() == [0, 0, 0, 0, 0, 1.0] and u.end_balance == 0.0
    # n2 issued in period 4 matures in period 8, after the horizon: one coupon inside it (period 5), 1 USD owed at the end
    u = n2.units[4]
    assert u.interest.tolist() == pytest.approx([0, 0, 0, 0, 0, 0.02], abs=1e-15)
    assert u.principal.tolist() == [0.0] * 6 and u.end_balance == 1.0
    n3, n4 = fin.issues["n3"], fin.issues["n4"]
    assert n3.periods == [0] and n4.periods == [5] and n3.issue.max_usd == 500_000   # the cap the model reads
    # n3 issued in period 0: coupons in 1 and 2, repaid at the end of 2
    u = n3.units[0]
    assert u.interest.tolist() == pytest.approx([0, 0.02, 0.02, 0, 0, 0], abs=1e-15)
    assert u.principal.tolist() == [0, 0, 1.0, 0, 0, 0] and u.end_balance == 0.0
    # n4 issued at the end of period 5 matures at the end of period 6: nothing paid inside the horizon, 1 USD owed
    u = n4.units[5]
    assert u.interest.tolist() == [0.0] * 6 and u.principal.tolist() == [0.0] * 6 and u.end_balance == 1.0
    assert fin.has_debt


def test_a_lease_schedule_is_active_exactly_in_the_periods_it_runs():
    # tiny's L1 for 2 months (instead of 12), handed over in 2026-03, 04 or 05 (periods 2, 3, 4):
    # it runs in periods tau and tau + 1, and in no other (a site sold after it ends is no violation)
    from pathlib import Path

    import numpy as np
    import yaml
    d = yaml.safe_load((Path(__file__).resolve().parents[1] / "instances" / "tiny.yaml").read_text())
    d["leases"][0]["term_months"] = 2
    ld = compile_instance(Instance.from_dict(d)).leases["L1"]
    assert {tau: np.nonzero(ld.sched[(tau, 0)].active)[0].tolist() for tau in ld.handover_periods} == {2: [2, 3], 3: [3, 4], 4: [4, 5]}


def test_a_prepaid_gpu_contract_owes_its_deferred_revenue_at_the_end():
    # test_hpc_levers' GPU cloud contract K (1 MW at 700 USD/kW-month) for 24 months from 2026-01 on
    # a 12-month horizon at rate 0, 20 % of the base term's rent prepaid: the prepayment covers
    # 0.2 x 700,000 of each of the 12 months after the end, which the company still owes in service
    # (deferred revenue): K's terminal value is -0.2 x 700,000 x 12 = -1,680,000 (GPU contracts have
    # no NOI after the end; the GPUs' book value stands for it)
    from test_hpc_levers import _gpu_vs_colo
    d = _gpu_vs_colo(0.0)
    d["gpu_cloud"]["options"][0].update(useful_life_months=36, last_month="2026-12")
    d["leases"] = [{"id": "K", "it_mw": 1.0, "rate_usd_per_kw_month": 700, "term_months": 24, "window_start": "2026-01",
                    "window_end": "2026-01", "noi_margin": 1.0, "gpu_option": "gb", "prepayment_share": 0.2}]
    ld = compile_instance(Instance.from_dict(d)).leases["K"]
    assert ld.terminal_noi_usd[0] == approx(-0.2 * 700_000 * 12)
    # and the monthly rent inside the horizon falls by the prepaid share: 0.8 x 700,000
    assert ld.sched[(0, 0)].rent_usd.tolist() == [approx(560_000)] * 12
