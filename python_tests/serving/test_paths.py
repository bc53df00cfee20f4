"""paths: build ids, where each file lives, what --db may replace, and directory modes."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from conftest import sha256
from loan_recovery.config import project_dir
from loan_recovery.errors import EXIT_USAGE, BuildError
from loan_recovery.serving import paths, swap
from loan_recovery.serving.paths import BuildDir, ServedPaths, check_replaceable, make_directory
from serving.helpers import CSV, build_id_of, hangs, make_database, unblock_fifo


def test_build_ids_sort_by_time_and_are_unique() -> None:
    first = paths.new_build_id(datetime(2026, 1, 2, 3, 4, 5))
    second = paths.new_build_id(datetime(2026, 1, 2, 3, 4, 6))
    assert first.startswith("20260102T030405Z-")
    assert paths.BUILD_ID.match(first)
    assert first < second
    assert paths.new_build_id() != paths.new_build_id()


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


def assert_refused_as_db(path: Path, problem: str) -> None:
    before = path.lstat()
    content = sha256(path) if path.is_file() else None
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
        assert sha256(path) == content


def test_check_replaceable_refuses_what_is_not_a_build(tmp_path: Path) -> None:
    (tmp_path / "dir.duckdb").mkdir()
    assert_refused_as_db(tmp_path / "dir.duckdb", "is a directory")
    os.mkfifo(tmp_path / "fifo.duckdb")
    fifo = tmp_path / "fifo.duckdb"
    hangs(lambda: assert_refused_as_db(fifo, "is not a regular file"), unblock_fifo(fifo))
    (tmp_path / "loans.csv").write_bytes(CSV)
    assert_refused_as_db(tmp_path / "loans.csv", "not a loan-recovery build")
    (tmp_path / "empty.duckdb").write_bytes(b"")
    assert_refused_as_db(tmp_path / "empty.duckdb", "not a loan-recovery build")
    with duckdb.connect(str(tmp_path / "theirs.duckdb")) as connection:
        connection.execute("create table sales as select 1 as amount")
    assert_refused_as_db(tmp_path / "theirs.duckdb", "no DuckDB build_info table")
    (tmp_path / "link.duckdb").symlink_to(tmp_path / "loans.csv")
    assert_refused_as_db(tmp_path / "link.duckdb", "not a loan-recovery build")


def foreign_database(path: Path, *statements: str) -> Path:
    """Someone else's DuckDB file, made of ``statements``."""
    with duckdb.connect(str(path)) as connection:
        for statement in statements:
            connection.execute(statement)
    return path


def test_a_duckdb_file_with_a_build_info_table_is_not_yet_one_of_ours(tmp_path: Path) -> None:
    """Ours means: build_info exactly as BuildInfo, one row, a build id, and our served tables."""
    assert_refused_as_db(
        foreign_database(
            tmp_path / "warehouse.duckdb",
            "create table build_info (build_id varchar, note varchar)",
            "insert into build_info values ('nightly', 'the finance team''s build log')",
            "create table invoices as select range as invoice_id from range(5)",
        ),
        r"not a loan-recovery build \(its build_info is not one loan-recovery writes",
    )
    two_rows = make_database(tmp_path / "two_rows.duckdb", "b1")
    with duckdb.connect(str(two_rows)) as connection:
        connection.execute("insert into main.build_info select * from main.build_info")
    assert_refused_as_db(two_rows, r"its build_info is not one loan-recovery writes")
    named = make_database(tmp_path / "named.duckdb", "b1")
    with duckdb.connect(str(named)) as connection:
        connection.execute("update main.build_info set build_id = 'nightly'")
    assert_refused_as_db(named, r"build_info names build 'nightly', not a loan-recovery build id")
    for table in ("main.run_settings", "staging.stg_loans"):
        missing = make_database(tmp_path / f"without_{table}.duckdb", "b1")
        with duckdb.connect(str(missing)) as connection:
            connection.execute(f"drop table {table}")
        assert_refused_as_db(missing, f"no table {table}")


def test_a_build_served_before_an_upgrade_is_still_ours(tmp_path: Path) -> None:
    """An older build_info (without as_of_date, or run_kind) is replaced; one with a foreign
    column is not."""
    older = make_database(tmp_path / "older.duckdb", "b1")
    with duckdb.connect(str(older)) as connection:
        connection.execute("alter table main.build_info drop column as_of_date")
        connection.execute("alter table main.build_info add column model_artifact varchar")
    check_replaceable(older, "--db")
    before_decision_runs = make_database(tmp_path / "before_decision_runs.duckdb", "b1")
    with duckdb.connect(str(before_decision_runs)) as connection:
        connection.execute("alter table main.build_info drop column run_kind")
    check_replaceable(before_decision_runs, "--db")
    widened = make_database(tmp_path / "widened.duckdb", "b1")
    with duckdb.connect(str(widened)) as connection:
        connection.execute("alter table main.build_info add column owner varchar")
    assert_refused_as_db(widened, r"its build_info is not one loan-recovery writes")


def test_swap_and_rollback_refuse_a_foreign_build_info_file_too(tmp_path: Path) -> None:
    """The publish and the rollback judge the served and previous names by the same check."""
    statements = (
        "create table build_info (build_id varchar)",
        "insert into build_info values ('nightly')",
    )
    served = ServedPaths(tmp_path / "served.duckdb")
    foreign_database(served.served, *statements)
    make_database(served.previous, "old")
    before = sha256(served.served), sha256(served.previous)
    with pytest.raises(BuildError, match=r"--db .* is not a loan-recovery build"):
        swap.swap_in(make_database(tmp_path / "new.duckdb", "new"), served)
    with pytest.raises(BuildError, match=r"--db .* is not a loan-recovery build"):
        swap.rollback_swap(served, project_dir())
    assert (sha256(served.served), sha256(served.previous)) == before
    served.served.unlink()
    served.previous.unlink()
    make_database(served.served, "old")
    foreign_database(served.previous, *statements)
    before = sha256(served.served), sha256(served.previous)
    with pytest.raises(BuildError, match=r"the previous build .* is not a loan-recovery build"):
        swap.swap_in(make_database(tmp_path / "newer.duckdb", "newer"), served)
    with pytest.raises(BuildError, match=r"the previous build .* is not a loan-recovery build"):
        swap.rollback_swap(served, project_dir())
    assert (sha256(served.served), sha256(served.previous)) == before
    assert build_id_of(served.served) == "old"


def test_check_replaceable_allows_absent_or_a_build(tmp_path: Path) -> None:
    check_replaceable(tmp_path / "absent.duckdb", "--db")
    build = make_database(tmp_path / "served.duckdb", "b1")
    check_replaceable(build, "--db")
    (tmp_path / "link.duckdb").symlink_to(build)
    check_replaceable(tmp_path / "link.duckdb", "--db")


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
