# Two commands set up and run everything on a fresh machine:
#   make build       build the bundled sample loan book into the served DuckDB file, then the report
#   make test        lint (ruff, mypy, sqlfluff) and run the whole test suite (pytest runs dbt build
#                    end to end): the full gate, what CI runs (about 10 minutes on two cores)
# and one is the developer's loop:
#   make test-fast   every test that runs no dbt (pytest -m "not dbt"), in under two minutes;
#                    no lint. A test that starts dbt without the dbt marker fails here.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: build test test-fast lint clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

build: $(INSTALLED)
	$(BIN)/loan-recovery build
	$(BIN)/loan-recovery report

lint: $(INSTALLED)
	$(BIN)/ruff check src python_tests models benchmarks
	$(BIN)/ruff format --check src python_tests models benchmarks
	$(BIN)/mypy
	LOAN_RECOVERY_DB=$$(mktemp -d)/lint.duckdb $(BIN)/sqlfluff lint models tests analysis

test: lint
	$(BIN)/pytest

test-fast: $(INSTALLED)
	$(BIN)/pytest -m "not dbt"

clean:
	rm -rf $(VENV) target logs
