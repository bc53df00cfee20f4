"""``loan-recovery build --vars``: the per-run settings a user passes, checked as data.

dbt renders every string var as a Jinja template, so a value is user input
that could run code. Before dbt starts, each key must be a per-run setting
the project defines (``dbt_project.yml`` vars outside ``reference``), and
each value must have the type of its default; a text value may hold only
letters, digits and ``._-`` (setting names and versions, never templates).
The ranges and the relations between settings are judged once, in dbt's
on-run-start check (macro validate_run_vars), for plain dbt runs too.

``loans_path`` is the exception: it names the input file, which is handed
to dbt outside vars (see :mod:`loan_recovery.serving.loan_book`).

One setting is an environment variable, because dbt reads it with the
profile, before vars exist: ``LOAN_RECOVERY_DUCKDB_MEMORY``, DuckDB's memory
limit (profiles.yml holds its default). It is checked here too, so a value
DuckDB cannot read is refused in one line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import duckdb
import yaml

from loan_recovery.config import REFERENCE, run_setting_defaults
from loan_recovery.dbt_results import first_meaningful_line
from loan_recovery.errors import EXIT_USAGE, BuildError

LOANS_PATH = "loans_path"
AS_OF_DATE = "as_of_date"
"""The decision cycle's date; ``loan-recovery build --as-of`` sets it, never ``--vars``."""
DUCKDB_MEMORY_ENV = "LOAN_RECOVERY_DUCKDB_MEMORY"
SAFE_TEXT = re.compile(r"^[A-Za-z0-9._-]*$")
_KINDS = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    dict: "a table of numbers with the same keys",
}


def _usage(reason: str) -> BuildError:
    return BuildError("settings", reason, exit_code=EXIT_USAGE)


def _same_kind(value: Any, default: Any) -> bool:
    """A value may replace a default of the same kind; an int may stand for a float.

    A null default (an unlimited capacity) takes a whole number or null.
    """
    if default is None:
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, dict):
        # A table of numbers (action_costs, prior_action_effects): the same keys, numbers only.
        return (
            isinstance(value, dict)
            and set(map(str, value)) == set(default)
            and all(_same_kind(item, 0.0) for item in value.values())
        )
    return isinstance(value, type(default))


def parse_settings(
    text: str | None, defaults: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """The ``--vars`` mapping checked against the project's settings, and any loans_path in it.

    Raises :class:`BuildError` with exit code 2 for text that is not a YAML
    mapping, an unknown key, ``reference``, a value of the wrong type, or
    text holding anything but ``[A-Za-z0-9._-]``.
    """
    if not text:
        return {}, None
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0]
        raise _usage(f"--vars is not valid YAML: {first}") from None
    if parsed is None:
        return {}, None
    if not isinstance(parsed, dict):
        raise _usage("--vars must be a YAML mapping, e.g. '{legal_threshold: 0.8}'")
    known = dict(defaults if defaults is not None else run_setting_defaults())
    settings: dict[str, Any] = {}
    loans_path = None
    for key, value in parsed.items():
        name = str(key)
        if name == REFERENCE:
            raise _usage(
                "--vars may not override 'reference': it holds the project's fixed facts "
                "(columns, categories, features)"
            )
        if name not in known:
            raise _usage(
                f"--vars: unknown setting {name!r}; the settings are "
                f"{', '.join(sorted(known))} (defaults in dbt_project.yml)"
            )
        if name == AS_OF_DATE:
            raise _usage("--vars: give the decision cycle as --as-of YYYY-MM-DD, not as_of_date")
        if name == LOANS_PATH:
            if not isinstance(value, str):
                raise _usage("--vars: loans_path must be a file path")
            loans_path = value
            continue
        if not _same_kind(value, known[name]):
            kind = _KINDS.get(type(known[name]), "a whole number or null")
            raise _usage(
                f"--vars: {name} must be {kind} like its default {known[name]!r}, got {value!r}"
            )
        if isinstance(value, str) and not SAFE_TEXT.match(value):
            raise _usage(f"--vars: {name} may hold only letters, digits and ._-, got {value!r}")
        settings[name] = value
    return settings, loans_path


def check_duckdb_memory(environment: Mapping[str, str] | None = None) -> None:
    """Refuse a ``LOAN_RECOVERY_DUCKDB_MEMORY`` DuckDB cannot read, before dbt starts.

    The value goes to DuckDB as a configuration value (data, never SQL), on
    a throw-away in-memory database; its error becomes one line naming the
    variable, instead of a connection error from inside dbt.
    """
    value = (os.environ if environment is None else environment).get(DUCKDB_MEMORY_ENV)
    if value is None:
        return
    try:
        duckdb.connect(":memory:", config={"memory_limit": value}).close()
    except duckdb.Error as error:
        raise _usage(
            f"{DUCKDB_MEMORY_ENV}={value!r} is not a DuckDB memory limit "
            f"({first_meaningful_line(str(error))}); "
            "use e.g. 4GB, 8GiB or 40%"
        ) from None
