"""The model registry end to end: train, approve, score next month's book frozen, watch drift.

Through the real command, as a lender runs it: a seed-1 book trains and
saves an artifact, which is approved; a seed-2 book (holding some seed-1
open loans verbatim) and a drifted book are then scored with
``--model approved``. Copies of the registry are tampered with to check
that every unusable artifact is refused in one line with nothing published.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import MODEL_VERSION_TABLES, query, run_cli, served_build_info, sha256
from loan_recovery.generate import DRIFTED, write_loan_book
from loan_recovery.modelling.registry import MANIFEST, record_manifest
from loan_recovery.report import queries
from loan_recovery.report.facts import build_facts, header_rows

pytestmark = pytest.mark.dbt

ROWS = 3_000
SHARED = 40
"""Seed-1 open loans copied verbatim into the seed-2 book."""
EXIT_BAD_INPUT = 3
UNTOUCHED_BY_DRIFT = ["age", "loan_tenure", "interest_rate", "loan_type", "employment_type"]
DRIFTED_FEATURES = ["monthly_income", "days_past_due", "num_missed_payments"]


@dataclass(frozen=True)
class Registry:
    root: Path
    served: Path
    registry: Path
    version: str
    trained: Path
    """A copy of the training build's served file."""
    frozen_log: str
    shared_ids: list[str]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build(served: Path, *args: str) -> str:
    result = run_cli("build", "--db", str(served), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("registry")
    served = root / "served.duckdb"
    first, second = root / "seed1.csv", root / "seed2.csv"
    write_loan_book(ROWS, first, seed=1, open_share=0.3)
    write_loan_book(ROWS, second, seed=2, open_share=0.3)

    out = build(served, "--loans", str(first))
    (version,) = re.findall(r"trained models saved as ([0-9a-f]{12})", out)
    trained = shutil.copy2(served, root / "trained.duckdb")
    approved = run_cli("models", "--db", str(served), "approve", version)
    assert approved.returncode == 0, approved.stderr

    # Seed-1 open loans join the seed-2 book unchanged (their ids replace
    # the seed-2 loans that carry the same ids).
    shared = [row for row in read_rows(first) if row["Recovery_Status"] == ""][:SHARED]
    shared_ids = [row["Loan_ID"] for row in shared]
    kept = [row for row in read_rows(second) if row["Loan_ID"] not in set(shared_ids)]
    write_rows(second, kept + shared)

    out = build(served, "--loans", str(second), "--model", "approved")
    assert f"scored with frozen model {version}: nothing trained" in out
    build_log = Path(build_info_dir(out)) / "build.log"
    return Registry(
        root,
        served,
        served.with_name(served.name + ".registry"),
        version,
        Path(trained),
        build_log.read_text(encoding="utf-8"),
        shared_ids,
    )


def build_info_dir(stdout: str) -> str:
    return next(line.split("logs: ", 1)[1] for line in stdout.splitlines() if "logs: " in line)


def model_versions_shown(database: Path) -> dict[str, object]:
    """Every model_version a user of ``database`` meets, by where they meet it."""
    with queries.connect(database) as connection:
        facts = build_facts(queries.read_report_data(connection, sample_rows=10), str(database))
    header = {label: value for label, value, _ in header_rows(facts)}
    shown: dict[str, object] = {
        "report header": header["Model version"],
        "build_info": served_build_info(database)["model_version"],
    }
    for table, where in MODEL_VERSION_TABLES:
        try:
            found = query(database, f"select distinct model_version from main.{table} {where}")
        except duckdb.Error as error:
            found = [(f"{type(error).__name__}: {str(error).splitlines()[0]}",)]
        shown[table] = found[0][0] if len(found) == 1 else found
    return shown


def test_the_model_version_everywhere_is_the_id_models_approve_takes(
    registry: Registry, tmp_path: Path
) -> None:
    # The trained build printed "trained models saved as <version>": the
    # report, build_info, run_settings and every mart name that id, the one
    # `models list` prints and `models approve` takes.
    shown = model_versions_shown(registry.trained)
    assert shown == dict.fromkeys(shown, registry.version)
    assert model_versions_shown(registry.served) == dict.fromkeys(shown, registry.version)
    registry_copy = tmp_path / "served.duckdb.registry"
    shutil.copytree(registry.registry, registry_copy)
    (registry_copy / "APPROVED").unlink()
    approved = run_cli(
        "models", "--db", str(tmp_path / "served.duckdb"), "approve", str(shown["report header"])
    )
    assert approved.returncode == 0, approved.stderr
    assert json.loads((registry_copy / "APPROVED").read_text())["version"] == registry.version


def test_a_frozen_build_trains_nothing_and_back_tests_the_model(registry: Registry) -> None:
    info = served_build_info(registry.served)
    assert (info["model_mode"], info["model_version"]) == ("frozen", registry.version)
    card = {
        row[0]: row[1:]
        for row in query(
            registry.served,
            "select score_name, model_status, training_rows, model_version, evaluated_loans, "
            "roc_auc from main.risk_model_metrics",
        )
    }
    for score in ("outcome", "segment"):
        status, training_rows, version, evaluated, _ = card[score]
        assert (status, training_rows, version) == ("frozen", 0, registry.version)
    # The back-test: the frozen outcome model judged on the new book's resolved loans.
    status, _, _, evaluated, auc = card["outcome"]
    assert evaluated > 0.6 * ROWS
    assert auc > card["days_past_due"][4]
    assert "nothing is trained in this build" in registry.frozen_log
    assert "model times: " in registry.frozen_log


def test_a_loan_in_both_books_gets_the_same_scores_and_reasons(registry: Registry) -> None:
    ids = ", ".join(f"'{loan_id}'" for loan_id in registry.shared_ids)
    columns = (
        "loan_id, loss_probability, risk_score, segment_id, segment_name, threshold_strategy_code, "
        "reason_code_1, reason_code_2, reason_code_3, amount_at_risk"
    )
    sql = (
        f"select {columns} from main.recovery_strategies where loan_id in ({ids}) order by loan_id"
    )
    trained, frozen = query(registry.trained, sql), query(registry.served, sql)
    assert len(frozen) == SHARED
    assert frozen == trained


def monitoring(database: Path) -> dict[str, tuple[float, str]]:
    rows = query(database, "select variable, psi, stability from main.model_monitoring")
    return {variable: (psi, stability) for variable, psi, stability in rows}


def test_next_months_book_is_stable_against_the_stored_bins(registry: Registry) -> None:
    shifts = monitoring(registry.served)
    assert {"monthly_income", "loan_type", "loss_probability", "segment_risk_score"} <= set(shifts)
    assert len(shifts) == 20
    assert all(psi < 0.10 for psi, _ in shifts.values()), shifts
    assert query(registry.served, "select distinct compared_with from main.model_monitoring") == [
        (f"the training population of model {registry.version}",)
    ]


def test_a_drifted_book_is_flagged_where_it_drifted(registry: Registry, tmp_path: Path) -> None:
    served = tmp_path / "served.duckdb"
    shutil.copytree(registry.registry, served.with_name(served.name + ".registry"))
    drifted = tmp_path / "drifted.csv"
    write_loan_book(ROWS, drifted, seed=3, open_share=0.3, population=DRIFTED)
    out = build(served, "--loans", str(drifted), "--model", "approved")
    shifts = monitoring(served)
    for variable in DRIFTED_FEATURES:
        assert shifts[variable][1] == "significant", (variable, shifts[variable])
        assert f"drift: {variable} (feature)" in out
    for variable in UNTOUCHED_BY_DRIFT:
        assert shifts[variable][1] == "stable", (variable, shifts[variable])
    assert "warning: data test assert_no_significant_population_shift" in out


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def copy(registry: Registry, tmp_path: Path) -> Registry:
    """The served file and its registry, copied: a refusal is checked on the copy."""
    served = tmp_path / "served.duckdb"
    shutil.copy2(registry.served, served)
    target = served.with_name(served.name + ".registry")
    shutil.copytree(registry.registry, target)
    write_loan_book(200, tmp_path / "book.csv", seed=5)
    return Registry(
        tmp_path, served, target, registry.version, registry.trained, "", registry.shared_ids
    )


def refused(copy: Registry, *args: str) -> str:
    """Build the seed-2 book with ``args``; must fail in one line with the served file unchanged."""
    before = sha256(copy.served)
    result = run_cli(
        "build", "--db", str(copy.served), "--loans", str(copy.root / "book.csv"), *args
    )
    lines = result.stderr.splitlines()
    assert result.returncode == EXIT_BAD_INPUT, result.stderr
    assert lines[0].startswith("build failed at step model: "), lines
    assert lines[1] == f"  nothing published; served file unchanged: {copy.served}"
    assert "Traceback" not in result.stderr
    assert sha256(copy.served) == before
    return lines[0].removeprefix("build failed at step model: ")


def test_a_tampered_artifact_is_refused(copy: Registry) -> None:
    trees = copy.registry / copy.version / "outcome" / "trees.npz"
    data = bytearray(trees.read_bytes())
    data[len(data) // 2] ^= 0x01
    trees.write_bytes(bytes(data))
    reason = refused(copy, "--model", "approved")
    assert reason == (
        f"model {copy.version}: outcome/trees.npz does not match its sha256 in the manifest "
        f"({len(data)} bytes); the artifact was changed or truncated"
    )


def test_a_truncated_artifact_is_refused(copy: Registry) -> None:
    arrays = copy.registry / copy.version / "segmentation" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    assert "segmentation/arrays.npz does not match its sha256" in refused(
        copy, "--model", copy.version
    )


def edit_manifest(copy: Registry, edit: dict[str, object], *, record: bool = True) -> None:
    """Edit the manifest; with ``record``, also its sha256 in the registry's record.

    Recording the edit (what someone who can write the whole registry can
    do) lets a test reach the check behind the record: facts, libraries,
    the approval's own pin.
    """
    path = copy.registry / copy.version / MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for key, value in edit.items():
        section, _, name = key.partition(".")
        if name:
            manifest[section][name] = value
        else:
            manifest[section] = value
    path.write_text(json.dumps(manifest), encoding="utf-8")
    if record:
        record_manifest(copy.registry, copy.version, sha256(path))


def test_an_artifact_for_another_feature_list_is_refused(copy: Registry) -> None:
    edit_manifest(copy, {"facts.cluster_features": ["age", "monthly_income"]})
    reason = refused(copy, "--model", copy.version)
    assert reason.startswith(
        f"model {copy.version} was built for cluster_features ['age', 'monthly_income'], "
        "this project has ['age', 'monthly_income', 'loan_amount'"
    )


def test_an_artifact_for_another_category_set_is_refused(copy: Registry) -> None:
    edit_manifest(copy, {"facts.category_values": {"loan_type": ["Personal"]}})
    assert "was built for category_values" in refused(copy, "--model", copy.version)


def test_an_artifact_from_another_scikit_learn_is_refused(copy: Registry) -> None:
    edit_manifest(copy, {"libraries.scikit_learn": "0.24.2"})
    assert "was saved by scikit-learn 0.24.2" in refused(copy, "--model", copy.version)


def test_a_manifest_edited_after_approval_is_refused(copy: Registry) -> None:
    edit_manifest(copy, {"source.input_file": "another.csv"})
    assert refused(copy, "--model", "approved") == (
        f"model {copy.version}: its manifest changed after it was approved; approve it again"
    )


def test_a_forged_model_card_is_flagged_and_refused(copy: Registry) -> None:
    """The red team's forgery: AUC 0.99 on 50,000 rows in a manifest, the record not updated."""
    card = json.loads((copy.registry / copy.version / MANIFEST).read_text(encoding="utf-8"))
    card["model_card"] = [
        {**row, "roc_auc": 0.99} if row["score_name"] == "outcome" else row
        for row in card["model_card"]
    ]
    edit_manifest(
        copy, {"training_rows.outcome": 50_000, "model_card": card["model_card"]}, record=False
    )
    forged = (
        f"model {copy.version}: its manifest is not the one saved (sha256 differs from the "
        "registry's record in MANIFESTS); restore it or retrain"
    )
    listed = run_cli("models", "list", "--db", str(copy.served))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(copy.version))
    assert row.endswith(f"UNUSABLE: {forged}")
    assert "50,000" not in row and "0.990" not in row
    approving = run_cli("models", "approve", "--db", str(copy.served), copy.version)
    assert approving.returncode == EXIT_BAD_INPUT
    assert approving.stderr.splitlines() == [f"loan-recovery models approve: {forged}"]
    assert refused(copy, "--model", copy.version) == forged
    assert refused(copy, "--model", "approved") == forged


def test_a_valid_array_of_another_model_is_caught_by_its_sha256(copy: Registry) -> None:
    """The segment score's trees.npz is a valid zip of valid trees; only its sha256 tells."""
    artifact = copy.registry / copy.version
    theirs = (artifact / "segment_score" / "trees.npz").read_bytes()
    (artifact / "outcome" / "trees.npz").write_bytes(theirs)
    assert refused(copy, "--model", copy.version) == (
        f"model {copy.version}: outcome/trees.npz does not match its sha256 in the manifest "
        f"({len(theirs)} bytes); the artifact was changed or truncated"
    )


def test_an_unknown_version_is_refused_naming_the_known_ones(copy: Registry) -> None:
    assert refused(copy, "--model", "0123456789ab") == (
        f"no model 0123456789ab in the registry {copy.registry} (versions: {copy.version}); "
        "`loan-recovery models list` shows them"
    )


def test_models_list_shows_the_registry(copy: Registry) -> None:
    result = run_cli("models", "--db", str(copy.served), "list")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith(copy.version))
    training = query(
        copy.trained,
        "select training_rows, roc_auc from main.risk_model_metrics where score_name = 'outcome'",
    )[0]
    assert row.split() == [
        copy.version,
        next(
            iter(
                json.loads((copy.registry / copy.version / MANIFEST).read_text())[
                    "created_at"
                ].split()
            )
        ),
        f"{training[0]:,}",
        f"{training[1]:.3f}",
        "yes",
    ]


def test_a_model_version_var_must_be_a_version(copy: Registry) -> None:
    for args in (["--vars", "{model_version: latest}"], ["--model", "latest"]):
        result = run_cli("build", "--db", str(copy.served), *args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[0] == (
            "build failed at step settings: model 'latest' is not a version: expected 12 hex "
            "digits as `loan-recovery models list` prints them, or 'approved'"
        )


def test_approving_an_unknown_or_malformed_version_is_refused(copy: Registry) -> None:
    approved_before = (copy.registry / "APPROVED").read_bytes()
    malformed = run_cli("models", "--db", str(copy.served), "approve", "latest")
    unknown = run_cli("models", "--db", str(copy.served), "approve", "0123456789ab")
    assert (malformed.returncode, unknown.returncode) == (2, EXIT_BAD_INPUT)
    assert unknown.stderr.startswith("loan-recovery models approve: no model 0123456789ab")
    assert (copy.registry / "APPROVED").read_bytes() == approved_before
