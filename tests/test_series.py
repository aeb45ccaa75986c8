"""Time-series inputs: points interpolation, CSV, seeded GBM."""

import numpy as np
import pytest
from pydantic import ValidationError

from optimizer.instance.series import GeneratorSpec, Series
from optimizer.kernel.timeline import month_ordinal

JAN26 = month_ordinal("2026-01")


def test_bare_number_is_constant():
    s = Series.model_validate(42.5)
    assert s.monthly(JAN26, 3).tolist() == [42.5, 42.5, 42.5]


def test_points_linear_between_and_flat_outside():
    # 100 in 2026-02, 160 in 2026-05: March = 100 + 60/3 = 120, April = 140; flat before and after.
    s = Series(points={"2026-02": 100, "2026-05": 160})
    assert s.monthly(JAN26, 7).tolist() == [100, 100, 120, 140, 160, 160, 160]


def test_scale_multiplies():
    s = Series(points={"2026-01": 10, "2026-03": 30}, scale=0.5)
    assert s.monthly(JAN26, 3).tolist() == [5, 10, 15]


def test_csv_relative_to_instance_dir(tmp_path):
    (tmp_path / "p.csv").write_text("month,btc\n2026-01,100\n2026-03,300\n")
    s = Series.model_validate({"csv": "p.csv", "column": "btc"}, context={"base_dir": str(tmp_path)})
    assert s.monthly(JAN26, 4).tolist() == [100, 200, 300, 300]


@pytest.mark.parametrize("text,needle", [
    ("month,eth\n2026-01,1\n", "column 'btc' not found"),
    ("when,btc\n2026-01,1\n", "no 'month' column"),
    ("month,btc\n2026-13,1\n", "row 2"),
    ("month,btc\n2026-01,abc\n", "must be a number"),
])
def test_csv_errors_name_the_problem(tmp_path, text, needle):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(ValidationError) as e:
        Series.model_validate({"csv": "p.csv", "column": "btc"}, context={"base_dir": str(tmp_path)})
    assert needle in str(e.value)


def test_exactly_one_source():
    with pytest.raises(ValidationError, match="exactly one"):
        Series(value=1.0, points={"2026-01": 1.0})
    with pytest.raises(ValidationError, match="exactly one"):
        Series()


def test_generator_same_seed_same_path_other_seed_other_path():
    a = GeneratorSpec(start=100, annual_drift=0.1, annual_volatility=0.6, seed=7).monthly(24)
    b = GeneratorSpec(start=100, annual_drift=0.1, annual_volatility=0.6, seed=7).monthly(24)
    c = GeneratorSpec(start=100, annual_drift=0.1, annual_volatility=0.6, seed=8).monthly(24)
    assert a[0] == 100 and np.array_equal(a, b) and not np.array_equal(a, c)


def test_generator_zero_volatility_is_exponential_growth():
    # sigma = 0: S(k months) = 100 x exp(0.12 x k / 12) exactly.
    p = GeneratorSpec(start=100, annual_drift=0.12, annual_volatility=0.0).monthly(13)
    assert p[12] == pytest.approx(100 * np.exp(0.12))


def test_generator_reproduces_drift_statistically():
    # 1,000 paths x 12 monthly steps: mean monthly log-return should be (mu - sigma^2/2)/12
    # within 3 standard errors, SE = sigma / sqrt(12) / sqrt(n_returns).
    mu, sigma = 0.2, 0.6
    rets = np.concatenate([
        np.diff(np.log(GeneratorSpec(start=1, annual_drift=mu, annual_volatility=sigma, seed=s).monthly(13)))
        for s in range(1000)
    ])
    expected = (mu - sigma**2 / 2) / 12
    se = sigma / np.sqrt(12) / np.sqrt(len(rets))
    assert abs(rets.mean() - expected) < 3 * se
    # and the monthly volatility sigma / sqrt(12) = 0.1732 within 3%
    assert rets.std() == pytest.approx(sigma / np.sqrt(12), rel=0.03)
