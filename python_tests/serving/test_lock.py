"""lock: one holder at a time, across processes; a lock file that is not ours is refused and
left as it is.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loan_recovery.errors import EXIT_BUSY, EXIT_USAGE, BuildError
from loan_recovery.serving import lock
from loan_recovery.serving.lock import publish_lock
from loan_recovery.serving.paths import ServedPaths
from serving.helpers import building, hangs, make_database, unblock_fifo


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
    hangs(lambda: refuses_lock(served, "not a lock file"), unblock_fifo(served.lock))
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
