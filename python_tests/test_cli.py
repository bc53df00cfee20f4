"""cli: a build that stops (internal error, interruption, bad --vars) says why in one line.

One line and an exit code, never a traceback, and the served file is left as
it was. The build's dbt step is replaced by one that raises, so no test here
runs dbt.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loan_recovery import cli
from loan_recovery.errors import EXIT_FAILED, EXIT_USAGE, Interrupted
from serving.helpers import CSV, building, make_database


def test_an_internal_error_is_a_short_summary_with_the_traceback_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    before = served.read_bytes()
    loans = tmp_path / "book.csv"
    loans.write_text("a\n1\n")

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(building, "run_dbt", crash)
    code = cli.main(["build", "--loans", str(loans), "--db", str(served)])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert err.startswith("build failed at step dbt: internal error: RuntimeError: boom")
    assert "Traceback" not in err
    assert f"nothing published; served file unchanged: {served}" in err
    log = Path(err.split("full log: ", 1)[1].strip())
    assert "Traceback" in log.read_text()
    assert served.read_bytes() == before


def test_an_interrupted_build_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served = make_database(tmp_path / "served.duckdb", "b1")
    loans = tmp_path / "book.csv"
    loans.write_bytes(CSV)

    def terminated(*_: object, **__: object) -> None:
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(building, "run_dbt", terminated)
    assert cli.main(["build", "--loans", str(loans), "--db", str(served)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("build failed at step dbt: interrupted by SIGTERM")


def test_bad_vars_stop_the_command_before_any_file_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served.duckdb"
    code = cli.main(["build", "--db", str(served), "--vars", "{n_segments: five}"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        "build failed at step settings: --vars: n_segments must be a whole number like its "
        "default 4, got 'five'"
    ]
    assert list(tmp_path.iterdir()) == []


def test_the_decision_run_without_a_frozen_model_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served.duckdb"
    code = cli.main(["build", "--db", str(served), "--decide-only"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert err.splitlines() == [
        "build failed at step settings: --decide-only scores with a frozen model and trains "
        "nothing: add --model VERSION or --model approved (loan-recovery models list)"
    ]
    assert list(tmp_path.iterdir()) == []  # no lock, no build directory, no file


def test_the_decision_run_is_asked_for_with_its_flag_not_with_vars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served.duckdb"
    code = cli.main(["build", "--db", str(served), "--vars", "{decide_only: true}"])
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [
        "build failed at step settings: --vars: ask for the decision run with --decide-only, "
        "not decide_only"
    ]
    assert list(tmp_path.iterdir()) == []
