"""The ``build_info`` table: what ``loan-recovery build`` published, from what, by which code.

Its columns are defined once, by :class:`BuildInfo`; the DDL, the insert and
the reader are derived from that definition, so a column is added in one
place. Timestamps are plain ``TIMESTAMP`` values in UTC (no time zone type:
DuckDB 1.x Python clients need pytz to read ``TIMESTAMPTZ``).

The run settings (thresholds and the like) are not here: the dbt model
``run_settings`` records them in every build, plain ``dbt build`` included.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

import duckdb

TABLE = "main.build_info"

_SQL_TYPES: dict[type, str] = {
    str: "varchar",
    int: "bigint",
    float: "double",
    datetime: "timestamp",
    date: "date",
}


@dataclass(frozen=True)
class BuildInfo:
    """The one row a published build carries in ``build_info``."""

    build_id: str
    as_of_date: date
    """The decision cycle the build decided for (``loan-recovery build --as-of``)."""
    started_at: datetime
    finished_at: datetime
    input_file: str
    input_sha256: str
    input_bytes: int
    rows_in: int
    rows_clean: int
    rows_quarantined: int
    model_version: str | None
    """The registry id of the models that scored the book, as every mart carries it:
    the artifact a frozen build scored with, or the one a trained build was saved as
    (``models approve`` takes it); None when the outcome model fell back (nothing saved)."""
    model_mode: str
    """'trained' (the build fitted its models) or 'frozen' (a registry artifact scored it)."""
    run_kind: str
    """'full' (every loan scored, the model card built) or 'decision' (the monthly decision
    run, ``--decide-only``: the open loans scored and decided, no model card)."""
    project_version: str
    git_commit: str | None
    dbt_version: str | None
    duckdb_version: str


def utc_now() -> datetime:
    """Now, as a naive UTC datetime: what a ``TIMESTAMP`` column in UTC holds."""
    return datetime.now(UTC).replace(tzinfo=None)


def utc_stamp() -> str:
    """Now in UTC as text, e.g. ``2026-12-02T06:38:50Z``: registry created and approved times."""
    return f"{utc_now():%Y-%m-%dT%H:%M:%SZ}"


def _column_types() -> dict[str, tuple[str, bool]]:
    """Column -> (SQL type, nullable), from the dataclass annotations."""
    hints = typing.get_type_hints(BuildInfo)
    columns: dict[str, tuple[str, bool]] = {}
    for column in fields(BuildInfo):
        hint = hints[column.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        nullable = type(None) in args
        base = next((arg for arg in args if arg is not type(None)), hint)
        columns[column.name] = (_SQL_TYPES[base], nullable)
    return columns


def create_table_sql() -> str:
    """``create or replace table main.build_info (...)`` with every column of BuildInfo."""
    body = ",\n    ".join(
        f"{name} {sql_type}{'' if nullable else ' not null'}"
        for name, (sql_type, nullable) in _column_types().items()
    )
    return f"create or replace table {TABLE} (\n    {body}\n)"


def write(connection: duckdb.DuckDBPyConnection, info: BuildInfo) -> None:
    """Replace ``build_info`` with the one row ``info``; values are bound, never spliced."""
    connection.execute(create_table_sql())
    values = [getattr(info, column.name) for column in fields(BuildInfo)]
    placeholders = ", ".join("?" * len(values))
    connection.execute(f"insert into {TABLE} values ({placeholders})", values)


FULL_RUN = "full"
DECISION_RUN = "decision"
"""``run_kind``: a decision run holds no model card and scores the open loans only."""

CORE_COLUMNS = ("build_id", "started_at", "finished_at", "input_sha256", "model_mode")
"""Columns every version of ``build_info`` has had: what :func:`read_build_id` needs."""

RETIRED_COLUMNS = ("model_artifact",)
"""Columns older versions wrote and this one no longer does (``model_artifact``
became ``model_version`` when the registry id became the one model id)."""


def _columns(connection: duckdb.DuckDBPyConnection) -> list[str]:
    schema, table = TABLE.split(".")
    found = connection.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [row[0] for row in found]


def read_build_id(connection: duckdb.DuckDBPyConnection) -> str | None:
    """The build id of a ``build_info`` this project wrote, in this version or an older one.

    Older versions wrote other columns (``as_of_date`` came with the decision
    log, ``model_artifact`` went with the one model id), so a build served
    before an upgrade is still recognised as ours: its columns are among
    today's and :data:`RETIRED_COLUMNS`, and hold :data:`CORE_COLUMNS`, in
    one row. Anything else (a warehouse's own ``build_info``) is None.
    """
    columns = _columns(connection)
    current = {column.name for column in fields(BuildInfo)} | set(RETIRED_COLUMNS)
    if not set(CORE_COLUMNS) <= set(columns) or not set(columns) <= current:
        return None
    rows = connection.execute(f"select build_id from {TABLE}").fetchall()
    if len(rows) != 1 or not isinstance(rows[0][0], str):
        return None
    return str(rows[0][0])


def read(connection: duckdb.DuckDBPyConnection) -> BuildInfo | None:
    """The file's build_info row, or None when the file has none (a plain ``dbt build``).

    A table whose columns are not exactly BuildInfo's (written by another
    version of this project) reads as None too: the caller then says the
    build is not described, rather than guessing from other spellings.
    """
    names = [column.name for column in fields(BuildInfo)]
    if _columns(connection) != names:
        return None
    rows = connection.execute(f"select {', '.join(names)} from {TABLE}").fetchall()
    if len(rows) != 1:
        return None
    values: dict[str, Any] = dict(zip(names, rows[0], strict=True))
    return BuildInfo(**values)
