"""Property-based fuzzing of the instance format (hypothesis).

Each case is a bundled instance with one to three mutations: a deleted field or list item, a wrong
type, an extreme or non-finite number, a bad month, an unknown or empty reference, a CSV path
trick (``..``, an absolute path, ``/proc/self/environ``, a symlink leaving the folder, a NUL
byte), a duplicated list item, or a change to the file's text (a duplicate key, deep nesting, a
YAML alias bomb, JSON instead of YAML, a stray character). The property, for every case, through
the real command line run in-process (``optimizer.cli.main(["validate", FILE])``):

- the exit code is 0 (valid: "OK ..." on stdout, only "warning: ..." lines on stderr) or 2 (bad
  input: nothing on stdout, ONE line on stderr, "error: FILE: " then a field path and a colon,
  or the parser's position);
- never a traceback, never exit 1;
- no secret from a file outside the data folder or from the environment in any output;
- each case within ``DEADLINE`` (hypothesis deadline: a cost that grows with a value, not the
  instance's size, shows as a slow case) and the whole test within pytest-timeout's limit (a hang).

The cases are derandomized (the same ``FUZZ_EXAMPLES`` cases every run, 1,000 by default, so CI
is reproducible); ``FUZZ_RANDOM=1`` draws new ones, ``FUZZ_EXAMPLES=N`` runs more. The dict path
of an embedding service (``Instance.from_dict`` without a data folder) is fuzzed the same way.
About 1 minute for the 1,000 + 300 cases on one busy core.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from optimizer import Instance
from optimizer.cli import main
from optimizer.errors import InputError
from optimizer.instance.messages import format_validation_error

ROOT = Path(__file__).resolve().parent.parent
BASES = ["instances/tiny.yaml", "instances/demo.yaml", "instances/case_efficient_miner.yaml", "instances/case_texas_ppa.yaml",
         "instances/case_treasury_gas.yaml", "instances/case_colo_200mw.yaml", "tests/instances/hand.yaml",
         "tests/instances/rules.yaml", "tests/instances/stochastic_small.yaml", "tests/instances/brute_site_options.yaml",
         "tests/instances/forced_purchase.yaml", "tests/instances/risk_two.yaml", "tests/instances/forced_treasury.yaml",
         "instances/case_financed_conversion.yaml"]
BASE_DATA = {name: yaml.safe_load((ROOT / name).read_text()) for name in BASES}
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SECRET = "fuzz-secret-7f3a9c"
N_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))
DEADLINE = timedelta(seconds=10)
FUZZ = settings(max_examples=N_EXAMPLES, deadline=DEADLINE, derandomize=not os.environ.get("FUZZ_RANDOM"), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
RAN = {"cli": 0, "dict": 0, "valid": 0, "refused": 0}

# "error: FILE" then the parser's position, or a file-level sentence, or a field path (no spaces:
# a dotted path with [index]; an unknown field is named as the user spelt it) and a colon
_ERROR_TAIL = re.compile(r"^(:\d+:\d+: invalid (YAML|JSON): |: invalid (YAML|JSON): |: the instance must be a mapping"
                         r"|: [^\s:]+: )")
_PATH_HEAD = re.compile(r"^[^\s:]+: ")


# ---------------------------------------------------------------- the folder the cases live in


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A data folder holding the bundled CSVs and a symlink to a secret file outside it; the
    environment holds a secret too (``/proc/self/environ``)."""
    top = tmp_path_factory.mktemp("fuzz")
    data = top / "data"
    data.mkdir()
    for csv in list((ROOT / "instances").glob("*.csv")) + list((ROOT / "tests" / "instances").glob("*.csv")):
        shutil.copy(csv, data / csv.name)
    (top / "outside").mkdir()
    (top / "outside" / "secret.csv").write_text(f"month,x,ercot_usd_per_mwh\n2026-01,{SECRET},{SECRET}\n")
    os.symlink(top / "outside" / "secret.csv", data / "link.csv")
    (data / "sub").mkdir()
    os.environ["OPTIMIZER_FUZZ_SECRET"] = SECRET
    yield data
    os.environ.pop("OPTIMIZER_FUZZ_SECRET", None)


# ---------------------------------------------------------------- mutations


def _paths(node, prefix=()):
    """Every path into the tree: (tuple of keys/indices)."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 0.5, 2, 12, 600, 601, 1e-300, -1e-300, 1e300, -1e300, 10**30, -(10**30), 2**63, 2**64 + 1,
                     math.inf, -math.inf, math.nan, 1e8, 1.0000001e8, 1e12, 21e6, 5e-324, True, False, 10**400, -(10**4000)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-10**20, max_value=10**20),
)
MONTHS = st.sampled_from(["2026-01\n", "\uff12\uff10\uff12\uff16-01", "2026-\uff10\uff11", "2026-13", "2026-00", "2026-1", "26-01",
                          "", " 2026-01", "2026-01 ", "1969-12", "2200-01", "9999-12", "0000-01", "2026/01", "2025-12", "2031-06",
                          "2026-06", "2030-12"])
WRONG = st.sampled_from(["text", "", [], {}, None, [1, 2], {"a": 1}, "1e5", "inf", "nan", "-0", "0x10", "１２"])
REFS = st.sampled_from(["nope", "", "s1 ", "a b", "../x", "s1", "L1", "ercot", "pjm", "x" * 100, "\u00e9t\u00e9"])
CSV_PATHS = st.sampled_from(["../outside/secret.csv", "/etc/passwd", "/proc/self/environ", "link.csv", "nope.csv",
                             "sub/../../outside/secret.csv", "a\x00b.csv", "x" * 2000, ".", "sub", "demo_power_prices.csv",
                             "case_texas_ercot_prices.csv", "/etc", "~/.bashrc"])
CSV_COLUMNS = st.sampled_from(["x", "ercot_usd_per_mwh", "month", "nope", ""])
SERIES_KEYS = ("btc_price_usd", "network_hashrate_eh_s", "fees_btc_per_block", "hpc_lease_rate_index")


@st.composite
def tree_mutation(draw, data):
    """Mutate ``data`` in place at a drawn path; return a short description."""
    paths = list(_paths(data))[1:]
    path = paths[draw(st.integers(0, len(paths) - 1))]
    parent, key = _get(data, path[:-1]), path[-1]
    kind = draw(st.sampled_from(["delete", "wrong_type", "number", "month", "reference", "csv", "duplicate", "empty"]))
    if kind == "delete":
        del parent[key]
    elif kind == "wrong_type":
        parent[key] = copy.deepcopy(draw(WRONG))  # a fresh [] or {}: sampled_from hands out the same object every time
    elif kind == "number":
        parent[key] = draw(NUMBERS)
    elif kind == "month":
        parent[key] = draw(MONTHS)
    elif kind == "reference":
        parent[key] = draw(REFS)
    elif kind == "csv":  # a series (or anything) becomes a CSV series with a path trick
        scen = data.get("scenarios") if isinstance(data.get("scenarios"), list) else []
        if scen and isinstance(scen[0], dict) and draw(st.booleans()):
            sc = scen[draw(st.integers(0, len(scen) - 1))]
            if isinstance(sc, dict):
                parent, key = sc, draw(st.sampled_from(SERIES_KEYS + ("power_price_usd_per_mwh",)))
                if key == "power_price_usd_per_mwh" and isinstance(sc.get(key), dict) and sc[key]:
                    parent, key = sc[key], draw(st.sampled_from(sorted(sc[key])))
        parent[key] = {"csv": draw(CSV_PATHS), "column": draw(CSV_COLUMNS)}
    elif kind == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    elif kind == "empty":
        parent[key] = [] if isinstance(parent[key], list) else {}
    else:
        parent[key] = draw(NUMBERS)
    return f"{kind} at {'.'.join(map(str, path))}"


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]"
              for i in range(1, levels)]
    return "\n".join(lines) + f"\nsources: *a{levels - 1}\n"


@st.composite
def text_of(draw, data):
    """The file's text (YAML or JSON), sometimes with a text-level mutation."""
    kind = draw(st.sampled_from(["yaml"] * 6 + ["json", "dup_key", "deep", "bomb", "stray", "tab"]))
    if kind == "json":
        return ".json", json.dumps(data), kind
    if kind in ("deep", "bomb"):  # the field the text below sets is dropped from the tree
        data = {k: v for k, v in data.items() if k != ("description" if kind == "deep" else "sources")}
    text = yaml.dump(data, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    if kind == "dup_key":
        key = draw(st.sampled_from(sorted(data) or ["name"]))
        text += f"{key}: {json.dumps(data.get(key, 'x'))}\n"
    elif kind == "deep":
        depth = draw(st.sampled_from([65, 100, 1000, 20_000]))
        text += "description: " + "[" * depth + "]" * depth + "\n"
    elif kind == "bomb":
        text = _bomb(draw(st.integers(3, 9))) + text
    elif kind == "stray":
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(st.sampled_from(["{", "]", ": :", "\x00", "&", "*x", "!!python/object:os.system ", "\t", "'"])) + text[pos:]
    elif kind == "tab":
        text = text.replace("  ", "\t", 1)
    return ".yaml", text, kind


@st.composite
def cases(draw):
    name = draw(st.sampled_from(BASES))
    data = copy.deepcopy(BASE_DATA[name])
    did = [draw(tree_mutation(data)) for _ in range(draw(st.integers(0, 3)))]
    suffix, text, how = draw(text_of(data))
    return name, did + [how], suffix, text, data


# ---------------------------------------------------------------- the property


def run_cli(args: list[str]) -> tuple[int, str, str]:
    o, e = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        code = main(args)
    return code, o.getvalue(), e.getvalue()


def check_answer(code: int, out: str, err: str, path: Path, secret_places: list[str], what, field_path: bool = True) -> None:
    """``field_path``: the error must name a field path (every key of the file is a schema field or
    an unknown field named as the user spelt it; a stray character in the text may make a key of any
    spelling, so for those only the file is required)."""
    assert code in (0, 2), f"{what}: exit {code}: {err}"
    assert "Traceback" not in out + err, what
    for s in secret_places:
        assert s not in out + err, f"{what}: {s!r} leaked: {err}"
    if code == 0:
        assert out.startswith("OK "), (what, out)
        assert all(line.startswith("warning: ") for line in err.splitlines()), (what, err)
        RAN["valid"] += 1
        return
    RAN["refused"] += 1
    assert out == "", (what, out)
    lines = err.rstrip("\n").split("\n")
    assert len(lines) == 1, (what, err)
    head = f"error: {path}"
    assert lines[0].startswith(head + ":"), (what, lines[0])
    if field_path:
        assert _ERROR_TAIL.match(lines[0][len(head):]), f"{what}: no field path in {lines[0]!r}"


@pytest.mark.timeout(900)
@FUZZ
@given(case=cases())
def test_fuzzed_instance_is_valid_or_one_line_exit_2(folder, case):
    name, how, suffix, text, _ = case
    path = folder / f"case{suffix}"
    path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(["validate", str(path)])
    check_answer(code, out, err, path, [SECRET, str(folder.parent / "outside")], (name, how), field_path=how[-1] not in ("stray", "tab"))
    RAN["cli"] += 1


@pytest.mark.timeout(600)
@settings(FUZZ, max_examples=max(N_EXAMPLES * 3 // 10, 1))
@given(case=cases())
def test_fuzzed_dict_without_data_folder_is_valid_or_one_line_error(folder, case):
    """The embedding service's path: a mapping, no data folder, so no file may be read."""
    name, how, _, _, data = case
    try:
        Instance.from_dict(data)
    except ValidationError as e:
        msg = format_validation_error(e, data, Instance)
        assert "\n" not in msg and SECRET not in msg and _PATH_HEAD.match(msg), (name, how, msg)
    except InputError as e:
        assert "\n" not in str(e) and SECRET not in str(e), (name, how, str(e))
    RAN["dict"] += 1


def test_the_fuzz_ran_enough_cases():
    """At least FUZZ_EXAMPLES CLI cases (1,000 in CI) ran above, and both outcomes were seen."""
    if RAN["cli"] == 0:
        pytest.skip("run with the fuzz tests above (this one counts their cases)")
    assert RAN["cli"] >= N_EXAMPLES and RAN["dict"] >= N_EXAMPLES * 3 // 10
    assert RAN["valid"] > 0 and RAN["refused"] > 0


# ---------------------------------------------------------------- a few through a real process


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mutate", [
    lambda d: d["scenarios"][0].update(btc_price_usd={"csv": "/proc/self/environ", "column": "x"}),
    lambda d: d["bitcoin"].update(block_interval_minutes=1e-300),
    lambda d: d.pop("description") and "description: " + "[" * 100_000 + "]" * 100_000 + "\n",
])
def test_real_process_refuses_in_one_line(folder, mutate):
    d = copy.deepcopy(BASE_DATA["instances/tiny.yaml"])
    deep = mutate(d)
    path = folder / "proc_case.yaml"
    path.write_text(yaml.safe_dump(d) + (deep or ""))
    proc = subprocess.run([sys.executable, "-m", "optimizer", "validate", str(path)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "OPTIMIZER_FUZZ_SECRET": SECRET}, timeout=100)
    check_answer(proc.returncode, proc.stdout, proc.stderr, path, [SECRET], "subprocess")
    assert proc.returncode == 2
