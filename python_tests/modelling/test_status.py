"""The status words are written once, in loan_recovery.modelling.status.

A model reports its own status (trained, frozen, or the outcome model's
fallback with the reason in a column of its own); SQL passes the words on
and never writes them, so renaming one cannot leave a mart saying another.
"""

from __future__ import annotations

import re

from loan_recovery.config import project_dir
from loan_recovery.modelling import status


def test_no_sql_model_writes_a_status_word() -> None:
    words = (status.TRAINED, status.FROZEN, status.FALLBACK)
    literal = re.compile("|".join(rf"'{word}\b" for word in words))
    written = {
        str(path.relative_to(project_dir())): literal.findall(path.read_text(encoding="utf-8"))
        for path in sorted((project_dir() / "models").rglob("*.sql"))
    }
    assert {path: found for path, found in written.items() if found} == {}


def test_the_fallback_reason_is_not_folded_into_the_status() -> None:
    # The reason travels in a column of its own (outcome_fallback_reason,
    # risk_model_metrics.fallback_reason); no helper splices it into a status.
    assert not hasattr(status, "fallback_status")
    assert not hasattr(status, "fallback_reason")
    assert status.FALLBACK == "fallback"
