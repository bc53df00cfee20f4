# Two commands set up and run everything on a fresh machine:
#   make build       build the bundled sample loan book into the served DuckDB file, then the report
#   make test        lint (ruff, mypy, sqlfluff) and run the whole test suite (pytest runs dbt build
#                    end to end): the full gate, what CI runs (about 10 minutes on two cores)
# and one is the developer's loop:
#   make test-fast   every test that runs no dbt (pytest -m "not dbt"), in under two minutes;
#                    no lint. A test that starts dbt without the dbt marker fails here.

# The project needs Python 3.11: python3.11 if there is one, else a python3 that is 3.11
# (make PYTHON=/path/to/python3.11 names another). Checked before the venv is made.
IS_PYTHON_311 := -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
PYTHON ?= $(firstword $(foreach candidate,python3.11 python3,$(shell $(candidate) $(IS_PYTHON_311) >/dev/null 2>&1 && command -v $(candidate))))
NEEDS_PYTHON = loan-recovery needs Python 3.11 and found none (python3.11, or python3 at 3.11$(if $(PYTHON),; PYTHON=$(PYTHON) is not 3.11)): install python3.11 (e.g. apt-get install python3.11 python3.11-venv, or pyenv install 3.11) or run make PYTHON=/path/to/python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: build test test-fast lint clean

$(INSTALLED): pyproject.toml
	$(if $(and $(PYTHON),$(shell $(PYTHON) $(IS_PYTHON_311) >/dev/null 2>&1 && echo 3.11)),,$(error $(NEEDS_PYTHON)))
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
