"""What a build did with its models, in the words every table and message uses.

Written once here, and in SQL only where dbt must write them itself
(``risk_model_metrics`` names the segment model's status from
``model_version``). A model is ``trained`` on this book, or ``frozen``: an
approved registry artifact scored the book and nothing was trained. The
outcome model may also fall back (too few resolved loans, or one outcome
only): its status then says ``fallback`` and why, and the strategy uses the
write-up's score.
"""

from __future__ import annotations

TRAINED = "trained"
"""The build fitted the model on this book."""
FROZEN = "frozen"
"""An approved registry artifact scored the book; nothing was trained."""
FALLBACK = "fallback"
"""The outcome model was not fitted; the reason says why."""
MODES = (TRAINED, FROZEN)
"""The statuses of a model that scored the book."""

_FALLBACK_PREFIX = f"{FALLBACK}: "


def fallback_status(reason: str) -> str:
    """The outcome model's status when it fell back: ``fallback: <reason>``."""
    return _FALLBACK_PREFIX + reason


def fallback_reason(status: str | None) -> str | None:
    """Why the outcome model fell back, from its status; None when it scored the book."""
    if status in MODES:
        return None
    return str(status).removeprefix(_FALLBACK_PREFIX)
