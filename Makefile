# Every target builds its own virtual environment, so a fresh machine needs only
# Python 3.10+ and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
STAMP_CLI := $(VENV)/.installed-cli

.PHONY: venv demo test lint fmt bench docs matrix check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(STAMP_DEV): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP_RUN)

$(STAMP_CLI): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[cli]'
	touch $@ $(STAMP_RUN)

venv: $(STAMP_DEV)

# Installs the `routilux` command (the [cli] extra) and runs a bundled demo;
# then try `$(BIN)/routilux demo affinity` or `$(BIN)/routilux --help`.
demo: $(STAMP_CLI)
	$(BIN)/routilux demo concurrent

test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict routilux
	$(BIN)/python tools/check_module_size.py routilux

fmt: $(STAMP_DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# make bench BENCH_ARGS="--quick --only jobs,chain" (bench/run.py --help lists cases)
bench: $(STAMP_RUN)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

docs: $(STAMP_DEV)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/sphinx-build -W -q -b doctest docs docs/_build/doctest
	$(BIN)/sphinx-build -W -q -b html docs docs/_build/html

# The test suite on every other supported Python found on this machine, each in
# its own virtual environment (.venv-3.10, ...); missing interpreters are skipped.
OTHER_PYTHONS ?= 3.10 3.12 3.13
matrix:
	@for version in $(OTHER_PYTHONS); do \
		interpreter=""; \
		for candidate in python$$version $$HOME/.pyenv/versions/$$version*/bin/python$$version; do \
			if $$candidate -c 'import sys' >/dev/null 2>&1; then interpreter=$$candidate; break; fi; \
		done; \
		if [ -n "$$interpreter" ]; then \
			echo "== Python $$version ($$interpreter)"; \
			$(MAKE) --no-print-directory test PYTHON=$$interpreter VENV=.venv-$$version || exit 1; \
		else \
			echo "== Python $$version: not installed, skipped"; \
		fi; \
	done

check: lint test docs

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache .mypy_cache .ruff_cache
