"""Folders the project creates: owner and group only, never writable by the group or others.

Build directories and the model registry hold loan data, logs and models,
so every folder the package creates is at most ``rwxr-x---``, whatever the
umask; the umask may still narrow it. One function, used by serving and the
registry alike.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

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
