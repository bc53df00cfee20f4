# Two commands set up and run everything on a fresh machine:
#   make build   build the bundled sample loan book into the served DuckDB file, then the report
#   make test    lint (ruff, mypy, sqlfluff) and run the whole test suite (pytest runs dbt build end to end)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: build test lint clean

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

clean:
	rm -rf $(VENV) target logs
