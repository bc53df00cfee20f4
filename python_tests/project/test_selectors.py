"""The two runs of ``loan-recovery build`` as dbt selectors (selectors.yml): what each builds.

The full build is every node but the unit tests (they test the SQL, not the
book; the plain ``dbt build`` of the session fixture ``sample_build`` runs
them, and test_dbt_build checks they ran). The decision run builds what a
month's decisions need and nothing of the model card, and runs a data test
only when every model it reads is built (indirect selection ``cautious``):
an eager test of a model it skips would fail on a missing table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_dbt
from loan_recovery.report.decision_run import NOT_IN_A_DECISION_RUN
from loan_recovery.serving.build import SELECTORS

pytestmark = pytest.mark.dbt

DECISION_MARTS = {
    "recovery_strategies",
    "collection_work_queue",
    "decision_log",
    "decision_outcomes",
    "decision_cycles",
    "cycle_trend",
    "action_effects",
    "model_monitoring",
    "quarantined_loans",
    "loan_book_quality",
    "run_settings",
}


def listed(workdir: Path, *selection: str) -> dict[str, dict[str, Any]]:
    """unique_id -> node, of what ``dbt ls`` selects."""
    result = run_dbt(
        workdir,
        "ls",
        "--quiet",
        "--output",
        "json",
        "--output-keys",
        "unique_id resource_type name depends_on",
        *selection,
    )
    assert result.returncode == 0, result.output
    nodes = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return {node["unique_id"]: node for node in nodes}


@pytest.fixture(scope="module")
def selections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    workdir = tmp_path_factory.mktemp("selectors")
    return {
        "all": listed(workdir),
        **{kind: listed(workdir, "--selector", name) for kind, name in SELECTORS.items()},
    }


def test_the_full_build_is_every_node_but_the_unit_tests(
    selections: dict[str, dict[str, dict[str, Any]]],
) -> None:
    every = selections["all"]
    unit_tests = {uid for uid, node in every.items() if node["resource_type"] == "unit_test"}
    assert len(unit_tests) >= 10
    assert set(selections["full"]) == set(every) - unit_tests


def test_the_decision_run_builds_the_decisions_and_none_of_the_model_card(
    selections: dict[str, dict[str, dict[str, Any]]],
) -> None:
    decision = selections["decision"]
    models = {node["name"] for node in decision.values() if node["resource_type"] == "model"}
    assert models >= DECISION_MARTS
    skipped = {name.split(".")[1] for name, _ in NOT_IN_A_DECISION_RUN} - {"recovery_strategies"}
    assert len(skipped) == 6
    assert not skipped & models
    assert not any(node["resource_type"] == "unit_test" for node in decision.values())
    for uid, node in decision.items():
        if node["resource_type"] == "test":
            unbuilt = [parent for parent in node["depends_on"]["nodes"] if parent not in decision]
            assert not unbuilt, f"{uid} reads {unbuilt}, which the decision run does not build"
    tests = [uid for uid, node in decision.items() if node["resource_type"] == "test"]
    assert len(tests) > 100
