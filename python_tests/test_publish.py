"""`loan-recovery build` end to end: publish, readers, crashes, failures and bad input.

Every case runs the real command (a subprocess, the venv's dbt) on small loan
books. To stay within a few minutes on two cores the expensive steps are
shared: one base build (which is also the warn-only case), three killed
builds on it, one rebuild under concurrent readers (which is also the messy
but buildable book), and the failing runs in a pool of two, each against its
own copy of the base build so that "the served file is untouched" is exact.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import valid_loan
from loan_recovery.config import loan_book_columns, project_dir, project_vars
from loan_recovery.generate import write_loan_book
from loan_recovery.publish import (
    EXIT_BAD_INPUT,
    EXIT_BUSY,
    EXIT_FAILED,
    PAUSE_MARKER,
    ServedPaths,
    publish_lock,
)

CLI = str(Path(sys.executable).with_name("loan-recovery"))
FAST_VARS = "{scoring_trees: 20}"
DUCKDB_1X = "1.1.3"
READERS = 4

BASE_ROWS = 150  # generated; plus one warn-only row
MESSY_ROWS = 120  # generated; plus 2 odd-but-valid rows and the bad rows below

# (bad row kind, fields to set, the reason staging must give)
MESSY_BAD_ROWS: list[tuple[str, dict[str, str], str]] = [
    ("unparseable number", {"Age": "forty"}, "age is not a number"),
    ("negative value", {"Loan_Amount": "-5000"}, "loan_amount is outside (0,"),
    ("impossible value", {"Age": "250"}, "age is outside [18, 100]"),
    (
        "impossible combination",
        {"Outstanding_Loan_Amount": "900000"},
        "outstanding_loan_amount is above loan_amount",
    ),
    ("null key", {"Loan_ID": ""}, "loan_id is missing"),
    ("duplicate key (first)", {"Loan_ID": "LN_DUP"}, "loan_id is duplicated"),
    ("duplicate key (second)", {"Loan_ID": "LN_DUP"}, "loan_id is duplicated"),
    ("unknown category", {"Loan_Type": "Boat"}, "loan_type has an unknown value"),
    ("huge number", {"Loan_Amount": "1e400"}, "loan_amount is not a number"),
    ("huge value", {"Monthly_Income": "99999999999999999999999"}, "monthly_income is outside"),
    ("quoted comma in a number", {"Loan_Amount": "500,000"}, "loan_amount is not a number"),
    ("missing value", {"Monthly_EMI": ""}, "monthly_emi is missing"),
    ("NaN", {"Interest_Rate": "NaN"}, "interest_rate is not a number"),
]


# --------------------------------------------------------------------------- helpers


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
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
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the served file as an outside reader would: a fresh read-only connection."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def build_info(database: Path) -> dict[str, Any]:
    with duckdb.connect(str(database), read_only=True) as connection:
        cursor = connection.execute("select * from build_info")
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


def assert_holds_complete_build(database: Path, build_id: str, rows_clean: int) -> None:
    info = build_info(database)
    assert info["build_id"] == build_id
    assert info["rows_clean"] == rows_clean
    for table in ("stg_loans", "recovery_strategies", "int_loan_risk_scores"):
        assert query(database, f"select count(*) from {table}") == [(rows_clean,)], table


def copy_served(source: ServedPaths, directory: Path) -> ServedPaths:
    directory.mkdir(parents=True)
    copy = ServedPaths(directory / source.served.name)
    shutil.copy2(source.served, copy.served)
    return copy


def copy_project(destination: Path) -> Path:
    """The project's files (tracked and new, not ignored) copied for a test to edit."""
    root = project_dir()
    listed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str], **options: Any) -> Path:
    encoding = options.pop("encoding", "utf-8")
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", **options)
        writer.writeheader()
        writer.writerows(rows)
    return path


def generated_rows(path: Path, rows: int, seed: int) -> list[dict[str, str]]:
    write_loan_book(rows=rows, out=path, seed=seed)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- books


@dataclass(frozen=True)
class Books:
    base: Path
    messy: Path
    directory: Path


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Books:
    """The base book (one warn-only row) and the messy but buildable one."""
    directory = tmp_path_factory.mktemp("books")
    columns = loan_book_columns()

    base_rows = generated_rows(directory / "generated_base.csv", BASE_ROWS, seed=42)
    warn_row = {**valid_loan(900001), "Days_Past_Due": 15, "Num_Missed_Payments": 0}
    base = write_rows(directory / "base.csv", [*base_rows, warn_row], columns)

    # Messy: byte-order mark, CRLF, an extra column with quoted commas and
    # quotes, odd-but-valid values, and one row per kind of bad value.
    rows: list[dict[str, Any]] = generated_rows(directory / "generated_messy.csv", MESSY_ROWS, 7)
    for row in rows:
        row["Notes"] = 'free text, with "quotes", and commas'
    rows.append({**valid_loan(800001), "Borrower_ID": "BRW,77", "Notes": ""})
    rows.append(
        {
            **valid_loan(800002),
            "Gender": " female ",
            "Payment_History": "ON-TIME",
            "Loan_Type": "home",
        }
    )
    for number, (_, fields, _) in enumerate(MESSY_BAD_ROWS):
        rows.append({**valid_loan(810000 + number), "Borrower_ID": f"BAD_{number}", **fields})
    messy = write_rows(
        directory / "messy.csv",
        rows,
        [*columns, "Notes"],
        encoding="utf-8-sig",
        lineterminator="\r\n",
    )
    return Books(base, messy, directory)


# --------------------------------------------------------------------------- base build


@dataclass(frozen=True)
class Build:
    paths: ServedPaths
    result: subprocess.CompletedProcess[str]
    build_id: str
    rows_clean: int


@pytest.fixture(scope="module")
def base(books: Books, tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The first publish: the base book, whose one warn-only row must not block it."""
    paths = ServedPaths(tmp_path_factory.mktemp("served") / "loan_recovery.duckdb")
    result = run_cli(
        "build", "--loans", str(books.base), "--db", str(paths.served), "--vars", FAST_VARS
    )
    assert result.returncode == 0, result.stdout + result.stderr
    info = build_info(paths.served)
    return Build(paths, result, info["build_id"], info["rows_clean"])


def test_warn_only_test_still_publishes(base: Build) -> None:
    assert "published build" in base.result.stdout
    assert "warning: data test expression_is_true_stg_loans_" in base.result.stdout
    assert base.rows_clean == BASE_ROWS + 1


def test_build_info_describes_the_build(base: Build, books: Books) -> None:
    info = build_info(base.paths.served)
    assert info["input_file"] == str(books.base)
    assert info["input_sha256"] == sha256(books.base)
    assert info["input_bytes"] == books.base.stat().st_size
    assert (info["rows_in"], info["rows_quarantined"]) == (BASE_ROWS + 1, 0)
    metrics_version = query(base.paths.served, "select model_version from risk_model_metrics")
    assert [(info["model_version"],)] == metrics_version
    assert info["project_version"] == "0.1.0"
    assert info["git_commit"] is None or len(info["git_commit"].split("-")[0]) == 40
    assert info["started_at"] < info["finished_at"]
    assert json.loads(info["dbt_vars"]) == {"scoring_trees": 20}
    defaults = project_vars()
    assert (info["legal_threshold"], info["settlement_threshold"]) == (
        defaults["legal_threshold"],
        defaults["settlement_threshold"],
    )


def test_served_file_is_tables_only_in_1x_storage_with_no_wal(base: Build) -> None:
    served = base.paths.served
    assert not base.paths.wal.exists()
    assert query(served, "select count(*) from duckdb_views() where not internal") == [(0,)]
    tables = {row[0] for row in query(served, "select table_name from duckdb_tables()")}
    assert {"build_info", "stg_loans", "quarantined_loans", "recovery_strategies"} <= tables
    assert query(
        served,
        "select tags['storage_version'] from duckdb_databases() where database_name = "
        "current_database()",
    ) == [("v1.0.0+",)]
    # The build directory keeps the logs but not the build file, which became the served one.
    assert not list(base.paths.builds.glob("*/loan_recovery.duckdb*"))
    assert list(base.paths.builds.glob("*/logs/dbt.log"))


# --------------------------------------------------------------------------- DuckDB 1.x reader

NETWORK_ERRORS = (
    "No matching distribution found",
    "Could not find a version",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Max retries exceeded",
    "Connection refused",
    "ReadTimeoutError",
)

READER_1X = r"""
import json, sys
import duckdb
connection = duckdb.connect(sys.argv[1], read_only=True)
tables = connection.execute(
    "select table_name from duckdb_tables() where not internal order by 1").fetchall()
counts = {}
for (table,) in tables:
    counts[table] = connection.execute(f'select count(*) from "{table}"').fetchone()[0]
    # Every value of every column, read by the 1.x engine (as text: no pytz needed).
    connection.execute(f'select columns(*)::varchar from "{table}"').fetchall()
print(json.dumps({
    "version": duckdb.__version__,
    "counts": counts,
    "build_id": connection.execute("select build_id from build_info").fetchone()[0],
}))
"""


def duckdb_1x_python() -> Path:
    """A separate venv with DuckDB 1.x, as BI drivers bundle it; cached in .cache/duckdb1x."""
    venv = project_dir() / ".cache" / "duckdb1x"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    probe = [str(python), "-c", f"import duckdb; assert duckdb.__version__ == '{DUCKDB_1X}'"]
    with (venv.parent / "duckdb1x.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
            return python
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True
        )
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", f"duckdb=={DUCKDB_1X}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if install.returncode != 0:
        output = install.stdout + install.stderr
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        if any(marker in output for marker in NETWORK_ERRORS):
            pytest.skip(f"PyPI unreachable, cannot install duckdb=={DUCKDB_1X}: {last}")
        pytest.fail(f"pip install duckdb=={DUCKDB_1X} failed: {output}")
    return python


def test_duckdb_1x_client_reads_every_relation(base: Build) -> None:
    python = duckdb_1x_python()
    read = subprocess.run(
        [str(python), "-c", READER_1X, str(base.paths.served)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert read.returncode == 0, read.stderr
    seen = json.loads(read.stdout)
    assert seen["version"] == DUCKDB_1X
    assert seen["build_id"] == base.build_id
    expected = dict(
        query(base.paths.served, "select table_name, estimated_size from duckdb_tables()")
    )
    assert set(seen["counts"]) == set(expected)
    assert seen["counts"]["stg_loans"] == base.rows_clean
    assert seen["counts"]["recovery_strategies"] == base.rows_clean


# --------------------------------------------------------------------------- crashes


@dataclass(frozen=True)
class Crash:
    marker: str
    served_intact: bool
    leftovers: list[str]
    previous_exists: bool
    dbt_child_alive: bool


def _lines(stream: Any) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def kill_build_at(step: str, paths: ServedPaths, loans: Path) -> str:
    """Start a build that pauses at ``step``, SIGKILL it there, return the pause marker."""
    environment = {
        **os.environ,
        "LOAN_RECOVERY_PAUSE_AT": step,
        "LOAN_RECOVERY_PAUSE_SECONDS": "300",
    }
    process = subprocess.Popen(
        [CLI, "build", "--loans", str(loans), "--db", str(paths.served), "--vars", FAST_VARS],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines = _lines(process.stderr)
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


def dbt_outlived_the_build(marker: str) -> bool:
    """True if the dbt child named in the marker still runs 5 s after the kill (then kill it)."""
    pid = next((int(word[8:]) for word in marker.split() if word.startswith("dbt_pid=")), None)
    if pid is None:
        return False
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not _alive(pid):
        return False
    os.kill(pid, signal.SIGKILL)
    return True


@pytest.fixture(scope="module")
def crashes(base: Build, books: Books) -> dict[str, Crash]:
    """Three builds SIGKILLed on the base build's served file: in dbt, finalize and swap."""
    results: dict[str, Crash] = {}
    for step in ("dbt", "finalize", "swap"):
        before = sha256(base.paths.served)
        marker = kill_build_at(step, base.paths, books.base)
        dbt_alive = dbt_outlived_the_build(marker)
        try:
            assert_holds_complete_build(base.paths.served, base.build_id, base.rows_clean)
            intact = sha256(base.paths.served) == before
        except (AssertionError, duckdb.Error):
            intact = False
        leftovers = sorted(
            str(path.relative_to(base.paths.builds))
            for path in base.paths.builds.glob("*/loan_recovery.duckdb*")
        )
        results[step] = Crash(marker, intact, leftovers, base.paths.previous.exists(), dbt_alive)
    return results


@pytest.mark.parametrize("step", ["dbt", "finalize", "swap"])
def test_killed_build_leaves_the_previous_build_served(
    crashes: dict[str, Crash], step: str
) -> None:
    crash = crashes[step]
    assert crash.marker.startswith(f"{PAUSE_MARKER} step={step}")
    assert crash.served_intact
    assert not crash.dbt_child_alive  # dbt dies with the build process
    if step == "finalize":
        # Killed with the build file open read-write: a build file and its WAL are left.
        assert any(name.endswith(".duckdb.wal") for name in crash.leftovers), crash.leftovers
    if step == "swap":
        # Killed between linking the old build as .previous and the rename.
        assert crash.previous_exists


# --------------------------------------------------------------------------- readers


READER = r"""
import json, os, sys, time
import duckdb

served, stop, ready, mode = sys.argv[1:5]
log = {"reads": {}, "errors": [], "mismatches": [], "sequence": [], "counts": {}}


def read(connection):
    build_id, rows_in, rows_clean, rows_quarantined = connection.execute(
        "select build_id, rows_in, rows_clean, rows_quarantined from build_info"
    ).fetchone()
    clean = connection.execute("select count(*) from staging.stg_loans").fetchone()[0]
    time.sleep(0.002)
    strategies = connection.execute("select count(*) from recovery_strategies").fetchone()[0]
    quarantined = connection.execute("select count(*) from quarantined_loans").fetchone()[0]
    return build_id, [rows_in, rows_clean, rows_quarantined, clean, strategies, quarantined]


def record(build_id, counts):
    rows_in, rows_clean, rows_quarantined, clean, strategies, quarantined = counts
    agree = clean == strategies == rows_clean and quarantined == rows_quarantined
    if not (agree and rows_in == rows_clean + rows_quarantined):
        log["mismatches"].append([build_id, counts])
    log["counts"][build_id] = counts[:3]
    log["reads"][build_id] = log["reads"].get(build_id, 0) + 1
    if not log["sequence"] or log["sequence"][-1] != build_id:
        log["sequence"].append(build_id)


stop_seen = None


def stopping():
    # The stop file names the build to wait for: read it twice, then stop.
    global stop_seen
    if not os.path.exists(stop):
        return False
    stop_seen = stop_seen or time.monotonic()
    with open(stop) as handle:
        target = handle.read().strip()
    return not target or log["reads"].get(target, 0) >= 2 or time.monotonic() - stop_seen > 30


# One thread per reader: four readers must not starve the build on two cores.
config = {"threads": 1}
if mode == "hold":
    connection = duckdb.connect(served, read_only=True, config=config)
    log["before"] = read(connection)
    open(ready, "w").close()
    while not os.path.exists(stop):
        time.sleep(0.05)
    log["after"] = read(connection)
    connection.close()
else:
    while not stopping():
        try:
            connection = duckdb.connect(served, read_only=True, config=config)
            try:
                build_id, counts = read(connection)
            finally:
                connection.close()
            record(build_id, counts)
            if sum(log["reads"].values()) == 1:
                open(ready, "w").close()
        except Exception as error:
            log["errors"].append(f"{type(error).__name__}: {error}"[:300])
            if len(log["errors"]) > 20:
                break
        time.sleep(0.15)
print(json.dumps(log))
"""


@dataclass(frozen=True)
class Rebuild:
    result: subprocess.CompletedProcess[str]
    readers: list[dict[str, Any]]
    holder: dict[str, Any]
    build_id: str


@pytest.fixture(scope="module")
def rebuild(
    base: Build, crashes: dict[str, Crash], books: Books, tmp_path_factory: pytest.TempPathFactory
) -> Rebuild:
    """After the crashes, rebuild with the messy book while readers query the served file."""
    work = tmp_path_factory.mktemp("readers")
    stop = work / "stop"
    processes: list[subprocess.Popen[str]] = []
    modes = ["loop"] * READERS + ["hold"]
    new_id = ""
    try:
        for number, mode in enumerate(modes):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        READER,
                        str(base.paths.served),
                        str(stop),
                        str(work / f"ready{number}"),
                        mode,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        deadline = time.monotonic() + 60
        while not all((work / f"ready{n}").exists() for n in range(len(modes))):
            assert time.monotonic() < deadline, "readers did not start"
            assert all(process.poll() is None for process in processes), "a reader died"
            time.sleep(0.05)
        result = run_cli(
            "build",
            "--loans",
            str(books.messy),
            "--db",
            str(base.paths.served),
            "--vars",
            FAST_VARS,
        )
        new_id = build_info(base.paths.served)["build_id"] if result.returncode == 0 else ""
    finally:
        # Readers stop once they have read the new build twice (at once if it failed).
        (work / "stop.partial").write_text(new_id)
        os.replace(work / "stop.partial", stop)
        outputs = [process.communicate(timeout=90) for process in processes]
    logs = []
    for (stdout, stderr), process in zip(outputs, processes, strict=True):
        assert process.returncode == 0, stderr
        logs.append(json.loads(stdout))
    return Rebuild(result, logs[:READERS], logs[READERS], new_id)


def test_next_build_after_crashes_publishes_and_cleans_leftovers(
    rebuild: Rebuild, base: Build
) -> None:
    assert rebuild.result.returncode == 0, rebuild.result.stdout + rebuild.result.stderr
    assert rebuild.build_id != base.build_id
    assert not list(base.paths.builds.glob("*/loan_recovery.duckdb*"))
    assert not base.paths.previous_partial.exists()
    assert build_info(base.paths.previous)["build_id"] == base.build_id


def test_readers_never_fail_and_never_mix_builds(rebuild: Rebuild, base: Build) -> None:
    for log in rebuild.readers:
        assert log["errors"] == []
        assert log["mismatches"] == []
        # Old build until the swap, the new one after: never back, never a mix.
        assert log["sequence"] == [base.build_id, rebuild.build_id]
        assert log["counts"][base.build_id][1] == base.rows_clean
        assert log["counts"][rebuild.build_id][1] == MESSY_ROWS + 2


def test_an_open_connection_keeps_the_build_it_opened(rebuild: Rebuild, base: Build) -> None:
    assert rebuild.result.returncode == 0
    assert rebuild.holder["before"] == rebuild.holder["after"]
    assert rebuild.holder["before"][0] == base.build_id


def test_messy_book_builds_with_bad_rows_quarantined_with_reasons(
    rebuild: Rebuild, base: Build
) -> None:
    assert rebuild.result.returncode == 0
    served = base.paths.served
    info = build_info(served)
    bad = len(MESSY_BAD_ROWS)
    assert (info["rows_in"], info["rows_clean"], info["rows_quarantined"]) == (
        MESSY_ROWS + 2 + bad,
        MESSY_ROWS + 2,
        bad,
    )
    reasons = dict(query(served, "select Borrower_ID, reject_reason from quarantined_loans"))
    for number, (kind, _, reason) in enumerate(MESSY_BAD_ROWS):
        assert reason in reasons.get(f"BAD_{number}", ""), (kind, reasons.get(f"BAD_{number}"))
    # BOM, CRLF, an extra column and quoted commas in text do not disturb the good rows.
    assert query(
        served, "select count(*) from staging.stg_loans where legal_action_taken is null"
    ) == [(0,)]
    odd = query(
        served,
        "select borrower_id, gender, payment_history, loan_type from staging.stg_loans "
        "where loan_id in ('LN_800001', 'LN_800002') order by loan_id",
    )
    assert odd == [
        ("BRW,77", "Female", "On-Time", "Home"),
        ("BRW_800002", "Female", "On-Time", "Home"),
    ]


def test_rollback_serves_the_previous_build_and_back(
    rebuild: Rebuild, base: Build, tmp_path: Path
) -> None:
    assert rebuild.result.returncode == 0
    paths = copy_served(base.paths, tmp_path / "copy")
    shutil.copy2(base.paths.previous, paths.previous)
    back = run_cli("rollback", "--db", str(paths.served))
    assert back.returncode == 0, back.stderr
    assert f"now serving build {base.build_id}" in back.stdout
    assert build_info(paths.served)["build_id"] == base.build_id
    assert build_info(paths.previous)["build_id"] == rebuild.build_id
    forward = run_cli("rollback", "--db", str(paths.served))
    assert forward.returncode == 0, forward.stderr
    assert build_info(paths.served)["build_id"] == rebuild.build_id
    paths.previous.unlink()
    none = run_cli("rollback", "--db", str(paths.served))
    assert none.returncode == EXIT_FAILED
    assert "no previous build" in none.stderr


def test_a_second_build_cannot_publish_while_one_holds_the_lock(
    base: Build, books: Books, tmp_path: Path
) -> None:
    paths = copy_served(base.paths, tmp_path / "locked")
    before = sha256(paths.served)
    with publish_lock(paths, "build under test"):
        busy = run_cli("build", "--loans", str(books.base), "--db", str(paths.served))
    assert busy.returncode == EXIT_BUSY
    assert "build under test" in busy.stderr
    assert sha256(paths.served) == before


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Case:
    """A build that must fail: its input, how it is run, what it must say."""

    loans: str
    expect_code: int
    expect: tuple[str, ...]
    vars: str = FAST_VARS
    project_edit: str | None = None
    names_file: bool = True


DELIBERATE_DATA_TEST = """-- Test-only project copy: an error-severity test that always fails.
select loan_id from {{ ref('stg_loans') }}
"""

DELIBERATE_UNIT_TEST = """version: 2
unit_tests:
  - name: deliberately_wrong_expectation
    model: int_loan_features
    given:
      - input: ref('stg_loans')
        rows:
          - {loan_id: L1, borrower_id: B1, monthly_emi: 100, monthly_income: 1000}
    expect:
      rows:
        - {loan_id: L1, emi_to_income_ratio: 0.5}
"""

FAILURES: dict[str, Case] = {
    # The failure matrix: each kind of dbt failure blocks publishing.
    "model error": Case(
        "base.csv", EXIT_FAILED, ("model int_loan_segments",), "{n_segments: 500}", None, False
    ),
    "error-severity test failure": Case(
        "base.csv",
        EXIT_FAILED,
        ("data test assert_deliberately_failing failed",),
        FAST_VARS,
        "data_test",
        False,
    ),
    "unit test failure": Case(
        "base.csv",
        EXIT_FAILED,
        ("unit test int_loan_features.deliberately_wrong_expectation failed",),
        FAST_VARS,
        "unit_test",
        False,
    ),
    # Bad files that cannot be read as a loan book.
    "missing column": Case("missing_column.csv", EXIT_BAD_INPUT, ("missing columns Monthly_EMI",)),
    "wrong delimiter": Case("semicolons.csv", EXIT_BAD_INPUT, ("missing columns Borrower_ID",)),
    "empty file": Case("empty.csv", EXIT_BAD_INPUT, ("the file is empty",)),
    "header only": Case("header_only.csv", EXIT_BAD_INPUT, ("header but no loan rows",)),
    "non-UTF-8 bytes": Case("latin1.csv", EXIT_BAD_INPUT, ("not utf-8 encoded",)),
    "ragged row": Case("ragged.csv", EXIT_BAD_INPUT, ("CSV",)),
    "not a parquet file": Case("garbage.parquet", EXIT_BAD_INPUT, ("magic bytes",)),
    "unsupported file type": Case("loans.xlsx", EXIT_BAD_INPUT, ("unsupported file type",)),
    "no such file": Case("does_not_exist.csv", EXIT_BAD_INPUT, ("no such file",)),
    # Readable, but every row is bad: then a model fails; say why.
    "every row quarantined": Case(
        "all_bad.csv", EXIT_BAD_INPUT, ("no valid loans: all 30 rows", "age is not a number (30)")
    ),
}


def write_bad_books(directory: Path, base_book: Path) -> None:
    """One file per kind of unreadable loan book, cut from the base book."""
    lines = base_book.read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:31]
    columns = header.split(",")
    emi = columns.index("Monthly_EMI")

    def text(name: str, body: list[str]) -> None:
        (directory / name).write_text("\n".join(body) + "\n", encoding="utf-8")

    text(
        "missing_column.csv",
        [
            ",".join(c for i, c in enumerate(line.split(",")) if i != emi)
            for line in [header, *rows]
        ],
    )
    text("semicolons.csv", [line.replace(",", ";") for line in [header, *rows]])
    (directory / "empty.csv").write_bytes(b"")
    text("header_only.csv", [header])
    latin = "\n".join([header, *rows]).replace("Male", "M\xe4le", 1) + "\n"
    (directory / "latin1.csv").write_bytes(latin.encode("latin-1"))
    text("ragged.csv", [header, *rows[:5], rows[5] + ",extra,fields", *rows[6:]])
    (directory / "garbage.parquet").write_bytes(b"\x00\x01 not parquet" * 64)
    text("loans.xlsx", [header, *rows])
    age = columns.index("Age")
    all_bad = []
    for line in rows:
        fields = line.split(",")
        fields[age] = "abc"
        all_bad.append(",".join(fields))
    text("all_bad.csv", [header, *all_bad])


@dataclass(frozen=True)
class Outcome:
    result: subprocess.CompletedProcess[str]
    loans: Path
    served_before: str
    served_after: str
    previous_exists: bool


@pytest.fixture(scope="module")
def failures(
    base: Build, books: Books, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every failing case, two at a time, each against its own copy of the base build."""
    work = tmp_path_factory.mktemp("failures")
    write_bad_books(books.directory, books.base)
    projects = {}
    for edit in ("data_test", "unit_test"):
        root = copy_project(work / f"project_{edit}")
        if edit == "data_test":
            (root / "tests" / "assert_deliberately_failing.sql").write_text(DELIBERATE_DATA_TEST)
        else:
            (root / "models" / "intermediate" / "_deliberate_unit_test.yml").write_text(
                DELIBERATE_UNIT_TEST
            )
        projects[edit] = root

    def run(name: str, case: Case) -> Outcome:
        paths = copy_served(base.paths, work / name.replace(" ", "_"))
        loans = books.directory / case.loans
        before = sha256(paths.served)
        env = (
            {"LOAN_RECOVERY_PROJECT_DIR": str(projects[case.project_edit])}
            if (case.project_edit)
            else {}
        )
        result = run_cli(
            "build", "--loans", str(loans), "--db", str(paths.served), "--vars", case.vars, env=env
        )
        return Outcome(result, loans, before, sha256(paths.served), paths.previous.exists())

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(run, name, case) for name, case in FAILURES.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failed_build_publishes_nothing_and_says_why(
    failures: dict[str, Outcome], name: str
) -> None:
    case, outcome = FAILURES[name], failures[name]
    output = outcome.result.stdout + outcome.result.stderr
    assert outcome.result.returncode == case.expect_code, output
    assert outcome.served_after == outcome.served_before
    assert not outcome.previous_exists
    assert "Traceback" not in output
    first, *rest = outcome.result.stderr.splitlines()
    assert first.startswith("build failed at step "), first
    for expected in case.expect:
        assert expected in first, first
    if case.names_file:
        assert str(outcome.loans) in first
    logs = [line.split("full log: ", 1)[1] for line in rest if "full log: " in line]
    assert logs and Path(logs[0]).is_file()
    assert any("nothing published" in line for line in rest)
