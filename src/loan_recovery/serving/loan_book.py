"""The user's loan book file: checked, hashed and handed to dbt as exactly the bytes hashed.

A file name is user input. It may hold quotes, ``{{ }}`` or glob characters
(``book[1].csv``), so it never travels into dbt as a var (dbt renders var
strings as Jinja) or into SQL as a path (DuckDB expands ``? * [ ]``).
Instead the file is opened once, here: its checks, its sha256 and its line
count are taken from that open file, and dbt receives the same open file
descriptor as ``/proc/self/fd/N`` through environment variables, which dbt
does not render and which hold no pattern characters. DuckDB therefore
reads exactly the file that was hashed, even if the name is renamed or
replaced meanwhile; a change in place is caught by comparing the file's
size and modification time after the build.

Refused here, with one line naming the file (exit code 3): a missing file,
a directory, a FIFO or other non-regular file, a symbolic link loop, an
extension other than .csv or .parquet (judged on the name given, not on a
link's target), an empty file, bytes that are not a CSV or Parquet loan
book (UTF-16 text, gzip data, a file that is not Parquet), and a CSV line
that DuckDB's reader would stop at (longer than the limit, or not UTF-8),
named by its line number as an editor shows it. DuckDB would name it by its
count of line-end bytes, which a CR LF counts twice.
"""

from __future__ import annotations

import codecs
import contextlib
import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from loan_recovery.config import max_line_bytes
from loan_recovery.errors import EXIT_BAD_INPUT, BuildError, os_error_reason

CHUNK_BYTES = 1 << 20
FORMATS = {".csv": "csv", ".parquet": "parquet"}

LOANS_FILE_ENV = "LOAN_RECOVERY_LOANS_FILE"
LOANS_FORMAT_ENV = "LOAN_RECOVERY_LOANS_FORMAT"
LOANS_NAME_ENV = "LOAN_RECOVERY_LOANS_NAME"
"""Read by macro loan_book_input: the file dbt reads, its format, the name messages use."""

# Leading bytes that say what a file really is, and what to tell the user.
_NOT_A_LOAN_BOOK = (
    (b"\xff\xfe", "is UTF-16 text; save it as UTF-8 CSV"),
    (b"\xfe\xff", "is UTF-16 text; save it as UTF-8 CSV"),
    (b"\x1f\x8b", "is gzip-compressed; decompress it first"),
    (b"PK\x03\x04", "is a ZIP archive (an Excel workbook?); export it as CSV"),
)


def _refuse(name: Path, problem: str) -> BuildError:
    return BuildError("input", f"loans_path '{name}': {problem}", exit_code=EXIT_BAD_INPUT)


@dataclass
class LoanBook:
    """An open, hashed loan book; ``fd`` stays open until :meth:`close`."""

    name: Path
    format: str
    fd: int
    sha256: str
    size: int
    mtime_ns: int
    lines: int | None
    """Physical lines of a CSV (the header is one), counted from the bytes hashed."""

    @property
    def reader_path(self) -> str:
        """The path dbt's DuckDB opens: this process's descriptor, inherited by dbt."""
        return f"/proc/self/fd/{self.fd}"

    def dbt_environment(self) -> dict[str, str]:
        return {
            LOANS_FILE_ENV: self.reader_path,
            LOANS_FORMAT_ENV: self.format,
            LOANS_NAME_ENV: str(self.name),
        }

    def changed(self) -> bool:
        """Whether the file was written to since it was hashed (same inode, new bytes)."""
        now = os.fstat(self.fd)
        return (now.st_size, now.st_mtime_ns) != (self.size, self.mtime_ns)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class _LineCounter:
    """Counts lines as the dbt reader ends them (LF, CRLF and a lone CR each end one).

    It also notes the first line the reader would stop at: one longer than
    ``max_bytes``, or one that is not UTF-8 (``problem``, None when there is
    none). A chunk is far shorter than the limit, so only a line that runs
    across chunks can be too long: the line still open when a chunk starts.
    """

    def __init__(self, max_bytes: int) -> None:
        self.breaks = 0
        self.problem: str | None = None
        self._max_bytes = max_bytes
        self._pending_cr = False
        self._last = b""
        self._open_bytes = 0  # bytes of the line not yet ended
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if self.problem is None:
            self.problem = self._too_long(chunk) or self._not_utf8(chunk)
        # A CR at the end of the previous chunk followed by LF here is one CRLF.
        joined_crlf = self._pending_cr and chunk[:1] == b"\n"
        self.breaks += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n") - joined_crlf
        self._pending_cr = chunk[-1:] == b"\r"
        self._last = chunk[-1:]

    def lines(self) -> int:
        unterminated = self._last not in (b"", b"\n", b"\r")
        return self.breaks + unterminated

    def finish(self) -> None:
        """After the last chunk: a file may not end inside a character."""
        if self.problem is None:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.problem = f"line {self.lines()} is not UTF-8 text (it ends inside a character)"

    def _line_at(self, chunk: bytes, position: int) -> int:
        """The line holding byte ``position`` of ``chunk`` (fed next), counted from 1."""
        before = chunk[:position]
        joined_crlf = self._pending_cr and before[:1] == b"\n"
        breaks = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") - joined_crlf
        return self.breaks + breaks + 1

    def _too_long(self, chunk: bytes) -> str | None:
        ends = [found for found in (chunk.find(b"\n"), chunk.find(b"\r")) if found >= 0]
        first_end = min(ends) if ends else len(chunk)
        longest = self._open_bytes + first_end
        if len(chunk) > self._max_bytes:  # only with a limit below the chunk size
            longest = max(longest, *map(len, chunk.splitlines()))
        if longest > self._max_bytes:
            return (
                f"line {self._line_at(chunk, first_end if ends else 0)} is longer than "
                f"{self._max_bytes // (1 << 20)} MiB, the longest line a loan book may hold"
            )
        last_end = max(chunk.rfind(b"\n"), chunk.rfind(b"\r"))
        self._open_bytes = longest if last_end < 0 else len(chunk) - last_end - 1
        return None

    def _not_utf8(self, chunk: bytes) -> str | None:
        held = len(self._utf8.getstate()[0])  # a character cut by the previous chunk
        if not held and chunk.isascii():
            return None
        try:
            self._utf8.decode(chunk)
        except UnicodeDecodeError as error:
            position = max(error.start - held, 0)
            return (
                f"line {self._line_at(chunk, position)} is not UTF-8 text "
                f"(byte 0x{chunk[position]:02X}); save the file as UTF-8 CSV"
            )
        return None


def _open_regular(name: Path) -> int:
    """Open ``name`` read-only, following links, refusing anything but a regular file.

    O_NONBLOCK keeps a FIFO from blocking the open; it is refused right after.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if name.is_symlink():
            raise _refuse(name, "a symbolic link whose target does not exist") from None
        raise _refuse(name, "no such file") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _refuse(name, "a symbolic link loop") from None
        if error.errno == errno.EISDIR:
            raise _refuse(name, "a directory, not a loan book file") from None
        raise _refuse(name, f"cannot open it ({os_error_reason(error, name)})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else ""
        raise _refuse(name, f"{kind or 'not a regular file'}, not a loan book file")
    os.set_blocking(fd, True)
    # dbt inherits it by number (pass_fds), not by clearing close-on-exec for every child.
    return fd


def open_loan_book(given: str | os.PathLike[str]) -> LoanBook:
    """Open, check, hash and count the user's loan book; raises BuildError (exit 3) if unusable."""
    name = Path(os.path.abspath(Path(given).expanduser()))
    file_format = FORMATS.get(name.suffix.lower())
    if file_format is None:
        raise _refuse(name, "unsupported file type; give a .csv or .parquet loan book")
    fd = _open_regular(name)
    try:
        before = os.fstat(fd)
        digest = hashlib.sha256()
        counter = _LineCounter(max_line_bytes())
        head = b""
        with os.fdopen(os.dup(fd), "rb", closefd=True) as handle:
            while chunk := handle.read(CHUNK_BYTES):
                if not head:
                    head = chunk[:8]
                digest.update(chunk)
                if file_format == "csv":
                    counter.feed(chunk)
        counter.finish()
        if before.st_size == 0:
            raise _refuse(name, "the file is empty")
        for magic, problem in _NOT_A_LOAN_BOOK:
            if head.startswith(magic):
                raise _refuse(name, f"the file {problem}")
        if file_format == "parquet" and not head.startswith(b"PAR1"):
            raise _refuse(name, "the file is not Parquet (it does not start with PAR1)")
        if file_format == "csv" and b"\x00" in head:
            raise _refuse(name, "the file holds NUL bytes: binary data, not CSV text")
        if file_format == "csv" and counter.problem is not None:
            raise _refuse(name, counter.problem)
    except BaseException:
        os.close(fd)
        raise
    return LoanBook(
        name=name,
        format=file_format,
        fd=fd,
        sha256=digest.hexdigest(),
        size=before.st_size,
        mtime_ns=before.st_mtime_ns,
        lines=counter.lines() if file_format == "csv" else None,
    )
