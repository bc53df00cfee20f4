"""loan_book: the loan book opened once, refused in one line when it is not one, hashed and
its lines counted as DuckDB's reader ends them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest

from loan_recovery.errors import EXIT_BAD_INPUT, BuildError
from loan_recovery.serving import loan_book
from loan_recovery.serving.loan_book import open_loan_book
from serving.helpers import CSV, hangs, unblock_fifo


def refused(given: Path, problem: str) -> BuildError:
    """open_loan_book(given) must refuse: step input, exit 3, one line naming the file."""
    with pytest.raises(BuildError) as caught:
        book = open_loan_book(given)
        book.close()
    failure = caught.value
    assert (failure.step, failure.exit_code) == ("input", EXIT_BAD_INPUT), failure
    assert failure.reason.startswith(f"loans_path '{given}': "), failure.reason
    assert problem in failure.reason, failure.reason
    assert "\n" not in failure.reason
    return failure


def test_missing_file_directory_and_symlink_problems(tmp_path: Path) -> None:
    refused(tmp_path / "absent.csv", "no such file")
    (tmp_path / "dir.csv").mkdir()
    refused(tmp_path / "dir.csv", "a directory")
    (tmp_path / "loop_a.csv").symlink_to(tmp_path / "loop_b.csv")
    (tmp_path / "loop_b.csv").symlink_to(tmp_path / "loop_a.csv")
    refused(tmp_path / "loop_a.csv", "a symbolic link loop")
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    refused(tmp_path / "dangling.csv", "a symbolic link whose target does not exist")


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    hangs(lambda: refused(fifo, "a FIFO, not a loan book file"), unblock_fifo(fifo))


def test_the_extension_is_judged_on_the_name_given(tmp_path: Path) -> None:
    real_csv = tmp_path / "real.csv"
    real_csv.write_bytes(CSV)
    (tmp_path / "x.txt").symlink_to(real_csv)
    refused(tmp_path / "x.txt", "unsupported file type")
    refused(tmp_path / "book.xlsx", "unsupported file type")  # judged before opening
    text = tmp_path / "real.txt"
    text.write_bytes(CSV)
    (tmp_path / "x.csv").symlink_to(text)
    book = open_loan_book(tmp_path / "x.csv")
    try:
        assert book.name == tmp_path / "x.csv"  # the name given, not the link's target
        assert (book.format, book.sha256, book.lines) == ("csv", hashlib.sha256(CSV).hexdigest(), 3)
    finally:
        book.close()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("le.csv", b"\xff\xfe" + "Borrower_ID,Age\n".encode("utf-16-le"), "is UTF-16 text"),
        ("be.csv", b"\xfe\xff" + "Borrower_ID,Age\n".encode("utf-16-be"), "is UTF-16 text"),
        ("bom.csv", "Borrower_ID,Age\nB1,40\n".encode("utf-16"), "is UTF-16 text"),
        # mtime=0: the same bytes on every xdist worker, which must collect identical ids
        ("zipped.csv", gzip.compress(CSV, mtime=0), "is gzip-compressed"),
        ("book.parquet", CSV, "is not Parquet"),
        ("nul.csv", b"B\x00o\x00r\x00", "NUL bytes"),
    ],
)
def test_bytes_that_are_not_a_loan_book_are_refused(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    refused(path, problem)


def _lines_of(data: bytes) -> int:
    """Lines as DuckDB's line reader ends them (LF, CRLF, lone CR), independently counted."""
    return len(data.splitlines())


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        (b"h\n1\n2\n", 3),
        (b"h\r\n1\r\n2\r\n", 3),
        (b"h\r1\r2\r", 3),
        (b"h\n1\n2", 3),
        (b"h\r\n1\r\n2", 3),
        (b"h\r\n1\r2\n3", 4),
        (b"h\n\n1\n", 3),  # a blank line is a line (and a row) of its own
        (b"h\r\r\n1\n", 3),
    ],
)
def test_a_good_csv_is_hashed_and_its_lines_counted(
    tmp_path: Path, data: bytes, lines: int
) -> None:
    assert _lines_of(data) == lines
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert book.sha256 == hashlib.sha256(data).hexdigest()
        assert (book.lines, book.size, book.format) == (lines, len(data), "csv")
        # dbt reads the very descriptor that was hashed.
        assert Path(book.reader_path).read_bytes() == data
        assert not book.changed()
    finally:
        book.close()


@pytest.mark.parametrize(
    "boundary",
    [
        b"\r\n",  # a CRLF split between two chunks is one line end
        b"\r\r",  # two lone CRs, the second starting a chunk
        b"\n\n",
        b"x\r",  # a lone CR ending a chunk, the next chunk's data after it
    ],
)
def test_line_count_across_the_read_chunk_boundary(tmp_path: Path, boundary: bytes) -> None:
    chunk = loan_book.CHUNK_BYTES
    assert chunk == 1 << 20
    header = b"Borrower_ID,Age\r\n"
    filler = b"B1,40\r\n" * ((chunk - len(header)) // 7)
    body = header + filler
    body += b"a" * (chunk - 1 - len(body))
    data = body + boundary + b"B2,41\r\n" * 3 + b"B3,42"
    assert data[chunk - 1 : chunk + 1] == boundary  # the pair straddles bytes chunk-1 and chunk
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert book.lines == _lines_of(data)
        assert book.sha256 == hashlib.sha256(data).hexdigest()
    finally:
        book.close()


def test_sha256_is_streamed_and_exact_and_parquet_has_no_line_count(tmp_path: Path) -> None:
    data = b"PAR1" + os.urandom(loan_book.CHUNK_BYTES * 2 + 17)
    path = tmp_path / "big.parquet"
    path.write_bytes(data)
    book = open_loan_book(path)
    try:
        assert (book.sha256, book.size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert (book.format, book.lines) == ("parquet", None)
    finally:
        book.close()


def test_a_change_in_place_after_hashing_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(CSV)
    book = open_loan_book(path)
    try:
        with path.open("ab") as handle:
            handle.write(b"B3,42\n")
        assert book.changed()
    finally:
        book.close()
