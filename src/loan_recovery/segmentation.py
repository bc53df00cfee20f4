"""Borrower segmentation: KMeans on standardized features, named from the segment profiles.

The original notebook numbered its KMeans clusters and named them by index by
hand, so a re-run with other data (or another KMeans seed) silently attached
the names, and the high-risk flag, to different borrowers. Here the clusters
are only an intermediate: each one is profiled, and its id, name and high-risk
flag are derived from that profile by fixed rules, so the same book always
gets the same ids and names whatever order KMeans happens to number its
clusters in, and every word of a name is backed by the numbers.

Which segments are risky is decided by what happened when that is known.
Round 1 ranked segments by arrears plus loan "burden", so big, well
collateralised loans were flagged high risk although they recovered best.
Now, when every segment holds at least ``MIN_SEGMENT_RESOLVED`` resolved
loans, a segment's risk is its observed loss rate (the share of its resolved
loans not fully recovered); otherwise its delinquency profile (missed
payments and days past due) decides. Loan size and EMI alone never make a
segment risky.

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
burden level    0.5 * burden (``BURDEN_WEIGHT``): burden is a difference of two
                z-means, so halving it puts it on the scale of income and loan
delinquency     mean z(num_missed_payments, days_past_due): observed arrears
loss rate       share of the segment's resolved loans not fully recovered
==============  ================================================================

Ids, flags and names (k segments; a tier is High if z > +0.25, Low if
z < -0.25, Moderate otherwise: ``TIER_THRESHOLD``):

==============  ================================================================
part            rule
==============  ================================================================
risk basis      "observed loss rate" when every segment has at least
                ``MIN_SEGMENT_RESOLVED`` resolved loans, else "delinquency"
segment_id      1..k by the risk basis ascending (1 = least risky); ties broken
                by delinquency, then the centroid's z-scores in feature order
is_high_risk    loss rate basis: the segments whose loss rate is above the
                book's; delinquency basis: the k // 2 most delinquent
                (``HIGH_RISK_RULE``); always at least one, never all
risk phrase     loss rate basis: high risk: "Higher Default Risk"; the least
                risky, below the book's loss rate: "Low Default Risk"; others
                "Medium Risk". Delinquency basis: high risk with delinquency
                > 0: "Higher Default Risk", other high risk: "Elevated Risk";
                id 1 with delinquency < 0: "Low Default Risk"; others "Medium
                Risk"
descriptor      the most distinctive (largest |z|) of income ("Income"), loan
                ("Loan") and burden level ("Loan Burden"), prefixed with its
                tier; if none is High or Low: "Moderate Income"
name            "<descriptor>, <risk phrase>"
uniqueness      segments sharing a name get their next most distinctive
                descriptor inserted ("High Income, Low Loan, Medium Risk");
                names still shared get " #1", " #2", ... in segment_id order
==============  ================================================================

So "High Income" means income above the book average by more than a quarter
of a standard deviation, and where outcomes are known "Higher Default Risk"
means a loss rate above the book's and "Low Default Risk" the lowest, below
it.
"""

from __future__ import annotations

import hashlib
import json
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
    OUTCOME_LABEL,
    RESOLVED,
    LoanColumns,
    check_count,
    column_series,
    fitting_sample,
    read_loan_columns,
    string_column,
)
from loan_recovery.model_store import Component, Fitted

__all__ = [
    "BURDEN_WEIGHT",
    "COMPONENT",
    "DEBT_FEATURES",
    "DELINQUENCY_FEATURES",
    "HIGH_RISK_RULE",
    "INCOME_FEATURE",
    "LOAN_FEATURE",
    "TIER_THRESHOLD",
    "SegmentModel",
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
"""Burden level = BURDEN_WEIGHT x burden, the scale of income and loan (module docstring)."""

MIN_SEGMENT_RESOLVED = 20
"""Resolved loans every segment needs before its observed loss rate decides its risk."""

LOSS_RATE_BASIS = "observed loss rate"
DELINQUENCY_BASIS = "delinquency"

TIER_THRESHOLD = 0.25
"""|z| beyond which a measure is called High or Low rather than Moderate."""

HIGH_RISK_RULE = (
    "with outcomes, the segments whose observed loss rate is above the book's are high risk; "
    "without, the k // 2 most delinquent (k = 4 flags the two worst); at least one, never all"
)

LOW_RISK = "Low Default Risk"
MEDIUM_RISK = "Medium Risk"
HIGHER_RISK = "Higher Default Risk"
ELEVATED_RISK = "Elevated Risk"

COMPONENT = "segmentation"
"""The segmentation's name in the model store and the registry."""

CHUNK_ROWS = 1 << 18
"""Rows per block when assigning: bounds the temporary arrays to a few MB whatever the book size."""


# --------------------------------------------------------------------------- naming


def high_risk_count(n_segments: int) -> int:
    """How many segments are high risk: ``n_segments // 2`` (see ``HIGH_RISK_RULE``)."""
    return n_segments // 2


def profile_measures(centroids: pd.DataFrame) -> pd.DataFrame:
    """Income, loan, burden and delinquency of each centroid (z-score rows).

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
        },
        index=centroids.index,
    )


def _tier(value: float) -> str:
    if value > TIER_THRESHOLD:
        return "High"
    if value < -TIER_THRESHOLD:
        return "Low"
    return "Moderate"


def _descriptors(income: float, loan: float, burden_level: float) -> list[str]:
    """Descriptors most distinctive first; the first one names the segment."""
    candidates = [("Income", income), ("Loan", loan), ("Loan Burden", burden_level)]
    ranked = sorted(candidates, key=lambda item: -abs(item[1]))  # stable: ties keep table order
    if _tier(ranked[0][1]) == "Moderate":
        ranked = [candidates[0], *[item for item in ranked if item is not candidates[0]]]
    return [f"{_tier(value)} {word}" for word, value in ranked]


def _risk_phrase(
    segment_id: int, high_risk: bool, delinquency: float, loss_rate: float | None, book_rate: float
) -> str:
    if loss_rate is not None:
        if high_risk:
            return HIGHER_RISK
        return LOW_RISK if segment_id == 1 and loss_rate < book_rate else MEDIUM_RISK
    if high_risk:
        return HIGHER_RISK if delinquency > 0 else ELEVATED_RISK
    return LOW_RISK if segment_id == 1 and delinquency < 0 else MEDIUM_RISK


def name_segments(
    centroids: pd.DataFrame,
    loss_rates: Sequence[float] | None = None,
    book_loss_rate: float | None = None,
) -> pd.DataFrame:
    """Stable ids, names and high-risk flags for clusters, from their profiles and outcomes.

    ``centroids`` is indexed by the clustering's own labels (any order, any
    values) with the mean z-score of each feature per cluster. ``loss_rates``
    (one per centroid row) and ``book_loss_rate`` are given when outcomes
    decide (module docstring); else the delinquency profile does. The result
    has the same index and the columns segment_id, segment_name, is_high_risk,
    risk_basis, the measures of ``profile_measures`` and loss_rate. Nothing
    depends on the labels or the row order.
    """
    n_segments = len(centroids)
    measures = profile_measures(centroids)
    values = centroids.to_numpy(dtype=float)
    by_outcome = loss_rates is not None and book_loss_rate is not None
    rates = np.asarray(loss_rates, dtype=float) if by_outcome else np.full(n_segments, np.nan)
    risk = rates if by_outcome else measures["delinquency"].to_numpy()
    keys = [
        (risk[i], row.delinquency, *values[i])
        for i, row in enumerate(measures.itertuples(index=False))
    ]
    order = sorted(range(n_segments), key=lambda i: keys[i])
    segment_ids = np.empty(n_segments, dtype=np.int64)
    segment_ids[order] = np.arange(1, n_segments + 1)

    if by_outcome:
        high = rates > float(book_loss_rate)
        if not high.any():  # every segment at the book's rate: the worst one still leads
            high = segment_ids == n_segments
        high &= ~(high.all() & (segment_ids == 1))  # never all
    else:
        high = segment_ids > n_segments - high_risk_count(n_segments)

    names = []
    descriptors = []
    for i, row in enumerate(measures.itertuples(index=False)):
        phrase = _risk_phrase(
            int(segment_ids[i]),
            bool(high[i]),
            row.delinquency,
            float(rates[i]) if by_outcome else None,
            float(book_loss_rate) if by_outcome else 0.0,
        )
        descriptors.append(_descriptors(row.income, row.loan, BURDEN_WEIGHT * row.burden))
        names.append((descriptors[-1], phrase))
    labels = [f"{words[0]}, {phrase}" for words, phrase in names]
    shared = {label for label in labels if labels.count(label) > 1}
    for i, (words, phrase) in enumerate(names):
        if labels[i] in shared and len(words) > 1:
            labels[i] = f"{words[0]}, {words[1]}, {phrase}"
    for label in {label for label in labels if labels.count(label) > 1}:
        holders = sorted(
            (i for i in range(n_segments) if labels[i] == label), key=lambda i: segment_ids[i]
        )
        for number, i in enumerate(holders, start=1):
            labels[i] = f"{label} #{number}"

    result = pd.DataFrame(
        {
            "segment_id": segment_ids,
            "segment_name": labels,
            "is_high_risk": high,
            "risk_basis": LOSS_RATE_BASIS if by_outcome else DELINQUENCY_BASIS,
        },
        index=centroids.index,
    )
    return pd.concat(
        [result, measures, pd.Series(rates, index=centroids.index, name="loss_rate")], axis=1
    )


# --------------------------------------------------------------------------- clustering


@dataclass(frozen=True)
class SegmentModel:
    """A fitted segmentation: how to standardize a loan, the centroids, and what each one is.

    Per KMeans cluster (row of ``centers``): its segment_id, name and
    high-risk flag. Stored in the model store and the registry as arrays
    and JSON, so a later book can be assigned without refitting.
    """

    features: tuple[str, ...]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    centers: NDArray[np.float64]
    segment_ids: NDArray[np.int64]
    names: tuple[str, ...]
    high_risk: NDArray[np.bool_]
    risk_basis: str

    @property
    def version(self) -> str:
        digest = hashlib.sha256()
        for values in (self.mean, self.scale, self.centers, self.segment_ids, self.high_risk):
            digest.update(np.ascontiguousarray(values).tobytes())
        digest.update(json.dumps([self.features, self.names, self.risk_basis]).encode())
        return digest.hexdigest()[:12]

    def component(self, post_outcome_columns: Sequence[str]) -> tuple[str, dict, dict, None]:
        """(name, meta, arrays, forest) for :func:`loan_recovery.model_store.keep`."""
        meta = {
            "version": self.version,
            "features": list(self.features),
            "names": list(self.names),
            "risk_basis": self.risk_basis,
            "post_outcome_columns": list(post_outcome_columns),
        }
        arrays = {
            "mean": self.mean,
            "scale": self.scale,
            "centers": self.centers,
            "segment_ids": self.segment_ids,
            "high_risk": self.high_risk,
        }
        return COMPONENT, meta, arrays, None

    @classmethod
    def from_component(cls, component: Component) -> SegmentModel:
        meta, arrays = component.meta, component.arrays
        return cls(
            features=tuple(meta["features"]),
            mean=arrays["mean"],
            scale=arrays["scale"],
            centers=arrays["centers"],
            segment_ids=arrays["segment_ids"],
            names=tuple(meta["names"]),
            high_risk=arrays["high_risk"],
            risk_basis=meta["risk_basis"],
        )


@dataclass(frozen=True)
class Segmentation:
    """A segmented book: one row per loan, one profile row per segment, and the fitted model.

    ``profile`` columns: segment_id, segment_name, is_high_risk, risk_basis,
    size (loans assigned), resolved (of them), loss_rate (NaN without
    outcomes), income, loan, burden, delinquency (z-score measures of the
    fitting sample, see the module docstring), in segment_id order.
    """

    assignments: pd.DataFrame
    profile: pd.DataFrame
    model: SegmentModel


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


def _outcomes(loans: pd.DataFrame | pa.Table) -> tuple[NDArray[np.bool_], NDArray[np.bool_]] | None:
    """(resolved, not fully recovered) per loan when the input carries outcomes, else None."""
    names = loans.column_names if isinstance(loans, pa.Table) else list(loans.columns)
    if RESOLVED not in names or OUTCOME_LABEL not in names:
        return None
    resolved = column_series(loans, RESOLVED).to_numpy(dtype=bool, na_value=False)
    lost = column_series(loans, OUTCOME_LABEL).fillna(False).to_numpy(dtype=bool)
    return resolved, lost & resolved


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
    outcomes = _outcomes(loans)
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
    sizes = np.bincount(labels, minlength=n_segments)
    resolved_counts = np.zeros(n_segments, dtype=np.int64)
    loss_rates = None
    book_loss_rate = None
    if outcomes is not None:
        resolved, lost = outcomes
        resolved_counts = np.bincount(labels[resolved], minlength=n_segments)
        if resolved_counts.min() >= MIN_SEGMENT_RESOLVED:
            losses = np.bincount(labels[resolved & lost], minlength=n_segments)
            loss_rates = losses / resolved_counts
            book_loss_rate = float(losses.sum() / resolved_counts.sum())
    named = name_segments(centroids, loss_rates, book_loss_rate)

    model = SegmentModel(
        features=book.features,
        mean=scaler.mean_,
        scale=scaler.scale_,
        centers=kmeans.cluster_centers_,
        segment_ids=named["segment_id"].to_numpy(dtype=np.int64),
        names=tuple(named["segment_name"]),
        high_risk=named["is_high_risk"].to_numpy(dtype=bool),
        risk_basis=str(named["risk_basis"].iloc[0]),
    )
    assignments = _assignments(book, model, labels)
    del labels
    profile = named.assign(size=sizes.astype(np.int64), resolved=resolved_counts)[
        [
            "segment_id",
            "segment_name",
            "is_high_risk",
            "risk_basis",
            "size",
            "resolved",
            "loss_rate",
            "income",
            "loan",
            "burden",
            "delinquency",
        ]
    ]
    profile = profile.sort_values("segment_id").reset_index(drop=True)
    return Segmentation(assignments=assignments, profile=profile, model=model)


def _assignments(
    book: LoanColumns, model: SegmentModel, labels: NDArray[np.int32] | None = None
) -> pd.DataFrame:
    """Every loan's segment from its nearest centroid (``labels`` when already known)."""
    if labels is None:
        labels = _nearest_centroid(book, model.mean, model.scale, model.centers)
    # KMeans label -> 0-based segment id for every loan.
    codes = (model.segment_ids - 1).astype(np.int32)[labels]
    order = np.argsort(model.segment_ids)
    return pd.DataFrame(
        {
            KEY: book.loan_id,
            "segment_id": np.add(codes, 1, dtype=np.int64),
            "segment_name": string_column([model.names[i] for i in order], codes),
            "is_high_risk": model.high_risk[order][codes],
            "risk_basis": string_column([model.risk_basis], np.zeros(len(codes), dtype=np.int32)),
        },
        copy=False,
    )


def assign_segments(
    loans: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_segments: int,
    sample_rows: int,
    random_state: int,
    frozen: Component | None = None,
) -> Fitted:
    """Every loan's segment: loan_id, segment_id, segment_name, is_high_risk, risk_basis.

    Method: ``StandardScaler`` and ``KMeans(n_segments, n_init=10)`` fitted on
    the book, or on a deterministic sample of ``sample_rows`` loans chosen by
    hashed loan id when the book is larger (KMeans cost grows with rows; on a
    1M-loan book a 50k-row fit assigns 99.3% of loans as a 200k-row fit does);
    every loan is then assigned to its nearest centroid in chunks. The
    clusters are profiled and their ids, names and high-risk flags follow
    from the profiles and outcomes (module docstring), so they do not depend
    on KMeans' arbitrary numbering.

    With ``frozen`` (an approved model from the registry) nothing is fitted:
    the stored scaler, centroids and names assign every loan.

    Raises ``ValueError`` with a readable message for a leaky feature
    (post_outcome_columns), missing columns, 0 rows (dbt ``build --empty``),
    fewer loans than segments, ``n_segments < 2`` and null or non-finite
    feature values.
    """
    if frozen is not None:
        model = SegmentModel.from_component(frozen)
        if list(model.features) != list(features):
            raise ValueError("the frozen segmentation was fitted on other features; retrain it")
        book = read_loan_columns(
            loans, features, post_outcome_columns=post_outcome_columns, action="segment"
        )
        return Fitted(_assignments(book, model), (model.component(post_outcome_columns),))
    segmentation = segment_loans(
        loans,
        features,
        post_outcome_columns=post_outcome_columns,
        n_segments=n_segments,
        sample_rows=sample_rows,
        random_state=random_state,
    )
    return Fitted(segmentation.assignments, (segmentation.model.component(post_outcome_columns),))
