"""Malformed instances: each gives exit code 2 and ONE line on stderr naming the field and the reason.

Every fixture in tests/malformed/ is valid.yaml with one defect (its first line says which).
The expected messages are written from the defect, not copied from the program's output:
each names the field path as the user would look for it in the file, and the reason.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli import main

HERE = Path(__file__).parent / "malformed"
ROOT = Path(__file__).parent.parent

# fixture -> fragments the one-line message must contain (field path first, then the reason)
CASES = {
    "negative_mw.yaml": ["sites[0].grid_interconnect_mw", "must be > 0", "-5"],
    "negative_lead.yaml": ["sites[0].conversion.lead_months", "must be >= 0", "-3"],
    "probabilities.yaml": ["scenarios", "probabilities must sum to 1", "0.9"],
    "unknown_site_ref.yaml": ["contracts[0].site", "unknown site 's9'"],
    "lease_window_outside.yaml": ["leases[0].window_end", "2027-05", "outside the horizon"],
    "bad_month.yaml": ["horizon.start_month", "YYYY-MM", "2026-13"],
    "missing_field.yaml": ["sites[0].market", "required field missing"],
    "misspelled_field.yaml": ["sites[0].pue_hcp", "unknown field", "did you mean 'pue_hpc'"],
    "nan_rate.yaml": ["horizon.discount_rate", "finite number", "nan"],
    "nan_series.yaml": ["scenarios[0].btc_price_usd", "finite", "nan"],
    "csv_missing_column.yaml": ["scenarios[0].btc_price_usd", "column 'btc_usd' not found", "prices_no_btc.csv"],
    "csv_file_missing.yaml": ["scenarios[0].btc_price_usd", "CSV file not found", "no_such_file.csv"],
    # prices_bad_value.csv: header is row 1, '2026-06,abc' is row 3
    "csv_bad_value.yaml": ["scenarios[0].btc_price_usd", "row 3", "must be a number", "'abc'"],
    "unknown_asic.yaml": ["fleet.asic_models[0]", "unknown catalog model 'Antminer S99'"],
    "duplicate_site.yaml": ["sites", "duplicate id 's1'"],
    "window_reversed.yaml": ["leases[0]", "window_end 2026-03 is before window_start 2026-07"],
    "fixed_unknown_lease.yaml": ["policy.fixed_decisions[0].lease", "unknown lease 'L9'"],
    "contract_kind.yaml": ["contracts[0]", "'fixed', 'index', 'owned_generation'", "'fixd'"],
    "wrong_type.yaml": ["horizon.periods", "whole number", "'twelve'"],
    "unpriced_market.yaml": ["scenarios[0].power_price_usd_per_mwh", "no price for market(s) pjm"],
    "share_above_one.yaml": ["contracts[0].take_or_pay_min_share", "must be <= 1", "1.5"],
    "period_months.yaml": ["horizon.period_months", "must be 1 or 3", "got 2"],
    # 100 racks x 30 ASICs per rack = 3,000 positions < 5,000 units
    "too_many_units.yaml": ["fleet.installed", "5000 units", "3000"],
    # the unclosed '{' on line 3 is reported where the parser gives up: line 4
    "bad_yaml.yaml": ["bad_yaml.yaml:4:", "invalid YAML"],
    "bad_json.json": ["bad_json.json:1:", "invalid JSON"],
    "not_a_mapping.yaml": ["not_a_mapping.yaml", "must be a mapping", "list"],
    "empty.yaml": ["empty.yaml", "must be a mapping"],
    "does_not_exist.yaml": ["does_not_exist.yaml", "file not found"],
}


def run_validate(capsys, name: str) -> tuple[int, str, str]:
    code = main(["validate", str(HERE / name)])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_at_least_fifteen_distinct_cases():
    distinct_paths = {frags[0] for frags in CASES.values()}
    assert len(CASES) >= 15 and len(distinct_paths) >= 15


def test_valid_reference_passes(capsys):
    code, out, err = run_validate(capsys, "valid.yaml")
    assert code == 0, err
    assert out.startswith("OK valid")


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_instance_gives_one_line(capsys, name):
    code, out, err = run_validate(capsys, name)
    assert code == 2
    assert out == ""
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ")
    assert "Traceback" not in err
    pos = 0
    for frag in CASES[name]:  # in order: the path comes before the reason
        found = line.find(frag, pos if frag != CASES[name][0] else 0)
        assert found >= 0, f"{frag!r} not in {line!r}"
        pos = found


@pytest.mark.parametrize("name", ["negative_mw.yaml", "bad_yaml.yaml", "csv_missing_column.yaml"])
def test_real_process_exit_code_and_no_traceback(name):
    """The same through a real `python -m optimizer` process (what a shell user sees)."""
    proc = subprocess.run([sys.executable, "-m", "optimizer", "validate", str(HERE / name)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert CASES[name][0] in proc.stderr


def test_usage_error_is_one_line(capsys):
    code = main(["validate"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Missing argument" in err
