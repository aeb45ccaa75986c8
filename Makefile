# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
# The virtualenv is (re)installed only when pyproject.toml changes (stamp files in .venv/).
# `make test` also brings what the tests need outside PyPI: headless Chromium (target chromium);
# MPI comes from PyPI (the mpich wheel of the test extra: libmpi and mpiexec inside .venv).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEMO := instances/demo.yaml
BASELINES := keep-mining convert-asap greedy

.PHONY: demo baselines test lint chromium doctor clean mutation mutation-full

demo: $(STAMP)
	$(BIN)/optimizer validate $(DEMO)
	$(BIN)/optimizer solve $(DEMO) --out out/demo --report

# Evaluate the three baseline plans of the demo (no MILP) into out/demo-<name>/.
baselines: $(STAMP)
	@for b in $(BASELINES); do \
		$(BIN)/optimizer evaluate $(DEMO) --baseline $$b --out out/demo-$$b || exit $$?; \
	done

test: chromium $(TEST_STAMP) lint
	$(BIN)/python -m pytest

# The architecture contract (import-linter: layers, no cycles; see ARCHITECTURE.md) and ruff.
lint: $(TEST_STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check optimizer tests benchmarks examples

# Headless Chromium for the report tests (a system package, not on PyPI). Found on PATH (or
# CHROMIUM=/path/to/it): nothing to do. Missing: installed with apt-get when we are root or have
# passwordless sudo; otherwise one line saying what to install, and make stops before the suite.
CHROMIUM_NAMES := chromium chromium-browser google-chrome
chromium:
	@if [ -n "$$CHROMIUM" ]; then \
		[ -x "$$CHROMIUM" ] && exit 0; \
		echo "make test: CHROMIUM=$$CHROMIUM is not an executable file; point it at chromium or unset it" >&2; exit 1; \
	fi; \
	for n in $(CHROMIUM_NAMES); do command -v $$n >/dev/null 2>&1 && exit 0; done; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else sudo="none"; fi; \
	if [ "$$sudo" = none ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "make test: headless Chromium is missing (the report tests need it): install it, e.g. 'sudo apt-get install -y chromium' on Debian/Ubuntu, or set CHROMIUM=/path/to/chrome, then re-run make test" >&2; \
		exit 1; \
	fi; \
	echo "make test: installing chromium with apt-get (headless browser for the report tests)"; \
	$$sudo apt-get update -qq && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit $$?; \
	for n in $(CHROMIUM_NAMES); do command -v $$n >/dev/null 2>&1 && exit 0; done; \
	echo "make test: apt-get installed chromium but none of $(CHROMIUM_NAMES) is on PATH; install it by hand or set CHROMIUM=/path/to/chrome" >&2; \
	exit 1

doctor: $(STAMP)
	$(BIN)/optimizer doctor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

clean:
	rm -rf out .pytest_cache mutants

# Mutation testing (benchmarks/MUTATION.md): mutmut over the economics, data, evaluator and model
# modules, layer by layer, each against its own fast test subset ([tool.mutmut] and
# [tool.mutmut_layers.*] in pyproject.toml). `make mutation` is sized for about 30 minutes on 2 cores:
# in each layer, a stratified random sample of the mutants that have no verdict yet (MUTATION_SAMPLE,
# per layer; seed MUTATION_SEED) and the unexplained survivors; MUTATION.md gives a module with mutants
# not run an estimate with a 95 % interval (the sizing: benchmarks/mutation_notes.md). `make mutation-full`
# runs every mutant (hours). State in mutants/<layer>/: verdicts are kept and reused, a later run
# re-tests only changed functions; every run also writes the verdicts (by mutated code) to the committed
# benchmarks/mutation_verdicts.json, so a fresh clone starts from them; `rm -rf mutants` and that
# file for a run from scratch.
# `make mutation MUTATION_LAYERS=shared` runs one layer (shared, evaluator, model); MUTATION_JOBS workers.
MUTATION_JOBS ?= 2
MUTATION_LAYERS ?=
MUTATION_SAMPLE ?= shared=150 evaluator=100 model=120
MUTATION_SEED ?= 1
MUTATION_STAMP := $(VENV)/.installed-mutation
$(MUTATION_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,mutation]'
	touch $@ $(TEST_STAMP) $(STAMP)

mutation: $(MUTATION_STAMP)
	$(BIN)/python benchmarks/mutation_report.py --run --jobs $(MUTATION_JOBS) $(foreach l,$(MUTATION_LAYERS),--layer $(l)) \
		$(foreach s,$(MUTATION_SAMPLE),--sample $(s)) --seed $(MUTATION_SEED)

mutation-full: $(MUTATION_STAMP)
	$(MAKE) mutation MUTATION_SAMPLE=0
