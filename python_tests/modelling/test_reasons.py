"""Per-feature contributions: they must explain what the forest really votes, feature by feature.

The dbt test that bias plus contributions equals the score cannot catch a
wrong attribution on its own: reasons.py rescales the contributions to the
score. These tests compare with the forest itself (its own predictions) and
with each tree's decision path as scikit-learn reports it.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from loan_recovery.modelling.forest import positive_proba
from loan_recovery.modelling.reasons import forest_contributions

N_FEATURES = 5


@pytest.fixture(scope="module")
def forest_and_rows() -> tuple[RandomForestClassifier, np.ndarray]:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(3_000, N_FEATURES)).astype(np.float32)
    labels = rows[:, 0] + 0.5 * rows[:, 3] + rng.normal(scale=0.5, size=len(rows)) > 0.3
    forest = RandomForestClassifier(
        n_estimators=12, max_depth=6, min_samples_leaf=5, random_state=0
    ).fit(rows, labels)
    return forest, rows


def _by_decision_path(forest: RandomForestClassifier, row: np.ndarray) -> np.ndarray:
    """One row's per-feature change in the positive vote, walked along each tree's path."""
    positive = list(forest.classes_).index(True)
    total = np.zeros(N_FEATURES)
    for estimator in forest.estimators_:
        tree = estimator.tree_
        nodes = estimator.decision_path(row[None, :]).indices  # root to leaf, ascending ids
        value = tree.value[:, 0, positive]
        for parent, child in pairwise(nodes):
            total[tree.feature[parent]] += value[child] - value[parent]
    return total / len(forest.estimators_)


def test_votes_are_the_forest_s_own_predictions(forest_and_rows) -> None:
    forest, rows = forest_and_rows
    vote, bias, contributions = forest_contributions(forest, rows)
    np.testing.assert_allclose(vote, positive_proba(forest, rows), atol=1e-12)
    np.testing.assert_allclose(bias + contributions.sum(axis=1), vote, atol=1e-12)


def test_each_feature_gets_the_changes_of_its_own_splits(forest_and_rows) -> None:
    forest, rows = forest_and_rows
    _, _, contributions = forest_contributions(forest, rows[:40])
    expected = np.array([_by_decision_path(forest, row) for row in rows[:40]])
    np.testing.assert_allclose(contributions, expected, atol=1e-12)
    # The signal is in features 0 and 3: they carry most of the movement.
    assert np.abs(contributions[:, [0, 3]]).sum() > np.abs(contributions[:, [1, 2, 4]]).sum()


def test_only_the_trees_used_explain_a_row(forest_and_rows) -> None:
    forest, rows = forest_and_rows
    rng = np.random.default_rng(5)
    used = rng.random((200, len(forest.estimators_))) < 0.6
    used[0] = False
    vote, bias, contributions = forest_contributions(forest, rows[:200], used)
    per_tree = np.array(
        [estimator.predict_proba(rows[:200])[:, 1] for estimator in forest.estimators_]
    ).T
    expected = (per_tree * used).sum(axis=1)[1:] / used[1:].sum(axis=1)
    np.testing.assert_allclose(vote[1:], expected, atol=1e-12)
    np.testing.assert_allclose(bias[1:] + contributions[1:].sum(axis=1), vote[1:], atol=1e-12)
    assert np.isnan(vote[0]) and np.isnan(contributions[0]).all()
