"""What a build did with its models, in the words every table and message uses.

Written once here. Each scoring Python model emits its own status column
(``segment_model_status``, ``outcome_model_status``) and SQL only passes
the words on, so no mart writes them itself. A model is ``trained`` on this
book, or ``frozen``: an approved registry artifact scored the book and
nothing was trained. The outcome model may also fall back (too few
resolved loans, or one outcome only): its status is then ``fallback`` and
the reason travels in a column of its own (``outcome_fallback_reason``,
``risk_model_metrics.fallback_reason``), never spliced into the status; the
strategy then uses the write-up's score.
"""

from __future__ import annotations

TRAINED = "trained"
"""The build fitted the model on this book."""
FROZEN = "frozen"
"""An approved registry artifact scored the book; nothing was trained."""
FALLBACK = "fallback"
"""The outcome model was not fitted; its fallback reason says why."""
MODES = (TRAINED, FROZEN)
"""The statuses of a model that scored the book."""
