"""Bitcoin protocol arithmetic: blocks, subsidy and halvings, hashprice. Pure numpy, no package imports.

Conventions (models/economics.md, "Bitcoin"): block production is deterministic at the mean
block interval; a period's subsidy is the block-weighted mix of the subsidies of the blocks it
contains; hashprice is (subsidy + fees) x blocks per day / network PH/s.
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


def halvings_up_to(height: float, interval: int = 210_000, explicit: list[int] | None = None, start_height: float = 0.0) -> int:
    """Number of halving heights h with 0 < h <= ``height``.

    Without ``explicit``: floor(height / interval) (heights interval x k, k >= 1). With ``explicit``
    (the halvings AFTER ``start_height``, models/economics.md "Bitcoin"): the era at
    ``start_height`` still follows from the interval schedule, floor(min(start, height) / interval),
    and the listed heights in (start_height, height] are added. So ``[1_050_000]`` from height
    940,000 keeps the 3.125 BTC era; listing only future halvings can never restart the subsidy at
    ``initial_subsidy_btc``. O(1), or O(len(explicit)): never proportional to the height."""
    if explicit is None:
        return max(0, int(height // interval))
    past = max(0, int(min(start_height, height) // interval))
    return past + sum(1 for h in explicit if start_height < h <= height)


def _cuts(h0: float, h1: float, interval: int, explicit: list[int] | None, start_height: float, include_end: bool):
    """Halving heights in (h0, h1) (in (h0, h1] with ``include_end``), ascending, one at a time
    (``explicit``: the interval schedule up to ``start_height``, then the listed heights after it)."""
    def inside(h: float) -> bool:
        return h0 < h < h1 or (include_end and h == h1)

    top = math.inf if explicit is None else start_height
    k = halvings_up_to(h0, interval) + 1
    while k * interval <= top and inside(k * interval):
        yield k * interval
        k += 1
    if explicit is not None:
        yield from sorted(h for h in explicit if h > start_height and inside(h))


def halving_heights(start_height: float, end_height: float, interval: int = 210_000, explicit: list[int] | None = None) -> list[int]:
    """Heights in (start_height, end_height] at which the subsidy halves (``explicit``: the
    halvings after ``start_height``)."""
    return list(_cuts(start_height, end_height, interval, explicit, start_height, include_end=True))


def subsidy_at_height(height: float, initial_subsidy_btc: float = 50.0, interval: int = 210_000, explicit: list[int] | None = None,
                      start_height: float = 0.0) -> float:
    """Subsidy in BTC of the block at ``height``: initial x 0.5^(halvings at or below it)
    (``explicit``: the halvings after ``start_height``; underflows to 0.0 after about 1,075
    halvings, as the real subsidy reaches 0 after 33)."""
    return initial_subsidy_btc * 0.5 ** halvings_up_to(height, interval, explicit, start_height)


def subsidy_btc_between(h0: float, h1: float, initial_subsidy_btc: float = 50.0, interval: int = 210_000, explicit: list[int] | None = None,
                        start_height: float | None = None) -> float:
    """Total subsidy (BTC) of the (fractional, expected) blocks between heights h0 and h1
    (``explicit``: the halvings after ``start_height``, default h0): sum over the segments between
    consecutive halvings of length x subsidy. Once the subsidy is 0.0 every later segment adds 0,
    so the loop stops there: at most ~1,075 segments, whatever the heights and the interval."""
    start = h0 if start_height is None else start_height
    total = 0.0
    a = h0
    for cut in _cuts(h0, h1, interval, explicit, start, include_end=False):
        subsidy = subsidy_at_height(a, initial_subsidy_btc, interval, explicit, start)
        if subsidy == 0.0:
            return total
        total += (cut - a) * subsidy
        a = cut
    return total + (h1 - a) * subsidy_at_height(a, initial_subsidy_btc, interval, explicit, start)


def period_subsidy_btc_per_block(start_height: float, days: np.ndarray, block_interval_minutes: float = 10.0,
                                 initial_subsidy_btc: float = 50.0, interval: int = 210_000,
                                 explicit: list[int] | None = None) -> np.ndarray:
    """Block-weighted average subsidy of each period (BTC per block)."""
    hb = block_heights_at_boundaries(start_height, days, block_interval_minutes)
    return np.array([
        subsidy_btc_between(a, b, initial_subsidy_btc, interval, explicit, start_height) / (b - a)
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
