"""Economics kernel: pure numpy functions, no Pyomo. Units are in the names.

Conventions (used everywhere, see models/economics.md):
- a period's cash flows occur at the END of the period: discount factor (1 + r)^(-months/12),
  months counted from the horizon start to the end of the period;
- block production is deterministic at the mean block interval; a period's subsidy is the
  block-weighted mix of the subsidies of the blocks it contains;
- escalators step once per contract (or lease) year, counted from its start month.
"""

from __future__ import annotations

import math

import numpy as np

SECONDS_PER_DAY = 86_400.0
TWO_POW_32 = 2.0**32


# ---------------------------------------------------------------- blocks and subsidy


def blocks_per_day(block_interval_minutes: float = 10.0) -> float:
    return 1440.0 / block_interval_minutes


def block_heights_at_boundaries(start_height: float, days: np.ndarray, block_interval_minutes: float = 10.0) -> np.ndarray:
    """Expected block height at the start of each period and at the end of the last one
    (len(days) + 1 values) when blocks arrive every ``block_interval_minutes`` on average."""
    blocks = np.asarray(days, dtype=float) * blocks_per_day(block_interval_minutes)
    return start_height + np.concatenate([[0.0], np.cumsum(blocks)])


def halving_heights(start_height: float, end_height: float, interval: int = 210_000, explicit: list[int] | None = None) -> list[int]:
    """Heights in (0, end_height] at which the subsidy halves."""
    if explicit is not None:
        return [h for h in explicit if h <= end_height]
    return [interval * k for k in range(1, int(end_height // interval) + 1)]


def subsidy_at_height(height: float, initial_subsidy_btc: float = 50.0, interval: int = 210_000, explicit: list[int] | None = None) -> float:
    """Subsidy in BTC of the block at ``height``."""
    n = sum(1 for h in halving_heights(0, height, interval, explicit) if h <= height)
    return initial_subsidy_btc * 0.5**n


def subsidy_btc_between(h0: float, h1: float, initial_subsidy_btc: float = 50.0, interval: int = 210_000, explicit: list[int] | None = None) -> float:
    """Total subsidy (BTC) of the (fractional, expected) blocks between heights h0 and h1."""
    cuts = [h for h in halving_heights(0, h1, interval, explicit) if h0 < h < h1]
    edges = [h0, *cuts, h1]
    total = 0.0
    for a, b in zip(edges, edges[1:]):
        total += (b - a) * subsidy_at_height(a, initial_subsidy_btc, interval, explicit)
    return total


def period_subsidy_btc_per_block(start_height: float, days: np.ndarray, block_interval_minutes: float = 10.0,
                                 initial_subsidy_btc: float = 50.0, interval: int = 210_000,
                                 explicit: list[int] | None = None) -> np.ndarray:
    """Block-weighted average subsidy of each period (BTC per block)."""
    hb = block_heights_at_boundaries(start_height, days, block_interval_minutes)
    return np.array([
        subsidy_btc_between(a, b, initial_subsidy_btc, interval, explicit) / (b - a)
        for a, b in zip(hb[:-1], hb[1:])
    ])


# ---------------------------------------------------------------- hashprice


def network_hashrate_from_difficulty_h_s(difficulty: float, block_interval_s: float = 600.0) -> float:
    """Network hashrate (H/s) implied by a difficulty: D x 2^32 / block interval."""
    return difficulty * TWO_POW_32 / block_interval_s


def hashprice_btc_per_ph_day(subsidy_btc: np.ndarray | float, fees_btc: np.ndarray | float,
                             network_hashrate_eh_s: np.ndarray | float, block_interval_minutes: float = 10.0) -> np.ndarray:
    """BTC earned per PH/s per day: (subsidy + fees) x blocks/day / network PH/s (1 EH/s = 1000 PH/s)."""
    return (np.asarray(subsidy_btc) + np.asarray(fees_btc)) * blocks_per_day(block_interval_minutes) / (np.asarray(network_hashrate_eh_s) * 1000.0)


def hashprice_usd_per_ph_day(btc_price_usd, subsidy_btc, fees_btc, network_hashrate_eh_s, block_interval_minutes: float = 10.0) -> np.ndarray:
    return np.asarray(btc_price_usd) * hashprice_btc_per_ph_day(subsidy_btc, fees_btc, network_hashrate_eh_s, block_interval_minutes)


# ---------------------------------------------------------------- discounting


def monthly_rate(annual_rate: float) -> float:
    """Monthly rate equivalent to an annual rate: (1 + r)^(1/12) - 1."""
    return (1.0 + annual_rate) ** (1.0 / 12.0) - 1.0


def discount_factors(annual_rate: float, months_elapsed_at_end: np.ndarray) -> np.ndarray:
    """End-of-period discount factors (1 + r)^(-months/12)."""
    return (1.0 + annual_rate) ** (-np.asarray(months_elapsed_at_end, dtype=float) / 12.0)


def annuity_pv(payment: float, annual_rate: float, n_months: int) -> float:
    """Present value of ``payment`` at the end of each of ``n_months`` months (closed form)."""
    i = monthly_rate(annual_rate)
    if i == 0:
        return payment * n_months
    return payment * (1.0 - (1.0 + i) ** (-n_months)) / i


# ---------------------------------------------------------------- escalators


def escalated(base: float, escalator_per_year: float, months_since_start: np.ndarray | int) -> np.ndarray:
    """``base`` x (1 + escalator)^(whole contract years since start)."""
    years = np.floor(np.asarray(months_since_start, dtype=float) / 12.0)
    return base * (1.0 + escalator_per_year) ** years


def lease_rent_usd_month(it_mw: float, rate_usd_per_kw_month: float, escalator_per_year: float, months_since_handover) -> np.ndarray:
    """Monthly rent: MW x 1000 kW/MW x rate x escalator step."""
    return it_mw * 1000.0 * escalated(rate_usd_per_kw_month, escalator_per_year, months_since_handover)


# ---------------------------------------------------------------- power


def take_or_pay_charge_usd(price_usd_per_mwh: float, taken_mwh: float, cap_mw: float, min_share: float, hours: float) -> float:
    """Payment under a take-or-pay contract: price x max(taken, min share x cap x hours)."""
    return price_usd_per_mwh * max(taken_mwh, min_share * cap_mw * hours)


def asic_energy_mwh(units: float, power_w: float, pue: float, hours: float) -> float:
    return units * power_w * pue * hours / 1e6


def ceil_racks(it_mw: float, kw_per_rack: float) -> int:
    """Whole rack positions needed for ``it_mw`` of critical IT."""
    return int(math.ceil(it_mw * 1000.0 / kw_per_rack - 1e-9))
