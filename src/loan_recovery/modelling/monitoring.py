"""Population bins for drift monitoring: the training population's, and this book's.

A model scores a new book well only while the book looks like the loans it
learned from. The population stability index (PSI) measures that per
variable: bin the training population, then compare the share of the new
book in each bin with the training share. The PSI itself, and its classes,
are SQL (model ``model_monitoring``); this module only draws the bins,
because the bins must travel with the model: a frozen model's book is
compared with the bins stored in its artifact, never with bins redrawn on
the new book (which would hide the shift).

* The training population is the outcome model's training loans (the
  resolved loans it was fitted on), or every loan when the outcome model
  did not train.
* A number (feature or score) gets ``N_BINS`` quantile bins of the training
  population: edges at its deciles, duplicates dropped (a feature that is 0
  for most loans gets fewer bins, not empty ones). A loan at an edge falls in
  the lower bin.
* A category gets one bin per known value and one for anything else.
* Scores are compared as the model produces them for loans it never saw:
  the training loans' scores are out of bag, like a new loan's.
* The open loans (the ones the strategy decides for) are also counted on
  their own. On a training build the whole book is mostly the training
  population, so its PSI is near 0 by construction; the open loans' PSI is
  the signal there: open loans whose outcome is not recorded yet should look
  like the resolved loans the model learned from. A feature that a recorded
  outcome reached (a leak too weak for the sentinel) or a score pushed by
  one is where they part (docs block population_stability).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from loan_recovery.modelling.loan_source import LoanSource, quoted
from loan_recovery.modelling.model_input import KEY, column_series
from loan_recovery.modelling.model_store import Component, Fitted, Kept

__all__ = ["COMPONENT", "N_BINS", "Variable", "monitor_population", "population_bins"]

COMPONENT = "monitoring"
"""The training population's bins in the model store and the registry."""
N_BINS = 10
OTHER = "other"
"""The bin of a category value the model does not know."""
POPULATION = "is_outcome_training_row"
"""The column that marks the training population."""
RESOLVED = "is_resolved"
"""The column that tells open loans (false) from resolved ones."""


@dataclass(frozen=True)
class Variable:
    """One monitored variable: its bins over the training population and their shares."""

    name: str
    kind: str
    """'feature', 'category' or 'score'."""
    edges: tuple[float, ...]
    """Upper edges of all bins but the last (numbers); empty for a category."""
    levels: tuple[str, ...]
    """Known values (categories); the last bin is everything else."""
    shares: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "levels": list(self.levels),
            "shares": list(self.shares),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Variable:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            edges=tuple(float(edge) for edge in data["edges"]),
            levels=tuple(str(level) for level in data["levels"]),
            shares=tuple(float(share) for share in data["shares"]),
        )


def _number_counts(
    values: NDArray[np.float64], edges: Sequence[float] | NDArray[np.float64]
) -> NDArray[np.int64]:
    """Finite values per bin: bin 0 is <= edges[0], bin k is (edges[k-1], edges[k]], the last > all.

    Counted as "at most each edge" and differenced: a few vectorised passes
    over the column instead of a binary search per value (44 ms to 10 ms a
    variable at 1M loans; 34 variables).
    """
    finite = values[np.isfinite(values)]
    at_most = [int(np.count_nonzero(finite <= edge)) for edge in edges]
    return np.diff(np.asarray([0, *at_most, finite.size], dtype=np.int64)).astype(np.int64)


def _category_codes(table: pa.Table, name: str, levels: Sequence[str]) -> NDArray[np.int64]:
    column = pc.cast(table.column(name), pa.string())
    codes = pc.index_in(column, value_set=pa.array(list(levels), pa.string()))
    return pc.fill_null(codes, len(levels)).to_numpy(zero_copy_only=False).astype(np.int64)


def _shares(counts: NDArray[np.int64]) -> tuple[float, ...]:
    total = int(counts.sum())
    return tuple(float(count) / total for count in counts) if total else tuple(0.0 for _ in counts)


def _reference(
    table: pa.Table,
    numeric: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    scores: Sequence[str],
) -> list[Variable]:
    variables = []
    for kind, names in (("feature", numeric), ("score", scores)):
        for name in names:
            values = column_series(table, name).to_numpy(dtype=np.float64, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if finite.size == 0:
                continue  # a score the build did not produce (the outcome model fell back)
            edges = np.unique(np.quantile(finite, np.arange(1, N_BINS) / N_BINS))
            counts = _number_counts(finite, edges)
            variables.append(Variable(name, kind, tuple(map(float, edges)), (), _shares(counts)))
    for name, levels in categories.items():
        codes = _category_codes(table, name, levels)
        counts = np.bincount(codes, minlength=len(levels) + 1)
        variables.append(Variable(name, "category", (), tuple(levels), _shares(counts)))
    return variables


def _labels(variable: Variable) -> tuple[list[str], list[float | None], list[float | None]]:
    if variable.kind == "category":
        labels = [*variable.levels, OTHER]
        return labels, [None] * len(labels), [None] * len(labels)
    edges = list(variable.edges)
    lower: list[float | None] = [None, *edges]
    upper: list[float | None] = [*edges, None]
    labels = [
        f"<= {high:g}"
        if low is None
        else (f"> {low:g}" if high is None else f"({low:g}, {high:g}]")
        for low, high in zip(lower, upper, strict=True)
    ]
    return labels, lower, upper


def _counts(table: pa.Table, variable: Variable) -> NDArray[np.int64]:
    """Loans of ``table`` in each of ``variable``'s bins."""
    if variable.kind == "category":
        codes = _category_codes(table, variable.name, variable.levels)
        return np.bincount(codes, minlength=len(variable.levels) + 1)
    values = column_series(table, variable.name).to_numpy(dtype=np.float64, na_value=np.nan)
    return _number_counts(values, variable.edges)


def _open_loans(table: pa.Table) -> pa.Table:
    """The batch's open loans: ``is_resolved`` false (a null counts as resolved)."""
    resolved = pc.fill_null(table.column(RESOLVED), True)
    return table.filter(pc.invert(resolved))


def population_bins(tables: Iterable[pa.Table], variables: Sequence[Variable]) -> pd.DataFrame:
    """One row per variable and bin: the training share, this book's and its open loans'.

    ``tables`` are the book's batches: counts add up over them, so the book
    is never held whole. Batches with an ``is_resolved`` column also give
    the open loans' counts and shares (null shares when the book has none).
    """
    counted = [np.zeros(len(variable.shares), dtype=np.int64) for variable in variables]
    opened = [np.zeros(len(variable.shares), dtype=np.int64) for variable in variables]
    for table in tables:
        open_table = _open_loans(table) if RESOLVED in table.column_names else None
        for total, open_total, variable in zip(counted, opened, variables, strict=True):
            total += _counts(table, variable)
            if open_table is not None:
                open_total += _counts(open_table, variable)
    rows: dict[str, list[Any]] = {
        "variable": [],
        "variable_kind": [],
        "bin_index": [],
        "bin_label": [],
        "lower_edge": [],
        "upper_edge": [],
        "expected_share": [],
        "actual_share": [],
        "actual_loans": [],
        "open_share": [],
        "open_loans": [],
    }
    for variable, counts, open_counts in zip(variables, counted, opened, strict=True):
        labels, lower, upper = _labels(variable)
        actual = _shares(counts)
        open_shares: Sequence[float | None] = (
            _shares(open_counts) if open_counts.sum() else [None] * len(open_counts)
        )
        for index, label in enumerate(labels):
            rows["variable"].append(variable.name)
            rows["variable_kind"].append(variable.kind)
            rows["bin_index"].append(index)
            rows["bin_label"].append(label)
            rows["lower_edge"].append(lower[index])
            rows["upper_edge"].append(upper[index])
            rows["expected_share"].append(variable.shares[index])
            rows["actual_share"].append(actual[index])
            rows["actual_loans"].append(int(counts[index]))
            rows["open_share"].append(open_shares[index])
            rows["open_loans"].append(int(open_counts[index]))
    frame = pd.DataFrame(rows)
    for column in ("lower_edge", "upper_edge", "expected_share", "actual_share", "open_share"):
        frame[column] = frame[column].astype("float64")
    frame["bin_index"] = frame["bin_index"].astype("int64")
    frame["actual_loans"] = frame["actual_loans"].astype("int64")
    frame["open_loans"] = frame["open_loans"].astype("int64")
    return frame


def _component(variables: Sequence[Variable], population_rows: int) -> Kept:
    described = [variable.to_json() for variable in variables]
    version = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]
    meta = {"version": version, "population_rows": population_rows, "variables": described}
    return COMPONENT, meta, {}, None


def monitor_population(
    loans: pa.Table | pd.DataFrame | duckdb.DuckDBPyRelation,
    numeric: Sequence[str],
    *,
    categories: Mapping[str, Sequence[str]],
    scores: Sequence[str],
    frozen: Component | None = None,
    session: duckdb.DuckDBPyConnection | None = None,
) -> Fitted:
    """This book's share of loans in each training-population bin, for every model variable.

    ``loans`` (a dbt relation with its ``session``, or a frame) holds every
    scored loan: loan_id, the ``numeric`` features, the ``categories``
    columns, the ``scores`` and ``is_outcome_training_row``. Without
    ``frozen`` the bins are drawn on this build's training population (read
    whole: at most the outcome model's sample, or every loan when it did not
    train) and kept in the model store (the registry copies them); with
    ``frozen`` (an artifact's monitoring component) the stored bins are used.
    The book's own counts are added up a batch at a time.
    """
    source = LoanSource.of(loans, session)
    columns = [*numeric, *categories, *scores]
    source.require([KEY, POPULATION, *columns])
    counted_columns = [*columns, RESOLVED] if RESOLVED in source.columns else columns
    population = f"coalesce({quoted(POPULATION)}, false)"
    found = source.counts({"population": population})
    if found["rows"] == 0:
        raise ValueError("no loans to monitor: the input has 0 rows")
    component: Kept
    if frozen is not None:
        variables = [Variable.from_json(data) for data in frozen.meta["variables"]]
        component = (COMPONENT, frozen.meta, {}, None)
    else:
        where = population if found["population"] else None
        rows = found["population"] or found["rows"]
        training = source.sample([KEY, *columns], rows, 0, where)
        variables = _reference(training, numeric, categories, scores)
        component = _component(variables, rows)
    bins = population_bins(source.batches(counted_columns), variables)
    # The bins' content hash, one of the four a registry id is made of (int_model_version).
    bins["population_bins_hash"] = str(component[1]["version"])
    return Fitted(bins, (component,))
