"""dbt_results: the one line of a dbt message worth showing a user."""

from __future__ import annotations

import pytest

from loan_recovery import dbt_results


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Compilation Error in model stg_loan_book__checked (models/staging/x.sql)\n"
            "  loans_path '/d/x.csv': the file is empty\n  \n"
            "  > in macro check_loan_book_file (macros/loan_book_source.sql)\n",
            "loans_path '/d/x.csv': the file is empty",
        ),
        (
            "Runtime Error in model stg_loan_book__checked (models/staging/x.sql)\n"
            "  Invalid Input Error: CSV Error on Line: 2\n  Original Line: a,b\n"
            "  Invalid unicode (byte sequence mismatch) detected.\n\n  Possible Solution: x\n",
            "CSV error on line 2: Invalid unicode (byte sequence mismatch) detected.",
        ),
        (
            "Runtime Error in model int_loan_segments (models/intermediate/int_loan_segments.py)\n"
            "  Python model failed:\n  Traceback (most recent call last):\n"
            '    File "x.py", line 9, in model\n'
            "  ValueError: cannot form 500 segments from 200 loan(s)\n",
            "Python model failed: ValueError: cannot form 500 segments from 200 loan(s)",
        ),
        ("Got 3 results, configured to fail if != 0", "Got 3 results, configured to fail if != 0"),
        ("", "no error message (see the log)"),
    ],
)
def test_first_meaningful_line(message: str, expected: str) -> None:
    assert dbt_results.first_meaningful_line(message) == expected
