"""database: a --db the report cannot read is refused in one line that names it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from loan_recovery.cli import main
from loan_recovery.report import ReportError, queries


def _bad_database(kind: str, tmp_path: Path) -> Path:
    """A --db that cannot be reported on, made by hand."""
    path = tmp_path / {"csv": "book.csv", "directory": "builds"}.get(kind, f"{kind}.duckdb")
    if kind == "csv":
        path.write_text("Loan_ID,Loan_Amount\nLN_1,1000\n", encoding="utf-8")
    elif kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.touch()
    elif kind == "corrupt":  # DuckDB's magic bytes, then nothing valid
        path.write_bytes(bytes(8) + b"DUCK" + bytes(5000))
    elif kind == "unbuilt":
        with duckdb.connect(str(path)) as writable:
            writable.execute("create table main.stg_loans (loan_id varchar)")
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("missing", "run `dbt build` first"),
        ("directory", "is a directory"),
        ("csv", "is not a DuckDB database file"),
        ("empty", "is empty"),
        ("corrupt", "cannot open"),
        ("unbuilt", "lacks staging.stg_loans, main.quarantined_loans"),
    ],
)
def test_cli_says_in_one_line_what_is_wrong_with_the_db(
    kind: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _bad_database(kind, tmp_path)
    assert main(["report", "--db", str(database), "--out", str(tmp_path / "r.html")]) != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(database) in error and problem in error, error
    with pytest.raises(ReportError):
        queries.connect(database)
