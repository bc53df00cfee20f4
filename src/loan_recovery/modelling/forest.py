"""The sized RandomForest both scores use, fitted so that every loan is scored out of sample.

The original notebook trained on 80% of the book and scored only the other
20%, so four loans in five had no score, and scoring the training rows with
the fitted model would have reported near-certain, memorized probabilities.
Here every loan is scored by trees that never saw it:

* the forest trains on a deterministic sample (all rows when they fit);
* a training row's score is its out-of-bag probability (the mean over the
  trees whose bootstrap left it out); a row that no tree left out (possible
  only with very few trees) is scored out-of-fold by forests refitted on the
  other ``FALLBACK_FOLDS - 1`` folds of the training rows;
* every other row is scored by the fitted forest, which never saw it.

Tree sizing (why the forest stays fast at 10M loans on two cores):

* each tree's bootstrap draws at most ``TREE_ROWS`` (10,000) rows. A tree's
  fit time grows faster than linearly with its rows. On a 50,000-row sample
  each training row is left out of ~82% of the trees rather than ~37%, so
  its out-of-bag score averages ~33 of the outcome model's 40 trees;
* the outcome model's 40 trees (var ``outcome_trees``) are where more trees
  stop paying: on the 50,000-loan benchmark book, 60 trees graded 0.8114 AUC
  on the open loans and 40 graded 0.8105, while scoring a 1M book is most of
  a build's time and grows with every tree. The segment score keeps 50
  (``scoring_trees``): with 30 its values get lumpy, and two same-population
  3,000-loan books then differ by a PSI of 0.15, a false drift alarm;
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sklearn
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold

from loan_recovery.modelling.loan_source import LoanSource, stream
from loan_recovery.modelling.model_input import KEY, LoanColumns, read_loan_columns

TREE_ROWS = 10_000
ROWS_PER_LEAF = 1_000
MAX_DEPTH = 12
FALLBACK_FOLDS = 5
CHUNK_ROWS = 1 << 17
"""Rows per scoring block: ~5-10 MB of float32 features, small enough to spread over threads."""


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


def positive_proba(forest: RandomForestClassifier, rows: NDArray[np.float32]) -> NDArray:
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


def workers() -> int:
    """The cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


@dataclass(frozen=True)
class FittedForest:
    """A forest, its parameters, and the out-of-sample scores of the rows it trained on."""

    forest: RandomForestClassifier
    parameters: dict[str, object]
    training_scores: NDArray[np.float64]


def _out_of_fold(
    rows: NDArray[np.float32],
    labels: NDArray[np.bool_],
    targets: NDArray[np.intp],
    parameters: Mapping[str, object],
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
        probabilities = positive_proba(forest, np.ascontiguousarray(rows[held]))
        for row, probability in zip(held, probabilities, strict=True):
            result[position[int(row)]] = probability
    return result


def fit_out_of_bag(
    rows: NDArray[np.float32], labels: NDArray[np.bool_], n_trees: int, random_state: int
) -> FittedForest:
    """Fit the sized forest on ``rows`` and score each of them out of bag (or out of fold)."""
    parameters = forest_parameters(len(rows), n_trees, random_state)
    forest = RandomForestClassifier(**parameters, n_jobs=-1, oob_score=True)
    with warnings.catch_warnings():
        # Rows no tree left out are detected below and scored out-of-fold.
        warnings.filterwarnings("ignore", message="Some inputs do not have OOB scores")
        forest.fit(rows, labels)
    oob = forest.oob_decision_function_
    scores = oob[:, list(forest.classes_).index(True)].astype(np.float64)
    never_out = np.flatnonzero(oob.sum(axis=1) == 0)
    if never_out.size:
        scores[never_out] = _out_of_fold(rows, labels, never_out, parameters, random_state)
    return FittedForest(forest, parameters, scores)


def chunks(n_rows: int) -> list[tuple[int, int]]:
    """Row ranges that share ``n_rows`` evenly over the cores, none longer than ``CHUNK_ROWS``.

    Each core gets a whole number of ranges, so no core scores alone at the
    end of a batch. Before, a batch was cut every ``CHUNK_ROWS`` rows only,
    and DuckDB's 122,880-row batches made one range each: one core scored
    while the other waited (1M loans: 2.5 s to score, now 1.4 s).
    """
    cores = workers()
    parts = cores * max(1, -(-n_rows // (CHUNK_ROWS * cores)))
    size = max(1, -(-n_rows // parts))
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def on_all_cores(n_rows: int, work: Callable[[int, int], None]) -> None:
    """``work(start, stop)`` for every range of :func:`chunks`, on a thread per core.

    The work must release the GIL for the cores to share it (tree lookups and
    NumPy gathers do) and must write only its own rows.
    """
    with ThreadPoolExecutor(max_workers=workers()) as pool:
        list(pool.map(lambda bounds: work(*bounds), chunks(n_rows)))


def score_in_chunks(
    n_rows: int,
    block: Callable[[int, int], NDArray[np.float32]],
    wanted: NDArray[np.bool_],
    score: Callable[[NDArray[np.float32]], NDArray[np.float64]],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out`` where ``wanted`` with ``score(rows)``, a block of rows at a time, on all cores.

    ``block(start, stop)`` returns rows ``start:stop`` as float32; only the
    wanted ones are scored. Memory stays at a few blocks whatever ``n_rows``.
    """

    def one(start: int, stop: int) -> None:
        rows = wanted[start:stop]
        if rows.any():
            out[start:stop][rows] = score(block(start, stop)[rows])

    on_all_cores(n_rows, one)


def out_of_sample_scores(
    batch: LoanColumns,
    ids: pa.ChunkedArray,
    training_ids: pa.Array,
    training_scores: NDArray[np.float64],
    score: Callable[[NDArray[np.float32]], NDArray[np.float64]],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """A batch's scores and training flags (``ids`` are its loan ids, as Arrow).

    A training loan keeps its out-of-sample score, from the trees (or folds) that never saw it;
    every other loan is scored by ``score``, the model fitted on all the
    training loans. Found by id rather than position, because the book is
    read in batches and the sample was drawn by id.
    """
    if len(training_ids):
        found = pc.fill_null(pc.index_in(ids, value_set=training_ids), -1)
        position = np.asarray(found.to_numpy(zero_copy_only=False), dtype=np.int64)
    else:
        position = np.full(batch.n_rows, -1, dtype=np.int64)
    is_training = position >= 0
    scores = np.empty(len(position), dtype=np.float64)
    scores[is_training] = training_scores[position[is_training]]
    score_in_chunks(
        len(position),
        lambda start, stop: batch.block(start, stop, np.float32),
        ~is_training,
        score,
        scores,
    )
    return scores, is_training


def stream_scores(
    source: LoanSource,
    schema: pa.Schema,
    features: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    post_outcome_columns: Sequence[str],
    score: Callable[[NDArray[np.float32]], NDArray[np.float64]],
    training: tuple[pa.Array, NDArray[np.float64]],
    columns: Callable[[NDArray[np.float64], NDArray[np.bool_]], list[pa.Array]],
) -> pa.RecordBatchReader:
    """Every loan of ``source`` scored out of sample, a batch at a time.

    ``training`` is (training loan ids, their out-of-sample scores), see
    :func:`out_of_sample_scores`;
    ``columns(scores, is_training)`` makes the output columns after loan_id,
    as ``schema`` names them.
    """

    def batches() -> Iterator[pa.Table]:
        for table in source.batches([KEY, *features, *categories]):
            batch = read_loan_columns(
                table,
                features,
                post_outcome_columns=post_outcome_columns,
                action="score",
                categories=categories,
            )
            ids = table.column(KEY)
            scores, is_training = out_of_sample_scores(batch, ids, *training, score)
            yield pa.table([ids, *columns(scores, is_training)], schema=schema)

    return stream(schema, batches())


def model_version(
    parameters: Mapping[str, object],
    features: list[str],
    label: str,
    loan_ids: pd.Series,
    rows: NDArray[np.floating],
    labels: NDArray[np.bool_],
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Short sha256 of what determines a model: parameters, features and training data."""
    data = hashlib.sha256()
    data.update(pd.util.hash_pandas_object(loan_ids, index=False).to_numpy().tobytes())
    data.update(np.ascontiguousarray(rows).tobytes())
    data.update(np.ascontiguousarray(labels).tobytes())
    payload = {
        "model": "RandomForestClassifier",
        "scikit_learn": sklearn.__version__,
        "parameters": dict(parameters),
        "features": list(features),
        "label": label,
        "training_data": data.hexdigest(),
        **(extra or {}),
    }
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()[:12]
