"""Both sides of every numeric validation rule: just outside is quarantined, on the bound is kept.

The table below is the rules as docs block ``validation_rules`` states them,
written here independently of the SQL that applies them, and it must name
every numeric column of the loan book (a new numeric column without bounds
here fails). For each rule the file holds a loan just below the minimum,
one just above the maximum (each quarantined with that column's reason and
no other), and one at each bound (kept). A rule whose lower or upper
comparison were dropped would let its "outside" loan through.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import DbtResult, valid_loan
from loan_recovery.config import category_values, loan_book_columns, snake_case
from project.test_validation import build_validation

pytestmark = pytest.mark.dbt


@dataclass(frozen=True)
class Bounds:
    column: str
    """The loan book's column name."""
    low: float
    high: float
    whole: bool
    low_exclusive: bool = False
    together: dict[str, Any] | None = None
    """Other fields a loan on a bound needs to pass the rules across fields."""

    @property
    def step(self) -> float:
        return 1 if self.whole else 0.01

    def cases(self) -> list[tuple[str, Any, bool]]:
        """(case, value, kept) for just below, at the low bound, at the high bound, just above."""
        at_low = self.low + self.step if self.low_exclusive else self.low
        below = self.low if self.low_exclusive else self.low - self.step
        return [
            ("below min", below, False),
            ("at min", at_low, True),
            ("at max", self.high, True),
            ("above max", self.high + self.step, False),
        ]


BOUNDS = [
    Bounds("Age", 18, 100, whole=True),
    Bounds("Monthly_Income", 0, 1e9, whole=False, low_exclusive=True),
    Bounds("Num_Dependents", 0, 20, whole=True),
    Bounds(
        "Loan_Amount",
        0,
        1e11,
        whole=False,
        low_exclusive=True,
        together={"Outstanding_Loan_Amount": 0},
    ),
    Bounds("Loan_Tenure", 1, 480, whole=True, together={"Num_Missed_Payments": 0}),
    Bounds("Interest_Rate", 0, 60, whole=False),
    Bounds("Collateral_Value", 0, 1e12, whole=False),
    Bounds("Outstanding_Loan_Amount", 0, 1e11, whole=False, together={"Loan_Amount": 1e11}),
    Bounds("Monthly_EMI", 0, 1e10, whole=False),
    Bounds("Num_Missed_Payments", 0, 480, whole=True, together={"Loan_Tenure": 480}),
    Bounds("Days_Past_Due", 0, 36500, whole=True),
    Bounds("Collection_Attempts", 0, 1000, whole=True),
]

CASES = [(bounds, case, value, kept) for bounds in BOUNDS for case, value, kept in bounds.cases()]
IDS = [f"{bounds.column} {case} ({value:g})" for bounds, case, value, _ in CASES]


def loan_id(index: int) -> str:
    return f"LN_BOUND_{index}"


def test_the_table_covers_every_numeric_column_of_the_loan_book() -> None:
    descriptive = {"Borrower_ID", "Loan_ID"} | {
        column for column in loan_book_columns() if snake_case(column) in category_values()
    }
    numeric = [column for column in loan_book_columns() if column not in descriptive]
    assert sorted(bounds.column for bounds in BOUNDS) == sorted(numeric)


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> DbtResult:
    """One loan book with every case; staging, the quarantine and the reconcile test built."""
    workdir = tmp_path_factory.mktemp("bounds")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=loan_book_columns(), lineterminator="\n")
    writer.writeheader()
    for index, (bounds, _, value, _) in enumerate(CASES):
        row = {**valid_loan(index), **(bounds.together or {}), bounds.column: value}
        writer.writerow({**row, "Loan_ID": loan_id(index)})
    path: Path = workdir / "loans.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result = build_validation(workdir, path)
    assert result.returncode == 0, result.output
    return result


@pytest.mark.parametrize(("bounds", "case", "value", "kept"), CASES, ids=IDS)
def test_each_side_of_each_numeric_rule(
    bounded: DbtResult, bounds: Bounds, case: str, value: float, kept: bool
) -> None:
    index = CASES.index((bounds, case, value, kept))
    clean = bounded.scalar(
        f"select count(*) from staging.stg_loans where loan_id = '{loan_id(index)}'"
    )
    reasons = bounded.query(
        f"select reject_reason from main.quarantined_loans where Loan_ID = '{loan_id(index)}'"
    )
    if kept:
        assert (clean, reasons) == (1, []), f"{bounds.column} = {value} must be kept"
    else:
        assert clean == 0, f"{bounds.column} = {value} reached stg_loans"
        assert [reason.split("; ") for (reason,) in reasons] == [
            [
                f"{snake_case(bounds.column)} is outside "
                f"{'(' if bounds.low_exclusive else '['}{bounds.low:g}, {int(bounds.high)}]"
            ]
        ]
