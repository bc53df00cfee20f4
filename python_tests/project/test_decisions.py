"""End to end: outcome model, model card, reasons, capacity and the work queue on a real build.

One generated book of 12,000 loans, 30 % open, with its truth file, is
built once by dbt. The model card's numbers are checked against sklearn on
the built file's raw columns (the label from recovery_status, not the
model's own label column), the scores on open loans against the truth
file, and capacity against a ranking done here.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from conftest import DbtResult, copy_build, run_dbt
from loan_recovery.config import project_dir
from loan_recovery.generate import write_loan_book
from reference_metrics import ece

pytestmark = pytest.mark.dbt

ROWS = 12_000


@dataclass(frozen=True)
class Built:
    result: DbtResult
    truth: pd.DataFrame
    book: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    workdir = tmp_path_factory.mktemp("decisions")
    book, truth = workdir / "book.parquet", workdir / "truth.csv"
    write_loan_book(ROWS, book, seed=7, open_share=0.3, truth_out=truth)
    result = run_dbt(workdir, "build", dbt_vars={"loans_path": str(book), "outcome_trees": 60})
    assert result.returncode == 0, result.output
    return Built(result, pd.read_csv(truth), book)


def frame(result: DbtResult, sql: str) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(result.database), read_only=True) as connection:
        return connection.execute(sql).df()


@pytest.fixture(scope="module")
def loans(built: Built) -> pd.DataFrame:
    """Every loan's scores and raw facts, with its true outcome from the truth file."""
    loans = frame(
        built.result,
        "select s.*, l.recovery_status as raw_status from main.recovery_strategies s "
        "join staging.stg_loans l using (loan_id)",
    )
    truth = built.truth.set_index("loan_id")["recovery_status"]
    loans["truly_lost"] = loans["loan_id"].map(truth).ne("Fully Recovered")
    return loans


def test_the_model_card_matches_sklearn_on_the_resolved_loans(built: Built, loans) -> None:
    card = frame(built.result, "select * from main.risk_model_metrics").set_index("score_name")
    resolved = loans[loans["is_resolved"]]
    lost = resolved["raw_status"].ne("Fully Recovered").to_numpy()
    for name, column in (("outcome", "loss_probability"), ("segment", "segment_risk_score")):
        row = card.loc[name]
        scores = resolved[column].to_numpy()
        assert row["evaluated_loans"] == len(resolved)
        assert row["base_rate"] == pytest.approx(lost.mean())
        assert row["roc_auc"] == pytest.approx(roc_auc_score(lost, scores), abs=1e-9)
        assert row["brier_score"] == pytest.approx(brier_score_loss(lost, scores), abs=1e-9)
        assert row["expected_calibration_error"] == pytest.approx(ece(scores, lost), abs=1e-9)
        assert row["roc_auc_ci_low"] < row["roc_auc"] < row["roc_auc_ci_high"]
    dpd = card.loc["days_past_due"]
    assert dpd["roc_auc"] == pytest.approx(roc_auc_score(lost, resolved["days_past_due"]), abs=1e-9)
    assert card.loc["base_rate", "roc_auc"] == pytest.approx(0.5)
    assert card.loc["outcome", "is_score_in_use"] and card["is_score_in_use"].sum() == 1


def test_the_outcome_model_beats_both_baselines_on_open_loans(loans) -> None:
    open_loans = loans[~loans["is_resolved"]]
    truly_lost = open_loans["truly_lost"].to_numpy()
    auc = {
        column: roc_auc_score(truly_lost, open_loans[column])
        for column in ("loss_probability", "segment_risk_score", "days_past_due")
    }
    assert auc["loss_probability"] >= 0.78
    assert auc["loss_probability"] >= auc["segment_risk_score"] + 0.05
    assert auc["loss_probability"] >= auc["days_past_due"] + 0.05
    assert ece(open_loans["loss_probability"].to_numpy(), truly_lost) <= 0.03


def test_legal_holds_far_more_true_losses_than_reminders(loans) -> None:
    open_loans = loans[~loans["is_resolved"]]
    rates = open_loans.groupby("strategy_code")["truly_lost"].mean()
    assert rates["legal"] >= 1.5 * rates["reminders"]


def test_no_open_loan_trains_the_outcome_model(built: Built) -> None:
    counts = built.result.query(
        "select is_resolved, count(*) filter (where is_outcome_training_row) "
        "from intermediate.int_loans_scored group by 1 order by 1"
    )
    assert counts[0] == (False, 0)
    assert counts[1][1] > 0


def test_gains_capture_the_losses_of_the_top_decile(built: Built, loans) -> None:
    gains = frame(built.result, "select * from main.model_gains").set_index(
        ["score_name", "decile"]
    )
    resolved = loans[loans["is_resolved"]].sort_values(
        ["loss_probability", "loan_id"], ascending=[False, True]
    )
    lost = resolved["raw_status"].ne("Fully Recovered").to_numpy()
    top = int(np.ceil(len(resolved) / 10))
    assert gains.loc[("outcome", 1), "cumulative_share_of_losses"] == pytest.approx(
        lost[:top].sum() / lost.sum()
    )
    for score in ("outcome", "segment", "days_past_due"):
        shares = gains.loc[score]["cumulative_share_of_losses"]
        assert shares.is_monotonic_increasing and shares.iloc[-1] == pytest.approx(1.0)
    assert (
        gains.loc[("outcome", 1), "cumulative_share_of_losses"]
        > gains.loc[("segment", 1), "cumulative_share_of_losses"]
    )


def test_policy_comparison_matches_the_loans(built: Built, loans) -> None:
    table = frame(built.result, "select * from main.strategy_policy_comparison")
    policies = table.set_index(["policy_name", "strategy_code"])
    resolved = loans[loans["is_resolved"]]
    in_legal = resolved[resolved["threshold_strategy_code"] == "legal"]
    assert policies.loc[("outcome", "legal"), "loans"] == len(in_legal)
    assert policies.loc[("outcome", "legal"), "loss_rate"] == pytest.approx(
        in_legal["raw_status"].ne("Fully Recovered").mean()
    )
    assert policies.loc[("days_past_due", "legal"), "loans"] == len(in_legal)
    for policy in ("outcome", "segment", "days_past_due"):
        assert policies.loc[policy]["loans"].sum() == len(resolved)


def test_every_open_loan_has_honest_reasons(built: Built, loans) -> None:
    open_loans = loans[~loans["is_resolved"]]
    codes = ["reason_code_1", "reason_code_2", "reason_code_3"]
    count = open_loans[codes].notna().sum(axis=1)
    assert count.between(1, 3).all()
    # Reasons fill from the first: a second never without a first.
    assert (open_loans[codes].notna().cumprod(axis=1).sum(axis=1) == count).all()
    catalog = frame(built.result, "select * from main.reason_code_catalog")
    assert not set(open_loans[codes].stack().dropna()) - set(catalog["reason_code"])

    # Sum each loan's contributions per code, from the catalog's feature lists.
    contributions = frame(built.result, "select * from intermediate.int_loan_contributions")
    assert set(contributions["loan_id"]) == set(open_loans["loan_id"])
    features = catalog[catalog["reason_kind"] == "raises_risk"].set_index("reason_code")["features"]
    per_code = pd.DataFrame(
        {
            code: contributions[
                [c for c in contributions if c.split("__")[0] in listed.split("|")]
            ].sum(axis=1)
            for code, listed in features.items()
        }
    ).set_index(contributions["loan_id"])
    merged = (
        open_loans.set_index("loan_id")
        .join(per_code)
        .join(contributions.set_index("loan_id")["bias"])
    )
    nothing = merged["reason_code_1"] == "R00"
    # R00 only alone, exactly on the loans no code raises, which score below the bias.
    assert merged.loc[nothing, ["reason_code_2", "reason_code_3"]].isna().all().all()
    assert ((merged[features.index] > 0).any(axis=1) == ~nothing).all()
    assert (merged.loc[nothing, "risk_score"] < merged.loc[nothing, "bias"]).all()
    assert nothing.mean() < 0.05
    # Named reasons raise the risk, the largest first.
    explained = merged[~nothing]
    sums = [
        explained.apply(lambda row, c=c: row[row[c]] if pd.notna(row[c]) else np.nan, axis=1)
        for c in codes
    ]
    assert (sums[0] > 0).all()
    assert (sums[0] >= sums[1].fillna(-np.inf)).all()
    assert (sums[1].dropna() >= sums[2].reindex(sums[1].dropna().index).fillna(-np.inf)).all()


def test_legal_capacity_keeps_the_largest_amounts_at_risk(built: Built, tmp_path: Path) -> None:
    database = tmp_path / "loans.duckdb"
    copy_build(built.result.database, database)
    result = run_dbt(
        tmp_path,
        "build",
        "--select",
        "stg_run_settings",
        "run_settings",
        "int_loan_strategies",
        "recovery_strategies",
        "collection_work_queue",
        # Every loan in the champion cell, and legal open to every loan: the
        # thresholds' capacity alone (the cells, the explore-first queue and
        # eligibility have their own unit tests).
        dbt_vars={
            "loans_path": str(built.book),
            "legal_capacity": 100,
            "outcome_trees": 60,
            "challenger_share": 0,
            "explore_share": 0,
            "legal_min_days_past_due": 0,
        },
        database=database,
    )
    assert result.returncode == 0, result.output
    worked = frame(result, "select * from main.recovery_strategies where is_worked")
    assert set(worked["cell"]) == {"champion"}
    above_legal = worked[worked["threshold_strategy_code"] == "legal"].sort_values(
        ["amount_at_risk", "risk_score", "loan_id"], ascending=[False, False, True]
    )
    assert len(above_legal) > 100
    kept = set(above_legal["loan_id"].iloc[:100])
    assert set(worked.loc[worked["strategy_code"] == "legal", "loan_id"]) == kept
    moved = above_legal.iloc[100:]
    assert (moved["strategy_code"] == "settlement").all() and moved["capacity_limited"].all()
    queue = frame(result, "select * from main.collection_work_queue where strategy_code = 'legal'")
    assert (
        queue.sort_values("queue_rank")["loan_id"].tolist()
        == above_legal["loan_id"].iloc[:100].tolist()
    )


def test_too_few_resolved_loans_fall_back_to_the_segment_score(tmp_path: Path) -> None:
    result = run_dbt(tmp_path, "build", dbt_vars={"min_resolved_loans": 100_000})
    assert result.returncode == 0, result.output
    assert result.query("select distinct score_source from main.recovery_strategies") == [
        ("segment",)
    ]
    status, reason, in_use = result.query(
        "select model_status, fallback_reason, is_score_in_use from main.risk_model_metrics "
        "where score_name = 'outcome'"
    )[0]
    assert status == "fallback" and not in_use
    assert reason.startswith("1502 resolved loans, fewer than min_resolved_loans (100000)")
    # Nothing is registered when the outcome model fell back: no model_version anywhere.
    for table in ("run_settings", "recovery_strategies", "collection_work_queue"):
        assert result.query(f"select distinct model_version from main.{table}") == [(None,)]
    assert result.query("select distinct model_version from main.risk_model_metrics") == [(None,)]
    assert (
        result.scalar(
            "select count(*) from main.recovery_strategies where loss_probability is not null"
        )
        == 0
    )


def test_strategy_score_segment_uses_the_write_ups_score(tmp_path: Path) -> None:
    result = run_dbt(tmp_path, "build", dbt_vars={"strategy_score": "segment"})
    assert result.returncode == 0, result.output
    assert result.query(
        "select count(*) filter (where risk_score <> segment_risk_score), "
        "count(distinct score_source) from main.recovery_strategies"
    ) == [(0, 1)]
    assert (
        result.scalar("select score_name from main.risk_model_metrics where is_score_in_use")
        == "segment"
    )


def test_a_post_outcome_column_smuggled_into_a_feature_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    listed = subprocess.run(
        [
            "git",
            "-C",
            str(project_dir()),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (project_dir() / name).is_file():
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(project_dir() / name, project / name)
    features = project / "models" / "intermediate" / "int_loan_features.sql"
    text = features.read_text()
    leaked = text.replace(
        "cast({{ feature }} as double) as {{ feature }},",
        "cast({{ 'coalesce(collection_attempts, 0)' if feature == 'interest_rate' else feature }}"
        " as double) as {{ feature }},",
    )
    assert leaked != text
    features.write_text(leaked)
    result = run_dbt(
        tmp_path, "build", "--project-dir", str(project), "--profiles-dir", str(project)
    )
    assert result.returncode != 0
    assert "leak sentinel: feature 'interest_rate' alone ranks the outcome" in result.output
