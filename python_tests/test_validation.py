"""Staging validation: one case per quarantine rule, and unreadable files fail clearly."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import DbtResult, run_dbt, valid_loan
from loan_recovery.config import loan_book_columns

# (case name, fields to break, the reason that must be reported)
BROKEN_ROWS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing loan id", {"Loan_ID": ""}, ["loan_id is missing"]),
    ("missing borrower id", {"Borrower_ID": " "}, ["borrower_id is missing"]),
    ("age not a number", {"Age": "abc"}, ["age is not a number"]),
    ("age too low", {"Age": 17}, ["age is outside [18, 100]"]),
    ("age not whole", {"Age": 40.5}, ["age is not a whole number"]),
    ("zero income", {"Monthly_Income": 0}, ["monthly_income is outside (0,"]),
    ("negative amount", {"Loan_Amount": -5}, ["loan_amount is outside (0,"]),
    ("infinite amount", {"Loan_Amount": "1e400"}, ["loan_amount is not a number"]),
    (
        "amount with thousands separator",
        {"Loan_Amount": "500,000"},
        ["loan_amount is not a number"],
    ),
    (
        "impossible amount",
        {"Loan_Amount": 5e11, "Outstanding_Loan_Amount": 1},
        ["loan_amount is outside"],
    ),
    ("zero tenure", {"Loan_Tenure": 0}, ["loan_tenure is outside [1, 480]"]),
    ("rate out of range", {"Interest_Rate": 75}, ["interest_rate is outside [0, 60]"]),
    ("negative collateral", {"Collateral_Value": -1}, ["collateral_value is outside [0,"]),
    (
        "outstanding above amount",
        {"Outstanding_Loan_Amount": 600000},
        ["outstanding_loan_amount is above loan_amount"],
    ),
    ("missing emi", {"Monthly_EMI": ""}, ["monthly_emi is missing"]),
    (
        "missed above tenure",
        {"Num_Missed_Payments": 40, "Days_Past_Due": 1200},
        ["num_missed_payments is above loan_tenure"],
    ),
    ("negative days past due", {"Days_Past_Due": -3}, ["days_past_due is outside [0,"]),
    ("too many dependents", {"Num_Dependents": 25}, ["num_dependents is outside [0, 20]"]),
    (
        "attempts not a number",
        {"Collection_Attempts": "x"},
        ["collection_attempts is not a number"],
    ),
    ("unknown gender", {"Gender": "Robot"}, ["gender has an unknown value"]),
    (
        "unknown employment",
        {"Employment_Type": "Astronaut"},
        ["employment_type has an unknown value"],
    ),
    ("unknown loan type", {"Loan_Type": "Boat"}, ["loan_type has an unknown value"]),
    ("missing payment history", {"Payment_History": ""}, ["payment_history is missing"]),
    (
        "unknown recovery status",
        {"Recovery_Status": "Recovered?"},
        ["recovery_status has an unknown value"],
    ),
    (
        "unknown collection method",
        {"Collection_Method": "Email"},
        ["collection_method has an unknown value"],
    ),
    (
        "unknown legal action",
        {"Legal_Action_Taken": "Maybe"},
        ["legal_action_taken has an unknown value"],
    ),
    (
        "several failures",
        {"Age": "abc", "Loan_Type": "Boat"},
        ["age is not a number", "loan_type has an unknown value"],
    ),
]

# Values that differ from the canonical spelling only in case, spaces or hyphens.
NORMALIZED_ROWS: list[tuple[dict[str, Any], dict[str, str]]] = [
    (
        {"Gender": " male ", "Payment_History": "on time"},
        {"gender": "Male", "payment_history": "On-Time"},
    ),
    (
        {"Recovery_Status": "FULLY RECOVERED", "Employment_Type": "self employed"},
        {"recovery_status": "Fully Recovered", "employment_type": "Self-Employed"},
    ),
]

VALID_ROWS = 6


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> tuple[DbtResult, dict[str, int]]:
    """Build staging once on a file with one broken row per rule; map case -> file row number."""
    import csv

    workdir = tmp_path_factory.mktemp("validation")
    rows: list[dict[str, Any]] = [valid_loan(number) for number in range(1, VALID_ROWS + 1)]
    case_rows: dict[str, int] = {}
    for number, (case, broken, _) in enumerate(BROKEN_ROWS, start=100):
        rows.append({**valid_loan(number), **broken})
        case_rows[case] = len(rows)
    for number, (raw, _) in enumerate(NORMALIZED_ROWS, start=500):
        rows.append({**valid_loan(number), **raw})
    # Two rows sharing one loan id: both are quarantined, nobody can tell which is right.
    rows += [valid_loan(900), {**valid_loan(901), "Loan_ID": "LN_900"}]
    path = workdir / "loans.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=loan_book_columns())
        writer.writeheader()
        writer.writerows(rows)
    result = run_dbt(
        workdir,
        "build",
        "--select",
        "staging",
        "assert_loan_book_rows_reconcile",
        "--indirect-selection",
        "cautious",
        dbt_vars={"loans_path": str(path)},
    )
    assert result.returncode == 0, result.output
    return result, case_rows


@pytest.mark.parametrize(
    ("case", "broken", "reasons"), BROKEN_ROWS, ids=[c[0] for c in BROKEN_ROWS]
)
def test_each_rule_quarantines_its_row_with_a_reason(
    validated: tuple[DbtResult, dict[str, int]],
    case: str,
    broken: dict[str, Any],
    reasons: list[str],
) -> None:
    result, case_rows = validated
    found = result.query(
        f"select reject_reason from quarantined_loans where source_row_number = {case_rows[case]}"
    )
    assert found, f"row for {case!r} was not quarantined"
    reported = found[0][0].split("; ")
    for reason in reasons:
        assert any(part.startswith(reason) for part in reported), (reason, reported)
    assert len(reported) == len(reasons), reported


def test_quarantine_keeps_the_original_values(validated: tuple[DbtResult, dict[str, int]]) -> None:
    result, case_rows = validated
    row = case_rows["amount with thousands separator"]
    assert (
        result.scalar(f"select Loan_Amount from quarantined_loans where source_row_number = {row}")
        == "500,000"
    )


def test_duplicate_loan_ids_quarantine_every_copy(
    validated: tuple[DbtResult, dict[str, int]],
) -> None:
    result, _ = validated
    reasons = result.query("select reject_reason from quarantined_loans where Loan_ID = 'LN_900'")
    assert [reason for (reason,) in reasons] == ["loan_id is duplicated"] * 2


def test_valid_and_normalized_rows_reach_staging(
    validated: tuple[DbtResult, dict[str, int]],
) -> None:
    result, _ = validated
    assert result.scalar("select count(*) from staging.stg_loans") == VALID_ROWS + len(
        NORMALIZED_ROWS
    )
    for number, (_, expected) in enumerate(NORMALIZED_ROWS, start=500):
        columns = ", ".join(expected)
        got = result.query(f"select {columns} from staging.stg_loans where loan_id = 'LN_{number}'")
        assert got == [tuple(expected.values())]


def test_rows_in_equal_clean_plus_quarantined(validated: tuple[DbtResult, dict[str, int]]) -> None:
    result, case_rows = validated
    clean = result.scalar("select count(*) from staging.stg_loans")
    quarantined = result.scalar("select count(*) from quarantined_loans")
    rows_in = VALID_ROWS + len(BROKEN_ROWS) + len(NORMALIZED_ROWS) + 2
    assert clean + quarantined == rows_in
    assert quarantined == len(case_rows) + 2


def _header_only(path: Path) -> None:
    path.write_text(",".join(loan_book_columns()) + "\n", encoding="utf-8")


def _semicolons(path: Path) -> None:
    values = [str(value) for value in valid_loan(1).values()]
    path.write_text(
        ";".join(loan_book_columns()) + "\n" + ";".join(values) + "\n", encoding="utf-8"
    )


def _missing_column(path: Path) -> None:
    columns = loan_book_columns()[:-1]
    values = [str(value) for value in list(valid_loan(1).values())[:-1]]
    path.write_text(",".join(columns) + "\n" + ",".join(values) + "\n", encoding="utf-8")


UNREADABLE_FILES: list[tuple[str, str, Callable[[Path], None] | None, str]] = [
    ("empty file", "loans.csv", lambda path: path.write_bytes(b""), "the file is empty"),
    ("header only", "loans.csv", _header_only, "has a header but no loan rows"),
    (
        "wrong delimiter",
        "loans.csv",
        _semicolons,
        "looks ';'-separated; missing columns Borrower_ID",
    ),
    ("missing column", "loans.csv", _missing_column, "missing columns Legal_Action_Taken"),
    ("no such file", "absent.csv", None, "no such file"),
    (
        "unsupported type",
        "loans.xlsx",
        lambda path: path.write_bytes(b"PK"),
        "unsupported file type",
    ),
]


@pytest.mark.parametrize(
    ("case", "name", "make", "message"), UNREADABLE_FILES, ids=[c[0] for c in UNREADABLE_FILES]
)
def test_unreadable_file_fails_naming_file_and_problem(
    tmp_path: Path, case: str, name: str, make: Callable[[Path], None] | None, message: str
) -> None:
    path = tmp_path / name
    if make:
        make(path)
    result = run_dbt(
        tmp_path, "build", "--select", "stg_loan_book__checked", dbt_vars={"loans_path": str(path)}
    )
    assert result.returncode != 0
    assert f"loans_path '{path}': " in result.output
    assert message in result.output
