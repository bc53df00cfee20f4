"""End to end: `dbt build` (seeds, models, unit and data tests) on the sample and real files."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from sklearn.metrics import roc_auc_score

from conftest import (
    DBT,
    MODEL_VERSION_TABLES,
    PUBLIC_LOAN_BOOK,
    DbtResult,
    copy_build,
    needs,
    run_dbt,
)
from loan_recovery.config import project_dir, reference
from loan_recovery.modelling.registry import model_facts, register

pytestmark = pytest.mark.dbt

MARTS = ["recovery_strategies", "borrower_segments", "risk_model_metrics"]
ANALYST_TABLES = {
    # the decision marts (models/marts/decisions/), served beside the others
    "action_effects",
    "challenger_results",
    "challenger_strategy_results",
    "cycle_trend",
    "decision_cycles",
    "decision_log",
    "decision_outcomes",
    "borrower_segments",
    "collection_work_queue",
    "model_fairness",
    "model_gains",
    "model_monitoring",
    "reason_code_catalog",
    "strategy_policy_comparison",
    "loan_book_quality",
    "quarantined_loans",
    "recovery_strategies",
    "recovery_strategy_catalog",
    "risk_model_metrics",
    "run_settings",
}


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
    for table in [
        "intermediate.int_loan_segments",
        "intermediate.int_loan_segment_scores",
        "intermediate.int_loan_outcome_scores",
        "main.recovery_strategies",
    ]:
        assert sample_build.scalar(f"select count(distinct loan_id) from {table}") == loans, table
    rows_in = sample_build.scalar("select count(*) from staging.sample_loan_book")
    quarantined = sample_build.scalar("select count(*) from main.quarantined_loans")
    assert rows_in == loans + quarantined


def test_analysts_see_only_the_marts_in_the_default_schema(sample_build: DbtResult) -> None:
    tables = {name for (name,) in sample_build.query("show tables")}
    assert tables == ANALYST_TABLES
    layers = dict(
        sample_build.query(
            "select table_name, schema_name from duckdb_tables() where table_name like 'stg%' "
            "or table_name like 'int%'"
        )
    )
    assert set(layers.values()) == {"staging", "intermediate"}


def test_model_version_is_the_registry_id_this_build_would_be_saved_as(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    # A plain dbt build registers nothing, but the id its marts carry is the
    # one `loan-recovery build` would save its models as (registry.register
    # over this build's model store), so `models approve` takes what a user sees.
    store = sample_build.database.with_name(sample_build.database.name + ".models")
    saved_as = register(
        store,
        tmp_path / "registry",
        facts=model_facts(reference()),
        model_card=[],
        created_at="2026-01-01T00:00:00Z",
    )
    shown = {}
    for table, where in MODEL_VERSION_TABLES:
        try:
            shown[table] = sample_build.query(
                f"select distinct model_version from main.{table} {where}"
            )
        except duckdb.Error as error:
            shown[table] = str(error).splitlines()[0]
    assert shown == {table: [(saved_as,)] for table in shown}
    # Each model's own content hash is kept under a name that says so.
    assert sample_build.query(
        "select score_name, model_status, fallback_reason from main.risk_model_metrics "
        "order by score_name"
    ) == [
        ("base_rate", None, None),
        ("days_past_due", None, None),
        ("outcome", "trained", None),
        ("segment", "trained", None),
    ]


def test_no_served_column_is_a_128_bit_integer(sample_build: DbtResult) -> None:
    # BI drivers (JDBC, ODBC, Arrow consumers, DuckDB 1.x clients) read
    # HUGEINT poorly or as strings; counts fit in BIGINT.
    wide = sample_build.query(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = 'main' and data_type in ('HUGEINT', 'UHUGEINT') "
        "order by all"
    )
    assert wide == []
    assert sample_build.scalar(
        "select count(distinct table_name) from information_schema.columns "
        "where table_schema = 'main'"
    ) == len(ANALYST_TABLES)


def test_sql_auc_matches_sklearn(sample_build: DbtResult) -> None:
    rows = sample_build.query(
        "select s.segment_risk_score, g.is_high_risk from intermediate.int_loan_segment_scores s "
        "join intermediate.int_loan_segments g using (loan_id) where s.is_training_row"
    )
    expected = roc_auc_score([label for _, label in rows], [score for score, _ in rows])
    assert sample_build.scalar(
        "select label_roc_auc from risk_model_metrics where score_name = 'segment'"
    ) == pytest.approx(expected)


@pytest.mark.parametrize(("legal", "settlement"), [(0.75, 0.5), (0.6, 0.2), (0.9, 0.9)])
def test_thresholds_by_var_reach_run_settings_and_split_the_scores(
    sample_build: DbtResult, tmp_path: Path, legal: float, settlement: float
) -> None:
    database = tmp_path / "loans.duckdb"
    copy_build(sample_build.database, database)
    result = run_dbt(
        tmp_path,
        "run",
        "--select",
        "stg_run_settings",
        "run_settings",
        "int_loan_strategies",
        "recovery_strategies",
        dbt_vars={"legal_threshold": legal, "settlement_threshold": settlement},
        database=database,
    )
    assert result.returncode == 0, result.output
    assert result.query("select legal_threshold, settlement_threshold from run_settings") == [
        (legal, settlement)
    ]
    # Every band the thresholds make holds exactly the loans whose score
    # falls in it, and a band with loans in it is never missing (the
    # boundaries themselves are the unit tests' job). Capacity is unlimited.
    counts = dict(
        result.query("select threshold_strategy_code, count(*) from recovery_strategies group by 1")
    )
    expected = dict(
        result.query(
            f"select 'legal', count(*) filter (where risk_score > {legal}) "
            "from recovery_strategies union all "
            f"select 'settlement', count(*) filter (where risk_score >= {settlement} "
            f"and risk_score <= {legal}) from recovery_strategies union all "
            f"select 'reminders', count(*) filter (where risk_score < {settlement}) "
            "from recovery_strategies"
        )
    )
    assert counts == {band: loans for band, loans in expected.items() if loans}
    if legal > settlement:
        assert set(counts) == {"legal", "settlement", "reminders"}
    total = result.scalar("select count(*) from recovery_strategies")
    assert total == sample_build.scalar("select count(*) from staging.stg_loans")


@pytest.mark.parametrize(
    ("dbt_vars", "message"),
    [
        (
            {"legal_threshold": 0.4, "settlement_threshold": 0.6},
            "must not be above legal_threshold",
        ),
        ({"legal_threshold": 1.5}, "legal_threshold must be a number between 0 and 1"),
        ({"settlement_threshold": "high"}, "settlement_threshold must be a number between 0 and 1"),
        ({"n_segments": 1}, "n_segments must be a whole number from 2 to 1000"),
        ({"reference": {"category_values": {}}}, "'reference' holds the project's fixed facts"),
        ({"legal_threshold": "{{ 0.9 }}"}, "legal_threshold holds Jinja"),
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


def test_public_loan_book_builds_unedited(tmp_path: Path) -> None:
    needs(PUBLIC_LOAN_BOOK.is_file(), f"the public loan book is not at {PUBLIC_LOAN_BOOK}")
    result = run_dbt(tmp_path, "build", dbt_vars={"loans_path": str(PUBLIC_LOAN_BOOK)})
    assert result.returncode == 0, result.output
    assert result.scalar("select count(*) from staging.stg_loans") == 500
    assert result.scalar("select count(*) from recovery_strategies") == 500
    card = dict(
        result.query(
            "select score_name, [roc_auc, roc_auc_ci_low, roc_auc_ci_high, label_roc_auc] "
            "from risk_model_metrics"
        )
    )
    # The write-up's pipeline reproduces its segment label; on 500 loans with
    # these facts no score ranks the real outcome reliably: the outcome
    # model's interval includes chance (the README says what that means).
    assert card["segment"][3] >= 0.95
    low, high = card["outcome"][1], card["outcome"][2]
    assert low < 0.5 < high
    for mart in MARTS:
        assert result.scalar(f"select count(*) from {mart}") > 0


@pytest.fixture(scope="module")
def docs_generated(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``dbt docs generate`` over a copy of the sample build (it compiles the analyses too).

    The copy is named compiled_against.duckdb, so SQL that kept the catalog
    of the file dbt compiled against names it.
    """
    workdir = tmp_path_factory.mktemp("docs")
    database = copy_build(sample_build.database, workdir / "compiled_against.duckdb")
    result = run_dbt(workdir, "docs", "generate", database=database)
    assert result.returncode == 0, result.output
    return workdir / "target"


def test_docs_generate_documents_marts_and_business_rules(docs_generated: Path) -> None:
    catalog = json.loads((docs_generated / "catalog.json").read_text())
    documented = {node["metadata"]["name"] for node in catalog["nodes"].values()}
    assert set(MARTS) <= documented
    manifest = json.loads((docs_generated / "manifest.json").read_text())
    strategies = manifest["nodes"]["model.loan_recovery.recovery_strategies"]
    assert "settlement_threshold up to and including legal_threshold" in strategies["description"]
    exposures = {exposure["name"] for exposure in manifest["exposures"].values()}
    assert exposures == {
        "loan_recovery_report",
        "bi_dashboards",
        "collection_work_queue_export",
        "model_validation",
        "loan_book_review",
    }


def test_every_served_column_is_described(docs_generated: Path) -> None:
    # What an analyst or a BI tool sees (schema main) is documented column by
    # column: dbt's catalog lists the built columns, the manifest their yml.
    catalog = json.loads((docs_generated / "catalog.json").read_text())
    manifest = json.loads((docs_generated / "manifest.json").read_text())
    served = {
        unique_id: node
        for unique_id, node in catalog["nodes"].items()
        if node["metadata"]["schema"] == "main"
    }
    assert {node["metadata"]["name"] for node in served.values()} == ANALYST_TABLES
    undescribed = sorted(
        f"{node['metadata']['name']}.{column}"
        for unique_id, node in served.items()
        for column in node["columns"]
        if not manifest["nodes"][unique_id]["columns"]
        .get(column, {})
        .get("description", "")
        .strip()
    )
    assert undescribed == []


def test_compiled_analyses_run_against_a_renamed_build_file(
    sample_build: DbtResult, docs_generated: Path, tmp_path: Path
) -> None:
    # An analyst compiles analysis/ once and runs the SQL against whatever
    # file they open (the served one, a copy, last month's): the compiled
    # SQL must not name the catalog of the file dbt compiled against.
    compiled = sorted((docs_generated / "compiled").rglob("analysis/*.sql"))
    sources = sorted((project_dir() / "analysis").glob("*.sql"))
    assert [path.name for path in compiled] == [path.name for path in sources]
    renamed = tmp_path / "another_name.duckdb"
    shutil.copy(sample_build.database, renamed)
    failures = {}
    with duckdb.connect(str(renamed), read_only=True) as connection:
        for path in compiled:
            sql = path.read_text(encoding="utf-8")
            if "compiled_against" in sql:
                failures[path.name] = "names the catalog compiled_against"
                continue
            try:
                connection.execute(sql).fetchall()
            except duckdb.Error as error:
                failures[path.name] = str(error).splitlines()[0]
    assert failures == {}


def test_the_same_book_shuffled_gives_identical_segments_and_scores(tmp_path: Path) -> None:
    # Caps below the book's size exercise the sampled fits, where row order
    # could leak into the model if the sample or a seed depended on it.
    caps = {"segmentation_sample_rows": 700, "scoring_sample_rows": 900, "outcome_sample_rows": 800}
    seed = project_dir() / "seeds" / "sample_loan_book.csv"
    header, *rows = seed.read_text(encoding="utf-8").splitlines()
    random.Random(7).shuffle(rows)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    builds = []
    for name, loans in (("seed", None), ("shuffled", shuffled)):
        (tmp_path / name).mkdir()
        extra = {"loans_path": str(loans)} if loans else {}
        builds.append(run_dbt(tmp_path / name, "build", dbt_vars={**caps, **extra}))
    for build in builds:
        assert build.returncode == 0, build.output
    checks = (
        "select loan_id, segment_id, loss_probability, segment_risk_score, reason_code_1, "
        "model_version from main.recovery_strategies "
        "order by 1"
    )
    first, second = (build.query(checks) for build in builds)
    assert len(first) == 2000
    assert first == second
    positions = builds[1].query(
        "select loan_id, source_row_number from staging.stg_loans order by 2 limit 3"
    )
    assert [loan for loan, _ in positions] != ["LN_1", "LN_2", "LN_3"], "the file was not shuffled"
    assert (
        builds[0].scalar(
            "select count(*) from intermediate.int_loan_segment_scores where is_training_row"
        )
        == 900
    )


def test_other_k_segments_end_to_end(sample_build: DbtResult, tmp_path: Path) -> None:
    database = tmp_path / "loans.duckdb"
    copy_build(sample_build.database, database)
    result = run_dbt(
        tmp_path,
        "build",
        "--select",
        "int_loan_segments+",
        dbt_vars={"n_segments": 5, "scoring_trees": 20},
        database=database,
    )
    assert result.returncode == 0, result.output
    segments = result.query(
        "select segment_id, segment_name, is_high_risk from borrower_segments order by 1"
    )
    assert [segment_id for segment_id, _, _ in segments] == [1, 2, 3, 4, 5]
    assert len({name for _, name, _ in segments}) == 5
    assert [high for _, _, high in segments] == [False, False, False, True, True]


def test_dbt_build_works_with_the_package_installed_outside_the_project(tmp_path: Path) -> None:
    # What `pip install .` leaves: the package in site-packages, away from
    # dbt_project.yml. A copy on PYTHONPATH shadows the editable install, and
    # dbt runs from another directory, so nothing can find the project by
    # the package's location or the working directory.
    site = tmp_path / "site-packages"
    shutil.copytree(project_dir() / "src" / "loan_recovery", site / "loan_recovery")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    database = tmp_path / "loans.duckdb"
    command = [
        DBT, "build", "--project-dir", str(project_dir()), "--profiles-dir", str(project_dir()),
        "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path),
        "--vars", "{scoring_trees: 10}",
    ]  # fmt: skip
    environment = {
        **os.environ,
        "PYTHONPATH": str(site),
        "LOAN_RECOVERY_DB": str(database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    environment.pop("LOAN_RECOVERY_PROJECT_DIR", None)
    done = subprocess.run(
        command, cwd=elsewhere, env=environment, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    probe = subprocess.run(
        [sys.executable, "-c", "import loan_recovery; print(loan_recovery.__file__)"],
        cwd=elsewhere, env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.startswith(str(site))
