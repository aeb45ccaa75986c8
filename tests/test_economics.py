"""Economics kernel against hand calculations (arithmetic written out in each test)."""

import math

import numpy as np
import pytest

from optimizer.kernel import finance, protocol
from optimizer.kernel.timeline import Timeline, month_label, month_ordinal


def _month_of_height(start_month: str, start_height: int, n_months: int, target: int) -> str:
    tl = Timeline(month_ordinal(start_month), n_months)
    hb = protocol.block_heights_at_boundaries(start_height, tl.days)
    t = int(np.searchsorted(hb, target, side="right")) - 1
    return month_label(int(tl.period_start_months[t]))


def test_block_840000_falls_in_april_2024():
    # Height ~823,800 at 2024-01-01 00:00 UTC (approximate). 840,000 - 823,800 = 16,200 blocks
    # x 10 min = 162,000 min = 112.5 days. Jan 31 + Feb 29 (leap) + Mar 31 = 91 days, so day 112.5
    # is 21.5 days into April: 2024-04 (the real halving was 20 Apr 2024, FACTS.md section 1).
    assert _month_of_height("2024-01", 823_800, 12, 840_000) == "2024-04"


def test_next_halving_month_from_2026_start():
    # 1,050,000 - 930,000 = 120,000 blocks x 10 min = 1,200,000 min = 833.33 days after 2026-01-01.
    # 2026: 365 d, 2027: 365 d -> 103.33 days into 2028; Jan 31 + Feb 29 + Mar 31 = 91 -> 13 April.
    assert _month_of_height("2026-01", 930_000, 36, 1_050_000) == "2028-04"
    tl = Timeline(month_ordinal("2026-01"), 36)
    sub = protocol.period_subsidy_btc_per_block(930_000, tl.days)
    t_halving = tl.period_of("2028-04")
    assert np.all(sub[:t_halving] == 3.125)
    assert np.all(sub[t_halving + 1:] == 1.5625)
    assert 1.5625 < sub[t_halving] < 3.125


def test_halving_month_subsidy_is_block_weighted_mix():
    # From 823,800 at 2024-01-01: heights at 1 April = 823,800 + 91 x 144 = 836,904.
    # April has 30 x 144 = 4,320 blocks: 840,000 - 836,904 = 3,096 at 6.25 BTC and 1,224 at 3.125.
    # Mix = (3,096 x 6.25 + 1,224 x 3.125) / 4,320 = (19,350 + 3,825) / 4,320 = 5.3645833...
    tl = Timeline(month_ordinal("2024-01"), 6)
    sub = protocol.period_subsidy_btc_per_block(823_800, tl.days)
    assert sub[3] == pytest.approx(23_175 / 4_320, rel=1e-12)
    assert sub[2] == 6.25 and sub[4] == 3.125


def test_explicit_halving_heights_override():
    # Halving moved to 1,000,000 with subsidy 3.125 before it: a block at 999,999 pays 3.125,
    # at 1,000,000 pays 1.5625.
    kw = dict(initial_subsidy_btc=3.125, explicit=[1_000_000])
    assert protocol.subsidy_at_height(999_999, **kw) == 3.125
    assert protocol.subsidy_at_height(1_000_000, **kw) == 1.5625


def test_subsidy_eras_default_rule():
    assert protocol.subsidy_at_height(0) == 50
    assert protocol.subsidy_at_height(209_999) == 50
    assert protocol.subsidy_at_height(210_000) == 25
    assert protocol.subsidy_at_height(840_000) == 3.125
    assert protocol.subsidy_at_height(1_049_999) == 3.125
    assert protocol.subsidy_at_height(1_050_000) == 1.5625


def test_hashprice_identity_from_difficulty():
    # D = 1e14: H = 1e14 x 2^32 / 600 = 7.158278826666667e17 H/s = 715,827.88 PH/s.
    # Daily revenue = 144 blocks x 3.125 BTC x $100,000 = $45,000,000.
    # Hashprice = 45,000,000 / 715,827.88 = $62.86 per PH/s per day ("about $62.8").
    h_s = protocol.network_hashrate_from_difficulty_h_s(1e14)
    assert h_s == pytest.approx(1e14 * 4_294_967_296 / 600)
    hp = protocol.hashprice_usd_per_ph_day(100_000, 3.125, 0.0, h_s / 1e18)
    assert float(hp) == pytest.approx(45_000_000 / 715_827.8826666667, rel=1e-9)
    assert 62.8 < float(hp) < 62.9


def test_hashprice_fees_add_to_subsidy():
    # 1,000 EH/s = 1e6 PH/s; (3.125 + 0.125) x 144 / 1e6 = 0.000468 BTC per PH/s per day.
    assert float(protocol.hashprice_btc_per_ph_day(3.125, 0.125, 1000.0)) == pytest.approx(0.000468)


def test_discount_factors_end_of_month():
    # 12% a year, end of month 1: 1.12^(-1/12) = 0.99060...; end of month 12: 1/1.12.
    df = finance.discount_factors(0.12, np.arange(1, 13))
    assert df[0] == pytest.approx(1.12 ** (-1 / 12))
    assert df[11] == pytest.approx(1 / 1.12)


def test_constant_cash_flow_equals_annuity_formula():
    # $1M at the end of each of 60 months at 12%/yr: i = 1.12^(1/12) - 1,
    # PV = 1e6 x (1 - (1+i)^-60) / i. Compare the closed form with the sum of discount factors.
    i = 1.12 ** (1 / 12) - 1
    closed = 1e6 * (1 - (1 + i) ** -60) / i
    summed = 1e6 * finance.discount_factors(0.12, np.arange(1, 61)).sum()
    assert summed == pytest.approx(closed, rel=1e-12)
    assert finance.annuity_pv(1e6, 0.12, 60) == pytest.approx(closed, rel=1e-12)
    # and 5 years at 12%: (1 - 1.12^-5) / i = 0.432573... / 0.0094888 = 45.588 months' worth
    assert closed / 1e6 == pytest.approx((1 - 1.12 ** -5) / i)
    assert finance.annuity_pv(100.0, 0.0, 7) == 700.0


def test_lease_escalator_hand_sum():
    # 1 MW at $150/kW-month, +3% per lease year, 24 months:
    # year 1: 12 x 150,000 = 1,800,000; year 2: 12 x 154,500 = 1,854,000; total 3,654,000.
    rent = finance.lease_rent_usd_month(1.0, 150.0, 0.03, np.arange(24))
    assert rent[:12].tolist() == [150_000.0] * 12
    assert rent[12:] == pytest.approx([154_500.0] * 12)
    assert rent.sum() == pytest.approx(3_654_000.0)


def test_take_or_pay_charges_minimum_below_it():
    # 10 MW cap, 80% minimum, 720 h: minimum 5,760 MWh. Taking 3,000 MWh at $40 pays 5,760 x 40 = 230,400.
    assert finance.take_or_pay_charge_usd(40.0, 3_000.0, 10.0, 0.8, 720.0) == pytest.approx(230_400.0)
    # above the minimum it is the energy taken: 7,000 x 40 = 280,000
    assert finance.take_or_pay_charge_usd(40.0, 7_000.0, 10.0, 0.8, 720.0) == pytest.approx(280_000.0)


def test_asic_energy_and_racks():
    # 1,000 units x 3,500 W x PUE 1.1 x 720 h = 2,772 MWh
    assert finance.asic_energy_mwh(1_000, 3_500, 1.1, 720) == pytest.approx(2_772.0)
    # 10 MW at 130 kW per rack -> 76.9 -> 77 racks; 13 MW at 130 kW -> exactly 100
    assert finance.ceil_racks(10.0, 130.0) == 77
    assert finance.ceil_racks(13.0, 130.0) == 100


def test_timeline_quarters_and_days():
    tl = Timeline(month_ordinal("2026-01"), 4, 3)
    # Q1 2026: 31 + 28 + 31 = 90 days; Q2: 30 + 31 + 30 = 91
    assert tl.days.tolist() == [90, 91, 92, 92]
    assert tl.labels == ["2026-01", "2026-04", "2026-07", "2026-10"]
    assert tl.lead_periods(4) == 2 and tl.lead_periods(3) == 1 and tl.lead_periods(0) == 0
    assert math.isclose(tl.months_elapsed_at_end[-1], 12)


def test_hashprice_with_a_shorter_block_interval():
    # 5-minute blocks: 1440 / 5 = 288 blocks a day. (3.125 + 0.125) BTC x 288 / (450 EH/s x 1000)
    # = 936 / 450,000 = 0.00208 BTC per PH/s per day; at 100,000 USD: 208 USD.
    assert protocol.blocks_per_day(5.0) == 288.0
    assert protocol.hashprice_btc_per_ph_day(3.125, 0.125, 450.0, 5.0) == pytest.approx(0.00208, rel=1e-12)
    assert protocol.hashprice_usd_per_ph_day(100_000, 3.125, 0.125, 450.0, 5.0) == pytest.approx(208.0, rel=1e-12)
    # block heights advance 288 a day: 10 + 31 days x 288 = 8938 after January
    assert protocol.block_heights_at_boundaries(10, np.array([31.0]), 5.0).tolist() == [10.0, 8938.0]


def test_annuity_payment_and_balance_share():
    # one payment repays the balance with one period's interest: 100 x 1.01 = 101
    assert finance.annuity_payment(100.0, 0.01, 1) == pytest.approx(101.0, rel=1e-12)
    # zero rate: the balance in equal parts, 120 / 12 = 10; after 3 of 12 payments 9/12 is still owed
    assert finance.annuity_payment(120.0, 0.0, 12) == 10.0
    assert finance.annuity_balance_share(0.0, 12, 3) == 0.75
    # 2 payments at 10 %: P = 100 x 0.1 / (1 - 1.1^-2) = 10 / (0.21 / 1.21) = 57.619...; after one
    # payment the balance is 100 x 1.1 - 57.619 = 52.381 = (1.21 - 1.1) / (1.21 - 1) of 100
    assert finance.annuity_payment(100.0, 0.1, 2) == pytest.approx(10 * 1.21 / 0.21, rel=1e-12)
    assert finance.annuity_balance_share(0.1, 2, 1) == pytest.approx(0.11 / 0.21, rel=1e-12)
    with pytest.raises(ValueError, match=r"^annuity over n=0 periods$"):
        finance.annuity_payment(100.0, 0.01, 0)


def test_period_rate_and_irr_per_year():
    # a 12 % nominal annual rate: 1 % a month, 3 % a quarter
    assert finance.period_rate(0.12, 1) == pytest.approx(0.01, rel=1e-12)
    assert finance.period_rate(0.12, 3) == pytest.approx(0.03, rel=1e-12)
    # -100 now (end of period 0) and +121 two quarters later: 10 % a quarter, 1.1^4 - 1 a year
    assert finance.irr_per_year([-100.0, 0.0, 121.0], 3) == pytest.approx(1.1 ** 4 - 1, rel=1e-9)
    # -100 then +110 a year later: 10 %
    assert finance.irr_per_year([-100.0, 110.0], 12) == pytest.approx(0.10, rel=1e-9)
    # no sign change (zeros do not count as a sign), or a single flow: no IRR
    assert finance.irr_per_year([100.0, 110.0], 12) is None
    assert finance.irr_per_year([-100.0, 0.0], 12) is None
    assert finance.irr_per_year([100.0, 0.0], 12) is None
    assert finance.irr_per_year([100.0, 0.5], 12) is None
    # small flows: -0.5 then +0.55 a year later is 10 % too
    assert finance.irr_per_year([-0.5, 0.55], 12) == pytest.approx(0.10, rel=1e-9)
    assert finance.irr_per_year([-100.0], 12) is None


def test_cvar_normalises_the_weights():
    # weights 1 and 3 are probabilities 0.25 and 0.75: alpha 0 gives the mean (10 + 3 x 30) / 4 = 25;
    # alpha 0.5 keeps the worst half: 0.25 at 10 and 0.25 of the 30, (2.5 + 7.5) / 0.5 = 20
    assert finance.cvar_usd([10.0, 30.0], [1.0, 3.0], 0.0) == pytest.approx(25.0, rel=1e-12)
    assert finance.cvar_usd([30.0, 10.0], [3.0, 1.0], 0.5) == pytest.approx(20.0, rel=1e-12)


def test_cvar_rejects_mismatched_or_empty_inputs():
    # one probability per NPV, at least one of each: otherwise a one-line ValueError
    msg = r"^cvar_usd: give one probability per NPV \(at least one\)$"
    with pytest.raises(ValueError, match=msg):
        finance.cvar_usd([1.0, 2.0], [1.0], 0.5)
    with pytest.raises(ValueError, match=msg):
        finance.cvar_usd([], [], 0.5)
    with pytest.raises(ValueError, match=r"^alpha: must be in \[0, 1\), got -0.1$"):
        finance.cvar_usd([1.0], [1.0], -0.1)


# ---------------------------------------------------------------- protocol edge cases (benchmarks/MUTATION.md)


def test_protocol_defaults_are_bitcoins():
    # 1440 minutes a day / 10-minute blocks = 144 blocks a day
    assert protocol.blocks_per_day() == 144.0
    # the 210,000-block interval: the first halving is at 210,000 (not 210,001)
    assert protocol.halvings_up_to(210_000) == 1
    assert protocol.halving_heights(0, 420_000) == [210_000, 420_000]
    # 50 BTC a block for heights 0..100: 100 x 50 = 5,000
    assert protocol.subsidy_btc_between(0, 100) == 5_000.0
    # 200,000 -> 220,000 with the default interval: 10,000 blocks at 50 and 10,000 at 25
    assert protocol.subsidy_btc_between(200_000, 220_000) == 10_000 * 50 + 10_000 * 25


def test_listed_halvings_count_only_after_the_start_height():
    # explicit heights are the halvings AFTER start_height (default 0): a listed height 1 is
    # counted at height 5 (0 < 1 <= 5), so the subsidy is 50 / 2 = 25
    assert protocol.halvings_up_to(5, explicit=[1]) == 1
    assert protocol.subsidy_at_height(5, explicit=[1]) == 25.0
    # a listed height equal to start_height is not after it: still 50 at height 100
    assert protocol.subsidy_at_height(100, 50.0, 210_000, [50], start_height=50) == 50.0
    # start 400,000: floor(400,000 / 210,000) = 1 interval halving before the start, none listed
    # up to 500,000: 50 / 2 = 25 (from height 0 it would be 50)
    assert protocol.subsidy_at_height(500_000, 50.0, 210_000, [1_000_000], start_height=400_000) == 25.0


def test_halving_heights_in_a_range():
    # interval 100 from 150 to 450: the multiples 200, 300, 400 (the start's own era is
    # floor(150 / 100) = 1, so counting starts at k = 2)
    assert protocol.halving_heights(150, 450, interval=100) == [200, 300, 400]
    # with a listed schedule the interval multiples stop at start_height: only the listed 420
    assert protocol.halving_heights(150, 450, interval=100, explicit=[420]) == [420]
    # listed heights inside (start, end], the end included; 1,100,000 is past the end, and the
    # interval's 1,050,000 lies after the start so it is not used
    assert protocol.halving_heights(840_000, 1_000_000, explicit=[900_000, 1_000_000, 1_100_000]) == [900_000, 1_000_000]
    assert protocol.halving_heights(840_000, 1_100_000, explicit=[900_000]) == [900_000]


def test_subsidy_between_heights_segment_by_segment():
    # interval 100, 50 BTC: 0-100 at 50, 100-200 at 25, 200-300 at 12.5 = 5,000 + 2,500 + 1,250
    assert protocol.subsidy_btc_between(0, 300, 50.0, 100) == 8_750.0
    # a subsidy of exactly 1 BTC is not the end of the subsidy: 200 x 1 + 100 x 0.5 = 250
    assert protocol.subsidy_btc_between(0, 300, 1.0, 200) == 250.0
    # a listed halving at 200 from h0 = 100 (start_height defaults to h0): 100 x 50 + 100 x 25
    assert protocol.subsidy_btc_between(100, 300, 50.0, 1000, [200]) == 7_500.0
    # start 150 on interval 100: one interval halving before the start (25 BTC from 150), then the
    # listed 300: 150 x 25 + 100 x 12.5 = 3,750 + 1,250
    assert protocol.subsidy_btc_between(150, 400, 50.0, 100, [300], start_height=150) == 5_000.0
    # the interval schedule runs up to start_height 300 (cuts at 200 and 300), the listed 400 after
    # it; from h0 = 100: 100 x 25 + 100 x 12.5 + 100 x 6.25 + 100 x 3.125
    assert protocol.subsidy_btc_between(100, 500, 50.0, 100, [400], start_height=300) == 2_500 + 1_250 + 625 + 312.5
    # the subsidy underflows to 0.0 after about 1,075 halvings and the sum stops there:
    # 100 x 50 x (1 + 1/2 + 1/4 + ...) = 10,000
    assert protocol.subsidy_btc_between(0, 1e9, 50.0, 100) == pytest.approx(10_000.0, rel=1e-12)


def test_period_subsidy_with_listed_halvings_and_block_interval():
    # 5-minute blocks: 288 a day; interval 200 from height 0 over one day: 200 blocks at 50 and
    # 88 at 25: (10,000 + 2,200) / 288 per block
    sub = protocol.period_subsidy_btc_per_block(0, np.array([1.0]), 5.0, 50.0, 200)
    assert sub.tolist() == [pytest.approx(12_200 / 288, rel=1e-12)]
    # one block a day (1,440-minute blocks), start 150 on interval 100 with the listed halving 300:
    # days 150 and 100 span heights 150-300 (one halving before the start: 25) and 300-400
    # (the listed one at 300 too: 12.5)
    sub = protocol.period_subsidy_btc_per_block(150, np.array([150.0, 100.0]), 1440.0, 50.0, 100, [300])
    assert sub.tolist() == [25.0, 12.5]


def test_finance_edges():
    # monthly periods by default: (1.1)^(-1/12), (1.1)^(-2/12)
    assert finance.period_discount_factors(0.1, 2).tolist() == [pytest.approx(1.1 ** (-1 / 12), rel=1e-12),
                                                                pytest.approx(1.1 ** (-2 / 12), rel=1e-12)]
    # after 2 of 3 payments at 10 %: (1.1^3 - 1.1^2) / (1.1^3 - 1) = 0.121 / 0.331 of the balance
    assert finance.annuity_balance_share(0.1, 3, 2) == pytest.approx(0.121 / 0.331, rel=1e-12)
    # -100, +300, -250: -250 x^2 + 300 x - 100 = 0 has no real root (300^2 < 4 x 250 x 100): no IRR
    assert finance.irr_per_year([-100.0, 300.0, -250.0], 12) is None
    # alpha = 1 leaves an empty tail: refused
    with pytest.raises(ValueError, match=r"^alpha: must be in \[0, 1\), got 1.0$"):
        finance.cvar_usd([1.0], [1.0], 1.0)
    # three equally likely NPVs 10, 20, 30 at alpha 0.5: the tail of mass 0.5 is all of 10 (1/3)
    # and 1/6 of 20, nothing of 30: (10/3 + 20/6) / 0.5 = 40/3
    assert finance.cvar_usd([30.0, 10.0, 20.0], [1.0, 1.0, 1.0], 0.5) == pytest.approx(40 / 3, rel=1e-12)
