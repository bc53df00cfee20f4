"""settings: --vars and the DuckDB memory limit read as checked data; a bad one is a usage error."""

from __future__ import annotations

import json

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


@pytest.mark.parametrize("value", ["lots", "", "{{ 7 * 7 }}", "200%", "4"])
def test_a_duckdb_memory_limit_duckdb_cannot_read_is_a_usage_error(value: str) -> None:
    with pytest.raises(BuildError, match="LOAN_RECOVERY_DUCKDB_MEMORY=") as refused:
        check_duckdb_memory({"LOAN_RECOVERY_DUCKDB_MEMORY": value})
    assert (refused.value.step, refused.value.exit_code) == ("settings", EXIT_USAGE)
    assert "\n" not in refused.value.reason


@pytest.mark.parametrize("value", ["4GB", "512MiB", "40%"])
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
    # Every per-run setting of dbt_project.yml may be given, with its default.
    every = {name: value for name, value in run_setting_defaults().items() if name != "loans_path"}
    assert parse_settings(json.dumps(every)) == (every, None)
