"""``loan-recovery export``: the CSV files hold exactly the queue, and nothing else is touched.

Expected rows come from SQL over the served file, and the files are read
back by DuckDB's own CSV reader with the queue's column types, never by the
export's writer, so a dropped, reordered or altered row fails here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import DbtResult, info_for, run_cli, sha256
from loan_recovery import build_info
from loan_recovery.serving import export

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def served(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample build as `loan-recovery build` serves it: with a build_info row."""
    database = tmp_path_factory.mktemp("export") / "served.duckdb"
    shutil.copy(sample_build.database, database)
    with duckdb.connect(str(database)) as connection:
        (loans,) = connection.execute("select count(*) from staging.stg_loans").fetchone() or (0,)
        build_info.write(connection, info_for("20260131T000000Z-abcdef", rows=loans))
    return database


def queue_of(database: Path, code: str) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
    """The queue's columns, their types, and one strategy's rows in queue order (SQL)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        cursor = connection.execute(
            "select * from main.collection_work_queue where strategy_code = $code "
            "order by queue_rank",
            {"code": code},
        )
        columns = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        types = [
            str(t)
            for (t,) in connection.execute(
                "select data_type from information_schema.columns "
                "where table_name = 'collection_work_queue' order by ordinal_position"
            ).fetchall()
        ]
    return columns, types, rows


def read_back(path: Path, columns: list[str], types: list[str]) -> list[tuple[Any, ...]]:
    """The CSV as DuckDB reads it with the queue's column types, in file order."""
    spec = dict(zip(columns, types, strict=True))
    with duckdb.connect() as connection:
        assert [
            c
            for (c,) in connection.execute(
                "select column_name from (describe select * from read_csv($path, header = true, "
                "all_varchar = true))",
                {"path": str(path)},
            ).fetchall()
        ] == columns
        return connection.execute(
            "select * from read_csv($path, header = true, columns = $spec, quote = '\"', "
            "escape = '\"', nullstr = '')",
            {"path": str(path), "spec": spec},
        ).fetchall()


def strategy_codes(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return [
            code
            for (code,) in connection.execute(
                "select strategy_code from main.recovery_strategy_catalog"
            ).fetchall()
        ]


def test_the_files_hold_every_row_of_the_queue_in_queue_order(served: Path, tmp_path: Path) -> None:
    out = tmp_path / "queue"
    completed = run_cli("export", "--db", str(served), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    codes = strategy_codes(served)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{code}.csv" for code in codes)
    total = 0
    for code in codes:
        columns, types, expected = queue_of(served, code)
        assert "expected_net_value" in columns and "reason_1" in columns
        got = read_back(out / f"{code}.csv", columns, types)
        assert got == expected, code  # every column, every row, in queue order
        ranks = [row[columns.index("queue_rank")] for row in got]
        assert ranks == list(range(1, len(got) + 1))
        total += len(got)
        assert f"{code}.csv: {len(got):,} loans" in completed.stdout
    with duckdb.connect(str(served), read_only=True) as connection:
        (queue_rows,) = connection.execute(
            "select count(*) from main.collection_work_queue"
        ).fetchone() or (0,)
    assert total == queue_rows > 0


def test_a_non_empty_out_is_refused_unless_forced_and_other_files_are_kept(
    served: Path, tmp_path: Path
) -> None:
    out = tmp_path / "queue"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "legal.csv").write_text("old", encoding="utf-8")
    refused = run_cli("export", "--db", str(served), "--out", str(out))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "not empty" in refused.stderr
    assert (out / "legal.csv").read_text(encoding="utf-8") == "old"
    forced = run_cli("export", "--db", str(served), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert (out / "legal.csv").read_text(encoding="utf-8").startswith("strategy_code,")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_an_out_that_is_a_link_or_a_file_is_refused(
    served: Path, tmp_path: Path, kind: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    if kind == "symlink":
        out.symlink_to(elsewhere, target_is_directory=True)
    else:
        out.write_text("a file", encoding="utf-8")
    completed = run_cli("export", "--db", str(served), "--out", str(out), "--force")
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1, completed.stderr
    assert list(elsewhere.iterdir()) == []
    if kind == "file":
        assert out.read_text(encoding="utf-8") == "a file"


def test_a_db_that_is_not_our_build_is_refused_and_left_unchanged(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.duckdb"  # a plain dbt build: no build_info
    shutil.copy(sample_build.database, plain)
    before = sha256(plain)
    completed = run_cli("export", "--db", str(plain), "--out", str(tmp_path / "out"))
    assert completed.returncode == 3
    assert "not a loan-recovery build" in completed.stderr
    assert completed.stderr.count("\n") == 1
    assert sha256(plain) == before
    assert not (tmp_path / "out").exists()


def test_a_catalog_code_that_is_not_a_plain_word_never_names_a_file(
    served: Path, tmp_path: Path
) -> None:
    hostile = tmp_path / "hostile.duckdb"
    shutil.copy(served, hostile)
    with duckdb.connect(str(hostile)) as connection:
        connection.execute(
            "update main.recovery_strategy_catalog set strategy_code = '../escaped' "
            "where strategy_rank = 3"
        )
    out = tmp_path / "a" / "out"
    completed = run_cli("export", "--db", str(hostile), "--out", str(out))
    assert completed.returncode == 3
    assert "cannot name a file" in completed.stderr
    assert not (tmp_path / "a" / "escaped.csv").exists()
    assert not out.exists()


def test_a_failure_while_writing_leaves_out_as_it_was(
    served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "queue"
    out.mkdir()
    (out / "legal.csv").write_text("old legal", encoding="utf-8")
    written = export.write_strategy
    calls: list[str] = []

    def fail_on_second(connection: duckdb.DuckDBPyConnection, code: str, path: Path) -> int:
        calls.append(code)
        if len(calls) == 2:
            raise OSError(28, os.strerror(28), str(path))
        return written(connection, code, path)

    monkeypatch.setattr(export, "write_strategy", fail_on_second)
    with pytest.raises(export.ExportError) as failure:
        export.export_work_queue(served, out, force=True)
    assert failure.value.exit_code == 1
    assert [p.name for p in out.iterdir()] == ["legal.csv"]
    assert (out / "legal.csv").read_text(encoding="utf-8") == "old legal"
    new = tmp_path / "new"
    calls.clear()
    with pytest.raises(export.ExportError):
        export.export_work_queue(served, new)
    assert not new.exists()
