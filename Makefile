# Two entry points (see README): `make demo` and `make test` (lint: ruff and mypy, then the suite).
# Both create or reuse .venv in this checkout and install the package into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU build of torch is pinned here so pip never pulls the CUDA wheels.
CONSTRAINTS ?= constraints-cpu.txt

.PHONY: setup demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mduit-loc demo $(DEMO_ARGS)

test: lint $(STAMP)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

# ruff (pycodestyle, pyflakes, import order, bugbear) and mypy on the package; settings in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check mduit_loc
	$(PY) -m mypy

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
