"""Staging validation: a case per quarantine rule, malformed rows, kept values, unreadable files."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import DbtResult, run_dbt, valid_loan
from loan_recovery.config import loan_book_columns
from loan_recovery.generate import generate_loan_book

pytestmark = pytest.mark.dbt

# (case name, fields to break, the reasons that must be reported)
BROKEN_ROWS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("missing loan id", {"Loan_ID": ""}, ["loan_id is missing"]),
    ("missing borrower id", {"Borrower_ID": " "}, ["borrower_id is missing"]),
    ("age not a number", {"Age": "abc"}, ["age is not a number"]),
    ("age too low", {"Age": 17}, ["age is outside [18, 100]"]),
    ("age too high", {"Age": 101}, ["age is outside [18, 100]"]),
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
    ("tenure not whole", {"Loan_Tenure": 12.5}, ["loan_tenure is not a whole number"]),
    ("rate out of range", {"Interest_Rate": 75}, ["interest_rate is outside [0, 60]"]),
    ("negative rate", {"Interest_Rate": -0.5}, ["interest_rate is outside [0, 60]"]),
    ("negative collateral", {"Collateral_Value": -1}, ["collateral_value is outside [0,"]),
    (
        "negative outstanding",
        {"Outstanding_Loan_Amount": -1},
        ["outstanding_loan_amount is outside [0,"],
    ),
    (
        "outstanding far above amount",
        {"Outstanding_Loan_Amount": 800000},
        ["outstanding_loan_amount is above 1.5 x loan_amount"],
    ),
    ("missing emi", {"Monthly_EMI": ""}, ["monthly_emi is missing"]),
    ("negative emi", {"Monthly_EMI": -0.01}, ["monthly_emi is outside [0,"]),
    (
        "missed above tenure",
        {"Num_Missed_Payments": 40, "Days_Past_Due": 1200},
        ["num_missed_payments is above loan_tenure"],
    ),
    (
        "negative missed payments",
        {"Num_Missed_Payments": -1},
        ["num_missed_payments is outside [0,"],
    ),
    (
        "missed payments not whole",
        {"Num_Missed_Payments": 1.5},
        ["num_missed_payments is not a whole number"],
    ),
    ("negative days past due", {"Days_Past_Due": -3}, ["days_past_due is outside [0,"]),
    ("days past due not whole", {"Days_Past_Due": 3.5}, ["days_past_due is not a whole number"]),
    ("too many dependents", {"Num_Dependents": 25}, ["num_dependents is outside [0, 20]"]),
    ("dependents not whole", {"Num_Dependents": 1.5}, ["num_dependents is not a whole number"]),
    (
        "attempts not a number",
        {"Collection_Attempts": "x"},
        ["collection_attempts is not a number"],
    ),
    ("negative attempts", {"Collection_Attempts": -1}, ["collection_attempts is outside [0,"]),
    (
        "attempts not whole",
        {"Collection_Attempts": 2.5},
        ["collection_attempts is not a whole number"],
    ),
    ("missing payment history", {"Payment_History": ""}, ["payment_history is missing"]),
    ("missing gender", {"Gender": ""}, ["gender is missing"]),
    (
        "unknown recovery status",
        {"Recovery_Status": "Recovered?"},
        ["recovery_status has an unknown value"],
    ),
    (
        "unknown legal action",
        {"Legal_Action_Taken": "Maybe"},
        ["legal_action_taken has an unknown value"],
    ),
    (
        "several failures",
        {"Age": "abc", "Recovery_Status": "?"},
        ["age is not a number", "recovery_status has an unknown value"],
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

# Unknown values of descriptive categories: the loan is kept, the value normalised.
KEPT_ROWS: list[tuple[dict[str, Any], dict[str, str]]] = [
    ({"Employment_Type": " UNEMPLOYED "}, {"employment_type": "Unemployed"}),
    ({"Employment_Type": "unemployed"}, {"employment_type": "Unemployed"}),
    ({"Gender": "non  binary"}, {"gender": "Non Binary"}),
    ({"Loan_Type": "Boat"}, {"loan_type": "Boat"}),
    ({"Payment_History": "restructured"}, {"payment_history": "Restructured"}),
    ({"Collection_Method": "Email"}, {"collection_method": "Email"}),
    # Outstanding above the amount (arrears, fees) within the allowed ratio.
    ({"Outstanding_Loan_Amount": 650000}, {"outstanding_loan_amount": "650000.0"}),
]

VALID_ROWS = 6

# Raw lines that the CSV reader cannot split into the header's 21 fields. The
# unterminated quote comes after every other line holding a quote: a later
# line that closes a quote would (rightly) make the two one quoted field.
HEADER_FIELDS = len(loan_book_columns())


def _line(row: dict[str, Any]) -> str:
    out = io.StringIO()
    csv.DictWriter(out, fieldnames=loan_book_columns(), lineterminator="").writerow(row)
    return out.getvalue()


MALFORMED_LINES: list[tuple[str, str, str]] = [
    (
        "ragged",
        _line(valid_loan(700)) + ",extra",
        f"malformed row: {HEADER_FIELDS + 1} fields, the header has {HEADER_FIELDS}",
    ),
    (
        "short",
        ",".join(_line(valid_loan(701)).split(",")[:15]),
        f"malformed row: 15 fields, the header has {HEADER_FIELDS}",
    ),
    (
        "text after a closing quote",
        _line(valid_loan(703)).replace("LN_703", '"LN_"703'),
        "malformed row: text after the closing quote of a field",
    ),
    (
        "unterminated quote",
        _line(valid_loan(702)).replace("LN_702", '"LN_702'),
        "malformed row: a quote opened on line",
    ),
    ("blank line", "", "blank line"),
]


@dataclass(frozen=True)
class Validated:
    result: DbtResult
    case_rows: dict[str, int]
    """case -> source_row_number (the row's data line, header not counted)."""


def build_validation(workdir: Path, loans: Path) -> DbtResult:
    """Build staging, the loan book's marts and the rows-reconcile test: what validation needs."""
    return run_dbt(
        workdir,
        "build",
        "--select",
        "staging",
        "marts.loan_book",
        "assert_loan_book_rows_reconcile",
        "--indirect-selection",
        "cautious",
        dbt_vars={"loans_path": str(loans)},
    )


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Validated:
    """Build staging once on a file with one broken row per rule and each malformed kind."""
    workdir = tmp_path_factory.mktemp("validation")
    lines: list[str] = [",".join(loan_book_columns())]
    case_rows: dict[str, int] = {}

    def add(case: str | None, text: str) -> None:
        lines.append(text)
        if case:
            case_rows[case] = len(lines) - 1

    for number in range(1, VALID_ROWS + 1):
        add(None, _line(valid_loan(number)))
    for number, (case, broken, _) in enumerate(BROKEN_ROWS, start=100):
        add(case, _line({**valid_loan(number), **broken}))
    for number, (raw, _) in enumerate(NORMALIZED_ROWS, start=500):
        add(None, _line({**valid_loan(number), **raw}))
    for number, (raw, _) in enumerate(KEPT_ROWS, start=600):
        add(None, _line({**valid_loan(number), **raw}))
    # Two rows sharing one loan id: both are quarantined, nobody can tell which is right.
    add("duplicate (first)", _line(valid_loan(900)))
    add("duplicate (second)", _line({**valid_loan(901), "Loan_ID": "LN_900"}))
    for case, text, _ in MALFORMED_LINES:
        add(case, text)
        # Reading resumes right after a malformed line: the next row is a loan.
        add(f"after {case}", _line(valid_loan(800 + len(case_rows))))
    # A row starting with '#' is data (no comment character), not a comment.
    add("hash row", _line({**valid_loan(950), "Borrower_ID": "#BRW_950"}))
    path = workdir / "loans.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = build_validation(workdir, path)
    assert "assert_loan_book_rows_reconcile" in result.output, result.output
    assert result.returncode == 0, result.output
    return Validated(result, case_rows)


def _reasons(validated: Validated, case: str) -> list[str]:
    found = validated.result.query(
        "select reject_reason from main.quarantined_loans "
        f"where source_row_number = {validated.case_rows[case]}"
    )
    assert found, f"row for {case!r} was not quarantined"
    return found[0][0].split("; ")


@pytest.mark.parametrize(
    ("case", "broken", "reasons"), BROKEN_ROWS, ids=[c[0] for c in BROKEN_ROWS]
)
def test_each_rule_quarantines_its_row_with_a_reason(
    validated: Validated, case: str, broken: dict[str, Any], reasons: list[str]
) -> None:
    reported = _reasons(validated, case)
    for reason in reasons:
        assert any(part.startswith(reason) for part in reported), (reason, reported)
    assert len(reported) == len(reasons), reported


@pytest.mark.parametrize(
    ("case", "text", "reason"), MALFORMED_LINES, ids=[c[0] for c in MALFORMED_LINES]
)
def test_malformed_line_is_quarantined_with_its_line_and_reading_resumes(
    validated: Validated, case: str, text: str, reason: str
) -> None:
    assert _reasons(validated, case)[0].startswith(reason)
    row = validated.case_rows[case]
    line_number, raw_line = validated.result.query(
        f"select source_line_number, raw_line from main.quarantined_loans "
        f"where source_row_number = {row}"
    )[0]
    assert line_number == row + 1  # the header is line 1
    if text:
        assert raw_line == text
    after = validated.case_rows[f"after {case}"]
    assert (
        validated.result.scalar(
            f"select count(*) from staging.stg_loans where source_row_number = {after}"
        )
        == 1
    ), f"the row after the {case} line was not read as a loan"


def test_unterminated_quote_names_its_own_line(validated: Validated) -> None:
    line = validated.case_rows["unterminated quote"] + 1
    assert _reasons(validated, "unterminated quote") == [
        f"malformed row: a quote opened on line {line} is never closed"
    ]


def test_a_row_starting_with_hash_is_a_loan(validated: Validated) -> None:
    assert validated.result.query(
        "select borrower_id from staging.stg_loans where loan_id = 'LN_950'"
    ) == [("#BRW_950",)]


def test_quarantine_keeps_the_original_values(validated: Validated) -> None:
    row = validated.case_rows["amount with thousands separator"]
    assert (
        validated.result.scalar(
            f"select Loan_Amount from main.quarantined_loans where source_row_number = {row}"
        )
        == "500,000"
    )


def test_duplicate_loan_ids_quarantine_every_copy(validated: Validated) -> None:
    reasons = validated.result.query(
        "select reject_reason from main.quarantined_loans where Loan_ID = 'LN_900'"
    )
    assert [reason for (reason,) in reasons] == ["loan_id is duplicated"] * 2


def test_valid_normalized_and_kept_rows_reach_staging(validated: Validated) -> None:
    result = validated.result
    expected_rows = VALID_ROWS + len(NORMALIZED_ROWS) + len(KEPT_ROWS) + len(MALFORMED_LINES) + 1
    assert result.scalar("select count(*) from staging.stg_loans") == expected_rows
    for start, cases in ((500, NORMALIZED_ROWS), (600, KEPT_ROWS)):
        for number, (_, expected) in enumerate(cases, start=start):
            columns = ", ".join(f"cast({name} as varchar)" for name in expected)
            got = result.query(
                f"select {columns} from staging.stg_loans where loan_id = 'LN_{number}'"
            )
            assert got == [tuple(expected.values())], number


def test_unknown_values_and_high_outstanding_are_counted_for_data_stewards(
    validated: Validated,
) -> None:
    found = set(
        validated.result.query(
            "select finding, column_name, category_value, loan_count from main.loan_book_quality"
        )
    )
    assert found == {
        ("unknown_category_value", "employment_type", "Unemployed", 2),
        ("unknown_category_value", "gender", "Non Binary", 1),
        ("unknown_category_value", "loan_type", "Boat", 1),
        ("unknown_category_value", "payment_history", "Restructured", 1),
        ("unknown_category_value", "collection_method", "Email", 1),
        ("outstanding_above_loan_amount", "outstanding_loan_amount", None, 1),
    }


def test_rows_in_equal_clean_plus_quarantined(validated: Validated) -> None:
    result = validated.result
    clean = result.scalar("select count(*) from staging.stg_loans")
    quarantined = result.scalar("select count(*) from main.quarantined_loans")
    rows_in = (
        VALID_ROWS
        + len(BROKEN_ROWS)
        + len(NORMALIZED_ROWS)
        + len(KEPT_ROWS)
        + 2
        + 2 * len(MALFORMED_LINES)
        + 1
    )
    assert clean + quarantined == rows_in
    assert quarantined == len(BROKEN_ROWS) + 2 + len(MALFORMED_LINES)


def test_a_quoted_field_may_span_lines(tmp_path: Path) -> None:
    columns = [*loan_book_columns(), "Notes"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerow({**valid_loan(1), "Notes": 'first line\nsecond, with "quotes"'})
    writer.writerow({**valid_loan(2), "Notes": "plain"})
    path = tmp_path / "notes.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result = build_validation(tmp_path, path)
    assert result.returncode == 0, result.output
    assert result.query("select loan_id, source_row_number from staging.stg_loans order by 2") == [
        ("LN_1", 1),
        ("LN_2", 3),
    ]


def test_a_parquet_book_with_boolean_flags_builds(tmp_path: Path) -> None:
    book = generate_loan_book(60, seed=3)
    table = pa.Table.from_pandas(book, preserve_index=False)
    legal = pa.array(book["Legal_Action_Taken"].eq("Yes").to_numpy())
    table = table.set_column(
        table.schema.get_field_index("Legal_Action_Taken"), "Legal_Action_Taken", legal
    )
    path = tmp_path / "book.parquet"
    pq.write_table(table, path)
    result = build_validation(tmp_path, path)
    assert result.returncode == 0, result.output
    assert result.scalar("select count(*) from main.quarantined_loans") == 0
    got = dict(result.query("select loan_id, legal_action_taken from staging.stg_loans"))
    expected = dict(zip(book["Loan_ID"], book["Legal_Action_Taken"].eq("Yes"), strict=True))
    assert got == expected


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


def _repeated_column(path: Path) -> None:
    columns = [*loan_book_columns(), "loan_id"]
    values = [str(value) for value in valid_loan(1).values()] + ["LN_X"]
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
    ("repeated column", "loans.csv", _repeated_column, "the header names Loan_ID more than once"),
    ("no such file", "absent.csv", None, "no such file"),
    (
        "unsupported type",
        "loans.xlsx",
        lambda path: path.write_bytes(b"PK"),
        "unsupported file type",
    ),
    (
        "glob characters (plain dbt)",
        "book[1].csv",
        _header_only,
        "the path holds the glob character '['",
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
