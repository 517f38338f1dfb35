# linkage — privacy-preserving record linkage
# Newcomers: `make demo` (sets up and runs the bundled example), `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEERS  ?= .peers
DEMO   ?= build/demo

.PHONY: install test check lint format bench peers peers-splink demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,dask]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check linkage kernels tests benchmarks
	$(BIN)/ruff format --check linkage kernels tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format linkage kernels tests benchmarks
	$(BIN)/ruff check --fix linkage kernels tests benchmarks

check: $(STAMP)
	$(BIN)/ruff check linkage kernels tests benchmarks
	$(BIN)/ruff format --check linkage kernels tests benchmarks
	$(BIN)/mypy

# Peers (clkhash, anonlink, blocklib) pin old numpy/cryptography: they get their own venv.
peers:
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet 'setuptools<81' 'clkhash==0.18.3' 'anonlink==0.15.3' 'blocklib==0.1.11'

# Splink (plaintext peer of the quality benchmark) in a venv of its own, pinned; not needed by
# `make test` or CI.
PEERS_SPLINK ?= .peers-splink
peers-splink:
	$(PYTHON) -m venv $(PEERS_SPLINK)
	$(PEERS_SPLINK)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS_SPLINK)/bin/python -m pip install --quiet 'splink==4.0.17' 'duckdb==2.0.1' \
		'pandas==3.1.1' 'numpy==2.4.6' 'sqlglot==30.30.0' 'igraph==1.0.0'

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

demo: $(STAMP)
	$(BIN)/python examples/demo.py $(DEMO)

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
