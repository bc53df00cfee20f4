"""Every DuckDB query the report runs, and the read-only connection they run on.

DuckDB does every count, sum, quartile and histogram bin over all loans, so
the numbers are exact on a book of any size, and what comes back
(:class:`ReportData`) is small whatever the size of the book: nothing after
this module touches the database. Only point clouds use a sample, a
deterministic one (lowest salted hash of ``loan_id``), and each chart that
draws one says so.

Every relation is named with its schema (``staging.stg_loans``,
``intermediate.int_loan_features``, ``main.<mart>``), so the report does not
depend on a search path, and :data:`REPORT_RELATIONS` is exactly what the
``loan_recovery_report`` exposure declares (a test builds a file holding only
those and reports on it).

The thresholds are read from ``main.run_settings``, the row the strategy CASE
in ``recovery_strategies`` took them from, so the lines drawn are the ones the
build applied. The report neither re-derives them from the dbt vars nor
re-runs the CASE: that rule lives in ``models/marts/recovery_strategies.sql``
only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo
from loan_recovery.config import cluster_features

SAMPLE_ROWS = 5_000
SAMPLE_SALT = "loan-recovery-report"
RISK_SCORE_BINS = 40
LOAN_AMOUNT_TARGET_BINS = 40

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
)

# A DuckDB database file starts with an 8-byte checksum, then these magic bytes.
DUCKDB_MAGIC = b"DUCK"


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
            header = handle.read(12)
    except OSError as error:
        raise ReportError(f"cannot read {database}: {error.strerror}") from error
    if not header:
        raise ReportError(f"{database} is empty, not a DuckDB file: was the build interrupted?")
    if header[8:12] != DUCKDB_MAGIC:
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
    if missing:
        connection.close()
        raise ReportError(
            f"{database} lacks {', '.join(missing)}: not a complete `dbt build` of this project"
        )
    return connection


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


@dataclass(frozen=True)
class ReportData:
    """Everything the header and the charts are drawn from; small whatever the book's size."""

    loan_count: int
    quarantined_count: int
    legal_threshold: float
    settlement_threshold: float
    metrics: dict[str, Any]
    build_info: BuildInfo | None
    sample: pd.DataFrame
    loan_amount_bins: pd.DataFrame
    payment_history: pd.DataFrame
    missed_payment_boxes: pd.DataFrame
    segments: pd.DataFrame
    feature_stats: pd.DataFrame
    risk_score_bins: pd.DataFrame
    strategy_segments: pd.DataFrame


def profile_features() -> list[str]:
    """The segment profile columns: every cluster feature and the mart's two ratios."""
    return [*cluster_features(), "emi_to_income_ratio", "outstanding_share_of_loan"]


def nice_bin_width(low: float, high: float, target_bins: int) -> float:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) giving about target_bins bins.

    Round widths put the bar edges on numbers a reader can name.
    """
    span = high - low
    if span <= 0:
        return 1.0
    raw = span / target_bins
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = connection.execute(sql).fetchone()
    return row[0] if row else None


def _one_row(connection: duckdb.DuckDBPyConnection, sql: str, relation: str) -> dict[str, Any]:
    """The single row of a one-row relation as a dict; any other count is a broken build."""
    cursor = connection.execute(sql)
    rows = cursor.fetchall()
    if len(rows) != 1:
        raise ReportError(f"{relation} holds {len(rows)} rows, expected 1: rerun `dbt build`")
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def _sample(connection: duckdb.DuckDBPyConnection, rows: int) -> pd.DataFrame:
    """A deterministic sample: the loans with the lowest salted hash of loan_id.

    Independent of thread count and row order, so the same file always gives
    the same points.
    """
    return connection.execute(
        """
        select loan_id, loan_amount, monthly_income, num_missed_payments, recovery_status
        from staging.stg_loans
        order by hash(loan_id || $salt), loan_id
        limit $rows
        """,
        {"salt": SAMPLE_SALT, "rows": rows},
    ).df()


def _loan_amount_bins(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    low, high = connection.execute(
        "select min(loan_amount), max(loan_amount) from staging.stg_loans"
    ).fetchone() or (0, 0)
    width = nice_bin_width(float(low or 0), float(high or 0), LOAN_AMOUNT_TARGET_BINS)
    return connection.execute(
        """
        select floor(loan_amount / $width) * $width as bin_start,
               floor(loan_amount / $width) * $width + $width as bin_end,
               count(*) as loans
        from staging.stg_loans group by all order by bin_start
        """,
        {"width": width},
    ).df()


def _missed_payment_boxes(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Exact box statistics per status (Tukey fences: furthest loans within 1.5 IQR)."""
    return connection.execute(
        """
        with stats as (
            select recovery_status, count(*) as loans, avg(num_missed_payments) as mean,
                   quantile_cont(num_missed_payments, 0.25) as q1,
                   quantile_cont(num_missed_payments, 0.5) as median,
                   quantile_cont(num_missed_payments, 0.75) as q3
            from staging.stg_loans group by recovery_status
        )
        select stats.*,
               min(l.num_missed_payments) filter (
                   where l.num_missed_payments >= q1 - 1.5 * (q3 - q1)) as lower_fence,
               max(l.num_missed_payments) filter (
                   where l.num_missed_payments <= q3 + 1.5 * (q3 - q1)) as upper_fence
        from stats join staging.stg_loans as l using (recovery_status)
        group by all
        """
    ).df()


def _feature_stats(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Mean and population standard deviation of each profile feature over all loans."""
    selects = " union all ".join(
        f'select \'{name}\' as feature, avg("{name}") as mean, stddev_pop("{name}") as std '
        "from intermediate.int_loan_features"
        for name in profile_features()
    )
    return connection.execute(selects).df()


def read_report_data(
    connection: duckdb.DuckDBPyConnection, sample_rows: int = SAMPLE_ROWS
) -> ReportData:
    """Run every query the report needs; aggregates are exact, only point clouds are sampled."""
    settings = _one_row(
        connection,
        "select legal_threshold, settlement_threshold from main.run_settings",
        "main.run_settings",
    )
    # built_at as a naive UTC timestamp, like build_info's: one way to print both.
    metrics = _one_row(
        connection,
        "select * replace (timezone('UTC', built_at) as built_at) from main.risk_model_metrics",
        "main.risk_model_metrics",
    )
    return ReportData(
        loan_count=int(_scalar(connection, "select count(*) from staging.stg_loans")),
        quarantined_count=int(_scalar(connection, "select count(*) from main.quarantined_loans")),
        legal_threshold=float(settings["legal_threshold"]),
        settlement_threshold=float(settings["settlement_threshold"]),
        metrics=metrics,
        build_info=build_info.read(connection),
        sample=_sample(connection, sample_rows),
        loan_amount_bins=_loan_amount_bins(connection),
        payment_history=connection.execute(
            "select payment_history, recovery_status, count(*) as loans "
            "from staging.stg_loans group by all"
        ).df(),
        missed_payment_boxes=_missed_payment_boxes(connection),
        segments=connection.execute(
            "select * from main.borrower_segments order by segment_id"
        ).df(),
        feature_stats=_feature_stats(connection),
        risk_score_bins=connection.execute(
            """
            select least(floor(risk_score * $bins), $bins - 1) / $bins as bin_start,
                   strategy_code, count(*) as loans
            from main.recovery_strategies group by all order by bin_start, strategy_code
            """,
            {"bins": RISK_SCORE_BINS},
        ).df(),
        strategy_segments=connection.execute(
            """
            select segment_id, segment_name, strategy_code,
                   any_value(recovery_strategy) as recovery_strategy,
                   count(*) as loans, sum(outstanding_loan_amount) as outstanding
            from main.recovery_strategies group by all order by segment_id, strategy_code
            """
        ).df(),
    )
