"""How a build or rollback fails: one step, one line of why, and an exit code.

The command line prints a ``BuildError`` as a short summary and exits with
its code, never with a traceback (docs/serving.md lists the codes).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_BUSY = 4


class BuildError(Exception):
    """A build or rollback stopped at ``step``; ``reason`` is the one-line why.

    Carries the exit code and the log to point at, so that the command line
    prints a short summary instead of a traceback. ``inspect`` names a failed
    build file worth looking at (kept until the next build).
    """

    def __init__(
        self,
        step: str,
        reason: str,
        *,
        exit_code: int = EXIT_FAILED,
        log: Path | None = None,
        inspect: Path | None = None,
    ) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.exit_code = exit_code
        self.log = log
        self.inspect = inspect


class Interrupted(BaseException):
    """SIGTERM (or SIGINT) arrived: the build stops where it is, like Ctrl-C."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def os_error_reason(error: OSError, path: Path | str | None = None) -> str:
    """An OSError as the line a person acts on: which place, and what is wrong with it.

    A full disk names the directory ("no space left on /srv/bi"), a
    permission or read-only problem names the file or folder it hit.
    """
    where = Path(error.filename) if error.filename else (Path(path) if path else None)
    if error.errno == errno.ENOSPC:
        folder = where if where is not None and where.is_dir() else (where or Path(".")).parent
        return f"no space left on {folder}"
    if error.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied: {where}"
    if error.errno == errno.ELOOP:
        return f"{where} is a symbolic link loop"
    return f"{where}: {error.strerror or os.strerror(error.errno or 0)}"
