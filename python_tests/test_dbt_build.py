"""End to end: `dbt build` (seeds, models, unit and data tests) on the sample and real files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from conftest import PUBLIC_LOAN_BOOK, DbtResult, run_dbt
from loan_recovery.config import cluster_features, post_outcome_columns, project_vars

MARTS = ["recovery_strategies", "borrower_segments", "risk_model_metrics"]


def test_sample_build_runs_every_node_and_passes(sample_build: DbtResult) -> None:
    results = json.loads((sample_build.database.parent / "target" / "run_results.json").read_text())
    statuses = {
        result["unique_id"]: result["status"]
        for result in results["results"]
        if not result["unique_id"].startswith("exposure.")
    }
    failed = {
        node: status for node, status in statuses.items() if status not in {"success", "pass"}
    }
    assert not failed, failed
    kinds = {node.split(".")[0] for node in statuses}
    assert {"seed", "model", "test", "unit_test"} <= kinds


def test_every_valid_loan_gets_segment_score_and_strategy(sample_build: DbtResult) -> None:
    loans = sample_build.scalar("select count(*) from staging.stg_loans")
    assert loans > 0
    for table in ["int_loan_segments", "int_loan_risk_scores", "recovery_strategies"]:
        assert sample_build.scalar(f"select count(distinct loan_id) from {table}") == loans, table
    rows_in = sample_build.scalar("select count(*) from staging.sample_loan_book")
    quarantined = sample_build.scalar("select count(*) from quarantined_loans")
    assert rows_in == loans + quarantined


def test_feature_list_has_no_post_outcome_column() -> None:
    assert len(cluster_features()) == 10
    assert not set(cluster_features()) & set(post_outcome_columns())


def test_sql_auc_matches_sklearn(sample_build: DbtResult) -> None:
    rows = sample_build.query(
        "select s.risk_score, g.is_high_risk from intermediate.int_loan_risk_scores s "
        "join intermediate.int_loan_segments g using (loan_id) where s.is_training_row"
    )
    expected = roc_auc_score([label for _, label in rows], [score for score, _ in rows])
    assert sample_build.scalar("select oof_roc_auc_label from risk_model_metrics") == pytest.approx(
        expected
    )


def _strategy_recount(result: DbtResult, legal: float, settlement: float) -> dict[str, int]:
    recount = result.query(
        f"""
        select
            count(*) filter (where risk_score > {legal}),
            count(*) filter (where risk_score >= {settlement} and risk_score <= {legal}),
            count(*) filter (where risk_score < {settlement})
        from intermediate.int_loan_risk_scores
        """
    )[0]
    return dict(zip(["legal", "settlement", "reminders"], recount, strict=True))


@pytest.mark.parametrize(("legal", "settlement"), [(0.75, 0.5), (0.6, 0.2), (0.9, 0.9)])
def test_thresholds_by_var_move_the_assignment_exactly(
    sample_build: DbtResult, tmp_path: Path, legal: float, settlement: float
) -> None:
    database = tmp_path / "loans.duckdb"
    shutil.copy(sample_build.database, database)
    result = run_dbt(
        tmp_path,
        "run",
        "--select",
        "recovery_strategies",
        dbt_vars={"legal_threshold": legal, "settlement_threshold": settlement},
        database=database,
    )
    assert result.returncode == 0, result.output
    assigned = dict(
        result.query("select strategy_code, count(*) from recovery_strategies group by 1")
    )
    expected = {
        code: count for code, count in _strategy_recount(result, legal, settlement).items() if count
    }
    assert assigned == expected


@pytest.mark.parametrize(
    ("dbt_vars", "message"),
    [
        (
            {"legal_threshold": 0.4, "settlement_threshold": 0.6},
            "must not be above legal_threshold",
        ),
        ({"legal_threshold": 1.5}, "legal_threshold must be a number between 0 and 1"),
        ({"settlement_threshold": "high"}, "settlement_threshold must be a number between 0 and 1"),
    ],
)
def test_bad_thresholds_stop_the_run_before_anything_is_built(
    tmp_path: Path, dbt_vars: dict[str, object], message: str
) -> None:
    result = run_dbt(tmp_path, "build", dbt_vars=dbt_vars)
    assert result.returncode != 0
    assert message in result.output
    assert not result.database.exists() or not result.query(
        "select table_name from information_schema.tables"
    )


def test_vars_defaults_are_the_documented_ones() -> None:
    defaults = project_vars()
    assert (defaults["legal_threshold"], defaults["settlement_threshold"]) == (0.75, 0.5)
    assert defaults["n_segments"] == 4


@pytest.mark.skipif(
    not PUBLIC_LOAN_BOOK.is_file(), reason=f"public loan book not found at {PUBLIC_LOAN_BOOK}"
)
def test_public_loan_book_builds_unedited(tmp_path: Path) -> None:
    result = run_dbt(tmp_path, "build", dbt_vars={"loans_path": str(PUBLIC_LOAN_BOOK)})
    assert result.returncode == 0, result.output
    assert result.scalar("select count(*) from staging.stg_loans") == 500
    assert result.scalar("select count(*) from recovery_strategies") == 500
    assert result.scalar("select oof_roc_auc_label from risk_model_metrics") >= 0.95
    for mart in MARTS:
        assert result.scalar(f"select count(*) from {mart}") > 0


def test_docs_generate_documents_marts_and_business_rules(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    database = tmp_path / "loans.duckdb"
    shutil.copy(sample_build.database, database)
    result = run_dbt(tmp_path, "docs", "generate", database=database)
    assert result.returncode == 0, result.output
    catalog = json.loads((tmp_path / "target" / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert set(MARTS) <= documented
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    strategies = manifest["nodes"]["model.loan_recovery.recovery_strategies"]
    assert "settlement_threshold up to and including legal_threshold" in strategies["description"]
    exposures = {exposure["name"] for exposure in manifest["exposures"].values()}
    assert exposures == {"loan_recovery_report", "bi_dashboards"}


def test_builds_of_the_same_book_give_identical_scores(tmp_path: Path) -> None:
    # Caps below the sample size exercise the sampled fit, where DuckDB's row
    # order could leak into the model if the sample depended on it.
    caps = {"segmentation_sample_rows": 700, "scoring_sample_rows": 900}
    for run in range(2):
        (tmp_path / str(run)).mkdir()
    builds = [run_dbt(tmp_path / str(run), "build", dbt_vars=caps) for run in range(2)]
    checks = (
        "select loan_id, segment_id, risk_score, model_version from recovery_strategies order by 1"
    )
    for build in builds:
        assert build.returncode == 0, build.output
    first, second = (build.query(checks) for build in builds)
    assert first == second
    assert (
        builds[0].scalar(
            "select count(*) from intermediate.int_loan_risk_scores where is_training_row"
        )
        == 900
    )
