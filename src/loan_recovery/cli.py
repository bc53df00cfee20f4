"""The ``loan-recovery`` command line: parses arguments, calls the package, prints, exits.

Every failure a user can cause is one line on stderr and an exit code from
docs/serving.md: 0 done, 1 the build failed, 2 bad arguments or settings,
3 the input file is unusable, 4 another build or rollback is running. No
traceback reaches the terminal; an internal error names the log that holds
it.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from loan_recovery.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    BuildError,
    Interrupted,
)
from loan_recovery.modelling.status import FROZEN

if TYPE_CHECKING:
    from loan_recovery.generate.next_month import NextMonth

GENERATE_SUFFIXES = (".csv", ".parquet")
AS_OF_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT stop a build like Ctrl-C: logged, summarised, nothing published."""

    def stop(signum: int, _frame: Any) -> NoReturn:
        raise Interrupted(signal.Signals(signum).name)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _fail(command: str, message: str, code: int) -> int:
    print(f"loan-recovery {command}: {message}", file=sys.stderr)
    return code


def _check_generate_arguments(args: argparse.Namespace) -> str | None:
    """The one-line reason these generate arguments are unusable, or None (exit 2)."""
    from loan_recovery.generate.book import MAX_ROWS

    if args.next_from is None and args.decisions is not None:
        return "--decisions needs --next-from (the book whose open loans it decided)"
    if args.next_from is not None and args.decisions is None:
        return "--next-from needs --decisions (the served DuckDB file with decision_log)"
    if args.rows is None and args.next_from is None:
        return "--rows is required (or --next-from to continue a book)"
    if args.rows is not None and not 0 <= args.rows <= MAX_ROWS:
        return f"--rows must be 0 or more and at most {MAX_ROWS:,}, got {args.rows}"
    if args.seed < 0:
        return f"--seed must be 0 or more, got {args.seed}"
    if args.open_share is not None and not 0.0 <= args.open_share <= 1.0:
        return f"--open-share must be between 0 and 1, got {args.open_share}"
    outputs = [("--out", args.out), ("--truth-out", args.truth_out)]
    for option, name in outputs:
        if name is not None and Path(name).suffix.lower() not in GENERATE_SUFFIXES:
            return f"{option} {name}: the name must end in .csv or .parquet"
    named = [(o, n) for o, n in [*outputs, ("--next-from", args.next_from)] if n is not None]
    named += [("--decisions", args.decisions)] if args.decisions is not None else []
    resolved = [Path(name).resolve() for _, name in named]
    for index, (option, name) in enumerate(named):
        if resolved[index] in resolved[:index]:
            other = named[resolved.index(resolved[index])][0]
            return f"{option} {name} is also {other}: each file must be a different one"
    return None


def _generate(args: argparse.Namespace) -> int:
    from loan_recovery.errors import os_error_reason
    from loan_recovery.generate import BASE, DRIFTED, write_loan_book
    from loan_recovery.generate.next_month import UnusableInputError, write_next_month

    problem = _check_generate_arguments(args)
    if problem is not None:
        return _fail("generate", problem, EXIT_USAGE)
    out = Path(args.out)
    truth = Path(args.truth_out) if args.truth_out else None
    population = DRIFTED if args.drift else BASE
    try:
        with _signals_interrupt():
            if args.next_from is not None:
                summary = write_next_month(
                    Path(args.next_from),
                    Path(args.decisions),
                    out,
                    truth,
                    seed=args.seed,
                    new_rows=args.rows,
                    open_share=1.0 if args.open_share is None else args.open_share,
                    population=population,
                )
            else:
                written = write_loan_book(
                    rows=args.rows,
                    out=out,
                    seed=args.seed,
                    open_share=args.open_share or 0.0,
                    truth_out=truth,
                    population=population,
                )
    except UnusableInputError as error:
        return _fail("generate", str(error), EXIT_BAD_INPUT)
    except Interrupted as stop:
        reason = f"interrupted ({stop.signal_name}): nothing written, {out} unchanged"
        return _fail("generate", reason, EXIT_FAILED)
    except (OSError, ValueError) as error:
        reason = os_error_reason(error, out) if isinstance(error, OSError) else str(error)
        return _fail("generate", reason, EXIT_FAILED)
    truth_note = f"; true outcomes and probabilities to {truth}" if truth else ""
    if args.next_from is not None:
        _print_next_month(summary, args.next_from, out)
        print(f"  seed {args.seed}{truth_note}")
        return EXIT_OK
    opened = f", {args.open_share:.0%} open" if args.open_share else ""
    print(f"wrote {args.rows} loans to {written}{opened}{truth_note}")
    return EXIT_OK


def _print_next_month(summary: NextMonth, previous: str, out: Path) -> None:
    """What next month's book holds: history kept, open loans resolved by action, new loans."""
    resolved = sum(summary.resolved_now.values())
    cycle = f"cycle {summary.as_of_date}" if summary.as_of_date else "an empty decision_log"
    actions = ", ".join(f"{count} {action}" for action, count in summary.resolved_now.items())
    print(f"wrote next month's book to {out} from {previous}")
    print(f"  {summary.kept_resolved} resolved loans kept as they were")
    print(
        f"  {resolved} open loans resolved ({actions}) as {cycle} assigned; "
        f"{summary.unlogged} had no logged decision and got reminders"
    )
    if summary.logged_not_open:
        print(
            f"  {summary.logged_not_open} logged decisions name loans not open in "
            f"{previous}: not applied"
        )
    first = f", from {summary.first_new_loan}" if summary.first_new_loan else ""
    print(f"  {summary.new_loans} new loans{first}, {summary.new_open} of them open")


def _report(args: argparse.Namespace) -> int:
    from loan_recovery.config import database_path
    from loan_recovery.report import (
        ReportError,
        ReportTargetError,
        default_report_path,
        write_report,
    )

    database = Path(args.db) if args.db else database_path()
    try:
        written = write_report(database, Path(args.out) if args.out else default_report_path())
    except ReportTargetError as error:
        return _fail("report", str(error), EXIT_USAGE)
    except ReportError as error:
        return _fail("report", str(error), EXIT_BAD_INPUT)
    except OSError as error:
        from loan_recovery.errors import os_error_reason

        return _fail("report", os_error_reason(error), EXIT_FAILED)
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB) from {database}")
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from loan_recovery.serving import served_path
    from loan_recovery.serving.export import ExportError, export_work_queue

    database = served_path(args.db)
    try:
        exported = export_work_queue(database, Path(args.out), force=args.force)
    except ExportError as error:
        return _fail("export", str(error), error.exit_code)
    print(
        f"exported the work queue of cycle {exported.as_of_date} (build {exported.build_id}) "
        f"from {database} to {exported.out}"
    )
    for path, rows in exported.files:
        print(f"  {path.name}: {rows:,} loans")
    return EXIT_OK


def _print_failure(command: str, failure: BuildError, served: Path, out: TextIO) -> None:
    print(f"{command} failed at step {failure.step}: {failure.reason}", file=out)
    if failure.step not in ("settings", "db", "lock"):
        print(f"  nothing published; served file unchanged: {served}", file=out)
    if failure.inspect is not None:
        print(f"  failed build file (kept until the next build): {failure.inspect}", file=out)
    if failure.log is not None:
        print(f"  full log: {failure.log}", file=out)


def _cycle_date(text: str | None) -> date | None:
    """``--as-of``: a calendar date written YYYY-MM-DD (None: today, UTC), or a usage error."""
    if text is None:
        return None
    try:
        if not AS_OF_PATTERN.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BuildError(
            "settings",
            f"--as-of {text!r} is not a date: write it YYYY-MM-DD, e.g. 2026-01-31",
            exit_code=EXIT_USAGE,
        ) from None


def _build(args: argparse.Namespace) -> int:
    from loan_recovery.build_info import DECISION_RUN
    from loan_recovery.serving import build, check_duckdb_memory, parse_settings, served_path

    served = served_path(args.db)
    try:
        as_of = _cycle_date(args.as_of)
        settings, loans_path = parse_settings(args.vars)
        check_duckdb_memory()
        with _signals_interrupt():
            report = build(
                loans=args.loans,
                served=served,
                settings=settings,
                loans_path_var=loans_path,
                model=args.model,
                as_of=as_of,
                decide_only=args.decide_only,
                announce=lambda text: print(text, flush=True),
            )
    except BuildError as failure:
        _print_failure("build", failure, served, sys.stderr)
        return failure.exit_code
    info = report.info
    print(f"published build {info.build_id} to {report.served}")
    print(
        f"  input {info.input_file} (sha256 {info.input_sha256[:12]}): {info.rows_in} rows in = "
        f"{info.rows_clean} clean + {info.rows_quarantined} quarantined"
    )
    used, fallback = report.score
    print(f"  strategy score: {used}" + (f" ({fallback})" if fallback else ""))
    if info.run_kind == DECISION_RUN:
        print(
            "  decision run: the open loans scored, explained and decided; no model card, "
            "gains, fairness or policy comparison (a full build makes them)"
        )
    if info.model_mode == FROZEN:
        print(f"  scored with frozen model {info.model_version}: nothing trained")
    elif info.model_version:
        print(
            f"  trained models saved as {info.model_version} "
            f"(loan-recovery models approve {info.model_version})"
        )
    if report.cycle is not None:
        cycle = report.cycle
        cells = ", ".join(
            f"{cell}: {'a random eligible action' if policy == cell else policy}"
            for cell, policy in cycle.policies.items()
        )
        print(
            f"  decision cycle {cycle.as_of_date}: {cycle.decided:,} open loans decided"
            + (f" ({cells}; decision_log)" if cells else "")
        )
        assumed = [
            (code, n, needed) for code, source, n, needed in cycle.effects if source != "learned"
        ]
        learned = [code for code, source, _, _ in cycle.effects if source == "learned"]
        if learned:
            print(f"  action effects learned from randomised decisions: {', '.join(learned)}")
        if assumed:
            words = ", ".join(f"{code} ({n} of {needed})" for code, n, needed in assumed)
            print(
                f"  action effects still assumed (prior_action_effects): {words} randomised "
                "outcomes; expected values use these assumptions (action_effects)"
            )
    for shift in report.shifts:
        print(
            f"  drift: {shift.variable} ({shift.variable_kind}) PSI {shift.psi:.3f}, "
            f"{shift.stability}; most moved: {shift.most_shifted_bin} (model_monitoring)"
        )
    for finding, column, value, count in report.quality:
        if finding == "unknown_category_value":
            print(f"  kept {count} loans with an unknown {column} '{value}' (loan_book_quality)")
        else:
            print(f"  {count} loans: {finding.replace('_', ' ')} (loan_book_quality)")
    for warning in report.warnings:
        print(f"  warning: {warning}")
    if report.previous is not None:
        print(f"  previous build kept as {report.previous} (loan-recovery rollback)")
    print(f"  logs: {report.build_dir.logs}")
    return EXIT_OK


def _rollback(args: argparse.Namespace) -> int:
    from loan_recovery.serving import ServedPaths, rollback, served_path

    served = served_path(args.db)
    try:
        with _signals_interrupt():
            result = rollback(served)
    except BuildError as failure:
        _print_failure("rollback", failure, served, sys.stderr)
        return failure.exit_code
    print(f"rolled back {result.served}: now serving build {result.restored_build}")
    if result.replaced_build is not None:
        print(
            f"  build {result.replaced_build} kept as {ServedPaths(served).previous} "
            "(rollback again to return to it)"
        )
    return EXIT_OK


def _models(args: argparse.Namespace) -> int:
    from loan_recovery.build_info import utc_stamp
    from loan_recovery.modelling.registry import (
        RegistryError,
        approve,
        check_version,
        list_models,
        registry_dir,
    )
    from loan_recovery.serving import served_path

    registry = registry_dir(served_path(args.db))
    command = f"models {args.action}"
    try:
        if args.action == "approve":
            try:
                check_version(args.version)
            except RegistryError as error:
                return _fail(command, str(error), EXIT_USAGE)
            artifact = approve(args.version, registry, approved_at=utc_stamp())
            print(f"approved model {artifact.version} in {registry}")
            print("  loan-recovery build --model approved scores with it")
            return EXIT_OK
        listed = list_models(registry)
    except RegistryError as error:
        return _fail(command, str(error), EXIT_BAD_INPUT)
    except OSError as error:
        from loan_recovery.errors import os_error_reason

        return _fail(command, os_error_reason(error), EXIT_FAILED)
    print(f"registry {registry}")
    if not listed:
        print("  no models yet: a `loan-recovery build` that trains saves them")
        return EXIT_OK
    print(f"{'version':<12}  {'created (UTC)':<20}  {'training rows':>13}  {'AUC':>6}  approved")
    for row in listed:
        auc = f"{row.roc_auc:.3f}" if row.roc_auc is not None else "-"
        rows = f"{row.training_rows:,}" if row.training_rows is not None else "-"
        line = (
            f"{row.version:<12}  {row.created_at or '-':<20}  {rows:>13}  {auc:>6}  "
            f"{'yes' if row.is_approved else ''}"
        )
        print(line.rstrip() + (f"  UNUSABLE: {row.problem}" if row.problem else ""))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="loan-recovery",
        description="Loan-recovery analytics on DuckDB: generate, build, report, export, publish.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    generate = commands.add_parser(
        "generate", help="write a deterministic synthetic loan book (CSV or Parquet)"
    )
    generate.add_argument(
        "--rows",
        type=int,
        help="number of loans, at most 100,000,000 (with --next-from: new loans; "
        "default as many as were open)",
    )
    generate.add_argument(
        "--out", required=True, help="output file; .csv or .parquet picks the format"
    )
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.add_argument(
        "--open-share",
        type=float,
        help="share of loans still open: no Recovery_Status or collection columns "
        "(default 0; with --next-from: share of the new loans, default 1)",
    )
    generate.add_argument(
        "--truth-out",
        help="also write each loan's true outcome, P(full recovery) per action and the action "
        "it was collected under to this .csv/.parquet",
    )
    generate.add_argument(
        "--next-from",
        metavar="PREVIOUS_BOOK",
        help="write next month's book: PREVIOUS_BOOK's open loans resolve under the actions "
        "--decisions logged, history is kept, new open loans are added",
    )
    generate.add_argument(
        "--decisions",
        metavar="SERVED_DB",
        help="with --next-from: the served DuckDB file whose decision_log (newest cycle) "
        "assigned the open loans' actions; read-only",
    )
    generate.add_argument(
        "--drift",
        action="store_true",
        help="draw a drifted population: incomes 30%% lower, more missed payments (rule 12)",
    )
    generate.set_defaults(handler=_generate)

    report = commands.add_parser(
        "report", help="write the offline HTML report of the built DuckDB file (read-only)"
    )
    report.add_argument(
        "--db", help="built DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    report.add_argument(
        "--out",
        help="HTML file to write, a new name or an earlier report "
        "(default: reports/loan_recovery_report.html)",
    )
    report.set_defaults(handler=_report)

    export = commands.add_parser(
        "export",
        help="write the served work queue as one CSV per strategy (legal.csv, ...), read-only",
    )
    export.add_argument(
        "--db", help="served DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    export.add_argument(
        "--out", required=True, help="directory for the CSV files: new or empty (see --force)"
    )
    export.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty --out, replacing its strategy files (others are kept)",
    )
    export.set_defaults(handler=_export)

    build = commands.add_parser(
        "build",
        help="dbt build into a new file, verify it, then publish it atomically as the served file",
    )
    build.add_argument("--loans", help="loan book (.csv or .parquet); default: the bundled sample")
    build.add_argument(
        "--db", help="served DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    build.add_argument("--vars", help="per-run settings as YAML, e.g. '{legal_threshold: 0.8}'")
    build.add_argument(
        "--model",
        help="score with this registry version (or 'approved') and train nothing",
    )
    build.add_argument(
        "--as-of",
        help="the decision cycle's date, YYYY-MM-DD (default: today, UTC); rebuilding a "
        "cycle replaces its decisions",
    )
    build.add_argument(
        "--decide-only",
        action="store_true",
        help="the monthly decision run (needs --model): validate the whole book, score, "
        "explain and decide the open loans only; no model card",
    )
    build.set_defaults(handler=_build)

    models = commands.add_parser(
        "models", help="the model registry: list the saved models, approve one"
    )
    db_help = "served DuckDB file whose registry to use (default as for build)"
    models.add_argument("--db", help=db_help)
    actions = models.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = actions.add_parser(
        "list", help="every saved model: version, created, training rows, AUC"
    )
    approving = actions.add_parser("approve", help="approve a version: --model approved uses it")
    approving.add_argument("version", help="a version as `models list` prints it")
    for action in (listing, approving):
        # Also after the subcommand (`models list --db X`); SUPPRESS keeps a --db given before it.
        action.add_argument("--db", help=db_help, default=argparse.SUPPRESS)
    models.set_defaults(handler=_models)

    rollback = commands.add_parser(
        "rollback", help="serve the previous build again (atomically); run twice to roll forward"
    )
    rollback.add_argument(
        "--db", help="served DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    rollback.set_defaults(handler=_rollback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from loan_recovery.config import ProjectNotFoundError

    try:
        return int(args.handler(args))
    except ProjectNotFoundError as error:
        return _fail(args.command, str(error), EXIT_USAGE)
    except BrokenPipeError:
        # The reader of our output went away (| head): not an error of ours.
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
