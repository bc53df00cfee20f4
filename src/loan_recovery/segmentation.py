"""Borrower segmentation: KMeans on standardized features, named from the segment profiles.

The original notebook numbered its KMeans clusters and named them by index by
hand, so a re-run with other data (or another KMeans seed) silently attached
the names, and the high-risk flag, to different borrowers. Here the clusters
are only an intermediate: each one is profiled, and its id, name and high-risk
flag are derived from that profile by fixed rules, so the same book always
gets the same ids and names whatever order KMeans happens to number its
clusters in, and every word of a name is backed by the numbers.

Profile measures, in z-scores (the cluster's mean of each standardized
feature; the fitting sample has mean 0 and standard deviation 1, so 0 is "the
book average"):

==============  ================================================================
measure         definition
==============  ================================================================
income          z(monthly_income)
loan            z(loan_amount)
burden          mean z(loan_amount, outstanding_loan_amount, monthly_emi)
                - z(monthly_income): what is owed and paid against what is earned
delinquency     mean z(num_missed_payments, days_past_due): observed arrears
risk_index      delinquency + 0.5 * burden (``BURDEN_WEIGHT``): burden is a
                difference of two z-means, so its spread is about twice that of
                one z-score; halving it puts both on one scale, so arrears that
                have happened count at least as much as capacity to pay
burden level    0.5 * burden: the burden on the same scale as income and loan
==============  ================================================================

Ids, flags and names (k segments; a tier is High if z > +0.25, Low if
z < -0.25, Moderate otherwise: ``TIER_THRESHOLD``):

==============  ================================================================
part            rule
==============  ================================================================
segment_id      1..k by risk_index ascending (1 = lowest risk); ties broken by
                delinquency, then burden, then the centroid's z-scores in
                feature order
is_high_risk    the k // 2 highest ids (``HIGH_RISK_RULE``): k = 4 flags the
                two worst, as the notebook did; always at least one, never all
risk phrase     first match: highest id with delinquency > 0: "Higher Default
                Risk"; other high-risk with burden level High: "High Loan
                Burden"; high-risk with delinquency > 0: "Higher Default Risk";
                other high-risk: "Elevated Risk"; id 1 with delinquency < 0:
                "Low Default Risk"; anything else: "Medium Risk"
descriptor      the most distinctive (largest |z|) of income ("Income"), loan
                ("Loan") and burden level ("Loan Burden"), prefixed with its
                tier; if none is High or Low: "Moderate Income". With the
                phrase "High Loan Burden" only income may describe (no echo)
name            "<descriptor>, <risk phrase>"
uniqueness      segments sharing a name get their next most distinctive
                descriptor inserted ("High Income, Low Loan, Medium Risk");
                names still shared get " #1", " #2", ... in segment_id order
==============  ================================================================

So "High Income" means income above the book average by more than a quarter
of a standard deviation, "Low Default Risk" is only given to a segment whose
arrears are below the book average, and "Higher Default Risk" only to a
high-risk segment whose arrears are above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from loan_recovery.config import post_outcome_columns

__all__ = [
    "BURDEN_WEIGHT",
    "DEBT_FEATURES",
    "DELINQUENCY_FEATURES",
    "HIGH_RISK_RULE",
    "INCOME_FEATURE",
    "LOAN_FEATURE",
    "TIER_THRESHOLD",
    "LoanColumns",
    "Segmentation",
    "assign_segments",
    "check_count",
    "check_features",
    "column_series",
    "fitting_sample",
    "high_risk_count",
    "name_segments",
    "profile_measures",
    "profile_segments",
    "read_loan_columns",
    "segment_loans",
    "string_column",
]

KEY = "loan_id"

INCOME_FEATURE = "monthly_income"
LOAN_FEATURE = "loan_amount"
DEBT_FEATURES = ("loan_amount", "outstanding_loan_amount", "monthly_emi")
DELINQUENCY_FEATURES = ("num_missed_payments", "days_past_due")
PROFILE_FEATURES = (INCOME_FEATURE, *DEBT_FEATURES, *DELINQUENCY_FEATURES)

BURDEN_WEIGHT = 0.5
"""Weight of burden in the risk index and in the descriptor comparison (see module docstring)."""

TIER_THRESHOLD = 0.25
"""|z| beyond which a measure is called High or Low rather than Moderate."""

HIGH_RISK_RULE = (
    "the k // 2 segments with the highest risk index are high risk: "
    "k = 4 flags the two worst; at least one and never all for k >= 2"
)

LOW_RISK = "Low Default Risk"
MEDIUM_RISK = "Medium Risk"
HIGHER_RISK = "Higher Default Risk"
HIGH_BURDEN = "High Loan Burden"
ELEVATED_RISK = "Elevated Risk"

CHUNK_ROWS = 1 << 18
"""Rows per block when assigning: bounds the temporary arrays to a few MB whatever the book size."""


# --------------------------------------------------------------------------- input


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

    def take(self, positions: NDArray[np.intp], dtype: type[np.floating]) -> NDArray[np.floating]:
        """The rows at ``positions``, in that order, as a C-ordered 2-D array."""
        order = np.argsort(positions, kind="stable")
        ordered = positions[order]
        out = np.empty((len(positions), len(self.chunks)), dtype=dtype)
        for j, pieces in enumerate(self.chunks):
            bounds = _bounds(pieces)
            cuts = np.searchsorted(ordered, bounds)
            for i, piece in enumerate(pieces):
                lo, hi = cuts[i], cuts[i + 1]
                if hi > lo:
                    out[order[lo:hi], j] = piece[ordered[lo:hi] - bounds[i]]
        return out


def check_features(features: Sequence[str], forbidden: Sequence[str] = ()) -> tuple[str, ...]:
    """Reject feature lists that would leak the outcome or make no sense.

    A feature recorded after the recovery outcome (``post_outcome_columns``)
    or the model's own label would let the model see the answer.
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
    leaks = [name for name in names if name in set(post_outcome_columns())]
    if leaks:
        raise ValueError(
            f"feature(s) {', '.join(leaks)} are recorded after the recovery outcome "
            "(post_outcome_columns) and would leak it into the model; remove them"
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


def _bad_value_error(name: str, bad: int, n_rows: int) -> ValueError:
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
        raise _bad_value_error(name, column.null_count + nan, len(column))
    pieces = tuple(chunk.to_numpy(zero_copy_only=False) for chunk in column.chunks if len(chunk))
    bad = _count_non_finite(pieces)
    if bad:
        raise _bad_value_error(name, bad, len(column))
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
        raise _bad_value_error(name, bad, len(values))
    return (values,)


def read_loan_columns(
    data: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    action: str,
    extra_columns: Sequence[str] = (),
) -> LoanColumns:
    """Validate ``data`` and return its key and features as numpy chunks.

    ``action`` words the empty-input error ("no loans to <action>"): dbt's
    ``build --empty`` hands Python models 0-row frames, and that must read as
    what it is rather than as a numpy error. ``extra_columns`` must be present
    too (e.g. the label); the caller reads them. Other columns are ignored.
    """
    names = check_features(features, forbidden=extra_columns)
    if not isinstance(data, pd.DataFrame | pa.Table):
        raise TypeError(f"expected a pandas DataFrame or pyarrow Table, got {type(data).__name__}")
    available = list(data.column_names if isinstance(data, pa.Table) else data.columns)
    required = [KEY, *names, *extra_columns]
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
        chunks = tuple(_arrow_feature(data.column(name), name) for name in names)
    else:
        chunks = tuple(_pandas_feature(column_series(data, name), name) for name in names)
    return LoanColumns(loan_id=loan_id, features=names, chunks=chunks)


def check_count(name: str, value: object, minimum: int) -> None:
    """Reject a non-integer or too-small count (dbt config values are easy to get as text)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def fitting_sample(loan_id: pd.Series, sample_rows: int, random_state: int) -> NDArray[np.intp]:
    """Positions of the rows a model is fitted on, ordered by ``loan_id``.

    Every row when the book fits in ``sample_rows``, else the ``sample_rows``
    loans whose ids hash lowest under a key derived from ``random_state``: a
    uniform sample chosen by the ids alone. DuckDB does not promise row order
    across builds, so a sample drawn by row position would change the model
    from one build of the same book to the next; ordering the sample by key
    makes KMeans++ seeding and bootstrap draws independent of row order too.
    """
    n_rows = len(loan_id)
    if n_rows > sample_rows:
        salt = f"{random_state:016d}"[-16:]
        hashes = pd.util.hash_pandas_object(loan_id, index=False, hash_key=salt).to_numpy()
        positions = np.argpartition(hashes, sample_rows - 1)[:sample_rows]
    else:
        positions = np.arange(n_rows)
    order = loan_id.iloc[positions].reset_index(drop=True).argsort(kind="stable").to_numpy()
    return positions[order].astype(np.intp)


def string_column(names: Sequence[str], codes: NDArray[np.integer]) -> pd.Series:
    """``names[codes]`` as a pandas ``str`` column, built in Arrow (no per-row Python objects)."""
    values = pc.take(pa.array(list(names), type=pa.large_string()), np.asarray(codes))
    target = pd.StringDtype(storage="pyarrow", na_value=np.nan)
    return pd.Series(values.to_pandas(types_mapper={pa.large_string(): target}.get))


# --------------------------------------------------------------------------- naming


def high_risk_count(n_segments: int) -> int:
    """How many segments are high risk: ``n_segments // 2`` (see ``HIGH_RISK_RULE``)."""
    if n_segments < 2:
        raise ValueError(f"n_segments must be at least 2, got {n_segments}")
    return n_segments // 2


def profile_measures(centroids: pd.DataFrame) -> pd.DataFrame:
    """Income, loan, burden, delinquency and risk index of each centroid (z-score rows).

    ``centroids`` has one row per cluster and (at least) the columns in
    ``PROFILE_FEATURES``, holding the cluster's mean z-score of each.
    """
    missing = [name for name in PROFILE_FEATURES if name not in centroids.columns]
    if missing:
        raise ValueError(
            f"segment naming needs the features {', '.join(missing)} (see the segmentation "
            "module docstring for how each measure is defined)"
        )
    income = centroids[INCOME_FEATURE].astype(float)
    burden = centroids[list(DEBT_FEATURES)].astype(float).mean(axis=1) - income
    delinquency = centroids[list(DELINQUENCY_FEATURES)].astype(float).mean(axis=1)
    return pd.DataFrame(
        {
            "income": income,
            "loan": centroids[LOAN_FEATURE].astype(float),
            "burden": burden,
            "delinquency": delinquency,
            "risk_index": delinquency + BURDEN_WEIGHT * burden,
        },
        index=centroids.index,
    )


def _tier(value: float) -> str:
    if value > TIER_THRESHOLD:
        return "High"
    if value < -TIER_THRESHOLD:
        return "Low"
    return "Moderate"


def _risk_phrase(
    segment_id: int, n_segments: int, n_high: int, delinquency: float, burden_level: float
) -> str:
    if segment_id > n_segments - n_high:
        if segment_id == n_segments and delinquency > 0:
            return HIGHER_RISK
        if burden_level > TIER_THRESHOLD:
            return HIGH_BURDEN
        if delinquency > 0:
            return HIGHER_RISK
        return ELEVATED_RISK
    if segment_id == 1 and delinquency < 0:
        return LOW_RISK
    return MEDIUM_RISK


def _descriptors(income: float, loan: float, burden_level: float, phrase: str) -> list[str]:
    """Descriptors most distinctive first; the first one names the segment."""
    candidates = [("Income", income), ("Loan", loan), ("Loan Burden", burden_level)]
    if phrase == HIGH_BURDEN:
        candidates = candidates[:1]
    ranked = sorted(candidates, key=lambda item: -abs(item[1]))  # stable: ties keep table order
    if _tier(ranked[0][1]) == "Moderate":
        ranked = [candidates[0], *[item for item in ranked if item is not candidates[0]]]
    return [f"{_tier(value)} {word}" for word, value in ranked]


def name_segments(centroids: pd.DataFrame) -> pd.DataFrame:
    """Stable ids, names and high-risk flags for clusters, from their profiles alone.

    ``centroids`` is indexed by the clustering's own labels (any order, any
    values) with the mean z-score of each feature per cluster. The result has
    the same index and the columns segment_id, segment_name, is_high_risk and
    the measures of ``profile_measures``. Nothing depends on the labels or the
    row order, so relabelling the clusters relabels nothing here; the rules are
    the table in the module docstring.
    """
    n_segments = len(centroids)
    n_high = high_risk_count(n_segments)
    measures = profile_measures(centroids)
    values = centroids.to_numpy(dtype=float)
    keys = [
        (row.risk_index, row.delinquency, row.burden, *values[i])
        for i, row in enumerate(measures.itertuples(index=False))
    ]
    order = sorted(range(n_segments), key=lambda i: keys[i])
    segment_ids = np.empty(n_segments, dtype=np.int64)
    segment_ids[order] = np.arange(1, n_segments + 1)

    phrases: list[str] = []
    descriptors: list[list[str]] = []
    for i, row in enumerate(measures.itertuples(index=False)):
        burden_level = BURDEN_WEIGHT * row.burden
        phrase = _risk_phrase(
            int(segment_ids[i]), n_segments, n_high, row.delinquency, burden_level
        )
        phrases.append(phrase)
        descriptors.append(_descriptors(row.income, row.loan, burden_level, phrase))

    names = [f"{descriptors[i][0]}, {phrases[i]}" for i in range(n_segments)]
    shared = {name for name in names if names.count(name) > 1}
    for i in range(n_segments):
        if names[i] in shared and len(descriptors[i]) > 1:
            names[i] = f"{descriptors[i][0]}, {descriptors[i][1]}, {phrases[i]}"
    for name in {name for name in names if names.count(name) > 1}:
        holders = sorted(
            (i for i in range(n_segments) if names[i] == name), key=lambda i: segment_ids[i]
        )
        for number, i in enumerate(holders, start=1):
            names[i] = f"{name} #{number}"

    result = pd.DataFrame(
        {
            "segment_id": segment_ids,
            "segment_name": names,
            "is_high_risk": segment_ids > n_segments - n_high,
        },
        index=centroids.index,
    )
    return pd.concat([result, measures], axis=1)


# --------------------------------------------------------------------------- clustering


@dataclass(frozen=True)
class Segmentation:
    """A segmented book: one row per loan, and one profile row per segment.

    ``profile`` columns: segment_id, segment_name, is_high_risk, size (loans
    assigned), income, loan, burden, delinquency, risk_index (z-score
    measures of the fitting sample, see the module docstring), in segment_id
    order.
    """

    assignments: pd.DataFrame
    profile: pd.DataFrame


def _nearest_centroid(
    loans: LoanColumns, mean: NDArray[np.float64], scale: NDArray[np.float64], centers: NDArray
) -> NDArray[np.int32]:
    """Index of the nearest centroid (in z-space) for every loan, a chunk at a time.

    Equivalent to ``KMeans.predict`` on standardized rows, but never
    materializes the full standardized matrix: float32 blocks of
    ``CHUNK_ROWS`` rows, distances as ``|c|^2 - 2 z.c`` (``|z|^2`` is the same
    for every centroid).
    """
    mean32 = mean.astype(np.float32)
    inv32 = (1.0 / scale).astype(np.float32)
    centers32 = np.ascontiguousarray(centers, dtype=np.float32)
    cross = -2.0 * centers32.T
    norms = (centers32**2).sum(axis=1)
    labels = np.empty(loans.n_rows, dtype=np.int32)
    for start in range(0, loans.n_rows, CHUNK_ROWS):
        stop = min(start + CHUNK_ROWS, loans.n_rows)
        block = loans.block(start, stop, np.float32)
        block -= mean32
        block *= inv32
        distances = block @ cross
        distances += norms
        labels[start:stop] = distances.argmin(axis=1)
    return labels


def segment_loans(
    loans: pd.DataFrame | pa.Table,
    features: Sequence[str],
    n_segments: int = 4,
    sample_rows: int = 50_000,
    random_state: int = 42,
) -> Segmentation:
    """Cluster the book and return per-loan assignments plus the per-segment profile.

    See ``assign_segments`` for the method; this is the same computation,
    keeping the profile for inspection and tests.
    """
    check_count("n_segments", n_segments, 2)
    check_count("sample_rows", sample_rows, 2)
    check_count("random_state", random_state, 0)
    if sample_rows < n_segments:
        raise ValueError(f"sample_rows ({sample_rows}) must be at least n_segments ({n_segments})")
    book = read_loan_columns(loans, features, action="segment")
    unprofiled = [name for name in PROFILE_FEATURES if name not in book.features]
    if unprofiled:
        raise ValueError(
            f"segment naming needs the features {', '.join(unprofiled)} (see the segmentation "
            "module docstring for how each measure is defined)"
        )
    if book.n_rows < n_segments:
        raise ValueError(
            f"cannot form {n_segments} segments from {book.n_rows} loan(s): "
            "need at least one loan per segment"
        )

    positions = fitting_sample(book.loan_id, sample_rows, random_state)
    sample = book.take(positions, np.float64)
    scaler = StandardScaler().fit(sample)
    standardized = scaler.transform(sample)
    kmeans = KMeans(n_clusters=n_segments, random_state=random_state, n_init=10)
    # One OpenMP thread: on a capped sample each Lloyd step is tiny, so thread
    # synchronisation dominates, and in dbt it competes with DuckDB's threads
    # (measured at 50,000 rows on 2 busy cores: 1.3 s with one thread, 2.9 s with two).
    with threadpool_limits(limits=1, user_api="openmp"):
        kmeans.fit(standardized)

    labels = _nearest_centroid(book, scaler.mean_, scaler.scale_, kmeans.cluster_centers_)
    sample_labels = labels[positions]
    counts = np.bincount(sample_labels, minlength=n_segments)
    if (counts == 0).any():
        raise ValueError(
            f"only {int((counts > 0).sum())} distinct groups in the fitting sample; "
            f"too few distinct loans for n_segments={n_segments}"
        )
    centroids = pd.DataFrame(
        np.vstack([standardized[sample_labels == c].mean(axis=0) for c in range(n_segments)]),
        columns=list(book.features),
    )
    named = name_segments(centroids)

    sizes = np.bincount(labels, minlength=n_segments)
    # KMeans label -> 0-based segment id for every loan; drop the labels to cap peak memory.
    codes = (named["segment_id"].to_numpy() - 1).astype(np.int32)[labels]
    del labels
    by_id = named.sort_values("segment_id")
    assignments = pd.DataFrame(
        {
            KEY: book.loan_id,
            "segment_id": np.add(codes, 1, dtype=np.int64),
            "segment_name": string_column(by_id["segment_name"].tolist(), codes),
            "is_high_risk": by_id["is_high_risk"].to_numpy(dtype=bool)[codes],
        },
        copy=False,
    )
    profile = named.assign(size=sizes.astype(np.int64))[
        [
            "segment_id",
            "segment_name",
            "is_high_risk",
            "size",
            "income",
            "loan",
            "burden",
            "delinquency",
            "risk_index",
        ]
    ]
    profile = profile.sort_values("segment_id").reset_index(drop=True)
    return Segmentation(assignments=assignments, profile=profile)


def assign_segments(
    loans: pd.DataFrame | pa.Table,
    features: Sequence[str],
    n_segments: int = 4,
    sample_rows: int = 50_000,
    random_state: int = 42,
) -> pd.DataFrame:
    """Assign every loan a segment: columns loan_id, segment_id, segment_name, is_high_risk.

    Method: ``StandardScaler`` and ``KMeans(n_segments, n_init=10)`` fitted on
    the book, or on a deterministic sample of ``sample_rows`` loans chosen by
    hashed loan id when the book is larger (KMeans cost grows with rows; on a
    1M-loan book a 50k-row fit assigns 99.3% of loans as a 200k-row fit does);
    every loan is then
    assigned to its nearest centroid in chunks. The clusters are profiled and
    their ids, names and high-risk flags follow from the profiles (module
    docstring), so they do not depend on KMeans' arbitrary numbering.

    High risk: ``HIGH_RISK_RULE``, the ``n_segments // 2`` segments with the
    highest risk index (for 4 segments, the two worst, as in the original
    analysis; at least one, never all).

    Raises ``ValueError`` with a readable message for a leaky feature
    (post_outcome_columns), missing columns, 0 rows (dbt ``build --empty``),
    fewer loans than segments, ``n_segments < 2`` and null or non-finite
    feature values.
    """
    return segment_loans(loans, features, n_segments, sample_rows, random_state).assignments


def profile_segments(
    loans: pd.DataFrame | pa.Table,
    features: Sequence[str],
    n_segments: int = 4,
    sample_rows: int = 50_000,
    random_state: int = 42,
) -> pd.DataFrame:
    """The per-segment profile of ``segment_loans`` (one row per segment, by segment_id)."""
    return segment_loans(loans, features, n_segments, sample_rows, random_state).profile
