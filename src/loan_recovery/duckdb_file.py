"""Telling a DuckDB database file from anything else by its first bytes, without opening it.

A DuckDB file starts with an 8-byte checksum and then the magic ``DUCK``.
Both the build (may this ``--db`` be replaced?) and the report (is this
``--db`` a built file?) ask before DuckDB opens the file, because DuckDB's
own errors on a CSV or an empty file mislead.
"""

from __future__ import annotations

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
