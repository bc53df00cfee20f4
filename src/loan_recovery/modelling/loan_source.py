"""A model's input read where it lives: checked and sampled in DuckDB, scored in Arrow batches.

The Python models used to pull their whole input into one Arrow table. At
10M loans three of them did so at once, about 4 GB beside DuckDB's own
memory, and at 30M the build peaked at 16.5 GB. A model needs only two
things in Python: a training sample (at most ``sample_rows`` loans) and each
loan once, to score it. So a :class:`LoanSource`

* checks the input in one SQL aggregate: missing columns, non-numeric
  features, null or non-finite values, null ids and the label, with exact
  counts, and ``build --empty``'s 0 rows said as such. Each scan of a
  joined input repeats the join (about 0.9 s at 10M loans), so a model's
  checks share one;
* draws the training sample in SQL: the ``n`` loans whose ids hash lowest
  under the random state (DuckDB's ``hash``), ordered by id. The sample
  depends on the ids alone, never on row order, and it is the set the
  in-memory draw of earlier versions chose, so models keep their versions;
* reads every loan in Arrow batches of ``BATCH_ROWS``. A model returns its
  output as a ``pyarrow.RecordBatchReader`` (:func:`stream`) that dbt-duckdb
  writes straight into the table, so Python holds a few batches at a time
  whatever the book's size.

dbt-duckdb writes the stream with ``create table as`` on the model's own
cursor, and DuckDB forbids code running inside a query to use that query's
connection; the batches are therefore read on a new cursor of the session.

Column names reach SQL only once they are found among the input's own
columns, and always as quoted identifiers; values (the sample size, the
hash key) are bound parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from loan_recovery.modelling.model_input import KEY, bad_value_error

__all__ = ["BATCH_ROWS", "LoanSource", "numbers", "quoted", "stream"]

BATCH_ROWS = 2 * 122_880
"""Rows per batch read into Python: two of DuckDB's row groups, ~25 MB of 12 numeric columns."""

_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "BOOLEAN",
)
_FLOATING = ("FLOAT", "DOUBLE", "DECIMAL")


def quoted(name: str) -> str:
    """``name`` as a DuckDB quoted identifier: data, never code, whatever it holds."""
    return '"' + name.replace('"', '""') + '"'


def _kind(duckdb_type: str) -> str:
    return duckdb_type.split("(", 1)[0].upper()


@dataclass(frozen=True)
class LoanSource:
    """A model's input as a query on a DuckDB connection (see the module docstring)."""

    connection: duckdb.DuckDBPyConnection
    """Where checks and the sample run: the model's session, or a private in-memory database."""
    query: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    """DuckDB type names, one per column."""
    own_connection: bool
    """True for an in-memory input: its private database is read directly, not via a cursor."""

    @classmethod
    def of(
        cls,
        data: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
        session: duckdb.DuckDBPyConnection | None = None,
    ) -> LoanSource:
        """A source over a dbt relation (with its ``session``) or an in-memory frame."""
        if isinstance(data, duckdb.DuckDBPyRelation):
            if session is None:
                raise TypeError("a DuckDB relation is read with its session: pass session=")
            return cls(
                session,
                data.sql_query(),
                tuple(data.columns),
                tuple(str(kind) for kind in data.types),
                own_connection=False,
            )
        if not isinstance(data, pd.DataFrame | pa.Table):
            raise TypeError(
                "expected a pandas DataFrame, pyarrow Table or DuckDB relation, "
                f"got {type(data).__name__}"
            )
        if isinstance(data, pd.DataFrame) and data.columns.duplicated().any():
            repeated = sorted(set(map(str, data.columns[data.columns.duplicated()])))
            raise ValueError(f"the input has more than one column named {', '.join(repeated)}")
        connection = duckdb.connect(config={"preserve_insertion_order": True})
        connection.register("loans", data)
        relation = connection.query("select * from loans")
        return cls(
            connection,
            "select * from loans",
            tuple(relation.columns),
            tuple(str(kind) for kind in relation.types),
            own_connection=True,
        )

    # ------------------------------------------------------------------ checks
    def require(self, names: Sequence[str]) -> None:
        """Fail with one line naming every missing column, and the ones there are."""
        missing = [name for name in names if name not in self.columns]
        if missing:
            raise ValueError(
                f"input is missing column(s) {', '.join(missing)}; "
                f"it has: {', '.join(self.columns)}"
            )

    def type_of(self, name: str) -> str:
        return _kind(self.types[self.columns.index(name)])

    def counts(self, conditions: Mapping[str, str]) -> dict[str, int]:
        """``count(*)`` as ``rows`` and one filtered count per condition, in one scan.

        Conditions are SQL built by this package from :func:`quoted` names.
        """
        filters = [f"count(*) filter (where {condition})" for condition in conditions.values()]
        (row,) = self.connection.sql(
            f"select {', '.join(['count(*)', *filters])} from ({self.query}) as loans"
        ).fetchall()
        return dict(zip(["rows", *conditions], (int(value) for value in row), strict=True))

    def distinct(self, names: Sequence[str]) -> tuple[int, dict[str, set[object]]]:
        """The number of rows and each column's distinct values, NULL among them, in one scan."""
        self.require(names)
        values = [f"list(distinct {quoted(name)})" for name in names]
        (row,) = self.connection.sql(
            f"select {', '.join(['count(*)', *values])} from ({self.query}) as loans"
        ).fetchall()
        return int(row[0]), {name: set(found) for name, found in zip(names, row[1:], strict=True)}

    def check(
        self,
        features: Sequence[str],
        required: Sequence[str],
        action: str,
        *,
        label: str | None = None,
        purpose: str = "",
        counted: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Check key, features, required columns and the ``label``, in one scan; return the counts.

        The same rules and messages as :func:`~.model_input.read_loan_columns`,
        on the whole input rather than on one batch. A ``label`` is boolean
        or 0/1, never null, and holds both classes (``purpose`` says why it
        must). ``counted`` names further conditions (SQL built by this
        package from :func:`quoted` names) to count in the same scan; the
        result holds them beside ``rows``.
        """
        self.require([KEY, *features, *required, *([label] if label else [])])
        for name in features:
            if self.type_of(name) not in _NUMERIC:
                raise ValueError(
                    f"feature '{name}' must be numeric, got DuckDB type {self.type_of(name)}"
                )
        conditions = {"null_ids": f"{quoted(KEY)} is null"}
        for index, name in enumerate(features):
            bad = f"{quoted(name)} is null"
            if self.type_of(name) in _FLOATING:
                bad += f" or not isfinite({quoted(name)}::double)"
            conditions[f"bad_{index}"] = bad
        if label:
            conditions.update(self._label_conditions(label))
        clash = sorted(set(counted or {}) & {"rows", *conditions})
        if clash:
            raise ValueError(f"counted names {clash} are the checks' own; rename them")
        conditions.update(counted or {})
        found = self.counts(conditions)
        if found["rows"] == 0:
            raise ValueError(f"no loans to {action}: the input has 0 rows")
        if found["null_ids"]:
            raise ValueError(
                f"'{KEY}' has {found['null_ids']} null value(s); every loan needs its key"
            )
        for index, name in enumerate(features):
            if found[f"bad_{index}"]:
                raise bad_value_error(name, found[f"bad_{index}"], found["rows"])
        if label:
            _judge_label(found, label, purpose)
        return found

    def _label_conditions(self, name: str) -> dict[str, str]:
        kind = self.type_of(name)
        value = quoted(name)
        if kind == "BOOLEAN":
            return {"label_nulls": f"{value} is null", "label_positives": value}
        if kind in _NUMERIC and kind not in _FLOATING:
            return {
                "label_nulls": f"{value} is null",
                "label_positives": f"{value} = 1",
                "label_other": f"{value} not in (0, 1)",
            }
        raise ValueError(f"label '{name}' must be boolean or 0/1, got DuckDB type {kind}")

    def keyed(self, schema: pa.Schema) -> pa.Schema:
        """An output ``schema`` whose ``loan_id`` has the input's Arrow type."""
        empty = self.connection.query(self.query).select(quoted(KEY)).limit(0).to_arrow_table()
        return schema.set(schema.get_field_index(KEY), empty.schema.field(KEY))

    # ------------------------------------------------------------------ reading
    def sample(
        self, columns: Sequence[str], rows: int, random_state: int, where: str | None = None
    ) -> pa.Table:
        """The ``rows`` loans (of those ``where`` holds) whose ids hash lowest, ordered by id.

        Every loan when there are no more than ``rows``. Ties in the 64-bit
        hash (practically never) are broken by the id.
        """
        self.require(columns)
        key = quoted(KEY)
        selected = ", ".join(quoted(name) for name in columns)
        return self.connection.sql(
            f"select * from (select {selected} from ({self.query}) as loans "
            f"{'where ' + where if where else ''} "
            f"order by hash({key}::varchar, $salt::ubigint), {key} limit $rows) "
            f"order by {key}",
            params={"salt": random_state, "rows": rows},
        ).to_arrow_table()

    def batches(self, columns: Sequence[str]) -> Iterator[pa.Table]:
        """Every row's ``columns``, ``BATCH_ROWS`` at a time, each batch as a small table."""
        self.require(columns)
        reader_connection = self.connection if self.own_connection else self.connection.cursor()
        try:
            relation = reader_connection.query(self.query).select(
                ", ".join(quoted(name) for name in columns)
            )
            # DuckDB hands out at most a row group (122,880 rows) per batch
            # whatever is asked; gathering them to BATCH_ROWS halves the
            # per-batch work in Python and gives each core a scoring block
            # (forest.chunks).
            gathered: list[pa.RecordBatch] = []
            rows = 0
            for batch in relation.to_arrow_reader(BATCH_ROWS):
                gathered.append(batch)
                rows += batch.num_rows
                if rows >= BATCH_ROWS:
                    yield pa.Table.from_batches(gathered).combine_chunks()
                    gathered, rows = [], 0
            if rows:
                yield pa.Table.from_batches(gathered).combine_chunks()
        finally:
            if not self.own_connection:
                reader_connection.close()


def _judge_label(found: Mapping[str, int], name: str, purpose: str) -> None:
    """Fail on a null, non-0/1 or one-class label (counts from ``LoanSource._label_conditions``)."""
    if found["label_nulls"]:
        raise ValueError(
            f"label '{name}' has {found['label_nulls']} null value(s); every row needs one"
        )
    if found.get("label_other"):
        raise ValueError(f"label '{name}' must be boolean or 0/1")
    if found["label_positives"] in (0, found["rows"]):
        only = "true" if found["label_positives"] else "false"
        raise ValueError(
            f"label '{name}' has one class only (all {found['rows']} rows are {only}); {purpose}"
        )


def numbers(values: NDArray[np.floating]) -> pa.Array:
    """A float64 output column, NaN written as NULL (no score is NULL, never NaN, in SQL)."""
    return pa.array(values, pa.float64(), from_pandas=True)


def stream(schema: pa.Schema, tables: Iterator[pa.Table]) -> pa.RecordBatchReader:
    """Output tables as one reader with ``schema``: what a Python model returns to dbt.

    Nothing is read until the reader is, so the model's work happens while
    dbt-duckdb writes the table, a batch at a time.
    """

    def batches() -> Iterator[pa.RecordBatch]:
        for table in tables:
            yield from table.cast(schema).to_batches()

    return pa.RecordBatchReader.from_batches(schema, batches())
