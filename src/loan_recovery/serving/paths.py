"""Where the served file, its previous build, lock and build directories live; what may be replaced.

Layout next to the served file ``S`` (all on one file system, which is what
makes the rename atomic)::

    S                       the served build; never opened read-write here
    S.previous              the build it replaced (``loan-recovery rollback``)
    S.previous.partial      the served build's second name while a publish swaps
    S.rollback.partial      the same, while a rollback swaps
    S.lock                  flock: one build or rollback at a time
    S.builds/<build_id>/    loan_recovery.duckdb (the build file), models/, target/, logs/

``S`` is whatever the user names with ``--db``, so before anything is built
the target is checked: a directory, or an existing file that is not one of
our builds (:func:`not_our_build`), is refused. A build never replaces a
file that is not one of ours.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from loan_recovery.build_info import TABLE as BUILD_INFO_TABLE
from loan_recovery.build_info import read_build_id, utc_now
from loan_recovery.config import database_path
from loan_recovery.dbt_results import first_meaningful_line
from loan_recovery.errors import EXIT_USAGE, BuildError, os_error_reason
from loan_recovery.files import DIRECTORY_MODE as DIRECTORY_MODE
from loan_recovery.files import is_duckdb_file
from loan_recovery.files import make_directory as make_directory

# DIRECTORY_MODE and make_directory are re-exported: serving creates its folders through paths.

BUILD_FILE_NAME = "loan_recovery.duckdb"
"""The build file's name inside its directory: a plain identifier, whatever ``--db`` is.

DuckDB names the catalog after the file stem, and dbt-duckdb splices that
name into SQL unescaped, so a served name like ``o'neil.duckdb`` must not be
the name dbt builds under. Tables do not record the catalog name, so the
file is renamed to the served name on publish and readers see that stem.
"""

BUILD_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class ServedPaths:
    """The served file and the names kept beside it."""

    served: Path

    def _beside(self, suffix: str) -> Path:
        return self.served.with_name(self.served.name + suffix)

    @property
    def previous(self) -> Path:
        return self._beside(".previous")

    @property
    def previous_partial(self) -> Path:
        return self._beside(".previous.partial")

    @property
    def rollback_partial(self) -> Path:
        return self._beside(".rollback.partial")

    @property
    def lock(self) -> Path:
        return self._beside(".lock")

    @property
    def builds(self) -> Path:
        return self._beside(".builds")

    @property
    def wal(self) -> Path:
        return wal_path(self.served)

    @property
    def partials(self) -> tuple[Path, Path]:
        return (self.previous_partial, self.rollback_partial)


@dataclass(frozen=True)
class BuildDir:
    """One build's directory: its build file, dbt's target and the logs."""

    root: Path

    @property
    def database(self) -> Path:
        return self.root / BUILD_FILE_NAME

    @property
    def target(self) -> Path:
        return self.root / "target"

    @property
    def models(self) -> Path:
        """The models this build fits (the model store the dbt Python models write)."""
        return self.root / "models"

    @property
    def registry(self) -> Path:
        """A frozen build's copy of the verified artifact, the only one its dbt reads."""
        return self.root / "registry"

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


OWN_TABLES = ("main.run_settings", "staging.stg_loans")
"""Tables every build of ours serves (the run's settings, the clean loans): with a
``build_info`` row, what tells our build from a file that only shares a table name."""


def not_our_build(path: Path) -> str | None:
    """Why the file at ``path`` is not a build of ours, or None when it is one.

    Ours means all of: a DuckDB file; ``build_info`` as this version or an
    older one writes it (``build_info.read_build_id``: one row, columns among
    BuildInfo's, so a build served before an upgrade is still ours);
    a build id of :data:`BUILD_ID`'s form; and the served tables
    :data:`OWN_TABLES`. A table named ``build_info`` alone is no proof: a
    warehouse may well have one, and replacing it would lose its other tables.
    """
    if not is_duckdb_file(path):
        return "not a DuckDB file"
    try:
        with duckdb.connect(str(path), read_only=True) as connection:
            return not_our_connection(connection)
    except duckdb.Error as error:
        return f"DuckDB cannot open it read-only: {first_meaningful_line(str(error))}"


def not_our_connection(connection: duckdb.DuckDBPyConnection) -> str | None:
    """:func:`not_our_build` on an open connection, so a reader checks the file it then reads."""
    try:
        tables = {
            f"{schema}.{table}"
            for schema, table in connection.execute(
                "select schema_name, table_name from duckdb_tables()"
            ).fetchall()
        }
        if BUILD_INFO_TABLE not in tables:
            return "no DuckDB build_info table"
        build_id = read_build_id(connection)
    except duckdb.Error as error:
        return f"DuckDB cannot read it: {first_meaningful_line(str(error))}"
    if build_id is None:
        return "its build_info is not one loan-recovery writes: other columns, or not one row"
    if not BUILD_ID.match(build_id):
        return f"its build_info names build {build_id!r}, not a loan-recovery build id"
    missing = [table for table in OWN_TABLES if table not in tables]
    if missing:
        return f"no table {', '.join(missing)}"
    return None


def check_served_path(paths: ServedPaths) -> None:
    """Refuse a served path DuckDB cannot write: one holding '?'.

    DuckDB reads what follows a '?' as options, so it would write the WAL
    of ``/srv/a?b/x.duckdb`` to ``/srv/a.wal?b/x.duckdb``; every other
    character is fine.
    """
    if "?" in str(paths.served):
        raise BuildError(
            "db",
            f"--db {paths.served}: DuckDB cannot write under a path holding '?' (it reads "
            "what follows as options); choose a path without it",
            exit_code=EXIT_USAGE,
        )
    check_replaceable(paths.served, "--db")


def check_replaceable(path: Path, role: str) -> None:
    """Refuse to build over ``path`` unless it is absent or a build of ours.

    ``role`` words the message ("--db", "the previous build"). A directory,
    a FIFO or a user's CSV named as ``--db`` stays untouched.
    """
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    except OSError as error:
        raise BuildError("db", os_error_reason(error, path), exit_code=EXIT_USAGE) from None
    if stat.S_ISLNK(info.st_mode):
        try:
            info = path.stat()
        except OSError as error:
            raise BuildError("db", os_error_reason(error, path), exit_code=EXIT_USAGE) from None
    if stat.S_ISDIR(info.st_mode):
        raise BuildError(
            "db", f"{role} {path} is a directory; name the DuckDB file", exit_code=EXIT_USAGE
        )
    if not stat.S_ISREG(info.st_mode):
        raise BuildError("db", f"{role} {path} is not a regular file", exit_code=EXIT_USAGE)
    why = not_our_build(path)
    if why is not None:
        raise BuildError(
            "db",
            f"{role} {path} exists and is not a loan-recovery build ({why}); refusing to "
            "replace it. Choose another --db or move the file away",
            exit_code=EXIT_USAGE,
        )


def build_directories(paths: ServedPaths) -> list[Path]:
    """The build directories under ``S.builds`` (only names a build id can have), oldest first."""
    if not paths.builds.is_dir():
        return []
    return sorted(
        (
            entry
            for entry in paths.builds.iterdir()
            if BUILD_ID.match(entry.name) and entry.is_dir()
        ),
        key=lambda entry: entry.name,
    )
