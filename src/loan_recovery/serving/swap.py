"""Publishing a verified build over the served name, rolling back, and recovering from a kill.

A publish is three steps, each one rename or link, so a reader only ever
opens a complete build (the old inode or the new one):

1. hard-link the served build as ``S.previous.partial`` (its second name);
2. ``os.replace`` the new build over ``S``: published;
3. ``os.replace`` ``S.previous.partial`` over ``S.previous``.

A kill between any two steps leaves a partial name behind, and the next
build or rollback resolves it before doing anything (:func:`recover`): a
partial holding the served build is a spare name and goes; a partial
holding another build is the build served just before, and becomes
``S.previous``. A rollback swaps ``S`` and ``S.previous`` the same way,
through ``S.rollback.partial``, and refuses when both hold the same build.

The renames that must happen together (publish: steps 2 and 3; rollback:
its two renames) run with SIGINT and SIGTERM held: a signal that arrives
then is taken after the renames, so the command never reports "nothing
published" about a build it has just published.

The new file takes the served file's permission bits and group before it
is published, so restricted loan data stays restricted.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import signal
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loan_recovery import build_info
from loan_recovery.errors import BuildError, os_error_reason
from loan_recovery.serving.finalize import storage_compatibility_version, verify
from loan_recovery.serving.paths import (
    ServedPaths,
    build_directories,
    check_replaceable,
)
from loan_recovery.serving.pause import pause_point

KEEP_BUILD_DIRS = 10


def fsync_path(path: Path) -> None:
    """Flush a file's (or directory's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir_quietly(path: Path) -> None:
    """Directory fsync makes a rename durable; some file systems refuse it, which is fine."""
    with contextlib.suppress(OSError):
        fsync_path(path)


def read_build_id(database: Path) -> str | None:
    """The build_id in a file's build_info (None if it has none or cannot be read)."""
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            info = build_info.read(connection)
    except duckdb.Error:
        return None
    return info.build_id if info else None


def inherit_access(new_file: Path, served: Path) -> None:
    """Give ``new_file`` the served file's permission bits and group (a first build keeps its own).

    Refuses to publish when the group cannot be set: publishing anyway would
    widen who can read restricted loan data.
    """
    try:
        current = served.stat()
    except FileNotFoundError:
        return
    os.chmod(new_file, stat.S_IMODE(current.st_mode))
    if new_file.stat().st_gid != current.st_gid:
        try:
            os.chown(new_file, -1, current.st_gid)
        except PermissionError:
            try:
                group = grp.getgrgid(current.st_gid).gr_name
            except KeyError:
                group = str(current.st_gid)
            raise BuildError(
                "publish",
                f"cannot give the new build the group {group} of {served} (this user is "
                "not in it); publishing would change who may read the file",
            ) from None


HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def renames_together() -> Iterator[list[int]]:
    """Hold SIGINT and SIGTERM across renames that must not be split; yields what arrived.

    The held signals get a handler that only records them, for the length
    of the block. A thread signal mask would not do: the kernel delivers a
    process-directed signal to any thread that does not block it (dbt,
    DuckDB and test runners start threads), and Python then runs the usual
    handler in the main thread, mid-rename. Handlers are per process.

    A held signal is consumed, not re-raised: the renames were the command's
    last act, so it ends as done (the caller logs what arrived). Off the
    main thread, where handlers cannot be set, nothing is held.
    """
    arrived: list[int] = []

    def record(signum: int, _frame: object) -> None:
        arrived.append(signum)

    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    previous = {held: signal.signal(held, record) for held in HELD_SIGNALS}
    try:
        yield arrived
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)


def _link_or_copy(source: Path, destination: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        destination.unlink()
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
        fsync_path(destination)


def swap_in(build_file: Path, paths: ServedPaths) -> Path | None:
    """Publish ``build_file`` as the served file; keep the old one as ``.previous``."""
    if paths.wal.exists():
        raise BuildError(
            "publish",
            f"{paths.wal} exists: something opened the served file read-write "
            "(a plain `dbt build` against it?); its WAL would be replayed into the new "
            "build. Stop that writer, check the file, and remove the WAL",
        )
    check_replaceable(paths.served, "--db")
    check_replaceable(paths.previous, "the previous build")
    inherit_access(build_file, paths.served)
    fsync_path(build_file)
    had_served = paths.served.exists()
    if had_served:
        _link_or_copy(paths.served, paths.previous_partial)
    pause_point("swap")
    with renames_together():
        os.replace(build_file, paths.served)
        fsync_dir_quietly(paths.served.parent)
        if had_served:
            os.replace(paths.previous_partial, paths.previous)
            fsync_dir_quietly(paths.served.parent)
    fsync_dir_quietly(build_file.parent)
    return paths.previous if had_served else None


def recover(paths: ServedPaths) -> list[str]:
    """Resolve what a killed publish or rollback left; returns what was done, for the log."""
    done: list[str] = []
    served_build = read_build_id(paths.served) if paths.served.exists() else None
    for partial in paths.partials:
        if not partial.exists():
            continue
        partial_build = read_build_id(partial)
        if partial_build is not None and partial_build != served_build:
            check_replaceable(paths.previous, "the previous build")
            os.replace(partial, paths.previous)
            done.append(f"kept {partial.name} (build {partial_build}) as {paths.previous.name}")
        else:
            partial.unlink()
            done.append(f"removed {partial.name} (a second name of the served build)")
    if done:
        fsync_dir_quietly(paths.served.parent)
    return done


def clean_stale(paths: ServedPaths, current: Path | None = None) -> list[Path]:
    """Remove old builds' database files, and all but the newest build directories.

    Runs under the lock, so no other build is writing. Only directories named
    like a build id are touched; a failed build's file stays until the next
    build, so it can be inspected.
    """
    removed: list[Path] = []
    directories = [entry for entry in build_directories(paths) if entry != current]
    for directory in directories:
        for leftover in directory.iterdir():
            if leftover.is_file() and leftover.name.endswith((".duckdb", ".duckdb.wal")):
                leftover.unlink()
                removed.append(leftover)
            elif leftover.is_dir() and leftover.name.endswith(".tmp"):
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(leftover)
    keep = KEEP_BUILD_DIRS - (1 if current else 0)
    for directory in directories[: max(len(directories) - keep, 0)]:
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


@dataclass(frozen=True)
class RollbackResult:
    served: Path
    restored_build: str | None
    replaced_build: str | None


def rollback_swap(paths: ServedPaths, root: Path) -> RollbackResult:
    """Serve ``.previous`` again; the build it replaces becomes ``.previous`` (twice rolls forward).

    Call under the publish lock. The previous build is verified read-only
    first: a broken one is never swapped in, nor one holding the build that
    is already served.
    """
    recover(paths)
    if not paths.previous.is_file():
        raise BuildError("rollback", f"no previous build to roll back to ({paths.previous})")
    check_replaceable(paths.served, "--db")
    # What is served next must be one of ours too, not only what is replaced.
    check_replaceable(paths.previous, "the previous build")
    checked = verify(paths.previous, storage_version=storage_compatibility_version(root))
    replaced = read_build_id(paths.served) if paths.served.exists() else None
    if checked.build_id is not None and checked.build_id == replaced:
        raise BuildError(
            "rollback",
            f"{paths.previous} holds build {replaced}, the one already served: "
            "there is no other build to roll back to",
        )
    if paths.wal.exists():
        raise BuildError("rollback", f"{paths.wal} exists: the served file is open read-write")
    try:
        if paths.served.exists():
            _link_or_copy(paths.served, paths.rollback_partial)
        pause_point("rollback")
        with renames_together():
            os.replace(paths.previous, paths.served)
            fsync_dir_quietly(paths.served.parent)
            if paths.rollback_partial.exists():
                os.replace(paths.rollback_partial, paths.previous)
                fsync_dir_quietly(paths.served.parent)
    except OSError as error:
        raise BuildError("rollback", os_error_reason(error)) from None
    return RollbackResult(paths.served, checked.build_id, replaced)
