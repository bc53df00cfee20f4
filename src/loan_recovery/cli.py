"""The ``loan-recovery`` command line: parses arguments and calls the package."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def _generate(args: argparse.Namespace) -> int:
    from loan_recovery.generate import write_loan_book

    written = write_loan_book(rows=args.rows, out=Path(args.out), seed=args.seed)
    print(f"wrote {args.rows} loans to {written}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from loan_recovery.config import database_path
    from loan_recovery.report import ReportError, default_report_path, write_report

    database = Path(args.db) if args.db else database_path()
    try:
        written = write_report(database, Path(args.out) if args.out else default_report_path())
    except ReportError as error:
        print(f"loan-recovery report: {error}", file=sys.stderr)
        return 1
    print(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB) from {database}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from loan_recovery.publish import build_command

    return build_command(loans=args.loans, db=args.db, vars_text=args.vars)


def _rollback(args: argparse.Namespace) -> int:
    from loan_recovery.publish import rollback_command

    return rollback_command(db=args.db)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loan-recovery",
        description="Loan-recovery analytics on DuckDB: generate, build, report, publish.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser(
        "generate", help="write a deterministic synthetic loan book (CSV or Parquet)"
    )
    generate.add_argument("--rows", type=int, required=True, help="number of loans")
    generate.add_argument(
        "--out", required=True, help="output file; .csv or .parquet picks the format"
    )
    generate.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    generate.set_defaults(handler=_generate)

    report = commands.add_parser(
        "report", help="write the offline HTML report of the built DuckDB file (read-only)"
    )
    report.add_argument(
        "--db", help="built DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    report.add_argument(
        "--out", help="HTML file to write (default: reports/loan_recovery_report.html)"
    )
    report.set_defaults(handler=_report)

    build = commands.add_parser(
        "build",
        help="dbt build into a new file, verify it, then publish it atomically as the served file",
    )
    build.add_argument("--loans", help="loan book (.csv or .parquet); default: the bundled sample")
    build.add_argument(
        "--db", help="served DuckDB file (default: $LOAN_RECOVERY_DB, else loan_recovery.duckdb)"
    )
    build.add_argument("--vars", help="extra dbt vars as YAML, e.g. '{n_segments: 5}'")
    build.set_defaults(handler=_build)

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
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
