"""The outcome model, its calibration and the leak sentinel, against facts computed here.

Books come from the generator with open loans and their true outcomes, so a
score on open loans is graded against what really happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from loan_recovery.config import (
    category_values,
    cluster_features,
    post_outcome_columns,
    reference,
    run_setting_defaults,
    snake_case,
)
from loan_recovery.generate import generate_loan_book
from loan_recovery.modelling import calibration, outcome
from loan_recovery.modelling.model_store import Component
from loan_recovery.modelling.outcome import score_outcomes
from loan_recovery.modelling.sentinel import LEAK_AUC, check_features_are_honest
from reference_metrics import ece

SETTINGS = run_setting_defaults()
RATIOS = reference()["ratio_features"]
FEATURES = [*cluster_features(), *RATIOS]
CATEGORIES = {name: category_values()[name] for name in reference()["outcome_categories"]}
PROTECTED = {name: category_values()[name] for name in reference()["protected_attributes"]}


def model_input(rows: int, seed: int, open_share: float = 0.3) -> tuple[pd.DataFrame, np.ndarray]:
    """A book as int_loan_features holds it, and every loan's true 'not fully recovered'."""
    truth = generate_loan_book(rows, seed=seed).rename(columns=snake_case)
    book = generate_loan_book(rows, seed=seed, open_share=open_share).rename(columns=snake_case)
    frame = book[["loan_id", *cluster_features(), *CATEGORIES, *PROTECTED]].copy()
    frame["emi_to_income_ratio"] = book["monthly_emi"] / book["monthly_income"]
    frame["loan_to_annual_income_ratio"] = book["loan_amount"] / (12 * book["monthly_income"])
    frame["outstanding_share_of_loan"] = book["outstanding_loan_amount"] / book["loan_amount"]
    frame["collateral_to_loan_ratio"] = book["collateral_value"] / book["loan_amount"]
    cover = book["collateral_value"] / book["outstanding_loan_amount"].where(
        book["outstanding_loan_amount"] > 0
    )
    frame["collateral_cover_ratio"] = cover.fillna(10).clip(upper=10)
    frame["is_resolved"] = book["recovery_status"].notna()
    frame["is_not_fully_recovered"] = (book["recovery_status"] != "Fully Recovered").where(
        frame["is_resolved"]
    )
    return frame, (truth["recovery_status"] != "Fully Recovered").to_numpy()


def score(frame: pd.DataFrame, **overrides: object) -> pd.DataFrame:
    return scores_as_arrow(frame, **overrides).to_pandas()


def scores_as_arrow(frame: pd.DataFrame, **overrides: object) -> pa.Table:
    """The scores as dbt receives them: no probability is NaN, a missing one is NULL."""
    settings = {
        "categories": CATEGORIES,
        "protected": PROTECTED,
        "post_outcome_columns": post_outcome_columns(),
        "n_trees": 60,
        "sample_rows": SETTINGS["outcome_sample_rows"],
        "min_resolved_loans": SETTINGS["min_resolved_loans"],
        "random_state": SETTINGS["random_state"],
        **overrides,
    }
    table = score_outcomes(frame, FEATURES, **settings).scores.read_all()
    assert pc.sum(pc.is_nan(table.column("loss_probability"))).as_py() in (0, None)
    return table


@pytest.fixture(scope="module")
def book() -> tuple[pd.DataFrame, np.ndarray]:
    return model_input(12_000, seed=21)


@pytest.fixture(scope="module")
def scored(book: tuple[pd.DataFrame, np.ndarray]) -> pd.DataFrame:
    return score(book[0])


def test_open_loans_are_ranked_by_their_true_outcome(book, scored) -> None:
    frame, truth = book
    is_open = ~frame["is_resolved"].to_numpy()
    auc = roc_auc_score(truth[is_open], scored["loss_probability"][is_open])
    dpd_auc = roc_auc_score(truth[is_open], frame["days_past_due"][is_open])
    assert auc >= 0.77
    assert auc >= dpd_auc + 0.05


def test_probabilities_are_calibrated_on_open_loans(book, scored) -> None:
    frame, truth = book
    is_open = ~frame["is_resolved"].to_numpy()
    probability = scored["loss_probability"].to_numpy()[is_open]
    assert ece(probability, truth[is_open]) <= 0.04
    assert probability.mean() == pytest.approx(truth[is_open].mean(), abs=0.03)


def test_probabilities_are_calibrated_where_the_raw_votes_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # On the generator's books the forest's raw votes happen to be nearly
    # calibrated already, so the test above passes without Platt scaling.
    # Here the outcome is an interaction (the XOR of two features' halves,
    # 95 % against 5 %): no feature ranks it alone (the leak sentinel stays
    # quiet), the trees find it only partly, and their votes shrink towards
    # the middle. Platt scaling must stretch them back.
    frame, _ = model_input(12_000, seed=31)

    def high(column: str) -> np.ndarray:
        return (frame[column] > frame[column].mean()).to_numpy()

    truth_p = np.where(high("interest_rate") ^ high("age"), 0.95, 0.05)
    lost = np.random.default_rng(1).random(len(frame)) < truth_p
    frame["is_not_fully_recovered"] = pd.Series(lost).where(frame["is_resolved"])
    is_open = ~frame["is_resolved"].to_numpy()
    calibrated = score(frame)["loss_probability"].to_numpy()[is_open]
    assert ece(calibrated, lost[is_open]) <= 0.05

    # The book is a real test: the same forest's votes, not calibrated, are far off.
    identity = calibration.Platt(slope=1.0, intercept=0.0)
    monkeypatch.setattr(
        outcome, "cross_fitted", lambda scores, *_: (np.asarray(scores, float), identity)
    )
    votes = score(frame)["loss_probability"].to_numpy()[is_open]
    assert ece(votes, lost[is_open]) >= 0.12


def test_only_resolved_loans_train_and_every_loan_is_scored(book, scored) -> None:
    frame, _ = book
    assert list(scored.columns) == [
        "loan_id",
        "loss_probability",
        "is_training_row",
        "outcome_model_hash",
        "outcome_model_status",
        "outcome_fallback_reason",
    ]
    assert scored["loan_id"].tolist() == frame["loan_id"].tolist()
    assert scored["loss_probability"].between(0, 1).all()
    assert not (scored["is_training_row"] & ~frame["is_resolved"]).any()
    assert scored["is_training_row"].sum() == frame["is_resolved"].sum()
    assert set(scored["outcome_model_status"]) == {"trained"}
    assert scored["outcome_fallback_reason"].isna().all()


def test_training_loans_get_out_of_sample_scores() -> None:
    frame, _ = model_input(4_000, seed=5, open_share=0.2)
    noise = np.random.default_rng(0).random(len(frame)) < 0.4
    frame["is_not_fully_recovered"] = pd.Series(noise).where(frame["is_resolved"])
    scored = score(frame)
    training = scored["is_training_row"].to_numpy()
    # In-sample scores of a forest rank a noise label far from chance (near
    # perfectly, or inverted once calibrated on out-of-bag scores).
    assert abs(roc_auc_score(noise[training], scored["loss_probability"][training]) - 0.5) < 0.1


def test_sampled_training_uses_resolved_loans_only_and_ignores_row_order() -> None:
    frame, _ = model_input(6_000, seed=8)
    first = score(frame, sample_rows=1_500)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = score(shuffled, sample_rows=1_500)
    assert first["is_training_row"].sum() == 1_500
    merged = first.merge(again, on="loan_id")
    assert np.array_equal(merged["loss_probability_x"], merged["loss_probability_y"])
    assert (merged["outcome_model_hash_x"] == merged["outcome_model_hash_y"]).all()


def test_too_few_resolved_loans_fall_back_with_the_reason() -> None:
    frame, _ = model_input(400, seed=2, open_share=0.6)
    resolved = int(frame["is_resolved"].sum())
    scored = score(frame, min_resolved_loans=resolved + 1)
    assert scored["loss_probability"].isna().all()
    assert not scored["is_training_row"].any()
    assert set(scored["outcome_model_status"]) == {"fallback"}
    assert scored["outcome_model_hash"].isna().all()
    (reason,) = set(scored["outcome_fallback_reason"])
    assert reason.startswith(f"{resolved} resolved loans, fewer than min_resolved_loans")


def test_one_outcome_only_falls_back() -> None:
    frame, _ = model_input(600, seed=2)
    frame["is_not_fully_recovered"] = frame["is_not_fully_recovered"].where(
        ~frame["is_resolved"], False
    )
    scored = score(frame, min_resolved_loans=50)
    assert scored["loss_probability"].isna().all()
    assert set(scored["outcome_model_status"]) == {"fallback"}
    assert "one outcome only" in scored["outcome_fallback_reason"].iloc[0]


@pytest.mark.parametrize(
    ("feature", "values", "words"),
    [
        # A column built from what happened, smuggled in under an innocent name.
        (
            "interest_rate",
            lambda frame: frame["is_not_fully_recovered"].fillna(False).astype(float) * 3 + 9,
            r"leak sentinel: feature 'interest_rate' .*ROC AUC 1\.000",
        ),
        (
            "age",
            lambda frame: frame["gender"].eq("Male").astype(float) * 20 + 30,
            r"feature 'age' separates gender=Male",
        ),
    ],
    ids=["a leaked outcome", "a proxy for gender"],
)
def test_a_feature_that_leaks_is_caught_in_the_data(
    feature: str, values: Callable[[pd.DataFrame], pd.Series], words: str
) -> None:
    frame, _ = model_input(3_000, seed=4)
    frame[feature] = values(frame)
    with pytest.raises(ValueError, match=words):
        score(frame)


@pytest.mark.parametrize("banned", ["gender", "collection_attempts"])
def test_banned_columns_are_refused_by_name(banned: str) -> None:
    frame, _ = model_input(500, seed=4)
    frame[banned] = 1.0
    with pytest.raises(ValueError, match=banned):
        score_outcomes(
            frame,
            [*FEATURES, banned],
            categories=CATEGORIES,
            protected=PROTECTED,
            post_outcome_columns=post_outcome_columns(),
            n_trees=10,
            sample_rows=1_000,
            min_resolved_loans=10,
            random_state=1,
        )


def test_sentinel_lets_honest_features_through(book) -> None:
    frame, _ = book
    resolved = frame[frame["is_resolved"]]
    rows = resolved[FEATURES].to_numpy(dtype=float)
    aucs = check_features_are_honest(
        rows,
        FEATURES,
        resolved["is_not_fully_recovered"].to_numpy(dtype=bool),
        {"gender=Male": resolved["gender"].eq("Male").to_numpy()},
    )
    assert max(abs(auc - 0.5) for auc in aucs.values()) < LEAK_AUC - 0.5


def test_an_unknown_category_counts_as_other(book, scored) -> None:
    frame, _ = book
    changed = frame.copy()
    first = changed.index[~changed["is_resolved"]][0]
    changed.loc[first, "employment_type"] = "Unemployed"
    again = score(changed)
    assert np.isfinite(again.loc[first, "loss_probability"])
    assert again.loc[first, "loss_probability"] != scored.loc[first, "loss_probability"]


def test_the_model_calibrates_whatever_the_forest_votes(
    book, scored, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Distort every vote of the forest (monotone, so the ranking stays): the
    # probabilities the model reports must still match the outcomes.
    def squash(votes: np.ndarray) -> np.ndarray:
        return np.asarray(votes) ** 3

    real_fit, real_proba = outcome.fit_out_of_bag, outcome.positive_proba

    def distorted_fit(*args: object, **kwargs: object):
        fitted = real_fit(*args, **kwargs)
        return dataclasses.replace(fitted, training_scores=squash(fitted.training_scores))

    monkeypatch.setattr(outcome, "fit_out_of_bag", distorted_fit)
    monkeypatch.setattr(outcome, "positive_proba", lambda f, rows: squash(real_proba(f, rows)))
    frame, truth = book
    probability = score(frame)["loss_probability"].to_numpy()
    honest = scored["loss_probability"].to_numpy()
    for loans in (~frame["is_resolved"].to_numpy(), frame["is_resolved"].to_numpy()):
        assert ece(squash(honest[loans]), truth[loans]) > 0.1  # the distortion matters
        assert ece(probability[loans], truth[loans]) <= 0.04


def test_platt_calibration_repairs_overconfident_scores() -> None:
    rng = np.random.default_rng(7)
    truth = rng.uniform(0.05, 0.95, 40_000)
    labels = rng.random(40_000) < truth
    logit = np.log(truth / (1 - truth))
    overconfident = 1 / (1 + np.exp(-2.5 * logit))  # ranks like the truth, wrong probabilities
    ids = pd.Series([f"L{i}" for i in range(40_000)])
    cross, fitted = calibration.cross_fitted(overconfident, labels, ids, random_state=1)
    assert ece(overconfident, labels) > 0.08
    assert ece(cross, labels) < 0.015
    assert ece(fitted.apply(overconfident), labels) < 0.015
    # Monotone: the ranking (and the AUC) is the score's own.
    assert roc_auc_score(labels, cross) == pytest.approx(
        roc_auc_score(labels, overconfident), abs=2e-3
    )


def test_calibration_folds_depend_on_ids_only() -> None:
    ids = pd.Series([f"L{i}" for i in range(1_000)])
    folds = calibration.folds_of(ids, random_state=4)
    shuffled = ids.sample(frac=1.0, random_state=2)
    again = calibration.folds_of(shuffled.reset_index(drop=True), random_state=4)
    assert dict(zip(ids, folds, strict=True)) == dict(zip(shuffled, again, strict=True))
    assert set(folds) == set(range(calibration.FOLDS))


def test_a_frozen_outcome_model_says_so_and_keeps_its_hash() -> None:
    frame, _ = model_input(1_500, seed=3)
    settings = {
        "categories": CATEGORIES,
        "protected": PROTECTED,
        "post_outcome_columns": post_outcome_columns(),
        "n_trees": 20,
        "sample_rows": SETTINGS["outcome_sample_rows"],
        "min_resolved_loans": SETTINGS["min_resolved_loans"],
        "random_state": SETTINGS["random_state"],
    }
    fitted = score_outcomes(frame, FEATURES, **settings)
    trained = fitted.scores.read_all().to_pandas()
    ((_, meta, arrays, forest),) = fitted.components
    frozen = score(frame, frozen=Component(meta, arrays, forest))
    assert set(frozen["outcome_model_status"]) == {"frozen"}
    assert frozen["outcome_fallback_reason"].isna().all()
    assert (
        set(frozen["outcome_model_hash"]) == set(trained["outcome_model_hash"]) == {meta["version"]}
    )
