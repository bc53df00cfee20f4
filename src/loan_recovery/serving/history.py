"""The decision history a build carries from the served file into the new one.

Each build decides for one cycle (its as-of date) and is built into a new
file, so what was decided in earlier cycles would be lost with the old
file. Before dbt runs (step ``history``), the served file's history tables
(:data:`CARRIED`: the decision log, the outcomes joined to it, one row per
cycle) are checked and copied into the new build file; dbt's incremental
models then replace this cycle's rows and append nothing else. The served
file is only read. Because every published file holds its own complete
history, a failed or killed build changes nothing, a rollback serves the
previous file with its log (the rolled-back cycle's decisions are
withdrawn) and rolling forward brings them back.

Refused here, in one line, before anything is built:

* a served history table whose columns or types are not the model's
  contract (another tool's table, a damaged one, another version's shape)
  or that cannot be read: it is never replaced by an empty log (exit 3);
* an as-of date earlier than the newest cycle already logged: a cycle may
  be rebuilt, but history is not rewritten out of order (exit 2).

A served build from before the decision log existed has no history tables:
the new build starts the log. A change to a carried table's contract is a
change to every lender's history: it must ship with a migration here, and
until then a log of another shape is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import yaml

from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_USAGE, BuildError

CARRIED = ("decision_log", "decision_outcomes", "decision_cycles")
"""The served tables every build carries forward (dbt incremental models, schema main)."""
LOG = CARRIED[0]
SCHEMA = "main"


@dataclass(frozen=True)
class History:
    """What the served file holds of the decision history."""

    tables: tuple[str, ...]
    """The carried tables it holds (none for a first build, or one from before the log)."""
    rows: Mapping[str, int]
    newest_cycle: date | None
    """The latest as_of_date in the decision log (None when it is empty or absent)."""


def contracts(root: Path, names: Sequence[str] = CARRIED) -> dict[str, list[tuple[str, str]]]:
    """Each carried model's contract (column, data type), from its yml under ``models/``.

    The yml is the one place the shape is written; dbt enforces it on the
    model, and this check holds the served table to the same shape before
    the table is trusted as history.
    """
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((root / "models").rglob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for model in document.get("models") or []:
            if model.get("name") in names:
                found[model["name"]] = [
                    (str(column["name"]), str(column["data_type"]).lower())
                    for column in model.get("columns") or []
                ]
    missing = [name for name in names if not found.get(name)]
    if missing:
        raise BuildError("history", f"no contract for {', '.join(missing)} under models/")
    return found


def _refuse(served: Path, problem: str) -> BuildError:
    return BuildError(
        "history",
        f"--db {served}: {problem}; the decision history is never replaced or rewritten. "
        "Restore the file, or build into another --db",
        exit_code=EXIT_BAD_INPUT,
    )


def _columns(connection: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = connection.execute(
        "select column_name, lower(data_type) from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [SCHEMA, table],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def read_history(served: Path, root: Path) -> History:
    """Check the served file's history tables against their contracts; what they hold.

    Absent file, or a build without history tables: an empty history.
    """
    if not served.exists():
        return History((), {}, None)
    expected = contracts(root)
    present: list[str] = []
    rows: dict[str, int] = {}
    newest = None
    try:
        with duckdb.connect(str(served), read_only=True) as connection:
            for table in CARRIED:
                found = _columns(connection, table)
                if not found:
                    continue
                if found != expected[table]:
                    raise _refuse(
                        served,
                        f"its {table} has another shape than this project's "
                        f"({_shape_difference(found, expected[table])})",
                    )
                count = connection.execute(f"select count(*) from {SCHEMA}.{table}").fetchone()
                rows[table] = int(count[0]) if count else 0
                present.append(table)
            if LOG in present:
                row = connection.execute(f"select max(as_of_date) from {SCHEMA}.{LOG}").fetchone()
                newest = row[0] if row else None
    except duckdb.Error as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _refuse(served, f"its decision history cannot be read ({first})") from None
    if present and LOG not in present:
        raise _refuse(served, f"it holds {', '.join(present)} but no {LOG}")
    return History(tuple(present), rows, newest)


def _shape_difference(found: list[tuple[str, str]], expected: list[tuple[str, str]]) -> str:
    extra = [f"{name} {kind}" for name, kind in found if (name, kind) not in expected]
    missing = [f"{name} {kind}" for name, kind in expected if (name, kind) not in found]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:3])}")
    if extra:
        parts.append(f"unexpected {', '.join(extra[:3])}")
    return "; ".join(parts) or "columns in another order"


def check_cycle(history: History, as_of: date) -> None:
    """Refuse an as-of date earlier than the newest logged cycle (the newest may be rebuilt)."""
    if history.newest_cycle is not None and as_of < history.newest_cycle:
        raise BuildError(
            "history",
            f"--as-of {as_of.isoformat()} is earlier than the newest cycle in the decision log "
            f"({history.newest_cycle.isoformat()}); rebuild that cycle or a later one",
            exit_code=EXIT_USAGE,
        )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def carry_history(
    served: Path, build_file: Path, history: History, *, root: Path, storage_version: str
) -> dict[str, Any]:
    """Copy the served history tables into the new build file (created here); rows copied.

    Each table is created with its contract's columns and types and filled
    by column name (the shapes were checked equal). The new file is created
    with the storage version dbt writes, so DuckDB 1.x readers can open it;
    the served file is attached read-only.
    """
    copied: dict[str, Any] = {}
    if not history.tables:
        return copied
    expected = contracts(root, history.tables)
    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": storage_version
    }
    with duckdb.connect(str(build_file), config=config) as connection:
        connection.execute("attach ? as served (read_only)", [str(served)])
        for table in history.tables:
            columns = ", ".join(f"{_quoted(name)} {kind}" for name, kind in expected[table])
            connection.execute(f"create table {SCHEMA}.{table} ({columns})")
            connection.execute(
                f"insert into {SCHEMA}.{table} by name select * from served.{SCHEMA}.{table}"
            )
            row = connection.execute(f"select count(*) from {SCHEMA}.{table}").fetchone()
            copied[table] = int(row[0]) if row else 0
        connection.execute("detach served")
        connection.execute("checkpoint")
    return copied
