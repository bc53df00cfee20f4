"""The write-up's risk score: a RandomForest that reproduces high-risk segment membership.

Kept as the baseline the outcome model has to beat. Its label is
``is_high_risk`` (the loan's segment is a high-risk one), available for every
loan, so the forest trains on a deterministic sample of all loans; every
loan's ``segment_risk_score`` is out of sample (out-of-bag for training
rows, see :mod:`loan_recovery.modelling.forest`). Measured on real outcomes it ranks
recovery at chance on the write-up's data: risk_model_metrics says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from loan_recovery.modelling.forest import (
    fit_out_of_bag,
    model_version,
    positive_proba,
    stream_scores,
)
from loan_recovery.modelling.loan_source import LoanSource, numbers
from loan_recovery.modelling.model_input import (
    KEY,
    check_count,
    check_features,
    flags,
    read_loan_columns,
)
from loan_recovery.modelling.model_store import Component, Fitted, training_arrays
from loan_recovery.modelling.status import FROZEN, TRAINED

__all__ = ["COMPONENT", "LABEL", "score_segment_risk"]

LABEL = "is_high_risk"
COMPONENT = "segment_score"
"""The segment score's name in the model store."""
SCHEMA = pa.schema(
    [
        (KEY, pa.string()),
        ("segment_risk_score", pa.float64()),
        ("is_training_row", pa.bool_()),
        ("segment_model_hash", pa.string()),
        ("segment_model_status", pa.string()),
    ]
)
"""The scores' columns (loan_id takes the input's type). ``segment_model_hash`` is
the fitted forest's content hash, one of the four a registry id is made of;
``segment_model_status`` is ``trained`` or ``frozen`` (:mod:`loan_recovery.modelling.status`)."""


def score_segment_risk(
    training: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    features: Sequence[str],
    *,
    post_outcome_columns: Sequence[str],
    n_trees: int,
    sample_rows: int,
    random_state: int,
    frozen: Component | None = None,
    session: duckdb.DuckDBPyConnection | None = None,
) -> Fitted:
    """Every loan's out-of-sample segment_risk_score, is_training_row, model hash and status.

    ``training`` (a dbt relation with its ``session``, or a frame) holds
    loan_id, the features and the label ``is_high_risk``. The forest
    (:func:`loan_recovery.modelling.forest.forest_parameters`) is fitted on every loan,
    or on ``sample_rows`` loans chosen by hashed loan id
    (:meth:`loan_recovery.modelling.loan_source.LoanSource.sample`). The version is a
    hash of the scikit-learn version, the parameters, the features and the
    training rows. The scores come as a stream, a batch at a time.

    Raises ``ValueError`` for a leaky feature (post_outcome_columns or the
    label itself), missing columns, 0 rows (dbt ``build --empty``), null or
    non-finite features, a null or non-0/1 label, and a label with one class.

    With ``frozen`` (the segment score of an approved artifact) nothing is
    fitted and the label is not read: the stored forest scores every loan.
    """
    source = LoanSource.of(training, session)
    if frozen is not None:
        return _frozen_scores(source, features, post_outcome_columns, frozen)
    check_count("n_trees", n_trees, 1)
    check_count("sample_rows", sample_rows, 2)
    check_count("random_state", random_state, 0)
    check_features(features, post_outcome_columns, forbidden=(LABEL,))
    source.check(
        features,
        [],
        action="score",
        label=LABEL,
        purpose="a risk model needs high-risk and other loans",
    )

    sample_table = source.sample([KEY, *features, LABEL], sample_rows, random_state)
    book = read_loan_columns(
        sample_table,
        features,
        post_outcome_columns=post_outcome_columns,
        action="score",
        extra_columns=(LABEL,),
    )
    sample = book.block(0, book.n_rows, np.float64)
    labels = flags(sample_table, LABEL)
    if labels.all() or not labels.any():
        raise ValueError(
            f"the {book.n_rows}-loan training sample has one class only; "
            "raise sample_rows or check the high-risk share"
        )
    fitted = fit_out_of_bag(sample.astype(np.float32), labels, n_trees, random_state)
    version = model_version(
        fitted.parameters, list(book.features), LABEL, book.loan_id, sample, labels
    )
    scores = stream_scores(
        source,
        source.keyed(SCHEMA),
        features,
        {},
        post_outcome_columns,
        lambda rows: positive_proba(fitted.forest, rows),
        (sample_table.column(KEY).combine_chunks(), fitted.training_scores),
        _columns(version, TRAINED),
    )
    meta = {
        "version": version,
        "label": LABEL,
        "features": list(book.features),
        "numeric_features": list(book.features),
        "categories": {},
        "post_outcome_columns": list(post_outcome_columns),
        "parameters": fitted.parameters,
        "training_rows": book.n_rows,
    }
    arrays = training_arrays(book.loan_id, fitted.forest)
    return Fitted(scores, ((COMPONENT, meta, arrays, fitted.forest),))


def _columns(version: str, status: str) -> Callable[[np.ndarray, np.ndarray], list[pa.Array]]:
    """The columns after loan_id (see :data:`SCHEMA`): scores clipped to [0, 1]."""

    def columns(scores: np.ndarray, is_training: np.ndarray) -> list[pa.Array]:
        return [
            numbers(np.clip(scores, 0.0, 1.0)),
            pa.array(is_training, pa.bool_()),
            pa.repeat(pa.scalar(version, pa.string()), len(scores)),
            pa.repeat(pa.scalar(status, pa.string()), len(scores)),
        ]

    return columns


def _frozen_scores(
    source: LoanSource,
    features: Sequence[str],
    post_outcome_columns: Sequence[str],
    frozen: Component,
) -> Fitted:
    forest = frozen.forest
    if list(frozen.meta["features"]) != list(features) or forest is None:
        raise ValueError("the frozen segment score was trained on other features; retrain it")
    check_features(features, post_outcome_columns)
    source.check(features, [], action="score")
    schema = source.keyed(SCHEMA)
    scores = stream_scores(
        source,
        schema,
        features,
        {},
        post_outcome_columns,
        lambda rows: positive_proba(forest, rows),
        (pa.array([], schema.field(KEY).type), np.empty(0)),
        _columns(frozen.meta["version"], FROZEN),
    )
    return Fitted(scores, ((COMPONENT, frozen.meta, {}, forest),))
