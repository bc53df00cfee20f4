"""finalize: build_info in DuckDB 1.x storage, rows reconciled with lines, the file verified."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import info_for
from loan_recovery.build_info import BuildInfo
from loan_recovery.config import project_dir
from loan_recovery.errors import BuildError
from loan_recovery.serving import finalize as finalizing
from loan_recovery.serving import paths
from serving.helpers import V1, bid, build_id_of, make_database


def test_profile_sets_duckdb_1x_storage() -> None:
    assert finalizing.storage_compatibility_version(project_dir()) == V1


def test_finalize_writes_build_info_checkpointed_in_1x_storage(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", None)
    finalizing.finalize(database, storage_version=V1, describe=lambda _: info_for("b1"))
    assert not paths.wal_path(database).exists()
    checked = finalizing.verify(
        database, storage_version=V1, expected_relations={"staging.stg_loans"}, build_id="b1"
    )
    assert checked.relations == {
        "staging.stg_loans": 3,
        "main.run_settings": 1,
        "main.build_info": 1,
    }
    assert (checked.storage_version, checked.build_id) == (V1, "b1")
    assert build_id_of(database) == "b1"


def _staging_counts(database: Path, clean: int, quarantined: int, lines: list[int]) -> None:
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema staging")
        connection.execute(
            "create table staging.stg_loan_book__checked as "
            "select unnest(?::bigint[]) as source_line_count",
            [lines],
        )
        connection.execute(f"create table staging.stg_loans as select * from range({clean})")
        connection.execute(
            f"create table main.quarantined_loans as select * from range({quarantined})"
        )


def test_row_counts_reconcile_rows_and_lines(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    _staging_counts(database, clean=2, quarantined=1, lines=[1, 2, 1])
    with duckdb.connect(str(database), read_only=True) as connection:
        counts = finalizing.row_counts(connection)
    assert counts == finalizing.RowCounts(rows_in=3, rows_clean=2, rows_quarantined=1, lines=5)
    finalizing.reconcile(counts, 5)
    finalizing.reconcile(counts, None)  # Parquet and the seed have no lines to count
    with pytest.raises(BuildError, match="has 6 lines but staging accounted for 5") as lost:
        finalizing.reconcile(counts, 6)
    assert lost.value.step == "finalize"
    with pytest.raises(BuildError, match="do not reconcile"):
        finalizing.reconcile(finalizing.RowCounts(4, 2, 1, 5), 5)


def test_finalize_writes_nothing_when_describe_refuses(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", None)

    def refuse(_: duckdb.DuckDBPyConnection) -> BuildInfo:
        raise BuildError("finalize", "row counts do not reconcile")

    with pytest.raises(BuildError, match="do not reconcile"):
        finalizing.finalize(database, storage_version=V1, describe=refuse)
    assert build_id_of(database) is None


def test_verify_rejects_views(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", "b1", view=True)
    with pytest.raises(BuildError, match=r"views are not allowed.*main\.loans_view"):
        finalizing.verify(database, storage_version=V1)


def test_verify_rejects_2x_storage(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table t as select 1 as x")
    with pytest.raises(BuildError, match=r"DuckDB 1\.x readers could not open"):
        finalizing.verify(database, storage_version=V1)


def test_verify_rejects_missing_relations_wrong_build_and_wal(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", "b1")
    # Relations are schema.table: the same name in another schema is not the relation.
    with pytest.raises(BuildError, match=r"missing from the build: main\.stg_loans"):
        finalizing.verify(database, storage_version=V1, expected_relations={"main.stg_loans"})
    with pytest.raises(BuildError, match=f"holds build {bid('b1')}, expected b2"):
        finalizing.verify(database, storage_version=V1, build_id="b2")
    paths.wal_path(database).write_bytes(b"")
    with pytest.raises(BuildError, match="WAL"):
        finalizing.verify(database, storage_version=V1)


def test_expected_relations_are_schema_dot_table_of_built_nodes(tmp_path: Path) -> None:
    def node(kind: str, schema: str, name: str, **config: Any) -> dict[str, Any]:
        return {"resource_type": kind, "schema": schema, "name": name, "config": config}

    nodes = {
        "a": node("model", "staging", "stg_loans"),
        "b": {**node("model", "main", "marts_x"), "alias": "recovery_strategies"},
        "c": node("seed", "main", "recovery_strategy_catalog"),
        "d": node("seed", "staging", "sample_loan_book", enabled=False),
        "e": node("model", "intermediate", "int_loans_scored", materialized="ephemeral"),
        "f": node("test", "main", "not_null_x"),
    }
    (tmp_path / "manifest.json").write_text(json.dumps({"nodes": nodes}))
    assert finalizing.expected_relations(tmp_path) == {
        "staging.stg_loans",
        "main.recovery_strategies",
        "main.recovery_strategy_catalog",
    }
