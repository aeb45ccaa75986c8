# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
# The virtualenv is (re)installed only when pyproject.toml changes (stamp files in .venv/).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DEMO := instances/demo.yaml
BASELINES := keep-mining convert-asap greedy

.PHONY: demo baselines test doctor clean

demo: $(STAMP)
	$(BIN)/optimizer validate $(DEMO)
	$(BIN)/optimizer solve $(DEMO) --out out/demo --report

# Evaluate the three baseline plans of the demo (no MILP) into out/demo-<name>/.
baselines: $(STAMP)
	@for b in $(BASELINES); do \
		$(BIN)/optimizer evaluate $(DEMO) --baseline $$b --out out/demo-$$b || exit $$?; \
	done

test: $(TEST_STAMP)
	$(BIN)/python -m pytest

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
	rm -rf out .pytest_cache
