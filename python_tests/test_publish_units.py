"""The publish module's parts without dbt: summaries, finalize, verify, swap, rollback, lock.

Each test runs in milliseconds on tiny DuckDB files; test_publish.py drives the
whole command end to end.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from loan_recovery import dbt_results, publish
from loan_recovery.config import project_dir
from loan_recovery.publish import (
    EXIT_BUSY,
    BuildError,
    BuildInfo,
    DbtRun,
    ServedPaths,
)

V1 = "v1.0.0"


def make_database(path: Path, build_id: str | None, rows: int = 3, *, view: bool = False) -> Path:
    """A small served-like file in DuckDB 1.x storage, with build_info when build_id is set."""
    with duckdb.connect(str(path), config={"storage_compatibility_version": V1}) as connection:
        connection.execute(f"create table stg_loans as select range as loan_id from range({rows})")
        if build_id is not None:
            connection.execute("create table build_info as select ? as build_id", [build_id])
        if view:
            connection.execute("create view loans_view as select * from stg_loans")
    return path


def build_id_of(path: Path) -> str | None:
    return publish.read_build_id(path)


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Compilation Error in model stg_loan_book__checked (models/staging/x.sql)\n"
            "  loans_path '/d/x.csv': the file is empty\n  \n"
            "  > in macro check_loan_book_file (macros/loan_book_source.sql)\n",
            "loans_path '/d/x.csv': the file is empty",
        ),
        (
            "Runtime Error in model stg_loan_book__checked (models/staging/x.sql)\n"
            "  Invalid Input Error: CSV Error on Line: 2\n  Original Line: a,b\n"
            "  Invalid unicode (byte sequence mismatch) detected.\n\n  Possible Solution: x\n",
            "CSV error on line 2: Invalid unicode (byte sequence mismatch) detected.",
        ),
        (
            "Runtime Error in model int_loan_segments (models/intermediate/int_loan_segments.py)\n"
            "  Python model failed:\n  Traceback (most recent call last):\n"
            '    File "x.py", line 9, in model\n'
            "  ValueError: cannot form 500 segments from 200 loan(s)\n",
            "Python model failed: ValueError: cannot form 500 segments from 200 loan(s)",
        ),
        ("Got 3 results, configured to fail if != 0", "Got 3 results, configured to fail if != 0"),
        ("", "no error message (see the log)"),
    ],
)
def test_first_meaningful_line(message: str, expected: str) -> None:
    assert dbt_results.first_meaningful_line(message) == expected


def result(unique_id: str, status: str, message: str, started: str = "2026-01-01T00:00:01Z"):
    return {
        "unique_id": unique_id,
        "status": status,
        "message": message,
        "timing": [{"started_at": started}],
    }


def test_summary_names_the_file_for_a_reader_error_and_calls_it_bad_input() -> None:
    loans = Path("/data/book.csv")
    run = DbtRun(
        1,
        {
            "results": [
                result(
                    "model.loan_recovery.stg_loan_book__checked",
                    "error",
                    f'Runtime Error in model x\n  Invalid Input Error: No magic bytes in "{loans}"',
                )
            ]
        },
        "",
    )
    reason, bad_input = publish.summarize_dbt_failure(run, loans)
    assert bad_input
    assert reason == "loans_path '/data/book.csv': No magic bytes in"


def test_summary_prefers_the_loan_book_check_line() -> None:
    run = DbtRun(
        1,
        {
            "results": [
                result("test.p.assert_x", "error", "other", "2026-01-01T00:00:00Z"),
                result(
                    "model.p.stg",
                    "error",
                    "Compilation Error in model stg (m)\n  loans_path 'f': bad",
                ),
            ]
        },
        "",
    )
    assert publish.summarize_dbt_failure(run, Path("f")) == ("loans_path 'f': bad", True)


def test_summary_reports_the_first_failed_node_and_counts_the_rest() -> None:
    run = DbtRun(
        1,
        {
            "results": [
                result("model.p.a", "success", ""),
                result("test.p.not_null_b.123", "fail", "Got 2 results", "2026-01-01T00:00:03Z"),
                result(
                    "unit_test.p.features.wrong_ratio",
                    "fail",
                    "actual differs from expected:\n\n@@ ,x",
                    "2026-01-01T00:00:02Z",
                ),
            ]
        },
        "",
    )
    reason, bad_input = publish.summarize_dbt_failure(run, None)
    assert not bad_input
    assert reason == (
        "unit test features.wrong_ratio failed: actual differs from expected:"
        " (and 1 more: see the log)"
    )


def test_summary_without_run_results_reads_dbt_output() -> None:
    output = (
        "\x1b[0m21:44:29  Encountered an error:\n"
        "Compilation Error in operation loan_recovery-on-run-start-0 (./dbt_project.yml)\n"
        "  legal_threshold must be a number between 0 and 1, got 1.5\n"
    )
    reason, bad_input = publish.summarize_dbt_failure(DbtRun(2, None, output), None)
    assert (
        reason == "dbt stopped (exit 2): legal_threshold must be a number between 0 and 1, got 1.5"
    )
    assert not bad_input


def test_warnings_are_listed() -> None:
    results = {
        "results": [result("test.p.expression_is_true_stg_loans_x.1", "warn", "Got 1 result")]
    }
    assert publish.warnings_of(results) == [
        "data test expression_is_true_stg_loans_x: Got 1 result"
    ]


def test_skipped_nodes_block_publishing_but_exposures_do_not() -> None:
    ok = DbtRun(0, {"results": [result("exposure.p.bi", "skipped", "")]}, "")
    publish._check_every_node_passed(ok)
    skipped = DbtRun(0, {"results": [result("model.p.m", "skipped", "")]}, "")
    with pytest.raises(BuildError, match="model m"):
        publish._check_every_node_passed(skipped)


def test_no_valid_loans_summary(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table stg_loans (loan_id varchar)")
        connection.execute(
            "create table quarantined_loans as select * from (values "
            "('age is not a number'), ('age is not a number; loan_type has an unknown value'))"
            " as t(reject_reason)"
        )
    summary = publish.quarantine_summary(database, "'book.csv'")
    assert summary is not None
    assert summary.startswith("no valid loans: all 2 rows of 'book.csv' quarantined")
    assert "age is not a number (2)" in summary


# --------------------------------------------------------------------------- small facts


def test_sha256_is_streamed_and_exact(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(publish.HASH_CHUNK_BYTES * 2 + 17)
    path.write_bytes(data)
    assert publish.file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_build_ids_sort_by_time_and_are_unique() -> None:
    first = publish.new_build_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    second = publish.new_build_id(datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC))
    assert first.startswith("20260102T030405Z-")
    assert first < second
    assert publish.new_build_id() != publish.new_build_id()


def test_git_commit_never_fails(tmp_path: Path) -> None:
    assert publish.git_commit(tmp_path) is None


def test_profile_sets_duckdb_1x_storage() -> None:
    assert publish.storage_compatibility_version(project_dir()) == V1


def test_bad_vars_are_a_usage_error() -> None:
    with pytest.raises(ValueError, match="mapping"):
        publish.parse_vars("[1, 2]")
    assert publish.parse_vars("{n_segments: 5}") == {"n_segments": 5}


# --------------------------------------------------------------------------- finalize, verify


def info_for(build_id: str) -> BuildInfo:
    now = datetime.now(UTC)
    return BuildInfo(
        build_id,
        now,
        now,
        "f.csv",
        "0" * 64,
        1,
        3,
        3,
        0,
        "m",
        "0.1.0",
        None,
        None,
        "2",
        "{}",
        0.75,
        0.5,
    )


def test_finalize_writes_build_info_checkpointed_in_1x_storage(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", None)
    publish.finalize(database, storage_version=V1, describe=lambda _: info_for("b1"))
    assert not publish.wal_path(database).exists()
    checked = publish.verify(
        database, storage_version=V1, expected_relations={"stg_loans"}, build_id="b1"
    )
    assert checked.relations == {"stg_loans": 3, "build_info": 1}
    assert checked.storage_version == V1


def test_finalize_refuses_counts_that_do_not_reconcile(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", None)
    bad = info_for("b1")
    bad = BuildInfo(**{**bad.__dict__, "rows_in": 5})
    with pytest.raises(BuildError, match="do not reconcile"):
        publish.finalize(database, storage_version=V1, describe=lambda _: bad)


def test_verify_rejects_views(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", "b1", view=True)
    with pytest.raises(BuildError, match=r"views are not allowed.*loans_view"):
        publish.verify(database, storage_version=V1)


def test_verify_rejects_2x_storage(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create table t as select 1 as x")
    with pytest.raises(BuildError, match=r"DuckDB 1\.x readers could not open"):
        publish.verify(database, storage_version=V1)


def test_verify_rejects_missing_relations_wrong_build_and_wal(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", "b1")
    with pytest.raises(BuildError, match="missing from the build: recovery_strategies"):
        publish.verify(database, storage_version=V1, expected_relations={"recovery_strategies"})
    with pytest.raises(BuildError, match="holds build b1, expected b2"):
        publish.verify(database, storage_version=V1, build_id="b2")
    publish.wal_path(database).write_bytes(b"")
    with pytest.raises(BuildError, match="WAL"):
        publish.verify(database, storage_version=V1)


# --------------------------------------------------------------------------- swap, rollback, lock


def test_swap_keeps_previous_and_open_readers_keep_their_build(tmp_path: Path) -> None:
    paths = ServedPaths(tmp_path / "served.duckdb")
    make_database(paths.served, "old", rows=3)
    new = make_database(tmp_path / "new.duckdb", "new", rows=5)
    with duckdb.connect(str(paths.served), read_only=True) as reader:
        assert publish.swap_in(new, paths) == paths.previous
        # The open connection still reads the inode it opened.
        assert reader.execute("select count(*) from stg_loans").fetchone() == (3,)
    assert build_id_of(paths.served) == "new"
    assert build_id_of(paths.previous) == "old"
    assert not new.exists()
    assert not paths.previous_partial.exists()


def test_swap_refuses_when_the_served_file_has_a_wal(tmp_path: Path) -> None:
    paths = ServedPaths(tmp_path / "served.duckdb")
    make_database(paths.served, "old")
    paths.wal.write_bytes(b"x")
    new = make_database(tmp_path / "new.duckdb", "new")
    with pytest.raises(BuildError, match="read-write"):
        publish.swap_in(new, paths)
    paths.wal.unlink()
    assert build_id_of(paths.served) == "old"


def test_rollback_swaps_back_and_forth(tmp_path: Path) -> None:
    served = tmp_path / "served.duckdb"
    paths = ServedPaths(served)
    make_database(served, "b1")
    publish.swap_in(make_database(tmp_path / "b2.duckdb", "b2"), paths)
    first = publish.rollback(served)
    assert (first.restored_build, first.replaced_build) == ("b1", "b2")
    assert (build_id_of(served), build_id_of(paths.previous)) == ("b1", "b2")
    publish.rollback(served)
    assert (build_id_of(served), build_id_of(paths.previous)) == ("b2", "b1")


def test_rollback_without_a_good_previous_leaves_the_served_file(tmp_path: Path) -> None:
    served = tmp_path / "served.duckdb"
    make_database(served, "b1")
    with pytest.raises(BuildError, match="no previous build"):
        publish.rollback(served)
    ServedPaths(served).previous.write_bytes(b"not a database")
    with pytest.raises(BuildError, match="cannot read"):
        publish.rollback(served)
    assert build_id_of(served) == "b1"


def test_lock_allows_one_holder(tmp_path: Path) -> None:
    paths = ServedPaths(tmp_path / "served.duckdb")
    with publish.publish_lock(paths, "first"):
        with pytest.raises(BuildError) as busy, publish.publish_lock(paths, "second"):
            pass
        assert busy.value.exit_code == EXIT_BUSY
        assert "first" in busy.value.reason
    with publish.publish_lock(paths, "third"):
        pass


def test_clean_stale_removes_leftover_build_files_and_old_dirs(tmp_path: Path) -> None:
    paths = ServedPaths(tmp_path / "served.duckdb")
    paths.previous_partial.write_bytes(b"x")
    for number in range(publish.KEEP_BUILD_DIRS + 2):
        directory = paths.builds / f"2026010{number:02d}"
        (directory / "logs").mkdir(parents=True)
        (directory / "logs" / "dbt.log").write_text("log")
        (directory / paths.served.name).write_bytes(b"db")
        (directory / (paths.served.name + ".wal")).write_bytes(b"wal")
    publish.clean_stale(paths)
    left = sorted(paths.builds.iterdir())
    assert len(left) == publish.KEEP_BUILD_DIRS
    assert all((directory / "logs" / "dbt.log").exists() for directory in left)
    assert not list(paths.builds.glob("*/served.duckdb*"))
    assert not paths.previous_partial.exists()


def test_an_internal_error_is_a_short_summary_with_the_traceback_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = served.read_bytes()
    loans = tmp_path / "book.csv"
    loans.write_text("a\n1\n")

    def crash(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(publish, "run_dbt", crash)
    code = publish.build_command(str(loans), str(served), None)
    err = capsys.readouterr().err
    assert code == publish.EXIT_FAILED
    assert err.startswith("build failed at step dbt: internal error: RuntimeError: boom")
    assert "Traceback" not in err
    log = Path(err.split("full log: ", 1)[1].strip())
    assert "Traceback" in log.read_text()
    assert served.read_bytes() == before
