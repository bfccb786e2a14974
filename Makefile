# OneCloud Analytics. `make run` starts the product; `make test` runs every test.
# Both build .venv from PyPI on first use; nothing else is downloaded.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Covered share of the packages' lines (in-process) below which `make test` fails: a few points under
# the measured figure (see docs/internals.md), raised when it rises.
COV_FLOOR ?= 85
# pytest runs one worker per core plus one (pytest-xdist, tests/conftest.py; how it shares the files out: docs/internals.md, Tests).
# `make test TEST_WORKERS=0` runs everything in one process; one file: .venv/bin/python -m pytest FILE.
TEST_WORKERS ?= auto
# More pytest options, e.g. `make test PYTEST_ARGS="--durations=0 -v"` (per-test times, and which file ends last).
PYTEST_ARGS ?=

.PHONY: run test lint typecheck check bench clean docs beacon

# One line per step, and pip's own progress while it installs (a first install takes a minute or two).
$(STAMP): pyproject.toml
	@echo "make: [1/3] creating $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "make: [2/3] upgrading pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "make: [3/3] installing onecloud-analytics and its test tools from PyPI"
	@$(PY) -m pip install --progress-bar off -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) deploy/local/stack.py

test: $(STAMP) system-deps
	$(PY) -m ruff check onecloud_kit collector aggregator dashboards tests bench scripts
	$(PY) -m ruff format --check onecloud_kit collector aggregator dashboards tests bench scripts
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(TEST_WORKERS) --cov --cov-report= --cov-fail-under=$(COV_FLOOR) $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check onecloud_kit collector aggregator dashboards tests bench scripts
	$(PY) -m ruff format --check onecloud_kit collector aggregator dashboards tests bench scripts

typecheck: $(STAMP)
	$(PY) -m mypy

# Debian packages the tests start for real (browser, servers), installed when missing.
.PHONY: system-deps
system-deps:
	@bash scripts/system-deps.sh

docs: $(STAMP)
	$(PY) scripts/gendocs.py

bench: $(STAMP)
	$(PY) bench/collector_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .coverage

# The beacon as served: minified from its readable source. The output is committed, so
# `make test` needs no npm; run this after editing collector/static/script.src.js.
TERSER ?= npx --yes terser@5.51.4
beacon:
	$(TERSER) collector/static/script.src.js --ecma 2020 -m \
		-c passes=3,unsafe=true,unsafe_arrows=true,hoist_vars=true -o collector/static/script.js
	@printf 'beacon: %s bytes, %s gzip-compressed\n' "$$(wc -c < collector/static/script.js)" \
		"$$(gzip -9n < collector/static/script.js | wc -c)"
