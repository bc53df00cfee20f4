"""Borrower segmentation: KMeans on standardized features, named from the segment profiles.

The original notebook numbered its KMeans clusters and named them by index by
hand, so a re-run with other data (or another KMeans seed) silently attached
the names, and the high-risk flag, to different borrowers. Here the clusters
are only an intermediate: each one is profiled, and its id, name and high-risk
flag are derived from that profile by fixed rules, so the same book always
gets the same ids and names whatever order KMeans happens to number its
clusters in, and every word of a name is backed by the numbers.

How ids, names and the high-risk flag follow from a profile, and the
rules' table, are in :mod:`loan_recovery.modelling.segment_names`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from loan_recovery.modelling.loan_source import LoanSource, stream
from loan_recovery.modelling.model_input import (
    KEY,
    OUTCOME_LABEL,
    RESOLVED,
    LoanColumns,
    check_count,
    check_features,
    flags,
    read_loan_columns,
)
from loan_recovery.modelling.model_store import Component, Fitted
from loan_recovery.modelling.segment_names import (
    MIN_SEGMENT_RESOLVED,
    PROFILE_FEATURES,
    name_segments,
)

__all__ = ["COMPONENT", "SegmentModel", "Segmentation", "assign_segments", "segment_loans"]

COMPONENT = "segmentation"
"""The segmentation's name in the model store and the registry."""

CHUNK_ROWS = 1 << 18
"""Rows per block when assigning: bounds the temporary arrays to a few MB whatever the book size."""


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
        """(name, meta, arrays, forest) for :func:`loan_recovery.modelling.model_store.keep`."""
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
    """A segmented book: one profile row per segment, the fitted model, and each loan's segment.

    ``profile`` columns: segment_id, segment_name, is_high_risk, risk_basis,
    size (loans assigned), resolved (of them), loss_rate (NaN without
    outcomes), income, loan, burden, delinquency (z-score measures of the
    fitting sample, see the module docstring), in segment_id order.
    """

    profile: pd.DataFrame
    model: SegmentModel
    source: LoanSource

    def assignments(self) -> pa.RecordBatchReader:
        """Every loan's segment (see :func:`assign_segments`), streamed a batch at a time."""
        return _assignments(self.source, self.model)


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


def _labelled_batches(
    source: LoanSource,
    model: SegmentModel,
    post_outcome_columns: Sequence[str],
    extra: Sequence[str] = (),
) -> Iterator[tuple[pa.Table, NDArray[np.int32]]]:
    """Each batch of the book with its loans' nearest-centroid (KMeans) labels."""
    for table in source.batches([KEY, *model.features, *extra]):
        batch = read_loan_columns(
            table, model.features, post_outcome_columns=post_outcome_columns, action="segment"
        )
        yield table, _nearest_centroid(batch, model.mean, model.scale, model.centers)


def segment_loans(
    loans: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_segments: int,
    sample_rows: int,
    random_state: int,
    session: duckdb.DuckDBPyConnection | None = None,
) -> Segmentation:
    """Cluster the book and return the per-segment profile, the model and the assignments.

    See ``assign_segments`` for the method; this is the same computation,
    keeping the profile for inspection and tests. The book is read twice in
    batches: once to count each segment's loans and outcomes (which name
    it), once to assign them.
    """
    check_count("n_segments", n_segments, 2)
    check_count("sample_rows", sample_rows, 2)
    check_count("random_state", random_state, 0)
    if sample_rows < n_segments:
        raise ValueError(f"sample_rows ({sample_rows}) must be at least n_segments ({n_segments})")
    names = check_features(features, post_outcome_columns)
    source = LoanSource.of(loans, session)
    unprofiled = [name for name in PROFILE_FEATURES if name not in names]
    if unprofiled:
        raise ValueError(
            f"segment naming needs the features {', '.join(unprofiled)} (see the segmentation "
            "module docstring for how each measure is defined)"
        )
    n_rows = source.check(names, [], action="segment")["rows"]
    if n_rows < n_segments:
        raise ValueError(
            f"cannot form {n_segments} segments from {n_rows} loan(s): "
            "need at least one loan per segment"
        )
    sample_table = source.sample([KEY, *names], sample_rows, random_state)
    book = read_loan_columns(
        sample_table, names, post_outcome_columns=post_outcome_columns, action="segment"
    )
    sample = book.block(0, book.n_rows, np.float64)
    scaler = StandardScaler().fit(sample)
    standardized = scaler.transform(sample)
    kmeans = KMeans(n_clusters=n_segments, random_state=random_state, n_init=10)
    # One OpenMP thread: on a capped sample each Lloyd step is tiny, so thread
    # synchronisation dominates, and in dbt it competes with DuckDB's threads
    # (measured at 50,000 rows on 2 busy cores: 1.3 s with one thread, 2.9 s with two).
    with threadpool_limits(limits=1, user_api="openmp"):
        kmeans.fit(standardized)
    sample_labels = _nearest_centroid(book, scaler.mean_, scaler.scale_, kmeans.cluster_centers_)
    counts = np.bincount(sample_labels, minlength=n_segments)
    if (counts == 0).any():
        raise ValueError(
            f"only {int((counts > 0).sum())} distinct groups in the fitting sample; "
            f"too few distinct loans for n_segments={n_segments}"
        )
    centroids = pd.DataFrame(
        np.vstack([standardized[sample_labels == c].mean(axis=0) for c in range(n_segments)]),
        columns=list(names),
    )
    unnamed = SegmentModel(
        features=names,
        mean=scaler.mean_,
        scale=scaler.scale_,
        centers=kmeans.cluster_centers_,
        segment_ids=np.arange(1, n_segments + 1, dtype=np.int64),
        names=tuple(f"segment {c}" for c in range(n_segments)),
        high_risk=np.zeros(n_segments, dtype=bool),
        risk_basis="",
    )
    sizes, resolved_counts, losses = _segment_counts(source, unnamed, post_outcome_columns)
    loss_rates = None
    book_loss_rate = None
    if losses is not None and resolved_counts.min() >= MIN_SEGMENT_RESOLVED:
        loss_rates = losses / resolved_counts
        book_loss_rate = float(losses.sum() / resolved_counts.sum())
    named = name_segments(centroids, loss_rates, book_loss_rate)
    model = dataclasses.replace(
        unnamed,
        segment_ids=named["segment_id"].to_numpy(dtype=np.int64),
        names=tuple(named["segment_name"]),
        high_risk=named["is_high_risk"].to_numpy(dtype=bool),
        risk_basis=str(named["risk_basis"].iloc[0]),
    )
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
    return Segmentation(profile=profile, model=model, source=source)


def _segment_counts(
    source: LoanSource, model: SegmentModel, post_outcome_columns: Sequence[str]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
    """Loans, resolved loans and losses per KMeans cluster (losses None without outcomes)."""
    k = len(model.centers)
    outcomes = [RESOLVED, OUTCOME_LABEL] if {RESOLVED, OUTCOME_LABEL} <= set(source.columns) else []
    sizes = np.zeros(k, dtype=np.int64)
    resolved_counts = np.zeros(k, dtype=np.int64)
    losses = np.zeros(k, dtype=np.int64)
    for table, labels in _labelled_batches(source, model, post_outcome_columns, outcomes):
        sizes += np.bincount(labels, minlength=k)
        if outcomes:
            resolved = flags(table, RESOLVED)
            lost = flags(table, OUTCOME_LABEL) & resolved
            resolved_counts += np.bincount(labels[resolved], minlength=k)
            losses += np.bincount(labels[lost], minlength=k)
    return sizes, resolved_counts, (losses if outcomes else None)


SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("segment_id", pa.int64()),
        ("segment_name", pa.string()),
        ("is_high_risk", pa.bool_()),
        ("risk_basis", pa.string()),
        ("segmentation_model_hash", pa.string()),
    ]
)
"""The assignments' columns (loan_id takes the input's type). ``segmentation_model_hash``
is the segmentation's content hash (:attr:`SegmentModel.version`), one of the four a
registry id is made of."""


def _assignments(
    source: LoanSource, model: SegmentModel, post_outcome_columns: Sequence[str] = ()
) -> pa.RecordBatchReader:
    """Every loan's segment from its nearest centroid, a batch at a time."""
    # KMeans label -> 0-based segment id, and segment id order -> name and flag.
    codes_of = (model.segment_ids - 1).astype(np.int32)
    order = np.argsort(model.segment_ids)
    names = pa.array([model.names[i] for i in order], pa.string())
    high_risk = model.high_risk[order]
    version = model.version

    def batches() -> Iterator[pa.Table]:
        for table, labels in _labelled_batches(source, model, post_outcome_columns):
            codes = codes_of[labels]
            yield pa.table(
                {
                    KEY: table.column(KEY),
                    "segment_id": pa.array(np.add(codes, 1, dtype=np.int64)),
                    "segment_name": names.take(pa.array(codes)),
                    "is_high_risk": pa.array(high_risk[codes]),
                    "risk_basis": pa.repeat(pa.scalar(model.risk_basis), len(codes)),
                    "segmentation_model_hash": pa.repeat(pa.scalar(version), len(codes)),
                }
            )

    return stream(source.keyed(SCHEMA), batches())


def assign_segments(
    loans: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_segments: int,
    sample_rows: int,
    random_state: int,
    frozen: Component | None = None,
    session: duckdb.DuckDBPyConnection | None = None,
) -> Fitted:
    """Every loan's segment: loan_id, segment_id, segment_name, is_high_risk, risk_basis, hash.

    Method: ``StandardScaler`` and ``KMeans(n_segments, n_init=10)`` fitted on
    the book, or on a deterministic sample of ``sample_rows`` loans chosen by
    hashed loan id when the book is larger (KMeans cost grows with rows; on a
    1M-loan book a 50k-row fit assigns 99.3% of loans as a 200k-row fit does);
    every loan is then assigned to its nearest centroid, a batch at a time. The
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
        source = LoanSource.of(loans, session)
        source.check(check_features(features, post_outcome_columns), [], action="segment")
        return Fitted(_assignments(source, model), (model.component(post_outcome_columns),))
    segmentation = segment_loans(
        loans,
        features,
        post_outcome_columns=post_outcome_columns,
        n_segments=n_segments,
        sample_rows=sample_rows,
        random_state=random_state,
        session=session,
    )
    return Fitted(segmentation.assignments(), (segmentation.model.component(post_outcome_columns),))
