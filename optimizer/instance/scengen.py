"""Scenario generation from a compact spec: sample N price paths, optionally reduce to K.

Every path is monthly; month 0 is the horizon's first month and holds the start values.
Step ``t -> t+1`` (t = 0 .. M-2) uses the draws of column ``t``.

- **BTC price, GBM**: ``log P[t+1] - log P[t] = (mu - s^2/2)/12 + s sqrt(1/12) z[t]``.
- **BTC price, regime switching**: the same step with ``(mu, s)`` of the regime in force in
  month ``t``. The regime is a two-state monthly Markov chain started in ``start_regime``;
  after month ``t``'s step it switches bull -> bear with probability ``p_bull_to_bear`` and
  bear -> bull with ``p_bear_to_bull`` (long-run bull share ``p_bear_to_bull / (p_bull_to_bear
  + p_bear_to_bull)``).
- **Network hashrate** responds to hashprice with a lag (miners switch on when hashprice is
  above their breakeven, off when below):
  ``g[t] = clip(base_annual_growth/12 + elasticity_per_year x (hp[t-lag]/breakeven - 1)/12,
  min_monthly_growth, max_monthly_growth)`` and
  ``H[t+1] = H[t] x (1 + g[t]) x exp(s_h sqrt(1/12) e[t] - s_h^2/24)``, where ``hp[k]`` for
  ``k < 0`` is the start month's hashprice and ``e = rho z + sqrt(1 - rho^2) z'`` is
  correlated with the BTC-price shock ``z``. With zero elasticity and volatility,
  ``H[k] = start x (1 + base_annual_growth/12)^k``.
  Hashprice ``hp[t]`` (USD/PH/day) is the instance's: ``P x (subsidy + fees) x blocks/day /
  (H x 1000)`` with the block-weighted subsidy of month ``t``
  (``economics.period_subsidy_btc_per_block``).
- **Fees** per block: iid lognormal per month with mean ``mean_btc_per_block``
  (``mean x exp(sd z - sd^2/2)``); ``monthly_log_sd = 0`` gives a constant.
- **Power price** per market: ``base x X[t] x season(calendar month of t)`` with ``X`` a GBM
  factor (``X[0] = 1``) and ``season`` either 12 multipliers (January first) or
  ``1 + amplitude x cos(2 pi (month - peak_month)/12)``.
- **HPC lease-rate index**: ``start_index x X[t]``, ``X`` a GBM factor (default constant 1).

Reproducibility: each component draws from its own ``numpy.random.default_rng([seed, tag])``
with a fixed integer tag (power markets: CRC32 of the market name), so the same seed gives the
same scenarios on any machine, whatever the dict order or the set of markets.

Reduction to K scenarios works on the N x M matrix of hashprice paths (USD/PH/day) with the
Euclidean distance between paths: ``kmedoids`` (k-means++ start seeded by ``seed``,
alternating Voronoi iteration, then PAM swaps until no swap lowers the cost) or
``forward_selection`` (Heitsch-Roemisch fast forward selection minimising the Kantorovich
distance). Each kept scenario gets the probability of the scenarios nearest to it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from optimizer.instance.base import SERIES_RANGES, Bitcoin, Horizon, TreeSpec, describe_ranges
from optimizer.instance.messages import format_validation_error
from optimizer.kernel import protocol
from optimizer.kernel.timeline import Timeline, month_label, month_ordinal

_TAG_BTC, _TAG_REGIME, _TAG_HASH, _TAG_FEES, _TAG_HPC, _TAG_REDUCE = 1, 2, 3, 4, 5, 6
MAX_SCENARIOS = 10_000
MAX_SCENARIOS_TO_REDUCE = 3_000  # reduction holds an N x N distance matrix (72 MB at 3,000)
MAX_SAMPLED_MONTHS = 2_000_000   # N x months sampled: ~10 arrays of 16 MB
MAX_KEPT_MONTHS = 200_000        # scenarios kept x months: each becomes 5 points series of the instance

Rate = Annotated[float, Field(ge=-5, le=5, allow_inf_nan=False)]
Vol = Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)]
Prob = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, json_schema_extra=describe_ranges)


class GbmPrice(_Spec):
    model: Literal["gbm"]
    start_usd: float = Field(gt=0, le=SERIES_RANGES["btc_price_usd"][1], description="BTC price in the first month")
    annual_drift: Rate = Field(0.0, description="expected growth rate mu per year: E[P(t)] = start x exp(mu t)")
    annual_volatility: Vol = Field(0.0, description="volatility of log price per sqrt(year)")


class Regime(_Spec):
    annual_drift: Rate = Field(description="expected growth rate per year while in this regime")
    annual_volatility: Vol = Field(description="volatility per sqrt(year) while in this regime")


class RegimeSwitchingPrice(_Spec):
    model: Literal["regime_switching"]
    start_usd: float = Field(gt=0, le=SERIES_RANGES["btc_price_usd"][1], description="BTC price in the first month")
    bull: Regime
    bear: Regime
    p_bull_to_bear: Prob = Field(description="monthly probability of switching from bull to bear")
    p_bear_to_bull: Prob = Field(description="monthly probability of switching from bear to bull")
    start_regime: Literal["bull", "bear"] = Field("bull", description="regime in force in the first month")


BtcPriceSpec = Annotated[Union[GbmPrice, RegimeSwitchingPrice], Field(discriminator="model")]


class HashrateSpec(_Spec):
    start_eh_s: float = Field(gt=0, le=SERIES_RANGES["network_hashrate_eh_s"][1], description="network hashrate in the first month")
    base_annual_growth: float = Field(0.0, ge=-0.99, le=10, allow_inf_nan=False, description="growth per year at breakeven hashprice; monthly rate = this / 12")
    elasticity_per_year: float = Field(0.0, ge=0, le=100, allow_inf_nan=False, description="extra annual growth per unit of relative hashprice excess (hp / breakeven - 1)")
    breakeven_hashprice_usd_per_ph_day: float = Field(40.0, gt=0, le=1e6, description="hashprice at which the fleet grows at the base rate")
    lag_months: int = Field(3, ge=0, le=36, description="months between a hashprice and the hashrate response to it")
    min_monthly_growth: float = Field(-0.10, gt=-1, le=1, allow_inf_nan=False, description="floor on the monthly growth rate g")
    max_monthly_growth: float = Field(0.10, gt=-1, le=1, allow_inf_nan=False, description="cap on the monthly growth rate g")
    shock_annual_volatility: Vol = Field(0.0, description="volatility per sqrt(year) of the random hashrate shock")
    shock_correlation_with_btc: float = Field(0.0, ge=-1, le=1, allow_inf_nan=False, description="correlation rho of the hashrate shock with the BTC-price shock")

    @model_validator(mode="after")
    def _check(self) -> "HashrateSpec":
        if self.min_monthly_growth > self.max_monthly_growth:
            raise ValueError(f"min_monthly_growth {self.min_monthly_growth} exceeds max_monthly_growth {self.max_monthly_growth}")
        if self.shock_correlation_with_btc != 0 and self.shock_annual_volatility == 0:
            raise ValueError("shock_correlation_with_btc needs shock_annual_volatility > 0")
        return self


class FeesSpec(_Spec):
    mean_btc_per_block: float = Field(0.0, ge=0, le=100, description="mean transaction fees per block")
    monthly_log_sd: Vol = Field(0.0, description="sd of log fees, iid per month (0: constant)")

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, data: Any) -> Any:
        return {"mean_btc_per_block": data} if isinstance(data, (int, float)) and not isinstance(data, bool) else data


class PowerPriceSpec(_Spec):
    base_usd_per_mwh: float = Field(gt=0, le=SERIES_RANGES["power_price_usd_per_mwh"][1], description="price in the first month before the seasonal multiplier")
    annual_drift: Rate = 0.0
    annual_volatility: Vol = 0.0
    monthly_multipliers: list[Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)]] | None = Field(None, min_length=12, max_length=12, description="seasonal multiplier per calendar month, January first")
    seasonal_amplitude: float | None = Field(None, ge=0, lt=1, allow_inf_nan=False, description="season = 1 + amplitude x cos(2 pi (month - peak_month) / 12)")
    peak_month: int = Field(8, ge=1, le=12, description="calendar month of the seasonal peak (8 = August, ERCOT-like)")

    @model_validator(mode="after")
    def _one_season(self) -> "PowerPriceSpec":
        if self.monthly_multipliers is not None and self.seasonal_amplitude is not None:
            raise ValueError("give monthly_multipliers or seasonal_amplitude, not both")
        return self

    def season(self, calendar_month_index: np.ndarray) -> np.ndarray:
        """Multiplier for calendar months 0 (January) .. 11."""
        if self.monthly_multipliers is not None:
            return np.asarray(self.monthly_multipliers, dtype=float)[calendar_month_index]
        amp = self.seasonal_amplitude or 0.0
        return 1.0 + amp * np.cos(2.0 * np.pi * (calendar_month_index + 1 - self.peak_month) / 12.0)


class HpcIndexSpec(_Spec):
    start_index: float = Field(1.0, gt=0, le=SERIES_RANGES["hpc_lease_rate_index"][1])
    annual_drift: Rate = 0.0
    annual_volatility: Vol = 0.0


class ScenarioGenerator(_Spec):
    """Compact spec that expands into ``n_scenarios`` equally likely scenarios (see module doc)."""

    n_scenarios: int = Field(gt=0, le=MAX_SCENARIOS, description="paths sampled, each with probability 1/N")
    seed: int = Field(0, ge=0, lt=2**64, description="same seed, same scenarios")
    reduce_to: int | None = Field(None, gt=0, le=MAX_SCENARIOS, description="keep this many representative scenarios (K <= N), re-weighted")
    reduction_method: Literal["kmedoids", "forward_selection"] = Field("kmedoids", description="how representatives are picked on the hashprice paths")
    btc_price: BtcPriceSpec
    network_hashrate: HashrateSpec
    fees_btc_per_block: FeesSpec = FeesSpec()
    power_price_usd_per_mwh: dict[str, PowerPriceSpec] = Field(default_factory=dict, description="market id -> price model")
    hpc_lease_rate_index: HpcIndexSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> "ScenarioGenerator":
        if self.reduce_to is not None:
            if self.reduce_to > self.n_scenarios:
                raise ValueError(f"reduce_to: must be <= n_scenarios ({self.n_scenarios}), got {self.reduce_to}")
            if self.n_scenarios > MAX_SCENARIOS_TO_REDUCE:
                raise ValueError(f"n_scenarios: at most {MAX_SCENARIOS_TO_REDUCE} when reduce_to is set (pairwise distances), got {self.n_scenarios}")
        return self


# ---------------------------------------------------------------- sampling


@dataclass(frozen=True)
class Paths:
    """Sampled monthly paths, arrays [N, M]."""

    months: list[str]
    btc_price_usd: np.ndarray
    bull: np.ndarray | None  # regime in force each month (regime switching only)
    network_hashrate_eh_s: np.ndarray
    fees_btc_per_block: np.ndarray
    hashprice_usd_per_ph_day: np.ndarray
    power_price_usd_per_mwh: dict[str, np.ndarray]
    hpc_lease_rate_index: np.ndarray


def _rng(seed: int, tag: int) -> np.random.Generator:
    return np.random.default_rng([seed, tag])


@dataclass
class Shocks:
    """The random draws behind N paths of M months; the paths are a causal function of them.

    Step columns (``[N, M-1]``, column ``t`` drives the step from month ``t`` to ``t+1``): BTC
    log-price normals ``btc``, regime-switch uniforms ``regime`` (regime switching only),
    hashrate-shock normals ``hashrate``, power-price factor normals per market ``power``, HPC
    index normals ``hpc``. Month columns (``[N, M]``): fee normals ``fees``. Month ``t`` of a path
    depends on step columns ``< t`` and month column ``t`` only, so paths whose shocks agree up
    to a column agree up to that month: scenario trees share a node's history by sharing its
    shocks (``sample_tree``).
    """

    btc: np.ndarray
    regime: np.ndarray | None
    fees: np.ndarray
    hashrate: np.ndarray
    power: dict[str, np.ndarray]
    hpc: np.ndarray

    @property
    def n(self) -> int:
        return self.fees.shape[0]

    def until(self, months: int) -> "Shocks":
        """The shocks of months ``[0, months)`` only (step columns ``< months - 1``)."""
        k = max(months - 1, 0)
        return Shocks(self.btc[:, :k], None if self.regime is None else self.regime[:, :k], self.fees[:, :months],
                      self.hashrate[:, :k], {key: v[:, :k] for key, v in self.power.items()}, self.hpc[:, :k])

    def fill(self, seg: "Shocks", a: int, b: int) -> None:
        """Write a segment's shocks (months ``[a, b)``: step columns ``max(a-1, 0) .. b-2`` and
        month columns ``a .. b-1``) into these full-width shocks, in place."""
        sc, mc = slice(max(a - 1, 0), b - 1), slice(a, b)
        self.btc[:, sc], self.fees[:, mc], self.hashrate[:, sc], self.hpc[:, sc] = seg.btc, seg.fees, seg.hashrate, seg.hpc
        if self.regime is not None:
            self.regime[:, sc] = seg.regime
        for key, v in seg.power.items():
            self.power[key][:, sc] = v

    def rows(self, idx) -> "Shocks":
        """The shocks of the paths ``idx`` (an index array or slice)."""
        return Shocks(self.btc[idx], None if self.regime is None else self.regime[idx], self.fees[idx],
                      self.hashrate[idx], {k: v[idx] for k, v in self.power.items()}, self.hpc[idx])

    @staticmethod
    def stack(parts: list["Shocks"]) -> "Shocks":
        cat = np.concatenate
        return Shocks(cat([x.btc for x in parts]), None if parts[0].regime is None else cat([x.regime for x in parts]),
                      cat([x.fees for x in parts]), cat([x.hashrate for x in parts]),
                      {k: cat([x.power[k] for x in parts]) for k in parts[0].power}, cat([x.hpc for x in parts]))


def _markets(spec: ScenarioGenerator, markets: list[str]) -> list[str]:
    markets = sorted(set(markets))
    missing = [k for k in markets if k not in spec.power_price_usd_per_mwh]
    if missing:
        raise ValueError(f"scenario_generator.power_price_usd_per_mwh: no price model for market(s) {', '.join(missing)}")
    return markets


def _draw(spec: ScenarioGenerator, rng, n: int, steps: int, months: int, markets: list[str]) -> Shocks:
    """Shocks of ``n`` paths: ``steps`` step columns and ``months`` month columns; ``rng(tag)``
    gives each component its own generator (so one component's draws never shift another's)."""
    regime = rng(_TAG_REGIME).random((n, steps)) if isinstance(spec.btc_price, RegimeSwitchingPrice) else None
    return Shocks(
        btc=rng(_TAG_BTC).standard_normal((n, steps)), regime=regime,
        fees=rng(_TAG_FEES).standard_normal((n, months)),
        hashrate=rng(_TAG_HASH).standard_normal((n, steps)),
        power={k: rng(1000 + zlib.crc32(k.encode())).standard_normal((n, steps)) for k in markets},
        hpc=rng(_TAG_HPC).standard_normal((n, steps)),
    )


def draw_shocks(spec: ScenarioGenerator, n: int, n_months: int, markets: list[str], seed: int | None = None) -> Shocks:
    """The shocks of ``n`` paths of ``n_months`` months from ``numpy.random.default_rng([seed,
    tag])`` per component (``seed`` defaults to ``spec.seed``)."""
    s = spec.seed if seed is None else seed
    return _draw(spec, lambda tag: _rng(s, tag), n, n_months - 1, n_months, _markets(spec, markets))


def _gbm_factor(z: np.ndarray, drift: float, vol: float) -> np.ndarray:
    """[n, m] GBM factor starting at 1 from the step normals z [n, m-1] (monthly steps)."""
    steps = (drift - 0.5 * vol**2) / 12.0 + vol * math.sqrt(1.0 / 12.0) * z
    return np.exp(np.concatenate([np.zeros((len(z), 1)), np.cumsum(steps, axis=1)], axis=1))


def _btc(spec: ScenarioGenerator, z: np.ndarray, u: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Prices [n, m] and bull flags [n, m] (or None) from the step normals z and regime uniforms u [n, m-1]."""
    p = spec.btc_price
    n, m = z.shape[0], z.shape[1] + 1
    if isinstance(p, GbmPrice):
        bull = None
        mu = np.full((n, m - 1), p.annual_drift)
        sd = np.full((n, m - 1), p.annual_volatility)
    else:
        bull = np.empty((n, m), dtype=bool)
        bull[:, 0] = p.start_regime == "bull"
        for t in range(1, m):
            prev = bull[:, t - 1]
            bull[:, t] = np.where(prev, u[:, t - 1] >= p.p_bull_to_bear, u[:, t - 1] < p.p_bear_to_bull)
        mu = np.where(bull[:, :-1], p.bull.annual_drift, p.bear.annual_drift)
        sd = np.where(bull[:, :-1], p.bull.annual_volatility, p.bear.annual_volatility)
    steps = (mu - 0.5 * sd**2) / 12.0 + sd * math.sqrt(1.0 / 12.0) * z
    price = p.start_usd * np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1))
    return price, bull


def _bitcoin(bitcoin: Any) -> Any:
    if isinstance(bitcoin, Mapping):
        return Bitcoin.model_validate(bitcoin)
    return bitcoin


def paths_from_shocks(spec: ScenarioGenerator, shocks: Shocks, start_month: str, bitcoin: Any) -> Paths:
    """The paths the shocks give (the module doc's recursions); causal month by month."""
    b = _bitcoin(bitcoin)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing path is reported by the instance's range check
        return _paths_from_shocks(spec, shocks, start_month, b)


def _paths_from_shocks(spec: ScenarioGenerator, shocks: Shocks, start_month: str, b: Any) -> Paths:
    n, m = shocks.fees.shape
    start = month_ordinal(start_month)
    tl = Timeline(start, m, 1)
    subsidy = protocol.period_subsidy_btc_per_block(b.start_height, tl.month_days, b.block_interval_minutes,
                                              b.initial_subsidy_btc, b.halving_interval_blocks, b.halving_heights)

    z_btc = shocks.btc
    price, bull = _btc(spec, z_btc, shocks.regime)

    f = spec.fees_btc_per_block
    fees = f.mean_btc_per_block * np.exp(f.monthly_log_sd * shocks.fees - 0.5 * f.monthly_log_sd**2)

    h = spec.network_hashrate
    rho, s_h = h.shock_correlation_with_btc, h.shock_annual_volatility
    shock = np.exp(s_h * math.sqrt(1.0 / 12.0) * (rho * z_btc + math.sqrt(1.0 - rho**2) * shocks.hashrate) - s_h**2 / 24.0)
    hashrate = np.empty((n, m))
    hp = np.empty((n, m))
    hashrate[:, 0] = h.start_eh_s
    for t in range(m):
        hp[:, t] = protocol.hashprice_usd_per_ph_day(price[:, t], subsidy[t], fees[:, t], hashrate[:, t], b.block_interval_minutes)
        if t == m - 1:
            break
        ref = hp[:, max(t - h.lag_months, 0)]
        g = h.base_annual_growth / 12.0 + h.elasticity_per_year * (ref / h.breakeven_hashprice_usd_per_ph_day - 1.0) / 12.0
        g = np.clip(g, h.min_monthly_growth, h.max_monthly_growth)
        hashrate[:, t + 1] = hashrate[:, t] * (1.0 + g) * shock[:, t]

    calendar = (start + np.arange(m)) % 12
    power = {}
    for k, z in sorted(shocks.power.items()):
        ps = spec.power_price_usd_per_mwh[k]
        power[k] = ps.base_usd_per_mwh * _gbm_factor(z, ps.annual_drift, ps.annual_volatility) * ps.season(calendar)[None, :]

    hs = spec.hpc_lease_rate_index or HpcIndexSpec()
    hpc = hs.start_index * _gbm_factor(shocks.hpc, hs.annual_drift, hs.annual_volatility)

    return Paths([month_label(start + i) for i in range(m)], price, bull, hashrate, fees, hp, power, hpc)


def sample_paths(spec: ScenarioGenerator, start_month: str, n_months: int, bitcoin: Any, markets: list[str],
                 n: int | None = None, seed: int | None = None) -> Paths:
    """N sampled paths (no reduction; ``n`` defaults to ``spec.n_scenarios``, ``seed`` to
    ``spec.seed``). ``bitcoin`` is an ``instance.Bitcoin`` (or its dict)."""
    if n_months < 1:
        raise ValueError(f"n_months: must be >= 1, got {n_months}")
    shocks = draw_shocks(spec, spec.n_scenarios if n is None else n, n_months, markets, seed)
    return paths_from_shocks(spec, shocks, start_month, bitcoin)


# ---------------------------------------------------------------- reduction


def _distances(x: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of x."""
    sq = (x * x).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * x @ x.T
    d = np.sqrt(np.maximum(d2, 0.0))
    np.fill_diagonal(d, 0.0)
    return d


def _cost(d: np.ndarray, p: np.ndarray, medoids: list[int]) -> float:
    return float(p @ d[:, medoids].min(axis=1))


def _kmeans_pp(d: np.ndarray, p: np.ndarray, k: int, rng: np.random.Generator) -> list[int]:
    """First medoid: the 1-medoid; then sample with weight p x (distance to nearest chosen)^2."""
    chosen = [int(np.argmin(p @ d))]
    for _ in range(1, k):
        w = p * d[:, chosen].min(axis=1) ** 2
        w[chosen] = 0.0
        total = w.sum()
        if total <= 0:  # the rest coincide with chosen paths: take the lowest unchosen index
            chosen.append(int(np.flatnonzero(~np.isin(np.arange(len(p)), chosen))[0]))
            continue
        chosen.append(int(min(np.searchsorted(np.cumsum(w), rng.random() * total, side="right"), len(p) - 1)))
    return sorted(chosen)


def _assign(d: np.ndarray, medoids: list[int]) -> np.ndarray:
    """Index into ``medoids`` of each point's nearest medoid (ties: the lowest); medoids keep themselves."""
    a = np.argmin(d[:, medoids], axis=1)
    a[medoids] = np.arange(len(medoids))
    return a


def _kmedoids(d: np.ndarray, p: np.ndarray, k: int, seed: int) -> list[int]:
    medoids = _kmeans_pp(d, p, k, _rng(seed, _TAG_REDUCE))
    for _ in range(100):  # alternating (Voronoi) iteration
        a = _assign(d, medoids)
        new = []
        for j in range(k):
            members = np.flatnonzero(a == j)
            new.append(int(members[np.argmin(d[np.ix_(members, members)] @ p[members])]))
        new = sorted(new)
        if new == medoids:
            break
        medoids = new
    cost = _cost(d, p, medoids)
    for _ in range(10 * len(p)):  # PAM swap: apply the best (medoid, non-medoid) exchange while it lowers the cost
        near = np.sort(d[:, medoids], axis=1)
        d1 = near[:, 0]
        d2 = near[:, 1] if k > 1 else np.full(len(p), np.inf)
        # cost change of swapping medoid i for h: points of other clusters move to min(d1, d_h),
        # points of cluster i to min(d2, d_h) (their best other medoid or h)
        to_h = np.minimum(d, d1[:, None])
        gain_all = p @ (to_h - d1[:, None])
        onehot = np.zeros((k, len(p)))
        onehot[_assign(d, medoids), np.arange(len(p))] = 1.0
        delta = gain_all[None, :] + (onehot * p) @ (np.minimum(d, d2[:, None]) - to_h)
        delta[:, medoids] = np.inf
        i, h = np.unravel_index(int(np.argmin(delta)), delta.shape)
        new = sorted(medoids[:i] + medoids[i + 1:] + [int(h)])
        new_cost = _cost(d, p, new)
        if not (delta[i, h] < -1e-12 * (1.0 + cost) and new_cost < cost):  # strict decrease: no cycling
            break
        medoids, cost = new, new_cost
    return medoids


def _forward_selection(d: np.ndarray, p: np.ndarray, k: int) -> list[int]:
    """Fast forward selection: add the scenario that most lowers the Kantorovich distance
    sum_{j not kept} p_j min_{kept} d(j, kept) (Heitsch & Roemisch 2003)."""
    n = len(p)
    kept: list[int] = []
    dmin = np.full(n, np.inf)
    left = np.ones(n, dtype=bool)
    for _ in range(k):
        # z[u] = sum over j still left of p_j min(dmin_j, d(j, u)); d(u, u) = 0 drops u itself
        z = (p[left][:, None] * np.minimum(d[left, :], dmin[left, None])).sum(axis=0)
        z[~left] = np.inf
        u = int(np.argmin(z))
        kept.append(u)
        left[u] = False
        dmin = np.minimum(dmin, d[:, u])
    return sorted(kept)


def reduce_scenarios(paths: np.ndarray, probabilities: np.ndarray, k: int,
                     method: Literal["kmedoids", "forward_selection"] = "kmedoids", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` rows of ``paths`` [N, M] and re-weight them: each kept row gets the probability
    of the rows nearest to it (ties to the lowest index). Returns (sorted indices, probabilities)."""
    x = np.asarray(paths, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    n = len(p)
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"paths must be [N, M] with N = len(probabilities) = {n}, got shape {x.shape}")
    if not 1 <= k <= n:
        raise ValueError(f"reduce_to: must be between 1 and {n}, got {k}")
    d = _distances(x)
    if method == "kmedoids":
        kept = _kmedoids(d, p, k, seed)
    elif method == "forward_selection":
        kept = _forward_selection(d, p, k)
    else:
        raise ValueError(f"reduction_method: must be 'kmedoids' or 'forward_selection', got {method!r}")
    a = _assign(d, kept)
    q = np.bincount(a, weights=p, minlength=k)
    return np.asarray(kept), q


# ---------------------------------------------------------------- scenario dicts


def _points(months: list[str], row: np.ndarray) -> dict:
    return {"points": dict(zip(months, (float(v) for v in row)))}


def generate(spec: ScenarioGenerator, start_month: str, n_months: int, bitcoin: Any, markets: list[str]) -> list[dict]:
    """Scenario dicts in the ``instance.Scenario`` schema; probabilities sum to 1."""
    if not isinstance(spec, ScenarioGenerator):
        spec = ScenarioGenerator.model_validate(spec)
    paths = sample_paths(spec, start_month, n_months, bitcoin, markets)
    n = spec.n_scenarios
    idx, prob = np.arange(n), np.full(n, 1.0 / n)
    if spec.reduce_to is not None:
        idx, prob = reduce_scenarios(paths.hashprice_usd_per_ph_day, prob, spec.reduce_to, spec.reduction_method, spec.seed)
    probs = [float(x) for x in prob]
    probs[-1] = max(0.0, 1.0 - math.fsum(probs[:-1]))
    width = len(str(n))
    m = paths.months
    return [
        {
            "name": f"s{i + 1:0{width}d}",
            "probability": pr,
            "btc_price_usd": _points(m, paths.btc_price_usd[i]),
            "network_hashrate_eh_s": _points(m, paths.network_hashrate_eh_s[i]),
            "fees_btc_per_block": _points(m, paths.fees_btc_per_block[i]),
            "power_price_usd_per_mwh": {k: _points(m, v[i]) for k, v in sorted(paths.power_price_usd_per_mwh.items())},
            "hpc_lease_rate_index": _points(m, paths.hpc_lease_rate_index[i]),
        }
        for i, pr in zip((int(j) for j in idx), probs)
    ]


def scenario_dicts(paths: Paths, names: list[str], probabilities: list[float], rows=None) -> list[dict]:
    """Scenario dicts (the ``instance.Scenario`` schema, one ``points`` series per month) of the
    paths ``rows`` (default: all), named and weighted as given."""
    m = paths.months
    rows = range(len(names)) if rows is None else rows
    return [
        {
            "name": name,
            "probability": pr,
            "btc_price_usd": _points(m, paths.btc_price_usd[i]),
            "network_hashrate_eh_s": _points(m, paths.network_hashrate_eh_s[i]),
            "fees_btc_per_block": _points(m, paths.fees_btc_per_block[i]),
            "power_price_usd_per_mwh": {k: _points(m, v[i]) for k, v in sorted(paths.power_price_usd_per_mwh.items())},
            "hpc_lease_rate_index": _points(m, paths.hpc_lease_rate_index[i]),
        }
        for name, pr, i in zip(names, probabilities, rows)
    ]


_TREE_STREAM = 7  # extra seed word of tree-node draws: disjoint from the plain sampler's streams


def _blank(spec: ScenarioGenerator, n: int, m: int, markets: list[str]) -> Shocks:
    z = lambda k: np.zeros((n, k))  # noqa: E731
    return Shocks(z(m - 1), z(m - 1) if isinstance(spec.btc_price, RegimeSwitchingPrice) else None, z(m), z(m - 1),
                  {k: z(m - 1) for k in markets}, z(m - 1))


def _segment(spec: ScenarioGenerator, seed: int, key: tuple[int, ...], n: int, a: int, b: int, markets: list[str]) -> Shocks:
    """``n`` draws of the shocks of months ``[a, b)`` for the node with label path ``key``
    (its own generator per component: ``default_rng([seed, tag, 7, depth, *key])``)."""
    rng = lambda tag: np.random.default_rng([seed, tag, _TREE_STREAM, len(key), *key])  # noqa: E731
    return _draw(spec, rng, n, b - 1 - max(a - 1, 0), b - a, markets)


@dataclass(frozen=True)
class TreeSample:
    """A sampled scenario tree: its leaves (the scenarios), their node labels per branch month,
    probabilities (products of the conditional ones down the tree), shocks and paths."""

    names: list[str]
    labels: dict[str, list[str]]
    probabilities: list[float]
    shocks: Shocks
    paths: Paths

    def scenarios(self) -> list[dict]:
        return scenario_dicts(self.paths, self.names, self.probabilities)


def sample_tree(spec: ScenarioGenerator, start_month: str, n_months: int, bitcoin: Any, markets: list[str],
                branch_offsets: list[int], children: list[int], samples_per_node: int | None = None,
                method: Literal["kmedoids", "forward_selection"] = "kmedoids", seed: int | None = None,
                prefix: Shocks | None = None) -> TreeSample:
    """A scenario tree from the generator: the root's months ``[0, branch_offsets[0])`` come from
    ``prefix`` (one path's shocks, e.g. a realized history) or one draw; then at each branch
    offset every node draws ``samples_per_node`` continuations of the stage's months (default
    ``children``: no reduction), keeps ``children`` of them (``reduce_scenarios`` on the stage's
    hashprice when more were drawn, each kept child carrying the mass of the samples nearest to
    it; else each with probability 1/children), and labels them 1, 2, ... in increasing BTC
    price at the stage's last month. Paths through one node share its shocks, hence (the
    recursions being causal) its whole history. Same seed, same tree."""
    s = spec.seed if seed is None else seed
    markets = _markets(spec, markets)
    m = n_months
    bounds = list(branch_offsets) + [m]
    if any(not 0 <= x < y for x, y in zip(bounds, bounds[1:])):
        raise ValueError(f"branch offsets must be ascending months inside the horizon (0..{m - 1}), got {list(branch_offsets)}")
    if len(children) != len(branch_offsets) or min(children, default=1) < 1:
        raise ValueError(f"children: one positive number per branch month, got {children}")
    root = _blank(spec, 1, m, markets)
    if bounds[0] > 0:
        root.fill(prefix.until(bounds[0]) if prefix is not None else _segment(spec, s, (), 1, 0, bounds[0], markets), 0, bounds[0])
    nodes: list[tuple[tuple[int, ...], float, Shocks]] = [((), 1.0, root)]
    for d, k in enumerate(children):
        a, b = bounds[d], bounds[d + 1]
        n = max(samples_per_node or k, k)
        grown = []
        for key, p, sh in nodes:
            cand = sh.rows(np.zeros(n, dtype=int))
            cand.fill(_segment(spec, s, key, n, a, b, markets), a, b)
            seen = paths_from_shocks(spec, cand.until(b), start_month, bitcoin)
            if n > k:
                kept, q = reduce_scenarios(seen.hashprice_usd_per_ph_day[:, a:b], np.full(n, 1.0 / n), k, method, s)
            else:
                kept, q = np.arange(k), np.full(k, 1.0 / k)
            order = sorted(range(k), key=lambda j: (seen.btc_price_usd[kept[j], b - 1], j))
            for label, j in enumerate(order, 1):
                grown.append((key + (label,), p * float(q[j]), cand.rows([int(kept[j])])))
        nodes = grown
    names = ["s" + "-".join(str(x) for x in key) for key, _, _ in nodes]
    probs = [p for _, p, _ in nodes]
    probs[-1] = max(0.0, 1.0 - math.fsum(probs[:-1]))
    shocks = Shocks.stack([sh for _, _, sh in nodes])
    paths = paths_from_shocks(spec, shocks, start_month, bitcoin)
    labels = {name: [str(x) for x in key] for name, (key, _, _) in zip(names, nodes)}
    return TreeSample(names, labels, probs, shocks, paths)


def _markets_of(data: Mapping) -> list[str]:
    sites = data.get("sites") if isinstance(data.get("sites"), list) else []
    return [m for m in ((s.get("market") if isinstance(s, Mapping) else getattr(s, "market", None)) for s in sites) if isinstance(m, str)]


def _nodes_before(children: list[int], d: int) -> int:
    """Nodes that branch at the d-th branch month: the product of the children before it."""
    out = 1
    for k in children[:d]:
        out *= k
    return out


def branch_offsets(tree: TreeSpec, horizon: Horizon) -> list[int]:
    """Months from the horizon start to each branch month; ValueError (naming the field) when one
    lies outside the horizon or does not start a period."""
    start = month_ordinal(horizon.start_month)
    n = horizon.periods * horizon.period_months
    out = []
    for i, bm in enumerate(tree.branch_months):
        k = month_ordinal(bm) - start
        if not 0 <= k < n:
            raise ValueError(f"tree.branch_months[{i}]: month {bm} is outside the horizon {horizon.start_month}..{month_label(start + n - 1)}")
        if k % horizon.period_months:
            raise ValueError(f"tree.branch_months[{i}]: month {bm} does not start a period ({horizon.period_months}-month periods from {horizon.start_month})")
        out.append(k)
    return out


def _generator_spec(data: Mapping) -> ScenarioGenerator:
    """The instance's ``scenario_generator``, validated; errors carry the path under it."""
    try:
        return _Section.model_validate({"scenario_generator": data["scenario_generator"]}).scenario_generator
    except ValidationError as e:  # paths under scenario_generator, as the instance's would be
        raise ValueError(format_validation_error(e, {"scenario_generator": data["scenario_generator"]}, _Section)) from None


def _horizon_and_bitcoin(data: Mapping) -> tuple[Horizon, Bitcoin] | None:
    """The horizon and bitcoin sections, or None when either is invalid (the instance's own
    validation then names the field)."""
    try:
        return Horizon.model_validate(data.get("horizon")), Bitcoin.model_validate(data.get("bitcoin"))
    except ValidationError:
        return None


def instance_tree(data: Mapping) -> tuple[list[dict], dict[str, list[str]]] | None:
    """Scenarios and node labels of a generated tree (``tree.children`` with ``scenario_generator``)
    for a raw instance mapping; None when the horizon or bitcoin section is itself invalid."""
    if data.get("scenarios"):
        raise ValueError("give scenarios or scenario_generator, not both")
    spec = _generator_spec(data)
    try:
        tree = TreeSpec.model_validate(data["tree"])
    except ValidationError as e:
        raise ValueError("tree." + format_validation_error(e, data["tree"], TreeSpec)) from None
    if tree.paths is not None:
        raise ValueError("tree.paths: give paths (for listed scenarios) or children (a generated tree), not both")
    if spec.reduce_to is not None:
        raise ValueError("scenario_generator.reduce_to: a generated tree reduces per node (tree.samples_per_node), not the whole set")
    if spec.n_scenarios != tree.n_leaves:
        raise ValueError(f"scenario_generator.n_scenarios: must equal the tree's leaves ({' x '.join(map(str, tree.children_per_stage))} "
                         f"= {tree.n_leaves}), got {spec.n_scenarios}")
    sections = _horizon_and_bitcoin(data)
    if sections is None:
        return None
    horizon, bitcoin = sections
    offsets = branch_offsets(tree, horizon)
    months = horizon.periods * horizon.period_months
    sampled = sum(max(tree.samples_per_node or k, k) * _nodes_before(tree.children_per_stage, d)
                  for d, k in enumerate(tree.children_per_stage))
    _check_size(max(sampled, tree.n_leaves), tree.n_leaves, months)
    ts = sample_tree(spec, horizon.start_month, horizon.periods * horizon.period_months, bitcoin, _markets_of(data),
                     offsets, tree.children_per_stage, tree.samples_per_node, tree.reduction_method)
    return ts.scenarios(), ts.labels


class _Section(_Spec):
    scenario_generator: ScenarioGenerator


def instance_scenarios(data: Mapping) -> list[dict] | None:
    """Scenarios for a raw instance mapping that holds ``scenario_generator``.

    Returns None when the horizon or bitcoin section is itself invalid (the instance's own
    validation then names that field). Markets are those of the sites in ``data``.
    """
    if data.get("scenarios"):
        raise ValueError("scenario_generator: give scenarios or scenario_generator, not both")
    spec = _generator_spec(data)
    sections = _horizon_and_bitcoin(data)
    if sections is None:
        return None
    horizon, bitcoin = sections
    n, kept, months = spec.n_scenarios, spec.reduce_to or spec.n_scenarios, horizon.periods * horizon.period_months
    _check_size(n, kept, months)
    return generate(spec, horizon.start_month, months, bitcoin, _markets_of(data))


def _check_size(n: int, kept: int, months: int) -> None:
    if n * months > MAX_SAMPLED_MONTHS or kept * months > MAX_KEPT_MONTHS:
        raise ValueError(f"scenario_generator.n_scenarios: {n} paths of {months} months{f' reduced to {kept}' if kept < n else ''} "
                         f"is too many for an instance: at most {MAX_SAMPLED_MONTHS:,} path-months sampled and "
                         f"{MAX_KEPT_MONTHS:,} kept (scenarios kept x months)")
