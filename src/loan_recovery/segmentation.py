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
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from loan_recovery.model_input import (
    KEY,
    LoanColumns,
    check_count,
    fitting_sample,
    read_loan_columns,
    string_column,
)

__all__ = [
    "BURDEN_WEIGHT",
    "DEBT_FEATURES",
    "DELINQUENCY_FEATURES",
    "HIGH_RISK_RULE",
    "INCOME_FEATURE",
    "LOAN_FEATURE",
    "TIER_THRESHOLD",
    "Segmentation",
    "assign_segments",
    "high_risk_count",
    "name_segments",
    "profile_measures",
    "segment_loans",
]

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


# --------------------------------------------------------------------------- naming


def high_risk_count(n_segments: int) -> int:
    """How many segments are high risk: ``n_segments // 2`` (see ``HIGH_RISK_RULE``)."""
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
    *,
    post_outcome_columns: Sequence[str],
    n_segments: int,
    sample_rows: int,
    random_state: int,
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
    book = read_loan_columns(
        loans, features, post_outcome_columns=post_outcome_columns, action="segment"
    )
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
    *,
    post_outcome_columns: Sequence[str],
    n_segments: int,
    sample_rows: int,
    random_state: int,
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
    return segment_loans(
        loans,
        features,
        post_outcome_columns=post_outcome_columns,
        n_segments=n_segments,
        sample_rows=sample_rows,
        random_state=random_state,
    ).assignments
