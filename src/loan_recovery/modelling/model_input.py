"""Model input shared by segmentation and scoring: validated, chunked, leak-checked.

Every model takes loan_id plus numeric features (and category levels) as an
Arrow table or a DataFrame: a training sample, or one batch of the book
(:mod:`loan_recovery.modelling.loan_source` reads both from DuckDB). Each must refuse
a feature recorded after the outcome or a protected attribute, must say "no
loans" plainly for dbt's 0-row ``build --empty`` frames, and reads its
features without copying them. One module does that for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

__all__ = [
    "KEY",
    "OUTCOME_LABEL",
    "RESOLVED",
    "LoanColumns",
    "bad_value_error",
    "check_count",
    "check_features",
    "column_series",
    "flags",
    "indicator_arrays",
    "indicator_name",
    "model_features",
    "read_loan_columns",
]

KEY = "loan_id"
RESOLVED = "is_resolved"
"""True when the loan's outcome is known (staging: Recovery_Status not empty)."""
OUTCOME_LABEL = "is_not_fully_recovered"
"""The outcome models learn: Partially Recovered or Written Off; null while a loan is open."""


def _bounds(pieces: Sequence[NDArray[np.generic]]) -> NDArray[np.int64]:
    """Start offsets of consecutive arrays, plus the total length."""
    return np.cumsum([0, *(len(piece) for piece in pieces)], dtype=np.int64)


@dataclass(frozen=True)
class LoanColumns:
    """Validated model input: the loan ids and each feature as numpy chunks.

    A feature is kept as the input holds it: one zero-copy numpy view per
    Arrow chunk (or the pandas column's own array), and rows are only stacked
    into a float matrix a block or a sample at a time. A 10M-row book thus
    never needs a second full-size copy of its features.
    """

    loan_id: pd.Series
    features: tuple[str, ...]
    chunks: tuple[tuple[NDArray[np.generic], ...], ...]
    """``chunks[j]`` holds feature ``j`` as consecutive 1-D arrays."""

    @property
    def n_rows(self) -> int:
        return len(self.loan_id)

    def block(self, start: int, stop: int, dtype: type[np.floating]) -> NDArray[np.floating]:
        """Rows ``start:stop`` as a C-ordered ``(stop - start, n_features)`` array."""
        out = np.empty((stop - start, len(self.chunks)), dtype=dtype)
        for j, pieces in enumerate(self.chunks):
            bounds = _bounds(pieces)
            i = int(np.searchsorted(bounds, start, side="right")) - 1
            while i < len(pieces) and bounds[i] < stop:
                lo, hi = max(start, int(bounds[i])), min(stop, int(bounds[i + 1]))
                out[lo - start : hi - start, j] = pieces[i][lo - bounds[i] : hi - bounds[i]]
                i += 1
        return out


def check_features(
    features: Sequence[str],
    post_outcome_columns: Sequence[str],
    forbidden: Sequence[str] = (),
    protected_attributes: Sequence[str] = (),
) -> tuple[str, ...]:
    """Reject features that would leak the outcome, use a protected attribute, or make no sense.

    A feature recorded after the recovery outcome (``post_outcome_columns``,
    passed by the caller from the project's reference facts) or the model's
    own label would let the model see the answer; a protected attribute
    (gender) must never decide how a borrower is treated. This checks the
    names; :mod:`loan_recovery.modelling.sentinel` checks the data.
    """
    if isinstance(features, str):
        raise TypeError("features must be a list of column names, not one string")
    names = tuple(features)
    if not names:
        raise ValueError("no features given: pass the cluster_features list")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"features listed more than once: {', '.join(duplicated)}")
    if KEY in names:
        raise ValueError(f"'{KEY}' is the key, not a feature")
    leaks = [name for name in names if name in set(post_outcome_columns)]
    if leaks:
        raise ValueError(
            f"feature(s) {', '.join(leaks)} are recorded after the recovery outcome "
            "(post_outcome_columns) and would leak it into the model; remove them"
        )
    protected = [name for name in names if name in set(protected_attributes)]
    if protected:
        raise ValueError(
            f"feature(s) {', '.join(protected)} are protected attributes "
            "(protected_attributes) and are never model features"
        )
    own = [name for name in names if name in set(forbidden)]
    if own:
        raise ValueError(f"feature(s) {', '.join(own)} are the model's label and would leak it")
    return names


def column_series(data: pd.DataFrame | pa.Table, name: str) -> pd.Series:
    """Column ``name`` of a DataFrame or Arrow table as a Series with a 0..n-1 index."""
    if isinstance(data, pa.Table):
        return data.column(name).to_pandas()
    column = data[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"the input has more than one column named '{name}'")
    return column.reset_index(drop=True)


def bad_value_error(name: str, bad: int, n_rows: int) -> ValueError:
    return ValueError(
        f"feature '{name}' has {bad} null or non-finite value(s) in {n_rows} rows; "
        "impute or exclude them upstream before modelling"
    )


def _count_non_finite(pieces: Sequence[NDArray[np.generic]]) -> int:
    return sum(
        int(np.count_nonzero(~np.isfinite(piece))) for piece in pieces if piece.dtype.kind == "f"
    )


def _arrow_feature(column: pa.ChunkedArray, name: str) -> tuple[NDArray[np.generic], ...]:
    kind = column.type
    if pa.types.is_decimal(kind):
        column = column.cast(pa.float64())
    elif not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        raise ValueError(f"feature '{name}' must be numeric, got Arrow type {kind}")
    if column.null_count:
        nan = sum(
            int(np.count_nonzero(~np.isfinite(chunk.drop_null().to_numpy())))
            for chunk in column.chunks
            if pa.types.is_floating(chunk.type)
        )
        raise bad_value_error(name, column.null_count + nan, len(column))
    pieces = tuple(chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks if len(chunk))
    bad = _count_non_finite(pieces)
    if bad:
        raise bad_value_error(name, bad, len(column))
    return pieces


def _pandas_feature(series: pd.Series, name: str) -> tuple[NDArray[np.generic], ...]:
    dtype = series.dtype
    if not pd.api.types.is_numeric_dtype(dtype):
        raise ValueError(f"feature '{name}' must be numeric, got dtype {dtype}")
    if isinstance(dtype, np.dtype):
        values = series.to_numpy()
    else:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = _count_non_finite([values])
    if bad:
        raise bad_value_error(name, bad, len(values))
    return (values,)


def indicator_name(column: str, value: str) -> str:
    """The feature name of one category level's 0/1 indicator: ``employment_type=Salaried``."""
    return f"{column}={value}"


def indicator_arrays(
    data: pd.DataFrame | pa.Table, column: str, levels: Sequence[str]
) -> list[NDArray[np.bool_]]:
    """One boolean array per known level; an unknown or missing value is false for all (other).

    Compared in Arrow, so a million-row column never becomes Python strings.
    """
    values = (
        data.column(column)
        if isinstance(data, pa.Table)
        else pa.chunked_array([pa.array(column_series(data, column), type=pa.string())])
    )
    return [
        pc.fill_null(pc.equal(values, level), False).to_numpy(zero_copy_only=False)
        for level in levels
    ]


def _indicators(
    data: pd.DataFrame | pa.Table, column: str, levels: Sequence[str]
) -> list[tuple[NDArray[np.generic], ...]]:
    """One 0/1 feature per known level (see :func:`indicator_arrays`), as uint8.

    A byte per loan, not a float: :meth:`LoanColumns.block` and ``take`` cast
    a block at a time, and 11 levels at 10M loans are 110 MB, not 440 MB.
    """
    return [(is_level.view(np.uint8),) for is_level in indicator_arrays(data, column, levels)]


def read_loan_columns(
    data: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    action: str,
    extra_columns: Sequence[str] = (),
    categories: Mapping[str, Sequence[str]] | None = None,
    protected_attributes: Sequence[str] = (),
) -> LoanColumns:
    """Validate ``data`` and return its key and features as numpy chunks.

    ``action`` words the empty-input error ("no loans to <action>"): dbt's
    ``build --empty`` hands Python models 0-row frames, and that must read as
    what it is rather than as a numpy error. ``extra_columns`` must be present
    too (e.g. the label); the caller reads them. ``categories`` maps category
    columns to their known levels: each level becomes a 0/1 feature
    (:func:`indicator_name`), so an unknown value (kept by staging) is the
    level "other". A protected attribute may never be a feature or a
    category. Other columns are ignored.
    """
    if isinstance(features, str):
        raise TypeError("features must be a list of column names, not one string")
    categories = dict(categories or {})
    names = check_features(
        [*features, *categories],
        post_outcome_columns,
        forbidden=extra_columns,
        protected_attributes=protected_attributes,
    )[: len(features)]
    if not isinstance(data, pd.DataFrame | pa.Table):
        raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")
    available = list(data.column_names if isinstance(data, pa.Table) else data.columns)
    required = [KEY, *names, *categories, *extra_columns]
    missing = [name for name in required if name not in available]
    if missing:
        raise ValueError(
            f"input is missing column(s) {', '.join(missing)}; "
            f"it has: {', '.join(map(str, available))}"
        )
    n_rows = data.num_rows if isinstance(data, pa.Table) else len(data)
    if n_rows == 0:
        raise ValueError(f"no loans to {action}: the input has 0 rows")
    loan_id = column_series(data, KEY)
    null_ids = int(loan_id.isna().sum())
    if null_ids:
        raise ValueError(f"'{KEY}' has {null_ids} null value(s); every loan needs its key")
    if isinstance(data, pa.Table):
        chunks = [_arrow_feature(data.column(name), name) for name in names]
    else:
        chunks = [_pandas_feature(column_series(data, name), name) for name in names]
    for column, levels in categories.items():
        chunks += _indicators(data, column, levels)
    return LoanColumns(
        loan_id=loan_id, features=model_features(names, categories), chunks=tuple(chunks)
    )


def model_features(
    numeric: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """A model's feature names in column order: the numbers, then each category's levels."""
    levels = (
        indicator_name(column, level) for column, known in categories.items() for level in known
    )
    return (*numeric, *levels)


def flags(table: pa.Table, name: str) -> NDArray[np.bool_]:
    """A boolean (or 0/1) column as a bool array, null read as false."""
    values = pc.fill_null(table.column(name).cast(pa.bool_()), False)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def check_count(name: str, value: object, minimum: int) -> None:
    """Reject a non-integer or too-small count (dbt config values are easy to get as text)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
