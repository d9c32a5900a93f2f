# One command to run the service, one to test it. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck cli venv clean schemas

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the service on embedded defaults: Temporal dev server (Web UI :8233), worker, demo cases.
run: $(STAMP)
	$(PY) -m devstack.run

## Pass every test (SQLite and a throwaway PostgreSQL cluster, Temporal test servers from .venv).
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/pytest

## Longer fault runs, outside CI: every step of every path, many requests, long outages.
.PHONY: soak
soak: $(STAMP)
	SOAK=1 $(VENV)/bin/pytest tests/faults -q -s

## The command line of the starter, e.g. make cli ARGS='cases --partner P-NORDIC'
cli: $(STAMP)
	$(PY) -m starter $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy .

schemas: $(STAMP)
	$(PY) -m domain.schemas

clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache

## Benchmarks (issue #6): throughput, actions, latency, scale -> docs/benchmarks.md (~45 min;
## smaller: BENCH_N=100 BENCH_SCALE_N=500 make bench, or BENCH_PARTS=actions; see bench/__main__.py).
.PHONY: bench
bench: $(STAMP)
	$(PY) -m bench
