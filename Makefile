# Two entry points (see README): `make demo` and `make test` (lint: ruff and mypy, then the suite).
# Both create or reuse .venv in this checkout and install the package into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The torch version is pinned here; which build (CPU or CUDA) is installed is TORCH's choice.
CONSTRAINTS ?= constraints-cpu.txt
# torch build: auto (keep an importable torch; else CUDA when nvidia-smi lists a GPU, CPU otherwise),
# cpu, cuda, or skip (see scripts/install_torch.sh). torch is installed before the package because
# PyPI's Linux wheel is the CUDA build (~2.5 GB of nvidia-* packages) and a constraints file cannot
# choose a build.
TORCH ?= auto
# one torch thread: the README's demo figures were measured so (the model depends on the thread count)
DEMO_ARGS ?= --threads 1
INSTALL_TORCH := sh scripts/install_torch.sh $(PY) $(TORCH) $(CONSTRAINTS)

.PHONY: setup demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS) scripts/install_torch.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL_TORCH)
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $(STAMP)

# `make setup TORCH=cpu|cuda` also switches the torch build of an existing .venv.
setup:
	@if [ -x $(PY) ] && [ -f $(STAMP) ] && [ "$(TORCH)" != auto ]; then $(INSTALL_TORCH); fi
	$(MAKE) --no-print-directory $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mduit-loc demo $(DEMO_ARGS)

test: lint $(STAMP)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

# ruff (pycodestyle, pyflakes, import order, bugbear) on the package, tests and benchmarks, and mypy on the
# package; settings in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check mduit_loc tests benchmarks
	$(PY) -m mypy

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
