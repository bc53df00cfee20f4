"""`loan-recovery build` and `rollback` end to end: publish, readers, crashes, failures, bad input.

Every case runs the real command (a subprocess, the venv's dbt) on small loan
books. To stay within a few minutes on two cores the expensive steps are
shared: one base build (which is also the warn-only case), three killed
builds on it, one rebuild under concurrent readers (which is also the messy
but buildable book), and the failing runs in a pool of three, each against its
own copy of the base build so that "the served file is untouched" is exact.
The other files of python_tests/serving/ test each module of the package without dbt.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conftest import kill_cli_at, needs, query, run_cli, served_build_info, sha256, valid_loan
from loan_recovery.build_info import BuildInfo, utc_now
from loan_recovery.config import loan_book_columns, project_dir, run_setting_defaults
from loan_recovery.generate import write_loan_book
from loan_recovery.serving import EXIT_BAD_INPUT, EXIT_BUSY, EXIT_FAILED, EXIT_USAGE, ServedPaths
from loan_recovery.serving.finalize import expected_relations
from loan_recovery.serving.lock import publish_lock
from loan_recovery.serving.pause import PAUSE_MARKER

pytestmark = pytest.mark.dbt

FAST_VARS = "{scoring_trees: 20, outcome_trees: 20}"
DUCKDB_1X = "1.1.3"
READERS = 4

BASE_ROWS = 150  # generated; plus one warn-only row
MESSY_ROWS = 120  # generated; plus the odd-but-valid rows, the bad rows and the malformed lines
MESSY_ODD_ROWS = 3
MAX_RATIO = run_setting_defaults()["max_outstanding_to_loan_ratio"]

# (bad row kind, fields to set, the reason staging must give)
MESSY_BAD_ROWS: list[tuple[str, dict[str, str], str]] = [
    ("unparseable number", {"Age": "forty"}, "age is not a number"),
    ("negative value", {"Loan_Amount": "-5000"}, "loan_amount is outside (0,"),
    ("impossible value", {"Age": "250"}, "age is outside [18, 100]"),
    (
        "impossible combination",
        {"Outstanding_Loan_Amount": "900000"},
        f"outstanding_loan_amount is above {MAX_RATIO} x loan_amount",
    ),
    ("null key", {"Loan_ID": ""}, "loan_id is missing"),
    ("duplicate key (first)", {"Loan_ID": "LN_DUP"}, "loan_id is duplicated"),
    ("duplicate key (second)", {"Loan_ID": "LN_DUP"}, "loan_id is duplicated"),
    # Unknown values reject a row only in the strict categories (the outcome, legal action).
    ("unknown outcome", {"Recovery_Status": "Lost"}, "recovery_status has an unknown value"),
    ("huge number", {"Loan_Amount": "1e400"}, "loan_amount is not a number"),
    ("huge value", {"Monthly_Income": "99999999999999999999999"}, "monthly_income is outside"),
    ("quoted comma in a number", {"Loan_Amount": "500,000"}, "loan_amount is not a number"),
    ("missing value", {"Monthly_EMI": ""}, "monthly_emi is missing"),
    ("NaN", {"Interest_Rate": "NaN"}, "interest_rate is not a number"),
]


# --------------------------------------------------------------------------- helpers


def served_and_previous(paths: ServedPaths) -> tuple[str, str]:
    """The builds the served file and the previous file hold."""
    return (
        served_build_info(paths.served)["build_id"],
        served_build_info(paths.previous)["build_id"],
    )


def relations(database: Path) -> set[str]:
    """Every table in the file as schema.table."""
    return {
        row[0]
        for row in query(
            database,
            "select schema_name || '.' || table_name from duckdb_tables() where not internal",
        )
    }


def assert_holds_complete_build(database: Path, build_id: str, rows_clean: int) -> None:
    info = served_build_info(database)
    assert info["build_id"] == build_id
    assert info["rows_clean"] == rows_clean
    for table in (
        "staging.stg_loans",
        "main.recovery_strategies",
        "intermediate.int_loan_segment_scores",
    ):
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


def write_rows(
    path: Path, rows: list[dict[str, Any] | str], columns: list[str], **options: Any
) -> Path:
    """A CSV with a header: dict rows through the csv module, str rows written verbatim."""
    encoding = options.pop("encoding", "utf-8")
    terminator = options.get("lineterminator", "\r\n")
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore", **options)
        writer.writeheader()
        for row in rows:
            if isinstance(row, str):
                handle.write(row + terminator)
            else:
                writer.writerow(row)
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
    # Lines that cannot be split into fields: (first characters, file line, reason).
    messy_malformed: list[tuple[str, int, str]]


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Books:
    """The base book (one warn-only row) and the messy but buildable one."""
    directory = tmp_path_factory.mktemp("books")
    columns = loan_book_columns()

    base_rows = generated_rows(directory / "generated_base.csv", BASE_ROWS, seed=42)
    warn_row = {**valid_loan(900001), "Days_Past_Due": 15, "Num_Missed_Payments": 0}
    base = write_rows(directory / "base.csv", [*base_rows, warn_row], columns)

    # Messy: byte-order mark, CRLF, an extra column with quoted commas and
    # quotes, odd-but-valid values, one row per kind of bad value, a ragged
    # row and (last, so that no later quote closes it) an unterminated quote.
    messy_columns = [*columns, "Notes"]
    rows: list[dict[str, Any] | str] = []
    for row in generated_rows(directory / "generated_messy.csv", MESSY_ROWS, 7):
        rows.append({**row, "Notes": 'free text, with "quotes", and commas'})
    rows.append({**valid_loan(800001), "Borrower_ID": "BRW,77", "Notes": ""})
    rows.append(
        {
            **valid_loan(800002),
            "Gender": " female ",
            "Payment_History": "ON-TIME",
            "Loan_Type": "home",
        }
    )
    # An unknown value of a descriptive category is kept, normalised and reported.
    rows.append({**valid_loan(800003), "Loan_Type": " boat "})
    ragged = [str(valid_loan(820001)[column]) for column in columns] + ["", "extra", "fields"]
    ragged[0] = "RAGGED_ROW"
    malformed = [
        (
            "RAGGED_ROW,",
            len(rows) + 2,
            f"malformed row: {len(ragged)} fields, the header has {len(messy_columns)}",
        )
    ]
    rows.append(",".join(ragged))
    for number, (_, fields, _) in enumerate(MESSY_BAD_ROWS):
        rows.append({**valid_loan(810000 + number), "Borrower_ID": f"BAD_{number}", **fields})
    stray = [str(valid_loan(830001)[column]) for column in columns] + [""]
    stray[0], stray[1] = "STRAY_QUOTE", '"40'
    line = len(rows) + 2
    malformed.append(("STRAY_QUOTE,", line, f"a quote opened on line {line} is never closed"))
    rows.append(",".join(stray))
    messy = write_rows(
        directory / "messy.csv",
        rows,
        messy_columns,
        encoding="utf-8-sig",
        lineterminator="\r\n",
    )
    return Books(base, messy, directory, malformed)


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
    info = served_build_info(paths.served)
    return Build(paths, result, info["build_id"], info["rows_clean"])


def test_warn_only_test_still_publishes(base: Build) -> None:
    assert "published build" in base.result.stdout
    assert "warning: data test expression_is_true_stg_loans_" in base.result.stdout
    assert base.rows_clean == BASE_ROWS + 1


def test_build_info_describes_the_build(base: Build, books: Books) -> None:
    info = served_build_info(base.paths.served)
    # The columns are BuildInfo's, in order: no thresholds or dbt_vars (run_settings has them).
    assert list(info) == [column.name for column in dataclass_fields(BuildInfo)]
    assert info["input_file"] == str(books.base)
    assert info["input_sha256"] == sha256(books.base)
    assert info["input_bytes"] == books.base.stat().st_size
    assert (info["rows_in"], info["rows_quarantined"]) == (BASE_ROWS + 1, 0)
    # The model version every mart carries: on these 151 loans the outcome
    # model falls back, so nothing is registered and both are NULL.
    marts_version = query(base.paths.served, "select model_version from run_settings")
    assert [(info["model_version"],)] == marts_version == [(None,)]
    assert info["project_version"] == "0.1.0"
    assert info["git_commit"] is None or len(info["git_commit"].split("-")[0]) == 40
    # Plain TIMESTAMPs in UTC: naive datetimes, minutes before now in UTC.
    assert info["started_at"].tzinfo is None
    assert info["started_at"] < info["finished_at"] <= utc_now()
    assert utc_now() - info["started_at"] < timedelta(hours=1)
    assert (base.paths.builds / info["build_id"] / "logs" / "build.log").is_file()


def test_run_settings_records_the_settings_in_force(base: Build) -> None:
    defaults = run_setting_defaults()
    settings = query(
        base.paths.served,
        "select legal_threshold, settlement_threshold, n_segments, scoring_trees "
        "from main.run_settings",
    )
    assert settings == [
        (defaults["legal_threshold"], defaults["settlement_threshold"], defaults["n_segments"], 20)
    ]


def test_served_file_is_tables_only_in_1x_storage_with_no_wal(base: Build) -> None:
    served = base.paths.served
    assert not base.paths.wal.exists()
    assert query(served, "select count(*) from duckdb_views() where not internal") == [(0,)]
    tables = relations(served)
    assert {
        "main.build_info",
        "main.run_settings",
        "main.quarantined_loans",
        "main.loan_book_quality",
        "main.recovery_strategies",
        "main.borrower_segments",
        "main.risk_model_metrics",
        "staging.stg_loans",
        "staging.stg_loan_book__checked",
        "intermediate.int_loan_features",
        "intermediate.int_loan_segments",
        "intermediate.int_loan_segment_scores",
    } <= tables
    # Exactly what dbt built (its manifest) plus build_info; a build of the
    # user's book does not carry the bundled sample's 2,000 loans.
    assert tables == expected_relations(base.paths.builds / base.build_id / "target") | {
        "main.build_info"
    }
    assert not any(name.endswith(".sample_loan_book") for name in tables)
    assert query(
        served,
        "select tags['storage_version'] from duckdb_databases() where database_name = "
        "current_database()",
    ) == [("v1.0.0+",)]
    # The build directory keeps the logs but not the build file, which became the served one.
    assert not list(base.paths.builds.glob("*/loan_recovery.duckdb*"))
    assert list(base.paths.builds.glob("*/logs/dbt.log"))
    assert not base.paths.previous.exists()
    assert not any(partial.exists() for partial in base.paths.partials)


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
    "select schema_name, table_name from duckdb_tables() where not internal order by 1, 2"
).fetchall()
counts = {}
for schema, table in tables:
    name = f'"{schema}"."{table}"'
    counts[f"{schema}.{table}"] = connection.execute(f"select count(*) from {name}").fetchone()[0]
    # Every value of every column, read by the 1.x engine (as text: no pytz needed).
    connection.execute(f"select columns(*)::varchar from {name}").fetchall()
    # And as the 1.x client's own Python values (timestamps are naive: no pytz either).
    connection.execute(f"select * from {name}").fetchall()
print(json.dumps({
    "version": duckdb.__version__,
    "counts": counts,
    "build_id": connection.execute("select build_id from main.build_info").fetchone()[0],
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
        needs(
            not any(marker in output for marker in NETWORK_ERRORS),
            f"PyPI is unreachable, so duckdb=={DUCKDB_1X} cannot be installed: {last}",
        )
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
    assert set(seen["counts"]) == relations(base.paths.served)
    for name, count in seen["counts"].items():
        assert query(base.paths.served, f"select count(*) from {name}") == [(count,)], name
    assert seen["counts"]["staging.stg_loans"] == base.rows_clean
    assert seen["counts"]["main.recovery_strategies"] == base.rows_clean


# --------------------------------------------------------------------------- crashes


@dataclass(frozen=True)
class Crash:
    marker: str
    served_intact: bool
    leftovers: list[str]
    previous_exists: bool
    previous_partial_build: str | None  # the build S.previous.partial holds, None if absent
    dbt_child_alive: bool


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def kill_build_at(step: str, paths: ServedPaths, loans: Path) -> str:
    """Start a build that pauses at ``step``, SIGKILL it there, return the pause marker."""
    return kill_cli_at(
        step, "build", "--loans", str(loans), "--db", str(paths.served), "--vars", FAST_VARS
    )


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
        partial = base.paths.previous_partial
        results[step] = Crash(
            marker,
            intact,
            leftovers,
            base.paths.previous.exists(),
            served_build_info(partial)["build_id"] if partial.exists() else None,
            dbt_alive,
        )
    return results


@pytest.mark.parametrize("step", ["dbt", "finalize", "swap"])
def test_killed_build_leaves_the_previous_build_served(
    crashes: dict[str, Crash], base: Build, step: str
) -> None:
    crash = crashes[step]
    assert crash.marker.startswith(f"{PAUSE_MARKER} step={step}")
    assert crash.served_intact
    assert not crash.dbt_child_alive  # dbt dies with the build process
    # The killed build's file is left in its own directory; the next build
    # removed whatever the build killed before it had left.
    assert len({name.split("/")[0] for name in crash.leftovers}) == 1, crash.leftovers
    assert any(name.endswith("/loan_recovery.duckdb") for name in crash.leftovers)
    if step == "finalize":
        # Killed with the build file open read-write: a build file and its WAL are left.
        assert any(name.endswith(".duckdb.wal") for name in crash.leftovers), crash.leftovers
    # The base build was the first one: there is no previous build to keep.
    assert not crash.previous_exists
    if step == "swap":
        # Killed after linking the served build as S.previous.partial, before
        # the rename: the partial is a second name of the still-served build.
        assert crash.previous_partial_build == base.build_id
    else:
        assert crash.previous_partial_build is None


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
        new_id = served_build_info(base.paths.served)["build_id"] if result.returncode == 0 else ""
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
    # The kill at swap left S.previous.partial, a second name of the served
    # build: this build removed it, and kept the build it replaced as previous.
    assert not any(partial.exists() for partial in base.paths.partials)
    log = (base.paths.builds / rebuild.build_id / "logs" / "build.log").read_text()
    assert f"removed {base.paths.previous_partial.name} (a second name of the served build)" in log
    assert served_build_info(base.paths.previous)["build_id"] == base.build_id
    assert f"previous build kept as {base.paths.previous}" in rebuild.result.stdout


def test_a_later_build_starts_from_the_earlier_parse(rebuild: Rebuild, base: Build) -> None:
    # A full parse is ~2.5 s of every build; dbt reuses a saved one only while
    # the profile (the build file's path among it) stays the same.
    logs = base.paths.builds / rebuild.build_id / "logs"
    assert "dbt starts from the parse of" in (logs / "build.log").read_text()
    dbt_log = (logs / "dbt.log").read_text()
    assert "Partial parsing enabled" in dbt_log
    assert "Unable to do partial parsing" not in dbt_log


def test_readers_never_fail_and_never_mix_builds(rebuild: Rebuild, base: Build) -> None:
    for log in rebuild.readers:
        assert log["errors"] == []
        assert log["mismatches"] == []
        # Old build until the swap, the new one after: never back, never a mix.
        assert log["sequence"] == [base.build_id, rebuild.build_id]
        assert log["counts"][base.build_id][1] == base.rows_clean
        assert log["counts"][rebuild.build_id][1] == MESSY_ROWS + MESSY_ODD_ROWS


def test_an_open_connection_keeps_the_build_it_opened(rebuild: Rebuild, base: Build) -> None:
    assert rebuild.result.returncode == 0
    assert rebuild.holder["before"] == rebuild.holder["after"]
    assert rebuild.holder["before"][0] == base.build_id


def test_messy_book_builds_with_bad_rows_quarantined_with_reasons(
    rebuild: Rebuild, base: Build, books: Books
) -> None:
    assert rebuild.result.returncode == 0, rebuild.result.stdout + rebuild.result.stderr
    served = base.paths.served
    info = served_build_info(served)
    bad = len(MESSY_BAD_ROWS) + len(books.messy_malformed)
    clean = MESSY_ROWS + MESSY_ODD_ROWS
    assert (info["rows_in"], info["rows_clean"], info["rows_quarantined"]) == (
        clean + bad,
        clean,
        bad,
    )
    reasons = dict(query(served, "select Borrower_ID, reject_reason from quarantined_loans"))
    for number, (kind, _, reason) in enumerate(MESSY_BAD_ROWS):
        assert reason in reasons.get(f"BAD_{number}", ""), (kind, reasons.get(f"BAD_{number}"))
    # A line the reader cannot split into fields is quarantined with its text
    # and line number; the rows after it are read as usual.
    malformed = query(
        served,
        "select raw_line, source_line_number, reject_reason from main.quarantined_loans "
        "where raw_line is not null order by source_line_number",
    )
    assert len(malformed) == len(books.messy_malformed)
    for (raw_line, line, reason), (start, expected_line, expected) in zip(
        malformed, books.messy_malformed, strict=True
    ):
        assert raw_line.startswith(start)
        assert line == expected_line
        assert expected in reason
    # BOM, CRLF, an extra column and quoted commas in text do not disturb the good rows.
    assert query(
        served, "select count(*) from staging.stg_loans where legal_action_taken is null"
    ) == [(0,)]
    odd = query(
        served,
        "select borrower_id, gender, payment_history, loan_type from staging.stg_loans "
        "where loan_id in ('LN_800001', 'LN_800002', 'LN_800003') order by loan_id",
    )
    assert odd == [
        ("BRW,77", "Female", "On-Time", "Home"),
        ("BRW_800002", "Female", "On-Time", "Home"),
        ("BRW_800003", "Female", "On-Time", "Boat"),
    ]
    # The unknown loan type is kept, counted in loan_book_quality and reported.
    assert ("unknown_category_value", "loan_type", "Boat", 1) in query(
        served, "select finding, column_name, category_value, loan_count from loan_book_quality"
    )
    assert "kept 1 loans with an unknown loan_type 'Boat'" in rebuild.result.stdout
    assert f"{clean + bad} rows in = {clean} clean + {bad} quarantined" in rebuild.result.stdout


def test_rollback_serves_the_previous_build_and_back(
    rebuild: Rebuild, base: Build, tmp_path: Path
) -> None:
    assert rebuild.result.returncode == 0
    paths = copy_served(base.paths, tmp_path / "copy")
    shutil.copy2(base.paths.previous, paths.previous)
    back = run_cli("rollback", "--db", str(paths.served))
    assert back.returncode == 0, back.stderr
    assert f"now serving build {base.build_id}" in back.stdout
    assert f"build {rebuild.build_id} kept as {paths.previous}" in back.stdout
    assert served_and_previous(paths) == (base.build_id, rebuild.build_id)
    forward = run_cli("rollback", "--db", str(paths.served))
    assert forward.returncode == 0, forward.stderr
    assert served_and_previous(paths) == (rebuild.build_id, base.build_id)
    assert not any(partial.exists() for partial in paths.partials)

    # A previous file holding the served build is no build to roll back to.
    shutil.copy2(paths.served, paths.previous)
    before = sha256(paths.served)
    same = run_cli("rollback", "--db", str(paths.served))
    assert same.returncode == EXIT_FAILED, same.stderr
    assert same.stderr.startswith("rollback failed at step rollback: ")
    assert f"holds build {rebuild.build_id}, the one already served" in same.stderr
    assert sha256(paths.served) == before

    paths.previous.unlink()
    none = run_cli("rollback", "--db", str(paths.served))
    assert none.returncode == EXIT_FAILED
    assert "no previous build" in none.stderr
    assert "Traceback" not in same.stderr + none.stderr


def test_killed_rollback_leaves_the_served_build_and_the_next_rollback_completes(
    rebuild: Rebuild, base: Build, tmp_path: Path
) -> None:
    assert rebuild.result.returncode == 0
    paths = copy_served(base.paths, tmp_path / "copy")
    shutil.copy2(base.paths.previous, paths.previous)
    before = sha256(paths.served)
    marker = kill_cli_at("rollback", "rollback", "--db", str(paths.served))
    assert marker.startswith(f"{PAUSE_MARKER} step=rollback")
    # Killed after linking the served build as S.rollback.partial, before any rename.
    assert sha256(paths.served) == before
    assert served_build_info(paths.rollback_partial)["build_id"] == rebuild.build_id
    assert served_build_info(paths.previous)["build_id"] == base.build_id
    # The next rollback drops the spare name and rolls back as asked.
    again = run_cli("rollback", "--db", str(paths.served))
    assert again.returncode == 0, again.stderr
    assert served_and_previous(paths) == (base.build_id, rebuild.build_id)
    assert not any(partial.exists() for partial in paths.partials)


def test_a_second_build_cannot_publish_while_one_holds_the_lock(
    base: Build, books: Books, tmp_path: Path
) -> None:
    paths = copy_served(base.paths, tmp_path / "locked")
    before = sha256(paths.served)
    with publish_lock(paths, "build under test"):
        busy = run_cli("build", "--loans", str(books.base), "--db", str(paths.served))
        rollback = run_cli("rollback", "--db", str(paths.served))
    assert busy.returncode == EXIT_BUSY
    assert "build under test" in busy.stderr
    assert busy.stderr.startswith("build failed at step lock: another build or rollback holds")
    assert rollback.returncode == EXIT_BUSY
    assert "build under test" in rollback.stderr
    assert sha256(paths.served) == before
    # The holder line is padded to a fixed width and outlives the holder (never truncated).
    held = paths.lock.read_bytes()
    assert held.startswith(f"pid {os.getpid()}, build under test".encode())
    assert len(held) == 256 and held.endswith(b"\n")


# --------------------------------------------------------------------------- failures


@dataclass(frozen=True)
class Case:
    """A build that must fail: its input, how it is run, where it stops and what it must say."""

    loans: str
    expect_code: int
    step: str
    expect: tuple[str, ...]
    vars: str = FAST_VARS
    project_edit: str | None = None
    names_file: bool = True
    inspect: bool = False  # the failed build file is named, to look at
    db_is_csv: bool = False  # --db names a user's CSV instead of a build


DELIBERATE_DATA_TEST = """-- Test-only project copy: an error-severity test that always fails.
select loan_id from {{ ref('stg_loans') }}
"""

FAILURES: dict[str, Case] = {
    # The failure matrix: each kind of dbt failure blocks publishing.
    "model error": Case(
        "base.csv",
        EXIT_FAILED,
        "dbt",
        ("model int_loan_segments errored", "cannot form 500 segments"),
        vars="{n_segments: 500, scoring_trees: 20}",
        names_file=False,
        inspect=True,
    ),
    "error-severity test failure": Case(
        "base.csv",
        EXIT_FAILED,
        "dbt",
        ("data test assert_deliberately_failing failed",),
        project_edit="data_test",
        names_file=False,
        inspect=True,
    ),
    # A failing unit test does not stop a production build: `loan-recovery
    # build` runs selector full_build, without unit tests (issue 30); the test
    # suite's plain `dbt build` runs them (project/test_selectors.py).
    # Settings refused before anything runs (unknown key), or by dbt's
    # on-run-start check (a value out of range): usage errors, exit 2.
    "unknown setting": Case(
        "base.csv",
        EXIT_USAGE,
        "settings",
        ("--vars: unknown setting 'legal_treshold'",),
        vars="{legal_treshold: 0.8}",
        names_file=False,
    ),
    "setting out of range": Case(
        "base.csv",
        EXIT_USAGE,
        "dbt",
        ("invalid --vars: legal_threshold must be a number between 0 and 1, got 1.5",),
        vars="{legal_threshold: 1.5, scoring_trees: 20}",
        names_file=False,
    ),
    # A --db that is not one of our builds is never replaced.
    "--db names a CSV": Case(
        "base.csv",
        EXIT_USAGE,
        "db",
        ("exists and is not a loan-recovery build", "refusing to replace it"),
        names_file=False,
        db_is_csv=True,
    ),
    # Bad files that cannot be read as a loan book: refused on opening ...
    "empty file": Case("empty.csv", EXIT_BAD_INPUT, "input", ("the file is empty",)),
    "not a parquet file": Case(
        "garbage.parquet", EXIT_BAD_INPUT, "input", ("the file is not Parquet",)
    ),
    "UTF-16 text": Case("utf16.csv", EXIT_BAD_INPUT, "input", ("is UTF-16 text",)),
    "unsupported file type": Case(
        "loans.xlsx", EXIT_BAD_INPUT, "input", ("unsupported file type",)
    ),
    "no such file": Case("does_not_exist.csv", EXIT_BAD_INPUT, "input", ("no such file",)),
    # ... or by dbt's check of the file.
    "missing column": Case(
        "missing_column.csv", EXIT_BAD_INPUT, "dbt", ("missing columns Monthly_EMI",)
    ),
    "wrong delimiter": Case(
        "semicolons.csv", EXIT_BAD_INPUT, "dbt", ("';'-separated", "missing columns Borrower_ID")
    ),
    "header only": Case("header_only.csv", EXIT_BAD_INPUT, "dbt", ("header but no loan rows",)),
    "non-UTF-8 bytes": Case("latin1.csv", EXIT_BAD_INPUT, "input", ("line 2 is not UTF-8 text",)),
    # Readable, but every row is bad: then a model fails; say why.
    "every row quarantined": Case(
        "all_bad.csv",
        EXIT_BAD_INPUT,
        "dbt",
        ("no valid loans: all 30 rows", "age is not a number (30)"),
        inspect=True,
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
    (directory / "utf16.csv").write_bytes("\n".join([header, *rows]).encode("utf-16"))
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
    beside: list[str]  # names next to the served file afterwards


@pytest.fixture(scope="module")
def failures(
    base: Build, books: Books, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    """Every failing case, three at a time, each against its own copy of the base build."""
    work = tmp_path_factory.mktemp("failures")
    write_bad_books(books.directory, books.base)
    projects = {}
    root = copy_project(work / "project_data_test")
    (root / "tests" / "assert_deliberately_failing.sql").write_text(DELIBERATE_DATA_TEST)
    projects["data_test"] = root

    def run(name: str, case: Case) -> Outcome:
        paths = copy_served(base.paths, work / name.replace(" ", "_"))
        if case.db_is_csv:
            shutil.copy2(books.base, paths.served)
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
        beside = sorted(path.name for path in paths.served.parent.iterdir())
        return Outcome(result, loans, before, sha256(paths.served), paths.previous.exists(), beside)

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
    assert first.startswith(f"build failed at step {case.step}: "), first
    for expected in case.expect:
        assert expected in first, first
    if case.names_file:
        assert f"'{outcome.loans}'" in first
    inspect = [line.split(": ", 1)[1] for line in rest if "failed build file" in line]
    assert bool(inspect) == case.inspect, rest
    assert all(Path(path).is_file() for path in inspect)
    logs = [line.split("full log: ", 1)[1] for line in rest if "full log: " in line]
    if case.step in ("settings", "db"):
        # Refused before the lock: nothing was written beside the served file.
        assert rest == [], rest
        assert outcome.beside == ["loan_recovery.duckdb"]
    else:
        assert logs and Path(logs[0]).is_file()
        assert any("nothing published" in line for line in rest)
