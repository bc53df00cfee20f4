"""config: the project's vars, read from dbt_project.yml, as the README documents them."""

from __future__ import annotations

from loan_recovery.config import project_vars


def test_vars_defaults_are_the_documented_ones() -> None:
    defaults = project_vars()
    assert (defaults["legal_threshold"], defaults["settlement_threshold"]) == (0.75, 0.5)
    assert defaults["n_segments"] == 4
