"""The CSV loan book reader on its own: one small file per case, table-driven.

The reader is the SQL of macro ``loan_book_source`` (physical lines, then
records, then fields) and the line count of ``loan_book_data_lines`` that the
dbt test ``assert_loan_book_rows_reconcile`` trusts. dbt compiles both once
per header (about ten seconds each); every case then runs the compiled SQL
in DuckDB on its own file, in milliseconds, with no build. The expected rows
are written out by hand from the file's text, never computed by the reader's
rules.

Each expected row is ``(source_row_number, lines, reason, Loan_ID)``: where
the row starts (the file line after the header, so file line = row + 1), how
many physical lines it holds, the start of its ``malformed_reason`` (None for
a row the reader split into fields) and, for those, its Loan_ID.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import DBT, valid_loan
from loan_recovery.config import loan_book_columns, max_line_bytes, project_dir
from loan_recovery.errors import EXIT_BAD_INPUT, BuildError
from loan_recovery.serving import loan_book
from loan_recovery.serving.loan_book import open_loan_book

COLUMNS = loan_book_columns()
H21 = ",".join(COLUMNS)
H22 = H21 + ",Notes"  # an extra column the pipeline does not read
N = len(COLUMNS)

SPLIT = "/* next query */"


def loan(number: int, notes: str | None = None, **raw: str) -> str:
    """A valid loan's line; ``raw`` replaces a field's text verbatim (quotes and all)."""
    values = {column: str(value) for column, value in valid_loan(number).items()}
    values.update(raw)
    text = ",".join(values[column] for column in COLUMNS)
    return text if notes is None else f"{text},{notes}"


def joined(*lines: str, end: str = "\n") -> bytes:
    """The lines, each ended by ``end``."""
    return "".join(line + end for line in lines).encode("utf-8")


def ok(row: int, number: int, lines: int = 1) -> tuple[int, int, None, str]:
    return (row, lines, None, f"LN_{number}")


def bad(row: int, reason: str, lines: int = 1) -> tuple[int, int, str, None]:
    return (row, lines, reason, None)


BLANK = "blank line"
NEVER_CLOSED = "malformed row: a quote opened on line {} is never closed"


@dataclass(frozen=True)
class Reader:
    """The compiled reader for one header: records SQL and line-count SQL."""

    records: str
    data_lines: str
    lines: str
    template: str

    def _on(self, path: Path, sql: str) -> str:
        return sql.replace(f"'{self.template}'", "'" + str(path).replace("'", "''") + "'")

    def rows(self, path: Path) -> list[tuple[Any, ...]]:
        with duckdb.connect() as connection:
            return connection.execute(
                f"select source_row_number, source_line_count, malformed_reason, Loan_ID "
                f"from ({self._on(path, self.records)}) order by 1"
            ).fetchall()

    def values(self, path: Path, column: str) -> list[Any]:
        with duckdb.connect() as connection:
            found = connection.execute(
                f'select "{column}" from ({self._on(path, self.records)}) '
                "order by source_row_number"
            ).fetchall()
        return [value for (value,) in found]

    def physical_lines(self, connection: duckdb.DuckDBPyConnection, path: Path) -> list[Any]:
        found = connection.execute(
            f"select line from {self._on(path, self.lines)} order by line_number"
        ).fetchall()
        return [line for (line,) in found]

    def counted_lines(self, path: Path) -> int:
        with duckdb.connect() as connection:
            return connection.execute(
                f"select data_lines from {self._on(path, self.data_lines)}"
            ).fetchone()[0]


def _compile(workdir: Path, header: str) -> Reader:
    """dbt compiles the reader against a template file; cases swap in their own path."""
    template = workdir / f"template_{len(header)}.csv"
    template.write_text(header + "\n" + loan(1) + "\n", encoding="utf-8")
    inline = SPLIT.join(
        [
            "select * from {{ loan_book_source() }}",
            "select * from {{ loan_book_data_lines() }}",
            "select * from {{ loan_book_lines(env_var('LOAN_RECOVERY_LOANS_FILE')) }}",
        ]
    )
    environment = {
        **os.environ,
        "LOAN_RECOVERY_DB": str(workdir / "compile.duckdb"),
        "LOAN_RECOVERY_LOANS_FILE": str(template),
        "LOAN_RECOVERY_LOANS_FORMAT": "csv",
        "LOAN_RECOVERY_LOANS_NAME": "case.csv",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    done = subprocess.run(
        [
            DBT,
            "compile",
            "--inline",
            inline,
            "--output",
            "json",
            "--quiet",
            "--target-path",
            str(workdir / "target"),
            "--log-path",
            str(workdir),
        ],
        cwd=project_dir(),
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    compiled = json.loads(done.stdout)["compiled"]
    records, data_lines, lines = (
        part.strip().removeprefix("select * from").strip() for part in compiled.split(SPLIT)
    )
    return Reader(records, data_lines, lines, str(template))


@pytest.fixture(scope="module")
def readers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Reader]:
    workdir = tmp_path_factory.mktemp("reader")
    return {"21": _compile(workdir, H21), "22": _compile(workdir, H22)}


# --------------------------------------------------------------------------- line endings

# (case, file bytes, expected rows). Header: the 21 columns.
ENDINGS: list[tuple[str, bytes, list[tuple[Any, ...]]]] = [
    ("LF", joined(H21, loan(1), loan(2)), [ok(1, 1), ok(2, 2)]),
    ("CRLF", joined(H21, loan(1), loan(2), end="\r\n"), [ok(1, 1), ok(2, 2)]),
    ("CR", joined(H21, loan(1), loan(2), end="\r"), [ok(1, 1), ok(2, 2)]),
    (
        "no line end after the last line",
        joined(H21, loan(1)) + loan(2).encode(),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "CRLF, no line end after the last line",
        joined(H21, loan(1), end="\r\n") + loan(2).encode(),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "mixed LF, CRLF and CR",
        f"{H21}\r\n{loan(1)}\n{loan(2)}\r{loan(3)}\r\n{loan(4)}".encode(),
        [ok(1, 1), ok(2, 2), ok(3, 3), ok(4, 4)],
    ),
    ("blank line", joined(H21, loan(1), "", loan(2)), [ok(1, 1), bad(2, BLANK), ok(3, 2)]),
    (
        "blank line, CRLF",
        joined(H21, loan(1), "", loan(2), end="\r\n"),
        [ok(1, 1), bad(2, BLANK), ok(3, 2)],
    ),
    (
        "blank line, CR",
        joined(H21, loan(1), "", loan(2), end="\r"),
        [ok(1, 1), bad(2, BLANK), ok(3, 2)],
    ),
    (
        "a line holding only CR in an LF file",  # red team: LF, then CR LF: one blank line
        f"{H21}\n{loan(1)}\n\r\n{loan(2)}\n".encode(),
        [ok(1, 1), bad(2, BLANK), ok(3, 2)],
    ),
    (
        "a lone CR line in an LF file",  # LF, then a CR alone: one blank line
        f"{H21}\n{loan(1)}\n\r{loan(2)}\n".encode(),
        [ok(1, 1), bad(2, BLANK), ok(3, 2)],
    ),
    (
        "CR CR LF ending",  # red team: the line ends at CR, then CR LF ends a blank one
        f"{H21}\n{loan(1)}\r\r\n{loan(2)}\n".encode(),
        [ok(1, 1), bad(2, BLANK), ok(3, 2)],
    ),
    (
        "last line ends in a bare CR",  # red team
        f"{H21}\n{loan(1)}\n{loan(2)}\r".encode(),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "CRLF file whose last line ends in a bare CR",
        f"{H21}\r\n{loan(1)}\r\n{loan(2)}\r".encode(),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "two blank lines, CRLF then LF",
        f"{H21}\n{loan(1)}\r\n\r\n\n{loan(2)}\n".encode(),
        [ok(1, 1), bad(2, BLANK), bad(3, BLANK), ok(4, 2)],
    ),
    ("byte-order mark", b"\xef\xbb\xbf" + joined(H21, loan(1)), [ok(1, 1)]),
    (
        "byte-order mark, CRLF",
        b"\xef\xbb\xbf" + joined(H21, loan(1), loan(2), end="\r\n"),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "trailing blank lines",
        joined(H21, loan(1), "", ""),
        [ok(1, 1), bad(2, BLANK), bad(3, BLANK)],
    ),
]


@pytest.mark.dbt
@pytest.mark.parametrize(("case", "data", "expected"), ENDINGS, ids=[c[0] for c in ENDINGS])
def test_line_endings(
    readers: dict[str, Reader], tmp_path: Path, case: str, data: bytes, expected: list[Any]
) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    assert readers["21"].rows(path) == expected
    assert_lines_reconcile(readers["21"], path, expected)


def assert_rows(found: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Rows start where expected and hold the lines expected; reasons match by their start."""
    assert [row[:2] for row in found] == [row[:2] for row in expected]
    for (row, _, reason, loan_id), (_, _, want_reason, want_id) in zip(
        found, expected, strict=True
    ):
        if want_reason is None:
            assert (reason, loan_id) == (None, want_id), (row, reason)
        else:
            assert reason is not None and reason.startswith(want_reason), (row, reason)
            assert loan_id is None, row


def assert_lines_reconcile(reader: Reader, path: Path, expected: list[Any]) -> None:
    """The reader's rows hold every data line; the two independent counts agree."""
    book = open_loan_book(path)
    book.close()
    assert book.lines is not None
    data_lines = book.lines - 1
    assert sum(lines for _, lines, _, _ in expected) == data_lines
    assert reader.counted_lines(path) == data_lines


@pytest.mark.dbt
def test_lines_are_the_lines_python_sees_in_random_files(
    readers: dict[str, Reader], tmp_path: Path
) -> None:
    """Random text of CR, LF, commas, quotes and UTF-8, cut into lines as bytes.splitlines does."""
    rng = random.Random(26)
    alphabet = ["a", ",", '"', "\r", "\n", "\r\n", "é", "€", " ", "#", "\t", "\x1f\x1e\x1d\x1c"]
    path = tmp_path / "random.csv"
    connection = duckdb.connect()
    for _ in range(150):
        weights = [rng.random() for _ in alphabet]
        text = "".join(rng.choices(alphabet, weights, k=rng.choice([1, 3, 10, 60, 400])))
        data = (b"\xef\xbb\xbf" if rng.random() < 0.2 else b"") + text.encode()
        path.write_bytes(data)
        expected = [
            piece.decode() or None for piece in data.removeprefix(b"\xef\xbb\xbf").splitlines()
        ]
        assert readers["21"].physical_lines(connection, path) == expected, data


# --------------------------------------------------------------------------- malformed lines

QUOTED_ID = '"LN_5"'

# (case, file bytes, expected rows). Header: the 21 columns.
MALFORMED: list[tuple[str, bytes, list[tuple[Any, ...]]]] = [
    (
        "too many fields",
        joined(H21, loan(1) + ",extra", loan(2)),
        [bad(1, f"malformed row: {N + 1} fields, the header has {N}"), ok(2, 2)],
    ),
    (
        "trailing comma",
        joined(H21, loan(1) + ",", loan(2)),
        [bad(1, f"malformed row: {N + 1} fields, the header has {N}"), ok(2, 2)],
    ),
    (
        "too few fields",
        joined(H21, ",".join(loan(1).split(",")[:15]), loan(2)),
        [bad(1, f"malformed row: 15 fields, the header has {N}"), ok(2, 2)],
    ),
    (
        "a single field",
        joined(H21, "   ", loan(2)),
        [bad(1, f"malformed row: 1 fields, the header has {N}"), ok(2, 2)],
    ),
    (
        "text after a closing quote",
        joined(H21, loan(1, Loan_ID='"LN_"1'), loan(2)),
        [bad(1, "malformed row: text after the closing quote of a field"), ok(2, 2)],
    ),
    (
        "unclosed quote on the last line",
        joined(H21, loan(1), loan(2, Loan_ID='"LN_2')),
        [ok(1, 1), bad(2, NEVER_CLOSED.format(3))],
    ),
    (
        "unclosed quote, then plain lines",
        joined(H21, loan(1, Loan_ID='"LN_1'), loan(2), loan(3)),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3)],
    ),
    (
        # red team: the stray quote on line 78 swallowed lines 78-89, up to a
        # line with a quoted field; one stray quote must cost one row.
        "unclosed quote, then a line with a quoted field",
        joined(H21, loan(1, Age='"40'), loan(2), loan(3), loan(4, Loan_ID='"LN_4"'), loan(5)),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3), ok(4, 4), ok(5, 5)],
    ),
    (
        "unclosed quote, then a line with a quoted comma",
        joined(H21, loan(1, Gender='"Female'), loan(2), loan(3, Borrower_ID='"BRW,3"')),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3)],
    ),
    (
        "unclosed quote, then a line that starts with a quote and a comma",
        joined(H21, loan(1, Loan_ID='"LN_1'), '",' + loan(2), loan(3)),
        [bad(1, NEVER_CLOSED.format(2)), bad(2, NEVER_CLOSED.format(3)), ok(3, 3)],
    ),
    (
        "two unclosed quotes",
        joined(H21, loan(1, Loan_ID='"LN_1'), loan(2), loan(3, Loan_ID='"LN_3'), loan(4)),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), bad(3, NEVER_CLOSED.format(4)), ok(4, 4)],
    ),
    (
        "a quote character inside an unquoted field is text",
        joined(H21, loan(1, Borrower_ID='BRW 5" x'), loan(2)),
        [ok(1, 1), ok(2, 2)],
    ),
    (
        "quoted fields with commas and doubled quotes",
        joined(H21, loan(1, Borrower_ID='"BRW,""1"""', Loan_ID=QUOTED_ID.replace("5", "1"))),
        [ok(1, 1)],
    ),
    (
        "a quoted field holding a line break, with no column to hold it",
        joined(
            H21, loan(1, Borrower_ID='"BRW', Loan_ID="LN_1"), '1",40' + loan(2)[len("BRW_2,40") :]
        ),
        # Read alone, the next line's first field is the text 1" (a quote inside a field).
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2)],
    ),
    ("a line starting with #", joined(H21, loan(1, Borrower_ID="#BRW_1")), [ok(1, 1)]),
    ("only commas", joined(H21, "," * (N - 1)), [(1, 1, None, "")]),
]


@pytest.mark.dbt
@pytest.mark.parametrize(("case", "data", "expected"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_lines(
    readers: dict[str, Reader], tmp_path: Path, case: str, data: bytes, expected: list[Any]
) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    assert_rows(readers["21"].rows(path), expected)
    assert_lines_reconcile(readers["21"], path, expected)


# (field text in the file, the value the reader gives)
VALUES: list[tuple[str, str]] = [
    ('"BRW,1"', "BRW,1"),
    ('"BRW ""one"""', 'BRW "one"'),
    ('""', ""),
    ('"""BRW"""', '"BRW"'),
    ('BRW 5" x', 'BRW 5" x'),
    ("  BRW  ", "  BRW  "),
    ('"#BRW"', "#BRW"),
]


@pytest.mark.dbt
@pytest.mark.parametrize(("text", "value"), VALUES, ids=[v[0] for v in VALUES])
def test_field_values(readers: dict[str, Reader], tmp_path: Path, text: str, value: str) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(joined(H21, loan(1, Borrower_ID=text), loan(2)))
    assert readers["21"].values(path, "Borrower_ID") == [value, "BRW_2"]


# --------------------------------------------------------------------------- quoted line breaks

# A quoted field may hold line breaks only in a column the pipeline does not
# read (here Notes). Header: the 21 columns and Notes.
SPANS: list[tuple[str, bytes, list[tuple[Any, ...]]]] = [
    (
        "a note over two lines",
        joined(H22, loan(1, notes='"first line'), 'second line"', loan(2, notes="plain")),
        [ok(1, 1, lines=2), ok(3, 2)],
    ),
    (
        "a note over two lines, CRLF",
        joined(H22, loan(1, notes='"first line'), 'second line"', loan(2, notes="x"), end="\r\n"),
        [ok(1, 1, lines=2), ok(3, 2)],
    ),
    (
        "a note with a blank line, commas and doubled quotes",
        joined(H22, loan(1, notes='"a, ""b""'), "", 'c, d"', loan(2, notes="")),
        [ok(1, 1, lines=3), ok(4, 2)],
    ),
    (
        "a note whose closing quote starts a line",
        joined(H22, loan(1, notes='"text'), '"', loan(2, notes="")),
        [ok(1, 1, lines=2), ok(3, 2)],
    ),
    (
        "a note never closed",
        joined(H22, loan(1, notes=""), loan(2, notes='"open'), loan(3, notes="")),
        [ok(1, 1), bad(2, NEVER_CLOSED.format(3)), ok(3, 3)],
    ),
    (
        "a stray quote in a read column, then quoted notes",
        joined(
            H22,
            loan(1, Loan_ID='"LN_1', notes="x"),
            loan(2, notes='"y, z"'),
            loan(3, notes='"end'),
            'of note"',
        ),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3, lines=2)],
    ),
    (
        "an unclosed note, then a line with a quoted note",
        joined(H22, loan(1, notes='"open'), loan(2, notes=""), loan(3, notes='"a, b"')),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3)],
    ),
    (
        # Read as one field, the two lines would make a row of 22 fields, but
        # Loan_ID is a column the pipeline reads: no line break may join it.
        "a quote in a read column, closed on the next line",
        joined(
            H22,
            loan(1, Loan_ID='"LN_1'),
            'tail",' + ",".join(loan(1, notes="x").split(",")[7:]),
            loan(2, notes=""),
        ),
        [bad(1, NEVER_CLOSED.format(2)), bad(2, "malformed row: 16 fields"), ok(3, 2)],
    ),
    (
        # Read from inside the open note, line 4's quote would close it and
        # leave a row of 22 fields, with 'a"' after the closing quote.
        "an unclosed note, then a line whose last field is quoted",
        joined(H22, loan(1, notes='"open'), loan(2, notes=""), loan(3, notes='"a"')),
        [bad(1, NEVER_CLOSED.format(2)), ok(2, 2), ok(3, 3)],
    ),
    (
        "a note closed by a line with one field too many",
        joined(H22, loan(1, notes='"open'), 'end",extra', loan(2, notes="")),
        [bad(1, NEVER_CLOSED.format(2)), bad(2, "malformed row: 2 fields"), ok(3, 2)],
    ),
    (
        "a closing line that opens the next note",
        # Line 3 closes line 2's note and, read alone, would open one; line 4
        # is then read on its own: its quote opens Borrower_ID, never closed.
        joined(H22, loan(1, notes='"a'), loan(9, notes='"'), '"', loan(2, notes="")),
        [ok(1, 1, lines=2), bad(3, NEVER_CLOSED.format(4)), ok(4, 2)],
    ),
    (
        "two notes closed by lines that open the next",
        joined(
            H22,
            loan(1, notes='"a'),
            loan(8, notes='"'),
            loan(2, notes='"b'),
            loan(9, notes='"'),
            '"',
        ),
        [ok(1, 1, lines=2), ok(3, 2, lines=2), bad(5, NEVER_CLOSED.format(6))],
    ),
]


@pytest.mark.dbt
@pytest.mark.parametrize(("case", "data", "expected"), SPANS, ids=[c[0] for c in SPANS])
def test_quoted_line_breaks(
    readers: dict[str, Reader], tmp_path: Path, case: str, data: bytes, expected: list[Any]
) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    assert_rows(readers["22"].rows(path), expected)
    assert_lines_reconcile(readers["22"], path, expected)


# --------------------------------------------------------------------------- scale and limits


@pytest.mark.dbt
def test_many_lines_with_random_endings_keep_their_numbers(
    readers: dict[str, Reader], tmp_path: Path
) -> None:
    """300,000 loans (about 40 MB, several DuckDB read buffers), each line ended at random."""
    rng = random.Random(25)
    endings = [b"\n", b"\r\n", b"\r"]
    rows = 300_000
    template = loan(0).encode()
    parts = [H21.encode(), b"\n"]
    for number in range(1, rows + 1):
        line = template.replace(b"LN_0", b"LN_%d" % number)
        parts.append(line.replace(b"BRW_0", b"BRW_%d" % number))
        parts.append(rng.choice(endings))
    path = tmp_path / "big.csv"
    path.write_bytes(b"".join(parts))
    with duckdb.connect() as connection:
        found = connection.execute(
            "select count(*), count(*) filter (where Loan_ID = 'LN_' || source_row_number "
            "and source_line_count = 1 and malformed_reason is null) "
            f"from ({readers['21']._on(path, readers['21'].records)})"
        ).fetchone()
    assert found == (rows, rows)
    assert readers["21"].counted_lines(path) == rows


@pytest.mark.dbt
def test_a_line_over_the_limit_stops_the_read_naming_its_line(
    readers: dict[str, Reader], tmp_path: Path
) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(joined(H21, loan(1), loan(2, Borrower_ID="X" * 9_000_000), loan(3)))
    with pytest.raises(duckdb.Error, match=r"(?i)line: 3\b"):
        readers["21"].rows(path)


# --------------------------------------------------------------------------- before dbt runs

LONG = "X" * 9_000_000  # over the 8 MiB limit


STOPPING_LINES: list[tuple[str, bytes, str]] = [
    ("long line, LF", joined(H21, loan(1), LONG, loan(2)), "line 3 is longer than 8 MiB"),
    # DuckDB would count this one as line 5: it counts a CR LF as two line ends.
    ("long line, CRLF", joined(H21, loan(1), LONG, end="\r\n"), "line 3 is longer than 8 MiB"),
    ("long last line, no end", joined(H21, loan(1)) + LONG.encode(), "line 3 is longer"),
    (
        "not UTF-8, CRLF",
        joined(H21, loan(1), end="\r\n") + b"BRW_\xff\r\n",
        "line 3 is not UTF-8 text (byte 0xFF)",
    ),
    (
        "latin-1 text",
        joined(H21, "Jos\xe9", end="\n").replace(b"\xc3\xa9", b"\xe9"),
        "line 2 is",
    ),
    ("ends inside a character", joined(H21) + b"caf\xc3", "line 2 is not UTF-8 text"),
]


@pytest.mark.parametrize(
    ("case", "data", "problem"), STOPPING_LINES, ids=[c[0] for c in STOPPING_LINES]
)
def test_a_line_the_reader_would_stop_at_is_refused_with_its_line(
    tmp_path: Path, case: str, data: bytes, problem: str
) -> None:
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    with pytest.raises(BuildError) as caught:
        open_loan_book(path).close()
    assert caught.value.exit_code == EXIT_BAD_INPUT
    assert caught.value.reason.startswith(f"loans_path '{path}': {problem}"), caught.value.reason


def test_utf8_text_and_lines_just_under_the_limit_across_chunks_pass(tmp_path: Path) -> None:
    """A character cut by a read chunk is whole; a line of exactly the limit is allowed."""
    chunk = loan_book.CHUNK_BYTES
    prefix = H21.encode() + b"\n"
    cut = "é".encode()  # two bytes: the first ends a chunk, the second starts the next
    filler = b"a" * (chunk - len(prefix) - 1)
    longest = b"b" * max_line_bytes()
    data = prefix + filler + cut + b"\r\n" + longest + b"\r\n" + loan(1).encode()
    assert data[chunk - 1 : chunk + 1] == cut
    path = tmp_path / "book.csv"
    path.write_bytes(data)
    book = open_loan_book(path)
    book.close()
    assert book.lines == 4
