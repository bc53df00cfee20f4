"""Risk scoring: every loan scored by trees that never saw it, reproducibly."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from loan_recovery.config import cluster_features, post_outcome_columns, run_setting_defaults
from loan_recovery.modelling.forest import forest_parameters
from loan_recovery.modelling.model_store import Component
from loan_recovery.modelling.segment_score import score_segment_risk

FEATURES = cluster_features()
SETTINGS = run_setting_defaults()


def score(training, features, **overrides):
    """score_segment_risk with the project's default settings, overridden where a test says."""
    settings = {
        "post_outcome_columns": post_outcome_columns(),
        "n_trees": SETTINGS["scoring_trees"],
        "sample_rows": SETTINGS["scoring_sample_rows"],
        "random_state": SETTINGS["random_state"],
        **overrides,
    }
    return score_segment_risk(training, features, **settings).scores.read_all().to_pandas()


def make_training(n: int, seed: int = 0, label: str = "signal") -> pd.DataFrame:
    """Loans with standard-normal features; the label is delinquency-driven or pure noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(0.0, 1.0, (n, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "loan_id", [f"L{i:06d}" for i in range(n)])
    if label == "signal":
        frame["is_high_risk"] = frame["num_missed_payments"] + frame["days_past_due"] > 0.5
    else:
        frame["is_high_risk"] = rng.random(n) < 0.4
    return frame


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return make_training(1_500)


@pytest.fixture(scope="module")
def scored(training: pd.DataFrame) -> pd.DataFrame:
    return score(training, FEATURES)


def test_every_loan_gets_a_score_in_unit_interval(training: pd.DataFrame, scored) -> None:
    assert list(scored.columns) == [
        "loan_id",
        "segment_risk_score",
        "is_training_row",
        "segment_model_hash",
        "segment_model_status",
    ]
    assert scored["loan_id"].tolist() == training["loan_id"].tolist()
    assert scored["segment_risk_score"].dtype == np.float64
    assert scored["segment_risk_score"].between(0.0, 1.0).all()
    assert scored["is_training_row"].dtype == bool
    assert scored["is_training_row"].all()
    assert scored["segment_model_hash"].nunique() == 1
    assert len(scored["segment_model_hash"].iloc[0]) == 12
    assert set(scored["segment_model_status"]) == {"trained"}


def test_a_frozen_segment_score_says_so_and_keeps_its_hash(training: pd.DataFrame, scored) -> None:
    settings = {
        "post_outcome_columns": post_outcome_columns(),
        "n_trees": SETTINGS["scoring_trees"],
        "sample_rows": SETTINGS["scoring_sample_rows"],
        "random_state": SETTINGS["random_state"],
    }
    ((_, meta, arrays, forest),) = score_segment_risk(training, FEATURES, **settings).components
    frozen = score(
        training.drop(columns="is_high_risk"),
        FEATURES,
        frozen=Component(meta, arrays, forest),
    )
    assert set(frozen["segment_model_status"]) == {"frozen"}
    assert set(frozen["segment_model_hash"]) == set(scored["segment_model_hash"])
    assert not frozen["is_training_row"].any()


def test_scores_rank_a_real_signal(training: pd.DataFrame, scored) -> None:
    assert roc_auc_score(training["is_high_risk"], scored["segment_risk_score"]) > 0.9


def test_scores_are_out_of_sample_on_a_noise_label() -> None:
    noise = make_training(1_500, seed=1, label="noise")
    scored = score(noise, FEATURES)
    assert roc_auc_score(noise["is_high_risk"], scored["segment_risk_score"]) < 0.7
    # The same forest scoring the rows it was trained on would look near-perfect.
    parameters = forest_parameters(len(noise), 100, 42)
    forest = RandomForestClassifier(**parameters).fit(noise[FEATURES], noise["is_high_risk"])
    in_sample = forest.predict_proba(noise[FEATURES])[:, 1]
    assert roc_auc_score(noise["is_high_risk"], in_sample) > 0.9


def test_same_input_gives_identical_scores_and_version(training: pd.DataFrame, scored) -> None:
    again = score(training.copy(), FEATURES)
    pd.testing.assert_frame_equal(again, scored)
    assert np.array_equal(
        again["segment_risk_score"].to_numpy(), scored["segment_risk_score"].to_numpy()
    )


@pytest.mark.parametrize(
    ("sampled", "seed"), [(False, 3), (True, 5)], ids=["every row trains", "a third trains"]
)
def test_row_order_does_not_change_scores(
    training: pd.DataFrame, scored, sampled: bool, seed: int
) -> None:
    settings = {"sample_rows": len(training) // 3} if sampled else {}
    first = score(training, FEATURES, **settings) if sampled else scored
    shuffled = training.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    again = score(shuffled, FEATURES, **settings)
    left = again.sort_values("loan_id").reset_index(drop=True)
    right = first.sort_values("loan_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right)


def test_version_changes_with_data_and_features(training: pd.DataFrame, scored) -> None:
    changed = training.copy()
    changed.loc[10, "monthly_income"] += 1.0
    assert (
        score(changed, FEATURES)["segment_model_hash"].iloc[0]
        != scored["segment_model_hash"].iloc[0]
    )
    fewer = score(training, FEATURES[:-1])
    assert fewer["segment_model_hash"].iloc[0] != scored["segment_model_hash"].iloc[0]
    other_seed = score(training, FEATURES, random_state=7)
    assert other_seed["segment_model_hash"].iloc[0] != scored["segment_model_hash"].iloc[0]


def test_sample_cap_trains_on_a_sample_and_scores_the_rest() -> None:
    big = make_training(4_000, seed=2)
    scored = score(big, FEATURES, n_trees=30, sample_rows=1_000)
    assert scored["is_training_row"].sum() == 1_000
    assert scored["segment_risk_score"].notna().all()
    assert scored["segment_risk_score"].between(0.0, 1.0).all()
    held_out = ~scored["is_training_row"]
    auc = roc_auc_score(
        big.loc[held_out, "is_high_risk"], scored.loc[held_out, "segment_risk_score"]
    )
    assert auc > 0.9
    pd.testing.assert_frame_equal(score(big, FEATURES, n_trees=30, sample_rows=1_000), scored)


def test_rows_never_out_of_bag_are_scored_out_of_fold() -> None:
    noise = make_training(600, seed=4, label="noise")
    scored = score(noise, FEATURES, n_trees=2)  # ~40% of rows are in both bootstraps
    assert scored["segment_risk_score"].notna().all()
    assert scored["segment_risk_score"].between(0.0, 1.0).all()
    assert roc_auc_score(noise["is_high_risk"], scored["segment_risk_score"]) < 0.7
    pd.testing.assert_frame_equal(score(noise, FEATURES, n_trees=2), scored)


def test_arrow_and_integer_labels_match_pandas(training: pd.DataFrame, scored) -> None:
    table = pa.Table.from_pandas(training, preserve_index=False)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=97))
    from_arrow = score(chunked, FEATURES)
    pd.testing.assert_frame_equal(
        from_arrow.astype({"loan_id": str}), scored.astype({"loan_id": str})
    )
    as_int = training.assign(is_high_risk=training["is_high_risk"].astype(int))
    pd.testing.assert_frame_equal(score(as_int, FEATURES), scored)


def _null_label(training: pd.DataFrame) -> pd.DataFrame:
    holes = training.astype({"is_high_risk": "boolean"})
    holes.loc[[1, 2], "is_high_risk"] = pd.NA
    return holes


def _infinite_feature(training: pd.DataFrame) -> pd.DataFrame:
    holes = training.copy()
    holes.loc[7, "days_past_due"] = np.inf
    return holes


# (a call of score_segment_risk on spoiled training data, the words of its one-line error)
BAD_INPUTS = [
    pytest.param(
        lambda training: score(training.iloc[:0], FEATURES),
        "no loans to score: the input has 0 rows",
        id="empty",
    ),
    pytest.param(
        lambda training: score(
            training.assign(legal_action_taken=1), [*FEATURES, "legal_action_taken"]
        ),
        r"legal_action_taken.*recorded after the recovery",
        id="post-outcome feature",
    ),
    pytest.param(
        lambda training: score(training, [*FEATURES, "is_high_risk"]),
        "is_high_risk are the model's label",
        id="the label as a feature",
    ),
    pytest.param(
        lambda training: score(training.drop(columns=["is_high_risk"]), FEATURES),
        r"missing column\(s\) is_high_risk",
        id="missing label",
    ),
    pytest.param(
        lambda training: score(training.drop(columns=["age"]), FEATURES),
        r"missing column\(s\) age",
        id="missing feature",
    ),
    pytest.param(
        lambda training: score(training.assign(is_high_risk=False), FEATURES),
        "one class only",
        id="one class only",
    ),
    pytest.param(
        lambda training: score(_null_label(training), FEATURES),
        "'is_high_risk' has 2 null",
        id="null label",
    ),
    pytest.param(
        lambda training: score(_infinite_feature(training), FEATURES),
        "'days_past_due' has 1 null or non-finite",
        id="infinite feature",
    ),
]


@pytest.mark.parametrize(("call", "words"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(
    training: pd.DataFrame, call: Callable[[pd.DataFrame], object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        call(training)
