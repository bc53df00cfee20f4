"""What an action is worth in money, under provisional assumptions, and the best action per loan.

Issue 28 makes these assumptions per-run settings (``action_costs``,
``settlement_haircut``, ``partial_recovery_share``); until then
:data:`PROVISIONAL` is their one home, so the simulated lender's benchmark
(``benchmarks/simulated_lender_value.py``) and tests price actions alike.

The expected net value of action ``a`` for a loan is::

    outstanding x [P(full|a) x (1 - haircut_a) + (1 - P(full|a)) x partial_recovery_share] - cost_a

where the haircut applies to settlement only: a settlement that recovers the
loan recovers it at a discount. A loan not fully recovered still returns
``partial_recovery_share`` of its balance on average (partial payments,
collateral sold at a loss), whatever the action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from loan_recovery.generate.lender import ACTIONS, LEGAL

LEGAL_MIN_DAYS_PAST_DUE = 60
"""Legal action needs this many days past due: the default of var ``legal_min_days_past_due``."""


def _default_costs() -> Mapping[str, float]:
    return {"reminders": 500.0, "settlement": 5_000.0, "legal": 40_000.0}


@dataclass(frozen=True)
class Economics:
    """The money assumptions: cost per action, settlement haircut, partial recovery share."""

    action_costs: Mapping[str, float] = field(default_factory=_default_costs)
    settlement_haircut: float = 0.30
    partial_recovery_share: float = 0.35
    legal_min_days_past_due: int = LEGAL_MIN_DAYS_PAST_DUE


PROVISIONAL = Economics()


def expected_net_values(
    outstanding: np.ndarray, p_full: np.ndarray, economics: Economics = PROVISIONAL
) -> np.ndarray:
    """Expected net value of each action per loan: an (n, 3) array in ``ACTIONS`` order.

    ``p_full`` is (n, 3): P(full recovery | action) per loan.
    """
    haircut = np.array([economics.settlement_haircut * (a == "settlement") for a in ACTIONS])
    cost = np.array([economics.action_costs[a] for a in ACTIONS], dtype=np.float64)
    recovered = p_full * (1.0 - haircut) + (1.0 - p_full) * economics.partial_recovery_share
    return np.asarray(outstanding, dtype=np.float64)[:, None] * recovered - cost


def allowed_actions(days_past_due: np.ndarray, economics: Economics = PROVISIONAL) -> np.ndarray:
    """Which actions each loan may take, (n, 3) booleans: legal needs enough days past due."""
    allowed = np.ones((len(days_past_due), len(ACTIONS)), dtype=bool)
    allowed[:, LEGAL] = np.asarray(days_past_due) >= economics.legal_min_days_past_due
    return allowed


def best_actions(
    outstanding: np.ndarray,
    p_full: np.ndarray,
    days_past_due: np.ndarray,
    economics: Economics = PROVISIONAL,
) -> np.ndarray:
    """The allowed action with the highest expected net value per loan (codes into ``ACTIONS``).

    With the true probabilities this is the oracle: no policy can expect more.
    Ties go to the cheaper, earlier action.
    """
    values = expected_net_values(outstanding, p_full, economics)
    values = np.where(allowed_actions(days_past_due, economics), values, -np.inf)
    return values.argmax(axis=1).astype(np.int8)
