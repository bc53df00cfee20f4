"""Build, verify and publish the served DuckDB file atomically; roll back.

Analysts and BI tools open the served file (``loan_recovery.duckdb`` by
default) read-only while the pipeline rebuilds it. So a rebuild never touches
that file: ``dbt build`` writes a new *build file* in a per-build directory
next to it, the build is finalized (``build_info``, checkpoint, no WAL) and
verified there (reopened read-only, every relation queried), and only then
``os.replace`` swaps it in under the served name. A reader therefore opens
either the old inode or the new one, never a half-written file, and a failed
or killed build leaves the served file as it was.

Layout next to the served file ``S`` (all on one file system, which is what
makes the rename atomic)::

    S                     the served build; never opened read-write here
    S.previous            the build it replaced (``loan-recovery rollback``)
    S.lock                flock: one build or rollback at a time
    S.builds/<build_id>/  S.name (the build file), target/, logs/

Steps, as named in failure summaries: ``lock``, ``input``, ``dbt``,
``finalize``, ``verify``, ``publish`` (and ``rollback``).

Test hook: ``LOAN_RECOVERY_PAUSE_AT=<step>[,<step>...]`` makes the build print
``LOAN_RECOVERY_PAUSED step=<step> pid=<pid> ...`` on stderr and sleep
``LOAN_RECOVERY_PAUSE_SECONDS`` (default 600) at that point, so that a test
can SIGKILL it at a known place. Points: ``dbt`` (dbt has created the build
file and is frozen with SIGSTOP), ``finalize`` (build_info written, not yet
checkpointed: the build file is open read-write), ``verify`` (finalized, not
yet verified) and ``swap`` (the old build is already linked as
``S.previous``, the new one not yet renamed into place).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import duckdb
import yaml

import loan_recovery
from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo, utc_now
from loan_recovery.config import DB_PATH_ENV, database_path, project_dir
from loan_recovery.dbt_results import (
    FAILED_STATUSES,
    NodeFailure,
    clean_line,
    error_from_output,
    first_meaningful_line,
    node_failures,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_BUSY = 4

PAUSE_ENV = "LOAN_RECOVERY_PAUSE_AT"
PAUSE_SECONDS_ENV = "LOAN_RECOVERY_PAUSE_SECONDS"
PAUSE_MARKER = "LOAN_RECOVERY_PAUSED"

SAMPLE_SEED = Path("seeds") / "sample_loan_book.csv"
KEEP_BUILD_DIRS = 10
HASH_CHUNK_BYTES = 1 << 20


class BuildError(Exception):
    """A build or rollback stopped at ``step``; ``reason`` is the one-line why.

    Carries the exit code and the log to point at, so that the command line
    prints a short summary instead of a traceback.
    """

    def __init__(
        self,
        step: str,
        reason: str,
        *,
        exit_code: int = EXIT_FAILED,
        log: Path | None = None,
        inspect: Path | None = None,
    ) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason
        self.exit_code = exit_code
        self.log = log
        self.inspect = inspect


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class ServedPaths:
    """Where the served file, its previous build, lock and build directories live."""

    served: Path

    @property
    def previous(self) -> Path:
        return self.served.with_name(self.served.name + ".previous")

    @property
    def lock(self) -> Path:
        return self.served.with_name(self.served.name + ".lock")

    @property
    def builds(self) -> Path:
        return self.served.with_name(self.served.name + ".builds")

    @property
    def previous_partial(self) -> Path:
        """The previous build's name while it is being linked (renamed over .previous)."""
        return self.served.with_name(self.served.name + ".previous.partial")

    @property
    def rollback_partial(self) -> Path:
        return self.served.with_name(self.served.name + ".rollback.partial")

    @property
    def wal(self) -> Path:
        return wal_path(self.served)


@dataclass(frozen=True)
class BuildDir:
    """One build's directory: its build file (named like the served file), target, logs.

    The build file keeps the served file's name so that the DuckDB catalog
    name (the file stem) is the same before and after the rename.
    """

    root: Path
    database: Path

    @property
    def target(self) -> Path:
        return self.root / "target"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def dbt_log(self) -> Path:
        return self.logs / "dbt.log"

    @property
    def dbt_output(self) -> Path:
        return self.logs / "dbt-output.txt"

    @property
    def build_log(self) -> Path:
        return self.logs / "build.log"


def wal_path(database: Path) -> Path:
    return database.with_name(database.name + ".wal")


def served_path(db: str | os.PathLike[str] | None = None) -> Path:
    """The served file: ``--db``, else the project's one rule (``config.database_path``).

    Made absolute, because dbt runs in the project directory, not the caller's;
    a symlink is kept as such (the link is what gets replaced, not its target).
    """
    return Path(os.path.abspath(Path(db).expanduser() if db else database_path()))


def new_build_id(now: datetime | None = None) -> str:
    """UTC timestamp plus a short random suffix: sortable, and unique per run."""
    moment = now or utc_now()
    return f"{moment:%Y%m%dT%H%M%S}Z-{secrets.token_hex(3)}"


# --------------------------------------------------------------------------- small facts


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed in chunks so a loan book of any size fits in memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit(root: Path) -> str | None:
    """HEAD of the checkout holding the project (``-dirty`` if edited), or None.

    Never fails: a release tarball or a machine without git simply has no commit.
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = head.stdout.strip()
    return commit + ("-dirty" if status.returncode == 0 and status.stdout.strip() else "")


def storage_compatibility_version(root: Path) -> str:
    """The storage version the profile makes dbt write (profiles.yml ``config_options``).

    The profile is the one place that sets it; finalize writes with the same
    setting and verify checks the file carries it, so BI drivers that bundle
    DuckDB 1.x can open the served file.
    """
    with (root / "profiles.yml").open(encoding="utf-8") as handle:
        profiles = yaml.safe_load(handle)
    with (root / "dbt_project.yml").open(encoding="utf-8") as handle:
        profile_name = yaml.safe_load(handle)["profile"]
    profile = profiles[profile_name]
    output = profile["outputs"][profile["target"]]
    version = (output.get("config_options") or {}).get("storage_compatibility_version")
    if not version:
        raise BuildError(
            "verify",
            f"profiles.yml sets no config_options.storage_compatibility_version for "
            f"{profile_name}; DuckDB 1.x readers could not open the served file",
        )
    return str(version)


def pause_point(step: str, detail: str = "") -> None:
    """The documented test hook: announce and sleep at ``step`` when asked to."""
    wanted = {name.strip() for name in os.environ.get(PAUSE_ENV, "").split(",")}
    if step not in wanted:
        return
    print(f"{PAUSE_MARKER} step={step} pid={os.getpid()} {detail}".rstrip(), file=sys.stderr)
    sys.stderr.flush()
    time.sleep(float(os.environ.get(PAUSE_SECONDS_ENV, "600")))


def _fsync_path(path: Path) -> None:
    """Flush a file's (or directory's) data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir_quietly(path: Path) -> None:
    """Directory fsync makes a rename durable; some file systems refuse it, which is fine."""
    with contextlib.suppress(OSError):
        _fsync_path(path)


# --------------------------------------------------------------------------- lock


@contextlib.contextmanager
def publish_lock(paths: ServedPaths, holder: str) -> Iterator[None]:
    """Hold ``S.lock`` so that two builds (or a build and a rollback) never overlap.

    flock is released by the kernel when the process dies, so a killed build
    never leaves a stale lock; the lock file itself is never deleted (deleting
    a flock file races with the next locker).
    """
    paths.lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            current = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown"
            raise BuildError(
                "lock",
                f"another build or rollback holds {paths.lock} ({current}); try again later",
                exit_code=EXIT_BUSY,
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {holder}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def clean_stale(paths: ServedPaths, current: Path | None = None) -> list[Path]:
    """Remove what killed or failed runs left: partial links and old build files.

    Runs under the lock, so no other build is writing. Old build directories
    keep their logs (the newest ``KEEP_BUILD_DIRS``); their database files go.
    """
    removed: list[Path] = []
    for partial in (paths.previous_partial, paths.rollback_partial):
        if partial.exists():
            partial.unlink()
            removed.append(partial)
    if not paths.builds.is_dir():
        return removed
    directories = sorted(
        (entry for entry in paths.builds.iterdir() if entry.is_dir() and entry != current),
        key=lambda entry: entry.name,
    )
    for directory in directories:
        for name in (paths.served.name, paths.served.name + ".wal"):
            leftover = directory / name
            if leftover.exists():
                leftover.unlink()
                removed.append(leftover)
        temp = directory / (paths.served.name + ".tmp")
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
            removed.append(temp)
    keep = KEEP_BUILD_DIRS - (1 if current else 0)
    for directory in directories[: max(len(directories) - keep, 0)]:
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


# --------------------------------------------------------------------------- dbt


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    results: dict[str, Any] | None
    output: str


def _die_with_parent() -> None:
    """In the dbt child: get SIGKILL when the build process dies (Linux).

    Without it a killed build would leave dbt running on, writing a build
    file nobody will publish.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def dbt_command(
    build_dir: BuildDir, root: Path, dbt_vars: Mapping[str, Any]
) -> tuple[list[str], dict[str, str]]:
    """The ``dbt build`` command line and environment for one build.

    Uses the dbt next to this interpreter (the project's venv); target and log
    paths are per build so that concurrent development runs never clash.
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
    if dbt_vars:
        command += ["--vars", json.dumps(dict(dbt_vars))]
    environment = {
        **os.environ,
        DB_PATH_ENV: str(build_dir.database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return command, environment


def run_dbt(build_dir: BuildDir, root: Path, dbt_vars: Mapping[str, Any]) -> DbtRun:
    """Run the whole ``dbt build`` into the build file; output goes to the build's logs."""
    command, environment = dbt_command(build_dir, root, dbt_vars)
    build_dir.logs.mkdir(parents=True, exist_ok=True)
    with build_dir.dbt_output.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        try:
            if PAUSE_ENV in os.environ and "dbt" in os.environ[PAUSE_ENV].split(","):
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


# --------------------------------------------------------------------------- failure summary


def _mentions_file(failure: NodeFailure, loans: Path) -> bool:
    text = failure.message + failure.compiled_code
    return str(loans) in text


def summarize_dbt_failure(run: DbtRun, loans: Path | None) -> tuple[str, bool]:
    """One line saying why ``dbt build`` failed, and whether the input file is to blame.

    The loan book's own checks raise ``loans_path '<file>': <problem>``; that
    line is the answer. A DuckDB reader error in a node that reads the file
    is reported with the file's name. Otherwise: the first node that failed.
    """
    failures = node_failures(run.results, FAILED_STATUSES)
    if not failures:
        return f"dbt stopped (exit {run.returncode}): {error_from_output(run.output)}", False
    for failure in failures:
        for line in failure.message.splitlines():
            if "loans_path '" in line:
                return " ".join(clean_line(line).split()), True
    first = failures[0]
    detail = first_meaningful_line(first.message)
    if loans is not None and _mentions_file(first, loans):
        for quoted in (f' "{loans}"', f" '{loans}'"):
            detail = detail.replace(quoted, "")
        detail = detail.replace(str(loans), "the file")
        detail = re.sub(r"^Invalid Input Error: ", "", detail)
        return f"loans_path '{loans}': {detail}", True
    more = len(failures) - 1
    suffix = f" (and {more} more: see the log)" if more else ""
    verb = "failed" if first.status.lower() == "fail" else "errored"
    return f"{first.label} {verb}: {detail}{suffix}", False


def quarantine_summary(database: Path, loans_label: str) -> str | None:
    """ "No valid loans" when staging quarantined every row; None otherwise.

    An empty ``stg_loans`` makes the models downstream fail with messages
    about empty inputs; the real answer is that the book had no good row.
    """
    if not database.is_file():
        return None
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            clean = connection.execute("select count(*) from staging.stg_loans").fetchone()
            quarantined = connection.execute("select count(*) from quarantined_loans").fetchone()
            if clean is None or quarantined is None or clean[0] != 0 or quarantined[0] == 0:
                return None
            reasons = connection.execute(
                "select reason, count(*) from ("
                " select unnest(string_split(reject_reason, '; ')) as reason"
                " from quarantined_loans) group by reason order by 2 desc, 1 limit 3"
            ).fetchall()
    except duckdb.Error:
        return None
    top = ", ".join(f"{reason} ({count})" for reason, count in reasons)
    return (
        f"no valid loans: all {quarantined[0]} rows of {loans_label} quarantined "
        f"(most common: {top}); see quarantined_loans in the failed build file"
    )


def warnings_of(results: Mapping[str, Any] | None) -> list[str]:
    """Warn-severity tests that found rows: reported, but they do not block publishing."""
    return [
        f"{warning.label}: {first_meaningful_line(warning.message)}"
        for warning in node_failures(results, frozenset({"warn"}))
    ]


def _check_every_node_passed(run: DbtRun) -> None:
    """dbt's exit code 0 is necessary; also require no error, failure or skipped node."""
    if run.results is None:
        raise BuildError("dbt", "dbt wrote no run_results.json (see the log)")
    blocked = [
        failure
        for failure in node_failures(run.results, FAILED_STATUSES | {"skipped"})
        if failure.kind != "exposure"
    ]
    if blocked:
        names = ", ".join(failure.label for failure in blocked[:5])
        raise BuildError("dbt", f"dbt reported success but these did not pass: {names}")


# --------------------------------------------------------------------------- finalize, verify


def _scalar(connection: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = connection.execute(sql).fetchone()
    return None if row is None else row[0]


def finalize(
    database: Path,
    *,
    storage_version: str,
    describe: Callable[[duckdb.DuckDBPyConnection], BuildInfo],
) -> BuildInfo:
    """Write ``build_info`` into the build file, checkpoint it and leave no WAL behind.

    Written with the profile's storage_compatibility_version, like dbt's own
    writes, so the file stays readable by DuckDB 1.x. Row counts come from the
    built tables (``describe``), and must reconcile.
    """
    config = {"storage_compatibility_version": storage_version}
    with duckdb.connect(str(database), config=config) as connection:
        info = describe(connection)
        if info.rows_in != info.rows_clean + info.rows_quarantined:
            raise BuildError(
                "finalize",
                f"row counts do not reconcile: {info.rows_in} in, {info.rows_clean} clean, "
                f"{info.rows_quarantined} quarantined",
            )
        build_info.write(connection, info)
        pause_point("finalize")
        connection.execute("checkpoint")
    if wal_path(database).exists():
        raise BuildError("finalize", f"a WAL is left after the checkpoint: {wal_path(database)}")
    return info


@dataclass(frozen=True)
class Verified:
    """What verify saw: every relation and its row count, and the build it holds."""

    relations: dict[str, int]
    build_id: str | None
    storage_version: str


def verify(
    database: Path,
    *,
    storage_version: str,
    expected_relations: set[str] | frozenset[str] = frozenset(),
    build_id: str | None = None,
) -> Verified:
    """Reopen the file read-only, as a reader would, and query every relation.

    Enforces what outside readers need: no WAL (a read-only reader would not
    see it), no views (a view names the catalog and breaks once the file is
    renamed or attached under another name), every dbt relation present and
    readable, the build_info row of this build, and a storage version DuckDB
    1.x can open.
    """
    if wal_path(database).exists():
        raise BuildError("verify", f"the build file has a WAL: {wal_path(database)}")
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            tags = _scalar(
                connection,
                "select tags from duckdb_databases() where database_name = current_database()",
            )
            found_version = str((tags or {}).get("storage_version", "")).rstrip("+")
            if found_version != storage_version:
                raise BuildError(
                    "verify",
                    f"storage version is {found_version or 'unknown'}, not {storage_version}: "
                    f"DuckDB 1.x readers could not open the file",
                )
            views = connection.execute(
                "select schema_name || '.' || view_name from duckdb_views()"
                " where not internal order by 1"
            ).fetchall()
            if views:
                names = ", ".join(row[0] for row in views)
                raise BuildError(
                    "verify",
                    f"views are not allowed in the served file (make them tables): {names}",
                )
            tables = connection.execute(
                "select schema_name, table_name from duckdb_tables()"
                " where not internal and not temporary order by 1, 2"
            ).fetchall()
            relations: dict[str, int] = {}
            for schema, table in tables:
                quoted = f'"{schema}"."{table}"'
                relations[table] = int(_scalar(connection, f"select count(*) from {quoted}"))
                connection.execute(f"select * from {quoted} limit 1").fetchall()
            found_build = None
            if "build_info" in relations:
                found_build = _scalar(connection, "select max(build_id) from main.build_info")
    except duckdb.Error as error:
        raise BuildError("verify", f"cannot read the build file: {error}") from error
    missing = sorted(name for name in expected_relations if name not in relations)
    if missing:
        raise BuildError("verify", f"relations missing from the build: {', '.join(missing)}")
    if build_id is not None and found_build != build_id:
        raise BuildError("verify", f"build_info holds build {found_build}, expected {build_id}")
    return Verified(relations, found_build, found_version)


def expected_relations(target: Path) -> set[str]:
    """Every model and seed dbt should have built, from the build's manifest."""
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    return {
        str(node.get("alias") or node["name"])
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in {"model", "seed"}
        and (node.get("config") or {}).get("enabled", True)
        and (node.get("config") or {}).get("materialized") != "ephemeral"
    }


# --------------------------------------------------------------------------- swap, rollback


def swap_in(build_file: Path, paths: ServedPaths) -> Path | None:
    """Atomically make ``build_file`` the served file; keep the old one as ``.previous``.

    The old build is hard-linked to ``.previous`` first, so the served name
    always points at a complete build: before ``os.replace`` the old one,
    after it the new one. Readers holding the old file keep reading its inode.
    """
    if paths.wal.exists():
        raise BuildError(
            "publish",
            f"{paths.wal} exists: something opened the served file read-write "
            "(a plain `dbt build` against it?); its WAL would be replayed into the new "
            "build. Stop that writer, check the file, and remove the WAL",
        )
    _fsync_path(build_file)
    previous: Path | None = None
    if paths.served.exists():
        with contextlib.suppress(FileNotFoundError):
            paths.previous_partial.unlink()
        try:
            os.link(paths.served, paths.previous_partial)
        except OSError:
            shutil.copy2(paths.served, paths.previous_partial)
            _fsync_path(paths.previous_partial)
        os.replace(paths.previous_partial, paths.previous)
        # rename() does nothing when both names already link the same inode
        # (a build killed after this point last time): drop the spare name.
        with contextlib.suppress(FileNotFoundError):
            paths.previous_partial.unlink()
        previous = paths.previous
    pause_point("swap")
    os.replace(build_file, paths.served)
    _fsync_dir_quietly(paths.served.parent)
    _fsync_dir_quietly(build_file.parent)
    return previous


def read_build_id(database: Path) -> str | None:
    """The build_id in a file's build_info (None if the file has none), read-only."""
    with duckdb.connect(str(database), read_only=True) as connection:
        has_info = _scalar(
            connection,
            "select count(*) from duckdb_tables() where table_name = 'build_info'",
        )
        if not has_info:
            return None
        return _scalar(connection, "select max(build_id) from main.build_info")


@dataclass(frozen=True)
class RollbackResult:
    served: Path
    restored_build: str | None
    replaced_build: str | None


def rollback(served: Path, project: Path | None = None) -> RollbackResult:
    """Serve ``.previous`` again, atomically; the build it replaces becomes ``.previous``.

    So a second rollback rolls forward. The previous build is verified
    read-only first: a broken one is never swapped in.
    """
    root = project or project_dir()
    paths = ServedPaths(served)
    with publish_lock(paths, "rollback"):
        clean_stale(paths)
        if not paths.previous.is_file():
            raise BuildError("rollback", f"no previous build to roll back to ({paths.previous})")
        checked = verify(paths.previous, storage_version=storage_compatibility_version(root))
        if paths.wal.exists():
            raise BuildError("rollback", f"{paths.wal} exists: the served file is open read-write")
        replaced = None
        if paths.served.exists():
            with contextlib.suppress(duckdb.Error):
                replaced = read_build_id(paths.served)
            os.link(paths.served, paths.rollback_partial)
        os.replace(paths.previous, paths.served)
        if paths.rollback_partial.exists():
            os.replace(paths.rollback_partial, paths.previous)
        _fsync_dir_quietly(paths.served.parent)
    return RollbackResult(served, checked.build_id, replaced)


# --------------------------------------------------------------------------- build


@dataclass
class BuildReport:
    """What a successful build published."""

    info: BuildInfo
    served: Path
    previous: Path | None
    build_dir: BuildDir
    warnings: list[str] = field(default_factory=list)


class _StepLog:
    """The build's own log (``logs/build.log``): steps with times, and any traceback."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle: TextIO = path.open("a", encoding="utf-8")
        self.step = "lock"

    def enter(self, step: str, detail: str = "") -> None:
        self.step = step
        self.write(f"step {step} {detail}".rstrip())

    def write(self, text: str) -> None:
        self._handle.write(f"{utc_now():%Y-%m-%dT%H:%M:%S.%fZ} {text}\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _describe_build(
    build_id: str,
    started_at: datetime,
    input_file: Path,
    input_hash: str,
    input_bytes: int,
    root: Path,
    run: DbtRun,
    dbt_vars: Mapping[str, Any],
) -> Callable[[duckdb.DuckDBPyConnection], BuildInfo]:
    def describe(connection: duckdb.DuckDBPyConnection) -> BuildInfo:
        return BuildInfo(
            build_id=build_id,
            started_at=started_at,
            finished_at=utc_now(),
            input_file=str(input_file),
            input_sha256=input_hash,
            input_bytes=input_bytes,
            rows_in=int(_scalar(connection, "select count(*) from staging.stg_loan_book__checked")),
            rows_clean=int(_scalar(connection, "select count(*) from staging.stg_loans")),
            rows_quarantined=int(_scalar(connection, "select count(*) from quarantined_loans")),
            model_version=_scalar(connection, "select max(model_version) from risk_model_metrics"),
            project_version=loan_recovery.__version__,
            git_commit=git_commit(root),
            dbt_version=((run.results or {}).get("metadata") or {}).get("dbt_version"),
            duckdb_version=duckdb.__version__,
        )

    return describe


def build(
    *,
    loans: Path | None = None,
    served: Path | None = None,
    dbt_vars: Mapping[str, Any] | None = None,
    project: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build into a new file, finalize and verify it, then publish it atomically.

    Raises :class:`BuildError` (with the step, a one-line reason and the log)
    on any failure; the served file is then exactly as it was.
    """
    root = project or project_dir()
    paths = ServedPaths(served or served_path())
    started_at = utc_now()
    build_id = new_build_id(started_at)
    build_dir = BuildDir(paths.builds / build_id, paths.builds / build_id / paths.served.name)
    with publish_lock(paths, f"build {build_id} since {started_at:%Y-%m-%dT%H:%M:%SZ}"):
        clean_stale(paths)
        log = _StepLog(build_dir.build_log)
        try:
            if announce:
                announce(f"building {build_id} (logs in {build_dir.logs})")
            return _build_steps(
                log, build_id, started_at, build_dir, paths, root, loans, dict(dbt_vars or {})
            )
        except BuildError as failure:
            failure.log = failure.log or log.path
            log.write(f"FAILED at {failure.step}: {failure.reason}")
            raise
        except KeyboardInterrupt:
            log.write(f"interrupted at {log.step}")
            raise BuildError(log.step, "interrupted", log=log.path) from None
        except Exception as error:
            log.write(f"internal error at {log.step}:\n{traceback.format_exc()}")
            raise BuildError(
                log.step, f"internal error: {type(error).__name__}: {error}", log=log.path
            ) from error
        finally:
            log.close()


def _build_steps(
    log: _StepLog,
    build_id: str,
    started_at: datetime,
    build_dir: BuildDir,
    paths: ServedPaths,
    root: Path,
    loans: Path | None,
    dbt_vars: dict[str, Any],
) -> BuildReport:
    log.enter("input")
    given = dbt_vars.pop("loans_path", None)
    if loans is None and given:
        # A loans_path passed through --vars is the input too: hash and record it.
        loans = Path(str(given)) if Path(str(given)).is_absolute() else root / str(given)
    input_file = (loans.expanduser().resolve() if loans else root / SAMPLE_SEED).absolute()
    label = f"'{input_file}'" if loans else f"the bundled sample {SAMPLE_SEED}"
    if loans is not None:
        if not input_file.is_file():
            raise BuildError(
                "input", f"loans_path '{input_file}': no such file", exit_code=EXIT_BAD_INPUT
            )
        dbt_vars["loans_path"] = str(input_file)
    try:
        before = input_file.stat()
        input_hash = file_sha256(input_file)
    except OSError as error:
        raise BuildError(
            "input",
            f"loans_path '{input_file}': cannot read it ({error.strerror})",
            exit_code=EXIT_BAD_INPUT,
        ) from error
    log.write(f"input {input_file} sha256 {input_hash} ({before.st_size} bytes)")

    log.enter("dbt", " ".join(dbt_command(build_dir, root, dbt_vars)[0]))
    run = run_dbt(build_dir, root, dbt_vars)
    log.write(f"dbt exited with {run.returncode}")
    if run.returncode != 0:
        reason, bad_input = summarize_dbt_failure(run, input_file if loans else None)
        quarantined = quarantine_summary(build_dir.database, label)
        if quarantined:
            reason, bad_input = quarantined, True
        # The failed build file is worth a look when models ran (failing test
        # rows, quarantined rows), not when the file could not even be read.
        worth_inspecting = build_dir.database.exists() and (quarantined or not bad_input)
        raise BuildError(
            "dbt",
            reason,
            exit_code=EXIT_BAD_INPUT if bad_input else EXIT_FAILED,
            log=build_dir.dbt_log,
            inspect=build_dir.database if worth_inspecting else None,
        )
    _check_every_node_passed(run)
    after = input_file.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise BuildError(
            "input",
            f"loans_path '{input_file}' changed during the build; rerun once it is complete",
            exit_code=EXIT_BAD_INPUT,
        )

    log.enter("finalize")
    storage_version = storage_compatibility_version(root)
    info = finalize(
        build_dir.database,
        storage_version=storage_version,
        describe=_describe_build(
            build_id,
            started_at,
            input_file,
            input_hash,
            before.st_size,
            root,
            run,
            {key: value for key, value in dbt_vars.items() if key != "loans_path"},
        ),
    )
    log.write(
        f"build_info: {info.rows_in} in, {info.rows_clean} clean, "
        f"{info.rows_quarantined} quarantined, model {info.model_version}"
    )

    pause_point("verify")
    log.enter("verify")
    verified = verify(
        build_dir.database,
        storage_version=storage_version,
        expected_relations=expected_relations(build_dir.target),
        build_id=build_id,
    )
    log.write(f"verified {len(verified.relations)} relations: {verified.relations}")

    log.enter("publish", f"{build_dir.database} -> {paths.served}")
    previous = swap_in(build_dir.database, paths)
    log.write(f"published {build_id} to {paths.served}")
    return BuildReport(info, paths.served, previous, build_dir, warnings_of(run.results))


# --------------------------------------------------------------------------- command line


def _print_failure(failure: BuildError, served: Path, out: TextIO) -> None:
    print(f"build failed at step {failure.step}: {failure.reason}", file=out)
    if failure.step != "lock":
        print(f"  nothing published; served file unchanged: {served}", file=out)
    if failure.inspect is not None:
        print(f"  failed build file (kept until the next build): {failure.inspect}", file=out)
    if failure.log is not None:
        print(f"  full log: {failure.log}", file=out)


def parse_vars(text: str | None) -> dict[str, Any]:
    """``--vars`` as dbt takes it: a YAML mapping."""
    if not text:
        return {}
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"--vars is not valid YAML: {error}") from error
    if not isinstance(parsed, dict):
        raise ValueError("--vars must be a YAML mapping, e.g. '{n_segments: 5}'")
    return parsed


def build_command(
    loans: str | None, db: str | None, vars_text: str | None, out: TextIO = sys.stdout
) -> int:
    """``loan-recovery build``: run :func:`build`, print a short summary, return the exit code."""
    try:
        root = project_dir()
        served = served_path(db)
        dbt_vars = parse_vars(vars_text)
    except (ValueError, FileNotFoundError) as error:
        print(f"loan-recovery build: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        report = build(
            loans=Path(loans) if loans else None,
            served=served,
            dbt_vars=dbt_vars,
            project=root,
            announce=lambda text: print(text, file=out, flush=True),
        )
    except BuildError as failure:
        _print_failure(failure, served, sys.stderr)
        return failure.exit_code
    info = report.info
    print(f"published build {info.build_id} to {report.served}", file=out)
    print(
        f"  input {info.input_file} (sha256 {info.input_sha256[:12]}): {info.rows_in} rows in = "
        f"{info.rows_clean} clean + {info.rows_quarantined} quarantined",
        file=out,
    )
    for warning in report.warnings:
        print(f"  warning: {warning}", file=out)
    if report.previous is not None:
        print(f"  previous build kept as {report.previous} (loan-recovery rollback)", file=out)
    print(f"  logs: {report.build_dir.logs}", file=out)
    return EXIT_OK


def rollback_command(db: str | None, out: TextIO = sys.stdout) -> int:
    """``loan-recovery rollback``: serve the previous build again; print what changed."""
    try:
        root = project_dir()
        served = served_path(db)
    except FileNotFoundError as error:
        print(f"loan-recovery rollback: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = rollback(served, root)
    except BuildError as failure:
        print(f"rollback failed at step {failure.step}: {failure.reason}", file=sys.stderr)
        return failure.exit_code
    print(f"rolled back {result.served}: now serving build {result.restored_build}", file=out)
    if result.replaced_build is not None or ServedPaths(served).previous.exists():
        print(
            f"  build {result.replaced_build} kept as {ServedPaths(served).previous} "
            "(rollback again to return to it)",
            file=out,
        )
    return EXIT_OK
