"""pytest plugin for `make mutation` (benchmarks/mutation_report.py): a mutant runs the whole test
files whose fixtures outlive one test.

mutmut maps each function to the tests during which it was called and runs a mutant against those
tests only. A module-scoped fixture (the compiled quarterly instance of test_shared_layer, the
solved second hand instance of test_hand2) calls the function once, during the first test that
uses it, so only that test is mapped; the file's later tests read the fixture without calling the
function. A mutant of ``compile_instance`` would then meet one calendar test and never the tests
that check the coefficients it computes. In a mutant's run this plugin widens the selection of
every such file (one whose source declares a fixture ``scope=`` other than function) from the
mapped test ids to the whole file; files without such fixtures keep mutmut's precise mapping (the
cheap case: a mutant costs only the tests that call it). The layer's marker filter
(``-m "not slow"`` in ``pytest_add_cli_args``) still applies. Outside a mutant's run (mutmut's
coverage, stats and clean passes, or a normal pytest run) it does nothing.

A layer's selection may name single tests of a file (``tests/test_levers.py::test_x``: the fast
evaluator-only tests of a file whose other tests solve MILPs); such a file is widened to the tests
the selection names in it, not to the whole file. The selection is read from the layer's
pyproject.toml (``mutants/<layer>/pyproject.toml``, the parent of mutmut's working directory).

mutmut's coverage pass (``mutate_only_covered_lines``: ``MUTANT_UNDER_TEST`` is
``mutant_generation``) runs the layer's selection once with ``-x`` and ignores its exit code, so
one failing test would silently leave every later test's lines without mutants (counted as
uncovered). In that pass this plugin drops ``-x`` (every test runs, whatever fails) and, when
``MUTATION_COVERAGE_RECORD`` names a file, writes the pass's outcome there (JSON: ``passed``,
``failed`` test ids, pytest's ``exitstatus``): mutation_report.py refuses to mutate from a pass
with failures.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

_SHARED_FIXTURE = re.compile(r"""scope\s*=\s*["'](module|session|package|class)["']""")


def _has_shared_fixture(path: str) -> bool:
    try:
        return bool(_SHARED_FIXTURE.search(Path(path).read_text()))
    except OSError:
        return False


def _selected_tests() -> dict[str, list[str]]:
    """file -> the single tests the layer's selection names in it (files named whole: absent)."""
    for py in (Path("..") / "pyproject.toml", Path("pyproject.toml")):
        try:
            sel = tomllib.loads(py.read_text())["tool"]["mutmut"]["pytest_add_cli_args_test_selection"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            continue
        out: dict[str, list[str]] = {}
        for a in sel:
            if "::" in a:
                out.setdefault(a.split("::", 1)[0], []).append(a)
        return out
    return {}


_COVERAGE_PASS = "mutant_generation"
_outcome: dict[str, list[str]] = {"passed": [], "failed": []}


def pytest_configure(config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == _COVERAGE_PASS:
        config.option.maxfail = 0  # mutmut passes -x: a failure must not hide the later tests' lines
        _outcome["passed"].clear()
        _outcome["failed"].clear()
        return
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    only = _selected_tests()
    out: list[str] = []
    for arg in config.args:
        f = arg.split("::", 1)[0]
        if "::" in arg and _has_shared_fixture(f):
            items = only.get(f, [f])
        else:
            items = [arg]
        for item in items:
            if item not in out:
                out.append(item)
    # a whole file makes its single test ids redundant
    files = {a for a in out if "::" not in a}
    config.args[:] = [a for a in out if "::" not in a or a.split("::", 1)[0] not in files]


def pytest_runtest_logreport(report) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") != _COVERAGE_PASS:
        return
    if report.failed:  # a failure in setup, call or teardown
        if report.nodeid not in _outcome["failed"]:
            _outcome["failed"].append(report.nodeid)
    elif report.when == "call" and report.passed:
        _outcome["passed"].append(report.nodeid)


def pytest_collectreport(report) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == _COVERAGE_PASS and report.failed:
        _outcome["failed"].append(report.nodeid or "collection")


def pytest_sessionfinish(session, exitstatus) -> None:
    record = os.environ.get("MUTATION_COVERAGE_RECORD")
    if os.environ.get("MUTANT_UNDER_TEST") != _COVERAGE_PASS or not record:
        return
    Path(record).write_text(json.dumps({"exitstatus": int(exitstatus), "passed": len(_outcome["passed"]),
                                        "failed": _outcome["failed"]}, indent=1) + "\n")
