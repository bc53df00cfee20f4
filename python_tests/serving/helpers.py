"""Small served-like files, kills and hang guards, shared by the serving unit tests.

Each test using them takes well under a second on tiny files and DuckDB
databases; serving/test_end_to_end.py drives the whole command with dbt.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import info_for, needs
from loan_recovery import build_info
from loan_recovery.serving import paths, swap
from loan_recovery.serving.loan_book import LoanBook
from loan_recovery.serving.paths import ServedPaths

# The package re-exports the function build(), which hides the module of that name.
building = importlib.import_module("loan_recovery.serving.build")

V1 = "v1.0.0"
NOGROUP = 65534  # nogroup: a group the files here do not start with
# A loan book of two rows: enough for the input checks, never built.
CSV = b"Borrower_ID,Age\nB1,40\nB2,41\n"


def needs_root() -> None:
    """Giving a file another group needs root: skipped elsewhere, a failure under CI=true.

    CI runs as root, so there a non-root run is a broken setup, not a pass.
    """
    needs(os.geteuid() == 0, "giving a file another group needs root")


def bid(label: str) -> str:
    """The build id a test's build ``label`` ("b1", "old") is written as: a real one.

    A file is one of our builds only when its build_info names a build id of
    paths.BUILD_ID's form, so the served-like files carry real ids; tests
    keep naming builds by label (build_id_of translates back).
    """
    if paths.BUILD_ID.match(label):
        return label
    built = f"20260101T000000Z-{hashlib.sha256(label.encode()).hexdigest()[:6]}"
    _LABELS[built] = label
    return built


_LABELS: dict[str, str] = {}


def make_database(path: Path, build_id: str | None, rows: int = 3, *, view: bool = False) -> Path:
    """A small served-like file in DuckDB 1.x storage, with build_info when build_id is set.

    It holds what makes a file one of ours (paths.check_replaceable): the
    served tables staging.stg_loans and main.run_settings, and build_info
    with the build id ``bid(build_id)``.
    """
    with duckdb.connect(str(path), config={"storage_compatibility_version": V1}) as connection:
        connection.execute("create schema staging")
        connection.execute(
            f"create table staging.stg_loans as select range as loan_id from range({rows})"
        )
        connection.execute("create table main.run_settings as select 0.75 as legal_threshold")
        if build_id is not None:
            build_info.write(connection, info_for(bid(build_id), rows))
        if view:
            connection.execute("create view loans_view as select * from staging.stg_loans")
    return path


def build_id_of(path: Path) -> str | None:
    """The build a file holds, by the label its test gave it (else its build id)."""
    found = swap.read_build_id(path)
    return _LABELS.get(found, found) if found is not None else None


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the raise runs, no handler cleans up."""


def a_loan_book(name: str = "/data/book.csv", fd: int = 7) -> LoanBook:
    """A LoanBook as open_loan_book returns it (the descriptor is never used here)."""
    return LoanBook(Path(name), "csv", fd, "0" * 64, 10, 0, 2)


def hangs(call: Callable[[], Any], unblock: Callable[[], None], seconds: float = 10) -> Any:
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


def unblock_fifo(fifo: Path) -> Callable[[], None]:
    """What frees a call blocked opening ``fifo``: a writer that opens it and leaves."""

    def unblock() -> None:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    return unblock


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


def run_killed(
    monkeypatch: pytest.MonkeyPatch,
    kill: Callable[[pytest.MonkeyPatch], None],
    call: Callable[[], object],
) -> None:
    """Run ``call`` with ``kill`` planted in it: it must die there. Then the plant is removed."""
    kill(monkeypatch)
    with pytest.raises(Killed):
        call()
    monkeypatch.undo()
