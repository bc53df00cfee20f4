"""settings: --vars and the DuckDB memory limit read as checked data; a bad one is a usage error."""

from __future__ import annotations

import json
import os

import pytest

from loan_recovery.config import run_setting_defaults
from loan_recovery.errors import EXIT_USAGE, BuildError
from loan_recovery.serving.settings import check_duckdb_memory, parse_settings


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{legal_treshold: 0.8}", "unknown setting 'legal_treshold'"),
        ("{reference: {loan_book_columns: [a]}}", "may not override 'reference'"),
        ("{legal_threshold: high}", "legal_threshold must be a number"),
        ("{legal_threshold: '0.8'}", "legal_threshold must be a number"),
        ("{n_segments: 4.5}", "n_segments must be a whole number"),
        ("{n_segments: true}", "n_segments must be a whole number"),
        ("{legal_threshold: true}", "legal_threshold must be a number"),
        ("{loans_path: 5}", "loans_path must be a file path"),
        ("[1, 2]", "must be a YAML mapping"),
        ("5", "must be a YAML mapping"),
        ("{n_segments: [", "not valid YAML"),
    ],
)
def test_bad_settings_are_a_usage_error(text: str, match: str) -> None:
    with pytest.raises(BuildError, match=match) as refused:
        parse_settings(text)
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ("{legal_threshold: 0.8, legal_threshold: 0.2}", "legal_threshold"),
        ("{n_segments: 4, scoring_trees: 9, n_segments: 5}", "n_segments"),
        ("n_segments: 4\nn_segments: 4\n", "n_segments"),
        ("{reference: {a: 1, a: 2}}", "a"),
    ],
)
def test_a_setting_given_twice_is_a_usage_error(text: str, repeated: str) -> None:
    """YAML keeps the last of two equal keys; which one the user meant is unknown: refuse."""
    with pytest.raises(BuildError) as refused:
        parse_settings(text)
    assert refused.value.reason == f"--vars gives {repeated} twice; give each setting once"
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)


GIB = 1024**3


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-1", "is not a DuckDB memory limit"),
        ("999TB", "is more than this machine's"),
        ("1KB", "is less than 256 MB"),
        ("255MB", "is less than 256 MB"),
        ("0%", "must be a share from 1% to 100%"),
        ("101%", "must be a share from 1% to 100%"),
        ("-5%", "must be a share from 1% to 100%"),
        ("4", "is not a DuckDB memory limit"),
        ("4 parsecs", "is not a DuckDB memory limit"),
    ],
)
def test_a_duckdb_memory_limit_out_of_bounds_is_a_usage_error(value: str, why: str) -> None:
    with pytest.raises(BuildError) as refused:
        check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    assert refused.value.reason.startswith(f"LOAN_RECOVERY_DUCKDB_MEMORY={value!r} ")
    assert why in refused.value.reason
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


def test_a_duckdb_memory_limit_is_bounded_by_this_machine() -> None:
    total = physical_memory()
    within = f"{total // GIB}GiB"
    check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": within})
    beyond = f"{total // GIB + 1}GiB"
    with pytest.raises(BuildError, match="is more than this machine's"):
        check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": beyond})
    check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": "256MB"})
    check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": "100%"})


@pytest.mark.parametrize("value", ["lots", "", "{{ 7 * 7 }}", "200%", "4"])
def test_a_duckdb_memory_limit_duckdb_cannot_read_is_a_usage_error(value: str) -> None:
    with pytest.raises(BuildError, match="LOAN_RECOVERY_DUCKDB_MEMORY=") as refused:
        check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize("value", ["1GB", "512MiB", "40%", "0.5 GB", "2gb"])
def test_a_readable_duckdb_memory_limit_passes(value: str) -> None:
    check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    check_duckdb_memory({})


def test_text_settings_may_not_hold_templates() -> None:
    defaults = {"model_name": "forest-1", "n_segments": 4}
    assert parse_settings("{model_name: forest-2.a_b}", defaults) == (
        {"model_name": "forest-2.a_b"},
        None,
    )
    for text in ("{model_name: '{{ run_query(1) }}'}", "{model_name: 'a b'}"):
        with pytest.raises(BuildError, match="may hold only letters") as refused:
            parse_settings(text, defaults)
        assert refused.value.exit_code == EXIT_USAGE


def test_good_settings_and_loans_path_apart() -> None:
    assert parse_settings(None) == ({}, None)
    assert parse_settings("") == ({}, None)
    assert parse_settings("{}") == ({}, None)
    settings, loans_path = parse_settings(
        "{loans_path: '/d/b{{1}}.csv', n_segments: 5, legal_threshold: 1, "
        "settlement_threshold: 0.4}"
    )
    # loans_path names the file, opened by the build: it never reaches dbt's vars.
    assert loans_path == "/d/b{{1}}.csv"
    assert settings == {"n_segments": 5, "legal_threshold": 1, "settlement_threshold": 0.4}
    # Every per-run setting of dbt_project.yml may be given, with its default
    # (the decision cycle is --as-of's and the decision run --decide-only's, never
    # --vars keys).
    every = {
        name: value
        for name, value in run_setting_defaults().items()
        if name not in ("loans_path", "as_of_date", "decide_only")
    }
    assert parse_settings(json.dumps(every)) == (every, None)
