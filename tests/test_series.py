"""Time-series inputs: points interpolation, CSV, seeded GBM."""

import os

import numpy as np
import pytest
from pydantic import ValidationError

from optimizer.instance import series
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


def _csv_series(folder):
    return Series.model_validate({"csv": "p.csv", "column": "btc"}, context={"base_dir": str(folder)})


def _write(path, text, mtime_ns):
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a stamp of our choosing: no reliance on the clock's resolution


def test_csv_is_parsed_once_per_version_of_the_file(tmp_path, monkeypatch):
    # A sweep re-validates its instance at every point: the file is parsed once, and again only
    # when it changes. Same size, new content, new mtime -> the new values.
    calls = []
    real = series.pd.read_csv
    monkeypatch.setattr(series.pd, "read_csv", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    f = tmp_path / "p.csv"
    _write(f, "month,btc\n2026-01,100\n2026-03,300\n", 1_700_000_000_000_000_000)
    assert _csv_series(tmp_path).monthly(JAN26, 3).tolist() == [100, 200, 300]
    assert _csv_series(tmp_path).monthly(JAN26, 3).tolist() == [100, 200, 300]
    assert len(calls) == 1
    _write(f, "month,btc\n2026-01,400\n2026-03,600\n", 1_700_000_000_000_000_001)  # 1 ns later, same size
    assert _csv_series(tmp_path).monthly(JAN26, 3).tolist() == [400, 500, 600]
    assert len(calls) == 2


def test_csv_values_are_each_series_own(tmp_path):
    _write(tmp_path / "p.csv", "month,btc\n2026-01,100\n2026-03,300\n", 1_700_000_000_000_000_000)
    a = _csv_series(tmp_path)
    a._csv_points[JAN26] = 999.0  # one series' table changed in place must not leak into the next read
    assert _csv_series(tmp_path).monthly(JAN26, 1).tolist() == [100]


def test_a_bad_csv_is_reported_every_time_and_read_once_fixed(tmp_path):
    f = tmp_path / "p.csv"
    _write(f, "month,btc\n2026-01,abc\n", 1_700_000_000_000_000_000)
    for _ in range(2):
        with pytest.raises(ValidationError, match="must be a number"):
            _csv_series(tmp_path)
    _write(f, "month,btc\n2026-01,7\n", 1_700_000_000_000_000_002)
    assert _csv_series(tmp_path).monthly(JAN26, 2).tolist() == [7, 7]


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
