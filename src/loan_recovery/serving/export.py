"""``loan-recovery export``: this cycle's work queue as one CSV per strategy, for the teams.

A call centre takes ``reminders.csv``, a settlement desk ``settlement.csv``,
the legal team ``legal.csv``: each holds every row of
``main.collection_work_queue`` for that strategy, in ``queue_rank`` order,
with every column of the queue (the reasons and the money included), so
the rows of all the files together are exactly the queue. A strategy with
no loan this cycle still gets its file, header only, so that "no file"
never has to mean "no work".

What it reads and writes, and why it is careful:

- ``--db`` must be one of our builds (``paths.not_our_connection``, the
  check a build makes before replacing a file), opened read-only, and the
  same connection is checked and read;
- file names come from ``recovery_strategy_catalog``'s codes, never from
  the user, and a code that is not a plain lower-case word is refused, so
  no file lands outside ``--out``;
- ``--out`` is a directory: a new one, an empty one, or with ``--force`` a
  non-empty one (whose other files are left alone). A symbolic link, a
  file or anything else is refused: a link could send the files anywhere;
- every file is first written whole under a scratch directory inside
  ``--out``, and only then renamed into place, so a failure leaves ``--out``
  as it was (a directory the export created is removed again).

Errors a user can cause raise :class:`ExportError`: one line, an exit code.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_USAGE, os_error_reason
from loan_recovery.files import is_duckdb_file
from loan_recovery.serving.paths import not_our_connection

QUEUE = "main.collection_work_queue"
CATALOG = "main.recovery_strategy_catalog"
STRATEGY_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
"""A strategy code a file may be named after: a plain lower-case word."""
BATCH_ROWS = 50_000


class ExportError(Exception):
    """The export cannot be done; ``str()`` is the one line to print, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Exported:
    """What was written: the directory, the cycle and build, and rows per file."""

    out: Path
    as_of_date: str
    build_id: str
    files: tuple[tuple[Path, int], ...]


def check_out(out: Path, force: bool) -> bool:
    """Refuse an ``--out`` the export may not write into; True when it must be created."""
    try:
        info = out.lstat()
    except FileNotFoundError:
        return True
    except OSError as error:
        raise ExportError(f"--out {out}: {os_error_reason(error, out)}", EXIT_USAGE) from None
    if stat.S_ISLNK(info.st_mode):
        raise ExportError(
            f"--out {out} is a symbolic link (to {os.readlink(out)}); name the directory itself",
            EXIT_USAGE,
        )
    if not stat.S_ISDIR(info.st_mode):
        raise ExportError(f"--out {out} exists and is not a directory", EXIT_USAGE)
    if not force and any(out.iterdir()):
        raise ExportError(
            f"--out {out} is not empty; choose an empty or new directory, or pass --force "
            "to replace the strategy files in it",
            EXIT_USAGE,
        )
    return False


def open_build(database: Path) -> duckdb.DuckDBPyConnection:
    """The served file, read-only, once it is known to be one of our builds."""
    if database.is_dir():
        raise ExportError(f"--db {database} is a directory; name the DuckDB file", EXIT_USAGE)
    if not database.is_file():
        raise ExportError(f"--db {database}: no such file", EXIT_BAD_INPUT)
    if not is_duckdb_file(database):
        raise ExportError(f"--db {database} is not a DuckDB file", EXIT_BAD_INPUT)
    try:
        connection = duckdb.connect(str(database), read_only=True)
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ExportError(
            f"--db {database}: DuckDB cannot open it: {first}", EXIT_BAD_INPUT
        ) from None
    why = not_our_connection(connection)
    if why is None:
        present = {
            f"{schema}.{table}"
            for schema, table in connection.execute(
                "select schema_name, table_name from duckdb_tables()"
            ).fetchall()
        }
        missing = [name for name in (QUEUE, CATALOG) if name not in present]
        why = f"no table {', '.join(missing)}" if missing else None
    if why is not None:
        connection.close()
        raise ExportError(
            f"--db {database} is not a loan-recovery build ({why}); export reads only the "
            "files `loan-recovery build` serves",
            EXIT_BAD_INPUT,
        )
    return connection


def strategy_codes(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The catalog's codes, most aggressive first; a code unfit for a file name is refused."""
    codes = [
        str(code)
        for (code,) in connection.execute(
            f"select strategy_code from {CATALOG} order by strategy_rank desc"
        ).fetchall()
    ]
    for code in codes:
        if not STRATEGY_CODE.match(code):
            raise ExportError(
                f"recovery_strategy_catalog holds the code {code!r}, which cannot name a file "
                "(a lower-case word is expected)",
                EXIT_BAD_INPUT,
            )
    return codes


def csv_value(value: Any) -> Any:
    """A cell as text: NULL empty, booleans true/false as in SQL, floats exactly (repr)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return value


def write_strategy(connection: duckdb.DuckDBPyConnection, code: str, path: Path) -> int:
    """Write one strategy's queue rows, in queue order, to ``path``; returns the rows written."""
    cursor = connection.execute(
        f"select * from {QUEUE} where strategy_code = $code order by queue_rank, loan_id",
        {"code": code},
    )
    columns = [column[0] for column in cursor.description]
    rows = 0
    with path.open("x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        while batch := cursor.fetchmany(BATCH_ROWS):
            writer.writerows([csv_value(value) for value in row] for row in batch)
            rows += len(batch)
        handle.flush()
        os.fsync(handle.fileno())
    return rows


def _cycle(connection: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    row = connection.execute(
        "select (select any_value(as_of_date) from main.run_settings), "
        "(select any_value(build_id) from main.build_info)"
    ).fetchone()
    as_of, build_id = row if row else (None, None)
    return (str(as_of)[:10] if as_of is not None else "unknown", str(build_id))


def export_work_queue(database: Path, out: Path, *, force: bool = False) -> Exported:
    """Write ``database``'s work queue as ``<out>/<strategy_code>.csv``, one file per strategy.

    Every file is written under a scratch directory inside ``out`` first and
    renamed into place only when all are whole: a failure leaves ``out`` as
    it was. The rows written are counted against the queue's; a row whose
    strategy is not in the catalog would be lost, so it stops the export.
    """
    out = Path(os.path.abspath(out))
    create = check_out(out, force)
    connection = open_build(database)
    created = False
    scratch: Path | None = None
    try:
        codes = strategy_codes(connection)
        as_of, build_id = _cycle(connection)
        if create:
            out.mkdir(parents=True)
            created = True
        scratch = out / f".export-{secrets.token_hex(4)}.partial"
        scratch.mkdir()
        written = [
            (code, write_strategy(connection, code, scratch / f"{code}.csv")) for code in codes
        ]
        queue_rows = connection.execute(f"select count(*) from {QUEUE}").fetchone()
        total = int(queue_rows[0]) if queue_rows else 0
        if sum(rows for _, rows in written) != total:
            raise ExportError(
                f"collection_work_queue holds {total:,} rows but its strategies in "
                f"recovery_strategy_catalog hold {sum(r for _, r in written):,}: nothing exported",
                EXIT_BAD_INPUT,
            )
        for code, _ in written:
            os.replace(scratch / f"{code}.csv", out / f"{code}.csv")
    except OSError as error:
        raise ExportError(os_error_reason(error, out), EXIT_FAILED) from None
    finally:
        connection.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        if created and not any(out.iterdir()):
            with contextlib.suppress(OSError):
                out.rmdir()
    return Exported(
        out, as_of, build_id, tuple((out / f"{code}.csv", rows) for code, rows in written)
    )
