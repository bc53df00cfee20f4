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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
