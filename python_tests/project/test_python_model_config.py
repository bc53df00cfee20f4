"""Every dbt Python model receives each fact and setting it asks dbt.config.get for.

dbt hands a Python model only the configs it names in literal
``dbt.config.get("...")`` calls, rendered from the one shared block in
``models/intermediate/_intermediate.yml``. A model left out of that block, a
key missing from it, or a setting rendered without the run's ``--vars``
would reach the model as None or as the project default, and the model
would quietly fit with the wrong settings. So the project is parsed with
every per-run setting the models read overridden, and the manifest says
what dbt will pass each model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_dbt
from loan_recovery.config import reference, run_setting_defaults

pytestmark = pytest.mark.dbt

# A value for each per-run setting the Python models read, none its default.
OVERRIDES: dict[str, Any] = {
    "n_segments": 3,
    "segmentation_sample_rows": 1234,
    "scoring_trees": 7,
    "scoring_sample_rows": 2345,
    "outcome_trees": 9,
    "outcome_sample_rows": 3456,
    "min_resolved_loans": 123,
    "random_state": 7,
    "model_version": "0123456789ab",
    "decide_only": True,
}


def python_model_configs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per Python model of the project: {config key it reads: the value dbt passes}."""
    return {
        node["name"]: {
            key: node["config"].get(key) for key in node["config"].get("config_keys_used") or []
        }
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["language"] == "python"
    }


def test_every_python_model_gets_the_vars_of_this_run(tmp_path: Path) -> None:
    defaults = run_setting_defaults()
    assert all(defaults[name] != value for name, value in OVERRIDES.items())
    result = run_dbt(tmp_path, "parse", "--no-partial-parse", dbt_vars=OVERRIDES)
    assert result.returncode == 0, result.output
    configs = python_model_configs(json.loads((tmp_path / "target" / "manifest.json").read_text()))

    facts = reference()
    expected_by_key = {**facts, **defaults, **OVERRIDES}
    read = {key for keys in configs.values() for key in keys}
    # Every setting overridden here is read by some model, so each is checked.
    assert set(OVERRIDES) <= read
    for model, config in configs.items():
        for key, value in config.items():
            assert key in expected_by_key, f"{model} reads {key}: not a var, not a reference fact"
            assert value == expected_by_key[key], f"{model} gets {key} = {value!r}"
    # The models that fit or score read the feature list and the model version,
    # and the scoring ones the decision run's scope (the boolean itself, not text).
    fitting = {"int_loan_segments", "int_loan_segment_scores", "int_loan_outcome_scores"}
    for model in fitting | {"int_model_population_bins"}:
        assert {"cluster_features", "model_version"} <= set(configs[model]), model
    for model in fitting:
        assert configs[model]["decide_only"] is True, model
