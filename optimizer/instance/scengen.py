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

from optimizer.instance.base import SERIES_RANGES, Bitcoin, Horizon, describe_ranges
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


def _gbm_factor(rng: np.random.Generator, n: int, m: int, drift: float, vol: float) -> np.ndarray:
    """[n, m] GBM factor starting at 1 (monthly steps)."""
    z = rng.standard_normal((n, m - 1))
    steps = (drift - 0.5 * vol**2) / 12.0 + vol * math.sqrt(1.0 / 12.0) * z
    return np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1))


def _btc(spec: ScenarioGenerator, n: int, m: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Prices [n, m], bull flags [n, m] or None, and the standard-normal shocks z [n, m-1]."""
    p = spec.btc_price
    z = _rng(spec.seed, _TAG_BTC).standard_normal((n, m - 1))
    if isinstance(p, GbmPrice):
        bull = None
        mu = np.full((n, m - 1), p.annual_drift)
        sd = np.full((n, m - 1), p.annual_volatility)
    else:
        u = _rng(spec.seed, _TAG_REGIME).random((n, m - 1))
        bull = np.empty((n, m), dtype=bool)
        bull[:, 0] = p.start_regime == "bull"
        for t in range(1, m):
            prev = bull[:, t - 1]
            bull[:, t] = np.where(prev, u[:, t - 1] >= p.p_bull_to_bear, u[:, t - 1] < p.p_bear_to_bull)
        mu = np.where(bull[:, :-1], p.bull.annual_drift, p.bear.annual_drift)
        sd = np.where(bull[:, :-1], p.bull.annual_volatility, p.bear.annual_volatility)
    steps = (mu - 0.5 * sd**2) / 12.0 + sd * math.sqrt(1.0 / 12.0) * z
    price = p.start_usd * np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(steps, axis=1)], axis=1))
    return price, bull, z


def _bitcoin(bitcoin: Any) -> Any:
    if isinstance(bitcoin, Mapping):
        return Bitcoin.model_validate(bitcoin)
    return bitcoin


def sample_paths(spec: ScenarioGenerator, start_month: str, n_months: int, bitcoin: Any, markets: list[str]) -> Paths:
    """All N sampled paths (no reduction). ``bitcoin`` is an ``instance.Bitcoin`` (or its dict)."""
    if n_months < 1:
        raise ValueError(f"n_months: must be >= 1, got {n_months}")
    b = _bitcoin(bitcoin)
    markets = sorted(set(markets))
    missing = [k for k in markets if k not in spec.power_price_usd_per_mwh]
    if missing:
        raise ValueError(f"scenario_generator.power_price_usd_per_mwh: no price model for market(s) {', '.join(missing)}")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflowing path is reported by the instance's range check
        return _sample_paths(spec, start_month, n_months, b, markets)


def _sample_paths(spec: ScenarioGenerator, start_month: str, n_months: int, b: Any, markets: list[str]) -> Paths:
    n, m = spec.n_scenarios, n_months
    start = month_ordinal(start_month)
    tl = Timeline(start, m, 1)
    subsidy = protocol.period_subsidy_btc_per_block(b.start_height, tl.month_days, b.block_interval_minutes,
                                              b.initial_subsidy_btc, b.halving_interval_blocks, b.halving_heights)

    price, bull, z_btc = _btc(spec, n, m)

    f = spec.fees_btc_per_block
    z_fee = _rng(spec.seed, _TAG_FEES).standard_normal((n, m))
    fees = f.mean_btc_per_block * np.exp(f.monthly_log_sd * z_fee - 0.5 * f.monthly_log_sd**2)

    h = spec.network_hashrate
    rho, s_h = h.shock_correlation_with_btc, h.shock_annual_volatility
    z_ind = _rng(spec.seed, _TAG_HASH).standard_normal((n, m - 1))
    shock = np.exp(s_h * math.sqrt(1.0 / 12.0) * (rho * z_btc + math.sqrt(1.0 - rho**2) * z_ind) - s_h**2 / 24.0)
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
    for k in markets:
        ps = spec.power_price_usd_per_mwh[k]
        x = _gbm_factor(_rng(spec.seed, 1000 + zlib.crc32(k.encode())), n, m, ps.annual_drift, ps.annual_volatility)
        power[k] = ps.base_usd_per_mwh * x * ps.season(calendar)[None, :]

    hs = spec.hpc_lease_rate_index or HpcIndexSpec()
    hpc = hs.start_index * _gbm_factor(_rng(spec.seed, _TAG_HPC), n, m, hs.annual_drift, hs.annual_volatility)

    return Paths([month_label(start + i) for i in range(m)], price, bull, hashrate, fees, hp, power, hpc)


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


class _Section(_Spec):
    scenario_generator: ScenarioGenerator


def instance_scenarios(data: Mapping) -> list[dict] | None:
    """Scenarios for a raw instance mapping that holds ``scenario_generator``.

    Returns None when the horizon or bitcoin section is itself invalid (the instance's own
    validation then names that field). Markets are those of the sites in ``data``.
    """
    if data.get("scenarios"):
        raise ValueError("scenario_generator: give scenarios or scenario_generator, not both")
    try:
        spec = _Section.model_validate({"scenario_generator": data["scenario_generator"]}).scenario_generator
    except ValidationError as e:  # paths under scenario_generator, as the instance's would be
        raise ValueError(format_validation_error(e, {"scenario_generator": data["scenario_generator"]}, _Section)) from None
    try:
        horizon = Horizon.model_validate(data.get("horizon"))
        bitcoin = Bitcoin.model_validate(data.get("bitcoin"))
    except ValidationError:
        return None
    n, kept, months = spec.n_scenarios, spec.reduce_to or spec.n_scenarios, horizon.periods * horizon.period_months
    if n * months > MAX_SAMPLED_MONTHS or kept * months > MAX_KEPT_MONTHS:
        raise ValueError(f"scenario_generator.n_scenarios: {n} paths of {months} months{f' reduced to {kept}' if kept < n else ''} "
                         f"is too many for an instance: at most {MAX_SAMPLED_MONTHS:,} path-months sampled and "
                         f"{MAX_KEPT_MONTHS:,} kept (scenarios kept x months)")
    sites = data.get("sites") if isinstance(data.get("sites"), list) else []
    markets = [m for m in ((s.get("market") if isinstance(s, Mapping) else getattr(s, "market", None)) for s in sites) if isinstance(m, str)]
    return generate(spec, horizon.start_month, horizon.periods * horizon.period_months, bitcoin, markets)
