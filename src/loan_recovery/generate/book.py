"""Assembling and writing a synthetic loan book: chunks, ids, open loans, the truth file.

The rules that draw each loan are in :mod:`loan_recovery.generate.rules`,
what collecting it does in :mod:`loan_recovery.generate.lender`; this module
turns them into a book with the 21 columns of ``loan_book_columns`` in
``dbt_project.yml`` (names, order and category values come from there
through :mod:`loan_recovery.config`).

Open loans. With ``open_share`` > 0 that share of loans is still in
collection: Recovery_Status is empty, and so are the columns recorded while
collecting (Collection_Attempts, Collection_Method, Legal_Action_Taken).
Resolved loans were collected under the old policy (rule 14); an open loan's
true outcome is its outcome under reminders (the action a loan gets when
nobody decides otherwise). Which loans are open comes from a stream of its
own and the outcome noise is keyed by loan id (rule 15), so a loan has the
same values whatever the open share, and the same outcome under the same
action.

The truth file (``truth_out``, columns :data:`TRUTH_COLUMNS`) holds, for
every loan: ``loan_id``; ``recovery_status`` (a resolved loan's outcome, an
open loan's outcome under reminders); ``p_full_recovery_reminders``,
``p_full_recovery_settlement`` and ``p_full_recovery_legal``, the true
probabilities of full recovery under each action (rule 13; given for every
loan, whether or not an action is allowed for it); and
``collection_strategy_code``, the action a resolved loan was collected
under (empty for an open loan). Scores on open loans can so be graded
honestly, and policies valued against the truth.

Determinism: rows are generated in chunks of :data:`CHUNK_ROWS`; chunk ``k``
draws from ``Generator(PCG64(SeedSequence(seed, spawn_key=(k,))))``, so the
same ``rows`` and ``seed`` give byte-identical files, and a chunk never holds
more than a million rows in memory. The first rows of a larger book are not
those of a smaller one (the chunks' sizes differ).

Output: :func:`generate_loan_book` returns a pandas DataFrame (small books,
tests, notebooks); :func:`write_loan_book` streams the same rows to an
unquoted CSV or a zstd Parquet file (one row group per chunk) whose column
types are the seed's types in ``dbt_project.yml``, and the truth beside it.
Note that DuckDB's CSV sniffer reads the Yes/No Legal_Action_Taken column as
BOOLEAN unless told it is VARCHAR.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from itertools import chain
from pathlib import Path
from typing import Protocol

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
from loan_recovery.generate.lender import (
    ACTIONS,
    DEFAULT_EFFECTS,
    REMINDERS,
    ActionEffects,
    collect,
    full_recovery_probabilities,
    historical_actions,
)
from loan_recovery.generate.rules import BASE, Columns, Population, draw_loans, values_of

CHUNK_ROWS = 1_000_000
"""Rows generated, held and written at a time; part of the seed's meaning."""

MAX_ROWS = 100_000_000
"""The most loans one call writes: beyond it a typo (an extra zero or ten) would fill a disk."""

TRUTH_COLUMNS = (
    "loan_id",
    "recovery_status",
    *(f"p_full_recovery_{action}" for action in ACTIONS),
    "collection_strategy_code",
)
"""The truth file's columns: outcome, true P(full recovery) per action, the action taken."""


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


def book_table(
    facts: Columns, ids: dict[str, pa.Array], collected: Columns, is_open: np.ndarray
) -> pa.Table:
    """The configured columns, in order, from pre-collection facts and what collection recorded.

    ``ids`` holds the id columns (snake_case name to Arrow strings);
    post-outcome columns of open loans are written empty.
    """
    blank_when_open = set(post_outcome_columns())
    arrays: dict[str, pa.Array] = {}
    for column in loan_book_columns():
        name = snake_case(column)
        if name in ids:
            arrays[column] = ids[name]
        elif name in facts or name in collected:
            values = facts[name] if name in facts else collected[name]
            arrays[column] = _to_arrow(column, values, is_open if name in blank_when_open else None)
        else:
            raise ValueError(f"dbt_project.yml lists column {column!r}, which the generator lacks")
    return pa.table(arrays)


def truth_table(
    loan_ids: pa.Array | pa.ChunkedArray,
    recovery_status: pa.Array | pa.ChunkedArray,
    probabilities: np.ndarray,
    actions: np.ndarray,
) -> pa.Table:
    """The truth file's rows: :data:`TRUTH_COLUMNS`; an action code below 0 is written empty."""
    names = pa.array(ACTIONS, pa.string())
    action = pc.take(names, pa.array(np.maximum(actions, 0)))
    action = pc.if_else(pa.array(actions < 0), pa.scalar(None, pa.string()), action)
    columns = [loan_ids, recovery_status, *probabilities.T, action]
    return pa.table(dict(zip(TRUTH_COLUMNS, columns, strict=True)))


def resolve_fresh_loans(
    facts: Columns,
    loan_ids: pa.Array,
    is_open: np.ndarray,
    seed: int,
    effects: ActionEffects,
) -> tuple[Columns, np.ndarray, np.ndarray]:
    """Collect fresh loans: resolved ones under the old policy, open ones under reminders.

    Returns the post-collection columns (an open loan's are its outcome
    under reminders, which the book blanks and the truth file keeps), the
    true probabilities per action, and the action each resolved loan was
    collected under (-1 for open loans).
    """
    taken = np.where(is_open, REMINDERS, historical_actions(facts)).astype(np.int8)
    collected = collect(facts, loan_ids, taken, seed, effects)
    probabilities = full_recovery_probabilities(facts, effects)
    return collected, probabilities, np.where(is_open, -1, taken).astype(np.int8)


def _chunk(
    first_row: int,
    n: int,
    seed: int,
    chunk_index: int,
    open_share: float,
    population: Population,
    effects: ActionEffects,
) -> tuple[pa.Table, pa.Table]:
    """Loans ``first_row`` .. ``first_row + n - 1`` (1-based), and their truth rows.

    The loans come from the chunk's own stream; which of them are open, from
    a second stream, so the open share never changes a loan's values; the
    outcome draws are keyed by loan id (rule 15), so neither does the chunk.
    """
    facts: Columns = draw_loans(_rng(seed, chunk_index), n, population)
    is_open = _rng(seed, chunk_index, 1).random(n) < open_share
    ids = {"borrower_id": _ids("BRW_", first_row, n), "loan_id": _ids("LN_", first_row, n)}
    collected, probabilities, taken = resolve_fresh_loans(
        facts, ids["loan_id"], is_open, seed, effects
    )
    book = book_table(facts, ids, collected, is_open)
    status = _to_arrow("recovery_status", collected["recovery_status"])
    return book, truth_table(ids["loan_id"], status, probabilities, taken)


def check_rows(rows: int) -> None:
    """Refuse a negative count, or one beyond :data:`MAX_ROWS`."""
    if not 0 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 0 and {MAX_ROWS:,}, got {rows}")


def _check_arguments(rows: int, seed: int, chunk_rows: int, open_share: float) -> None:
    check_rows(rows)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    if not 0.0 <= open_share <= 1.0:
        raise ValueError(f"open share must be between 0 and 1, got {open_share}")


def _chunks_with_truth(
    rows: int,
    seed: int,
    chunk_rows: int,
    open_share: float,
    population: Population,
    effects: ActionEffects = DEFAULT_EFFECTS,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    _check_arguments(rows, seed, chunk_rows, open_share)
    for index in range(max(1, math.ceil(rows / chunk_rows))):
        start = index * chunk_rows
        yield _chunk(
            start + 1, min(chunk_rows, rows - start), seed, index, open_share, population, effects
        )


def loan_book_chunks(
    rows: int,
    seed: int = 42,
    chunk_rows: int = CHUNK_ROWS,
    *,
    open_share: float = 0.0,
    population: Population = BASE,
    effects: ActionEffects = DEFAULT_EFFECTS,
) -> Iterator[pa.Table]:
    """The loan book as Arrow tables of at most ``chunk_rows`` rows, in order.

    Always yields at least one table (empty when ``rows`` is 0), so writers
    get a schema. ``chunk_rows`` is part of what a seed means: another chunk
    size gives another (equally valid) book.
    """
    for book, _ in _chunks_with_truth(rows, seed, chunk_rows, open_share, population, effects):
        yield book


def generate_loan_book(
    rows: int,
    seed: int = 42,
    *,
    chunk_rows: int = CHUNK_ROWS,
    open_share: float = 0.0,
    population: Population = BASE,
    effects: ActionEffects = DEFAULT_EFFECTS,
) -> pd.DataFrame:
    """A synthetic loan book of ``rows`` loans as a pandas DataFrame.

    Exactly the rows :func:`write_loan_book` writes for the same arguments
    (both read the same chunks). Holds the whole book in memory, so large
    books should be written with :func:`write_loan_book` instead.
    """
    chunks = loan_book_chunks(
        rows, seed, chunk_rows, open_share=open_share, population=population, effects=effects
    )
    return pa.concat_tables(chunks).to_pandas()


def generate_truth(
    rows: int,
    seed: int = 42,
    *,
    chunk_rows: int = CHUNK_ROWS,
    open_share: float = 0.0,
    population: Population = BASE,
    effects: ActionEffects = DEFAULT_EFFECTS,
) -> pd.DataFrame:
    """The truth file's rows for the book :func:`generate_loan_book` returns (same arguments)."""
    pairs = _chunks_with_truth(rows, seed, chunk_rows, open_share, population, effects)
    return pa.concat_tables(truth for _, truth in pairs).to_pandas()


class _Writer(Protocol):
    def write_table(self, table: pa.Table) -> None: ...


@contextmanager
def _parquet_writer(path: Path, schema: pa.Schema) -> Iterator[_Writer]:
    """One row group per chunk; zstd keeps a 10M-loan book small without slowing the write."""
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        yield writer


@contextmanager
def _csv_writer(path: Path, schema: pa.Schema) -> Iterator[_Writer]:
    """Plain unquoted CSV like the public file; a null is an empty field.

    No generated value contains a comma, quote or newline; if a configured
    category ever did, Arrow refuses to write it rather than corrupt the file.
    """
    with path.open("wb") as handle:
        # Arrow quotes header names even unasked; the configured names are plain identifiers.
        handle.write((",".join(schema.names) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
        with pa_csv.CSVWriter(handle, schema, write_options=options) as writer:
            yield writer


WRITERS = {".csv": _csv_writer, ".parquet": _parquet_writer}


def check_suffix(target: Path) -> None:
    """Refuse a file name whose suffix picks no writer, naming the file."""
    if target.suffix.lower() not in WRITERS:
        raise ValueError(f"cannot write {target}: its suffix must be .csv or .parquet")


def partial_path(target: Path) -> Path:
    """The temporary name a file is written under until it is complete."""
    return target.with_name(f".{target.name}.partial")


def write_book_and_truth(
    pairs: Iterator[tuple[pa.Table, pa.Table]], out: Path, truth_out: Path | None
) -> None:
    """Stream (book, truth) chunks into ``out`` and ``truth_out``, each replaced only when complete.

    Both files are written side by side, chunk by chunk, so memory stays flat
    whatever the size, under temporary names that are renamed over the
    targets at the end: an error, or a SIGTERM the command line turns into
    an exception, leaves the previous files as they were and no partial
    file behind. The first chunk is produced before the disk is touched, so
    bad arguments fail with nothing written.
    """
    targets = [Path(out), *([Path(truth_out)] if truth_out is not None else [])]
    for target in targets:
        check_suffix(target)
    first = next(pairs)
    partials = [partial_path(target) for target in targets]
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        with ExitStack() as stack:
            writers = [
                stack.enter_context(WRITERS[target.suffix.lower()](partial, table.schema))
                for target, partial, table in zip(targets, partials, first, strict=False)
            ]
            for pair in chain([first], pairs):
                for writer, table in zip(writers, pair, strict=False):
                    writer.write_table(table)
        for partial, target in zip(partials, targets, strict=True):
            partial.replace(target)
    finally:
        for partial in partials:
            partial.unlink(missing_ok=True)


def write_loan_book(
    rows: int,
    out: Path,
    seed: int = 42,
    *,
    chunk_rows: int = CHUNK_ROWS,
    open_share: float = 0.0,
    truth_out: Path | None = None,
    population: Population = BASE,
    effects: ActionEffects = DEFAULT_EFFECTS,
) -> Path:
    """Write a synthetic loan book to ``out``; its suffix (``.csv``/``.parquet``) picks the format.

    ``truth_out`` also gets every loan's truth (:data:`TRUTH_COLUMNS`).
    See :func:`write_book_and_truth` for how a failure leaves the disk.
    Returns ``out``.
    """
    pairs = _chunks_with_truth(rows, seed, chunk_rows, open_share, population, effects)
    write_book_and_truth(pairs, Path(out), Path(truth_out) if truth_out is not None else None)
    return Path(out)
