"""``loan-recovery build`` and ``rollback``: the steps, in order, under the lock.

Analysts and BI tools open the served file read-only while the pipeline
rebuilds it, so a rebuild never touches that file: ``dbt build`` writes a
new build file in a per-build directory next to it, the build is finalized
and verified there, and only then is it swapped in
(:mod:`loan_recovery.serving.swap`). A failed or killed build leaves the
served file as it was.

Steps, as named in failure summaries: ``settings`` (--vars), ``db`` (the
served file may be replaced), ``lock``, ``input``, ``model`` (a frozen
model is verified), ``history`` (the served decision history is checked
and carried into the new file), ``dbt``, ``register`` (a training build's models are
saved in the registry), ``finalize``, ``verify``, ``publish`` (and
``rollback``).

Two kinds of run (``build_info.run_kind``), each a dbt selector
(``selectors.yml``): the full build scores every loan and builds the model
card; the monthly decision run (``--decide-only``, with a frozen model
only) reads and validates the whole book but scores, explains and decides
the open loans only, and builds the decision marts, the work queue and the
drift monitor (docs block decision_run).
"""

from __future__ import annotations

import hashlib
import subprocess
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

import duckdb

import loan_recovery
from loan_recovery.build_info import DECISION_RUN, FULL_RUN, BuildInfo, utc_now
from loan_recovery.config import project_dir
from loan_recovery.dbt_results import describe_timings, model_timings
from loan_recovery.errors import (
    EXIT_BAD_INPUT,
    EXIT_USAGE,
    BuildError,
    Interrupted,
    os_error_reason,
)
from loan_recovery.modelling.status import FROZEN, TRAINED
from loan_recovery.serving import finalize as finalizing
from loan_recovery.serving.artifacts import (
    MODEL_VERSION,
    Shift,
    check_registry_writable,
    register_trained_models,
    requested_model,
    shifted_variables,
    stage_frozen_model,
)
from loan_recovery.serving.dbt_run import DbtRun, dbt_command, reuse_parse_state, run_dbt
from loan_recovery.serving.failures import (
    check_every_node_passed,
    quarantine_summary,
    summarize_dbt_failure,
    warnings_of,
)
from loan_recovery.serving.history import carry_history, check_cycle, read_history
from loan_recovery.serving.loan_book import LoanBook, open_loan_book
from loan_recovery.serving.lock import publish_lock
from loan_recovery.serving.paths import (
    BuildDir,
    ServedPaths,
    build_directories,
    check_served_path,
    make_directory,
    new_build_id,
)
from loan_recovery.serving.pause import pause_point
from loan_recovery.serving.settings import AS_OF_DATE, DECIDE_ONLY, LOANS_PATH
from loan_recovery.serving.swap import RollbackResult, clean_stale, recover, rollback_swap, swap_in

SAMPLE_SEED = Path("seeds") / "sample_loan_book.csv"
SELECTORS = {FULL_RUN: "full_build", DECISION_RUN: "decision_run"}
"""The dbt selector (selectors.yml) each kind of run builds."""


@dataclass
class BuildReport:
    """What a successful build published."""

    info: BuildInfo
    served: Path
    previous: Path | None
    build_dir: BuildDir
    warnings: list[str] = field(default_factory=list)
    quality: list[tuple[str, str, str | None, int]] = field(default_factory=list)
    score: tuple[str, str | None] = ("", None)
    """The score that drove the strategy, and why the outcome model fell back (None: it did not)."""
    shifts: list[Shift] = field(default_factory=list)
    cycle: CycleSummary | None = None
    """This cycle's decisions: how many, under which policies, with which action effects."""
    """Model variables whose population moved (model_monitoring rows not stable)."""


class _StepLog:
    """The build's own log (``logs/build.log``): steps with times, and any traceback."""

    def __init__(self, path: Path) -> None:
        make_directory(path.parent)
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


def _loan_book_path(loans: str | Path | None, given: str | None, root: Path) -> Path | None:
    """The input file: ``--loans``, else a loans_path from --vars (relative to the project)."""
    if loans is not None and given is not None:
        raise BuildError(
            "settings",
            "give the loan book once: --loans or loans_path in --vars",
            exit_code=EXIT_USAGE,
        )
    if loans is not None:
        return Path(loans)
    if given:
        path = Path(given).expanduser()
        return path if path.is_absolute() else root / path
    return None


def build(
    *,
    loans: str | Path | None = None,
    served: Path,
    settings: Mapping[str, Any] | None = None,
    loans_path_var: str | None = None,
    model: str | None = None,
    as_of: date | None = None,
    decide_only: bool = False,
    project: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> BuildReport:
    """Build into a new file, finalize and verify it, then publish it atomically.

    ``model`` (a registry version, or 'approved') scores the book with that
    artifact and trains nothing. ``as_of`` names the decision cycle (default:
    today, UTC); the served file's decision history is carried into the new
    file, and this cycle's decisions replace any logged for the same date.
    ``decide_only`` makes it the decision run, which needs ``model``: without
    one it is refused before anything runs (exit 2).

    Raises :class:`BuildError` (with the step, a one-line reason and the log)
    on any failure; the served file is then exactly as it was.
    """
    root = project or project_dir()
    if decide_only and requested_model(model, settings or {}) is None:
        raise BuildError(
            "settings",
            "--decide-only scores with a frozen model and trains nothing: add --model VERSION "
            "or --model approved (loan-recovery models list)",
            exit_code=EXIT_USAGE,
        )
    paths = ServedPaths(served)
    check_served_path(paths)
    started_at = utc_now()
    build_id = new_build_id(started_at)
    build_dir = BuildDir(paths.builds / build_id)
    with publish_lock(paths, f"build {build_id} since {started_at:%Y-%m-%dT%H:%M:%SZ}"):
        try:
            make_directory(build_dir.logs)
            log = _StepLog(build_dir.build_log)
        except OSError as error:
            raise BuildError("lock", os_error_reason(error)) from None
        try:
            for action in recover(paths):
                log.write(action)
            clean_stale(paths, current=build_dir.root)
            if announce:
                announce(f"building {build_id} (logs in {build_dir.logs})")
            source = _loan_book_path(loans, loans_path_var, root)
            steps = _Build(
                log,
                build_id,
                started_at,
                build_dir,
                paths,
                root,
                {key: value for key, value in (settings or {}).items() if key != LOANS_PATH},
                as_of=as_of or utc_now().date(),
                run_kind=DECISION_RUN if decide_only else FULL_RUN,
            )
            return _build_steps(steps, source, model)
        except BuildError as failure:
            failure.log = failure.log or log.path
            log.write(f"FAILED at {failure.step}: {failure.reason}")
            raise
        except Interrupted as stop:
            log.write(f"interrupted by {stop.signal_name} at {log.step}")
            raise BuildError(log.step, f"interrupted by {stop.signal_name}", log=log.path) from None
        except OSError as error:
            log.write(f"OS error at {log.step}:\n{traceback.format_exc()}")
            raise BuildError(log.step, os_error_reason(error), log=log.path) from None
        except Exception as error:
            log.write(f"internal error at {log.step}:\n{traceback.format_exc()}")
            raise BuildError(
                log.step, f"internal error: {type(error).__name__}: {error}", log=log.path
            ) from error
        finally:
            log.close()


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


@dataclass
class _Build:
    """One build in progress: where it writes, what it reads, what it has done so far."""

    log: _StepLog
    build_id: str
    started_at: datetime
    build_dir: BuildDir
    paths: ServedPaths
    root: Path
    settings: dict[str, Any]
    loans: LoanBook | None = None
    input_file: Path = SAMPLE_SEED
    input_sha256: str = ""
    input_bytes: int = 0
    as_of: date = field(default_factory=lambda: utc_now().date())
    """The decision cycle this build decides for."""
    frozen: str | None = None
    """The registry artifact this build scores with (None: it trains)."""
    run_kind: str = FULL_RUN
    """'full', or 'decision' (the open loans only, no model card)."""

    @property
    def selector(self) -> str:
        """The dbt selector this kind of run builds."""
        return SELECTORS[self.run_kind]

    @cached_property
    def storage_version(self) -> str:
        """The storage version dbt writes (profiles.yml); finalize and verify keep to it."""
        return finalizing.storage_compatibility_version(self.root)

    @property
    def input_label(self) -> str:
        """The input as a failure message names it."""
        if self.loans is not None:
            return f"'{self.loans.name}'"
        return f"the bundled sample {SAMPLE_SEED}"


def _open_input(build: _Build, source: Path | None) -> None:
    """Step ``input``: open, check and hash the loan book (or the bundled sample)."""
    build.log.enter("input")
    if source is not None:
        build.loans = open_loan_book(source)
        build.input_file = build.loans.name
        build.input_sha256, build.input_bytes = build.loans.sha256, build.loans.size
    else:
        build.input_file = build.root / SAMPLE_SEED
        seed = build.input_file.read_bytes()
        build.input_sha256, build.input_bytes = hashlib.sha256(seed).hexdigest(), len(seed)
    build.log.write(
        f"input {build.input_file} sha256 {build.input_sha256} ({build.input_bytes} bytes)"
    )


def _stage_model(build: _Build, wanted: str | None) -> None:
    """Step ``model``: verify the frozen model asked for and copy it into the build."""
    if wanted is None:
        return
    build.log.enter("model", wanted)
    build.frozen = stage_frozen_model(wanted, build.paths.served, build.build_dir)
    build.settings[MODEL_VERSION] = build.frozen
    if build.run_kind == DECISION_RUN:
        build.settings[DECIDE_ONLY] = True
    build.log.write(f"scoring with frozen model {build.frozen}: nothing is trained in this build")


def _check_registry(build: _Build) -> None:
    """Step ``register``, before dbt: a training build can save its models in the registry."""
    if build.frozen is None:
        build.log.enter("register", "(before dbt: can the registry be written?)")
        check_registry_writable(build.paths.served)


def _carry_history(build: _Build) -> None:
    """Step ``history``: check the served decision history and carry it into the new file."""
    build.log.enter("history", build.as_of.isoformat())
    held = read_history(build.paths.served, build.root)
    check_cycle(held, build.as_of)
    copied = carry_history(
        build.paths.served,
        build.build_dir.database,
        held,
        root=build.root,
        storage_version=build.storage_version,
    )
    if copied != dict(held.rows):
        raise BuildError("history", f"copied {copied} of the history tables, expected {held.rows}")
    build.settings[AS_OF_DATE] = build.as_of.isoformat()
    build.log.write(
        f"decision cycle {build.as_of.isoformat()}; carried "
        + (", ".join(f"{table} ({rows} rows)" for table, rows in copied.items()) or "no history")
    )


def _run_dbt(build: _Build) -> DbtRun:
    """Step ``dbt``: the whole ``dbt build`` into the build file; any failure is one line."""
    build.log.enter(
        "dbt",
        " ".join(
            dbt_command(
                build.build_dir, build.root, build.settings, build.loans, selector=build.selector
            )[0]
        ),
    )
    earlier = [entry for entry in build_directories(build.paths) if entry != build.build_dir.root]
    reused = reuse_parse_state(build.build_dir, earlier)
    build.log.write(
        f"dbt starts from the parse of {reused}" if reused else "dbt parses the project"
    )
    run = run_dbt(build.build_dir, build.root, build.settings, build.loans, selector=build.selector)
    build.log.write(f"dbt exited with {run.returncode}")
    build.log.write(f"model times: {describe_timings(model_timings(run.results))}")
    if run.returncode != 0:
        failure = summarize_dbt_failure(run, build.loans, build.paths.served.parent)
        quarantined = quarantine_summary(build.build_dir.database, build.input_label)
        if quarantined:
            failure = BuildError("dbt", quarantined, exit_code=EXIT_BAD_INPUT)
        # The failed build file is worth a look when models ran (failing test
        # rows, quarantined rows), not when settings or the file were refused.
        worth_a_look = quarantined or failure.exit_code not in (EXIT_USAGE, EXIT_BAD_INPUT)
        if build.build_dir.database.exists() and worth_a_look:
            failure.inspect = build.build_dir.database
        failure.log = build.build_dir.dbt_log
        raise failure
    check_every_node_passed(run)
    if build.loans is not None and build.loans.changed():
        raise BuildError(
            "input",
            f"loans_path '{build.loans.name}' changed during the build; rerun once it is complete",
            exit_code=EXIT_BAD_INPUT,
        )
    return run


def _register(build: _Build) -> str | None:
    """Step ``register``: a training build's models are saved in the registry; their version."""
    if build.frozen is not None:
        return build.frozen
    build.log.enter("register")
    artifact = register_trained_models(
        build.build_dir,
        build.paths.served,
        source={
            "build_id": build.build_id,
            "input_file": str(build.input_file),
            "input_sha256": build.input_sha256,
        },
    )
    build.log.write(
        f"saved the trained models as {artifact} in the registry"
        if artifact
        else "not saved in the registry: the outcome model fell back"
    )
    return artifact


def _finalize(build: _Build, run: DbtRun, artifact: str | None) -> BuildInfo:
    """Step ``finalize``: rows reconciled, ``build_info`` written, the file checkpointed."""
    build.log.enter("finalize")

    def describe(connection: duckdb.DuckDBPyConnection) -> BuildInfo:
        counts = finalizing.row_counts(connection)
        finalizing.reconcile(counts, build.loans.lines if build.loans else None)
        return BuildInfo(
            build_id=build.build_id,
            as_of_date=build.as_of,
            started_at=build.started_at,
            finished_at=utc_now(),
            input_file=str(build.input_file),
            input_sha256=build.input_sha256,
            input_bytes=build.input_bytes,
            rows_in=counts.rows_in,
            rows_clean=counts.rows_clean,
            rows_quarantined=counts.rows_quarantined,
            model_version=artifact,
            model_mode=TRAINED if build.frozen is None else FROZEN,
            run_kind=build.run_kind,
            project_version=loan_recovery.__version__,
            git_commit=git_commit(build.root),
            dbt_version=((run.results or {}).get("metadata") or {}).get("dbt_version"),
            duckdb_version=duckdb.__version__,
        )

    info = finalizing.finalize(
        build.build_dir.database,
        storage_version=build.storage_version,
        describe=describe,
    )
    build.log.write(
        f"build_info: {info.rows_in} in, {info.rows_clean} clean, "
        f"{info.rows_quarantined} quarantined, model {info.model_version}"
    )
    return info


def _verify(build: _Build) -> None:
    """Step ``verify``: reopen the file read-only, as a reader would, and query every relation."""
    pause_point("verify")
    build.log.enter("verify")
    verified = finalizing.verify(
        build.build_dir.database,
        storage_version=build.storage_version,
        expected_relations=finalizing.expected_relations(
            build.build_dir.target, ran_only=build.run_kind == DECISION_RUN
        ),
        build_id=build.build_id,
    )
    build.log.write(f"verified {len(verified.relations)} relations: {verified.relations}")


def _publish(build: _Build) -> Path | None:
    """Step ``publish``: swap the build in atomically; the build it replaced, if any."""
    build.log.enter("publish", f"{build.build_dir.database} -> {build.paths.served}")
    previous = swap_in(build.build_dir.database, build.paths)
    build.log.write(f"published {build.build_id} to {build.paths.served}")
    return previous


def _build_steps(build: _Build, source: Path | None, model: str | None) -> BuildReport:
    """The steps of a build, in order; each names itself in the log and in a failure."""
    wanted = requested_model(model, build.settings)
    try:
        _open_input(build, source)
        _stage_model(build, wanted)
        _check_registry(build)
        _carry_history(build)
        run = _run_dbt(build)
        artifact = _register(build)
        info = _finalize(build, run, artifact)
    finally:
        if build.loans is not None:
            build.loans.close()
    _verify(build)
    previous = _publish(build)
    served = build.paths.served
    return BuildReport(
        info,
        served,
        previous,
        build.build_dir,
        warnings_of(run.results),
        quality_findings(served),
        score_in_use(served, build.run_kind),
        shifted_variables(served),
        cycle_summary(served),
    )


def quality_findings(database: Path) -> list[tuple[str, str, str | None, int]]:
    """The served build's loan_book_quality rows, for the summary the command prints."""
    with duckdb.connect(str(database), read_only=True) as connection:
        return [
            (str(finding), str(column), value, int(count))
            for finding, column, value, count in connection.execute(
                "select finding, column_name, category_value, loan_count "
                "from main.loan_book_quality order by finding, column_name, loan_count desc"
            ).fetchall()
        ]


@dataclass(frozen=True)
class CycleSummary:
    """What a build decided this cycle, for the command's summary."""

    as_of_date: str
    decided: int
    policies: dict[str, str]
    """Cell -> the policy that decided it."""
    effects: list[tuple[str, str, int, int]]
    """(strategy, learned or prior, randomised outcomes, outcomes needed) per action."""


def cycle_summary(database: Path) -> CycleSummary | None:
    """The served build's cycle: decisions logged, policies per cell, action-effect sources."""
    with duckdb.connect(str(database), read_only=True) as connection:
        cycle = finalizing.scalar(
            connection, "select cast(as_of_date as varchar) from main.run_settings"
        )
        if cycle is None:
            return None
        decided = finalizing.scalar(
            connection, "select count(*) from main.decision_log where as_of_date = ?::date", [cycle]
        )
        policies = dict(
            connection.execute(
                "select cell, any_value(decision_policy) from main.decision_log "
                "where as_of_date = ?::date group by cell order by cell",
                [cycle],
            ).fetchall()
        )
        effects = connection.execute(
            "select strategy_code, source, randomised_outcomes, min_randomised_outcomes "
            "from main.action_effects where source <> 'baseline' order by strategy_rank"
        ).fetchall()
    return CycleSummary(
        str(cycle),
        int(decided or 0),
        {str(cell): str(policy) for cell, policy in policies.items()},
        [(str(code), str(source), int(n), int(needed)) for code, source, n, needed in effects],
    )


def score_in_use(database: Path, run_kind: str = FULL_RUN) -> tuple[str, str | None]:
    """Which score drove the served build's strategy, and the outcome model's fallback reason.

    A decision run has no model card; its model is frozen, and an artifact
    always holds an outcome model (a build that fell back is never saved),
    so it names the score its strategies used, with no fallback.
    """
    with duckdb.connect(str(database), read_only=True) as connection:
        if run_kind == DECISION_RUN:
            used = finalizing.scalar(
                connection, "select any_value(score_source) from main.recovery_strategies"
            )
            return str(used), None
        used = finalizing.scalar(
            connection, "select score_name from main.risk_model_metrics where is_score_in_use"
        )
        reason = finalizing.scalar(
            connection,
            "select fallback_reason from main.risk_model_metrics where score_name = 'outcome'",
        )
    return str(used), None if reason is None else str(reason)


def rollback(served: Path, project: Path | None = None) -> RollbackResult:
    """Serve the previous build again, under the lock (see :func:`swap.rollback_swap`)."""
    root = project or project_dir()
    paths = ServedPaths(served)
    check_served_path(paths)
    with publish_lock(paths, "rollback"):
        try:
            return rollback_swap(paths, root)
        except Interrupted as stop:
            raise BuildError("rollback", f"interrupted by {stop.signal_name}") from None
        except OSError as error:
            raise BuildError("rollback", os_error_reason(error)) from None
