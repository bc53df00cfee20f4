"""Shared fixtures and helpers: run dbt and the command against throwaway files, never the dev one.

A test that runs dbt, directly or through ``loan-recovery build``, carries
the ``dbt`` marker: ``make test-fast`` runs every other test. The marker
cannot drift from what a test does: an audit hook sees every process a test
starts, and a test without the marker that starts dbt fails (see
``pytest_runtest_makereport`` below), in ``make test-fast`` as in ``make test``.
"""

from __future__ import annotations

import csv
import hashlib
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from loan_recovery.build_info import BuildInfo, utc_now
from loan_recovery.config import loan_book_columns, project_dir
from loan_recovery.serving.pause import PAUSE_MARKER

DBT = str(Path(sys.executable).with_name("dbt"))
CLI = str(Path(sys.executable).with_name("loan-recovery"))
PUBLIC_LOAN_BOOK = project_dir().parent / "shared" / "data" / "loan-recovery.csv"
IN_CI = os.environ.get("CI", "").lower() == "true"


def needs(available: bool, what: str) -> None:
    """Skip a test whose tool or file is missing on a developer's machine; fail in CI.

    CI (CI=true) must run every test: a missing browser, client or data file
    there is a broken setup, not a reason to pass quietly.
    """
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI=true but {what}; CI must run this test", pytrace=False)
    pytest.skip(what)


DBT_MARKER = "dbt"


class UnmarkedDbtRunError(RuntimeError):
    """A test without the ``dbt`` marker started dbt."""


def starts_dbt(command: str | bytes | os.PathLike[str] | Iterable[Any]) -> bool:
    """Whether ``command`` runs dbt: the dbt executable, or ``loan-recovery build``.

    Looked for anywhere in the command, so that a wrapper (``setpriv``,
    ``timeout``, a shell line) does not hide it.
    """
    if isinstance(command, bytes):
        command = command.decode(errors="replace")
    if isinstance(command, str | os.PathLike):
        line = os.fspath(command)
        try:
            words = shlex.split(line)
        except ValueError:  # an unbalanced quote: words are still words
            words = line.split()
    else:
        words = [os.fsdecode(word) for word in command]
    names = [Path(word).name for word in words]
    if "dbt" in names:
        return True
    return any(
        name == "loan-recovery" and "build" in names[index + 1 :]
        for index, name in enumerate(names)
    )


class _DbtGuard:
    """Which test is running in this process, and the dbt runs it started without the marker."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.unmarked: list[str] = []

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if event != "subprocess.Popen" or self.item is None:
            return
        if self.item.get_closest_marker(DBT_MARKER) is not None:
            return
        if starts_dbt(args[1]):
            command = args[1] if isinstance(args[1], str) else shlex.join(map(str, args[1]))
            self.unmarked.append(command[:200])
            raise UnmarkedDbtRunError(
                f"{self.item.nodeid} runs dbt but has no @pytest.mark.{DBT_MARKER}: {command[:200]}"
            )


_GUARD = _DbtGuard()


def pytest_configure(config: pytest.Config) -> None:
    """Watch every process started here (each xdist worker configures once, as does pytest)."""
    sys.addaudithook(_GUARD.audit)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    _GUARD.item = item
    try:
        return (yield)
    finally:
        _GUARD.item = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Fail the phase (setup, call, teardown) in which an unmarked test started dbt.

    Whatever the code under test did with the refusal (a build turns any
    exception into its one-line summary), the test fails and says why.
    """
    report = yield
    if _GUARD.unmarked:
        commands = "; ".join(_GUARD.unmarked)
        _GUARD.unmarked.clear()
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} runs dbt ({commands}) but has no @pytest.mark.{DBT_MARKER}: "
            "mark it, so that `make test-fast` leaves it out"
        )
    return report


@dataclass(frozen=True)
class DbtResult:
    returncode: int
    output: str
    database: Path

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return connection.execute(sql).fetchall()

    def scalar(self, sql: str) -> Any:
        return self.query(sql)[0][0]


def run_dbt(
    workdir: Path, *args: str, dbt_vars: dict[str, Any] | None = None, database: Path | None = None
) -> DbtResult:
    """Run a dbt command in the project against ``database`` (default: workdir/loans.duckdb)."""
    database = database or workdir / "loans.duckdb"
    command = [DBT, *args, "--target-path", str(workdir / "target"), "--log-path", str(workdir)]
    if dbt_vars:
        command += ["--vars", yaml.safe_dump(dbt_vars, default_flow_style=True).strip()]
    environment = {
        **os.environ,
        "LOAN_RECOVERY_DB": str(database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    completed = subprocess.run(
        command, cwd=project_dir(), env=environment, capture_output=True, text=True, check=False
    )
    return DbtResult(completed.returncode, completed.stdout + completed.stderr, database)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed ``loan-recovery`` command, run as a user runs it (never paused by a hook)."""
    environment = {**os.environ, **(env or {})}
    environment.pop("LOAN_RECOVERY_PAUSE_AT", None)
    environment.update(env or {})
    return subprocess.run(
        [CLI, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def sha256(path: Path) -> str:
    """The file's SHA-256: "unchanged" in a test means these bytes are the same."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the served file as an outside reader would: a fresh read-only connection."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def served_build_info(database: Path) -> dict[str, Any]:
    """The one build_info row of a served file, by column name."""
    with duckdb.connect(str(database), read_only=True) as connection:
        cursor = connection.execute("select * from main.build_info")
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


def copy_build(database: Path, target: Path) -> Path:
    """A built file and its model store (``<file>.models``) copied, for a test to rebuild parts."""
    shutil.copy(database, target)
    store = database.with_name(database.name + ".models")
    if store.is_dir():
        shutil.copytree(store, target.with_name(target.name + ".models"))
    return target


MODEL_VERSION_TABLES: tuple[tuple[str, str], ...] = (
    ("run_settings", ""),
    ("recovery_strategies", ""),
    ("collection_work_queue", ""),
    ("risk_model_metrics", "where score_name in ('outcome', 'segment')"),
    ("model_monitoring", ""),
)
"""Served tables that carry model_version, with the rows where it is the registry id."""


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> DbtResult:
    """One full ``dbt build`` (seeds, models, every test) of the bundled sample."""
    workdir = tmp_path_factory.mktemp("sample_build")
    result = run_dbt(workdir, "build")
    assert result.returncode == 0, result.output
    return result


@pytest.fixture
def write_loan_book(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (dicts keyed by loan book column) as a CSV loan book."""

    def write(
        rows: list[dict[str, Any]], name: str = "loans.csv", header: list[str] | None = None
    ) -> Path:
        path = tmp_path / name
        columns = header or loan_book_columns()
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write


def valid_loan(number: int) -> dict[str, Any]:
    """A loan that passes every validation rule; tests break one field at a time."""
    return {
        "Borrower_ID": f"BRW_{number}",
        "Age": 40,
        "Gender": "Female",
        "Employment_Type": "Salaried",
        "Monthly_Income": 90000,
        "Num_Dependents": 1,
        "Loan_ID": f"LN_{number}",
        "Loan_Amount": 500000,
        "Loan_Tenure": 36,
        "Interest_Rate": 10.5,
        "Loan_Type": "Home",
        "Collateral_Value": 600000,
        "Outstanding_Loan_Amount": 250000,
        "Monthly_EMI": 16251.4,
        "Payment_History": "On-Time",
        "Num_Missed_Payments": 0,
        "Days_Past_Due": 0,
        "Recovery_Status": "Fully Recovered",
        "Collection_Attempts": 1,
        "Collection_Method": "Calls",
        "Legal_Action_Taken": "No",
    }


def info_for(build_id: str, rows: int = 3, **overrides: Any) -> BuildInfo:
    """A complete build_info record of ``rows`` clean rows, as a finished build writes it.

    ``overrides`` set any other field (``replace`` semantics).
    """
    now = utc_now()
    info = BuildInfo(
        build_id=build_id,
        as_of_date=now.date(),
        started_at=now,
        finished_at=now,
        input_file="f.csv",
        input_sha256="0" * 64,
        input_bytes=1,
        rows_in=rows,
        rows_clean=rows,
        rows_quarantined=0,
        model_version="m",
        model_mode="trained",
        run_kind="full",
        project_version="0.1.0",
        git_commit=None,
        dbt_version=None,
        duckdb_version=duckdb.__version__,
    )
    return replace(info, **overrides)


def stderr_lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def kill_cli_at(step: str, *args: str) -> str:
    """Start ``loan-recovery *args`` pausing at ``step``, SIGKILL it there; return the marker."""
    environment = {
        **os.environ,
        "LOAN_RECOVERY_PAUSE_AT": step,
        "LOAN_RECOVERY_PAUSE_SECONDS": "300",
    }
    process = subprocess.Popen(
        [CLI, *args],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines = stderr_lines(process.stderr)
    seen: list[str] = []
    deadline = time.monotonic() + 240
    try:
        while not (seen and seen[-1].startswith(f"{PAUSE_MARKER} step={step} ")):
            try:
                seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.1)))
            except queue.Empty:
                pytest.fail(f"no pause marker at {step}: {''.join(seen)}")
        os.kill(process.pid, signal.SIGKILL)  # the crash: the build process alone
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return seen[-1].strip()
