"""dbt_run: what dbt is given (the opened loan book only) and the earlier parse it may reuse."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from loan_recovery.serving import dbt_run
from loan_recovery.serving.dbt_run import PARSE_STATE, dbt_command, reuse_parse_state, run_dbt
from loan_recovery.serving.paths import BuildDir, make_directory
from serving.helpers import a_loan_book


def test_dbt_gets_only_the_opened_loan_book(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file named in the caller's environment is never what dbt reads.
    monkeypatch.setenv("LOAN_RECOVERY_LOANS_FILE", "/etc/passwd")
    monkeypatch.setenv("LOAN_RECOVERY_LOANS_NAME", "x")
    directory = BuildDir(tmp_path / "b")
    command, environment = dbt_command(directory, tmp_path, {"n_segments": 5}, None)
    assert not any(key.startswith("LOAN_RECOVERY_LOANS_") for key in environment)
    # dbt runs in the build directory, under one name for every build (a saved parse holds).
    assert directory.root / environment["LOAN_RECOVERY_DB"] == directory.database
    assert (
        environment["LOAN_RECOVERY_DB"]
        == dbt_command(BuildDir(tmp_path / "c"), tmp_path, {}, None)[1]["LOAN_RECOVERY_DB"]
    )
    assert command[command.index("--vars") + 1] == json.dumps({"n_segments": 5})
    assert "--vars" not in dbt_command(directory, tmp_path, {}, None)[0]
    _, environment = dbt_command(directory, tmp_path, {}, a_loan_book("/d/b[1].csv", 9))
    assert environment["LOAN_RECOVERY_LOANS_FILE"] == "/proc/self/fd/9"
    assert environment["LOAN_RECOVERY_LOANS_NAME"] == "/d/b[1].csv"
    assert environment["LOAN_RECOVERY_LOANS_FORMAT"] == "csv"


def test_reuse_parse_state_copies_the_newest_real_file_and_never_fails_the_build(
    tmp_path: Path,
) -> None:
    older, newer, linked = (BuildDir(tmp_path / name) for name in ("a", "b", "c"))
    for build, text in ((older, b"older"), (newer, b"newer")):
        build.target.mkdir(parents=True)
        (build.target / PARSE_STATE).write_bytes(text)
    # A link is never followed, even to a parse of ours.
    linked.target.mkdir(parents=True)
    (linked.target / PARSE_STATE).symlink_to(older.target / PARSE_STATE)
    here = BuildDir(tmp_path / "d")
    here.root.mkdir()
    assert reuse_parse_state(here, [older.root, newer.root, linked.root]) == (
        newer.target / PARSE_STATE
    )
    assert (here.target / PARSE_STATE).read_bytes() == b"newer"
    # A copy that fails leaves dbt to parse the project itself.
    blocked = BuildDir(tmp_path / "e")
    blocked.root.mkdir()
    blocked.target.write_text("a file where the target directory goes")
    assert reuse_parse_state(blocked, [older.root]) is None
    assert reuse_parse_state(BuildDir(tmp_path / "f"), []) is None


def test_the_folders_dbt_writes_into_are_at_most_rwxr_x(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """target/ and models/ exist before dbt starts, so dbt's umask-wide mkdir never makes them."""

    class FinishedDbt:
        """Stands for the dbt process: it runs nothing and exits 0."""

        def __init__(self, *_: object, **__: object) -> None:
            pass

        def wait(self) -> int:
            return 0

        def poll(self) -> int:
            return 0

    monkeypatch.setattr(dbt_run.subprocess, "Popen", FinishedDbt)
    directory = BuildDir(tmp_path / "b")
    make_directory(directory.logs)
    original = os.umask(0)
    try:
        run_dbt(directory, tmp_path, {}, None)
    finally:
        os.umask(original)
    for folder in (directory.target, directory.models):
        mode = stat.S_IMODE(folder.stat().st_mode)
        assert mode & 0o027 == 0, f"{folder} is {oct(mode)}"
