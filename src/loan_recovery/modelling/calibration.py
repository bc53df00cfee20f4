"""Turning the outcome forest's scores into probabilities that mean what they say.

A forest's vote share is a ranking, not a probability: leaves average
bootstrapped rows and the votes shrink towards the middle. The outcome
model's scores are therefore calibrated by Platt scaling: a logistic
regression of the outcome on the logit of the out-of-bag score, two
parameters fitted on the training loans. It is monotone, so the ranking (and
the AUC) is the forest's own, and with two parameters it cannot memorise.

Honesty: the training loans' own probabilities must not come from a
calibrator fitted on them. They are cross-fitted: the training loans are
split into ``FOLDS`` folds by hashed loan id (independent of row order), and
each fold is calibrated by the map fitted on the other folds. Every other
loan (open, or resolved but outside the training sample) gets the map
fitted on all training loans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

FOLDS = 5
EPSILON = 1e-6
"""Scores are clipped to [EPSILON, 1 - EPSILON] before the logit (a pure leaf votes 0 or 1)."""


def _logit(scores: NDArray[np.floating]) -> NDArray[np.float64]:
    clipped = np.clip(np.asarray(scores, dtype=np.float64), EPSILON, 1.0 - EPSILON)
    return np.log(clipped / (1.0 - clipped))


@dataclass(frozen=True)
class Platt:
    """p = 1 / (1 + exp(-(slope * logit(score) + intercept)))."""

    slope: float
    intercept: float

    def apply(self, scores: NDArray[np.floating]) -> NDArray[np.float64]:
        return 1.0 / (1.0 + np.exp(-(self.slope * _logit(scores) + self.intercept)))


def fit_platt(scores: NDArray[np.floating], labels: NDArray[np.bool_]) -> Platt:
    """The Platt map from out-of-sample scores to the observed outcome (unregularised)."""
    regression = LogisticRegression(C=1e6, max_iter=1000)
    regression.fit(_logit(scores).reshape(-1, 1), np.asarray(labels, dtype=bool))
    return Platt(float(regression.coef_[0, 0]), float(regression.intercept_[0]))


def folds_of(loan_ids: pd.Series, random_state: int) -> NDArray[np.int64]:
    """Each loan's calibration fold, 0..FOLDS-1, from its hashed id (row order never matters)."""
    salt = f"{random_state + 1:016d}"[-16:]
    hashes = pd.util.hash_pandas_object(loan_ids, index=False, hash_key=salt).to_numpy()
    return (hashes % FOLDS).astype(np.int64)


def cross_fitted(
    scores: NDArray[np.floating],
    labels: NDArray[np.bool_],
    loan_ids: pd.Series,
    random_state: int,
) -> tuple[NDArray[np.float64], Platt]:
    """The training loans' cross-fitted probabilities, and the map fitted on all of them."""
    folds = folds_of(loan_ids, random_state)
    probabilities = np.empty(len(scores), dtype=np.float64)
    for fold in range(FOLDS):
        held = folds == fold
        if not held.any():
            continue
        rest = ~held
        if labels[rest].all() or not labels[rest].any():
            # Too few loans to split: fall back to the map fitted on all of them.
            probabilities[held] = fit_platt(scores, labels).apply(scores[held])
            continue
        probabilities[held] = fit_platt(scores[rest], labels[rest]).apply(scores[held])
    return probabilities, fit_platt(scores, labels)
