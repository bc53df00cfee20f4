"""The read-only connection to the built file, and the relations the report needs in it.

:data:`REPORT_RELATIONS` is exactly what :mod:`~loan_recovery.report.queries`
reads and what the ``loan_recovery_report`` exposure in
``models/marts/_exposures.yml`` declares (a test builds a file holding only
those and reports on it). Each way a ``--db`` can be wrong gets one sentence
naming the file, raised as :class:`ReportError`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from loan_recovery import build_info
from loan_recovery.files import MAGIC, MAGIC_OFFSET, starts_like_duckdb

# (schema, table) the report reads; the exposure in models/marts/_exposures.yml
# lists exactly these. build_info is not a dbt node and is optional.
REPORT_RELATIONS: tuple[tuple[str, str], ...] = (
    ("staging", "stg_loans"),
    ("main", "quarantined_loans"),
    ("intermediate", "int_loan_features"),
    ("main", "borrower_segments"),
    ("main", "recovery_strategies"),
    ("main", "risk_model_metrics"),
    ("main", "run_settings"),
    ("main", "model_gains"),
    ("main", "strategy_policy_comparison"),
    ("main", "model_fairness"),
    ("main", "reason_code_catalog"),
    ("main", "recovery_strategy_catalog"),
    ("main", "model_monitoring"),
    ("main", "collection_work_queue"),
    ("main", "cycle_trend"),
    ("main", "challenger_results"),
    ("main", "action_effects"),
)


class ReportError(RuntimeError):
    """The database cannot be reported on; the message is one line naming the file."""


def connect(database: Path) -> duckdb.DuckDBPyConnection:
    """Open the built file read-only: the report must never change what it reports on.

    Each way a ``--db`` can be wrong gets its own sentence instead of a
    DuckDB traceback. The header is checked before DuckDB opens the file
    because DuckDB's own errors mislead here (a ``.csv`` path reports "Cannot
    launch in-memory database in read-only mode").
    """
    if database.is_dir():
        raise ReportError(f"{database} is a directory, not a DuckDB file: pass the built file")
    if not database.is_file():
        raise ReportError(f"no DuckDB file at {database}: run `dbt build` first, or pass --db")
    try:
        with database.open("rb") as handle:
            header = handle.read(MAGIC_OFFSET + len(MAGIC))
    except OSError as error:
        raise ReportError(f"cannot read {database}: {error.strerror}") from error
    if not header:
        raise ReportError(f"{database} is empty, not a DuckDB file: was the build interrupted?")
    if not starts_like_duckdb(header):
        raise ReportError(
            f"{database} is not a DuckDB database file (a loan book? "
            "`loan-recovery build --loans` turns one into a DuckDB file)"
        )
    try:
        connection = duckdb.connect(str(database), read_only=True)
    except duckdb.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ReportError(f"cannot open {database} read-only: {reason}") from error
    missing = missing_relations(connection)
    if missing and not _is_decision_run(connection):
        connection.close()
        raise ReportError(
            f"{database} lacks {', '.join(missing)}: not a complete `dbt build` of this project"
        )
    return connection


def _is_decision_run(connection: duckdb.DuckDBPyConnection) -> bool:
    """A decision run lacks the model card by design (report.decision_run draws its page)."""
    info = build_info.read(connection)
    return info is not None and info.run_kind == build_info.DECISION_RUN


def missing_relations(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The REPORT_RELATIONS the file lacks, as ``schema.table``."""
    present = set(
        connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_catalog = current_database()"
        ).fetchall()
    )
    return [
        f"{schema}.{table}" for schema, table in REPORT_RELATIONS if (schema, table) not in present
    ]
