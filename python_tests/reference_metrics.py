"""Metrics the tests compute themselves, to hold the package's and the marts' numbers to.

Written here from their definitions, never imported from the code under test.
"""

from __future__ import annotations

import numpy as np


def ece(probability: np.ndarray, label: np.ndarray) -> float:
    """Expected calibration error over ten equal-width bins of the probability.

    Each bin weighs |mean probability - share of positive labels| by its share
    of the loans; a probability of exactly 1 falls in the last bin.
    """
    index = np.minimum((probability * 10).astype(int), 9)
    return sum(
        (index == b).mean() * abs(probability[index == b].mean() - label[index == b].mean())
        for b in range(10)
        if (index == b).any()
    )
