"""The guard behind `make test-fast`: which commands count as running dbt.

conftest's audit hook fails an unmarked test whose process starts one of
these; if it missed a way of starting dbt, a slow test could slip into the
fast loop unseen.
"""

from __future__ import annotations

import pytest

from conftest import starts_dbt


@pytest.mark.parametrize(
    ("command", "runs_dbt"),
    [
        (["/venv/bin/dbt", "build", "--vars", "{}"], True),
        (["/venv/bin/loan-recovery", "build", "--db", "x.duckdb"], True),
        (["setpriv", "--reuid=65534", "/venv/bin/loan-recovery", "build"], True),
        (["python", "-m", "dbt", "parse"], True),
        ("cd /p && /venv/bin/dbt run --select x", True),
        ("loan-recovery build --loans 'it''s.csv", True),  # an unbalanced quote
        (b"/venv/bin/dbt debug", True),
        (["/venv/bin/loan-recovery", "report", "--db", "build.duckdb"], False),
        (["/venv/bin/loan-recovery", "models", "list"], False),
        (["/venv/bin/loan-recovery", "rollback"], False),
        (["python", "-c", "print('dbt build')"], False),
        (["chromium", "--headless", "/tmp/dbt/report.html"], False),
    ],
)
def test_commands_that_run_dbt_are_recognised(command: object, runs_dbt: bool) -> None:
    assert starts_dbt(command) is runs_dbt
