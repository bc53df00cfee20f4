"""Next month's book: last month's open loans resolve under the actions the product logged.

``loan-recovery generate --next-from PREVIOUS --decisions SERVED_DB`` closes
the simulated loop of issue 27. The served file's ``decision_log`` says which
action each open loan was assigned in its newest cycle; the simulated lender
(:mod:`loan_recovery.generate.lender`) then resolves every loan that was open
in PREVIOUS under that action (reminders where none was logged), draws its
outcome with the loan's own noise (rule 15: the same noise under any
action), and fills its collection columns from the action (rule 11).
Resolved history is kept as it was, and new open loans are added with new
ids that continue the numbering.

Both inputs are hostile: the previous book must be a loan book (the
configured columns, known categories, no missing pre-collection fact), and
the served file is opened read-only with file access and extension loading
switched off, its ``decision_log`` must be a table of the expected shape,
and nothing from either file ever reaches SQL as code. Anything else is
refused with one line (:class:`UnusableInputError`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from loan_recovery.config import category_values, post_outcome_columns
from loan_recovery.config import snake_case as snake
from loan_recovery.files import is_duckdb_file
from loan_recovery.generate.book import (
    CHUNK_ROWS,
    _ids,
    _rng,
    _to_arrow,
    book_table,
    check_rows,
    loan_book_chunks,
    resolve_fresh_loans,
    truth_table,
    write_book_and_truth,
)
from loan_recovery.generate.lender import (
    ACTIONS,
    DEFAULT_EFFECTS,
    REMINDERS,
    ActionEffects,
    action_of_method,
    collect,
    full_recovery_probabilities,
)
from loan_recovery.generate.rules import BASE, Columns, Population, draw_loans

NEW_LOANS_STREAM = 2
"""Spawn-key tag of the streams new loans are drawn from (1 marks open loans in a fresh book).

New loans draw from ``SeedSequence(seed, spawn_key=(chunk, 2, first_number))``:
a fresh book's streams are ``(chunk,)`` and ``(chunk, 1)``, so next month's
new loans are never copies of the first month's, even with the same seed.
"""

DECISION_LOG = "decision_log"
LOG_COLUMNS = {
    "as_of_date": "DATE",
    "build_id": None,
    "loan_id": "VARCHAR",
    "cell": None,
    "assigned_strategy_code": "VARCHAR",
}
"""The decision log's columns this reads, with the type each must have (None: any)."""


class UnusableInputError(ValueError):
    """A previous book or served file next month cannot be built from (exit 3)."""


# --- reading the previous book ---


def _book_schema() -> pa.Schema:
    """The schema the generator writes: the previous book is read back into exactly it."""
    return next(loan_book_chunks(0)).schema


def _read_file(path: Path, schema: pa.Schema) -> pa.Table:
    """The file's rows with the generator's column types, refusing what cannot be read as such."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UnusableInputError(f"--next-from {path}: a loan book ends in .csv or .parquet")
    if not path.is_file():
        raise UnusableInputError(f"--next-from {path}: no such file")
    try:
        if suffix == ".parquet":
            table = pq.read_table(path)
        else:
            convert = pa_csv.ConvertOptions(
                column_types={f.name: f.type for f in schema},
                null_values=[""],
                strings_can_be_null=True,
            )
            table = pa_csv.read_csv(path, convert_options=convert)
    except (pa.ArrowException, OSError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnusableInputError(
            f"--next-from {path} is not a readable loan book: {reason}"
        ) from None
    names = table.column_names
    if sorted(names) != sorted(schema.names):
        missing = sorted(set(schema.names) - set(names))
        extra = sorted(set(names) - set(schema.names)) or sorted(
            {n for n in names if names.count(n) > 1}
        )
        raise UnusableInputError(
            f"--next-from {path} is not a loan book: missing columns {missing}, "
            f"unexpected or repeated {extra}"
        )
    try:
        return table.select(schema.names).cast(schema)
    except (pa.ArrowException, ValueError) as error:
        raise UnusableInputError(
            f"--next-from {path}: a column has the wrong type ({str(error).splitlines()[0]})"
        ) from None


def _first_row(mask: pa.Array | pa.ChunkedArray) -> int:
    """The 1-based number of the first data row where ``mask`` is true."""
    return int(np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[0]) + 1


def _check_book(table: pa.Table, path: Path) -> None:
    """Refuse a book the lender cannot simulate, naming the first bad row and column.

    Every pre-collection fact must be present (the latent and the effects
    use them), incomes and balances positive (they divide), loan ids present
    and unique (they key the noise), categories among the configured values.
    """
    post = set(post_outcome_columns())
    ids = table.column("Loan_ID")
    if ids.null_count:
        raise UnusableInputError(
            f"--next-from {path}: row {_first_row(pc.is_null(ids))} has no Loan_ID"
        )
    if pc.count_distinct(ids).as_py() != len(ids):
        raise UnusableInputError(
            f"--next-from {path}: Loan_ID repeats; a loan book has one row per loan"
        )
    categories = category_values()
    for column in table.column_names:
        values = table.column(column)
        name = snake(column)
        if name not in post and name != "borrower_id" and values.null_count:
            row = _first_row(pc.is_null(values))
            raise UnusableInputError(f"--next-from {path}: row {row} has no {column}")
        if name in categories:
            known = pc.is_in(values, pa.array(categories[name]))
            unknown = pc.and_(pc.is_valid(values), pc.invert(known))
            if pc.any(unknown).as_py():
                row = _first_row(unknown)
                value = values[row - 1].as_py()
                raise UnusableInputError(
                    f"--next-from {path}: row {row} has {column} {value!r}, not one of "
                    f"{categories[name]}"
                )
    for column in ("Monthly_Income", "Outstanding_Loan_Amount"):
        not_positive = pc.less_equal(table.column(column), 0)
        if pc.any(not_positive).as_py():
            raise UnusableInputError(
                f"--next-from {path}: row {_first_row(not_positive)} has {column} <= 0"
            )


def read_previous_book(path: Path) -> pa.Table:
    """The previous month's book, checked, with the generator's column types and order."""
    table = _read_file(Path(path), _book_schema())
    _check_book(table, Path(path))
    return table


def book_facts(table: pa.Table) -> Columns:
    """The pre-collection columns as the lender reads them: numbers, and categories as codes."""
    post = set(post_outcome_columns())
    categories = category_values()
    facts: Columns = {}
    for column in table.column_names:
        name = snake(column)
        if name in post or name in ("loan_id", "borrower_id"):
            continue
        values = table.column(column)
        if name in categories:
            codes = pc.index_in(values, value_set=pa.array(categories[name]))
            facts[name] = codes.to_numpy(zero_copy_only=False).astype(np.int8)
        elif pa.types.is_integer(values.type):
            facts[name] = values.to_numpy().astype(np.int64)
        else:
            facts[name] = values.to_numpy().astype(np.float64)
    return facts


# --- reading the served file's decision log ---


@dataclass(frozen=True)
class LoggedActions:
    """The newest cycle's assigned action per loan (empty when the log is empty)."""

    loan_ids: pa.Array
    actions: np.ndarray
    as_of_date: date | None


def _connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file read-only, unable to touch other files or load extensions."""
    if not path.exists():
        raise UnusableInputError(f"--decisions {path}: no such file")
    if not path.is_file():
        raise UnusableInputError(f"--decisions {path}: not a file")
    if not is_duckdb_file(path):
        raise UnusableInputError(f"--decisions {path} is not a DuckDB file")
    config: dict[str, str | bool | int | float | list[str]] = {
        "enable_external_access": False,
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
    }
    try:
        return duckdb.connect(str(path), read_only=True, config=config)
    except duckdb.Error as error:
        reason = str(error).strip().splitlines()[0]
        raise UnusableInputError(
            f"--decisions {path} cannot be opened read-only: {reason}"
        ) from None


def _check_log_shape(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a served file without a ``main.decision_log`` table of the expected columns."""
    kind = connection.execute(
        "select table_type from information_schema.tables "
        "where table_catalog = current_database() and table_schema = 'main' and table_name = ?",
        [DECISION_LOG],
    ).fetchall()
    if not kind:
        raise UnusableInputError(f"--decisions {path} has no table main.{DECISION_LOG}")
    if kind[0][0] != "BASE TABLE":
        raise UnusableInputError(
            f"--decisions {path}: main.{DECISION_LOG} is a {kind[0][0]}, not a table"
        )
    types = dict(
        connection.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = 'main' "
            "and table_name = ?",
            [DECISION_LOG],
        ).fetchall()
    )
    for column, expected in LOG_COLUMNS.items():
        if column not in types:
            raise UnusableInputError(
                f"--decisions {path}: main.{DECISION_LOG} has no column {column}"
            )
        if expected is not None and types[column] != expected:
            raise UnusableInputError(
                f"--decisions {path}: main.{DECISION_LOG}.{column} is {types[column]}, "
                f"not {expected}"
            )


def read_logged_actions(path: Path) -> LoggedActions:
    """The action the newest cycle of the served ``decision_log`` assigned each loan.

    Refuses a log that names an unknown action, a loan twice in one cycle,
    or a row without loan or action: such a log is damaged, and guessing
    would resolve loans under actions nobody took.
    """
    path = Path(path)
    connection = _connect_read_only(path)
    try:
        _check_log_shape(connection, path)
        undated, as_of = connection.execute(
            "select count(*) filter (where as_of_date is null), max(as_of_date) "
            "from main.decision_log"
        ).fetchall()[0]
        if undated:
            raise UnusableInputError(
                f"--decisions {path}: main.decision_log has rows without as_of_date ({undated})"
            )
        rows = connection.sql(
            "select loan_id, assigned_strategy_code from main.decision_log "
            "where as_of_date = ? order by loan_id",
            params=[as_of],
        ).to_arrow_table()
        if rows is None:
            raise duckdb.Error("no result")
    except duckdb.Error as error:
        reason = str(error).strip().splitlines()[0]
        raise UnusableInputError(
            f"--decisions {path}: cannot read main.decision_log: {reason}"
        ) from None
    finally:
        connection.close()
    where = f"--decisions {path}: main.decision_log cycle {as_of}"
    loan_ids, assigned = rows.column("loan_id"), rows.column("assigned_strategy_code")
    if loan_ids.null_count or assigned.null_count:
        raise UnusableInputError(f"{where} has a row without loan_id or assigned_strategy_code")
    if pc.count_distinct(loan_ids).as_py() != len(loan_ids):
        raise UnusableInputError(f"{where} names a loan more than once")
    codes = pc.index_in(assigned, value_set=pa.array(ACTIONS))
    if codes.null_count:
        value = assigned[_first_row(codes.is_null()) - 1].as_py()
        raise UnusableInputError(f"{where} assigns {value!r}, not one of {list(ACTIONS)}")
    return LoggedActions(
        loan_ids=loan_ids.combine_chunks().cast(pa.string()),
        actions=codes.to_numpy().astype(np.int8),
        as_of_date=as_of,
    )


# --- assembling next month ---


@dataclass(frozen=True)
class NextMonth:
    """What next month's book holds, for the command line to report."""

    kept_resolved: int
    resolved_now: dict[str, int]
    unlogged: int
    logged_not_open: int
    new_loans: int
    new_open: int
    as_of_date: date | None = None
    first_new_loan: str | None = None


def _next_number(ids: pa.ChunkedArray, prefix: str) -> int:
    """One more than the largest ``{prefix}N`` among the ids (1 when none has that form)."""
    pattern = f"^{re.escape(prefix)}(?P<n>[0-9]{{1,18}})$"
    numbers = pc.struct_field(pc.extract_regex(ids, pattern), "n")
    largest = pc.max(pc.cast(numbers, pa.int64())).as_py()
    return int(largest) + 1 if largest is not None else 1


def _assigned_actions(open_ids: pa.Array, logged: LoggedActions) -> tuple[np.ndarray, np.ndarray]:
    """Each open loan's logged action (reminders where none), and whether one was logged."""
    position = pc.index_in(open_ids, value_set=logged.loan_ids)
    found = position.is_valid().to_numpy(zero_copy_only=False)
    index = pc.fill_null(position, 0).to_numpy(zero_copy_only=False)
    chosen = logged.actions[index] if len(logged.actions) else np.full(len(index), REMINDERS)
    actions = np.where(found, chosen, REMINDERS)
    return actions.astype(np.int8), found


def _resolve_previous(
    previous: pa.Table, logged: LoggedActions, seed: int, effects: ActionEffects
) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
    """The previous book with its open loans resolved, its truth rows, and what each open loan got.

    Resolved rows keep every value. An open row's post-collection columns
    come from collecting it under its logged action (rules 10, 11, 15).
    """
    facts = book_facts(previous)
    ids = previous.column("Loan_ID").combine_chunks()
    is_open = previous.column("Recovery_Status").is_null().to_numpy(zero_copy_only=False)
    actions, found = _assigned_actions(ids, logged)
    actions = np.where(is_open, actions, REMINDERS).astype(np.int8)
    collected = collect(facts, ids, actions, seed, effects)
    columns = {}
    mask = pa.array(is_open)
    for column in previous.column_names:
        name = snake(column)
        if name in collected:
            fresh = _to_arrow(column, collected[name]).cast(previous.schema.field(column).type)
            columns[column] = pc.if_else(mask, fresh, previous.column(column).combine_chunks())
        else:
            columns[column] = previous.column(column)
    book = pa.table(columns, schema=previous.schema)
    method = pc.index_in(
        book.column("Collection_Method"), value_set=pa.array(category_values()["collection_method"])
    )
    method_codes = pc.fill_null(method, -1).to_numpy(zero_copy_only=False).astype(np.int8)
    taken = np.where(is_open, actions, action_of_method(method_codes)).astype(np.int8)
    truth = truth_table(
        ids,
        book.column("Recovery_Status"),
        full_recovery_probabilities(facts, effects),
        taken,
    )
    return book, truth, actions[is_open], found[is_open]


def _new_loan_chunks(
    first_number: int,
    first_borrower: int,
    rows: int,
    seed: int,
    open_share: float,
    population: Population,
    effects: ActionEffects,
    chunk_rows: int,
) -> Iterator[tuple[pa.Table, pa.Table]]:
    """New loans numbered from ``first_number``, from streams of their own.

    See :data:`NEW_LOANS_STREAM` for why they never copy an earlier month's loans.
    """
    for index in range(math.ceil(rows / chunk_rows)):
        n = min(chunk_rows, rows - index * chunk_rows)
        offset = index * chunk_rows
        facts = draw_loans(_rng(seed, index, NEW_LOANS_STREAM, first_number), n, population)
        is_open = _rng(seed, index, NEW_LOANS_STREAM, first_number, 1).random(n) < open_share
        ids = {
            "borrower_id": _ids("BRW_", first_borrower + offset, n),
            "loan_id": _ids("LN_", first_number + offset, n),
        }
        collected, probabilities, taken = resolve_fresh_loans(
            facts, ids["loan_id"], is_open, seed, effects
        )
        book = book_table(facts, ids, collected, is_open)
        status = _to_arrow("recovery_status", collected["recovery_status"])
        yield book, truth_table(ids["loan_id"], status, probabilities, taken)


def write_next_month(
    previous_path: Path,
    decisions_path: Path,
    out: Path,
    truth_out: Path | None = None,
    *,
    seed: int = 42,
    new_rows: int | None = None,
    open_share: float = 1.0,
    population: Population = BASE,
    effects: ActionEffects = DEFAULT_EFFECTS,
    chunk_rows: int = CHUNK_ROWS,
) -> NextMonth:
    """Write next month's book (and its truth file) from last month's and the served decisions.

    ``new_rows`` new loans are added (default: as many as were open), of
    which ``open_share`` are open; the rest resolve under the old policy like
    a fresh book's. Both inputs are read in full and checked before anything
    is written; the outputs are written like a fresh book's (temporary names,
    renamed when complete). With the seed of the previous book, a loan left
    to reminders gets exactly the outcome its truth file gave.
    """
    if not 0.0 <= open_share <= 1.0:
        raise ValueError(f"open share must be between 0 and 1, got {open_share}")
    previous = read_previous_book(Path(previous_path))
    logged = read_logged_actions(Path(decisions_path))
    book, truth, open_actions, found = _resolve_previous(previous, logged, seed, effects)
    open_ids = previous.filter(previous.column("Recovery_Status").is_null()).column("Loan_ID")
    logged_not_open = len(logged.loan_ids) - int(
        pc.sum(pc.is_in(logged.loan_ids, value_set=open_ids.combine_chunks())).as_py() or 0
    )
    new_count = len(open_actions) if new_rows is None else new_rows
    check_rows(new_count)
    first_number = _next_number(previous.column("Loan_ID"), "LN_")
    first_borrower = _next_number(previous.column("Borrower_ID").drop_null(), "BRW_")

    new_open = [0]

    def pairs() -> Iterator[tuple[pa.Table, pa.Table]]:
        for start in range(0, max(len(book), 1), chunk_rows):
            yield book.slice(start, chunk_rows), truth.slice(start, chunk_rows)
        for new_book, new_truth in _new_loan_chunks(
            first_number,
            first_borrower,
            new_count,
            seed,
            open_share,
            population,
            effects,
            chunk_rows,
        ):
            new_open[0] += new_book.column("Recovery_Status").null_count
            yield new_book, new_truth

    write_book_and_truth(pairs(), Path(out), Path(truth_out) if truth_out else None)
    counts = np.bincount(open_actions, minlength=len(ACTIONS))
    return NextMonth(
        kept_resolved=len(book) - len(open_actions),
        resolved_now={action: int(count) for action, count in zip(ACTIONS, counts, strict=True)},
        unlogged=int((~found).sum()),
        logged_not_open=logged_not_open,
        new_loans=new_count,
        new_open=new_open[0],
        as_of_date=logged.as_of_date,
        first_new_loan=f"LN_{first_number}" if new_count else None,
    )
