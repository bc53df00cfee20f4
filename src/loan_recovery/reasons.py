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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from sklearn.ensemble import RandomForestClassifier

from loan_recovery.calibration import Platt
from loan_recovery.forest import CHUNK_ROWS, workers
from loan_recovery.model_input import KEY, column_series, read_loan_columns
from loan_recovery.model_store import Component, read_component

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

    def chunk(start: int) -> None:
        # Leaf lookups and gathers release the GIL: chunks run on all cores.
        stop = min(start + CHUNK_ROWS, n_rows)
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

    with ThreadPoolExecutor(max_workers=workers()) as pool:
        list(pool.map(chunk, range(0, n_rows, CHUNK_ROWS)))
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


def _distinct(scores: pa.Table, column: str) -> set[str | None]:
    """The column's distinct values, in Arrow: a Python set over 300,000 rows cost 3.5 s."""
    return set(pc.unique(scores.column(column)).to_pylist())


def _load(scores: pa.Table) -> Component:
    if scores.num_rows == 0:
        raise ValueError("no loans to explain: the input has 0 rows")
    sources = _distinct(scores, "score_source")
    if len(sources) != 1:
        raise ValueError(f"one score drives the strategy, found {sorted(map(str, sources))}")
    (source,) = sources
    component = read_component(COMPONENT_OF_SOURCE[str(source)])
    versions = _distinct(scores, "model_version")
    if versions != {component.meta["version"]}:
        raise ValueError(
            f"the stored {COMPONENT_OF_SOURCE[source]} model is version "
            f"{component.meta['version']}, the scores come from {sorted(map(str, versions))}: "
            "the model store is stale; rebuild"
        )
    return component


def explain_scores(worked: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """loan_id, bias and one contribution per feature for each worked loan.

    ``worked`` holds, per loan a collector works (int_loans_scored's
    is_worked), its risk_score, score_source and model_version and the
    model's input columns (int_loan_features). The model that drove the
    strategy is read from the model store.
    """
    scores = pa.Table.from_pandas(worked) if isinstance(worked, pd.DataFrame) else worked
    component = _load(scores)
    meta, forest = component.meta, component.forest
    assert forest is not None
    book = read_loan_columns(
        scores,
        meta["numeric_features"],
        post_outcome_columns=meta["post_outcome_columns"],
        action="explain",
        categories=meta.get("categories") or {},
    )
    if list(book.features) != meta["features"]:
        raise ValueError("the stored model's features are not the loan book's; rebuild")
    positions = np.arange(book.n_rows)
    rows = book.block(0, book.n_rows, np.float32)

    # Training loans are explained by the trees that left them out (their
    # score is out of bag); every other loan by all trees.
    # A frozen model (from the registry) carries no training loans: all trees explain every loan.
    trained_ids = pd.Series(component.arrays.get("training_ids", np.array([], dtype=str))).astype(
        str
    )
    training_row = pd.Series(np.arange(len(trained_ids)), index=trained_ids)
    oob_rows = training_row.reindex(book.loan_id.iloc[positions].astype(str)).to_numpy()
    is_training = ~np.isnan(oob_rows)
    # A training loan no tree left out (possible with very few trees) was
    # scored out of fold by forests that are not kept: all trees explain it.
    mask = component.arrays.get("oob_mask", np.zeros((0, len(forest.estimators_)), dtype=bool))
    covered = np.zeros(len(positions), dtype=bool)
    covered[is_training] = mask[oob_rows[is_training].astype(int)].any(axis=1)
    is_training &= covered
    vote = np.empty(len(positions))
    bias = np.empty(len(positions))
    contributions = np.empty((len(positions), len(book.features)))
    for subset, trees_used in (
        (~is_training, None),
        (is_training, mask[oob_rows[is_training].astype(int)]),
    ):
        if subset.any():
            vote[subset], bias[subset], contributions[subset] = forest_contributions(
                forest, rows[subset], trees_used
            )

    calibration = meta.get("calibration")
    platt = Platt(**calibration) if calibration else None
    score = column_series(scores, "risk_score").to_numpy(dtype=np.float64)[positions]
    bias, contributions = _rescaled(vote, bias, contributions, score, platt)

    frame = {KEY: book.loan_id.iloc[positions].reset_index(drop=True), BIAS: bias}
    for j, feature in enumerate(book.features):
        frame[contribution_column(feature)] = contributions[:, j]
    return pd.DataFrame(frame, copy=False)
