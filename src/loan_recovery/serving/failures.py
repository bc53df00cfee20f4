"""Why ``dbt build`` failed, in one line, and whose fault it is (the exit code).

Three kinds of failure: bad settings (``invalid --vars``, exit 2), a loan
book that cannot be read (``loans_path '<file>': ...``, exit 3), and
anything else (exit 1), reported as the first node that failed. dbt's
messages wrap the cause in headers and call stacks; loan_recovery.dbt_results
finds the line that says what is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from loan_recovery.dbt_results import (
    FAILED_STATUSES,
    clean_line,
    error_from_output,
    first_meaningful_line,
    node_failures,
)
from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_USAGE, BuildError
from loan_recovery.serving.dbt_run import DbtRun
from loan_recovery.serving.loan_book import LoanBook

_OWN_MESSAGES = (("invalid --vars", EXIT_USAGE), ("loans_path '", EXIT_BAD_INPUT))


def _own_message(text: str) -> tuple[str, int] | None:
    """A line the project's own checks raised, with its exit code."""
    for line in text.splitlines():
        cleaned = " ".join(clean_line(line).split())
        for marker, code in _OWN_MESSAGES:
            if marker in cleaned:
                return cleaned[cleaned.index(marker) :], code
    return None


def summarize_dbt_failure(run: DbtRun, loans: LoanBook | None, build_root: Path) -> BuildError:
    """One :class:`BuildError` (step ``dbt``) saying why ``dbt build`` failed."""
    if "No space left on device" in run.output:
        return BuildError("dbt", f"no space left on {build_root}")
    failures = node_failures(run.results, FAILED_STATUSES)
    texts = [failure.message for failure in failures] or [run.output]
    for text in texts:
        own = _own_message(text)
        if own:
            return BuildError("dbt", own[0], exit_code=own[1])
    if not failures:
        return BuildError(
            "dbt", f"dbt stopped (exit {run.returncode}): {error_from_output(run.output)}"
        )
    first = failures[0]
    detail = first_meaningful_line(first.message)
    if loans is not None and loans.reader_path in first.message + first.compiled_code:
        for quoted in (f' "{loans.reader_path}"', f" '{loans.reader_path}'"):
            detail = detail.replace(quoted, "")
        detail = detail.replace(loans.reader_path, "the file")
        detail = re.sub(r"^Invalid Input Error: ", "", detail)
        return BuildError("dbt", f"loans_path '{loans.name}': {detail}", exit_code=EXIT_BAD_INPUT)
    more = len(failures) - 1
    suffix = f" (and {more} more: see the log)" if more else ""
    verb = "failed" if first.status.lower() == "fail" else "errored"
    return BuildError("dbt", f"{first.label} {verb}: {detail}{suffix}", exit_code=EXIT_FAILED)


def quarantine_summary(database: Path, loans_label: str) -> str | None:
    """ "No valid loans" when staging quarantined every row; None otherwise.

    An empty ``stg_loans`` makes the models downstream fail with messages
    about empty inputs; the real answer is that the book had no good row.
    """
    if not database.is_file():
        return None
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            clean = connection.execute("select count(*) from staging.stg_loans").fetchone()
            quarantined = connection.execute(
                "select count(*) from main.quarantined_loans"
            ).fetchone()
            if clean is None or quarantined is None or clean[0] != 0 or quarantined[0] == 0:
                return None
            reasons = connection.execute(
                "select reason, count(*) from ("
                " select unnest(string_split(reject_reason, '; ')) as reason"
                " from main.quarantined_loans) group by reason order by 2 desc, 1 limit 3"
            ).fetchall()
    except duckdb.Error:
        return None
    top = ", ".join(f"{reason} ({count})" for reason, count in reasons)
    return (
        f"no valid loans: all {quarantined[0]} rows of {loans_label} quarantined "
        f"(most common: {top}); see quarantined_loans in the failed build file"
    )


def warnings_of(results: Mapping[str, Any] | None) -> list[str]:
    """Warn-severity tests that found rows: reported, but they do not block publishing."""
    return [
        f"{warning.label}: {first_meaningful_line(warning.message)}"
        for warning in node_failures(results, frozenset({"warn"}))
    ]


def check_every_node_passed(run: DbtRun) -> None:
    """dbt's exit code 0 is necessary; also require no error, failure or skipped node."""
    if run.results is None:
        raise BuildError("dbt", "dbt wrote no run_results.json (see the log)")
    blocked = [
        failure
        for failure in node_failures(run.results, FAILED_STATUSES | {"skipped"})
        if failure.kind != "exposure"
    ]
    if blocked:
        names = ", ".join(failure.label for failure in blocked[:5])
        raise BuildError("dbt", f"dbt reported success but these did not pass: {names}")
