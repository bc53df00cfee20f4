"""errors: an OSError becomes one line naming the directory or file it is about."""

from __future__ import annotations

import errno
from pathlib import Path

from loan_recovery.errors import os_error_reason


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
