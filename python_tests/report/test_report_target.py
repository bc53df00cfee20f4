"""report --out: only an .html name, never over a file that is not one of our reports, atomically.

The page itself is drawn from a built file in test_report.py (dbt); here the
reading and drawing are replaced by a stand-in page carrying the report's
marker, so what is judged is only where the page may be written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sha256
from loan_recovery import cli
from loan_recovery.errors import EXIT_OK, EXIT_USAGE
from loan_recovery.report import page

PAGE = f"<!DOCTYPE html>\n<html><head>{page.REPORT_MARKER}</head><body>new</body></html>\n"
BOOK = "Borrower_ID,Age\nB1,40\n"


@pytest.fixture(autouse=True)
def drawn_without_a_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the build and drawing the charts stand aside: the page is PAGE."""

    class Closed:
        def close(self) -> None:
            pass

    monkeypatch.setattr(page, "connect", lambda _: Closed())
    monkeypatch.setattr(page.decision_run, "read", lambda _: None)
    monkeypatch.setattr(page, "read_report_data", lambda *_: None)
    monkeypatch.setattr(page, "build_facts", lambda *_: None)
    monkeypatch.setattr(page, "build_figures", lambda _: {})
    monkeypatch.setattr(page, "render_html", lambda *_: PAGE)


def report(out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["report", "--db", str(out.parent / "served.duckdb"), "--out", str(out)])
    return code, capsys.readouterr().err


def test_a_loan_book_named_as_out_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "existing.csv"
    book.write_text(BOOK)
    code, err = report(book, capsys)
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        f"loan-recovery report: --out {book}: the report is an .html file; "
        "choose a name ending in .html"
    ]
    assert book.read_text() == BOOK


def test_a_new_name_without_html_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = report(tmp_path / "report.txt", capsys)
    assert code == EXIT_USAGE
    assert "choose a name ending in .html" in err
    assert not (tmp_path / "report.txt").exists()


@pytest.mark.parametrize(
    "content",
    [
        "<!DOCTYPE html><html><head><title>Team wiki</title></head><body>notes</body></html>",
        "",
        BOOK,
    ],
    ids=["someone's page", "empty", "a book named .html"],
)
def test_an_html_file_that_is_not_our_report_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    theirs = tmp_path / "index.html"
    theirs.write_text(content)
    code, err = report(theirs, capsys)
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        f"loan-recovery report: --out {theirs} exists and is not a loan-recovery report; "
        "refusing to overwrite it: choose another --out or move the file away"
    ]
    assert theirs.read_text() == content


def test_a_directory_named_html_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out.html").mkdir()
    code, err = report(tmp_path / "out.html", capsys)
    assert code == EXIT_USAGE
    assert "is a directory" in err


@pytest.mark.parametrize(
    "previous",
    [
        PAGE.replace("new", "old"),
        # A report written before the marker: recognised by its title.
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Loan-recovery report</title></head><body>old</body></html>\n",
    ],
    ids=["marked", "written before the marker"],
)
def test_our_own_report_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], previous: str
) -> None:
    out = tmp_path / "loan_recovery_report.html"
    out.write_text(previous)
    out.chmod(0o640)
    code, _ = report(out, capsys)
    assert code == EXIT_OK
    assert out.read_text() == PAGE
    assert out.stat().st_mode & 0o777 == 0o640  # who may read it stays as it was
    assert sorted(path.name for path in tmp_path.iterdir()) == [out.name]


def test_a_failure_while_drawing_leaves_the_old_report_and_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report.html"
    out.write_text(PAGE)
    before = sha256(out)

    def half_written(path: Path, text: str) -> None:
        path.write_text(text[:10])  # the disk fills part-way through the page
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(page, "_write_file", half_written)
    with pytest.raises(OSError):
        page.write_report(tmp_path / "served.duckdb", out)
    assert sha256(out) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [out.name]
