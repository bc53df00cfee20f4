"""Finalize a build file (build_info, counts reconciled, checkpoint); verify it as a reader would.

Finalize writes with the profile's storage_compatibility_version, like
dbt's own writes, so the file stays readable by DuckDB 1.x; it checks that
every row and every line of the loan book is accounted for, against the
count taken from the bytes hashed. Verify reopens the file read-only and
queries every relation; it refuses a WAL (a read-only reader would not see
it), views (a view names the catalog and breaks once the file is renamed),
a missing relation, another build's build_info and a storage version
DuckDB 1.x cannot open.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import yaml

from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo
from loan_recovery.errors import BuildError
from loan_recovery.serving.paths import wal_path
from loan_recovery.serving.pause import pause_point


def storage_compatibility_version(root: Path) -> str:
    """The storage version the profile makes dbt write (profiles.yml ``config_options``)."""
    with (root / "profiles.yml").open(encoding="utf-8") as handle:
        profiles = yaml.safe_load(handle)
    with (root / "dbt_project.yml").open(encoding="utf-8") as handle:
        profile_name = yaml.safe_load(handle)["profile"]
    profile = profiles[profile_name]
    output = profile["outputs"][profile["target"]]
    version = (output.get("config_options") or {}).get("storage_compatibility_version")
    if not version:
        raise BuildError(
            "verify",
            f"profiles.yml sets no config_options.storage_compatibility_version for "
            f"{profile_name}; DuckDB 1.x readers could not open the served file",
        )
    return str(version)


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = connection.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True)
class RowCounts:
    """What staging made of the loan book: rows in, clean, quarantined, lines accounted for."""

    rows_in: int
    rows_clean: int
    rows_quarantined: int
    lines: int


def row_counts(connection: duckdb.DuckDBPyConnection) -> RowCounts:
    return RowCounts(
        rows_in=int(scalar(connection, "select count(*) from staging.stg_loan_book__checked")),
        rows_clean=int(scalar(connection, "select count(*) from staging.stg_loans")),
        rows_quarantined=int(scalar(connection, "select count(*) from main.quarantined_loans")),
        lines=int(
            scalar(
                connection,
                "select 1 + coalesce(sum(source_line_count), 0) "
                "from staging.stg_loan_book__checked",
            )
        ),
    )


def reconcile(counts: RowCounts, file_lines: int | None) -> None:
    """Every row is clean or quarantined, and every line of a CSV belongs to a row."""
    if counts.rows_in != counts.rows_clean + counts.rows_quarantined:
        raise BuildError(
            "finalize",
            f"row counts do not reconcile: {counts.rows_in} in, {counts.rows_clean} clean, "
            f"{counts.rows_quarantined} quarantined",
        )
    if file_lines is not None and counts.lines != file_lines:
        raise BuildError(
            "finalize",
            f"the loan book has {file_lines} lines but staging accounted for {counts.lines} "
            "(header included): rows were lost while reading; nothing is published",
        )


def finalize(
    database: Path,
    *,
    storage_version: str,
    describe: Callable[[duckdb.DuckDBPyConnection], BuildInfo],
) -> BuildInfo:
    """Write ``build_info`` into the build file, checkpoint it and leave no WAL behind."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "storage_compatibility_version": storage_version
    }
    with duckdb.connect(str(database), config=config) as connection:
        info = describe(connection)
        build_info.write(connection, info)
        pause_point("finalize")
        connection.execute("checkpoint")
    if wal_path(database).exists():
        raise BuildError("finalize", f"a WAL is left after the checkpoint: {wal_path(database)}")
    return info


@dataclass(frozen=True)
class Verified:
    """What verify saw: every relation (schema.table) and its row count, and the build it holds."""

    relations: dict[str, int]
    build_id: str | None
    storage_version: str


def verify(
    database: Path,
    *,
    storage_version: str,
    expected_relations: set[str] | frozenset[str] = frozenset(),
    build_id: str | None = None,
) -> Verified:
    """Reopen the file read-only, as a reader would, and query every relation."""
    if wal_path(database).exists():
        raise BuildError("verify", f"the build file has a WAL: {wal_path(database)}")
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            tags = scalar(
                connection,
                "select tags from duckdb_databases() where database_name = current_database()",
            )
            found_version = str((tags or {}).get("storage_version", "")).rstrip("+")
            if found_version != storage_version:
                raise BuildError(
                    "verify",
                    f"storage version is {found_version or 'unknown'}, not {storage_version}: "
                    f"DuckDB 1.x readers could not open the file",
                )
            views = connection.execute(
                "select schema_name || '.' || view_name from duckdb_views()"
                " where not internal order by 1"
            ).fetchall()
            if views:
                names = ", ".join(row[0] for row in views)
                raise BuildError(
                    "verify",
                    f"views are not allowed in the served file (make them tables): {names}",
                )
            tables = connection.execute(
                "select schema_name, table_name from duckdb_tables()"
                " where not internal and not temporary order by 1, 2"
            ).fetchall()
            relations: dict[str, int] = {}
            for schema, table in tables:
                quoted = f'"{schema}"."{table}"'
                relations[f"{schema}.{table}"] = int(
                    scalar(connection, f"select count(*) from {quoted}")
                )
                connection.execute(f"select * from {quoted} limit 1").fetchall()
            found_build = None
            if build_info.TABLE in relations:
                found_build = scalar(connection, f"select max(build_id) from {build_info.TABLE}")
    except duckdb.Error as error:
        raise BuildError("verify", f"cannot read the build file: {error}") from error
    missing = sorted(name for name in expected_relations if name not in relations)
    if missing:
        raise BuildError("verify", f"relations missing from the build: {', '.join(missing)}")
    if build_id is not None and found_build != build_id:
        raise BuildError("verify", f"build_info holds build {found_build}, expected {build_id}")
    return Verified(relations, found_build, found_version)


def expected_relations(target: Path, *, ran_only: bool = False) -> set[str]:
    """Every model and seed dbt should have built (schema.name), from the build's manifest.

    ``ran_only`` (the decision run, a selector of the project) keeps the
    nodes dbt ran (run_results.json), whose every result
    ``check_every_node_passed`` has already judged.
    """
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    ran: set[str] | None = None
    if ran_only:
        results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
        ran = {str(result.get("unique_id")) for result in results.get("results", [])}
    return {
        f"{node['schema']}.{node.get('alias') or node['name']}"
        for unique_id, node in manifest.get("nodes", {}).items()
        if (ran is None or unique_id in ran)
        and node.get("resource_type") in {"model", "seed"}
        and (node.get("config") or {}).get("enabled", True)
        and (node.get("config") or {}).get("materialized") != "ephemeral"
    }
