"""validate_run_vars bounds every numeric setting, on both sides, before anything is built.

The macro is rendered here with Jinja and a stand-in for the few dbt
context members it uses (``var``, ``invocation_args_dict``,
``exceptions.raise_compiler_error``, ``modules.re``, ``fromyaml``), so every
setting and both of its edges are checked in a second, without dbt. The
hostile case "--vars outcome_trees 1e20" (project/hostile_cases.py) runs the
same check through dbt and the command (exit 2).

The loop runs over every numeric per-run setting of dbt_project.yml, so a
new numeric setting without bounds fails here.
"""

from __future__ import annotations

import re
from typing import Any

import jinja2
import pytest
import yaml

from loan_recovery.config import project_dir, run_setting_defaults


class CompilerError(Exception):
    """What dbt's exceptions.raise_compiler_error raises."""


class _Exceptions:
    @staticmethod
    def raise_compiler_error(message: str) -> None:
        raise CompilerError(message)


class _Modules:
    re = re


def validate(given: dict[str, Any]) -> None:
    """Render validate_run_vars as dbt's on-run-start does, with ``given`` as --vars."""
    defaults = run_setting_defaults()
    source = (project_dir() / "macros" / "validate_run_vars.sql").read_text(encoding="utf-8")
    environment = jinja2.Environment(extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    template = environment.from_string(source)
    module = template.make_module(
        {
            "invocation_args_dict": {"vars": given},
            "var": lambda name, default=None: given.get(name, defaults.get(name, default)),
            "exceptions": _Exceptions,
            "modules": _Modules,
            "fromyaml": yaml.safe_load,
        }
    )
    module.validate_run_vars()


def numeric_settings() -> list[str]:
    """Every per-run setting whose default is a number, or null (an unlimited capacity)."""
    return sorted(
        name
        for name, value in run_setting_defaults().items()
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def test_the_defaults_pass() -> None:
    validate({})
    assert len(numeric_settings()) >= 12


@pytest.mark.parametrize("name", numeric_settings())
@pytest.mark.parametrize("value", [10**20, 1e20, -1, -(10**20)])
def test_every_numeric_setting_is_bounded_on_both_sides(name: str, value: float) -> None:
    # Judged on its own range, not only against its partner's.
    given: dict[str, Any] = {**PARTNERS.get(name, {}), name: value}
    with pytest.raises(CompilerError, match=f"^invalid --vars: {name} must be ") as refused:
        validate(given)
    assert "\n" not in str(refused.value)


# The documented ranges (docs/serving.md, "Settings"): each edge passes, one step beyond fails.
RANGES: list[tuple[str, float, float, float]] = [
    ("legal_threshold", 0, 1, 0.01),
    ("settlement_threshold", 0, 1, 0.01),
    ("max_outstanding_to_loan_ratio", 1, 100, 0.01),
    ("n_segments", 2, 1000, 1),
    ("segmentation_sample_rows", 2, 10_000_000, 1),
    ("scoring_sample_rows", 2, 10_000_000, 1),
    ("outcome_sample_rows", 2, 10_000_000, 1),
    ("scoring_trees", 1, 1000, 1),
    ("outcome_trees", 1, 1000, 1),
    ("random_state", 0, 2**32 - 1, 1),
    ("min_resolved_loans", 2, 10_000_000, 1),
    ("legal_capacity", 0, 1_000_000_000, 1),
    ("settlement_capacity", 0, 1_000_000_000, 1),
    ("challenger_legal_threshold", 0, 1, 0.01),
    ("challenger_settlement_threshold", 0, 1, 0.01),
    ("challenger_share", 0, 1, 0.01),
    ("explore_share", 0, 1, 0.01),
    ("legal_min_days_past_due", 0, 3650, 1),
    ("settlement_haircut", 0, 1, 0.01),
    ("partial_recovery_share", 0, 1, 0.01),
    ("min_randomised_outcomes", 2, 10_000_000, 1),
]

# The partner a setting is judged against, set to the edge that lets it reach both of its own.
PARTNERS: dict[str, dict[str, float]] = {
    "settlement_threshold": {"legal_threshold": 1},
    "legal_threshold": {"settlement_threshold": 0},
    "challenger_settlement_threshold": {"challenger_legal_threshold": 1},
    "challenger_legal_threshold": {"challenger_settlement_threshold": 0},
    "challenger_share": {"explore_share": 0},
    "explore_share": {"challenger_share": 0},
}


@pytest.mark.parametrize(("name", "lowest", "highest", "step"), RANGES, ids=[r[0] for r in RANGES])
def test_each_range_holds_its_edges(name: str, lowest: float, highest: float, step: float) -> None:
    context = PARTNERS.get(name, {})
    for ok in (lowest, highest):
        validate({**context, name: ok})
    for beyond in (lowest - step, highest + step):
        with pytest.raises(CompilerError, match=f"invalid --vars: {name} must be "):
            validate({**context, name: beyond})


def test_every_numeric_setting_has_a_documented_range() -> None:
    assert sorted(name for name, *_ in RANGES) == numeric_settings()
