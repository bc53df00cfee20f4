"""build: the steps around dbt (the input, the --db check, recovery first), with dbt never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import sha256
from loan_recovery.errors import EXIT_BAD_INPUT, EXIT_USAGE, BuildError
from loan_recovery.serving import swap
from loan_recovery.serving.dbt_run import DbtRun
from loan_recovery.serving.paths import ServedPaths
from serving.helpers import (
    CSV,
    bid,
    building,
    kill_after_first_rename,
    make_database,
    run_killed,
    state,
)


def test_git_commit_never_fails(tmp_path: Path) -> None:
    assert building.git_commit(tmp_path) is None


def test_a_refused_loan_book_fails_the_build_at_input_with_a_log(tmp_path: Path) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = sha256(served)
    with pytest.raises(BuildError) as caught:
        building.build(loans=tmp_path / "absent.csv", served=served)
    failure = caught.value
    assert (failure.step, failure.exit_code) == ("input", EXIT_BAD_INPUT)
    assert failure.log is not None
    assert "FAILED at input: loans_path" in failure.log.read_text()
    assert sha256(served) == before
    with pytest.raises(BuildError, match="give the loan book once") as twice:
        building.build(loans=tmp_path / "a.csv", served=served, loans_path_var="b.csv")
    assert twice.value.exit_code == EXIT_USAGE


def test_a_build_refuses_a_db_that_is_not_a_build_before_anything(tmp_path: Path) -> None:
    served = tmp_path / "loans.csv"
    served.write_bytes(CSV)
    with pytest.raises(BuildError, match="not a loan-recovery build") as caught:
        building.build(loans=served, served=served)
    assert caught.value.step == "db"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["loans.csv"]
    assert served.read_bytes() == CSV


def test_the_next_build_recovers_before_anything_else(
    two_builds: ServedPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = two_builds
    new = make_database(tmp_path / "b3.duckdb", "b3")
    run_killed(monkeypatch, kill_after_first_rename, lambda: swap.swap_in(new, served))

    def no_dbt(*_: object) -> DbtRun:
        raise RuntimeError("dbt is not run in unit tests")

    monkeypatch.setattr(building, "run_dbt", no_dbt)
    loans = tmp_path / "book.csv"
    loans.write_bytes(CSV)
    with pytest.raises(BuildError, match="internal error") as caught:
        building.build(loans=loans, served=served.served)
    assert state(served)["previous"] == "b2"
    assert not served.previous_partial.exists()
    assert caught.value.log is not None
    kept = f"kept served.duckdb.previous.partial (build {bid('b2')})"
    assert kept in caught.value.log.read_text()


def test_a_training_build_whose_registry_cannot_be_written_stops_before_dbt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in a second, naming the folder, not after the whole dbt run (exit 2)."""
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = sha256(served)
    blocker = tmp_path / "shared"
    blocker.write_text("a file where the registry's folder should be\n")
    registry = blocker / "registry"
    monkeypatch.setenv("LOAN_RECOVERY_REGISTRY", str(registry))
    started: list[object] = []
    monkeypatch.setattr(building, "run_dbt", lambda *args: started.append(args))
    loans = tmp_path / "book.csv"
    loans.write_bytes(CSV)
    with pytest.raises(BuildError) as caught:
        building.build(loans=loans, served=served)
    assert (caught.value.step, caught.value.exit_code) == ("register", EXIT_USAGE)
    assert caught.value.reason.startswith(f"the model registry {registry} cannot be written (")
    assert caught.value.reason.endswith(
        "; a training build saves its models there: make it writable, set "
        "LOAN_RECOVERY_REGISTRY to a folder that is, or score with --model"
    )
    assert started == []
    assert sha256(served) == before
