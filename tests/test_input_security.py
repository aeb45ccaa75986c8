"""Input hardening: one test per defect found by trying the instance format as an attacker and as
a careless user (issue "Security and reliability hardening", input half).

1. a CSV path may not leave the data folder, and errors never quote a file's content;
2. tiny or huge numbers neither hang nor exhaust memory (cost follows the instance's size);
3. non-finite and absurd numbers are refused, including values a generator computes;
4. bad input exits 2 (not 1) and is found before any solve;
5. nonsense that used to pass is refused, and `validate` warns about plain impossibilities.

Every case runs the real command line in-process (``optimizer.cli.main``) on a mutation of
``instances/tiny.yaml`` and checks the exit code and the one line on stderr.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path

import pytest
import yaml

from optimizer import Instance
from optimizer.cli import main
from optimizer.errors import InputError
from optimizer.instance import parsing
from optimizer.kernel import protocol

ROOT = Path(__file__).resolve().parent.parent
TINY = yaml.safe_load((ROOT / "instances" / "tiny.yaml").read_text())
SECRET = "s3cr3t-hunter2-marker"


def tiny(**sections) -> dict:
    d = copy.deepcopy(TINY)
    d.update(copy.deepcopy(sections))
    return d


def write(folder: Path, data: dict | str, name: str = "inst.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def validate(capsys, path: Path, *extra: str) -> tuple[int, str, str]:
    code = main(["validate", str(path), *extra])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def one_error(code: int, out: str, err: str) -> str:
    """The single error line of a bad-input exit (2, nothing on stdout, one line, no traceback)."""
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def with_btc_series(series) -> dict:
    d = tiny()
    d["scenarios"][0]["btc_price_usd"] = series
    return d


# ---------------------------------------------------------------- 1. files


@pytest.fixture
def secret_files(tmp_path, monkeypatch):
    """A CSV outside the instance folder holding a secret, and a secret in the environment."""
    (tmp_path / "secret.csv").write_text(f"month,x\n2026-01,1\n# {SECRET}\n")
    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "keys.csv").write_text(f"month,x\n2026-01,{SECRET}\n")
    monkeypatch.setenv("OPTIMIZER_TEST_SECRET", SECRET)
    return tmp_path


@pytest.mark.parametrize("csv", ["../secret.csv", "../private/keys.csv", "../../../../../../../../etc/passwd",
                                 "/etc/passwd", "/proc/self/environ", "link.csv", "sub/../../secret.csv"])
def test_csv_path_outside_instance_folder_is_refused(capsys, secret_files, csv):
    folder = secret_files / "case"
    folder.mkdir()
    os.symlink(secret_files / "private" / "keys.csv", folder / "link.csv")  # a symlink leaving the folder
    path = write(folder, with_btc_series({"csv": csv, "column": "x"}))
    line = one_error(*validate(capsys, path))
    assert "scenarios[0].btc_price_usd.csv" in line and "outside the data folder" in line
    assert SECRET not in line and "root:" not in line and "PATH=" not in line
    assert str(secret_files) not in line.replace(str(path), "")  # no absolute path but the file the user named


def test_csv_errors_quote_no_content_beyond_the_offending_cell(capsys, tmp_path):
    folder = tmp_path / "case"
    write(folder, f"password={SECRET},x\n2026-01,1\n", "no_month.csv")
    write(folder, f"month,{SECRET}\n2026-01,1\n", "no_column.csv")
    write(folder, f"month,x\n2026-01,1\n2026-02,abc\n2026-03,{SECRET}\n", "bad_cell.csv")
    write(folder, "\x00\xff binary \x00", "binary.csv")
    for name, expect in [("no_month.csv", "no 'month' column"), ("no_column.csv", "column 'x' not found"),
                         ("bad_cell.csv", "row 3: x must be a number, got 'abc'"), ("binary.csv", "binary.csv")]:
        path = write(folder, with_btc_series({"csv": name, "column": "x"}))
        line = one_error(*validate(capsys, path))
        assert expect in line and name in line, line
        assert SECRET not in line and str(tmp_path) not in line.replace(str(path), ""), line


def test_dict_instance_reads_no_file_without_a_data_folder(tmp_path):
    write(tmp_path, "month,x\n2026-01,90000\n", "p.csv")
    data = with_btc_series({"csv": "p.csv", "column": "x"})
    from pydantic import ValidationError
    with pytest.raises(ValidationError, match="no data folder"):
        Instance.from_dict(data)
    inst = Instance.from_dict(data, data_dir=tmp_path)      # an explicit data folder allows it
    assert inst.scenarios[0].btc_price_usd.monthly(inst.timeline.start, 1)[0] == 90000.0
    with pytest.raises(ValidationError, match="outside the data folder"):
        Instance.from_dict(with_btc_series({"csv": str(tmp_path / "p.csv"), "column": "x"}), data_dir=tmp_path / "sub")


def test_data_dir_option_allows_a_shared_folder(capsys, tmp_path):
    write(tmp_path / "shared", "month,x\n2026-01,90000\n", "p.csv")
    path = write(tmp_path / "case", with_btc_series({"csv": "../shared/p.csv", "column": "x"}))
    assert "outside the data folder" in one_error(*validate(capsys, path))
    code, out, err = validate(capsys, path, "--data-dir", str(tmp_path / "shared"))
    assert code == 0 and out.startswith("OK tiny"), err


def test_service_reads_no_file_and_returns_no_server_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    from embed_service import plan_service

    write(tmp_path, "month,x\n2026-01,90000\n", "p.csv")
    for csv in ("p.csv", "../../../../etc/passwd", "/proc/self/environ"):
        a = json.loads(plan_service(with_btc_series({"csv": csv, "column": "x"})))
        assert a["ok"] is False and "scenarios[0].btc_price_usd" in a["error"] and "data folder" in a["error"]
    b = json.loads(plan_service(with_btc_series({"csv": "missing.csv", "column": "x"}), data_dir=str(tmp_path)))
    assert b["ok"] is False and "missing.csv" in b["error"] and str(tmp_path) not in json.dumps(b)


# ---------------------------------------------------------------- 2. values that cost time or memory


@pytest.mark.timeout(30)
@pytest.mark.parametrize("section, field, value", [
    ("bitcoin", "block_interval_minutes", 1e-300),
    ("bitcoin", "start_height", 10**30),
    ("bitcoin", "halving_interval_blocks", 1),
    ("leases", "term_months", 10**18),
    ("horizon", "periods", 10**9),
])
def test_tiny_or_huge_numbers_do_not_hang_or_exhaust_memory(capsys, tmp_path, section, field, value):
    d = tiny()
    target = d[section][0] if isinstance(d[section], list) else d[section]
    target[field] = value
    if field == "halving_interval_blocks":
        d["bitcoin"]["start_height"] = 10**7  # in range; 10 million halvings lie below it at interval 1
    line = one_error(*validate(capsys, write(tmp_path, d)))
    where = f"{section}[0].{field}" if section == "leases" else f"{section}.{field}"
    assert where in line and "must be" in line, line


@pytest.mark.timeout(30)
def test_subsidy_cost_does_not_grow_with_the_height_or_the_halving_count():
    # one block per height unit, subsidy 50 halving at every height: blocks [k, k+1) pay 50 / 2^k,
    # so the total over [0, 10^18) is 50 x (1 + 1/2 + 1/4 + ...) = 100 BTC (a geometric series)
    assert protocol.subsidy_btc_between(0.0, 1e18, 50.0, 1) == pytest.approx(100.0, rel=1e-12)
    # height 10^15 with halvings every 210,000 blocks: 4,761,904,761 halvings below, subsidy 0
    assert protocol.subsidy_at_height(1e15) == 0.0
    # just below and at the first halving: 50 then 25
    assert protocol.subsidy_at_height(209_999) == 50.0 and protocol.subsidy_at_height(210_000) == 25.0


# ---------------------------------------------------------------- 3. non-finite and absurd numbers


@pytest.mark.parametrize("series, where, reason", [
    ({"value": 90000, "scale": math.inf}, "scenarios[0].btc_price_usd.scale", "finite"),
    ({"generator": {"start": math.inf}}, "scenarios[0].btc_price_usd.generator.start", "finite"),
    ({"generator": {"start": 1e300}}, "scenarios[0].btc_price_usd.generator.start", "must be <="),
    # a generator within its bounds whose path leaves the range: e^(5 x 1/2 year) ... too high by month 6
    ({"generator": {"start": 9e7, "annual_drift": 5}}, "scenarios[0].btc_price_usd", "in 2026-02"),
    (1e300, "scenarios[0].btc_price_usd", "1e+300"),
    ({"points": {"2026-01": 90000, "2026-04": math.nan}}, "scenarios[0].btc_price_usd.points", "2026-04"),
])
def test_non_finite_and_absurd_numbers_are_refused(capsys, tmp_path, series, where, reason):
    line = one_error(*validate(capsys, write(tmp_path, with_btc_series(series))))
    assert where in line and reason in line, line


def test_generated_scenarios_are_range_checked(capsys, tmp_path):
    d = tiny()
    del d["scenarios"]
    d["scenario_generator"] = {"n_scenarios": 2, "btc_price": {"model": "gbm", "start_usd": 9e7, "annual_drift": 5},
                               "network_hashrate": {"start_eh_s": 1000}, "power_price_usd_per_mwh": {"ercot": {"base_usd_per_mwh": 40}}}
    line = one_error(*validate(capsys, write(tmp_path, d)))
    assert "btc_price_usd" in line and "scenario_generator" in line, line


# ---------------------------------------------------------------- 4. bad input that exited 1


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_deeply_nested_file_exits_2(capsys, tmp_path, suffix):
    text = '{"name": ' + "[" * 50_000 + "]" * 50_000 + "}"
    line = one_error(*validate(capsys, write(tmp_path, text, "deep" + suffix)))
    assert "deep" + suffix in line and "nested deeper than" in line, line


@pytest.mark.parametrize("decisions, where, reason", [
    ([{"kind": "contract", "contract": "idx", "signed": False}], "policy.fixed_decisions[0].signed", "not optional"),
    ([{"kind": "lease", "lease": "L1", "signed": True}, {"kind": "lease", "lease": "L1", "signed": False}],
     "policy.fixed_decisions[1]", "policy.fixed_decisions[0]"),
    ([{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 1},
      {"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 2}], "policy.fixed_decisions[1]", "policy.fixed_decisions[0]"),
    ([{"kind": "sale", "site": "s1", "month": "2026-04"}], "policy.fixed_decisions[0]", "no sale option"),
    ([{"kind": "conversion", "site": "s1", "month": "2026-01", "blocks": 4}], "policy.fixed_decisions[0].blocks", "at most 3"),
])
def test_bad_input_exits_2_not_1(capsys, tmp_path, decisions, where, reason):
    path = write(tmp_path, tiny(policy={"fixed_decisions": decisions}))
    line = one_error(*validate(capsys, path))
    assert where in line and reason in line, line
    code = main(["solve", str(path), "--out", str(tmp_path / "out"), "--no-baselines"])  # found before any solve
    assert code == 2 and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 5. nonsense that passed


@pytest.mark.parametrize("mutate, where, reason", [
    (lambda d: d["horizon"].update(start_month="2026-01\n"), "horizon.start_month", "YYYY-MM"),
    (lambda d: d["horizon"].update(start_month="\uff12\uff10\uff12\uff16-01"), "horizon.start_month", "YYYY-MM"),
    (lambda d: d["leases"][0].update(window_start="2026-03 "), "leases[0].window_start", "YYYY-MM"),
    (lambda d: d["leases"][0].update(eligible_sites=[]), "leases[0].eligible_sites", "at least 1"),
    (lambda d: d["scenarios"][0]["power_price_usd_per_mwh"].update(pjm=30), "scenarios[0].power_price_usd_per_mwh.pjm", "no site"),
])
def test_accepted_nonsense_is_refused(capsys, tmp_path, mutate, where, reason):
    d = tiny()
    mutate(d)
    line = one_error(*validate(capsys, write(tmp_path, d)))
    assert where in line and reason in line, line


def test_duplicate_yaml_key_is_refused_with_key_and_line(capsys, tmp_path):
    text = (ROOT / "instances" / "tiny.yaml").read_text().replace("  periods: 6\n", "  periods: 6\n  periods: 60\n")
    lines = text.splitlines()
    second = next(i for i, s in enumerate(lines) if s == "  periods: 60") + 1  # 1-based line of the repeat
    line = one_error(*validate(capsys, write(tmp_path, text)))
    assert f"inst.yaml:{second}:" in line and "duplicate key 'periods'" in line, line
    json_text = '{"name": "a", "name": "b"}'
    line = one_error(*validate(capsys, write(tmp_path, json_text, "dup.json")))
    assert "dup.json" in line and "duplicate key 'name'" in line, line


@pytest.mark.parametrize("libyaml", [True, False] if parsing._LIBYAML else [False])
def test_yaml_bounds_hold_with_and_without_libyaml(monkeypatch, libyaml):
    monkeypatch.setattr(parsing, "_LIBYAML", libyaml)
    assert parsing.parse_text("a: 1\nb: [1, {c: 2}]\n", False, "f") == {"a": 1, "b": [1, {"c": 2}]}
    # a merge key may be overridden: that is what it is for
    assert parsing.parse_text("base: &b {x: 1, y: 2}\nuse: {<<: *b, y: 3}\n", False, "f")["use"] == {"x": 1, "y": 3}
    refused = {
        "a: 1\nb: 2\na: 3\n": "f:3:1: invalid YAML: duplicate key 'a' (first given on line 1)",
        "a: " + "[" * 65 + "]" * 65 + "\n": "nested deeper than 64 levels",
        "a: " + "[" * 64 + "]" * 64 + "\n": "nested deeper than 64 levels",  # 64 lists inside the top mapping
        "a: &x " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*x" + "]" * 30 + "\n": "nested deeper than 64 levels (through an alias)"
        if not libyaml else "nested deeper than 64 levels",
        "a: &x [1, *x]\n": "recursive",
        # 10 levels of 10 aliases each: 10^10 values once expanded
        "\n".join(["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i-1}'] * 10)}]" for i in range(1, 10)]): "values once aliases",
    }
    for text, message in refused.items():
        with pytest.raises(InputError, match=re.escape(message)):
            parsing.parse_text(text, False, "f")
    assert parsing.parse_text("a: " + "[" * 63 + "]" * 63 + "\n", False, "f")  # 64 levels in all: the limit


def test_validate_warns_about_plain_impossibilities(capsys, tmp_path):
    d = tiny()
    # s1 converts at most 30 racks x 100 kW = 3 MW of IT; a 50 MW lease cannot fit
    d["leases"][0]["it_mw"] = 50.0
    code, out, err = validate(capsys, write(tmp_path, d))
    assert code == 0 and out.startswith("OK tiny"), err
    warnings = [s for s in err.splitlines() if s.startswith("warning: ")]
    assert len(warnings) == 1 and "leases[0]" in warnings[0] and "50 MW" in warnings[0] and "3 MW" in warnings[0], err
    # the bundled tiny instance itself has none
    code, out, err = validate(capsys, ROOT / "instances" / "tiny.yaml")
    assert code == 0 and err == ""
