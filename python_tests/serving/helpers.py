"""Small served-like files, kills and hang guards, shared by the serving unit tests.

Each test using them takes well under a second on tiny files and DuckDB
databases; serving/test_end_to_end.py drives the whole command with dbt.
"""

from __future__ import annotations

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
from loan_recovery.serving import swap
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
