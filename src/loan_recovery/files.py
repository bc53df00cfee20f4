"""The file system facts every command shares: what a DuckDB file is, how our folders are made.

* Telling a DuckDB database file from anything else by its first bytes,
  without opening it. A DuckDB file starts with an 8-byte checksum and then
  the magic ``DUCK``. The build (may this ``--db`` be replaced?), the report
  (is this ``--db`` a built file?) and the simulator (is ``--decisions`` a
  served file?) ask before DuckDB opens the file, because DuckDB's own
  errors on a CSV or an empty file mislead.
* Folders the project creates: owner and group only, never writable by the
  group or others. Build directories and the model registry hold loan data,
  logs and models, so every folder the package creates is at most
  ``rwxr-x---``, whatever the umask; the umask may still narrow it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

MAGIC = b"DUCK"
MAGIC_OFFSET = 8


def starts_like_duckdb(head: bytes) -> bool:
    """Whether these leading bytes are a DuckDB file's."""
    return head[MAGIC_OFFSET : MAGIC_OFFSET + len(MAGIC)] == MAGIC


def is_duckdb_file(path: Path) -> bool:
    """True when ``path`` can be read and starts like a DuckDB database file."""
    try:
        with path.open("rb") as handle:
            return starts_like_duckdb(handle.read(MAGIC_OFFSET + len(MAGIC)))
    except OSError:
        return False


DIRECTORY_MODE = 0o750
"""Build directories and the registry hold loan data and models: owner and group only."""


def make_directory(path: Path) -> None:
    """Create ``path`` and missing parents, none of them group- or world-writable."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIRECTORY_MODE)
            # mkdir's mode is filtered by the umask; never let it add write for others.
            os.chmod(directory, stat.S_IMODE(directory.stat().st_mode) & ~0o022)
