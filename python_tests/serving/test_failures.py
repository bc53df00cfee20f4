"""failures: a failed dbt run summed up in one line, with the exit code it earns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_USAGE, BuildError
from loan_recovery.serving.dbt_run import DbtRun
from loan_recovery.serving.failures import (
    check_every_node_passed,
    quarantine_summary,
    summarize_dbt_failure,
    warnings_of,
)
from serving.helpers import a_loan_book


def result(
    unique_id: str, status: str, message: str, started: str = "2026-01-01T00:00:01Z"
) -> dict[str, Any]:
    return {
        "unique_id": unique_id,
        "status": status,
        "message": message,
        "timing": [{"started_at": started}],
    }


def test_summary_names_the_file_for_a_reader_error_and_calls_it_bad_input() -> None:
    loans = a_loan_book()
    run = DbtRun(
        1,
        {
            "results": [
                result(
                    "model.loan_recovery.stg_loan_book__checked",
                    "error",
                    "Runtime Error in model x\n  Invalid Input Error: No magic bytes found at "
                    f'end of file "{loans.reader_path}"',
                )
            ]
        },
        "",
    )
    failure = summarize_dbt_failure(run, loans, Path("/srv/bi"))
    assert (failure.step, failure.exit_code) == ("dbt", EXIT_BAD_INPUT)
    # The user's name, never the descriptor path dbt read it through.
    assert failure.reason == "loans_path '/data/book.csv': No magic bytes found at end of file"


def test_summary_prefers_the_projects_own_messages() -> None:
    run = DbtRun(
        1,
        {
            "results": [
                result("test.p.assert_x", "error", "other", "2026-01-01T00:00:00Z"),
                result(
                    "model.p.stg",
                    "error",
                    "Compilation Error in model stg (m)\n  loans_path 'f': bad",
                ),
            ]
        },
        "",
    )
    failure = summarize_dbt_failure(run, None, Path("/srv"))
    assert (failure.reason, failure.exit_code) == ("loans_path 'f': bad", EXIT_BAD_INPUT)


def test_summary_reports_the_first_failed_node_and_counts_the_rest() -> None:
    run = DbtRun(
        1,
        {
            "results": [
                result("model.p.a", "success", ""),
                result("test.p.not_null_b.123", "fail", "Got 2 results", "2026-01-01T00:00:03Z"),
                result(
                    "unit_test.p.features.wrong_ratio",
                    "fail",
                    "actual differs from expected:\n\n@@ ,x",
                    "2026-01-01T00:00:02Z",
                ),
            ]
        },
        "",
    )
    failure = summarize_dbt_failure(run, None, Path("/srv"))
    assert failure.exit_code == EXIT_FAILED
    assert failure.reason == (
        "unit test features.wrong_ratio failed: actual differs from expected:"
        " (and 1 more: see the log)"
    )


def test_summary_of_bad_vars_from_on_run_start_is_a_usage_error() -> None:
    output = (
        "\x1b[0m21:44:29  Encountered an error:\n"
        "Compilation Error in operation loan_recovery-on-run-start-0 (./dbt_project.yml)\n"
        "  invalid --vars: legal_threshold must be a number between 0 and 1, got 1.5\n"
    )
    failure = summarize_dbt_failure(DbtRun(2, None, output), None, Path("/srv"))
    assert (
        failure.reason
        == "invalid --vars: legal_threshold must be a number between 0 and 1, got 1.5"
    )
    assert failure.exit_code == EXIT_USAGE


def test_summary_without_run_results_reads_dbt_output() -> None:
    output = "21:44:29  Encountered an error:\nRuntime Error\n  Could not connect to x\n"
    failure = summarize_dbt_failure(DbtRun(2, None, output), None, Path("/srv"))
    assert failure.reason.startswith("dbt stopped (exit 2): ")
    assert failure.exit_code == EXIT_FAILED


def test_summary_of_a_full_disk_names_the_directory() -> None:
    run = DbtRun(1, None, "IO Error: could not write: No space left on device\n")
    assert summarize_dbt_failure(run, None, Path("/srv/bi")).reason == "no space left on /srv/bi"


def test_warnings_are_listed() -> None:
    results = {
        "results": [result("test.p.expression_is_true_stg_loans_x.1", "warn", "Got 1 result")]
    }
    assert warnings_of(results) == ["data test expression_is_true_stg_loans_x: Got 1 result"]


def test_skipped_nodes_block_publishing_but_exposures_do_not() -> None:
    ok = DbtRun(0, {"results": [result("exposure.p.bi", "skipped", "")]}, "")
    check_every_node_passed(ok)
    skipped = DbtRun(0, {"results": [result("model.p.m", "skipped", "")]}, "")
    with pytest.raises(BuildError, match="model m"):
        check_every_node_passed(skipped)
    with pytest.raises(BuildError, match=r"no run_results\.json"):
        check_every_node_passed(DbtRun(0, None, ""))


def test_no_valid_loans_summary(tmp_path: Path) -> None:
    database = tmp_path / "b.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema staging")
        connection.execute("create table staging.stg_loans (loan_id varchar)")
        connection.execute(
            "create table main.quarantined_loans as select * from (values "
            "('age is not a number'), ('age is not a number; loan_type has an unknown value'))"
            " as t(reject_reason)"
        )
    summary = quarantine_summary(database, "'book.csv'")
    assert summary is not None
    assert summary.startswith("no valid loans: all 2 rows of 'book.csv' quarantined")
    assert "age is not a number (2)" in summary
