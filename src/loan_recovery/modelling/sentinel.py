"""A data-level guard on model features: no feature may encode the outcome or a protected attribute.

Lists of forbidden column names (``post_outcome_columns``,
``protected_attributes``) stop a leak by name; they do not stop one that
arrives through SQL, such as a feature computed from collection attempts.
So before a model is trained, every feature's univariate ROC AUC is taken
on the training loans:

* against the outcome: a single pre-collection fact that ranks recovery with
  AUC >= ``LEAK_AUC`` (or <= 1 - ``LEAK_AUC``) is no real pre-collection fact;
  on the public data no honest feature reaches 0.7;
* against each level of each protected attribute (gender): a feature that
  separates it that well is a proxy for it.

Either fails the build, naming the feature and its AUC; nothing is trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

LEAK_AUC = 0.90


def univariate_auc(values: NDArray[np.floating], labels: NDArray[np.bool_]) -> float:
    """ROC AUC of one feature's raw values against a boolean (0.5 when one class is absent).

    The Mann-Whitney form with tied values at their average rank: what
    sklearn's roc_auc_score gives, without its per-call validation (the
    sentinel takes dozens of these).
    """
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return 0.5
    ranks = rankdata(values)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _too_strong(auc: float) -> bool:
    return auc >= LEAK_AUC or auc <= 1.0 - LEAK_AUC


def check_features_are_honest(
    rows: NDArray[np.floating],
    names: Sequence[str],
    labels: NDArray[np.bool_],
    protected: Mapping[str, NDArray[np.bool_]],
) -> dict[str, float]:
    """Each feature's AUC against the outcome; raises ValueError for a leak or a proxy.

    ``rows`` holds the training loans' features in ``names`` order;
    ``protected`` maps "gender=Female" and the like to that level's indicator.
    """
    aucs: dict[str, float] = {}
    for j, name in enumerate(names):
        column = rows[:, j]
        auc = univariate_auc(column, labels)
        aucs[name] = auc
        if _too_strong(auc):
            raise ValueError(
                f"leak sentinel: feature '{name}' alone ranks the outcome with ROC AUC {auc:.3f} "
                f"on {len(labels)} training loans (limit {LEAK_AUC:.2f}): a column recorded "
                "after the outcome has reached it; nothing was trained"
            )
        for level, indicator in protected.items():
            proxy = univariate_auc(column, indicator)
            if _too_strong(proxy):
                raise ValueError(
                    f"leak sentinel: feature '{name}' separates {level} with ROC AUC "
                    f"{proxy:.3f} (limit {LEAK_AUC:.2f}): it encodes a protected attribute; "
                    "nothing was trained"
                )
    return aucs
