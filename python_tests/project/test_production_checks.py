"""What a production build checks by itself: `dbt build` alone, no truth file.

A production run has only `dbt build` (through `loan-recovery build`); a
model that is wrong in a way only pytest's truth files showed would be
published. The singular tests below fail the build instead:

* ``assert_outcome_model_ranks_better_than_chance``: the outcome model's
  AUC interval lies entirely below 0.5 (a label flipped in SQL gives that);
* ``assert_model_card_agrees_with_the_scores``: the card's loans, loss rate
  or AUC differ from the same figures recomputed from recovery_strategies
  (a card computed from the wrong score);
* ``assert_outcome_model_scored_when_it_could``: the outcome model could
  train but its probabilities are missing, or it fell back when it need not.

Each case here damages a copy of the session's sample build the way such a
bug would show in the tables, then runs only those singular tests on it
(`dbt test`, a few seconds): no extra full build. The bugs themselves (a label
flipped in int_loan_features, the card's outcome AUC from the segment
score) were planted in full builds once, by hand, and failed these tests;
the public file, whose interval includes 0.5, still builds
(test_dbt_build.py::test_public_loan_book_builds_unedited).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from conftest import DbtResult, run_dbt

pytestmark = pytest.mark.dbt

CHANCE = "assert_outcome_model_ranks_better_than_chance"
CARD = "assert_model_card_agrees_with_the_scores"
SCORED = "assert_outcome_model_scored_when_it_could"
CHECKS = (CHANCE, CARD, SCORED)

OUTCOME_ROW = "update main.risk_model_metrics set {} where score_name = 'outcome'"

DAMAGE = {
    # A model that learned the label upside down: every probability mirrored,
    # and a card that honestly describes it (AUC 1 - AUC, interval mirrored).
    "ranks resolved loans backwards": (
        [
            "update main.recovery_strategies set loss_probability = 1 - loss_probability",
            OUTCOME_ROW.format(
                "roc_auc = 1 - roc_auc, roc_auc_ci_low = 1 - roc_auc_ci_high, "
                "roc_auc_ci_high = 1 - roc_auc_ci_low"
            ),
        ],
        {CHANCE: "fail", CARD: "pass", SCORED: "pass"},
    ),
    # The card's outcome AUC taken from another score.
    "card from the wrong score": (
        [
            OUTCOME_ROW.format(
                "roc_auc = (select roc_auc from main.risk_model_metrics "
                "where score_name = 'segment')"
            )
        ],
        {CHANCE: "pass", CARD: "fail", SCORED: "pass"},
    ),
    # Trained (no fallback reason) but its probabilities went missing: every
    # value test allows the NULLs a fallback has.
    "probabilities missing": (
        ["update intermediate.int_loan_outcome_scores set loss_probability = null"],
        {CHANCE: "pass", CARD: "pass", SCORED: "fail"},
    ),
    # A trained model whose card lost its AUC.
    "card without an AUC": (
        [OUTCOME_ROW.format("roc_auc = null, roc_auc_ci_low = null, roc_auc_ci_high = null")],
        {CHANCE: "pass", CARD: "fail", SCORED: "fail"},
    ),
}


def statuses(workdir: Path) -> dict[str, str]:
    """Each singular test's status in the run's run_results.json."""
    results = json.loads((workdir / "target" / "run_results.json").read_text())
    return {
        item["unique_id"].split(".")[-1]: item["status"]
        for item in results["results"]
        if item["unique_id"].startswith("test.")
    }


def test_an_honest_build_passes_every_production_check(sample_build: DbtResult) -> None:
    found = statuses(sample_build.database.parent)
    assert {name: found.get(name) for name in CHECKS} == dict.fromkeys(CHECKS, "pass")


def test_a_damaged_build_fails_its_production_checks(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    # One file path for every case, run one after another: dbt's profile
    # stays the same, so only the first run parses the project in full.
    database = tmp_path / "loans.duckdb"
    found = {}
    for case, (statements, _) in DAMAGE.items():
        database.unlink(missing_ok=True)
        shutil.copy(sample_build.database, database)
        with duckdb.connect(str(database)) as connection:
            for statement in statements:
                connection.execute(statement)
        result = run_dbt(tmp_path, "test", "--select", *CHECKS, database=database)
        found[case] = {name: statuses(tmp_path).get(name) for name in CHECKS}
        assert result.returncode != 0, f"{case}: {result.output}"
    assert found == {case: expected for case, (_, expected) in DAMAGE.items()}
