"""Why a loan scores what it scores: additive per-feature contributions from the forest's paths.

A tree's prediction for a loan is the value at its leaf. Walking the path
from the root, each split changes the value by (child - parent); crediting
that change to the split's feature makes the prediction exactly the root
value (the *bias*) plus one sum per feature. Averaged over the trees that
score the loan, the forest's vote is the mean root value plus the mean
contributions. Every leaf's per-feature sums are precomputed once per tree,
so explaining a loan is one leaf lookup and one vector add per tree.

The score a loan carries is not always the raw vote:

* a training loan's score is its out-of-bag vote, so its contributions come
  from the trees that left it out (the stored out-of-bag mask); one that no
  tree left out was scored out of fold, and all trees explain it, rescaled
  to its score;
* the outcome model's probability is the Platt-calibrated vote, which is
  not additive in the vote. The contributions are rescaled by one factor
  per loan, (score - calibrated bias) / (vote - bias), with the calibrated
  bias as the new bias: signs and proportions stay, and bias plus
  contributions equal the loan's score (checked to 1e-6 by a dbt test).

Only the loans a collector works need reasons: the open ones, or every loan
when none is open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier

from loan_recovery.modelling.calibration import Platt
from loan_recovery.modelling.forest import on_all_cores
from loan_recovery.modelling.loan_source import LoanSource, numbers, stream
from loan_recovery.modelling.model_input import (
    KEY,
    check_features,
    column_series,
    read_loan_columns,
)
from loan_recovery.modelling.model_store import Component, read_component

__all__ = ["COMPONENT_OF_SOURCE", "contribution_column", "explain_scores", "forest_contributions"]

COMPONENT_OF_SOURCE = {"outcome": "outcome", "segment": "segment_score"}
"""The stored model behind each score_source."""

BIAS = "bias"


def contribution_column(feature: str) -> str:
    """A feature's contribution column name: ``loan_type=Home`` -> ``loan_type__home``."""
    base, _, level = feature.partition("=")
    return base if not level else f"{base}__{re.sub(r'[^a-z0-9]+', '_', level.lower()).strip('_')}"


def _leaf_tables(forest: RandomForestClassifier) -> list[tuple[NDArray[np.float64], float]]:
    """Per tree: (node x feature) sums of value changes on the path to each node; the root value.

    Built a depth at a time (a child's sums are its parent's plus one change),
    so a tree costs a dozen array operations, not a Python step per node.
    """
    positive = list(forest.classes_).index(True)
    tables = []
    for estimator in forest.estimators_:
        tree = estimator.tree_
        value = tree.value[:, 0, positive]
        sums = np.zeros((tree.node_count, forest.n_features_in_), dtype=np.float64)
        level = np.array([0])
        while level.size:
            level = level[tree.children_left[level] >= 0]
            left, right = tree.children_left[level], tree.children_right[level]
            for children in (left, right):
                sums[children] = sums[level]
                sums[children, tree.feature[level]] += value[children] - value[level]
            level = np.concatenate((left, right))
        tables.append((sums, float(value[0])))
    return tables


def forest_contributions(
    forest: RandomForestClassifier,
    rows: NDArray[np.float32],
    trees_used: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(vote, bias, contributions) per row, averaging the trees in ``trees_used`` (default: all).

    vote = bias + contributions.sum(axis=1) exactly (up to float rounding).
    A row no used tree covers gets NaN.
    """
    tables = _leaf_tables(forest)
    n_rows, n_features = len(rows), forest.n_features_in_
    contributions = np.zeros((n_rows, n_features), dtype=np.float64)
    bias = np.zeros(n_rows, dtype=np.float64)
    counts = np.zeros(n_rows, dtype=np.float64)

    def chunk(start: int, stop: int) -> None:
        # Leaf lookups and gathers release the GIL: chunks run on all cores.
        block = rows[start:stop]
        for index, (sums, root) in enumerate(tables):
            leaves = forest.estimators_[index].tree_.apply(block)
            if trees_used is None:
                contributions[start:stop] += sums[leaves]
                bias[start:stop] += root
                counts[start:stop] += 1
            else:
                used = trees_used[start:stop, index]
                contributions[start:stop][used] += sums[leaves[used]]
                bias[start:stop][used] += root
                counts[start:stop][used] += 1

    on_all_cores(n_rows, chunk)
    with np.errstate(invalid="ignore", divide="ignore"):
        contributions /= counts[:, None]
        bias /= counts
    return bias + contributions.sum(axis=1), bias, contributions


def _rescaled(
    vote: NDArray[np.float64],
    bias: NDArray[np.float64],
    contributions: NDArray[np.float64],
    score: NDArray[np.float64],
    calibration: Platt | None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Contributions and bias that add up to ``score`` (module docstring)."""
    new_bias = calibration.apply(bias) if calibration is not None else bias
    moved = vote - bias
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(np.abs(moved) > 1e-12, (score - new_bias) / moved, 0.0)
    new_bias = np.where(np.abs(moved) > 1e-12, new_bias, score)
    return new_bias, contributions * factor[:, None]


def _load(source: LoanSource) -> Component:
    rows, found = source.distinct(["score_source", "score_model_hash"])
    if rows == 0:
        raise ValueError("no loans to explain: the input has 0 rows")
    sources, versions = found["score_source"], found["score_model_hash"]
    if len(sources) != 1:
        raise ValueError(f"one score drives the strategy, found {sorted(map(str, sources))}")
    (score_source,) = sources
    component = read_component(COMPONENT_OF_SOURCE[str(score_source)])
    if versions != {component.meta["version"]}:
        raise ValueError(
            f"the stored {COMPONENT_OF_SOURCE[str(score_source)]} model is version "
            f"{component.meta['version']}, the scores come from {sorted(map(str, versions))}: "
            "the model store is stale; rebuild"
        )
    return component


def explain_scores(
    worked: pd.DataFrame | pa.Table | duckdb.DuckDBPyRelation,
    session: duckdb.DuckDBPyConnection | None = None,
) -> pa.RecordBatchReader:
    """loan_id, bias and one contribution per feature for each worked loan, a batch at a time.

    ``worked`` (a dbt relation with its ``session``, or a frame) holds, per
    loan a collector works (int_loans_scored's is_worked), its risk_score,
    score_source and score_model_hash (the content hash of the model whose
    score is in use) and the model's input columns
    (int_loan_features). The model that drove the strategy is read from the
    model store.
    """
    source = LoanSource.of(worked, session)
    component = _load(source)
    meta, forest = component.meta, component.forest
    assert forest is not None
    numeric, categories = meta["numeric_features"], meta.get("categories") or {}
    check_features([*numeric, *categories], meta["post_outcome_columns"])
    source.check(numeric, [*categories, "risk_score"], action="explain")
    # Training loans are explained by the trees that left them out (their
    # score is out of bag); every other loan by all trees.
    # A frozen model (from the registry) carries no training loans: all trees explain every loan.
    trained_ids = pd.Series(component.arrays.get("training_ids", np.array([], dtype=str)))
    training_row = pd.Series(np.arange(len(trained_ids)), index=trained_ids.astype(str))
    mask = component.arrays.get("oob_mask", np.zeros((0, len(forest.estimators_)), dtype=bool))
    calibration = meta.get("calibration")
    platt = Platt(**calibration) if calibration else None
    columns = [BIAS, *(contribution_column(feature) for feature in meta["features"])]
    schema = source.keyed(
        pa.schema([(KEY, pa.string()), *((name, pa.float64()) for name in columns)])
    )

    def batches() -> Iterator[pa.Table]:
        for table in source.batches([KEY, "risk_score", *numeric, *categories]):
            book = read_loan_columns(
                table,
                numeric,
                post_outcome_columns=meta["post_outcome_columns"],
                action="explain",
                categories=categories,
            )
            if list(book.features) != meta["features"]:
                raise ValueError("the stored model's features are not the loan book's; rebuild")
            rows = book.block(0, book.n_rows, np.float32)
            oob_rows = training_row.reindex(book.loan_id.astype(str)).to_numpy()
            is_training = ~np.isnan(oob_rows)
            # A training loan no tree left out (possible with very few trees) was
            # scored out of fold by forests that are not kept: all trees explain it.
            covered = np.zeros(book.n_rows, dtype=bool)
            covered[is_training] = mask[oob_rows[is_training].astype(int)].any(axis=1)
            is_training &= covered
            vote = np.empty(book.n_rows)
            bias = np.empty(book.n_rows)
            contributions = np.empty((book.n_rows, len(book.features)))
            for subset, trees_used in (
                (~is_training, None),
                (is_training, mask[oob_rows[is_training].astype(int)]),
            ):
                if subset.any():
                    vote[subset], bias[subset], contributions[subset] = forest_contributions(
                        forest, rows[subset], trees_used
                    )
            score = column_series(table, "risk_score").to_numpy(dtype=np.float64)
            bias, contributions = _rescaled(vote, bias, contributions, score, platt)
            values = [bias, *(contributions[:, j] for j in range(len(book.features)))]
            yield pa.table(
                [table.column(KEY), *(numbers(value) for value in values)],
                names=[KEY, *columns],
            )

    return stream(schema, batches())
