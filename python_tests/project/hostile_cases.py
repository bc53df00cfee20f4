"""Hostile inputs and situations for ``loan-recovery``, as a new user would meet them.

Each case prepares a directory (a served build, files with hostile names or
bytes), runs one ``loan-recovery`` command there, and states what must
happen: the exit code, a fragment of the first line printed, and the state
of the served file and of every file that is not ours. test_hostile_inputs.py
asserts every case; run this module as a script to print the table the
hardening issue's closing note reports::

    .venv/bin/python python_tests/project/hostile_cases.py [--only NAME ...]

Builds use small books (120 loans, 5 trees) so the whole table runs in a
few minutes; they run two at a time, each in its own directory.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.ensemble import RandomForestClassifier

from loan_recovery.config import project_dir, reference
from loan_recovery.generate import generate_loan_book, write_loan_book
from loan_recovery.modelling import registry as registry_module
from loan_recovery.modelling.model_store import write_component

# HOSTILE_CASES_CLI runs the table against another checkout's command, e.g.
# "python -m loan_recovery.cli" with PYTHONPATH at that checkout's src/.
CLI = os.environ.get("HOSTILE_CASES_CLI", str(Path(sys.executable).with_name("loan-recovery")))
FAST = "{scoring_trees: 5, outcome_trees: 5}"
ROWS = 120
OTHER_ROWS = 240


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_id(database: Path) -> str | None:
    try:
        with duckdb.connect(str(database), read_only=True) as connection:
            return connection.execute("select build_id from main.build_info").fetchone()[0]
    except (duckdb.Error, TypeError):
        return None


def served_rows(database: Path) -> int:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute("select count(*) from staging.stg_loans").fetchone()[0]


@dataclass
class Outcome:
    """What one command did, seen from outside."""

    returncode: int
    stdout: str
    stderr: str
    served_before: str | None
    served_after: str | None
    directory: Path
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def first_line(self) -> str:
        text = self.stderr if self.returncode else self.stdout
        lines = [line for line in text.splitlines() if line and not line.startswith("building ")]
        return lines[0] if lines else ""

    @property
    def served_state(self) -> str:
        if self.served_before == self.served_after:
            return "unchanged" if self.served_after else "none"
        return "published" if self.served_after else "removed"


@dataclass(frozen=True)
class Case:
    name: str
    prepare: Callable[[Path], list[str]]
    """Make files in the directory; return the arguments after ``loan-recovery``."""
    exit_code: int
    first_line: str
    served: str
    """unchanged, published or none: what must happen to served.duckdb."""
    check: Callable[[Outcome], None] | None = None
    run: Callable[[list[str], Path], subprocess.CompletedProcess[str]] | None = None
    """A custom way to run the command (signals, locks, pauses); default: plain run."""
    needs_mount: bool = False


# --------------------------------------------------------------------------- helpers


def run_cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None, **kw: object):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOAN_RECOVERY_")}
    environment.update(env or {})
    return subprocess.run(
        [*CLI.split(), *argv],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def book(directory: Path, name: str = "book.csv", rows: int = ROWS, seed: int = 1) -> Path:
    path = directory / name
    write_loan_book(rows=rows, out=path, seed=seed)
    return path


def copy_as(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


@contextlib.contextmanager
def mounted(directory: Path, options: str) -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)], check=True)
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


def can_mount() -> bool:
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", scratch], capture_output=True
        )
        if done.returncode == 0:
            subprocess.run(["umount", scratch], check=False)
        return done.returncode == 0


def _plain_build(directory: Path) -> list[str]:
    """A plain build of a fresh ``book.csv`` over the served file."""
    book(directory)
    return ["build", "--loans", "book.csv", "--db", "served.duckdb", "--vars", FAST]


def _build_of(make: Callable[[Path], Path], vars_text: str = FAST) -> Callable[[Path], list[str]]:
    def prepare(directory: Path) -> list[str]:
        loans = make(directory)
        return ["build", "--loans", str(loans.name), "--db", "served.duckdb", "--vars", vars_text]

    return prepare


def _rows_published(rows: int) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert served_rows(outcome.directory / "served.duckdb") == rows

    return check


def _no_file_named(name: str) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        found = [str(p) for p in outcome.directory.rglob(name)]
        found += [str(p) for p in project_dir().rglob(name)]
        assert not found, f"{name} was written: {found}"

    return check


def _unchanged(name: str) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        assert sha256(outcome.directory / name) == outcome.notes[name], f"{name} changed"

    return check


REMEMBERED = ("victim.txt", "warehouse.duckdb", "book.csv")
"""Files a case may name that are not ours: their bytes before the command, for _unchanged."""


def _remember(directory: Path, *names: str) -> dict[str, object]:
    return {name: sha256(directory / name) for name in names}


def run_with_env(**env: str) -> Callable[[list[str], Path], subprocess.CompletedProcess[str]]:
    def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return run_cli(argv, cwd, env=env)

    return run


def saved_artifact(directory: Path) -> tuple[Path, str]:
    """served.duckdb.registry holding one artifact, registered without dbt: (registry, version).

    Tiny fitted models (a three-tree forest on random numbers) saved through
    the registry's own register(), so the artifact is real in every respect
    the refusals judge; the cases using it never reach dbt.
    """
    rng = np.random.default_rng(7)
    features = rng.normal(size=(60, 3))
    forest = RandomForestClassifier(n_estimators=3, random_state=7).fit(
        features, features[:, 0] > 0
    )
    store = directory / "store"
    meta = {"training_rows": 60}
    write_component(
        "segmentation", {**meta, "version": "s"}, {"centroids": features[:4]}, None, store
    )
    write_component("segment_score", {**meta, "version": "ss"}, None, forest, store)
    write_component("outcome", {**meta, "version": "o"}, None, forest, store)
    write_component("monitoring", {"version": "m", "variables": []}, None, None, store)
    registry = directory / "served.duckdb.registry"
    version = registry_module.register(
        store,
        registry,
        facts=registry_module.model_facts(reference()),
        model_card=[{"score_name": "outcome", "roc_auc": 0.71}],
        created_at="2026-01-01T00:00:00Z",
    )
    shutil.rmtree(store)
    return registry, version


def edit_manifest(
    registry: Path, version: str, edit: Callable[[dict[str, object]], None], *, record: bool
) -> None:
    """Edit an artifact's manifest; ``record`` also updates the registry's record of it."""
    path = registry / version / registry_module.MANIFEST
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")
    if record:
        registry_module.record_manifest(registry, version, sha256(path))


# --------------------------------------------------------------------------- books


def _jinja_name(directory: Path) -> Path:
    book(directory, "other.csv", rows=OTHER_ROWS, seed=2)
    return copy_as(book(directory), directory / "{{ 'other' }}.csv")


def _run_query_name(directory: Path) -> Path:
    return copy_as(
        book(directory), directory / """{{ run_query("copy (select 1) to 'pwn.csv'") }}.csv"""
    )


def _glob_question(directory: Path) -> Path:
    copy_as(book(directory, "other.csv", rows=OTHER_ROWS, seed=2), directory / "bookX.csv")
    return copy_as(book(directory), directory / "book?.csv")


def _glob_brackets(directory: Path) -> Path:
    copy_as(book(directory, "other.csv", rows=OTHER_ROWS, seed=2), directory / "book1.csv")
    return copy_as(book(directory), directory / "book[1].csv")


def _malformed(directory: Path) -> Path:
    header, *rows = book(directory).read_text().splitlines()
    rows[10] = "#" + rows[10]
    rows[20] += ",extra"
    rows[30] = ",".join(rows[30].split(",")[:15])
    rows[40] = rows[40].replace("LN_", '"LN_', 1)
    path = directory / "malformed.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _odd_line_ends(directory: Path) -> Path:
    """Red team: a line holding only CR, a CR CR LF ending, a last line ending in a bare CR."""
    header, *rows = book(directory).read_text().splitlines()
    text = header + "\n"
    for number, row in enumerate(rows):
        if number == 10:
            text += "\r\n"  # after file line 11: a line holding only CR (line 12, blank)
        if number == 30:
            text += row + "\r\r\n"  # file line 33 ends at CR; CR LF ends blank line 34
        elif number == len(rows) - 1:
            text += row + "\r"
        else:
            text += row + "\n"
    path = directory / "line_ends.csv"
    path.write_bytes(text.encode())
    return path


def _stray_quote(directory: Path) -> Path:
    """Red team: an unclosed quote on line 78, a quoted field on line 89."""
    header, *rows = book(directory).read_text().splitlines()
    columns = header.split(",")
    stray = rows[76].split(",")
    stray[columns.index("Age")] = '"' + stray[columns.index("Age")]
    rows[76] = ",".join(stray)
    quoted = rows[87].split(",")
    quoted[columns.index("Loan_ID")] = f'"{quoted[columns.index("Loan_ID")]}"'
    rows[87] = ",".join(quoted)
    path = directory / "stray_quote.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _peer_book(directory: Path) -> Path:
    """A peer project's kind of book: extra columns, Unemployed, outstanding above principal."""
    frame = generate_loan_book(ROWS, seed=4)
    frame.loc[frame.index[:30], "Employment_Type"] = "Unemployed"
    frame.loc[frame.index[30:50], "Outstanding_Loan_Amount"] = frame["Loan_Amount"] * 1.3
    frame["Region"] = "North"
    frame["Agent_Notes"] = "called, no answer"
    path = directory / "peer.csv"
    frame.to_csv(path, index=False)
    return path


def _boolean_parquet(directory: Path) -> Path:
    frame = generate_loan_book(ROWS, seed=5)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    position = table.schema.get_field_index("Legal_Action_Taken")
    flags = pa.array(frame["Legal_Action_Taken"].eq("Yes").to_numpy())
    path = directory / "flags.parquet"
    pq.write_table(table.set_column(position, "Legal_Action_Taken", flags), path)
    return path


def _utf16(directory: Path) -> Path:
    path = directory / "utf16.csv"
    path.write_bytes(book(directory).read_text().encode("utf-16"))
    return path


def _gzip_bytes(directory: Path) -> Path:
    path = directory / "zipped.csv"
    path.write_bytes(gzip.compress(book(directory).read_bytes()))
    return path


def _oversized_field(directory: Path) -> Path:
    header, *rows = book(directory).read_text().splitlines()
    fields = rows[4].split(",")
    fields[0] = "X" * 9_000_000
    rows[4] = ",".join(fields)
    path = directory / "oversized.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


# --------------------------------------------------------------------------- special runs


def _hold_lock(argv: list[str], cwd: Path):
    with (cwd / "served.duckdb.lock").open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        return run_cli(argv, cwd)


def _paused(argv: list[str], cwd: Path, step: str, seconds: str = "600") -> subprocess.Popen[str]:
    """Start the command with the documented pause hook; return once it paused at ``step``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LOAN_RECOVERY_")}
    environment.update({"LOAN_RECOVERY_PAUSE_AT": step, "LOAN_RECOVERY_PAUSE_SECONDS": seconds})
    process = subprocess.Popen(
        [*CLI.split(), *argv],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if f"LOAN_RECOVERY_PAUSED step={step}" in line or (not line and process.poll() is not None):
            break
    return process


def _term_at_swap(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    process = _paused(argv, cwd, "swap")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _change_during_build(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    process = _paused(argv, cwd, "dbt", seconds="3")
    with (cwd / "book.csv").open("a") as handle:  # same inode, new size and mtime
        handle.write("\n")
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _rollback_twice_after_term(argv: list[str], cwd: Path):
    """After a kill at the swap, a rollback must return to the build before the served one."""
    _term_at_swap(["build", "--loans", "book.csv", "--db", "served.duckdb", "--vars", FAST], cwd)
    return run_cli(argv, cwd)


# --------------------------------------------------------------------------- cases


def _prepare_rollback_same_build(directory: Path) -> list[str]:
    served = directory / "served.duckdb"
    shutil.copyfile(served, directory / "served.duckdb.previous")
    return ["rollback", "--db", "served.duckdb"]


def _prepare_broken_parse_state(directory: Path) -> list[str]:
    """The newest build's saved dbt parse cut short (a build killed while dbt wrote it)."""
    builds = sorted((directory / "served.duckdb.builds").iterdir())
    state = builds[-1] / "target" / "partial_parse.msgpack"
    state.write_bytes(state.read_bytes()[:1000])
    return _plain_build(directory)


def _check_parsed_afresh(outcome: Outcome) -> None:
    newest = sorted((outcome.directory / "served.duckdb.builds").iterdir())[-1]
    assert "dbt starts from the parse of" in (newest / "logs" / "build.log").read_text()
    _rows_published(ROWS)(outcome)


def _prepare_lock_symlink(directory: Path) -> list[str]:
    victim = directory / "victim.txt"
    victim.write_text("someone's file\n")
    (directory / "served.duckdb.lock").unlink(missing_ok=True)
    (directory / "served.duckdb.lock").symlink_to(victim)
    book(directory)
    return ["build", "--loans", "book.csv", "--db", "served.duckdb", "--vars", FAST]


def _prepare_db_is_csv(directory: Path) -> list[str]:
    book(directory, "some.csv")
    return ["build", "--db", "some.csv", "--vars", FAST]


def _prepare_db_holds_build_info(directory: Path) -> list[str]:
    """Someone's warehouse that happens to have a table named build_info."""
    with duckdb.connect(str(directory / "warehouse.duckdb")) as connection:
        connection.execute("create table build_info (build_id varchar, loaded_at varchar)")
        connection.execute("insert into build_info values ('nightly-42', '2026-01-01')")
        connection.execute("create table invoices as select range as invoice_id from range(10)")
    return ["build", "--db", "warehouse.duckdb", "--vars", FAST]


def _prepare_report_over_a_book(directory: Path) -> list[str]:
    book(directory, "book.csv")
    return ["report", "--db", "served.duckdb", "--out", "book.csv"]


def _prepare_forged_card(directory: Path) -> list[str]:
    registry, version = saved_artifact(directory)

    def forge(manifest: dict[str, object]) -> None:
        manifest["training_rows"] = {"outcome": 50_000}
        manifest["model_card"] = [{"score_name": "outcome", "roc_auc": 0.99}]

    edit_manifest(registry, version, forge, record=False)
    return ["build", "--db", "served.duckdb", "--model", version, "--vars", FAST]


def _prepare_pickle_array(directory: Path) -> list[str]:
    """A pickle-bearing arrays.npz whose sha256 was updated in the manifest and the record."""
    registry, version = saved_artifact(directory)
    payload = directory / "payload.npz"
    np.savez(payload, centroids=np.array([{"run": "code"}], dtype=object))
    arrays = registry / version / "segmentation" / "arrays.npz"
    shutil.copyfile(payload, arrays)

    def rehash(manifest: dict[str, object]) -> None:
        files = manifest["files"]
        assert isinstance(files, dict)
        files["segmentation/arrays.npz"] = sha256(arrays)

    edit_manifest(registry, version, rehash, record=True)
    return ["build", "--db", "served.duckdb", "--model", version, "--vars", FAST]


def _prepare_wrongly_typed_manifest(directory: Path) -> list[str]:
    registry, version = saved_artifact(directory)

    def lots(manifest: dict[str, object]) -> None:
        manifest["training_rows"] = {"outcome": "lots"}

    edit_manifest(registry, version, lots, record=True)
    return ["models", "list", "--db", "served.duckdb"]


def _check_listed_unusable(outcome: Outcome) -> None:
    assert "UNUSABLE: model" in outcome.stdout
    assert "its manifest field training_rows.outcome is 'lots'" in outcome.stdout


def _prepare_killed_register(directory: Path) -> list[str]:
    """A scratch folder a register killed mid-write left; the next writer (approve) cleans it."""
    registry, version = saved_artifact(directory)
    (registry / f".{'0' * 12}.killed" / "outcome").mkdir(parents=True)
    return ["models", "approve", "--db", "served.duckdb", version]


def _check_scratch_not_listed(outcome: Outcome) -> None:
    listed = run_cli(["models", "list", "--db", "served.duckdb"], outcome.directory)
    assert listed.returncode == 0, listed.stderr
    assert "000000000000" not in listed.stdout


def _prepare_read_only_registry(directory: Path) -> list[str]:
    book(directory)
    (directory / "ro").mkdir()
    return ["build", "--loans", "book.csv", "--db", "served.duckdb", "--vars", FAST]


def _read_only_registry_run(argv: list[str], cwd: Path):
    with mounted(cwd / "ro", "ro,size=64k"):
        return run_cli(argv, cwd, env={"LOAN_RECOVERY_REGISTRY": str(cwd / "ro" / "registry")})


def _prepare_db_is_dir(directory: Path) -> list[str]:
    (directory / "adir").mkdir()
    return ["build", "--db", "adir", "--vars", FAST]


def _prepare_loans_dir(directory: Path) -> list[str]:
    (directory / "books.csv").mkdir()
    return ["build", "--loans", "books.csv", "--db", "served.duckdb"]


def _prepare_loans_fifo(directory: Path) -> list[str]:
    os.mkfifo(directory / "pipe.csv")
    return ["build", "--loans", "pipe.csv", "--db", "served.duckdb"]


def _prepare_symlink_loop(directory: Path) -> list[str]:
    (directory / "loop.csv").symlink_to(directory / "loop2.csv")
    (directory / "loop2.csv").symlink_to(directory / "loop.csv")
    return ["build", "--loans", "loop.csv", "--db", "served.duckdb"]


def _prepare_symlink_wrong_name(directory: Path) -> list[str]:
    (directory / "book.txt").symlink_to(book(directory))
    return ["build", "--loans", "book.txt", "--db", "served.duckdb"]


def _prepare_restricted(directory: Path) -> list[str]:
    served = directory / "served.duckdb"
    os.chmod(served, 0o640)
    os.chown(served, -1, 65534)
    book(directory)
    return ["build", "--loans", "book.csv", "--db", "served.duckdb", "--vars", FAST]


def _check_restricted(outcome: Outcome) -> None:
    info = (outcome.directory / "served.duckdb").stat()
    assert (oct(info.st_mode & 0o777), info.st_gid) == ("0o640", 65534)
    builds = outcome.directory / "served.duckdb.builds"
    registry = outcome.directory / "served.duckdb.registry"
    folders = [builds, registry, *registry.iterdir()]
    for build in builds.iterdir():  # the build's own folders: target, logs, models, registry
        folders += [build, *(path for path in build.iterdir() if path.is_dir())]
    assert any(folder.name == "target" for folder in folders)
    for folder in folders:
        if folder.is_dir():
            mode = folder.stat().st_mode & 0o777
            assert not mode & 0o027, f"{folder} is {oct(mode)}: at most rwxr-x--- is promised"


def _prepare_read_only_db(directory: Path) -> list[str]:
    book(directory)
    (directory / "ro").mkdir()
    return ["build", "--loans", "book.csv", "--db", "ro/x.duckdb"]


def _read_only_run(argv: list[str], cwd: Path):
    with mounted(cwd / "ro", "ro,size=64k"):
        return run_cli(argv, cwd)


def _full_disk_run(argv: list[str], cwd: Path):
    with mounted(cwd / "small", "size=600k"):
        return run_cli(argv, cwd)


def _prepare_full_disk(directory: Path) -> list[str]:
    book(directory)
    return ["build", "--loans", "book.csv", "--db", "small/x.duckdb", "--vars", FAST]


def _prepare_quote_in_db(directory: Path) -> list[str]:
    book(directory)
    return ["build", "--loans", "book.csv", "--db", "o'neil.duckdb", "--vars", FAST]


def _prepare_question_mark_in_db(directory: Path) -> list[str]:
    (directory / "a?b").mkdir()
    return ["build", "--db", "a?b/x.duckdb", "--vars", FAST]


def _check_quote_in_db(outcome: Outcome) -> None:
    assert served_rows(outcome.directory / "o'neil.duckdb") == ROWS


def _check_build_info_names_the_file(name: str, rows: int = ROWS) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        served = outcome.directory / "served.duckdb"
        with duckdb.connect(str(served), read_only=True) as connection:
            input_file, input_sha = connection.execute(
                "select input_file, input_sha256 from main.build_info"
            ).fetchone()
        assert Path(input_file).name == name
        assert input_sha == sha256(outcome.directory / name)
        assert served_rows(served) == rows

    return check


def _check_all(*checks: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        for each in checks:
            each(outcome)

    return check


def _check_malformed(outcome: Outcome) -> None:
    served = outcome.directory / "served.duckdb"
    with duckdb.connect(str(served), read_only=True) as connection:
        reasons = connection.execute(
            "select source_line_number, reject_reason from main.quarantined_loans order by 1"
        ).fetchall()
    assert [line for line, _ in reasons] == [22, 32, 42]
    assert [reason.split(":")[0] for _, reason in reasons] == ["malformed row"] * 3
    assert served_rows(served) == ROWS - 3


def _quarantined_lines(expected: list[tuple[int, str]], clean: int) -> Callable[[Outcome], None]:
    def check(outcome: Outcome) -> None:
        served = outcome.directory / "served.duckdb"
        with duckdb.connect(str(served), read_only=True) as connection:
            found = connection.execute(
                "select source_line_number, reject_reason from main.quarantined_loans order by 1"
            ).fetchall()
            rows_in = connection.execute("select rows_in from main.build_info").fetchone()
        assert found == expected, found
        assert served_rows(served) == clean, served_rows(served)
        assert rows_in == (clean + len(expected),), rows_in

    return check


def _check_stray_quote(outcome: Outcome) -> None:
    _quarantined_lines(
        [(78, "malformed row: a quote opened on line 78 is never closed")], ROWS - 1
    )(outcome)
    served = outcome.directory / "served.duckdb"
    with duckdb.connect(str(served), read_only=True) as connection:
        # The loans on lines 79 to 89 (the last with a quoted Loan_ID) all reached staging.
        found = connection.execute(
            "select count(*) from staging.stg_loans where source_row_number between 78 and 88"
        ).fetchone()
    assert found == (11,)


def _check_peer(outcome: Outcome) -> None:
    served = outcome.directory / "served.duckdb"
    with duckdb.connect(str(served), read_only=True) as connection:
        quarantined = connection.execute("select count(*) from main.quarantined_loans").fetchone()
        unemployed = connection.execute(
            "select count(*) from staging.stg_loans where employment_type = 'Unemployed'"
        ).fetchone()
    assert (quarantined[0], unemployed[0]) == (0, 30)
    assert "kept 30 loans with an unknown employment_type 'Unemployed'" in outcome.stdout


def _check_no_sample(outcome: Outcome) -> None:
    served = outcome.directory / "served.duckdb"
    with duckdb.connect(str(served), read_only=True) as connection:
        tables = {
            name
            for (name,) in connection.execute("select table_name from duckdb_tables()").fetchall()
        }
    assert "sample_loan_book" not in tables


def _check_rolled_back_to_before(outcome: Outcome) -> None:
    assert outcome.notes["previous_build"] == build_id(outcome.directory / "served.duckdb")


CASES: list[Case] = [
    # 1. Jinja in the path never runs, and the file read is the file named.
    Case(
        "jinja in file name",
        _build_of(_jinja_name),
        0,
        "published build",
        "published",
        _check_build_info_names_the_file("{{ 'other' }}.csv"),
    ),
    Case(
        "run_query in file name",
        _build_of(_run_query_name),
        0,
        "published build",
        "published",
        _check_all(_no_file_named("pwn.csv"), _rows_published(ROWS)),
    ),
    Case(
        "jinja in --vars",
        lambda d: [
            "build",
            "--db",
            "served.duckdb",
            "--vars",
            "{strategy: \"{{ env_var('HOME') }}\"}",
        ],
        2,
        "unknown setting 'strategy'",
        "unchanged",
    ),
    Case(
        "jinja in a --vars value",
        lambda d: ["build", "--db", "served.duckdb", "--vars", '{n_segments: "{{ 4 }}"}'],
        2,
        "n_segments must be a whole number",
        "unchanged",
    ),
    # 2. Glob characters read exactly the named file.
    Case(
        "? in file name",
        _build_of(_glob_question),
        0,
        "published build",
        "published",
        _check_build_info_names_the_file("book?.csv"),
    ),
    Case(
        "[ ] in file name",
        _build_of(_glob_brackets),
        0,
        "published build",
        "published",
        _check_build_info_names_the_file("book[1].csv"),
    ),
    Case(
        "loans_path in --vars",
        lambda d: [
            "build",
            "--db",
            "served.duckdb",
            "--vars",
            f"{{loans_path: {book(d, 'via-vars.csv', rows=90)}, scoring_trees: 5}}",
        ],
        0,
        "published build",
        "published",
        _check_all(_rows_published(90), _check_no_sample),
    ),
    # 3. --db never replaces a file that is not ours.
    Case("--db is a CSV", _prepare_db_is_csv, 2, "is not a loan-recovery build", "unchanged"),
    Case("--db is a directory", _prepare_db_is_dir, 2, "is a directory", "unchanged"),
    Case(
        "--db holds someone's build_info table",
        _prepare_db_holds_build_info,
        2,
        "is not a loan-recovery build (its build_info is not one loan-recovery writes",
        "unchanged",
        _unchanged("warehouse.duckdb"),
    ),
    Case(
        "? in --db path",
        _prepare_question_mark_in_db,
        2,
        "DuckDB cannot write under a path holding '?'",
        "unchanged",
    ),
    Case(
        "' in --db name",
        _prepare_quote_in_db,
        0,
        "published build",
        "unchanged",
        _check_quote_in_db,
    ),
    # 4. Malformed rows are quarantined with their line; '#' rows are data.
    Case(
        "malformed rows", _build_of(_malformed), 0, "published build", "published", _check_malformed
    ),
    Case(
        "CR line, CR CR LF and a bare CR at the end",
        _build_of(_odd_line_ends),
        0,
        "published build",
        "published",
        _quarantined_lines([(12, "blank line"), (34, "blank line")], ROWS),
    ),
    Case(
        "stray quote before a quoted field",
        _build_of(_stray_quote),
        0,
        "published build",
        "published",
        _check_stray_quote,
    ),
    # 5. Reference lists cannot be overridden.
    Case(
        "category_values in --vars",
        lambda d: ["build", "--db", "served.duckdb", "--vars", "{category_values: {gender: [X]}}"],
        2,
        "unknown setting 'category_values'",
        "unchanged",
    ),
    Case(
        "reference in --vars",
        lambda d: ["build", "--db", "served.duckdb", "--vars", "{reference: {}}"],
        2,
        "may not override 'reference'",
        "unchanged",
    ),
    Case(
        "threshold out of range",
        lambda d: ["build", "--db", "served.duckdb", "--vars", "{legal_threshold: 2}"],
        2,
        "invalid --vars: legal_threshold",
        "unchanged",
    ),
    Case(
        "--vars outcome_trees 1e20",
        lambda d: [
            "build",
            "--db",
            "served.duckdb",
            "--vars",
            "{outcome_trees: 100000000000000000000}",
        ],
        2,
        "invalid --vars: outcome_trees must be a whole number from 1 to 1000",
        "unchanged",
    ),
    Case(
        "--vars gives a key twice",
        lambda d: [
            "build",
            "--db",
            "served.duckdb",
            "--vars",
            "{legal_threshold: 0.8, legal_threshold: 0.2}",
        ],
        2,
        "--vars gives legal_threshold twice",
        "unchanged",
    ),
    Case(
        "DuckDB memory -1",
        _plain_build,
        2,
        "LOAN_RECOVERY_DUCKDB_MEMORY='-1' is not a DuckDB memory limit",
        "unchanged",
        run=run_with_env(LOAN_RECOVERY_DUCKDB_MEMORY="-1"),
    ),
    Case(
        "DuckDB memory 999TB",
        _plain_build,
        2,
        "LOAN_RECOVERY_DUCKDB_MEMORY='999TB' is more than this machine's",
        "unchanged",
        run=run_with_env(LOAN_RECOVERY_DUCKDB_MEMORY="999TB"),
    ),
    Case(
        "DuckDB memory 1KB",
        _plain_build,
        2,
        "LOAN_RECOVERY_DUCKDB_MEMORY='1KB' is less than 256 MB",
        "unchanged",
        run=run_with_env(LOAN_RECOVERY_DUCKDB_MEMORY="1KB"),
    ),
    # Model artifacts: refused before anything is built.
    Case(
        "forged model card",
        _prepare_forged_card,
        3,
        "its manifest is not the one saved",
        "unchanged",
    ),
    Case(
        "pickle-bearing array with a matching sha256",
        _prepare_pickle_array,
        3,
        "segmentation/arrays.npz holds an array only pickle can read",
        "unchanged",
    ),
    Case(
        "models list with a wrongly typed manifest field",
        _prepare_wrongly_typed_manifest,
        0,
        "registry ",
        "unchanged",
        _check_listed_unusable,
    ),
    Case(
        "scratch folder of a killed register",
        _prepare_killed_register,
        0,
        "approved model",
        "unchanged",
        _check_all(
            _no_file_named(f".{'0' * 12}.killed"),
            _check_scratch_not_listed,
        ),
    ),
    Case(
        "registry on a read-only file system",
        _prepare_read_only_registry,
        2,
        "cannot be written",
        "unchanged",
        run=_read_only_registry_run,
        needs_mount=True,
    ),
    # 6. A kill at the swap keeps the rollback target.
    Case(
        "SIGTERM at the swap",
        _plain_build,
        1,
        "interrupted by SIGTERM",
        "unchanged",
        run=_term_at_swap,
    ),
    Case(
        "rollback after SIGTERM at the swap",
        lambda d: ["rollback", "--db", "served.duckdb"],
        0,
        "rolled back",
        "published",
        _check_rolled_back_to_before,
        run=_rollback_twice_after_term,
    ),
    Case(
        "rollback to the same build",
        _prepare_rollback_same_build,
        1,
        "the one already served",
        "unchanged",
    ),
    # 7. The lock never follows a link.
    Case(
        "lock is a symlink",
        _prepare_lock_symlink,
        2,
        "is a symbolic link",
        "unchanged",
        _unchanged("victim.txt"),
    ),
    Case(
        "lock held by another build",
        _plain_build,
        4,
        "another build or rollback holds",
        "unchanged",
        run=_hold_lock,
    ),
    # 8. Permissions and group are kept; no world-writable folders.
    Case(
        "served file 640 nogroup",
        _prepare_restricted,
        0,
        "published build",
        "published",
        _check_restricted,
    ),
    # Validation that rejected real books.
    Case(
        "peer book (Unemployed, outstanding 1.3x, extra columns)",
        _build_of(_peer_book),
        0,
        "published build",
        "published",
        _check_peer,
    ),
    Case(
        "Parquet with BOOLEAN legal flag",
        _build_of(_boolean_parquet),
        0,
        "published build",
        "published",
        _rows_published(ROWS),
    ),
    # One clear line instead of a traceback.
    Case(
        "--db on a read-only file system",
        _prepare_read_only_db,
        2,
        "read-only file system",
        "unchanged",
        run=_read_only_run,
        needs_mount=True,
    ),
    Case(
        "rollback on a read-only file system",
        lambda d: ["rollback", "--db", "ro/x.duckdb"],
        2,
        "read-only file system",
        "unchanged",
        run=_read_only_run,
        needs_mount=True,
    ),
    Case(
        "full disk",
        _prepare_full_disk,
        1,
        "no space left on",
        "unchanged",
        run=_full_disk_run,
        needs_mount=True,
    ),
    Case(
        "report --out a loan book",
        _prepare_report_over_a_book,
        2,
        "the report is an .html file",
        "unchanged",
        _unchanged("book.csv"),
    ),
    Case(
        "report --db on a CSV",
        lambda d: ["report", "--db", str(book(d, "x.csv")), "--out", "r.html"],
        3,
        "is not a DuckDB database file",
        "unchanged",
    ),
    Case(
        "generate --rows -5",
        lambda d: ["generate", "--rows", "-5", "--out", "x.csv"],
        2,
        "--rows must be 0 or more",
        "unchanged",
    ),
    Case(
        "generate --out x.txt",
        lambda d: ["generate", "--rows", "5", "--out", "x.txt"],
        2,
        "must end in .csv or .parquet",
        "unchanged",
    ),
    Case("UTF-16 file", _build_of(_utf16), 3, "is UTF-16 text", "unchanged"),
    Case("gzip bytes", _build_of(_gzip_bytes), 3, "is gzip-compressed", "unchanged"),
    Case(
        "oversized field",
        _build_of(_oversized_field),
        3,
        "line 6 is longer than 8 MiB",
        "unchanged",
    ),
    Case(
        "--loans is a directory", _prepare_loans_dir, 3, "a directory, not a loan book", "unchanged"
    ),
    Case("--loans is a FIFO", _prepare_loans_fifo, 3, "a FIFO, not a loan book", "unchanged"),
    Case(
        "--loans symlink named .txt",
        _prepare_symlink_wrong_name,
        3,
        "unsupported file type",
        "unchanged",
    ),
    Case("--loans symlink loop", _prepare_symlink_loop, 3, "a symbolic link loop", "unchanged"),
    Case(
        "--loans missing",
        lambda d: ["build", "--loans", "absent.csv", "--db", "served.duckdb"],
        3,
        "no such file",
        "unchanged",
    ),
    Case(
        "--vars not a mapping",
        lambda d: ["build", "--db", "served.duckdb", "--vars", "[1]"],
        2,
        "must be a YAML mapping",
        "unchanged",
    ),
    Case(
        "input changed during the build",
        _plain_build,
        3,
        "changed during the build",
        "unchanged",
        run=_change_during_build,
    ),
    # 9. A damaged saved parse costs a full parse, never the build.
    Case(
        "previous build's saved parse cut short",
        _prepare_broken_parse_state,
        0,
        "published build",
        "published",
        _check_parsed_afresh,
    ),
]


# --------------------------------------------------------------------------- running


def served_build(directory: Path) -> None:
    """Give ``directory`` a served build and a previous one (two real builds)."""
    loans = book(directory, "first.csv", rows=ROWS, seed=9)
    for _ in range(2):
        done = run_cli(
            ["build", "--loans", loans.name, "--db", "served.duckdb", "--vars", FAST], directory
        )
        assert done.returncode == 0, done.stderr


def run_case(case: Case, template: Path, workdir: Path) -> Outcome:
    directory = workdir / "".join(c if c.isalnum() else "_" for c in case.name)
    shutil.copytree(template, directory, symlinks=True)
    served = directory / "served.duckdb"
    argv = case.prepare(directory)
    notes: dict[str, object] = {"previous_build": build_id(directory / "served.duckdb.previous")}
    notes.update(
        _remember(directory, *(name for name in REMEMBERED if (directory / name).exists()))
    )
    before = sha256(served) if served.exists() else None
    done = (case.run or run_cli)(argv, directory)
    after = sha256(served) if served.exists() else None
    return Outcome(done.returncode, done.stdout, done.stderr, before, after, directory, notes)


def run_cases(cases: list[Case], workdir: Path, workers: int = 2) -> dict[str, Outcome]:
    template = workdir / "template"
    template.mkdir()
    served_build(template)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {case.name: pool.submit(run_case, case, template, workdir) for case in cases}
        return {name: future.result() for name, future in futures.items()}


def _check_passes(case: Case, outcome: Outcome) -> bool:
    if case.check is None:
        return True
    try:
        case.check(outcome)
    except (AssertionError, duckdb.Error, OSError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="case names to run")
    args = parser.parse_args()
    cases = [c for c in CASES if not args.only or c.name in args.only]
    if not can_mount():
        cases = [c for c in cases if not c.needs_mount]
    with tempfile.TemporaryDirectory(prefix="hostile-") as scratch:
        outcomes = run_cases(cases, Path(scratch))
        print("| # | case | exit | first line | served file | as expected |")
        print("|---:|---|---:|---|---|:---:|")
        for number, case in enumerate(cases, start=1):
            outcome = outcomes[case.name]
            ok = (
                outcome.returncode == case.exit_code
                and case.first_line in outcome.first_line
                and outcome.served_state == case.served
                and "Traceback" not in outcome.stdout + outcome.stderr
                and _check_passes(case, outcome)
            )
            line = outcome.first_line.replace("|", "\\|")[:140]
            print(
                f"| {number} | {case.name} | {outcome.returncode} | {line} "
                f"| {outcome.served_state} | {'yes' if ok else 'NO'} |"
            )


if __name__ == "__main__":
    main()
