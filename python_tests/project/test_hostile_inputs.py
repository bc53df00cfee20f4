"""Every hostile case of hostile_cases.py: exit code, one clear first line, served file as stated.

The cases run once per session, two at a time (about two minutes); each
test then checks one case. A case that needs a tmpfs mount (read-only file
system, full disk) fails in CI when mounting is not possible, and skips
elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import needs
from project.hostile_cases import CASES, Case, Outcome, can_mount, run_cases

pytestmark = pytest.mark.dbt

MOUNTS = can_mount()


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    cases = [case for case in CASES if MOUNTS or not case.needs_mount]
    return run_cases(cases, Path(tmp_path_factory.mktemp("hostile")))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_case(case: Case, outcomes: dict[str, Outcome]) -> None:
    if case.needs_mount:
        needs(MOUNTS, "this machine cannot mount a tmpfs (needed for a read-only or full disk)")
    outcome = outcomes[case.name]
    shown = f"exit {outcome.returncode}\nstdout: {outcome.stdout}\nstderr: {outcome.stderr}"
    assert outcome.returncode == case.exit_code, shown
    assert case.first_line in outcome.first_line, shown
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.served_state == case.served, shown
    if case.check is not None:
        case.check(outcome)
