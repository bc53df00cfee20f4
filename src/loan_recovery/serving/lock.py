"""One build or rollback at a time: an flock on ``S.lock``.

flock is released by the kernel when the process dies, so a killed build
never leaves a stale lock, and the lock file itself is never deleted
(deleting a flock file races with the next locker). The file is opened
without following symbolic links and never truncated, and only written
when it is a plain, singly-linked file that is empty or holds our holder
line: a ``S.lock`` planted as a link to someone's file must not change it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Iterator

from loan_recovery.errors import EXIT_BUSY, EXIT_USAGE, BuildError, os_error_reason
from loan_recovery.serving.paths import ServedPaths, make_directory

HOLDER_BYTES = 256
"""The holder line is padded to a fixed width, so a shorter one overwrites a longer one."""


@contextlib.contextmanager
def publish_lock(paths: ServedPaths, holder: str) -> Iterator[None]:
    """Hold ``S.lock`` while the block runs; refuse (exit 4) while another process holds it."""
    try:
        make_directory(paths.lock.parent)
        fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise BuildError(
                "lock",
                f"{paths.lock} is a symbolic link; refusing to follow it (remove it)",
                exit_code=EXIT_USAGE,
            ) from None
        raise BuildError("lock", os_error_reason(error, paths.lock), exit_code=EXIT_USAGE) from None
    try:
        info = os.fstat(fd)
        # Judge the kind before reading: pread on a FIFO fails ("Illegal seek").
        plain = stat.S_ISREG(info.st_mode) and info.st_nlink == 1
        if not plain or os.pread(fd, 4, 0) not in (b"", b"pid "):
            raise BuildError(
                "lock",
                f"{paths.lock} exists and is not a lock file of loan-recovery's "
                "(not a plain file holding 'pid ...'); refusing to write to it",
                exit_code=EXIT_USAGE,
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = os.pread(fd, HOLDER_BYTES, 0).decode("utf-8", "replace").strip() or "unknown"
            raise BuildError(
                "lock",
                f"another build or rollback holds {paths.lock} ({current}); try again later",
                exit_code=EXIT_BUSY,
            ) from None
        line = f"pid {os.getpid()}, {holder}"[: HOLDER_BYTES - 1]
        os.pwrite(fd, line.ljust(HOLDER_BYTES - 1).encode() + b"\n", 0)
        yield
    finally:
        os.close(fd)
