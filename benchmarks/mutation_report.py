"""Mutation testing of the economics, data, evaluator and model modules: run mutmut per layer, write MUTATION.md.

    .venv/bin/python benchmarks/mutation_report.py --run [--jobs 1] [--layer shared ...]   # mutmut, then the report
    .venv/bin/python benchmarks/mutation_report.py --run 'optimizer.kernel.finance.x_cvar_usd__mutmut_13'
    .venv/bin/python benchmarks/mutation_report.py --run --sample evaluator=150 --sample model=300 --seed 1   # a sample
    .venv/bin/python benchmarks/mutation_report.py                                          # the report of the last runs

Layers. The modules are mutated in layers, each with its own small, fast test subset: a mutant
costs the tests mapped to its function, so a survivor of the shared layer re-runs three quick
test files, not every forced-optimum solve. ``[tool.mutmut]`` in pyproject.toml holds the settings
every layer shares; ``[tool.mutmut_layers.<layer>]`` names the layer's modules (``only_mutate``)
and its tests (``pytest_add_cli_args_test_selection``) and may override any other mutmut setting.
mutmut reads one ``[tool.mutmut]`` table from the pyproject.toml of its working directory and keeps
its state in ``mutants/`` there, so each layer runs in its own directory ``mutants/<layer>/``
(gitignored): symbolic links to optimizer/, tests/, instances/ and benchmarks/, and a pyproject.toml that is
the repository's with ``[tool.mutmut]`` replaced by the layer's merged table. Each layer keeps its
own incremental state (mutmut re-tests only functions whose code changed; changing a layer's test
selection resets that layer's verdicts, as mutmut does for any change of the selection). A module
belongs to exactly one layer.

Score. mutmut generates no mutant on a line the layer's tests never execute
(``mutate_only_covered_lines``); this script counts the mutants such lines would have had (mutmut's
own generator on the whole file, minus the generated ones) and scores them as survivors, so the
score is

    (killed + timeout) / (generated + uncovered - equivalent)

per module, per layer and overall (a timeout is a mutant that ran past mutmut's CPU-time limit,
30 x (its tests' measured time + 1 s): an endless loop the tests caught; they are listed), where ``equivalent`` are the survivors explained in
benchmarks/mutation_equivalent.toml (one entry per mutant: the function, the mutated line as
mutmut writes it, and why no test can tell it from the original). A survivor not in that file is
listed as UNEXPLAINED; an entry that matches no survivor is listed as stale. A module with mutants
not run yet gets no score. The hand-written benchmarks/mutation_notes.md (run history, throughput,
what is left) is copied into the report.

Before mutmut runs, ``--run`` mutates the layer's modules afresh when a module or a file of the
layer's test selection changed since they were last mutated, or with ``--regenerate`` (mutmut
itself mutates only the lines covered when a module's copy was made, so lines that new tests cover
would get no mutants), carrying each verdict over to the new mutant with the same mutated code
(``regenerate``); and it marks the survivors that are not explained as equivalent as not run
(mutmut keeps a verdict until the function changes, so a test written for a survivor would
otherwise never be tried on it; ``--keep-survivors`` skips that when no test changed).

Four guards keep mutmut's inputs current (each a gap of mutmut 3.8.1 that cost a run on 1 December):
``refresh_copies`` rewrites the copies in mutants/<layer>/mutants/ of every source file the layer
does not mutate (mutmut copies a file only when its copy is missing, and refreshes the unmutated
modules only after its coverage pass, so that pass ran today's tests against older modules);
mutmut's coverage pass runs every test of the selection (benchmarks/mutation_plugin.py drops its
``-x``) and a pass with a failing test stops the generation with one line naming the tests
(``coverage_failure``: mutmut ignores the pass's exit code, and with ``-x`` every later test's lines
counted as uncovered); and ``unmap_changed_tests`` makes mutmut map again the tests of every
selection file whose content changed since its tests were mapped (mutmut maps only new test
names, so an assertion added to an existing test never met its mutants); ``regenerate`` has every
test mapped again (mutmut maps a test only to functions that had mutants when it ran it, so a
function whose lines a regeneration newly covers would keep no test).

Verdicts survive the machine. mutants/ is gitignored and a fresh clone (a new machine, CI) starts
without it, which on 2 December lost every verdict of the earlier runs. So every ``--run`` (and
``--save-verdicts``) writes benchmarks/mutation_verdicts.json: per layer, the SHA-256 (first 16 hex
digits) of each mutant's mutated code -> mutmut's exit code, for every mutant with a verdict; a layer
without local state is mutated first and takes its verdicts from that file, matched by code exactly
as ``regenerate`` carries them (a mutant whose function changed has a new code and no verdict).

``--run`` also measures each layer's wall time and samples the 1-minute load average every 15 s
(the machine is shared: the quiet-machine time is estimated as wall x min(1, cores / mean load)
when more runnable processes than cores were competing).
"""

from __future__ import annotations

import argparse
import filecmp
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "MUTATION.md"
WORK = ROOT / "mutants"  # gitignored: one mutmut working directory per layer, mutants/<layer>/
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.toml"
VERDICTS = ROOT / "benchmarks" / "mutation_verdicts.json"  # committed: the verdicts by mutant code, across machines
NOTES = ROOT / "benchmarks" / "mutation_notes.md"  # hand-written: run history, throughput, what is left
TARGET = 0.90

KILLED = {1, 3}            # mutmut: test failure, pytest internal error
SURVIVED = {0}
NO_TESTS = {5, 33}         # no test mapped to the mutant's function: tried again like a survivor (a test may map now)
TIMEOUT = {24, -24, 152, 255, 36}


# ------------------------------------------------------------------------------------------ layers

def layers() -> dict[str, dict]:
    """layer -> its mutmut configuration: ``[tool.mutmut]`` updated by ``[tool.mutmut_layers.<layer>]``."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    return {name: {**tool["mutmut"], **over} for name, over in tool["mutmut_layers"].items()}


def _sources(cfg: dict) -> list[str]:
    """The files a layer's ``only_mutate`` names (globs), as paths from the repository root."""
    out: list[str] = []
    for pattern in cfg["only_mutate"]:
        out += sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.name != "__init__.py")
    return out


def _module(src: str) -> str:
    return src.removesuffix(".py").replace("/", ".")


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[\n" + "".join(f"  {_toml_value(x)},\n" for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _layer_pyproject(cfg: dict) -> str:
    """The repository's pyproject.toml with every mutmut table replaced by the layer's ``[tool.mutmut]``."""
    keep, skipping = [], False
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        s = line.strip()
        if line.startswith("[") and s.endswith("]"):
            table = s.strip("[]").strip()
            skipping = table == "tool.mutmut" or table.startswith("tool.mutmut_layers")
        if not skipping:
            keep.append(line)
    body = "".join(f"{k} = {_toml_value(v)}\n" for k, v in cfg.items())
    return "\n".join(keep).rstrip() + "\n\n# written by benchmarks/mutation_report.py for this layer\n[tool.mutmut]\n" + body


def prepare(layer: str, cfg: dict) -> Path:
    """Create or refresh mutants/<layer>/: links to the sources, tests and copied data, and its pyproject.toml."""
    d = WORK / layer
    d.mkdir(parents=True, exist_ok=True)
    for name in {*cfg["source_paths"], *(Path(p).parts[0] for p in cfg.get("also_copy", [])), "tests"}:
        link = d / name
        if not link.is_symlink():
            link.symlink_to(Path("..") / ".." / name)
    text = _layer_pyproject(cfg)
    py = d / "pyproject.toml"
    if not py.exists() or py.read_text() != text:
        py.write_text(text)
    return d


def _layer_of(name: str, table: dict[str, dict]) -> list[str]:
    """The layers holding a module a mutant name (or glob) can belong to."""
    out = []
    for layer, cfg in table.items():
        for m in map(_module, _sources(cfg)):
            if name.startswith(m + ".") or fnmatch.fnmatch(m + ".x_", name) or fnmatch.fnmatch(m, name):
                out.append(layer)
                break
    return out


# ------------------------------------------------------------------------------------------ running

def _stale_copies(d: Path, cfg: dict) -> list[str]:
    """The layer's modules changed since mutmut last mutated them (source newer than its mutated copy).

    mutmut measures the covered lines (``mutate_only_covered_lines``) on the files in mutants/, so on
    a later run the line numbers of a changed module would be those of its old mutated copy (full
    of mutant functions), not of the new source; and mutant numbers within a function shift when
    its covered lines do, so mutmut's verdicts by number cannot be kept. Such a module is mutated
    afresh by ``regenerate``, which carries verdicts over by mutant code instead."""
    return [src for src in _sources(cfg) if (d / "mutants" / src).exists()
            and (ROOT / src).stat().st_mtime > (d / "mutants" / src).stat().st_mtime]


def _changed_tests(d: Path, cfg: dict) -> list[str]:
    """The files of the layer's test selection changed since its modules were last mutated: their
    tests may cover lines that have no mutants yet (mutmut measures coverage when it mutates)."""
    copies = [d / "mutants" / src for src in _sources(cfg) if (d / "mutants" / src).exists()]
    if not copies:
        return []
    made = min(c.stat().st_mtime for c in copies)
    files = dict.fromkeys(a.split("::", 1)[0] for a in cfg.get("pytest_add_cli_args_test_selection", []))
    return [f for f in files if (ROOT / f).exists() and (ROOT / f).stat().st_mtime > made]


# mutmut's generation and test mapping without running a mutant (run in mutants/<layer>/): copy the
# sources, measure the covered lines, write the mutated copies, then load or collect the test map
# (a changed test selection resets every verdict there, as in ``mutmut run``). mutmut ignores the
# exit code of its coverage pass (run with -x): benchmarks/mutation_plugin.py drops -x there and
# records the pass's outcome in coverage_pass.json; with a failing test this stops before mutating
# (exit 3), since the lines only that test (or, with -x, any later one) reaches would get no mutants.
COVERAGE_FAILED = 3
_GENERATE = """
import json, os, sys
from pathlib import Path
from mutmut.__main__ import collect_or_load_stats, create_mutants, store_lines_covered_by_tests
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
from mutmut.workers.isolation import get_mutant_runner
record = Path("coverage_pass.json").absolute()
record.unlink(missing_ok=True)
os.environ["MUTATION_COVERAGE_RECORD"] = str(record)
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths(); store_lines_covered_by_tests()
del os.environ["MUTATION_COVERAGE_RECORD"]
outcome = json.loads(record.read_text()) if record.exists() else None
if outcome is None or outcome["failed"] or outcome["exitstatus"] != 0:
    sys.exit(%d)
print(create_mutants(1))
collect_or_load_stats(get_mutant_runner(1), apply_config_invalidation=True)
set_mutant_under_test("")
""" % COVERAGE_FAILED


def coverage_failure(d: Path) -> str | None:
    """One line naming what went wrong in the layer's last coverage pass (coverage_pass.json), or None."""
    record = d / "coverage_pass.json"
    if not record.exists():
        return (f"mutation_report: mutmut's coverage pass in {d.relative_to(ROOT)} recorded no outcome "
                "(benchmarks/mutation_plugin.py not loaded?): not mutated")
    outcome = json.loads(record.read_text())
    if not outcome["failed"] and outcome["exitstatus"] == 0:
        return None
    failed = ", ".join(outcome["failed"]) or f"pytest exit status {outcome['exitstatus']}"
    return (f"mutation_report: mutmut's coverage pass in {d.relative_to(ROOT)} had failing tests "
            f"({len(outcome['failed'])} failed, {outcome['passed']} passed): {failed}; not mutated "
            "(the lines they reach would get no mutants); fix them and run again")


def refresh_copies(d: Path, cfg: dict) -> list[str]:
    """Bring the copies in mutants/<layer>/mutants/ of every source file the layer does not mutate
    up to date with the repository; returns the files copied.

    mutmut copies a source file into mutants/ only when the copy is missing (``copy_src_dir``) and
    rewrites the copies of the modules it does not mutate only after its coverage pass
    (``create_mutants``), so that pass ran the tests against the modules of the previous run: a
    test of a rule changed since then failed (the model layer's 19:17 regeneration on 1 December:
    test_horizon_rules against economics/data.py and leases.py from 10:49), and data files
    (asic_catalog.yaml) are never refreshed at all."""
    out = []
    for top in cfg["source_paths"]:
        for src in sorted((ROOT / top).rglob("*")):
            rel = src.relative_to(ROOT).as_posix()
            if not src.is_file() or "__pycache__" in src.parts or (
                    src.suffix == ".py" and any(fnmatch.fnmatch(rel, p) for p in cfg["only_mutate"])):
                continue  # mutmut's to write
            copy = d / "mutants" / rel
            if copy.exists() and filecmp.cmp(src, copy, shallow=False):
                continue
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, copy)
            out.append(rel)
    return out


def _selection_files(cfg: dict) -> list[str]:
    return list(dict.fromkeys(a.split("::", 1)[0] for a in cfg.get("pytest_add_cli_args_test_selection", [])))


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unmap_changed_tests(d: Path, cfg: dict) -> tuple[list[str], dict[str, str]]:
    """Make mutmut map again the tests of every selection file changed since its tests were mapped.

    mutmut maps a function to the tests that call it once (its stats pass) and afterwards maps only
    tests with new names: a test whose body changed keeps its old map, so an assertion added to an
    existing test is never run against the mutants it was written for (Tree.describe 11 and 12
    survived the 19:40 run of 1 December although test_tree_paths_and_periods_by_hand kills them).
    The hash of each file whose tests are mapped is kept in mutants/<layer>/mapped_tests.json; a file
    whose hash differs (or that has none) has its test ids removed from mutmut-stats.json, so mutmut
    sees them as new and maps them again. Returns (the files unmapped, every file's hash now), the
    hashes for ``record_mapped_tests`` after the run."""
    stats_path = d / "mutants" / "mutmut-stats.json"
    record = d / "mapped_tests.json"
    mapped = json.loads(record.read_text()) if record.exists() else {}
    now = {f: _file_hash(ROOT / f) for f in _selection_files(cfg) if (ROOT / f).exists()}
    changed = [f for f, h in now.items() if mapped.get(f) != h]
    if not changed or not stats_path.exists():  # no stats yet: mutmut maps every test anyway
        return [], now
    _unmap(stats_path, tuple(f + "::" for f in changed))
    return changed, now


def _unmap(stats_path: Path, prefixes: tuple[str, ...] = ("",)) -> None:
    """Remove the test ids starting with one of ``prefixes`` (default: every test) from mutmut's
    map, so that mutmut maps them again as new tests."""
    if not stats_path.exists():
        return
    stats = json.loads(stats_path.read_text())
    stats["duration_by_test"] = {t: v for t, v in stats["duration_by_test"].items() if not t.startswith(prefixes)}
    stats["tests_by_mangled_function_name"] = {
        fn: [t for t in ts if not t.startswith(prefixes)] for fn, ts in stats["tests_by_mangled_function_name"].items()}
    stats_path.write_text(json.dumps(stats, indent=4))


def record_mapped_tests(d: Path, now: dict[str, str]) -> None:
    """After mutmut ran: keep the hash (taken before the run) of every selection file whose tests
    mutmut has mapped (its ids are back in mutmut-stats.json), for ``unmap_changed_tests``."""
    stats_path = d / "mutants" / "mutmut-stats.json"
    if not stats_path.exists():
        return
    ids = json.loads(stats_path.read_text())["duration_by_test"]
    record = d / "mapped_tests.json"
    mapped = json.loads(record.read_text()) if record.exists() else {}
    for f, h in now.items():
        if any(t.startswith(f + "::") for t in ids):
            mapped[f] = h
    record.write_text(json.dumps(mapped, indent=1, sort_keys=True) + "\n")


def _mutant_codes(d: Path, src: str) -> dict[str, str]:
    """Mutant name -> its mutated function's code (name stripped), from the layer's mutated copy of ``src``."""
    import ast

    copy = d / "mutants" / src
    if not copy.exists():
        return {}
    out = {}
    mod = _module(src)
    for node in ast.walk(ast.parse(copy.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "__mutmut_" in node.name \
                and not node.name.endswith("__mutmut_orig"):
            name = node.name
            node.name = name.rsplit("__mutmut_", 1)[0]
            out[f"{mod}.{name}"] = f"{mod}.{node.name}\n" + ast.dump(node, annotate_fields=False)
    return out


def _digest(code: str) -> str:
    """A mutant's key across machines: the first 16 hex digits of the SHA-256 of its mutated code."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]


def load_verdicts() -> dict[str, dict[str, int]]:
    """benchmarks/mutation_verdicts.json: layer -> {code digest: mutmut exit code} ({} if absent)."""
    if not VERDICTS.exists():
        return {}
    return json.loads(VERDICTS.read_text())["layers"]


def _verdicts_by_code(d: Path, cfg: dict) -> dict[str, int]:
    """{mutated code: exit code} of every mutant of the layer in ``d`` that has a verdict."""
    out = {}
    for src in _sources(cfg):
        meta = d / "mutants" / (src + ".meta")
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in _mutant_codes(d, src).items():
            if codes.get(name) is not None:
                out[code] = codes[name]
    return out


def layer_verdicts(d: Path, cfg: dict) -> dict[str, int]:
    """{code digest: exit code} of every mutant of the layer in ``d`` that has a verdict."""
    return {_digest(code): v for code, v in _verdicts_by_code(d, cfg).items()}


def save_verdicts(table: dict[str, dict]) -> dict[str, int]:
    """Write benchmarks/mutation_verdicts.json: each layer with local state (mutants/<layer>/) gets
    its current verdicts; a layer without keeps the file's. Returns layer -> verdicts written."""
    kept = load_verdicts()
    for layer, cfg in table.items():
        if (WORK / layer / "mutants").exists():
            kept[layer] = layer_verdicts(WORK / layer, cfg)
    doc = {"about": "mutmut verdicts by mutant: layer -> first 16 hex digits of the SHA-256 of the mutated function's code "
                    "(benchmarks/mutation_report.py _mutant_codes) -> mutmut exit code (1 killed, 0 survived, see KILLED, "
                    "SURVIVED, TIMEOUT); written by mutation_report.py --run / --save-verdicts",
           "layers": {k: dict(sorted(v.items())) for k, v in sorted(kept.items())}}
    VERDICTS.write_text(json.dumps(doc, indent=0, sort_keys=False) + "\n")
    return {k: len(v) for k, v in kept.items()}


def regenerate(d: Path, cfg: dict) -> tuple[int, int]:
    """Mutate the layer's modules afresh (the covered lines are measured with today's tests) and
    carry each verdict over to the new mutant with the same function and the same mutated code.

    mutmut mutates a module only when its source is newer than its mutated copy, so mutants on lines
    that new tests cover are never made; and a regenerated module loses its verdicts (mutants are
    numbered within a function, so numbers shift when covered lines are added). A verdict depends
    on the mutant's code and the tests: when tests were only added (or a test selection changed by
    adding tests), a mutant with the same code keeps its verdict (a killed one stays killed; a
    survivor is tried again unless ``--keep-survivors``). Returns (verdicts carried, mutants made)."""
    carry = d / "carry.json"  # the verdicts by mutant code, kept until they are carried (an interrupted run resumes)
    old: dict[str, int] = json.loads(carry.read_text()) if carry.exists() else {}
    old.update(_verdicts_by_code(d, cfg))
    carry.write_text(json.dumps(old))
    # the last sample's mutants by code too: their names change with the numbering (sample.json)
    drawn_file = d / "sample_codes.json"
    drawn_codes: dict[str, str] = json.loads(drawn_file.read_text()) if drawn_file.exists() else {}
    drawn = _drawn(d)
    for src in _sources(cfg):
        drawn_codes.update({name: code for name, code in _mutant_codes(d, src).items() if name in drawn})
    drawn_file.write_text(json.dumps(drawn_codes))
    for src in _sources(cfg):
        for suffix in ("", ".meta", ".spans"):
            (d / "mutants" / (src + suffix)).unlink(missing_ok=True)
    # mutmut maps a test only to the functions that had mutants (a trampoline) when it ran the test:
    # a function that gains its first mutants here (lines newly covered) would keep no test (the
    # model layer's hedge_cap on 1 December), so every test is mapped again after mutating
    _unmap(d / "mutants" / "mutmut-stats.json")
    refresh_copies(d, cfg)
    rc = subprocess.call([sys.executable, "-c", _GENERATE], cwd=d)
    if rc == COVERAGE_FAILED:
        raise SystemExit(coverage_failure(d))
    if rc != 0:
        raise SystemExit(f"mutation_report: mutmut's generation failed in {d} (exit {rc})")
    carried, made = carry_verdicts(d, cfg, old)
    _rename_sample(d, cfg, drawn_codes)
    carry.unlink()
    drawn_file.unlink()
    return carried, made


def carry_verdicts(d: Path, cfg: dict, old: dict[str, int]) -> tuple[int, int]:
    """Give each freshly made mutant of the layer in ``d`` the verdict of the mutant with the same
    mutated code: from ``old`` (code -> exit code, this machine's previous mutants) or else from
    benchmarks/mutation_verdicts.json (by code digest). Returns (verdicts carried, mutants made)."""
    kept = load_verdicts().get(d.name, {})  # the committed verdicts of this layer, by code digest
    carried = made = 0
    for src in _sources(cfg):
        meta = d / "mutants" / (src + ".meta")
        if not meta.exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in _mutant_codes(d, src).items():
            made += 1
            if name not in codes:
                continue
            if code in old:
                codes[name] = old[code]
                carried += 1
            elif _digest(code) in kept:
                codes[name] = kept[_digest(code)]
                carried += 1
        meta.write_text(json.dumps(data, indent=4))
    return carried, made


def _rename_sample(d: Path, cfg: dict, drawn_codes: dict[str, str]) -> None:
    """Rewrite sample.json's drawn mutants under their names after a regeneration (matched by mutated
    code; a drawn mutant whose code no longer exists leaves the sample), so the estimator's sampled
    stratum is still the mutants drawn at random, not whatever mutants inherited their numbers."""
    f = d / "sample.json"
    if not f.exists() or not drawn_codes:
        return
    by_code: dict[str, str] = {}
    for src in _sources(cfg):
        for name, code in _mutant_codes(d, src).items():
            by_code.setdefault(code, name)
    draw = json.loads(f.read_text())
    for v in draw["modules"].values():
        v["drawn"] = [by_code[drawn_codes[n]] for n in v["drawn"] if n in drawn_codes and drawn_codes[n] in by_code]
    f.write_text(json.dumps(draw, indent=1) + "\n")


def _reset_unexplained_survivors(d: Path, cfg: dict, names: list[str]) -> int:
    """Mark surviving mutants that mutation_equivalent.toml does not explain as not run, so mutmut
    tries them again with today's tests (mutmut keeps a verdict until the function changes); with
    ``names`` (mutmut globs), only the survivors this run will try. A mutant with no test ("no
    tests": no test was mapped to its function) counts as a survivor here: a test may map now."""
    equivalent = _load_equivalent()
    n = 0
    os.chdir(d)
    for src in _sources(cfg):
        meta = d / "mutants" / (src + ".meta")
        if not meta.exists() or not (d / "mutants" / src).exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if names and not any(name == n or fnmatch.fnmatch(name, n) for n in names):
                continue
            if (code in SURVIVED or code in NO_TESTS) and _explanation(equivalent, src, name) is None:
                codes[name] = None
                n += 1
        meta.write_text(json.dumps(data, indent=4))
    os.chdir(ROOT)
    return n


def _unexplained_survivors(d: Path, cfg: dict) -> list[str]:
    """Names of the layer's surviving (or "no tests") mutants that mutation_equivalent.toml does not explain."""
    equivalent, out = _load_equivalent(), []
    os.chdir(d)
    for src in _sources(cfg):
        meta = d / "mutants" / (src + ".meta")
        if meta.exists() and (d / "mutants" / src).exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            out += [n for n, c in codes.items() if (c in SURVIVED or c in NO_TESTS) and _explanation(equivalent, src, n) is None]
    os.chdir(ROOT)
    return out


# ------------------------------------------------------------------------------------------ sampling

Z95 = 1.959964  # the normal quantile of a two-sided 95 % interval


def draw_sample(d: Path, cfg: dict, n: int, seed: int, minimum: int, exclude: set[str]) -> dict:
    """A stratified random sample of the layer's mutants that have no verdict yet, ``n`` in all.

    Strata: the layer's modules. Module h with N_h mutants not run gets b_h = min(N_h, minimum) of them
    (so that every module gets an estimate) plus its proportional share of the rest, round((n - sum b)
    (N_h - b_h) / sum (N - b)) (capped at N_h: about n in all), drawn without replacement by ``random.Random(f"{seed}/{module}")`` from
    its sorted names: the same state and seed draw the same mutants. Mutants that already have a
    verdict are not drawn: they are a census stratum (their verdicts are exact and reused, see
    ``_estimate``); ``exclude`` (the unexplained survivors tried again by name) are left out too."""
    import random

    unrun: dict[str, list[str]] = {}
    for src in _sources(cfg):
        meta = d / "mutants" / (src + ".meta")
        if meta.exists():
            codes = json.loads(meta.read_text())["exit_code_by_key"]
            names = sorted(k for k, c in codes.items() if c is None and k not in exclude)
            if names:
                unrun[src] = names
    base = {src: min(len(names), minimum) for src, names in unrun.items()}
    rest = max(0, n - sum(base.values()))
    spare = sum(len(names) - base[src] for src, names in unrun.items())
    modules = {}
    for src, names in unrun.items():
        k = min(len(names), base[src] + (round(rest * (len(names) - base[src]) / spare) if spare else 0))
        drawn = sorted(random.Random(f"{seed}/{src}").sample(names, k))
        modules[src] = {"population": len(names), "drawn": drawn}
    return {"seed": seed, "n": n, "minimum": minimum, "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "modules": modules}


def _wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion k / n (scipy's; (0, 1) when n = 0)."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def _parts(c: Counter) -> dict | None:
    """A module's census and sample parts for the estimator; None when it has mutants not run and no sample.

    census: the mutants with a verdict that were not drawn (exact); stratum: the N mutants that had no
    verdict when the sample was drawn, of which n were drawn and have a verdict: k killed (or timed
    out), e equivalent. The stratum's non-equivalent mutants are estimated as M = N (n - e) / n and
    their killed share as q = k / (n - e)."""
    N = c["not run"] + c["sampled"] if c["not run"] else 0  # every mutant has a verdict: all census, exact
    n, k, e = (c["sampled"], c["s_caught"], c["s_equivalent"]) if N else (0, 0, 0)
    census_caught = c["killed"] + c["timeout"] - k
    census_nonequiv = c["generated"] - N - (c["equivalent"] - e)
    if N == 0:
        return {"caught": census_caught, "denom": census_nonequiv + c["uncovered"], "M": 0.0, "q": 0.0, "n1": 0, "k": 0, "N": 0}
    if n - e <= 0:
        return None
    M = N * (n - e) / n
    return {"caught": census_caught, "denom": census_nonequiv + c["uncovered"] + M, "M": M, "q": k / (n - e),
            "n1": n - e, "k": k, "N": N}


def _estimate(parts: list[dict]) -> tuple[float, float, float] | None:
    """(score, low, high) of one module (one part: Wilson interval of q mapped through the score) or of
    several (stratified: a normal interval whose variance is sum M_h^2 q~_h (1 - q~_h) / n_h (1 - n_h / N_h),
    q~ = (k + 2) / (n + 4) so that a stratum with every sampled mutant killed still counts). Exact
    (low = high = score) when no part is sampled."""
    denom = sum(p["denom"] for p in parts)
    if denom <= 0:
        return 1.0, 1.0, 1.0
    score = (sum(p["caught"] for p in parts) + sum(p["M"] * p["q"] for p in parts)) / denom
    sampled = [p for p in parts if p["N"]]
    if not sampled:
        return score, score, score
    if len(parts) == 1:
        p = parts[0]
        lo, hi = _wilson(p["k"], p["n1"])
        return score, (p["caught"] + p["M"] * lo) / denom, (p["caught"] + p["M"] * hi) / denom
    var = 0.0
    for p in sampled:
        qt = (p["k"] + 2) / (p["n1"] + 4)
        fpc = max(0.0, 1 - p["n1"] / p["M"]) if p["M"] else 0.0
        var += p["M"] ** 2 * qt * (1 - qt) / p["n1"] * fpc
    half = Z95 * var ** 0.5 / denom
    return score, max(0.0, score - half), min(1.0, score + half)


def _fmt(est: tuple[float, float, float] | None, bold: bool = False) -> str:
    if est is None:
        return "-"
    s, lo, hi = est
    b = "**" if bold else ""
    if lo == hi == s:
        return f"{b}{s:.1%}{b}"
    return f"{b}~{s:.1%}{b} [{lo:.1%}, {hi:.1%}]"


def run_mutmut(layer: str, cfg: dict, jobs: int, names: list[str], keep_survivors: bool = False,
               regen: bool = False, retry: list[str] | None = None, survivors: bool = False,
               sample: int | None = None, seed: int = 1, sample_min: int = 10) -> dict:
    """``mutmut run --max-children jobs [names]`` in mutants/<layer>/, with wall time and load-average samples.

    ``keep_survivors``: do not re-try the unexplained survivors (when no test changed since they survived).
    ``regen``: mutate the modules afresh first, carrying verdicts over by mutant code (``regenerate``).
    ``retry``: re-try only the unexplained survivors matching these globs (the others keep their verdict).
    ``survivors``: run only the unexplained survivors (by name, after any regeneration).
    ``sample``: run a stratified random sample of that many mutants without a verdict (``draw_sample``,
    ``seed``, at least ``sample_min`` a module), and the unexplained survivors, by name; the draw is kept
    in mutants/<layer>/sample.json for the report's estimates."""
    d = prepare(layer, cfg)
    samples: list[float] = []
    stop = threading.Event()

    def load_sampler() -> None:
        while not stop.is_set():
            samples.append(os.getloadavg()[0])
            stop.wait(15.0)

    th = threading.Thread(target=load_sampler, daemon=True)
    th.start()
    t0 = time.time()
    cpu0 = _children_cpu()
    refreshed = refresh_copies(d, cfg)
    if refreshed:
        print(f"mutation_report: {layer}: {len(refreshed)} unmutated source files refreshed in its mutants/ copy")
    unmapped, test_hashes = unmap_changed_tests(d, cfg)
    if unmapped:
        print(f"mutation_report: {layer}: {', '.join(unmapped)} changed since mutmut mapped their tests: mapped again")
    stale = _stale_copies(d, cfg)
    for src in stale:
        print(f"mutation_report: {src} changed since the last run: mutated afresh, verdicts carried over by mutant code")
    tests = _changed_tests(d, cfg)
    if tests:
        print(f"mutation_report: {', '.join(tests)} changed since the modules were mutated: mutated afresh (new covered lines)")
    missing = [src for src in _sources(cfg) if not (d / "mutants" / (src + ".meta")).exists()]
    if missing and sample:
        print(f"mutation_report: {', '.join(missing)} not mutated yet: mutated first (the sample is drawn from mutmut's mutants)")
    if missing and not sample and load_verdicts().get(layer):
        print(f"mutation_report: {layer}: not mutated on this machine: mutated first, verdicts taken from {VERDICTS.name}")
    regen = bool(regen or stale or tests or (missing and (sample or load_verdicts().get(layer))))
    if regen:
        carried, made = regenerate(d, cfg)
        print(f"mutation_report: {layer}: {made} mutants made, {carried} verdicts carried over by mutant code", flush=True)
    drawn: list[str] = []
    if sample:
        retried = [] if keep_survivors else _unexplained_survivors(d, cfg)
        draw = draw_sample(d, cfg, sample, seed, sample_min, set(retried))
        (d / "sample.json").write_text(json.dumps(draw, indent=1) + "\n")
        drawn = [m for v in draw["modules"].values() for m in v["drawn"]]
        print(f"mutation_report: {layer}: a sample of {len(drawn)} of the {sum(v['population'] for v in draw['modules'].values())} "
              f"mutants without a verdict (seed {seed}), and {len(retried)} unexplained survivors, by name", flush=True)
        names = retried + drawn
        if retried:
            _reset_unexplained_survivors(d, cfg, retried)
        keep_survivors, survivors = True, False  # the survivors are in ``names``: nothing else to reset
    if survivors:
        names = _unexplained_survivors(d, cfg)
        print(f"mutation_report: {layer}: {len(names)} unexplained survivors tried again by name", flush=True)
        if not names:
            names = ["__none__"]
    n = (_reset_unexplained_survivors(d, cfg, retry) if retry
         else 0 if keep_survivors else _reset_unexplained_survivors(d, cfg, names))
    if n:
        print(f"mutation_report: {n} unexplained survivors of the last {layer} run are tried again with the current tests")
    print(f"mutation_report: layer {layer}: mutmut run in {d.relative_to(ROOT)}", flush=True)
    if sample and not names:
        rc = 0  # every mutant has a verdict: nothing to draw
    else:
        rc = subprocess.call([str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(jobs), *names], cwd=d)
    record_mapped_tests(d, test_hashes)
    wall = time.time() - t0
    stop.set()
    th.join()
    cores = os.cpu_count() or 1
    mean_load = sum(samples) / len(samples) if samples else 0.0
    info = {
        "layer": layer,
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "jobs": jobs, "cores": cores, "keep_survivors": keep_survivors, "regenerate": regen, "retry": retry or [], "exit_code": rc, "wall_s": round(wall, 1), "mutants": (f"{len(names)} unexplained survivors" if survivors
                    else f"a sample of {len(drawn)} (seed {seed}) and {len(names) - len(drawn)} survivors" if sample
                    else " ".join(names) or "all"),
        "sample": len(drawn), "cpu_s": round(_children_cpu() - cpu0, 1),
        "load_mean": round(mean_load, 2), "load_max": round(max(samples, default=0.0), 2),
        "quiet_estimate_s": round(wall * min(1.0, cores / mean_load) if mean_load > cores else wall, 1),
    }
    (d / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    with open(WORK / "runs.jsonl", "a") as f:  # every run, for benchmarks/mutation_notes.md
        f.write(json.dumps(info) + "\n")
    return info


def _children_cpu() -> float:
    """CPU seconds (user + system) used by this process's finished children (mutmut and its workers):
    unlike the wall time, not inflated by other users' load or by pauses (``kill -STOP``)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


# ------------------------------------------------------------------------------------------ report

def _results(d: Path, cfg: dict) -> dict[str, dict[str, int | None] | None]:
    """source path -> mutant name -> mutmut exit code (None: not run); None: not mutated yet."""
    out: dict[str, dict[str, int | None] | None] = {}
    for src in _sources(cfg):
        meta, copy = d / "mutants" / (src + ".meta"), d / "mutants" / src
        out[src] = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() and copy.exists() else None
    return out


def _all_mutants(src: str) -> Counter:
    """function key -> number of mutants mutmut makes of it with no coverage filter."""
    from mutmut.mutation.file_mutation import create_mutations

    _, mutations, _, _ = create_mutations(src, (ROOT / src).read_text())
    import libcst as cst

    c: Counter = Counter()
    for mu in mutations:  # mutmut applies only mutations inside a function or method
        f = mu.contained_by_top_level_function
        if isinstance(f, cst.FunctionDef):
            c[f.name.value] += 1
    return c


def _function_of(name: str) -> str:
    """Mutant name -> "Class.function" or "function" (mutmut mangles them as xǁClassǁmethod / x_function)."""
    fn = name.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    if fn.startswith("xǁ"):
        return ".".join(fn[2:].split("ǁ"))
    return fn[2:] if fn.startswith("x_") else fn


def _diff(name: str, src: str) -> tuple[str, str]:
    """(removed line, added line) of a mutant, stripped (the first of each); cwd: the layer's directory."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=Path(src))
    minus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return (minus[0] if minus else ""), (plus[0] if plus else "")


def _load_equivalent() -> list[dict]:
    if not EQUIVALENT.exists():
        return []
    return tomllib.loads(EQUIVALENT.read_text()).get("mutant", [])


def _explanation(equivalent: list[dict], src: str, name: str) -> int | None:
    """Index of the mutation_equivalent.toml entry explaining mutant ``name`` of ``src``, or None (cwd: the layer's directory)."""
    fn = _function_of(name)
    minus, plus = _diff(name, src)
    for i, e in enumerate(equivalent):
        if e["file"] == src and e["function"] == fn and e["mutated"].strip() == plus and e.get("original", minus).strip() == minus:
            return i
    return None


def _drawn(d: Path) -> set[str]:
    """The mutants of the layer's last sample (``draw_sample``; mutants/<layer>/sample.json)."""
    f = d / "sample.json"
    if not f.exists():
        return set()
    return {m for v in json.loads(f.read_text())["modules"].values() for m in v["drawn"]}


def _layer_rows(d: Path, cfg: dict, equivalent: list[dict], used: list[bool]) -> tuple[list, list]:
    """Per-module counters and the survivors of one layer (cwd must be the layer's directory).

    Besides mutmut's verdicts, a module counts the mutants of the layer's last sample that have a
    verdict (``sampled``: ``s_caught`` killed or timed out, ``s_equivalent``), for ``_parts``."""
    rows, survivors = [], []
    drawn = _drawn(d)
    for src, codes in _results(d, cfg).items():
        c = Counter()
        if codes is None:  # not mutated yet (or its stale copy was dropped): every mutant still to run
            c["generated"] = c["not run"] = sum(_all_mutants(src).values())
            c["not generated yet"] = 1
            rows.append((src, c))
            continue
        generated_by_fn: Counter = Counter()
        for name, code in codes.items():
            generated_by_fn[_function_of(name).rsplit(".", 1)[-1]] += 1
            kind = ("killed" if code in KILLED else "survived" if code in SURVIVED else "timeout" if code in TIMEOUT
                    else "no tests" if code in NO_TESTS else "not run" if code is None else f"other {code}")
            c[kind] += 1
            sampled = name in drawn and code is not None
            if sampled:
                c["sampled"] += 1
                c["s_caught"] += kind in ("killed", "timeout")
            if kind in ("survived", "no tests", "timeout") or kind.startswith("other"):  # listed (a timeout: caught)
                fn = _function_of(name)
                minus, plus = _diff(name, src)
                i = _explanation(equivalent, src, name)
                why = None
                if i is not None:
                    why, used[i] = equivalent[i]["why"], True
                    c["equivalent"] += 1
                    c["s_equivalent"] += sampled
                survivors.append((src, fn, name, kind, minus, plus, why, sampled))
        possible = _all_mutants(src)
        c["uncovered"] = sum(max(n - generated_by_fn.get(fn, 0), 0) for fn, n in possible.items())
        c["generated"] = len(codes)
        rows.append((src, c))
    return rows, survivors


def report(only: list[str] | None = None) -> str:
    table = layers()
    equivalent = _load_equivalent()
    used = [False] * len(equivalent)
    from mutmut.configuration import reset_config

    per_layer = {}
    for layer, cfg in table.items():
        d = WORK / layer
        if not (d / "mutants").exists():
            per_layer[layer] = None
            continue
        os.chdir(d)
        reset_config()  # mutmut's helpers read the pyproject.toml of the working directory
        per_layer[layer] = _layer_rows(d, cfg, equivalent, used)
    os.chdir(ROOT)

    lines = ["# Mutation testing", "",
             "Generated by `benchmarks/mutation_report.py` (`make mutation`); do not edit by hand. Tool: mutmut "
             "(pinned in the `mutation` extra of pyproject.toml); configuration: `[tool.mutmut]` (shared settings) and "
             "`[tool.mutmut_layers.<layer>]` (each layer's modules and fast test subset) in pyproject.toml; "
             "equivalent mutants: benchmarks/mutation_equivalent.toml.", "",
             "Score = (killed + timeout) / (generated + uncovered - equivalent). *Timeout*: the mutant ran past mutmut's "
             "CPU-time limit, 30 x (its tests' time + 1 s), an endless loop the tests caught (listed below). "
             "*Uncovered*: mutants mutmut would make on lines the "
             "layer's tests never execute (not generated, counted exactly and scored as survivors).", "",
             "**Exact and estimated figures.** A score without `~` is exact: every mutant of the module has a verdict. "
             "A score written `~x [lo, hi]` is a sample estimate with its 95 % interval: the module still has mutants "
             "without a verdict (*not run*), and `make mutation` ran a stratified random sample of them "
             "(`mutation_report.py --sample`, column *sampled*: drawn and run). The estimator treats the mutants that "
             "already had a verdict (earlier full or partial runs; reused, not run again) as an exact census stratum, "
             "the N mutants that had none as a sampled stratum: of its n sampled mutants k were killed (or timed out) "
             "and e are equivalent, so the stratum holds M = N (n - e) / n non-equivalent mutants of which a share "
             "q = k / (n - e) is killed, and score = (census killed + M q) / (census generated - census equivalent "
             "+ M + uncovered). A module's interval is the Wilson score interval of q (k of n - e, z = 1.96) put "
             "through that formula; a layer's or the total's is the stratified normal interval score +- 1.96 sqrt(V) / "
             "denominator, V = sum over modules of M^2 q~ (1 - q~) / (n - e) x (1 - (n - e) / M), q~ = (k + 2) / "
             "(n - e + 4). The share of equivalent mutants in the stratum (e / n) is taken as known (its own "
             "sampling error is not in the interval). A module with mutants not run and no sample has no score (`-`), "
             "nor has a layer or the total that contains one.", ""]
    exact_all, parts_all, no_score = [], [], False
    partial, estimated = [], []
    table_lines = ["| layer | module | generated | killed | survived | equivalent | timeout | no tests | not run | sampled | uncovered | score |",
                   "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    run_lines = []
    everything = Counter()
    for layer, cfg in table.items():
        res = per_layer[layer]
        tests = " ".join(cfg.get("pytest_add_cli_args_test_selection", []))
        if res is None:
            n = sum(sum(_all_mutants(src).values()) for src in _sources(cfg))
            table_lines.append(f"| {layer} | (never run; {len(_sources(cfg))} modules) | {n} | | | | | | {n} | | | - |")
            everything["generated"] += n
            everything["not run"] += n
            partial.append(f"layer {layer} (never run)")
            no_score = True
            continue
        rows, _ = res
        lc, layer_parts = Counter(), []
        for src, c in rows:
            lc.update(c)
            pt = _parts(c)
            est = _estimate([pt]) if pt is not None else None
            if pt is None:
                partial.append(f"`{src}`")
            else:
                layer_parts.append(pt)
                (estimated if pt["N"] else exact_all).append((src, pt))
            name = f"{src} (not generated yet)" if c["not generated yet"] else src
            table_lines.append(f"| {layer} | {name} | {c['generated']} | {c['killed']} | {c['survived']} | {c['equivalent']} | "
                               f"{c['timeout']} | {c['no tests']} | {c['not run']} | {c['sampled'] or ''} | {c['uncovered']} | "
                               f"{_fmt(est)} |")
        everything.update(lc)
        lest = _estimate(layer_parts) if len(layer_parts) == len(rows) else None
        no_score = no_score or lest is None
        parts_all += layer_parts
        table_lines.append(f"| **{layer}** | **all {len(rows)}** | {lc['generated']} | {lc['killed']} | {lc['survived']} | "
                           f"{lc['equivalent']} | {lc['timeout']} | {lc['no tests']} | {lc['not run']} | {lc['sampled'] or ''} | "
                           f"{lc['uncovered']} | {_fmt(lest, bold=True)} |")
        info_path = WORK / layer / "run.json"
        if info_path.exists():
            info = json.loads(info_path.read_text())
            cpu = f", CPU {info['cpu_s'] / 60:.1f} min" if "cpu_s" in info else ""
            run_lines.append(
                f"- **{layer}** (tests: `{tests}`): last run ({info.get('mutants', 'all')} mutants) {info['date_utc']} UTC "
                f"at commit {info['commit']}, {info['jobs']} worker(s) on {info['cores']} cores: wall time "
                f"{info['wall_s'] / 60:.1f} min{cpu}, 1-minute load average {info['load_mean']} mean / {info['load_max']} max "
                f"(shared machine); quiet-machine estimate {info['quiet_estimate_s'] / 60:.1f} min.")
    total = _estimate(parts_all) if not no_score else None
    table_lines.append(f"| **all** | | {everything['generated']} | {everything['killed']} | {everything['survived']} | "
                       f"{everything['equivalent']} | {everything['timeout']} | {everything['no tests']} | "
                       f"{everything['not run']} | {everything['sampled'] or ''} | {everything['uncovered']} | {_fmt(total, bold=True)} |")
    if exact_all:
        s, _, _ = _estimate([p for _, p in exact_all])
        k = sum(p["caught"] for _, p in exact_all)
        dn = sum(p["denom"] for _, p in exact_all)
        lines += [f"**Exact score of the {len(exact_all)} modules run to the end: {s:.1%}** ({k} killed or timed out of "
                  f"{dn:.0f} non-equivalent mutants; target {TARGET:.0%}).", ""]
    if estimated:
        est = _estimate([p for _, p in exact_all + estimated])
        lines += [f"**Estimated score of the {len(exact_all) + len(estimated)} modules with a score (exact ones and "
                  f"{len(estimated)} sampled): {_fmt(est)}** (95 % interval; target {TARGET:.0%}). A sampled "
                  "survivor later killed by a test written for it counts as killed, which lifts this estimate: it is "
                  "unbiased only as a run leaves it, before its survivors are addressed (the notes below quote that figure).", ""]
    if partial:
        lines += ["**No score** (mutants not run and no sample): " + ", ".join(partial) + ".", ""]
    lines += table_lines + [""]
    if run_lines:
        lines += ["Runs (an incremental run re-tests only the functions changed since the last one):", ""] + run_lines + [""]
    if NOTES.exists():
        lines += [NOTES.read_text().strip(), ""]
    lines += ["## Surviving mutants (and timeouts, caught)", ""]
    by_file = defaultdict(list)
    for res in per_layer.values():
        for sv in (res[1] if res else []):
            by_file[sv[0]].append(sv)
    if not by_file:
        lines.append("None.")
    for src, svs in by_file.items():
        lines += [f"### {src}", ""]
        for _, fn, name, kind, minus, plus, why, sampled in svs:
            tag = "equivalent" if why else ("timeout: caught" if kind == "timeout" else "UNEXPLAINED " + kind)
            tag += ", sampled" if sampled else ""
            lines.append(f"- `{fn}` ({name.rsplit('__mutmut_', 1)[-1]}, {tag}): `{minus}` -> `{plus}`"
                         + (f"  \n  {why}" if why else ""))
        lines.append("")
    stale = [e for e, u in zip(equivalent, used) if not u and any(e["file"] in _sources(c) for lyr, c in table.items()
                                                                   if per_layer[lyr] is not None)]
    if stale:
        lines += ["## Stale entries of mutation_equivalent.toml (match no survivor of a layer that has run)", ""]
        lines += [f"- {e['file']} `{e['function']}`: `{e['mutated']}`" for e in stale]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run mutmut first (timed), layer by layer")
    ap.add_argument("--jobs", type=int, default=1, help="mutmut workers (default 1)")
    ap.add_argument("--layer", action="append", default=[], help="only this layer (repeatable; default: every layer)")
    ap.add_argument("--keep-survivors", action="store_true",
                    help="do not re-try the unexplained survivors (no test changed since they survived)")
    ap.add_argument("--regenerate", action="store_true",
                    help="mutate afresh (lines newly covered by added tests get mutants), carrying verdicts by mutant code")
    ap.add_argument("--retry", action="append", default=[],
                    help="re-try only the unexplained survivors matching this glob (repeatable; the others keep their verdict)")
    ap.add_argument("--survivors", action="store_true",
                    help="run only the unexplained survivors, by name (after mutating afresh when tests changed)")
    ap.add_argument("--sample", action="append", default=[], metavar="[LAYER=]N",
                    help="run a stratified random sample of N mutants without a verdict (per layer; LAYER=N for one "
                         "layer; 0: every mutant), and the unexplained survivors, by name; repeatable")
    ap.add_argument("--seed", type=int, default=1, help="the sample's seed (default 1)")
    ap.add_argument("--sample-min", type=int, default=10, help="at least this many sampled mutants a module (default 10)")
    ap.add_argument("--save-verdicts", action="store_true",
                    help=f"write benchmarks/{VERDICTS.name} from the local state (done after every --run)")
    ap.add_argument("names", nargs="*", help="only these mutants (mutmut globs, e.g. 'optimizer.kernel.*')")
    args = ap.parse_args()
    table = layers()
    unknown = [x for x in args.layer if x not in table]
    if unknown:
        raise SystemExit(f"mutation_report: unknown layer(s) {unknown}; layers: {list(table)}")
    chosen = args.layer or list(table)
    if args.names:
        chosen = [lyr for lyr in chosen if any(lyr in _layer_of(n, table) for n in args.names)]
        if not chosen:
            raise SystemExit(f"mutation_report: no layer has a module matching {args.names}")
    sample: dict[str, int] = {}
    for spec in args.sample:
        lyr, _, n = spec.rpartition("=")
        if lyr and lyr not in table:
            raise SystemExit(f"mutation_report: unknown layer {lyr!r} in --sample {spec}; layers: {list(table)}")
        for x in ([lyr] if lyr else table):
            sample[x] = int(n)
    if args.run:
        for layer in chosen:
            cfg = table[layer]
            names = [n for n in args.names if layer in _layer_of(n, {layer: cfg})]
            info = run_mutmut(layer, cfg, args.jobs, names, args.keep_survivors, args.regenerate, args.retry, args.survivors,
                              sample=sample.get(layer) or None, seed=args.seed, sample_min=args.sample_min)
            print(f"mutmut ({layer}): exit {info['exit_code']}, wall {info['wall_s']} s, load mean {info['load_mean']}", flush=True)
            OUT.write_text(report() + "\n")  # after every layer, so a stopped run keeps what has a verdict
            save_verdicts(table)
    if args.save_verdicts:
        print(f"wrote benchmarks/{VERDICTS.name}: " + ", ".join(f"{k} {n}" for k, n in save_verdicts(table).items()))
    OUT.write_text(report() + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
