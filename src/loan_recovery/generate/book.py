"""Assembling and writing a synthetic loan book: chunks, ids, open loans, the truth file.

The rules that draw each loan are in :mod:`loan_recovery.generate.rules`;
this module turns them into a book with the 21 columns of
``loan_book_columns`` in ``dbt_project.yml`` (names, order and category
values come from there through :mod:`loan_recovery.config`).

Open loans. With ``open_share`` > 0 that share of loans is still in
collection: Recovery_Status is empty, and so are the columns recorded while
collecting (Collection_Attempts, Collection_Method, Legal_Action_Taken).
Their true outcome is still drawn by the same rules, from the same random
stream, so a loan has the same values and outcome whatever the open share;
which loans are open comes from a stream of its own. ``truth_out`` writes
every loan's true outcome (loan_id, recovery_status) so that scores on open
loans can be graded honestly.

Determinism: rows are generated in chunks of :data:`CHUNK_ROWS`; chunk ``k``
draws from ``Generator(PCG64(SeedSequence(seed, spawn_key=(k,))))``, so the
same ``rows`` and ``seed`` give byte-identical files, and a chunk never holds
more than a million rows in memory. The first rows of a larger book are not
those of a smaller one (the chunks' sizes differ).

Output: :func:`generate_loan_book` returns a pandas DataFrame (small books,
tests, notebooks); :func:`write_loan_book` streams the same rows to an
unquoted CSV or a zstd Parquet file (one row group per chunk) whose column
types are the seed's types in ``dbt_project.yml``. Note that DuckDB's CSV
sniffer reads the Yes/No Legal_Action_Taken column as BOOLEAN unless told
it is VARCHAR.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from loan_recovery.config import (
    category_values,
    loan_book_columns,
    post_outcome_columns,
    snake_case,
)
from loan_recovery.generate.rules import BASE, Columns, Population, draw_loans, values_of

CHUNK_ROWS = 1_000_000
"""Rows generated, held and written at a time; part of the seed's meaning."""

TRUTH_COLUMNS = ("loan_id", "recovery_status")


def _ids(prefix: str, first: int, n: int) -> pa.Array:
    """``{prefix}{i}`` for i = first .. first + n - 1, built in Arrow without a Python loop."""
    numbers = pc.cast(pa.array(np.arange(first, first + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, numbers, "")


def _to_arrow(column: str, values: np.ndarray, blank: np.ndarray | None = None) -> pa.Array:
    """One output column: categories as strings, integers as int32, amounts as double.

    The types are the ``seeds`` column types in ``dbt_project.yml``, so a
    generated Parquet book and the bundled seed load alike. ``blank`` marks
    rows written empty (null).
    """
    name = snake_case(column)
    if name in category_values():
        array = pc.take(pa.array(values_of(name), pa.string()), pa.array(values))
    elif np.issubdtype(values.dtype, np.integer):
        array = pa.array(values.astype(np.int32))
    else:
        array = pa.array(values.astype(np.float64))
    if blank is not None and blank.any():
        array = pc.if_else(pa.array(blank), pa.scalar(None, array.type), array)
    return array


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def _chunk(
    first_row: int, n: int, seed: int, chunk_index: int, open_share: float, population: Population
) -> tuple[pa.Table, pa.Table]:
    """Loans ``first_row`` .. ``first_row + n - 1`` (1-based), and their true outcomes.

    The loans come from the chunk's own stream; which of them are open, from
    a second stream, so the open share never changes a loan's values.
    """
    generated: Columns = draw_loans(_rng(seed, chunk_index), n, population)
    is_open = _rng(seed, chunk_index, 1).random(n) < open_share
    blank_when_open = set(post_outcome_columns())

    arrays: dict[str, pa.Array] = {}
    for column in loan_book_columns():
        name = snake_case(column)
        if name == "borrower_id":
            arrays[column] = _ids("BRW_", first_row, n)
        elif name == "loan_id":
            arrays[column] = _ids("LN_", first_row, n)
        elif name in generated:
            blank = is_open if name in blank_when_open else None
            arrays[column] = _to_arrow(column, generated[name], blank)
        else:
            raise ValueError(f"dbt_project.yml lists column {column!r}, which the generator lacks")
    book = pa.table(arrays)
    truth = pa.table(
        {
            "loan_id": arrays[next(c for c in arrays if snake_case(c) == "loan_id")],
            "recovery_status": _to_arrow("recovery_status", generated["recovery_status"]),
        }
    )
    return book, truth


def _check_arguments(rows: int, seed: int, chunk_rows: int, open_share: float) -> None:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if not 0.0 <= open_share <= 1.0:
        raise ValueError(f"open share must be between 0 and 1, got {open_share}")


def _chunks_with_truth(
    rows: int, seed: int, chunk_rows: int, open_share: float, population: Population
) -> Iterator[tuple[pa.Table, pa.Table]]:
    _check_arguments(rows, seed, chunk_rows, open_share)
    for index in range(max(1, math.ceil(rows / chunk_rows))):
        start = index * chunk_rows
        yield _chunk(start + 1, min(chunk_rows, rows - start), seed, index, open_share, population)


def loan_book_chunks(
    rows: int,
    seed: int = 42,
    chunk_rows: int = CHUNK_ROWS,
    *,
    open_share: float = 0.0,
    population: Population = BASE,
) -> Iterator[pa.Table]:
    """The loan book as Arrow tables of at most ``chunk_rows`` rows, in order.

    Always yields at least one table (empty when ``rows`` is 0), so writers
    get a schema. ``chunk_rows`` is part of what a seed means: another chunk
    size gives another (equally valid) book.
    """
    for book, _ in _chunks_with_truth(rows, seed, chunk_rows, open_share, population):
        yield book


def generate_loan_book(
    rows: int,
    seed: int = 42,
    *,
    chunk_rows: int = CHUNK_ROWS,
    open_share: float = 0.0,
    population: Population = BASE,
) -> pd.DataFrame:
    """A synthetic loan book of ``rows`` loans as a pandas DataFrame.

    Exactly the rows :func:`write_loan_book` writes for the same arguments
    (both read the same chunks). Holds the whole book in memory, so large
    books should be written with :func:`write_loan_book` instead.
    """
    chunks = loan_book_chunks(rows, seed, chunk_rows, open_share=open_share, population=population)
    return pa.concat_tables(chunks).to_pandas()


def _write_parquet(first: pa.Table, rest: Iterator[pa.Table], path: Path) -> None:
    """One row group per chunk; zstd keeps a 10M-loan book small without slowing the write."""
    with pq.ParquetWriter(path, first.schema, compression="zstd") as writer:
        writer.write_table(first)
        for chunk in rest:
            writer.write_table(chunk)


def _write_csv(first: pa.Table, rest: Iterator[pa.Table], path: Path) -> None:
    """Plain unquoted CSV like the public file; a null is an empty field.

    No generated value contains a comma, quote or newline; if a configured
    category ever did, Arrow refuses to write it rather than corrupt the file.
    """
    with path.open("wb") as handle:
        # Arrow quotes header names even unasked; the configured names are plain identifiers.
        handle.write((",".join(first.column_names) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        with pa_csv.CSVWriter(handle, first.schema, write_options=options) as writer:
            writer.write_table(first)
            for chunk in rest:
                writer.write_table(chunk)


WRITERS = {".csv": _write_csv, ".parquet": _write_parquet}


def write_loan_book(
    rows: int,
    out: Path,
    seed: int = 42,
    *,
    chunk_rows: int = CHUNK_ROWS,
    open_share: float = 0.0,
    truth_out: Path | None = None,
    population: Population = BASE,
) -> Path:
    """Write a synthetic loan book to ``out``; its suffix (``.csv``/``.parquet``) picks the format.

    Writes chunk by chunk, so memory stays flat whatever ``rows`` is, into
    temporary files that replace ``out`` (and ``truth_out``) only when
    complete: a failed run never leaves a truncated book behind. Returns ``out``.
    """
    targets = [Path(out), *([Path(truth_out)] if truth_out is not None else [])]
    for target in targets:
        if target.suffix.lower() not in WRITERS:
            raise ValueError(f"cannot write {target}: its suffix must be .csv or .parquet")
    pairs = _chunks_with_truth(rows, seed, chunk_rows, open_share, population)
    first_book, first_truth = next(pairs)  # validates the arguments before touching the disk
    truths: list[pa.Table] = [first_truth]

    def books() -> Iterator[pa.Table]:
        for book, truth in pairs:
            if truth_out is not None:
                truths.append(truth)
            yield book

    partials = [target.with_name(f".{target.name}.partial") for target in targets]
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        WRITERS[targets[0].suffix.lower()](first_book, books(), partials[0])
        if truth_out is not None:
            WRITERS[targets[1].suffix.lower()](truths[0], iter(truths[1:]), partials[1])
        for partial, target in zip(partials, targets, strict=True):
            partial.replace(target)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)
    return targets[0]
