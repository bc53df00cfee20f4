"""The serving package's parts without dbt: input, settings, lock, paths, summaries, swap, recovery.

Each test takes well under a second on tiny files and DuckDB databases;
test_serving.py drives the whole command end to end. Giving a file another
group needs root (CI runs as root; elsewhere those two tests skip). A kill
is simulated by raising an exception that no handler of the package
catches, at the point the pause hook marks or just after a rename: the
names on disk are then exactly what a SIGKILL there leaves.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import importlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loan_recovery import build_info, cli, dbt_results
from loan_recovery.build_info import BuildInfo, utc_now
from loan_recovery.config import project_dir, run_setting_defaults
from loan_recovery.errors import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_USAGE,
    BuildError,
    Interrupted,
    os_error_reason,
)
from loan_recovery.serving import finalize as finalizing
from loan_recovery.serving import loan_book, lock, paths, swap
from loan_recovery.serving.dbt_run import PARSE_STATE, DbtRun, dbt_command, reuse_parse_state
from loan_recovery.serving.failures import (
    check_every_node_passed,
    quarantine_summary,
    summarize_dbt_failure,
    warnings_of,
)
from loan_recovery.serving.loan_book import LoanBook, open_loan_book
from loan_recovery.serving.lock import publish_lock
from loan_recovery.serving.paths import BuildDir, ServedPaths, check_replaceable, make_directory
from loan_recovery.serving.settings import check_duckdb_memory, parse_settings

# The package re-exports the function build(), which hides the module of that name.
building = importlib.import_module("loan_recovery.serving.build")

V1 = "v1.0.0"
NOGROUP = 65534  # nogroup: a group the files here do not start with
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another group needs root")


def info_for(build_id: str, rows: int = 3) -> BuildInfo:
    now = utc_now()
    return BuildInfo(
        build_id=build_id,
        started_at=now,
        finished_at=now,
        input_file="f.csv",
        input_sha256="0" * 64,
        input_bytes=1,
        rows_in=rows,
        rows_clean=rows,
        rows_quarantined=0,
        model_version="m",
        model_mode="trained",
        model_artifact=None,
        project_version="0.1.0",
        git_commit=None,
        dbt_version=None,
        duckdb_version=duckdb.__version__,
    )


def make_database(path: Path, build_id: str | None, rows: int = 3, *, view: bool = False) -> Path:
    """A small served-like file in DuckDB 1.x storage, with build_info when build_id is set."""
    with duckdb.connect(str(path), config={"storage_compatibility_version": V1}) as connection:
        connection.execute("create schema staging")
        connection.execute(
            f"create table staging.stg_loans as select range as loan_id from range({rows})"
        )
        if build_id is not None:
            build_info.write(connection, info_for(build_id, rows))
        if view:
            connection.execute("create view loans_view as select * from staging.stg_loans")
    return path


def build_id_of(path: Path) -> str | None:
    return swap.read_build_id(path)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise runs, no handler cleans up."""


# --------------------------------------------------------------------------- dbt's messages


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


def result(
    unique_id: str, status: str, message: str, started: str = "2026-01-01T00:00:01Z"
) -> dict[str, Any]:
    return {
        "unique_id": unique_id,
        "status": status,
        "message": message,
        "timing": [{"started_at": started}],
    }


def a_loan_book(name: str = "/data/book.csv", fd: int = 7) -> LoanBook:
    """A LoanBook as open_loan_book returns it (the descriptor is never used here)."""
    return LoanBook(Path(name), "csv", fd, "0" * 64, 10, 0, 2)


def test_summary_names_the_file_for_a_reader_error_and_calls_it_bad_input() -> None:
    loans = a_loan_book()
    run = DbtRun(
        1,
        {
            "results": [
                result(
                    "model.loan_recovery.stg_loan_book__checked",
                    "error",
                    "Runtime Error in model x\n  Invalid Input Error: No magic bytes found at "
                    f'end of file "{loans.reader_path}"',
                )
            ]
        },
        "",
    )
    failure = summarize_dbt_failure(run, loans, Path("/srv/bi"))
    assert (failure.step, failure.exit_code) == ("dbt", EXIT_BAD_INPUT)
    # The user's name, never the descriptor path dbt read it through.
    assert failure.reason == "loans_path '/data/book.csv': No magic bytes found at end of file"


def test_summary_prefers_the_projects_own_messages() -> None:
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
    failure = summarize_dbt_failure(run, None, Path("/srv"))
    assert (failure.reason, failure.exit_code) == ("loans_path 'f': bad", EXIT_BAD_INPUT)


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
    failure = summarize_dbt_failure(run, None, Path("/srv"))
    assert failure.exit_code == EXIT_FAILED
    assert failure.reason == (
        "unit test features.wrong_ratio failed: actual differs from expected:"
        " (and 1 more: see the log)"
    )


def test_summary_of_bad_vars_from_on_run_start_is_a_usage_error() -> None:
    output = (
        "\x1b[0m21:44:29  Encountered an error:\n"
        "Compilation Error in operation loan_recovery-on-run-start-0 (./dbt_project.yml)\n"
        "  invalid --vars: legal_threshold must be a number between 0 and 1, got 1.5\n"
    )
    failure = summarize_dbt_failure(DbtRun(2, None, output), None, Path("/srv"))
    assert (
        failure.reason
        == "invalid --vars: legal_threshold must be a number between 0 and 1, got 1.5"
    )
    assert failure.exit_code == EXIT_USAGE


def test_summary_without_run_results_reads_dbt_output() -> None:
    output = "21:44:29  Encountered an error:\nRuntime Error\n  Could not connect to x\n"
    failure = summarize_dbt_failure(DbtRun(2, None, output), None, Path("/srv"))
    assert failure.reason.startswith("dbt stopped (exit 2): ")
    assert failure.exit_code == EXIT_FAILED


def test_summary_of_a_full_disk_names_the_directory() -> None:
    run = DbtRun(1, None, "IO Error: could not write: No space left on device\n")
    assert summarize_dbt_failure(run, None, Path("/srv/bi")).reason == "no space left on /srv/bi"


def test_warnings_are_listed() -> None:
    results = {
        "results": [result("test.p.expression_is_true_stg_loans_x.1", "warn", "Got 1 result")]
    }
    assert warnings_of(results) == ["data test expression_is_true_stg_loans_x: Got 1 result"]


def test_skipped_nodes_block_publishing_but_exposures_do_not() -> None:
    ok = DbtRun(0, {"results": [result("exposure.p.bi", "skipped", "")]}, "")
    check_every_node_passed(ok)
    skipped = DbtRun(0, {"results": [result("model.p.m", "skipped", "")]}, "")
    with pytest.raises(BuildError, match="model m"):
        check_every_node_passed(skipped)
    with pytest.raises(BuildError, match=r"no run_results\.json"):
        check_every_node_passed(DbtRun(0, None, ""))


def test_no_valid_loans_summary(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema staging")
        connection.execute("create table staging.stg_loans (loan_id varchar)")
        connection.execute(
            "create table main.quarantined_loans as select * from (values "
            "('age is not a number'), ('age is not a number; loan_type has an unknown value'))"
            " as t(reject_reason)"
        )
    summary = quarantine_summary(database, "'book.csv'")
    assert summary is not None
    assert summary.startswith("no valid loans: all 2 rows of 'book.csv' quarantined")
    assert "age is not a number (2)" in summary


# --------------------------------------------------------------------------- small facts


def test_build_ids_sort_by_time_and_are_unique() -> None:
    first = paths.new_build_id(datetime(2026, 1, 2, 3, 4, 5))
    second = paths.new_build_id(datetime(2026, 1, 2, 3, 4, 6))
    assert first.startswith("20260102T030405Z-")
    assert paths.BUILD_ID.match(first)
    assert first < second
    assert paths.new_build_id() != paths.new_build_id()


def test_utc_now_is_naive_utc() -> None:
    now = utc_now()
    assert now.tzinfo is None
    assert abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


def test_git_commit_never_fails(tmp_path: Path) -> None:
    assert building.git_commit(tmp_path) is None


def test_profile_sets_duckdb_1x_storage() -> None:
    assert finalizing.storage_compatibility_version(project_dir()) == V1


def test_build_file_has_a_fixed_name_whatever_the_served_name(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "o'neil {{x}}.duckdb")
    directory = BuildDir(served.builds / "20260101T000000Z-abcdef")
    assert directory.database.name == paths.BUILD_FILE_NAME == "loan_recovery.duckdb"
    assert directory.database.parent.parent == tmp_path / "o'neil {{x}}.duckdb.builds"
    assert served.previous_partial.name == "o'neil {{x}}.duckdb.previous.partial"
    assert served.partials == (served.previous_partial, served.rollback_partial)


def test_served_path_is_absolute_and_keeps_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = make_database(tmp_path / "real.duckdb", "b1")
    (tmp_path / "link.duckdb").symlink_to(real)
    monkeypatch.chdir(tmp_path)
    assert paths.served_path("link.duckdb") == Path.cwd() / "link.duckdb"
    assert paths.served_path("link.duckdb").is_symlink()
    monkeypatch.setenv("LOAN_RECOVERY_DB", "env.duckdb")
    assert paths.served_path() == Path.cwd() / "env.duckdb"


def test_build_info_round_trip_and_other_columns_read_as_none(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    info = info_for("b1")
    with duckdb.connect(str(database)) as connection:
        build_info.write(connection, info)
        assert build_info.read(connection) == info
        connection.execute("alter table main.build_info add column legal_threshold double")
        assert build_info.read(connection) is None


def test_dbt_gets_only_the_opened_loan_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file named in the caller's environment is never what dbt reads.
    monkeypatch.setenv("LOAN_RECOVERY_LOANS_FILE", "/etc/passwd")
    monkeypatch.setenv("LOAN_RECOVERY_LOANS_NAME", "x")
    directory = BuildDir(tmp_path / "b")
    command, environment = dbt_command(directory, tmp_path, {"n_segments": 5}, None)
    assert not any(key.startswith("LOAN_RECOVERY_LOANS_") for key in environment)
    # dbt runs in the build directory, under one name for every build (a saved parse holds).
    assert directory.root / environment["LOAN_RECOVERY_DB"] == directory.database
    assert (
        environment["LOAN_RECOVERY_DB"]
        == dbt_command(BuildDir(tmp_path / "c"), tmp_path, {}, None)[1]["LOAN_RECOVERY_DB"]
    )
    assert command[command.index("--vars") + 1] == json.dumps({"n_segments": 5})
    assert "--vars" not in dbt_command(directory, tmp_path, {}, None)[0]
    _, environment = dbt_command(directory, tmp_path, {}, a_loan_book("/d/b[1].csv", 9))
    assert environment["LOAN_RECOVERY_LOANS_FILE"] == "/proc/self/fd/9"
    assert environment["LOAN_RECOVERY_LOANS_NAME"] == "/d/b[1].csv"
    assert environment["LOAN_RECOVERY_LOANS_FORMAT"] == "csv"


def test_reuse_parse_state_copies_the_newest_real_file_and_never_fails_the_build(
    tmp_path: Path,
) -> None:
    older, newer, linked = (BuildDir(tmp_path / name) for name in ("a", "b", "c"))
    for build, text in ((older, b"older"), (newer, b"newer")):
        build.target.mkdir(parents=True)
        (build.target / PARSE_STATE).write_bytes(text)
    # A link is never followed, even to a parse of ours.
    linked.target.mkdir(parents=True)
    (linked.target / PARSE_STATE).symlink_to(older.target / PARSE_STATE)
    here = BuildDir(tmp_path / "d")
    here.root.mkdir()
    assert reuse_parse_state(here, [older.root, newer.root, linked.root]) == (
        newer.target / PARSE_STATE
    )
    assert (here.target / PARSE_STATE).read_bytes() == b"newer"
    # A copy that fails leaves dbt to parse the project itself.
    blocked = BuildDir(tmp_path / "e")
    blocked.root.mkdir()
    blocked.target.write_text("a file where the target directory goes")
    assert reuse_parse_state(blocked, [older.root]) is None
    assert reuse_parse_state(BuildDir(tmp_path / "f"), []) is None


# --------------------------------------------------------------------------- os_error_reason


def test_os_error_reason_full_disk_names_the_directory(tmp_path: Path) -> None:
    on_file = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "b.duckdb"))
    assert os_error_reason(on_file) == f"no space left on {tmp_path}"
    on_directory = OSError(errno.ENOSPC, "No space left on device", str(tmp_path))
    assert os_error_reason(on_directory) == f"no space left on {tmp_path}"
    without_name = OSError(errno.ENOSPC, "No space left on device")
    assert os_error_reason(without_name, tmp_path / "x.log") == f"no space left on {tmp_path}"


def test_os_error_reason_read_only_and_permission() -> None:
    read_only = OSError(errno.EROFS, "Read-only file system", "/srv/bi/x.duckdb")
    assert os_error_reason(read_only) == "/srv/bi/x.duckdb is on a read-only file system"
    denied = PermissionError(errno.EACCES, "Permission denied", "/srv/bi/x.duckdb")
    assert os_error_reason(denied) == "permission denied: /srv/bi/x.duckdb"
    assert os_error_reason(OSError(errno.EPERM, "x"), "/srv/bi") == "permission denied: /srv/bi"
    assert os_error_reason(OSError(errno.EIO, "I/O error", "/d/f")) == "/d/f: I/O error"
    for reason in (os_error_reason(read_only), os_error_reason(denied)):
        assert "\n" not in reason


# --------------------------------------------------------------------------- parse_settings


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{legal_treshold: 0.8}", "unknown setting 'legal_treshold'"),
        ("{reference: {loan_book_columns: [a]}}", "may not override 'reference'"),
        ("{legal_threshold: high}", "legal_threshold must be a number"),
        ("{legal_threshold: '0.8'}", "legal_threshold must be a number"),
        ("{n_segments: 4.5}", "n_segments must be a whole number"),
        ("{n_segments: true}", "n_segments must be a whole number"),
        ("{legal_threshold: true}", "legal_threshold must be a number"),
        ("{loans_path: 5}", "loans_path must be a file path"),
        ("[1, 2]", "must be a YAML mapping"),
        ("5", "must be a YAML mapping"),
        ("{n_segments: [", "not valid YAML"),
    ],
)
def test_bad_settings_are_a_usage_error(text: str, match: str) -> None:
    with pytest.raises(BuildError, match=match) as refused:
        parse_settings(text)
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize("value", ["lots", "", "{{ 7 * 7 }}", "200%", "4"])
def test_a_duckdb_memory_limit_duckdb_cannot_read_is_a_usage_error(value: str) -> None:
    with pytest.raises(BuildError, match="LOAN_RECOVERY_DUCKDB_MEMORY=") as refused:
        check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize("value", ["4GB", "512MiB", "40%"])
def test_a_readable_duckdb_memory_limit_passes(value: str) -> None:
    check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    check_duckdb_memory({})


def test_text_settings_may_not_hold_templates() -> None:
    defaults = {"model_name": "forest-1", "n_segments": 4}
    assert parse_settings("{model_name: forest-2.a_b}", defaults) == (
        {"model_name": "forest-2.a_b"},
        None,
    )
    for text in ("{model_name: '{{ run_query(1) }}'}", "{model_name: 'a b'}"):
        with pytest.raises(BuildError, match="may hold only letters") as refused:
            parse_settings(text, defaults)
        assert refused.value.exit_code == EXIT_USAGE


def test_good_settings_and_loans_path_apart() -> None:
    assert parse_settings(None) == ({}, None)
    assert parse_settings("") == ({}, None)
    assert parse_settings("{}") == ({}, None)
    settings, loans_path = parse_settings(
        "{loans_path: '/d/b{{1}}.csv', n_segments: 5, legal_threshold: 1, "
        "settlement_threshold: 0.4}"
    )
    # loans_path names the file, opened by the build: it never reaches dbt's vars.
    assert loans_path == "/d/b{{1}}.csv"
    assert settings == {"n_segments": 5, "legal_threshold": 1, "settlement_threshold": 0.4}
    # Every per-run setting of dbt_project.yml may be given, with its default.
    every = {name: value for name, value in run_setting_defaults().items() if name != "loans_path"}
    assert parse_settings(json.dumps(every)) == (every, None)


# --------------------------------------------------------------------------- open_loan_book


def _hangs(call: Callable[[], Any], unblock: Callable[[], None], seconds: float = 10) -> Any:
    """Run ``call``; if it has not returned in ``seconds``, unblock it and fail."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unblock()
        thread.join(5)
        pytest.fail(f"{call} blocked for {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _unblock_fifo(fifo: Path) -> Callable[[], None]:
    def unblock() -> None:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    return unblock


def refused(given: Path, problem: str) -> BuildError:
    """open_loan_book(given) must refuse: step input, exit 3, one line naming the file."""
    with pytest.raises(BuildError) as caught:
        book = open_loan_book(given)
        book.close()
    failure = caught.value
    assert (failure.step, failure.exit_code) == ("input", EXIT_BAD_INPUT), failure
    assert failure.reason.startswith(f"loans_path '{given}': "), failure.reason
    assert problem in failure.reason, failure.reason
    assert "\n" not in failure.reason
    return failure


CSV = b"Borrower_ID,Age\nB1,40\nB2,41\n"


def test_missing_file_directory_and_symlink_problems(tmp_path: Path) -> None:
    refused(tmp_path / "absent.csv", "no such file")
    (tmp_path / "dir.csv").mkdir()
    refused(tmp_path / "dir.csv", "a directory")
    (tmp_path / "loop_a.csv").symlink_to(tmp_path / "loop_b.csv")
    (tmp_path / "loop_b.csv").symlink_to(tmp_path / "loop_a.csv")
    refused(tmp_path / "loop_a.csv", "a symbolic link loop")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    refused(tmp_path / "dangling.csv", "a symbolic link whose target does not exist")


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    _hangs(lambda: refused(fifo, "a FIFO, not a loan book file"), _unblock_fifo(fifo))


def test_the_extension_is_judged_on_the_name_given(tmp_path: Path) -> None:
    real_csv = tmp_path / "real.csv"
    real_csv.write_bytes(CSV)
    (tmp_path / "x.txt").symlink_to(real_csv)
    refused(tmp_path / "x.txt", "unsupported file type")
    refused(tmp_path / "book.xlsx", "unsupported file type")  # judged before opening
    text = tmp_path / "real.txt"
    text.write_bytes(CSV)
    (tmp_path / "x.csv").symlink_to(text)
    book = open_loan_book(tmp_path / "x.csv")
    try:
        assert book.name == tmp_path / "x.csv"  # the name given, not the link's target
        assert (book.format, book.sha256, book.lines) == ("csv", hashlib.sha256(CSV).hexdigest(), 3)
    finally:
        book.close()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("le.csv", b"\xff\xfe" + "Borrower_ID,Age\n".encode("utf-16-le"), "is UTF-16 text"),
        ("be.csv", b"\xfe\xff" + "Borrower_ID,Age\n".encode("utf-16-be"), "is UTF-16 text"),
        ("bom.csv", "Borrower_ID,Age\nB1,40\n".encode("utf-16"), "is UTF-16 text"),
        # mtime=0: the same bytes on every xdist worker, which must collect identical ids
        ("zipped.csv", gzip.compress(CSV, mtime=0), "is gzip-compressed"),
        ("book.parquet", CSV, "is not Parquet"),
        ("nul.csv", b"B\x00o\x00r\x00", "NUL bytes"),
    ],
)
def test_bytes_that_are_not_a_loan_book_are_refused(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    refused(path, problem)


def _lines_of(data: bytes) -> int:
    """Lines as DuckDB's line reader ends them (LF, CRLF, lone CR), independently counted."""
    return len(data.splitlines())


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"h\n1\n2\n", 3),
        (b"h\r\n1\r\n2\r\n", 3),
        (b"h\r1\r2\r", 3),
        (b"h\n1\n2", 3),
        (b"h\r\n1\r\n2", 3),
        (b"h\r\n1\r2\n3", 4),
        (b"h\n\n1\n", 3),  # a blank line is a line (and a row) of its own
        (b"h\r\r\n1\n", 3),
    ],
)
def test_a_good_csv_is_hashed_and_its_lines_counted(
    tmp_path: Path, data: bytes, lines: int
) -> None:
    assert _lines_of(data) == lines
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert book.sha256 == hashlib.sha256(data).hexdigest()
        assert (book.lines, book.size, book.format) == (lines, len(data), "csv")
        # dbt reads the very descriptor that was hashed.
        assert Path(book.reader_path).read_bytes() == data
        assert not book.changed()
    finally:
        book.close()


@pytest.mark.parametrize(
    "boundary",
    [
        b"\r\n",  # a CRLF split between two chunks is one line end
        b"\r\r",  # two lone CRs, the second starting a chunk
        b"\n\n",
        b"x\r",  # a lone CR ending a chunk, the next chunk's data after it
    ],
)
def test_line_count_across_the_read_chunk_boundary(tmp_path: Path, boundary: bytes) -> None:
    chunk = loan_book.CHUNK_BYTES
    assert chunk == 1 << 20
    header = b"Borrower_ID,Age\r\n"
    filler = b"B1,40\r\n" * ((chunk - len(header)) // 7)
    body = header + filler
    body += b"a" * (chunk - 1 - len(body))
    data = body + boundary + b"B2,41\r\n" * 3 + b"B3,42"
    assert data[chunk - 1 : chunk + 1] == boundary  # the pair straddles bytes chunk-1 and chunk
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert book.lines == _lines_of(data)
        assert book.sha256 == hashlib.sha256(data).hexdigest()
    finally:
        book.close()


def test_sha256_is_streamed_and_exact_and_parquet_has_no_line_count(tmp_path: Path) -> None:
    data = b"PAR1" + os.urandom(loan_book.CHUNK_BYTES * 2 + 17)
    path = tmp_path / "big.parquet"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert (book.sha256, book.size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert (book.format, book.lines) == ("parquet", None)
    finally:
        book.close()


def test_a_change_in_place_after_hashing_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(CSV)
    book = open_loan_book(path)
    try:
        with path.open("ab") as handle:
            handle.write(b"B3,42\n")
        assert book.changed()
    finally:
        book.close()


def test_a_refused_loan_book_fails_the_build_at_input_with_a_log(tmp_path: Path) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = digest(served)
    with pytest.raises(BuildError) as caught:
        building.build(loans=tmp_path / "absent.csv", served=served)
    failure = caught.value
    assert (failure.step, failure.exit_code) == ("input", EXIT_BAD_INPUT)
    assert failure.log is not None
    assert "FAILED at input: loans_path" in failure.log.read_text()
    assert digest(served) == before
    with pytest.raises(BuildError, match="give the loan book once") as twice:
        building.build(loans=tmp_path / "a.csv", served=served, loans_path_var="b.csv")
    assert twice.value.exit_code == EXIT_USAGE


# --------------------------------------------------------------------------- finalize, verify


def test_finalize_writes_build_info_checkpointed_in_1x_storage(tmp_path: Path) -> None:
    database = make_database(tmp_path / "b.duckdb", None)
    finalizing.finalize(database, storage_version=V1, describe=lambda _: info_for("b1"))
    assert not paths.wal_path(database).exists()
    checked = finalizing.verify(
        database, storage_version=V1, expected_relations={"staging.stg_loans"}, build_id="b1"
    )
    assert checked.relations == {"staging.stg_loans": 3, "main.build_info": 1}
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
    with pytest.raises(BuildError, match="holds build b1, expected b2"):
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


# --------------------------------------------------------------------------- check_replaceable


def assert_refused_as_db(path: Path, problem: str) -> None:
    before = path.lstat()
    content = digest(path) if path.is_file() else None
    with pytest.raises(BuildError, match=problem) as caught:
        check_replaceable(path, "--db")
    assert (caught.value.step, caught.value.exit_code) == ("db", EXIT_USAGE)
    assert "\n" not in caught.value.reason
    after = path.lstat()
    assert (after.st_ino, after.st_mode, after.st_size) == (
        before.st_ino,
        before.st_mode,
        before.st_size,
    )
    if content is not None:
        assert digest(path) == content


def test_check_replaceable_refuses_what_is_not_a_build(tmp_path: Path) -> None:
    (tmp_path / "dir.duckdb").mkdir()
    assert_refused_as_db(tmp_path / "dir.duckdb", "is a directory")
    os.mkfifo(tmp_path / "fifo.duckdb")
    fifo = tmp_path / "fifo.duckdb"
    _hangs(lambda: assert_refused_as_db(fifo, "is not a regular file"), _unblock_fifo(fifo))
    (tmp_path / "loans.csv").write_bytes(CSV)
    assert_refused_as_db(tmp_path / "loans.csv", "not a loan-recovery build")
    (tmp_path / "empty.duckdb").write_bytes(b"")
    assert_refused_as_db(tmp_path / "empty.duckdb", "not a loan-recovery build")
    with duckdb.connect(str(tmp_path / "theirs.duckdb")) as connection:
        connection.execute("create table sales as select 1 as amount")
    assert_refused_as_db(tmp_path / "theirs.duckdb", "no DuckDB build_info table")
    (tmp_path / "link.duckdb").symlink_to(tmp_path / "loans.csv")
    assert_refused_as_db(tmp_path / "link.duckdb", "not a loan-recovery build")


def test_check_replaceable_allows_absent_or_a_build(tmp_path: Path) -> None:
    check_replaceable(tmp_path / "absent.duckdb", "--db")
    build = make_database(tmp_path / "served.duckdb", "b1")
    check_replaceable(build, "--db")
    (tmp_path / "link.duckdb").symlink_to(build)
    check_replaceable(tmp_path / "link.duckdb", "--db")


def test_a_build_refuses_a_db_that_is_not_a_build_before_anything(tmp_path: Path) -> None:
    served = tmp_path / "loans.csv"
    served.write_bytes(CSV)
    with pytest.raises(BuildError, match="not a loan-recovery build") as caught:
        building.build(loans=served, served=served)
    assert caught.value.step == "db"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loans.csv"]
    assert served.read_bytes() == CSV


# --------------------------------------------------------------------------- make_directory


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    original = os.umask(0o022)
    os.umask(original)

    def set_umask(value: int) -> None:
        os.umask(value)

    try:
        yield set_umask
    finally:
        os.umask(original)


def test_make_directory_is_never_group_or_world_writable(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0)
    target = tmp_path / "a" / "b" / "c"
    make_directory(target)
    for directory in (tmp_path / "a", tmp_path / "a" / "b", target):
        mode = stat.S_IMODE(directory.stat().st_mode)
        assert mode & 0o022 == 0, oct(mode)
        assert mode == paths.DIRECTORY_MODE == 0o750, oct(mode)  # owner and group only
    make_directory(target)  # already there: fine
    umask(0o077)
    make_directory(tmp_path / "private")
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700  # the umask still narrows


def test_make_directory_leaves_existing_parents_alone(
    tmp_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    make_directory(shared / "mine")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "mine").stat().st_mode) == 0o750


# --------------------------------------------------------------------------- lock


def lock_paths(tmp_path: Path) -> ServedPaths:
    return ServedPaths(tmp_path / "served.duckdb")


def refuses_lock(served: ServedPaths, problem: str, code: int = EXIT_USAGE) -> BuildError:
    with pytest.raises(BuildError, match=problem) as caught, publish_lock(served, "test"):
        pytest.fail("the lock was taken")
    assert (caught.value.step, caught.value.exit_code) == ("lock", code)
    return caught.value


@pytest.mark.parametrize("target", ["dangling", "empty", "holder"])
def test_a_symlinked_lock_is_refused_and_its_target_unchanged(tmp_path: Path, target: str) -> None:
    served = lock_paths(tmp_path)
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    if target == "empty":
        victim.write_bytes(b"")
    elif target == "holder":
        victim.write_bytes(b"pid 1, build x\n")
    served.lock.symlink_to(victim)
    before = victim.read_bytes() if victim.exists() else None
    refuses_lock(served, "is a symbolic link; refusing to follow it")
    assert served.lock.is_symlink()
    assert (victim.read_bytes() if victim.exists() else None) == before


def test_a_hard_linked_lock_is_refused_and_unchanged(tmp_path: Path) -> None:
    served = lock_paths(tmp_path)
    other = tmp_path / "someone_elses_file"
    other.write_bytes(b"pid 1, looks like a lock\n")
    os.link(other, served.lock)
    refuses_lock(served, "not a lock file of loan-recovery's")
    assert other.read_bytes() == b"pid 1, looks like a lock\n"


@pytest.mark.parametrize("content", [b"my notes\n", b"pi", b"\n" * 300, b"PID 1"])
def test_a_foreign_lock_file_is_refused_and_unchanged(tmp_path: Path, content: bytes) -> None:
    served = lock_paths(tmp_path)
    served.lock.write_bytes(content)
    refuses_lock(served, "not a lock file of loan-recovery's")
    assert served.lock.read_bytes() == content


def test_a_lock_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    served = lock_paths(tmp_path)
    served.lock.mkdir()
    refuses_lock(served, "served.duckdb.lock")


def test_a_lock_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    # Fails on the current code: os.pread on the FIFO raises ESPIPE before the
    # S_ISREG check, so an OSError (a traceback from the command) escapes
    # instead of the one-line refusal; see the report.
    served = lock_paths(tmp_path)
    os.mkfifo(served.lock)
    _hangs(lambda: refuses_lock(served, "not a lock file"), _unblock_fifo(served.lock))
    assert stat.S_ISFIFO(served.lock.lstat().st_mode)


def test_the_holder_line_is_padded_and_never_truncates(tmp_path: Path) -> None:
    served = lock_paths(tmp_path)
    with publish_lock(served, "first holder " + "x" * 300):
        pass
    long = served.lock.read_bytes()
    assert len(long) == lock.HOLDER_BYTES and long.endswith(b"\n")
    with publish_lock(served, "second"):
        held = served.lock.read_bytes()
    # The shorter line overwrote the longer one completely: nothing of it is left.
    assert held == f"pid {os.getpid()}, second".ljust(lock.HOLDER_BYTES - 1).encode() + b"\n"
    assert b"x" not in held
    # Longer than a holder line (written by some future version): never truncated.
    tail = b"T" * 100
    served.lock.write_bytes(b"pid 1, old".ljust(lock.HOLDER_BYTES, b" ") + tail)
    inode = served.lock.stat().st_ino
    with publish_lock(served, "third"):
        pass
    after = served.lock.read_bytes()
    assert after[lock.HOLDER_BYTES :] == tail
    assert after.startswith(f"pid {os.getpid()}, third".encode())
    assert served.lock.stat().st_ino == inode  # the same file, never replaced or deleted


def test_lock_allows_one_holder(tmp_path: Path) -> None:
    served = lock_paths(tmp_path)
    with publish_lock(served, "first"):
        busy = refuses_lock(served, "another build or rollback holds", EXIT_BUSY)
        assert f"pid {os.getpid()}, first" in busy.reason
    with publish_lock(served, "third"):
        pass


HOLDER = r"""
import sys, time
from pathlib import Path
from loan_recovery.serving.lock import publish_lock
from loan_recovery.serving.paths import ServedPaths
with publish_lock(ServedPaths(Path(sys.argv[1])), "build in another process"):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_two_processes_exclude_each_other(tmp_path: Path) -> None:
    served = lock_paths(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(served.served)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        busy = refuses_lock(served, "another build or rollback holds", EXIT_BUSY)
        assert f"pid {holder.pid}, build in another process" in busy.reason
        # A rollback waits its turn the same way.
        with pytest.raises(BuildError) as rollback:
            building.rollback(make_database(served.served, "b1"))
        assert rollback.value.exit_code == EXIT_BUSY
    finally:
        holder.communicate("done\n", timeout=30)
    assert holder.returncode == 0
    with publish_lock(served, "after"):
        pass


# --------------------------------------------------------------------------- inherit_access


@as_root
def test_the_new_build_takes_the_served_files_mode_and_group(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "old")
    os.chmod(served.served, 0o640)
    os.chown(served.served, -1, NOGROUP)
    new = make_database(tmp_path / "new.duckdb", "new")
    os.chmod(new, 0o644)
    assert new.stat().st_gid != NOGROUP
    swap.inherit_access(new, served.served)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640
    assert new.stat().st_gid == NOGROUP
    # And so does what is published.
    newer = make_database(tmp_path / "newer.duckdb", "newer")
    os.chmod(newer, 0o644)
    swap.swap_in(newer, served)
    published = served.served.stat()
    assert (stat.S_IMODE(published.st_mode), published.st_gid) == (0o640, NOGROUP)
    assert build_id_of(served.served) == "newer"


def test_a_first_build_keeps_its_own_mode(tmp_path: Path) -> None:
    new = make_database(tmp_path / "new.duckdb", "new")
    os.chmod(new, 0o604)
    gid = new.stat().st_gid
    swap.inherit_access(new, tmp_path / "absent.duckdb")
    assert (stat.S_IMODE(new.stat().st_mode), new.stat().st_gid) == (0o604, gid)


@as_root
def test_a_group_that_cannot_be_given_stops_the_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "old")
    os.chown(served.served, -1, NOGROUP)
    before = digest(served.served)
    new = make_database(tmp_path / "new.duckdb", "new")

    def not_in_group(*_: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(swap.os, "chown", not_in_group)
    with pytest.raises(BuildError, match="cannot give the new build the group") as caught:
        swap.swap_in(new, served)
    assert caught.value.step == "publish"
    assert digest(served.served) == before
    assert not served.previous.exists()


# ------------------------------------------------------------------- swap, recover, rollback


def test_swap_keeps_previous_and_open_readers_keep_their_build(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "old", rows=3)
    new = make_database(tmp_path / "new.duckdb", "new", rows=5)
    with duckdb.connect(str(served.served), read_only=True) as reader:
        assert swap.swap_in(new, served) == served.previous
        # The open connection still reads the inode it opened.
        assert reader.execute("select count(*) from staging.stg_loans").fetchone() == (3,)
    assert build_id_of(served.served) == "new"
    assert build_id_of(served.previous) == "old"
    assert not new.exists()
    assert not any(partial.exists() for partial in served.partials)


def test_first_publish_has_no_previous(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    assert swap.swap_in(make_database(tmp_path / "new.duckdb", "new"), served) is None
    assert build_id_of(served.served) == "new"
    assert not served.previous.exists()


def test_swap_refuses_when_the_served_file_has_a_wal(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "old")
    served.wal.write_bytes(b"x")
    new = make_database(tmp_path / "new.duckdb", "new")
    with pytest.raises(BuildError, match="read-write"):
        swap.swap_in(new, served)
    served.wal.unlink()
    assert build_id_of(served.served) == "old"


def test_swap_refuses_a_previous_that_is_not_a_build(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "old")
    served.previous.write_bytes(CSV)
    with pytest.raises(BuildError, match=r"the previous build .* is not a loan-recovery build"):
        swap.swap_in(make_database(tmp_path / "new.duckdb", "new"), served)
    assert served.previous.read_bytes() == CSV
    assert build_id_of(served.served) == "old"


@pytest.fixture
def two_builds(tmp_path: Path) -> ServedPaths:
    """b2 served, b1 as the previous build: the state after two publishes."""
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "b1")
    swap.swap_in(make_database(tmp_path / "b2.duckdb", "b2"), served)
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b2", "b1")
    return served


def state(served: ServedPaths) -> dict[str, str | None]:
    """Which build each name holds (None: absent)."""
    names = {
        "served": served.served,
        "previous": served.previous,
        "previous.partial": served.previous_partial,
        "rollback.partial": served.rollback_partial,
    }
    return {key: build_id_of(path) if path.exists() else None for key, path in names.items()}


def kill_at_pause(monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    """SIGKILL where the documented pause hook ``step`` sleeps."""

    def pause(name: str, detail: str = "") -> None:
        if name == step:
            raise Killed(name)

    monkeypatch.setattr(swap, "pause_point", pause)


def kill_after_first_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL just after the first os.replace of a swap (before its directory fsync)."""

    def fsync(_: Path) -> None:
        raise Killed("after the first rename")

    monkeypatch.setattr(swap, "fsync_dir_quietly", fsync)


def test_kill_after_linking_the_served_build_then_recover_and_roll_back(
    two_builds: ServedPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    kill_at_pause(monkeypatch, "swap")
    with pytest.raises(Killed):
        swap.swap_in(make_database(tmp_path / "b3.duckdb", "b3"), served)
    monkeypatch.undo()
    # Step 1 done: the partial is a second name of the served build.
    assert state(served) == {
        "served": "b2",
        "previous": "b1",
        "previous.partial": "b2",
        "rollback.partial": None,
    }
    assert served.previous_partial.stat().st_ino == served.served.stat().st_ino
    actions = swap.recover(served)
    assert actions == ["removed served.duckdb.previous.partial (a second name of the served build)"]
    assert state(served) == {
        "served": "b2",
        "previous": "b1",
        "previous.partial": None,
        "rollback.partial": None,
    }
    assert swap.recover(served) == []
    result = building.rollback(served.served)
    assert (result.restored_build, result.replaced_build) == ("b1", "b2")
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b1", "b2")


def test_kill_after_publishing_then_recover_keeps_the_replaced_build(
    two_builds: ServedPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    kill_after_first_rename(monkeypatch)
    with pytest.raises(Killed):
        swap.swap_in(make_database(tmp_path / "b3.duckdb", "b3"), served)
    monkeypatch.undo()
    # Step 2 done: b3 is published; the partial holds the build served before it.
    assert state(served) == {
        "served": "b3",
        "previous": "b1",
        "previous.partial": "b2",
        "rollback.partial": None,
    }
    actions = swap.recover(served)
    assert actions == ["kept served.duckdb.previous.partial (build b2) as served.duckdb.previous"]
    assert state(served) == {
        "served": "b3",
        "previous": "b2",
        "previous.partial": None,
        "rollback.partial": None,
    }
    result = building.rollback(served.served)
    assert (result.restored_build, result.replaced_build) == ("b2", "b3")
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b2", "b3")


def test_the_next_build_recovers_before_anything_else(
    two_builds: ServedPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    kill_after_first_rename(monkeypatch)
    with pytest.raises(Killed):
        swap.swap_in(make_database(tmp_path / "b3.duckdb", "b3"), served)
    monkeypatch.undo()

    def no_dbt(*_: object) -> DbtRun:
        raise RuntimeError("dbt is not run in unit tests")

    monkeypatch.setattr(building, "run_dbt", no_dbt)
    loans = tmp_path / "book.csv"
    loans.write_bytes(CSV)
    with pytest.raises(BuildError, match="internal error") as caught:
        building.build(loans=loans, served=served.served)
    assert state(served)["previous"] == "b2"
    assert not served.previous_partial.exists()
    assert caught.value.log is not None
    assert "kept served.duckdb.previous.partial (build b2)" in caught.value.log.read_text()


def test_first_publish_killed_after_linking_nothing_to_keep(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "b1")
    os.link(served.served, served.previous_partial)
    swap.recover(served)
    assert state(served) == {
        "served": "b1",
        "previous": None,
        "previous.partial": None,
        "rollback.partial": None,
    }
    with pytest.raises(BuildError, match="no previous build"):
        building.rollback(served.served)


def test_a_partial_that_is_not_a_build_is_dropped(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    make_database(served.served, "b1")
    make_database(served.previous, "b0")
    served.previous_partial.write_bytes(b"half a copy")
    swap.recover(served)
    assert state(served)["previous"] == "b0"
    assert not served.previous_partial.exists()


def test_rollback_swaps_back_and_forth(two_builds: ServedPaths) -> None:
    served = two_builds
    first = building.rollback(served.served)
    assert (first.restored_build, first.replaced_build) == ("b1", "b2")
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b1", "b2")
    building.rollback(served.served)
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b2", "b1")
    assert not any(partial.exists() for partial in served.partials)


def test_rollback_refuses_a_previous_holding_the_served_build(two_builds: ServedPaths) -> None:
    served = two_builds
    served.previous.unlink()
    os.link(served.served, served.previous)  # e.g. what a kill at the old swap left
    before = digest(served.served)
    with pytest.raises(BuildError) as caught:
        building.rollback(served.served)
    assert caught.value.step == "rollback"
    assert caught.value.reason == (
        f"{served.previous} holds build b2, the one already served: "
        "there is no other build to roll back to"
    )
    assert digest(served.served) == before
    assert state(served)["served"] == "b2"


def test_rollback_without_a_good_previous_leaves_the_served_file(tmp_path: Path) -> None:
    served = tmp_path / "served.duckdb"
    make_database(served, "b1")
    with pytest.raises(BuildError, match="no previous build"):
        building.rollback(served)
    ServedPaths(served).previous.write_bytes(b"not a database")
    with pytest.raises(BuildError, match="cannot read"):
        building.rollback(served)
    assert build_id_of(served) == "b1"


def test_kill_inside_a_rollback_after_the_link_recovers(
    two_builds: ServedPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    kill_at_pause(monkeypatch, "rollback")
    with pytest.raises(Killed):
        building.rollback(served.served)
    monkeypatch.undo()
    assert state(served) == {
        "served": "b2",
        "previous": "b1",
        "previous.partial": None,
        "rollback.partial": "b2",
    }
    assert swap.recover(served) == [
        "removed served.duckdb.rollback.partial (a second name of the served build)"
    ]
    assert state(served)["previous"] == "b1"
    result = building.rollback(served.served)
    assert (result.restored_build, result.replaced_build) == ("b1", "b2")
    assert (build_id_of(served.served), build_id_of(served.previous)) == ("b1", "b2")


def test_kill_inside_a_rollback_after_the_first_rename_recovers(
    two_builds: ServedPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    kill_after_first_rename(monkeypatch)
    with pytest.raises(Killed):
        building.rollback(served.served)
    monkeypatch.undo()
    # b1 is served again; b2's only other name is the rollback partial.
    assert state(served) == {
        "served": "b1",
        "previous": None,
        "previous.partial": None,
        "rollback.partial": "b2",
    }
    # The next rollback first completes this one (b2 becomes previous), then rolls back to it.
    result = building.rollback(served.served)
    assert (result.restored_build, result.replaced_build) == ("b2", "b1")
    assert state(served) == {
        "served": "b2",
        "previous": "b1",
        "previous.partial": None,
        "rollback.partial": None,
    }


def test_clean_stale_removes_leftover_build_files_and_old_dirs(tmp_path: Path) -> None:
    served = ServedPaths(tmp_path / "served.duckdb")
    names = [f"202601{number:02d}T000000Z-abcdef" for number in range(swap.KEEP_BUILD_DIRS + 2)]
    for name in names:
        directory = served.builds / name
        (directory / "logs").mkdir(parents=True)
        (directory / "logs" / "dbt.log").write_text("log")
        (directory / paths.BUILD_FILE_NAME).write_bytes(b"db")
        (directory / (paths.BUILD_FILE_NAME + ".wal")).write_bytes(b"wal")
        (directory / "loan_recovery.duckdb.tmp").mkdir()
    # Not a build directory: never touched.
    (served.builds / "notes").mkdir()
    (served.builds / "notes" / "mine.duckdb").write_bytes(b"keep")
    served.previous_partial.write_bytes(b"x")  # recover's business, not clean_stale's
    current = served.builds / names[-1]
    swap.clean_stale(served, current=current)
    left = sorted(entry.name for entry in served.builds.iterdir() if entry.name != "notes")
    assert left == names[-swap.KEEP_BUILD_DIRS :]
    for name in left[:-1]:
        # Older builds keep their logs only.
        assert {entry.name for entry in (served.builds / name).iterdir()} == {"logs"}, name
        assert (served.builds / name / "logs" / "dbt.log").exists()
    # The running build's own directory is left as it is.
    assert {entry.name for entry in current.iterdir()} == {
        "logs",
        "loan_recovery.duckdb",
        "loan_recovery.duckdb.wal",
        "loan_recovery.duckdb.tmp",
    }
    assert (served.builds / "notes" / "mine.duckdb").read_bytes() == b"keep"
    assert served.previous_partial.exists()


# --------------------------------------------------------------------------- the command line


def test_an_internal_error_is_a_short_summary_with_the_traceback_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = served.read_bytes()
    loans = tmp_path / "book.csv"
    loans.write_text("a\n1\n")

    def crash(*_: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(building, "run_dbt", crash)
    code = cli.main(["build", "--loans", str(loans), "--db", str(served)])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert err.startswith("build failed at step dbt: internal error: RuntimeError: boom")
    assert "Traceback" not in err
    assert f"nothing published; served file unchanged: {served}" in err
    log = Path(err.split("full log: ", 1)[1].strip())
    assert "Traceback" in log.read_text()
    assert served.read_bytes() == before


def test_an_interrupted_build_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    loans = tmp_path / "book.csv"
    loans.write_bytes(CSV)

    def terminated(*_: object) -> None:
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(building, "run_dbt", terminated)
    assert cli.main(["build", "--loans", str(loans), "--db", str(served)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("build failed at step dbt: interrupted by SIGTERM")


def test_bad_vars_stop_the_command_before_any_file_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served.duckdb"
    code = cli.main(["build", "--db", str(served), "--vars", "{n_segments: five}"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        "build failed at step settings: --vars: n_segments must be a whole number like its "
        "default 4, got 'five'"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_signal_during_the_publish_renames_waits_until_both_are_done() -> None:
    def interrupt(signum: int, _frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        with swap.renames_together() as arrived:
            os.kill(os.getpid(), signal.SIGTERM)
            done_inside = True  # reached: the signal is held, not raised here
        assert done_inside
        assert arrived == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
