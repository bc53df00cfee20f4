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
limit (profiles.yml holds its default). It is checked here too: a value
below 256 MB or above this machine's memory, or one DuckDB cannot read, is
refused in one line naming the variable.
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


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that gives a key twice.

    Plain YAML keeps the last of two equal keys without a word; in
    ``--vars '{legal_threshold: 0.8, legal_threshold: 0.2}'`` which one the
    user meant is unknown, so the build refuses rather than guess.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _usage(f"--vars gives {key} twice; give each setting once")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_settings(
    text: str | None, defaults: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """The ``--vars`` mapping checked against the project's settings, and any loans_path in it.

    Raises :class:`BuildError` with exit code 2 for text that is not a YAML
    mapping, a key given twice, an unknown key, ``reference``, a value of
    the wrong type, or text holding anything but ``[A-Za-z0-9._-]``.
    """
    if not text:
        return {}, None
    try:
        parsed = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader that refuses repeated keys
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


MIN_DUCKDB_MEMORY = 256 * 1000**2
"""Below 256 MB DuckDB cannot hold a build's working set; it fails with a bare "Runtime Error"."""
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)\s*$", re.IGNORECASE)
_PERCENT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*%\s*$")
_UNITS = {"B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}
_UNITS.update(
    {f"{unit[0]}IB": 1024 ** (index + 1) for index, unit in enumerate(["K", "M", "G", "T"])}
)


def physical_memory() -> int:
    """This machine's memory in bytes (what a memory limit may not exceed)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gigabytes(size: float) -> str:
    return f"{size / 1000**3:.1f} GB"


def memory_limit_bytes(value: str, total: int) -> int:
    """The bytes ``LOAN_RECOVERY_DUCKDB_MEMORY`` stands for on a machine of ``total`` bytes.

    A size (``8GB``, ``512MiB``: DuckDB's units, 1000- or 1024-based) or a
    share of the machine (``1%`` to ``100%``). Anything else, ``-1`` (which
    DuckDB reads as no limit) included, raises :class:`BuildError`.
    """
    shown = f"{DUCKDB_MEMORY_ENV}={value!r}"
    share = _PERCENT.match(value)
    if share:
        percent = float(share.group(1))
        if not 1 <= percent <= 100:
            raise _usage(f"{shown} must be a share from 1% to 100% of this machine's memory")
        return int(total * percent / 100)
    size = _MEMORY.match(value)
    if not size:
        raise _usage(
            f"{shown} is not a DuckDB memory limit: give a size such as 4GB or 8GiB "
            "(at least 256MB), or a share such as 40%"
        )
    return int(float(size.group(1)) * _UNITS[size.group(2).upper()])


def check_duckdb_memory(environment: Mapping[str, str] | None = None) -> None:
    """Refuse a ``LOAN_RECOVERY_DUCKDB_MEMORY`` out of bounds or unreadable, before dbt starts.

    The limit must come to at least 256 MB and at most this machine's
    memory: ``-1`` or ``999TB`` would remove the cap, and ``1KB`` makes
    DuckDB fail mid-build with a bare "Runtime Error". The value then goes
    to DuckDB as a configuration value (data, never SQL), on a throw-away
    in-memory database; its error becomes one line naming the variable,
    instead of a connection error from inside dbt.
    """
    value = (os.environ if environment is None else environment).get(DUCKDB_MEMORY_ENV)
    if value is None:
        return
    total = physical_memory()
    limit = memory_limit_bytes(value, total)
    shown = f"{DUCKDB_MEMORY_ENV}={value!r}"
    if limit < MIN_DUCKDB_MEMORY:
        raise _usage(f"{shown} is less than 256 MB ({limit:,} bytes); DuckDB cannot build in it")
    if limit > total:
        raise _usage(
            f"{shown} is more than this machine's {_gigabytes(total)} of memory; "
            "use a size below it or a share such as 40%"
        )
    try:
        duckdb.connect(":memory:", config={"memory_limit": value}).close()
    except duckdb.Error as error:
        raise _usage(
            f"{shown} is not a DuckDB memory limit "
            f"({first_meaningful_line(str(error))}); "
            "use e.g. 4GB, 8GiB or 40%"
        ) from None
