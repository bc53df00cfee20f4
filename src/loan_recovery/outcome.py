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
  name (:func:`loan_recovery.model_input.check_features`) and by data
  (:mod:`loan_recovery.sentinel`) before anything is trained;
* probabilities: every training loan's is out of bag, every other loan's
  comes from the forest that never saw it; all are calibrated by Platt
  scaling, cross-fitted for the training loans
  (:mod:`loan_recovery.calibration`).

When fewer than ``min_resolved_loans`` resolved loans exist, or they hold
one outcome only, nothing is trained: every loss_probability is null and
``outcome_model_status`` says why, so the strategy falls back to the
write-up's score and the build says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from loan_recovery.calibration import Platt, cross_fitted
from loan_recovery.forest import fit_out_of_bag, model_version, positive_proba, score_in_chunks
from loan_recovery.model_input import (
    KEY,
    OUTCOME_LABEL,
    RESOLVED,
    check_count,
    column_series,
    fitting_sample,
    indicator_arrays,
    indicator_name,
    read_loan_columns,
    repeated_string,
)
from loan_recovery.model_store import Component, Fitted, out_of_bag_mask
from loan_recovery.sentinel import check_features_are_honest

__all__ = ["COMPONENT", "FROZEN", "LABEL", "TRAINED", "score_outcomes"]

LABEL = OUTCOME_LABEL
TRAINED = "trained"
FROZEN = "frozen"
"""Status of scores from an approved artifact: nothing was trained in this build."""
COMPONENT = "outcome"
"""The outcome model's name in the model store."""


def _fallback(loan_id: pd.Series, reason: str) -> Fitted:
    n = len(loan_id)
    scores = pd.DataFrame(
        {
            KEY: loan_id,
            "loss_probability": pd.Series(np.full(n, np.nan), dtype="float64"),
            "is_training_row": np.zeros(n, dtype=bool),
            "outcome_model_version": pd.Series([None] * n, dtype="string"),
            "outcome_model_status": repeated_string(reason, n),
        },
        copy=False,
    )
    return Fitted(scores)


def _protected_indicators(
    data: pd.DataFrame | pa.Table, protected: Mapping[str, Sequence[str]], positions: np.ndarray
) -> dict[str, np.ndarray]:
    indicators: dict[str, np.ndarray] = {}
    for column, levels in protected.items():
        for level, flags in zip(levels, indicator_arrays(data, column, levels), strict=True):
            indicators[indicator_name(column, level)] = flags[positions]
    return indicators


def score_outcomes(
    loans: pd.DataFrame | pa.Table,
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
) -> Fitted:
    """Every loan's loss_probability, is_training_row, outcome_model_version and status.

    ``loans`` holds loan_id, ``features``, the ``categories`` columns, the
    ``protected`` columns (read only by the sentinel), ``is_resolved`` and
    the label ``is_not_fully_recovered`` (null for open loans). Returns the
    scores and, when a model was trained, the model to keep
    (:func:`loan_recovery.model_store.keep`).

    With ``frozen`` (the outcome model of an approved artifact) nothing is
    trained and no outcome is read: the stored forest and calibration score
    every loan, and the status is ``frozen``.
    """
    if frozen is not None:
        return _frozen_scores(loans, features, categories, post_outcome_columns, frozen)
    check_count("n_trees", n_trees, 1)
    check_count("sample_rows", sample_rows, 2)
    check_count("min_resolved_loans", min_resolved_loans, 2)
    check_count("random_state", random_state, 0)
    book = read_loan_columns(
        loans,
        features,
        post_outcome_columns=post_outcome_columns,
        action="score",
        extra_columns=(RESOLVED, LABEL),
        categories=categories,
        protected_attributes=list(protected),
    )
    resolved = column_series(loans, RESOLVED).to_numpy(dtype=bool, na_value=False)
    label = column_series(loans, LABEL)
    if label[resolved].isna().any():
        raise ValueError(f"'{LABEL}' is null for a resolved loan; staging must give every one")
    outcome = label.fillna(False).to_numpy(dtype=bool)
    n_resolved = int(resolved.sum())
    if n_resolved < min_resolved_loans:
        return _fallback(
            book.loan_id,
            f"fallback: {n_resolved} resolved loans, fewer than min_resolved_loans "
            f"({min_resolved_loans}); the strategy uses the segment score",
        )
    if outcome[resolved].all() or not outcome[resolved].any():
        only = "not fully recovered" if outcome[resolved].all() else "fully recovered"
        return _fallback(
            book.loan_id,
            f"fallback: all {n_resolved} resolved loans were {only} (one outcome only); "
            "the strategy uses the segment score",
        )

    resolved_positions = np.flatnonzero(resolved)
    chosen = fitting_sample(
        book.loan_id.iloc[resolved_positions].reset_index(drop=True), sample_rows, random_state
    )
    positions = resolved_positions[chosen]
    sample = book.take(positions, np.float64)
    labels = outcome[positions]
    check_features_are_honest(
        sample, book.features, labels, _protected_indicators(loans, protected, positions)
    )
    fitted = fit_out_of_bag(sample.astype(np.float32), labels, n_trees, random_state)
    training_ids = book.loan_id.iloc[positions].reset_index(drop=True)
    training_probabilities, calibrator = cross_fitted(
        fitted.training_scores, labels, training_ids, random_state
    )

    probabilities = np.empty(book.n_rows, dtype=np.float64)
    is_training = np.zeros(book.n_rows, dtype=bool)
    is_training[positions] = True
    probabilities[positions] = training_probabilities
    score_in_chunks(
        book.n_rows,
        lambda start, stop: book.block(start, stop, np.float32),
        ~is_training,
        lambda rows: calibrator.apply(positive_proba(fitted.forest, rows)),
        probabilities,
    )
    version = model_version(
        fitted.parameters,
        list(book.features),
        LABEL,
        training_ids,
        sample,
        labels,
        extra={"calibration": ["platt", calibrator.slope, calibrator.intercept]},
    )
    scores = _frame(book.loan_id, probabilities, is_training, version, TRAINED)
    meta = {
        "version": version,
        "label": LABEL,
        "features": list(book.features),
        "numeric_features": list(features),
        "categories": {name: list(levels) for name, levels in categories.items()},
        "post_outcome_columns": list(post_outcome_columns),
        "parameters": fitted.parameters,
        "calibration": {"slope": calibrator.slope, "intercept": calibrator.intercept},
        "training_rows": len(positions),
    }
    arrays = {
        "training_ids": training_ids.astype(str).to_numpy(dtype=str),
        "oob_mask": out_of_bag_mask(fitted.forest, len(positions)),
    }
    return Fitted(scores, ((COMPONENT, meta, arrays, fitted.forest),))


def _frame(
    loan_id: pd.Series,
    probabilities: np.ndarray,
    is_training: np.ndarray,
    version: str,
    status: str,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            KEY: loan_id,
            "loss_probability": probabilities,
            "is_training_row": is_training,
            "outcome_model_version": repeated_string(version, len(loan_id)),
            "outcome_model_status": repeated_string(status, len(loan_id)),
        },
        copy=False,
    )


def _frozen_scores(
    loans: pd.DataFrame | pa.Table,
    features: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    frozen: Component,
) -> Fitted:
    meta, forest = frozen.meta, frozen.forest
    wanted = {name: list(levels) for name, levels in categories.items()}
    if meta["numeric_features"] != list(features) or meta["categories"] != wanted or forest is None:
        raise ValueError("the frozen outcome model was trained on other features; retrain it")
    book = read_loan_columns(
        loans,
        features,
        post_outcome_columns=post_outcome_columns,
        action="score",
        categories=categories,
    )
    if list(book.features) != meta["features"]:
        raise ValueError("the frozen outcome model was trained on other features; retrain it")
    calibrator = Platt(**meta["calibration"])
    probabilities = np.empty(book.n_rows, dtype=np.float64)
    score_in_chunks(
        book.n_rows,
        lambda start, stop: book.block(start, stop, np.float32),
        np.ones(book.n_rows, dtype=bool),
        lambda rows: calibrator.apply(positive_proba(forest, rows)),
        probabilities,
    )
    no_training = np.zeros(book.n_rows, dtype=bool)
    scores = _frame(book.loan_id, probabilities, no_training, meta["version"], FROZEN)
    return Fitted(scores, ((COMPONENT, meta, {}, forest),))
