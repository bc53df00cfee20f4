"""Risk scoring: a RandomForest that gives every loan an out-of-sample risk score.

The original notebook trained on 80% of the book and scored only the other
20%, so four loans in five had no score, and scoring the training rows with
the fitted model would have reported near-certain, memorized probabilities.
Here every loan is scored by trees that never saw it:

* the forest trains on the whole book, or on a deterministic random sample of
  ``sample_rows`` loans when the book is larger;
* a training loan's score is its out-of-bag probability (the mean over the
  trees whose bootstrap left it out); a loan that no tree left out (possible
  only with very few trees) is scored out-of-fold by forests refitted on the
  other ``FALLBACK_FOLDS - 1`` folds of the training rows;
* every other loan is scored by the fitted forest, which never saw it.

Tree sizing (why the forest stays fast at 10M loans on two cores):

* each tree's bootstrap draws at most ``TREE_ROWS`` (10,000) rows. A tree's
  fit time grows faster than linearly with its rows, and with 100 trees on the
  default 50,000-row sample every training row still lands in ~20 bootstraps.
  Each training row is left out of ~82% of the trees, so out-of-bag scores
  average ~80 trees rather than ~37, and a row no tree left out is
  practically impossible at the default size;
* ``min_samples_leaf`` = max(1, rows per tree // ``ROWS_PER_LEAF``), so a tree
  has at most ~1,000 leaves whatever the data size, and leaf probabilities are
  averages of >= 10 loans at full size rather than single memorized rows;
* ``max_depth`` = ``MAX_DEPTH`` (12) caps the cost of scoring a row at 12
  comparisons per tree; scoring is most of the time on a large book.

Scores are computed a chunk at a time in float32 (what the trees compare in
anyway), trees summed in a fixed order, so the same input gives bit-identical
scores whatever the thread count.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import sklearn
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold

from loan_recovery.model_input import (
    KEY,
    LoanColumns,
    check_count,
    column_series,
    fitting_sample,
    read_loan_columns,
    string_column,
)

__all__ = [
    "FALLBACK_FOLDS",
    "LABEL",
    "MAX_DEPTH",
    "ROWS_PER_LEAF",
    "TREE_ROWS",
    "forest_parameters",
    "score_risk",
]

LABEL = "is_high_risk"
TREE_ROWS = 10_000
ROWS_PER_LEAF = 1_000
MAX_DEPTH = 12
FALLBACK_FOLDS = 5
CHUNK_ROWS = 1 << 17
"""Rows per scoring block: ~5 MB of float32 features, small enough to spread over threads."""


def forest_parameters(n_training_rows: int, n_trees: int, random_state: int) -> dict[str, object]:
    """RandomForestClassifier parameters for a training set of ``n_training_rows``.

    See the module docstring for why each size is what it is.
    """
    tree_rows = min(n_training_rows, TREE_ROWS)
    return {
        "n_estimators": n_trees,
        "random_state": random_state,
        "bootstrap": True,
        "max_samples": tree_rows if n_training_rows > TREE_ROWS else None,
        "min_samples_leaf": max(1, tree_rows // ROWS_PER_LEAF),
        "max_depth": MAX_DEPTH,
        "max_features": "sqrt",
    }


def _read_label(data: pd.DataFrame | pa.Table) -> NDArray[np.bool_]:
    """The label as a bool array: bool, or integers 0/1; no nulls; both classes present."""
    series = column_series(data, LABEL)
    nulls = int(series.isna().sum())
    if nulls:
        raise ValueError(f"label '{LABEL}' has {nulls} null value(s); every loan needs one")
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=bool)
    elif pd.api.types.is_integer_dtype(series.dtype):
        raw = series.to_numpy(dtype=np.int64)
        if not np.isin(raw, (0, 1)).all():
            raise ValueError(f"label '{LABEL}' must be boolean or 0/1")
        values = raw == 1
    else:
        raise ValueError(f"label '{LABEL}' must be boolean or 0/1, got dtype {series.dtype}")
    positives = int(values.sum())
    if positives in (0, len(values)):
        only = "true" if positives else "false"
        raise ValueError(
            f"label '{LABEL}' has one class only (all {len(values)} rows are {only}); "
            "a risk model needs both high-risk and other loans"
        )
    return values


def _positive_proba(forest: RandomForestClassifier, rows: NDArray[np.float32]) -> NDArray:
    """Mean positive-class probability over the trees, summed in a fixed tree order.

    ``RandomForestClassifier.predict_proba`` adds tree outputs in whatever
    order its threads finish, which can change the last bits; this sums in
    estimator order so scores are reproducible exactly. A forest trained on
    one class only (possible in a fallback fold) predicts that class.
    """
    classes = list(forest.classes_)
    if True not in classes:
        return np.zeros(len(rows))
    column = classes.index(True)
    total = np.zeros(len(rows))
    for tree in forest.estimators_:
        total += tree.predict_proba(rows, check_input=False)[:, column]
    return total / len(forest.estimators_)


def _workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _score_unseen(
    forest: RandomForestClassifier,
    book: LoanColumns,
    unseen: NDArray[np.bool_],
    scores: NDArray[np.float64],
) -> None:
    """Fill ``scores`` where ``unseen`` is true, chunk by chunk on all cores."""

    def score_chunk(start: int) -> None:
        stop = min(start + CHUNK_ROWS, book.n_rows)
        rows = unseen[start:stop]
        if rows.any():
            block = book.block(start, stop, np.float32)[rows]
            scores[start:stop][rows] = _positive_proba(forest, block)

    starts = range(0, book.n_rows, CHUNK_ROWS)
    with ThreadPoolExecutor(max_workers=_workers()) as pool:
        list(pool.map(score_chunk, starts))


def _out_of_fold(
    rows: NDArray[np.float32],
    labels: NDArray[np.bool_],
    targets: NDArray[np.intp],
    parameters: dict[str, object],
    random_state: int,
) -> NDArray[np.float64]:
    """Scores for training rows ``targets`` from forests fitted without their fold."""
    result = np.empty(len(targets))
    wanted = np.zeros(len(rows), dtype=bool)
    wanted[targets] = True
    folds = KFold(n_splits=min(FALLBACK_FOLDS, len(rows)), shuffle=True, random_state=random_state)
    position = {int(t): i for i, t in enumerate(targets)}
    for fit_index, held_index in folds.split(rows):
        held = held_index[wanted[held_index]]
        if held.size == 0:
            continue
        fold_parameters = {**parameters, "max_samples": None, "n_jobs": -1}
        forest = RandomForestClassifier(**fold_parameters).fit(rows[fit_index], labels[fit_index])
        probabilities = _positive_proba(forest, np.ascontiguousarray(rows[held]))
        for row, probability in zip(held, probabilities, strict=True):
            result[position[int(row)]] = probability
    return result


def _model_version(
    parameters: dict[str, object],
    features: Sequence[str],
    loan_ids: pd.Series,
    rows: NDArray[np.float64],
    labels: NDArray[np.bool_],
) -> str:
    """Short sha256 of what determines the model: parameters, features and training data."""
    data = hashlib.sha256()
    data.update(pd.util.hash_pandas_object(loan_ids, index=False).to_numpy().tobytes())
    data.update(np.ascontiguousarray(rows).tobytes())
    data.update(labels.tobytes())
    payload = {
        "model": "RandomForestClassifier",
        "scikit_learn": sklearn.__version__,
        "parameters": parameters,
        "features": list(features),
        "label": LABEL,
        "training_data": data.hexdigest(),
    }
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]


def score_risk(
    training: pd.DataFrame | pa.Table,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_trees: int,
    sample_rows: int,
    random_state: int,
) -> pd.DataFrame:
    """Score every loan out-of-sample: columns loan_id, risk_score, is_training_row, model_version.

    ``training`` holds loan_id, the features and the label ``is_high_risk``
    (membership of a high-risk segment). A ``RandomForestClassifier`` (sized
    as in the module docstring, ``n_jobs=-1``, ``oob_score=True``) is fitted
    on every loan, or on a deterministic sample of ``sample_rows`` loans. The
    risk_score in [0, 1] is the out-of-bag probability of high risk for
    training rows (``is_training_row`` true) and the fitted forest's
    probability for the rest, so no loan is scored by a tree that saw it.

    model_version is a 12-hex-digit sha256 of the scikit-learn version, the
    forest parameters, the feature list and the training rows (ids, feature
    values, labels): the same input gives the same version and the same
    scores; different training data gives a different version.

    Raises ``ValueError`` for a leaky feature (post_outcome_columns or the
    label itself), missing columns, 0 rows (dbt ``build --empty``), null or
    non-finite features, a null or non-0/1 label, and a label with one class.
    """
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
    labels = _read_label(training)

    positions = fitting_sample(book.loan_id, sample_rows, random_state)
    sample = book.take(positions, np.float64)
    sample_labels = labels[positions]
    if sample_labels.all() or not sample_labels.any():
        raise ValueError(
            f"the {len(positions)}-loan training sample has one class only; "
            "raise sample_rows or check the high-risk share"
        )
    rows = sample.astype(np.float32)
    parameters = forest_parameters(len(positions), n_trees, random_state)
    forest = RandomForestClassifier(**parameters, n_jobs=-1, oob_score=True)
    with warnings.catch_warnings():
        # Rows no tree left out are detected below and scored out-of-fold.
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        forest.fit(rows, sample_labels)

    oob = forest.oob_decision_function_
    training_scores = oob[:, list(forest.classes_).index(True)].astype(np.float64)
    never_out = np.flatnonzero(oob.sum(axis=1) == 0)
    if never_out.size:
        training_scores[never_out] = _out_of_fold(
            rows, sample_labels, never_out, parameters, random_state
        )

    scores = np.empty(book.n_rows, dtype=np.float64)
    is_training = np.zeros(book.n_rows, dtype=bool)
    is_training[positions] = True
    scores[positions] = training_scores
    if not is_training.all():
        _score_unseen(forest, book, ~is_training, scores)
    np.clip(scores, 0.0, 1.0, out=scores)

    version = _model_version(
        parameters,
        book.features,
        book.loan_id.iloc[positions],
        sample,
        sample_labels,
    )
    return pd.DataFrame(
        {
            KEY: book.loan_id,
            "risk_score": scores,
            "is_training_row": is_training,
            "model_version": string_column([version], np.zeros(book.n_rows, dtype=np.int32)),
        },
        copy=False,
    )
