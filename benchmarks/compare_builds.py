"""Compare the served tables of two built DuckDB files, row for row (EXCEPT ALL both ways).

Usage::

    .venv/bin/python benchmarks/compare_builds.py BEFORE.duckdb AFTER.duckdb [--tables a b ...]
        [--ignore-columns build_info.build_id ...]

Without ``--tables`` every table of the default schema that both files hold
is compared, except ``build_info`` (ids, times and commits differ by nature).
A table present in only one file is reported. Columns present in only one
file's table are reported and left out of the comparison. Prints one line
per table and exits 1 when any compared table differs.

Used to show that a refactor changed no mart (issue 25) and that two
engines decide alike (issue 29).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

SKIPPED = {"build_info"}


def _tables(connection: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[str]]:
    rows = connection.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_catalog = ? and table_schema = 'main' order by table_name, ordinal_position",
        [catalog],
    ).fetchall()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        tables.setdefault(table, []).append(column)
    return tables


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def compare(
    before: Path, after: Path, tables: list[str] | None, ignored: set[str]
) -> list[tuple[str, str]]:
    """(table, verdict) per table; a verdict is 'identical (n rows)' or what differs."""
    connection = duckdb.connect()
    connection.execute("attach ? as before_db (read_only)", [str(before)])
    connection.execute("attach ? as after_db (read_only)", [str(after)])
    old, new = _tables(connection, "before_db"), _tables(connection, "after_db")
    names = tables or sorted((set(old) | set(new)) - SKIPPED)
    verdicts: list[tuple[str, str]] = []
    for name in names:
        if name not in old or name not in new:
            verdicts.append((name, f"only in {'after' if name in new else 'before'}"))
            continue
        shared = [
            column
            for column in old[name]
            if column in new[name] and f"{name}.{column}" not in ignored
        ]
        apart = sorted((set(old[name]) ^ set(new[name])) - {c.split(".")[1] for c in ignored})
        columns = ", ".join(_quoted(column) for column in shared)
        table = _quoted(name)
        gone, added = (
            connection.execute(
                f"select count(*) from (select {columns} from {a}.main.{table} "
                f"except all select {columns} from {b}.main.{table})"
            ).fetchone()[0]
            for a, b in (("before_db", "after_db"), ("after_db", "before_db"))
        )
        rows = connection.execute(f"select count(*) from after_db.main.{table}").fetchone()[0]
        note = f"; columns in one only: {', '.join(apart)}" if apart else ""
        if gone or added:
            verdicts.append((name, f"DIFFERS: {gone} rows only before, {added} only after{note}"))
        else:
            verdicts.append((name, f"identical ({rows} rows){note}"))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--tables", nargs="*", help="tables of the default schema to compare")
    parser.add_argument("--ignore-columns", nargs="*", default=[], help="table.column to leave out")
    args = parser.parse_args(argv)
    verdicts = compare(args.before, args.after, args.tables, set(args.ignore_columns))
    for table, verdict in verdicts:
        print(f"{table:<32} {verdict}")
    return 1 if any(not verdict.startswith("identical") for _, verdict in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
