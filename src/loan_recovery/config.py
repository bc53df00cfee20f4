"""The project's shared facts, read from ``dbt_project.yml``.

The dbt project's ``vars`` are the one place where the feature list, category
values, thresholds and defaults are written down. SQL models read them with
``var()``; Python reads them here, so the two can never disagree.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR_ENV = "LOAN_RECOVERY_PROJECT_DIR"
DB_PATH_ENV = "LOAN_RECOVERY_DB"


class ProjectNotFoundError(FileNotFoundError):
    """No loan-recovery dbt project where the command looked."""


def project_dir() -> Path:
    """The dbt project root the command line runs dbt in.

    ``$LOAN_RECOVERY_PROJECT_DIR`` if set; else the checkout holding this
    package (an editable install: two levels above ``src/loan_recovery``);
    else the current directory, for a package installed with ``pip install .``
    and run from the project. dbt's Python models never call this: dbt
    passes them every fact they need in their config.
    """
    override = os.environ.get(PROJECT_DIR_ENV)
    candidates = [Path(override)] if override else [Path(__file__).resolve().parents[2], Path.cwd()]
    for root in candidates:
        if (root / "dbt_project.yml").is_file():
            return root
    raise ProjectNotFoundError(
        f"no dbt_project.yml in {' or '.join(map(str, candidates))}; run from the "
        f"loan-recovery project or set {PROJECT_DIR_ENV} to it"
    )


REFERENCE = "reference"
"""The var holding the project's fixed facts; every other var is a per-run setting."""


@cache
def project_vars() -> dict[str, Any]:
    """The ``vars`` block of ``dbt_project.yml`` (defaults before any ``--vars``)."""
    with (project_dir() / "dbt_project.yml").open(encoding="utf-8") as handle:
        return dict(yaml.safe_load(handle)["vars"])


def reference() -> dict[str, Any]:
    """The fixed facts under ``vars.reference``: columns, categories, feature lists."""
    return dict(project_vars()[REFERENCE])


def run_setting_defaults() -> dict[str, Any]:
    """The per-run settings an analyst may override with ``--vars``, with their defaults."""
    return {name: value for name, value in project_vars().items() if name != REFERENCE}


def loan_book_columns() -> list[str]:
    """The 21 columns of a loan book file, in file order."""
    return list(reference()["loan_book_columns"])


def max_line_bytes() -> int:
    """The longest line a CSV loan book may hold, in bytes (DuckDB's reader stops at longer)."""
    return int(reference()["max_line_bytes"])


def category_values() -> dict[str, list[str]]:
    """Canonical category values keyed by snake_case column name."""
    return {column: list(values) for column, values in reference()["category_values"].items()}


def cluster_features() -> list[str]:
    """The ten pre-collection numeric features used for segmentation and scoring."""
    return list(reference()["cluster_features"])


def post_outcome_columns() -> list[str]:
    """Columns recorded after the recovery outcome; a model that uses them leaks."""
    return list(reference()["post_outcome_columns"])


def snake_case(column: str) -> str:
    """``Monthly_EMI`` -> ``monthly_emi``: the loan book's names as the models use them."""
    return column.lower()


def database_path() -> Path:
    """The served DuckDB file: ``$LOAN_RECOVERY_DB``, else ``loan_recovery.duckdb`` in the project.

    The same rule as ``profiles.yml``, so a command run without options reads
    the file a plain ``dbt build`` in the project writes.
    """
    override = os.environ.get(DB_PATH_ENV)
    return Path(override) if override else project_dir() / "loan_recovery.duckdb"
