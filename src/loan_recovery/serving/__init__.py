"""Serving the DuckDB file to analysts and BI tools: build, verify, publish atomically; roll back.

One module per job: ``paths`` (where things live, what may be replaced),
``lock``, ``loan_book`` (the input file, opened and hashed once),
``settings`` (``--vars`` as checked data), ``dbt_run``, ``failures`` (one
line of why), ``finalize`` (build_info, reconciliation, verify), ``swap``
(publish, rollback, recovery from a kill), ``build`` (the steps in
order) and ``export`` (the served work queue as one CSV per strategy).
The command line (:mod:`loan_recovery.cli`) prints and chooses exit codes;
nothing here prints.
"""

from loan_recovery.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BuildError,
    Interrupted,
)
from loan_recovery.serving.build import BuildReport, build, rollback
from loan_recovery.serving.paths import ServedPaths, served_path
from loan_recovery.serving.settings import check_duckdb_memory, parse_settings
from loan_recovery.serving.swap import RollbackResult

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "BuildError",
    "BuildReport",
    "Interrupted",
    "RollbackResult",
    "ServedPaths",
    "build",
    "check_duckdb_memory",
    "parse_settings",
    "rollback",
    "served_path",
]
