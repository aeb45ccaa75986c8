"""Mutation testing of the economics, data, evaluator and model modules: run mutmut, write MUTATION.md.

    .venv/bin/python benchmarks/mutation_report.py --run [--jobs 2]   # mutmut run, then the report
    .venv/bin/python benchmarks/mutation_report.py                    # the report of the last run

The configuration (modules, fast test subset) is ``[tool.mutmut]`` in pyproject.toml; mutmut keeps
its state in mutants/ and re-tests only functions that changed since the last run (delete
mutants/ for a run from scratch).

Score. mutmut generates no mutant on a line the fast subset never executes
(``mutate_only_covered_lines``); this script counts the mutants such lines would have had (mutmut's
own generator on the whole file, minus the generated ones) and scores them as survivors, so the
score is

    killed / (generated + uncovered - equivalent)

per module and overall, where ``equivalent`` are the survivors explained in
benchmarks/mutation_equivalent.toml (one entry per mutant: the function, the mutated line as
mutmut writes it, and why no test can tell it from the original). A survivor not in that file is
listed as UNEXPLAINED; an entry that matches no survivor is listed as stale. The hand-written
benchmarks/mutation_notes.md (run history, throughput, what is left) is copied into the report.

Before mutmut runs, ``--run`` deletes the mutants/ state of modules changed since the last run
(their covered lines would be measured on the old mutated copy) and marks the survivors that are
not explained as equivalent as not run (mutmut keeps a verdict until the function changes, so a
test written for a survivor would otherwise never be tried on it).

``--run`` also measures the wall time and samples the 1-minute load average every 15 s (the
machine is shared: the quiet-machine time is estimated as wall x min(1, cores / mean load) when
more runnable processes than cores were competing).
"""

from __future__ import annotations

import argparse
import json
import os
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
RUN_JSON = ROOT / "benchmarks" / "mutation_run.json"
EQUIVALENT = ROOT / "benchmarks" / "mutation_equivalent.toml"
NOTES = ROOT / "benchmarks" / "mutation_notes.md"  # hand-written: run history, throughput, what is left
TARGET = 0.90

KILLED = {1, 3}            # mutmut: test failure, pytest internal error
SURVIVED = {0}
TIMEOUT = {24, -24, 152, 255, 36}


def _drop_stale_copies() -> list[str]:
    """Delete mutants/ copies of the modules changed since mutmut last mutated them.

    mutmut measures the covered lines (``mutate_only_covered_lines``) on the files in mutants/, so on
    a later run the line numbers of a changed module would be those of its old mutated copy (full
    of mutant functions), not of the new source: the regenerated module would get mutants on the
    wrong lines. Without the copy, mutmut copies the new source first and measures on it. The
    module's results go too (.meta): mutant numbers within a function shift when its covered lines
    do, so old verdicts cannot be carried over safely; a changed module is re-run whole."""
    dropped = []
    for src in _configured_sources():
        copy = ROOT / "mutants" / src
        if copy.exists() and (ROOT / src).stat().st_mtime > copy.stat().st_mtime:
            for suffix in ("", ".meta", ".spans"):
                (ROOT / "mutants" / (src + suffix)).unlink(missing_ok=True)
            dropped.append(src)
    return dropped


def _configured_sources() -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` names (globs), as paths from the repository root."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    out: list[str] = []
    for pattern in cfg["only_mutate"]:
        out += sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob(pattern) if p.name != "__init__.py")
    return out


def _reset_unexplained_survivors() -> int:
    """Mark surviving mutants that mutation_equivalent.toml does not explain as not run, so mutmut
    tries them again with today's tests (mutmut keeps a verdict until the function changes)."""
    equivalent = _load_equivalent()
    n = 0
    for src in _configured_sources():
        meta = ROOT / "mutants" / (src + ".meta")
        if not meta.exists() or not (ROOT / "mutants" / src).exists():
            continue
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        for name, code in codes.items():
            if code in SURVIVED and _explanation(equivalent, src, name) is None:
                codes[name] = None
                n += 1
        meta.write_text(json.dumps(data, indent=4))
    return n


def _explanation(equivalent: list[dict], src: str, name: str) -> int | None:
    """Index of the mutation_equivalent.toml entry explaining mutant ``name`` of ``src``, or None."""
    fn = _function_of(name)
    minus, plus = _diff(name, src)
    for i, e in enumerate(equivalent):
        if e["file"] == src and e["function"] == fn and e["mutated"].strip() == plus and e.get("original", minus).strip() == minus:
            return i
    return None


def run_mutmut(jobs: int, names: list[str]) -> dict:
    """``mutmut run --max-children jobs [names]`` with wall time and load-average samples."""
    os.chdir(ROOT)
    for src in _drop_stale_copies():
        print(f"mutation_report: {src} changed since the last run; mutmut re-copies it before measuring coverage")
    n = _reset_unexplained_survivors()
    if n:
        print(f"mutation_report: {n} unexplained survivors of the last run are tried again with the current tests")
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(os.getloadavg()[0])
            stop.wait(15.0)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.time()
    rc = subprocess.call([str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", str(jobs), *names], cwd=ROOT)
    wall = time.time() - t0
    stop.set()
    th.join()
    cores = os.cpu_count() or 1
    mean_load = sum(samples) / len(samples) if samples else 0.0
    info = {
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "jobs": jobs, "cores": cores, "exit_code": rc, "wall_s": round(wall, 1), "mutants": " ".join(names) or "all",
        "load_mean": round(mean_load, 2), "load_max": round(max(samples, default=0.0), 2),
        # our own `jobs` workers are part of the load: the others' share is load - jobs
        "quiet_estimate_s": round(wall * min(1.0, cores / mean_load) if mean_load > cores else wall, 1),
    }
    RUN_JSON.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def _results() -> dict[str, dict[str, int | None] | None]:
    """source path -> mutant name -> mutmut exit code (None: not run); None: not mutated yet."""
    out: dict[str, dict[str, int | None] | None] = {}
    for src in _configured_sources():
        meta, copy = ROOT / "mutants" / (src + ".meta"), ROOT / "mutants" / src
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
    """(removed line, added line) of a mutant, stripped (the first of each)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=Path(src))
    minus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return (minus[0] if minus else ""), (plus[0] if plus else "")


def _load_equivalent() -> list[dict]:
    if not EQUIVALENT.exists():
        return []
    return tomllib.loads(EQUIVALENT.read_text()).get("mutant", [])


def report() -> str:
    os.chdir(ROOT)
    results = _results()
    if all(r is None for r in results.values()):
        raise SystemExit("mutation_report: no mutants/ directory; run with --run first")
    equivalent = _load_equivalent()
    used = [False] * len(equivalent)
    rows, survivors, totals = [], [], Counter()
    for src, codes in results.items():
        c = Counter()
        if codes is None:  # not mutated yet (or its stale copy was dropped): every mutant still to run
            c["generated"] = c["not run"] = sum(_all_mutants(src).values())
            c["not generated yet"] = 1
            totals.update(c)
            rows.append((src, c))
            continue
        generated_by_fn: Counter = Counter()
        for name, code in codes.items():
            generated_by_fn[_function_of(name).rsplit(".", 1)[-1]] += 1
            kind = ("killed" if code in KILLED else "survived" if code in SURVIVED else "timeout" if code in TIMEOUT
                    else "no tests" if code in (5, 33) else "not run" if code is None else f"other {code}")
            c[kind] += 1
            if kind in ("survived", "no tests", "timeout") or kind.startswith("other"):
                fn = _function_of(name)
                minus, plus = _diff(name, src)
                i = _explanation(equivalent, src, name)
                why = None
                if i is not None:
                    why, used[i] = equivalent[i]["why"], True
                if why is not None:
                    c["equivalent"] += 1
                survivors.append((src, fn, name, kind, minus, plus, why))
        possible = _all_mutants(src)
        uncovered = sum(max(n - generated_by_fn.get(fn, 0), 0) for fn, n in possible.items())
        c["uncovered"] = uncovered
        c["generated"] = len(codes)
        if c["generated"] or c["uncovered"]:
            totals.update(c)
            rows.append((src, c))

    def score(c: Counter) -> tuple[float, int, int]:
        denom = c["generated"] + c["uncovered"] - c["equivalent"]
        return (c["killed"] / denom if denom else 1.0), c["killed"], denom

    complete = Counter()
    for _, c in rows:
        if not c["not run"]:
            complete.update(c)
    partial = [src for src, c in rows if c["not run"]]
    lines = ["# Mutation testing", "",
             "Generated by `benchmarks/mutation_report.py` (`make mutation`); do not edit by hand. Tool: mutmut "
             "(pinned in the `mutation` extra of pyproject.toml); configuration: `[tool.mutmut]` in pyproject.toml; "
             "equivalent mutants: benchmarks/mutation_equivalent.toml.", ""]
    if RUN_JSON.exists():
        info = json.loads(RUN_JSON.read_text())
        lines += [f"Last run ({info.get('mutants', 'all')} mutants): {info['date_utc']} UTC at commit {info['commit']}, "
                  f"{info['jobs']} workers on {info['cores']} cores: "
                  f"wall time {info['wall_s'] / 60:.1f} min, 1-minute load average {info['load_mean']} mean / {info['load_max']} max "
                  f"(the machine is shared); quiet-machine estimate {info['quiet_estimate_s'] / 60:.1f} min. "
                  "An incremental run re-tests only the functions changed since the last one.", ""]
    s, k, d = score(complete)
    if complete["generated"]:
        lines += [f"**Score of the modules run to the end: {s:.1%}** ({k} killed of {d} non-equivalent mutants; "
                  f"target {TARGET:.0%}).", ""]
    if partial:
        lines += [f"**Partial report**: {totals['not run']} of {totals['generated']} mutants have not been run yet, in "
                  + ", ".join(f"`{p}`" for p in partial) + " (no score for these modules until they are).", ""]
    if NOTES.exists():
        lines += [NOTES.read_text().strip(), ""]
    lines += ["Score = killed / (generated + uncovered - equivalent). *Uncovered*: mutants mutmut would make on lines the "
              "fast test subset never executes (not generated, scored as survivors).", "",
              "| module | generated | killed | survived | equivalent | timeout | no tests | not run | uncovered | score |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for src, c in rows + [("**all**", totals)]:
        sc, _, _ = score(c)
        shown = f"{sc:.1%}" if not c["not run"] else "-"
        name = f"{src} (not generated yet; all its mutants)" if c["not generated yet"] and src != "**all**" else src
        lines.append(f"| {name} | {c['generated']} | {c['killed']} | {c['survived']} | {c['equivalent']} | {c['timeout']} | "
                     f"{c['no tests']} | {c['not run']} | {c['uncovered']} | {shown} |")
    lines += ["", "## Surviving mutants", ""]
    if not survivors:
        lines.append("None.")
    by_file = defaultdict(list)
    for sv in survivors:
        by_file[sv[0]].append(sv)
    for src, svs in by_file.items():
        lines += [f"### {src}", ""]
        for _, fn, name, kind, minus, plus, why in svs:
            tag = "equivalent" if why else ("UNEXPLAINED " + kind)
            lines.append(f"- `{fn}` ({name.rsplit('__mutmut_', 1)[-1]}, {tag}): `{minus}` -> `{plus}`"
                         + (f"  \n  {why}" if why else ""))
        lines.append("")
    stale = [e for e, u in zip(equivalent, used) if not u]
    if stale:
        lines += ["## Stale entries of mutation_equivalent.toml (match no survivor)", ""]
        lines += [f"- {e['file']} `{e['function']}`: `{e['mutated']}`" for e in stale]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run mutmut first (timed)")
    ap.add_argument("--jobs", type=int, default=2, help="mutmut workers (default 2)")
    ap.add_argument("names", nargs="*", help="only these mutants (mutmut globs, e.g. 'optimizer.kernel.*')")
    args = ap.parse_args()
    if args.run:
        info = run_mutmut(args.jobs, args.names)
        print(f"mutmut: exit {info['exit_code']}, wall {info['wall_s']} s, load mean {info['load_mean']}")
    OUT.write_text(report() + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
