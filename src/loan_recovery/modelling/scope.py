"""Which loans a build scores: every loan, or the open ones in the monthly decision run.

A full build scores every loan: the model card back-tests the scores on the
resolved loans, the gains and the policy comparison sort them. The monthly
decision run (var ``decide_only``, ``loan-recovery build --model VERSION
--decide-only``) needs the open loans only, the ones it decides for: at 1M
loans with 30 % open, scoring the 70 % already resolved through both forests
was most of the scoring time. The scope is applied where the scoring models
read the loans, so every model downstream (the join of the scores, the
reasons, the strategies, the drift monitor) sees the open loans alone.

A frozen model scores each loan from its own features only, so an open
loan's scores do not depend on which other loans are in scope: the decision
run's scores are the full build's (a test compares them). Training would
need the resolved loans, which is why ``decide_only`` requires a frozen
model (macro validate_run_vars refuses it without one).
"""

from __future__ import annotations

from typing import Any

import duckdb

OPEN_LOANS = "not is_resolved"
"""The decision run's loans: int_loan_features' ``is_resolved`` (never null, dbt-tested) false."""


def in_scope(loans: duckdb.DuckDBPyRelation, decide_only: Any) -> duckdb.DuckDBPyRelation:
    """``loans`` (a relation holding ``is_resolved``) as the build scores them.

    ``decide_only`` is the var as dbt passes it: exactly ``True`` or
    ``False``. Anything else (a string ``"True"``, None when the config key
    went missing) raises rather than silently scoring the wrong loans.
    """
    if decide_only is not True and decide_only is not False:
        raise ValueError(f"decide_only must be true or false, got {decide_only!r}")
    return loans.filter(OPEN_LOANS) if decide_only else loans
