"""The write-up's risk score: a RandomForest that reproduces high-risk segment membership.

Kept as the baseline the outcome model has to beat. Its label is
``is_high_risk`` (the loan's segment is a high-risk one), available for every
loan, so the forest trains on a deterministic sample of all loans; every
loan's ``segment_risk_score`` is out of sample (out-of-bag for training
rows, see :mod:`loan_recovery.forest`). Measured on real outcomes it ranks
recovery at chance on the write-up's data: risk_model_metrics says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from loan_recovery.forest import fit_out_of_bag, model_version, positive_proba, score_in_chunks
from loan_recovery.model_input import (
    KEY,
    check_count,
    fitting_sample,
    read_label,
    read_loan_columns,
    repeated_string,
)
from loan_recovery.model_store import Component, Fitted, out_of_bag_mask

__all__ = ["COMPONENT", "LABEL", "score_segment_risk"]

LABEL = "is_high_risk"
COMPONENT = "segment_score"
"""The segment score's name in the model store."""


def score_segment_risk(
    training: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_trees: int,
    sample_rows: int,
    random_state: int,
    frozen: Component | None = None,
) -> Fitted:
    """Every loan's out-of-sample segment_risk_score, is_training_row and segment_model_version.

    ``training`` holds loan_id, the features and the label ``is_high_risk``.
    The forest (:func:`loan_recovery.forest.forest_parameters`) is fitted on
    every loan, or on ``sample_rows`` loans chosen by hashed loan id. The
    version is a hash of the scikit-learn version, the parameters, the
    features and the training rows.

    Raises ``ValueError`` for a leaky feature (post_outcome_columns or the
    label itself), missing columns, 0 rows (dbt ``build --empty``), null or
    non-finite features, a null or non-0/1 label, and a label with one class.

    With ``frozen`` (the segment score of an approved artifact) nothing is
    fitted and the label is not read: the stored forest scores every loan.
    """
    if frozen is not None:
        return _frozen_scores(training, features, post_outcome_columns, frozen)
    check_count("n_trees", n_trees, 1)
    check_count("sample_rows", sample_rows, 2)
    check_count("random_state", random_state, 0)
    book = read_loan_columns(
        training,
        features,
        post_outcome_columns=post_outcome_columns,
        action="score",
        extra_columns=(LABEL,),
    )
    labels = read_label(training, LABEL, purpose="a risk model needs high-risk and other loans")

    positions = fitting_sample(book.loan_id, sample_rows, random_state)
    sample = book.take(positions, np.float64)
    sample_labels = labels[positions]
    if sample_labels.all() or not sample_labels.any():
        raise ValueError(
            f"the {len(positions)}-loan training sample has one class only; "
            "raise sample_rows or check the high-risk share"
        )
    fitted = fit_out_of_bag(sample.astype(np.float32), sample_labels, n_trees, random_state)

    scores = np.empty(book.n_rows, dtype=np.float64)
    is_training = np.zeros(book.n_rows, dtype=bool)
    is_training[positions] = True
    scores[positions] = fitted.training_scores
    score_in_chunks(
        book.n_rows,
        lambda start, stop: book.block(start, stop, np.float32),
        ~is_training,
        lambda rows: positive_proba(fitted.forest, rows),
        scores,
    )
    np.clip(scores, 0.0, 1.0, out=scores)

    version = model_version(
        fitted.parameters,
        list(book.features),
        LABEL,
        book.loan_id.iloc[positions],
        sample,
        sample_labels,
    )
    frame = _frame(book.loan_id, scores, is_training, version)
    meta = {
        "version": version,
        "label": LABEL,
        "features": list(book.features),
        "numeric_features": list(book.features),
        "categories": {},
        "post_outcome_columns": list(post_outcome_columns),
        "parameters": fitted.parameters,
        "training_rows": len(positions),
    }
    arrays = {
        "training_ids": book.loan_id.iloc[positions].astype(str).to_numpy(dtype=str),
        "oob_mask": out_of_bag_mask(fitted.forest, len(positions)),
    }
    return Fitted(frame, ((COMPONENT, meta, arrays, fitted.forest),))


def _frame(
    loan_id: pd.Series, scores: np.ndarray, is_training: np.ndarray, version: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            KEY: loan_id,
            "segment_risk_score": scores,
            "is_training_row": is_training,
            "segment_model_version": repeated_string(version, len(loan_id)),
        },
        copy=False,
    )


def _frozen_scores(
    training: pd.DataFrame | pa.Table,
    features: Sequence[str],
    post_outcome_columns: Sequence[str],
    frozen: Component,
) -> Fitted:
    if list(frozen.meta["features"]) != list(features) or frozen.forest is None:
        raise ValueError("the frozen segment score was trained on other features; retrain it")
    book = read_loan_columns(
        training, features, post_outcome_columns=post_outcome_columns, action="score"
    )
    scores = np.empty(book.n_rows, dtype=np.float64)
    forest = frozen.forest
    score_in_chunks(
        book.n_rows,
        lambda start, stop: book.block(start, stop, np.float32),
        np.ones(book.n_rows, dtype=bool),
        lambda rows: positive_proba(forest, rows),
        scores,
    )
    np.clip(scores, 0.0, 1.0, out=scores)
    frame = _frame(book.loan_id, scores, np.zeros(book.n_rows, dtype=bool), frozen.meta["version"])
    return Fitted(frame, ((COMPONENT, frozen.meta, {}, forest),))
