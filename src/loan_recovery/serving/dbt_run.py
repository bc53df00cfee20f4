"""Running the whole ``dbt build`` into one build's file, as a child process.

The child gets the build file through ``LOAN_RECOVERY_DB``, the loan book
through an inherited file descriptor (:mod:`loan_recovery.serving.loan_book`)
and the checked per-run settings as ``--vars``. Its target and log paths
are per build, so concurrent development runs never clash, and it is
killed with the build process (a dbt left running would write a file
nobody will publish).

dbt runs in the build directory and finds its file by the plain name
``loan_recovery.duckdb``, the same in every build. dbt checks the profile
(the file's path among it) before it reuses an earlier parse of the
project, so an absolute path, different for each build, made every build
parse the whole project again (:func:`reuse_parse_state`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loan_recovery.config import DB_PATH_ENV
from loan_recovery.modelling.model_store import MODEL_DIR_ENV
from loan_recovery.modelling.registry import REGISTRY_ENV
from loan_recovery.serving.loan_book import LoanBook
from loan_recovery.serving.paths import BUILD_FILE_NAME, BuildDir, make_directory
from loan_recovery.serving.pause import pause_point, wants_pause

BUILD_ID_ENV = "LOAN_RECOVERY_BUILD_ID"
"""Read by the decision models (macro build_id): which build decided."""
PARSE_STATE = "partial_parse.msgpack"
"""dbt's saved parse of the project, in its target directory."""


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    results: dict[str, Any] | None
    output: str


def _die_with_parent() -> None:
    """In the dbt child: get SIGKILL when the build process dies (Linux)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def dbt_command(
    build_dir: BuildDir, root: Path, settings: Mapping[str, Any], loans: LoanBook | None
) -> tuple[list[str], dict[str, str]]:
    """The ``dbt build`` command line and environment for one build.

    Uses the dbt next to this interpreter (the project's venv). Variables
    naming an input file that the caller's shell may have set are cleared,
    so only the file this build opened can be read.
    """
    command = [
        str(Path(sys.executable).with_name("dbt")),
        "build",
        "--project-dir",
        str(root),
        "--profiles-dir",
        str(root),
        "--target-path",
        str(build_dir.target),
        "--log-path",
        str(build_dir.logs),
        "--no-use-colors",
    ]
    if settings:
        command += ["--vars", json.dumps(dict(settings))]
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOAN_RECOVERY_LOANS_")
    }
    environment.update(
        {
            # Relative to the build directory dbt runs in: one profile for every build.
            DB_PATH_ENV: BUILD_FILE_NAME,
            MODEL_DIR_ENV: str(build_dir.models),
            # A frozen build reads the artifact from its own verified copy;
            # a training build reads none (its model_version is empty).
            REGISTRY_ENV: str(build_dir.registry),
            # The build id the decision log records (plain dbt runs record dbt's invocation id).
            BUILD_ID_ENV: build_dir.root.name,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    if loans is not None:
        environment.update(loans.dbt_environment())
    return command, environment


def reuse_parse_state(build_dir: BuildDir, earlier: Sequence[Path]) -> Path | None:
    """Give dbt the newest earlier build's parse of the project; return where it came from.

    Parsing is a fixed cost of every build, whatever the book's size:
    ``dbt parse`` takes 5.2 s from nothing and 2.7 s from a saved parse.
    dbt compares the saved parse with the files and parses again those that
    changed, and everything when the profile, the ``--vars`` or its own
    version differ; each model's SQL is still rendered afresh when it runs.
    ``earlier`` are the other build directories, oldest first (only builds
    write there); with none, or a copy that fails, dbt parses the project
    as before. A saved parse dbt cannot read (cut short by a kill) costs it
    a full parse, not the build (hostile case "previous build's saved parse
    cut short").
    """
    for directory in reversed(earlier):
        state = BuildDir(directory).target / PARSE_STATE
        if state.is_file() and not state.is_symlink():
            try:
                make_directory(build_dir.target)
                shutil.copyfile(state, build_dir.target / PARSE_STATE)
            except OSError:
                return None  # only time is lost: dbt parses the project
            return state
    return None


def run_dbt(
    build_dir: BuildDir, root: Path, settings: Mapping[str, Any], loans: LoanBook | None
) -> DbtRun:
    """Run ``dbt build`` into the build file; its output goes to the build's logs."""
    command, environment = dbt_command(build_dir, root, settings, loans)
    # dbt and the Python models would create these with the umask's mode (often 755).
    make_directory(build_dir.target)
    make_directory(build_dir.models)
    with build_dir.dbt_output.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command,
            cwd=build_dir.root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            pass_fds=(loans.fd,) if loans is not None else (),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        try:
            if wants_pause("dbt"):
                _pause_inside_dbt(process, build_dir.database)
            returncode = process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise
    results_path = build_dir.target / "run_results.json"
    results = None
    if results_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            results = json.loads(results_path.read_text(encoding="utf-8"))
    return DbtRun(returncode, results, build_dir.dbt_output.read_text("utf-8", "replace"))


def _pause_inside_dbt(process: subprocess.Popen[bytes], database: Path) -> None:
    """Test hook ``dbt``: wait until dbt has created the build file, freeze dbt, pause."""
    deadline = time.monotonic() + 120
    while process.poll() is None and not database.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    frozen = process.poll() is None
    if frozen:
        os.kill(process.pid, signal.SIGSTOP)
    pause_point("dbt", f"dbt_pid={process.pid}")
    if frozen:
        os.kill(process.pid, signal.SIGCONT)
