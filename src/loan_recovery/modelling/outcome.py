"""The outcome model: a calibrated probability that a loan will not be fully recovered.

The write-up's score learns segment membership and ranks real recovery at
chance. This model learns the outcome itself, from the loans whose outcome
is known, and decides for the ones still open:

* training loans: resolved loans only (``is_resolved``), at most
  ``sample_rows`` of them chosen by hashed loan id, so the model does not
  depend on row order; an open loan never trains it;
* label: ``is_not_fully_recovered`` (Partially Recovered or Written Off);
* features: the ten pre-collection numbers, the ratios of int_loan_features
  and the pre-collection categories as 0/1 levels (an unknown value is
  "other"). Post-outcome columns and protected attributes are refused by
  name (:func:`loan_recovery.modelling.model_input.check_features`) and by data
  (:mod:`loan_recovery.modelling.sentinel`) before anything is trained;
* probabilities: every training loan's is out of bag, every other loan's
  comes from the forest that never saw it; all are calibrated by Platt
  scaling, cross-fitted for the training loans
  (:mod:`loan_recovery.modelling.calibration`).

When fewer than ``min_resolved_loans`` resolved loans exist, or they hold
one outcome only, nothing is trained: every loss_probability is null,
``outcome_model_status`` is ``fallback`` and ``outcome_fallback_reason``
says why, so the strategy falls back to the write-up's score and the build
says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from loan_recovery.modelling.calibration import Platt, cross_fitted
from loan_recovery.modelling.forest import (
    fit_out_of_bag,
    model_version,
    positive_proba,
    stream_scores,
)
from loan_recovery.modelling.loan_source import LoanSource, numbers, quoted, stream
from loan_recovery.modelling.model_input import (
    KEY,
    OUTCOME_LABEL,
    RESOLVED,
    check_count,
    check_features,
    flags,
    indicator_arrays,
    indicator_name,
    model_features,
    read_loan_columns,
)
from loan_recovery.modelling.model_store import Component, Fitted, training_arrays
from loan_recovery.modelling.sentinel import check_features_are_honest
from loan_recovery.modelling.status import FALLBACK, FROZEN, TRAINED

__all__ = ["COMPONENT", "LABEL", "score_outcomes"]

LABEL = OUTCOME_LABEL
COMPONENT = "outcome"
"""The outcome model's name in the model store."""


SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("loss_probability", pa.float64()),
        ("is_training_row", pa.bool_()),
        ("outcome_model_hash", pa.string()),
        ("outcome_model_status", pa.string()),
        ("outcome_fallback_reason", pa.string()),
    ]
)
"""The scores' columns (loan_id takes the input's type). ``outcome_model_hash``
is the fitted model's content hash (:func:`loan_recovery.modelling.forest.model_version`),
one of the four a registry id is made of; the id itself is ``int_model_version``'s."""


def _columns(
    version: str | None, status: str, reason: str | None = None
) -> Callable[[np.ndarray, np.ndarray], list]:
    """The columns after loan_id (see :data:`SCHEMA`) for a batch's probabilities."""

    def columns(probabilities: np.ndarray, is_training: np.ndarray) -> list[pa.Array]:
        n = len(probabilities)
        return [
            numbers(probabilities),
            pa.array(is_training, pa.bool_()),
            pa.repeat(pa.scalar(version, pa.string()), n),
            pa.repeat(pa.scalar(status, pa.string()), n),
            pa.repeat(pa.scalar(reason, pa.string()), n),
        ]

    return columns


def _protected_indicators(
    training: pa.Table, protected: Mapping[str, Sequence[str]]
) -> dict[str, np.ndarray]:
    indicators: dict[str, np.ndarray] = {}
    for column, levels in protected.items():
        for level, is_level in zip(levels, indicator_arrays(training, column, levels), strict=True):
            indicators[indicator_name(column, level)] = is_level
    return indicators


def _fallback(source: LoanSource, reason: str) -> Fitted:
    columns = _columns(None, FALLBACK, reason)
    schema = source.keyed(SCHEMA)

    def batches() -> Iterator[pa.Table]:
        for batch in source.batches([KEY]):
            n = batch.num_rows
            nothing = columns(np.full(n, np.nan), np.zeros(n, dtype=bool))
            yield pa.table([batch.column(KEY), *nothing], schema=schema)

    return Fitted(stream(schema, batches()))


def score_outcomes(
    loans: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    features: Sequence[str],
    *,
    categories: Mapping[str, Sequence[str]],
    protected: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    n_trees: int,
    sample_rows: int,
    min_resolved_loans: int,
    random_state: int,
    frozen: Component | None = None,
    session: duckdb.DuckDBPyConnection | None = None,
) -> Fitted:
    """Every loan's loss_probability, is_training_row, outcome_model_hash, status and reason.

    ``loans`` (a dbt relation with its ``session``, or a frame) holds
    loan_id, ``features``, the ``categories`` columns, the ``protected``
    columns (read only by the sentinel, on the training sample),
    ``is_resolved`` and the label ``is_not_fully_recovered`` (null for open
    loans). Returns the scores as a stream (:mod:`loan_recovery.modelling.loan_source`)
    and, when a model was trained, the model to keep
    (:func:`loan_recovery.modelling.model_store.keep`).

    With ``frozen`` (the outcome model of an approved artifact) nothing is
    trained and no outcome is read: the stored forest and calibration score
    every loan, and the status is ``frozen``.
    """
    source = LoanSource.of(loans, session)
    if frozen is not None:
        return _frozen_scores(source, features, categories, post_outcome_columns, frozen)
    check_count("n_trees", n_trees, 1)
    check_count("sample_rows", sample_rows, 2)
    check_count("min_resolved_loans", min_resolved_loans, 2)
    check_count("random_state", random_state, 0)
    check_features(
        [*features, *categories],
        post_outcome_columns,
        forbidden=(RESOLVED, LABEL),
        protected_attributes=list(protected),
    )
    resolved = f"coalesce({quoted(RESOLVED)}, false)"
    found = source.check(
        features,
        [*categories, *protected, RESOLVED, LABEL],
        action="score",
        counted={
            "resolved": resolved,
            "unlabelled": f"{resolved} and {quoted(LABEL)} is null",
            "lost": f"{resolved} and {quoted(LABEL)}::boolean",
        },
    )
    if found["unlabelled"]:
        raise ValueError(f"'{LABEL}' is null for a resolved loan; staging must give every one")
    n_resolved = found["resolved"]
    if n_resolved < min_resolved_loans:
        return _fallback(
            source,
            f"{n_resolved} resolved loans, fewer than min_resolved_loans "
            f"({min_resolved_loans}); the strategy uses the segment score",
        )
    if found["lost"] in (0, n_resolved):
        only = "not fully recovered" if found["lost"] else "fully recovered"
        return _fallback(
            source,
            f"all {n_resolved} resolved loans were {only} (one outcome only); "
            "the strategy uses the segment score",
        )

    training = source.sample(
        [KEY, *features, *categories, *protected, LABEL], sample_rows, random_state, resolved
    )
    book = read_loan_columns(
        training,
        features,
        post_outcome_columns=post_outcome_columns,
        action="score",
        extra_columns=(LABEL,),
        categories=categories,
        protected_attributes=list(protected),
    )
    sample = book.block(0, book.n_rows, np.float64)
    labels = flags(training, LABEL)
    check_features_are_honest(
        sample, book.features, labels, _protected_indicators(training, protected)
    )
    fitted = fit_out_of_bag(sample.astype(np.float32), labels, n_trees, random_state)
    training_probabilities, calibrator = cross_fitted(
        fitted.training_scores, labels, book.loan_id, random_state
    )
    version = model_version(
        fitted.parameters,
        list(book.features),
        LABEL,
        book.loan_id,
        sample,
        labels,
        extra={"calibration": ["platt", calibrator.slope, calibrator.intercept]},
    )
    scores = stream_scores(
        source,
        source.keyed(SCHEMA),
        features,
        categories,
        post_outcome_columns,
        lambda rows: calibrator.apply(positive_proba(fitted.forest, rows)),
        (training.column(KEY).combine_chunks(), training_probabilities),
        _columns(version, TRAINED),
    )
    meta = {
        "version": version,
        "label": LABEL,
        "features": list(book.features),
        "numeric_features": list(features),
        "categories": {name: list(levels) for name, levels in categories.items()},
        "post_outcome_columns": list(post_outcome_columns),
        "parameters": fitted.parameters,
        "calibration": {"slope": calibrator.slope, "intercept": calibrator.intercept},
        "training_rows": book.n_rows,
    }
    arrays = training_arrays(book.loan_id, fitted.forest)
    return Fitted(scores, ((COMPONENT, meta, arrays, fitted.forest),))


def _frozen_scores(
    source: LoanSource,
    features: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    frozen: Component,
) -> Fitted:
    meta, forest = frozen.meta, frozen.forest
    wanted = {name: list(levels) for name, levels in categories.items()}
    if meta["numeric_features"] != list(features) or meta["categories"] != wanted or forest is None:
        raise ValueError("the frozen outcome model was trained on other features; retrain it")
    names = check_features([*features, *categories], post_outcome_columns)
    source.check(features, list(categories), action="score")
    if list(model_features(names[: len(features)], categories)) != meta["features"]:
        raise ValueError("the frozen outcome model was trained on other features; retrain it")
    calibrator = Platt(**meta["calibration"])
    schema = source.keyed(SCHEMA)
    scores = stream_scores(
        source,
        schema,
        features,
        categories,
        post_outcome_columns,
        lambda rows: calibrator.apply(positive_proba(forest, rows)),
        (pa.array([], schema.field(KEY).type), np.empty(0)),
        _columns(meta["version"], FROZEN),
    )
    return Fitted(scores, ((COMPONENT, meta, {}, forest),))
