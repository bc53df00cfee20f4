"""The action-effect model against simulated lenders whose truth it does not share.

Explored loans are drawn from the generator's books, each given an action at
random among its eligible ones, and an outcome from the simulator's own
P(full recovery | action). Two truths: the generator's (settlement helps the
stretched, legal action needs security and arrears: ramps on burden and
collateral cover) and the alternative (steps on employment type, missed
payments and loan type). The model knows neither form: it regresses
outcomes on the outcome model's inputs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loan_recovery.config import category_values, cluster_features, reference
from loan_recovery.generate import generate_loan_book
from loan_recovery.generate.economics import LEGAL_MIN_DAYS_PAST_DUE
from loan_recovery.generate.lender import (
    ACTIONS,
    ALTERNATIVE_EFFECTS,
    DEFAULT_EFFECTS,
    ActionEffects,
    full_recovery_probabilities,
)
from loan_recovery.generate.rules import code_of
from loan_recovery.modelling.action_effects import estimate_action_probabilities

RATIOS = list(reference()["ratio_features"])
FEATURES = [*cluster_features(), *RATIOS]
CATEGORIES = {name: category_values()[name] for name in reference()["outcome_categories"]}
POST_OUTCOME = list(reference()["post_outcome_columns"])
COSTS = np.array([500.0, 5_000.0, 40_000.0])
HAIRCUT = np.array([0.0, 0.30, 0.0])
PARTIAL = 0.35


def _loans(rows: int, seed: int) -> pd.DataFrame:
    """A generated book as the model reads it: features, ratios, categories (snake_case)."""
    book = generate_loan_book(rows, seed=seed).rename(columns=str.lower)
    book["loan_id"] = book["loan_id"].astype(str)
    book["emi_to_income_ratio"] = book["monthly_emi"] / book["monthly_income"]
    book["loan_to_annual_income_ratio"] = book["loan_amount"] / (12 * book["monthly_income"])
    book["outstanding_share_of_loan"] = book["outstanding_loan_amount"] / book["loan_amount"]
    book["collateral_to_loan_ratio"] = book["collateral_value"] / book["loan_amount"]
    cover = book["collateral_value"] / book["outstanding_loan_amount"].where(
        book["outstanding_loan_amount"] > 0
    )
    book["collateral_cover_ratio"] = cover.fillna(10).clip(upper=10)
    assert set(RATIOS) <= set(book.columns)
    return book


def _truth(book: pd.DataFrame, effects: ActionEffects) -> np.ndarray:
    facts = {
        name: book[name].to_numpy()
        for name in (
            "monthly_emi",
            "monthly_income",
            "collateral_value",
            "outstanding_loan_amount",
            "days_past_due",
            "num_missed_payments",
        )
    }
    for name in ("employment_type", "loan_type"):
        facts[name] = book[name].map(lambda value, column=name: code_of(column, value)).to_numpy()
    return full_recovery_probabilities(facts, effects)


def _explored(book: pd.DataFrame, truth: np.ndarray, share: float, seed: int) -> pd.DataFrame:
    """A random explore cell: each loan an eligible action at random, an outcome from the truth."""
    rng = np.random.default_rng(seed)
    chosen = rng.random(len(book)) < share
    eligible = book["days_past_due"].to_numpy() >= LEGAL_MIN_DAYS_PAST_DUE
    n_actions = np.where(eligible, 3, 2)
    action = np.floor(rng.random(len(book)) * n_actions).astype(int)
    recovered = rng.random(len(book)) < truth[np.arange(len(book)), action]
    explored = book[chosen].copy()
    explored["as_of_date"] = "2026-01-31"
    explored["cell"] = "explore"
    explored["assigned_strategy_code"] = [ACTIONS[a] for a in action[chosen]]
    explored["is_fully_recovered"] = recovered[chosen]
    return explored


def _sources(source: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy_code": list(ACTIONS),
            "strategy_rank": [1, 2, 3],
            "source": ["baseline", source, source],
            "prior_effect": [None, 0.05, 0.05],
        }
    )


def _estimate(
    to_decide: pd.DataFrame, explored: pd.DataFrame, source: str = "learned"
) -> np.ndarray:
    reader = estimate_action_probabilities(
        to_decide,
        explored,
        _sources(source),
        FEATURES,
        categories=CATEGORIES,
        post_outcome_columns=POST_OUTCOME,
        protected_attributes=["gender"],
    )
    table = reader.read_all().to_pandas().set_index("loan_id").loc[to_decide["loan_id"]]
    return table[[f"p_full_{a}" for a in ACTIONS]].to_numpy()


def _value(book: pd.DataFrame, p_full: np.ndarray) -> np.ndarray:
    outstanding = book["outstanding_loan_amount"].to_numpy()[:, None]
    return outstanding * (p_full * (1 - HAIRCUT) + (1 - p_full) * PARTIAL) - COSTS


def _decide(book: pd.DataFrame, p_full: np.ndarray) -> np.ndarray:
    eligible = book["days_past_due"].to_numpy() >= LEGAL_MIN_DAYS_PAST_DUE
    values = _value(book, p_full)
    values[~eligible, 2] = -np.inf
    return values.argmax(axis=1)


@pytest.fixture(scope="module")
def books() -> dict[str, tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]]:
    """Per truth: loans to decide (with a baseline), explored loans, and the truths."""
    found = {}
    for name, effects in (("default", DEFAULT_EFFECTS), ("alternative", ALTERNATIVE_EFFECTS)):
        history, today = _loans(12_000, seed=3), _loans(6_000, seed=4)
        truth_history, truth_today = _truth(history, effects), _truth(today, effects)
        # The baseline the outcome model would give: the truth's reminders probability,
        # blurred, so the test is about the effects, not about the outcome model.
        rng = np.random.default_rng(5)
        for frame, truth in ((history, truth_history), (today, truth_today)):
            noisy = np.clip(truth[:, 0] + rng.normal(0, 0.05, len(frame)), 0.01, 0.99)
            frame["loss_probability"] = 1 - noisy
        explored = _explored(history, truth_history, share=0.30, seed=6)
        found[name] = (today, explored, truth_today, truth_history)
    return found


@pytest.mark.parametrize("truth_name", ["default", "alternative"])
def test_learned_effects_choose_actions_worth_more_money(books, truth_name: str) -> None:
    today, explored, truth, _ = books[truth_name]
    estimated = _estimate(today, explored)
    true_values = _value(today, truth)
    rows = np.arange(len(today))
    learned = true_values[rows, _decide(today, estimated)].sum()
    reminders = true_values[:, 0].sum()
    with_average_effects = true_values[
        rows,
        _decide(
            today,
            np.column_stack(
                [
                    estimated[:, 0],
                    np.clip(estimated[:, 0] + (estimated[:, 1] - estimated[:, 0]).mean(), 0, 1),
                    np.clip(estimated[:, 0] + (estimated[:, 2] - estimated[:, 0]).mean(), 0, 1),
                ]
            ),
        ),
    ].sum()
    oracle = true_values[rows, _decide(today, truth)].sum()
    assert learned > reminders * 1.03, (learned / reminders, oracle / reminders)
    assert learned > with_average_effects, "per-loan effects should beat one average effect"
    assert learned <= oracle


@pytest.mark.parametrize("truth_name", ["default", "alternative"])
def test_learned_average_effects_are_near_the_truth(books, truth_name: str) -> None:
    today, explored, truth, _ = books[truth_name]
    estimated = _estimate(today, explored)
    eligible = today["days_past_due"].to_numpy() >= LEGAL_MIN_DAYS_PAST_DUE
    explored_eligible = explored["days_past_due"].to_numpy() >= LEGAL_MIN_DAYS_PAST_DUE
    for action, rows, compared in ((1, slice(None), slice(None)), (2, eligible, explored_eligible)):
        true_effect = (truth[rows, action] - truth[rows, 0]).mean()
        learned_effect = (estimated[rows, action] - estimated[rows, 0]).mean()
        # Within three standard errors of a difference of the explored rates.
        outcomes = explored[compared]
        variance = 0.0
        for code in (ACTIONS[action], ACTIONS[0]):
            recovered = outcomes.loc[
                outcomes["assigned_strategy_code"] == code, "is_fully_recovered"
            ]
            variance += recovered.mean() * (1 - recovered.mean()) / len(recovered)
        tolerance = 3 * variance**0.5
        assert abs(learned_effect - true_effect) < tolerance, (
            ACTIONS[action],
            learned_effect,
            true_effect,
            tolerance,
        )


def test_a_decision_that_was_not_randomised_is_never_learned_from(books) -> None:
    today, explored, _, _ = books["default"]
    for cell in ("champion", "challenger", None):
        tainted = explored.copy()
        tainted.loc[tainted.index[:3], "cell"] = cell
        with pytest.raises(ValueError, match="randomised decisions only"):
            _estimate(today, tainted)


def test_until_learned_the_prior_is_added_to_the_baseline(books) -> None:
    today, explored, _, _ = books["default"]
    estimated = _estimate(today, explored.iloc[0:0], source="prior")
    baseline = 1 - today["loss_probability"].to_numpy()
    assert np.allclose(estimated[:, 0], baseline)
    assert np.allclose(estimated[:, 1], np.clip(baseline + 0.05, 1e-3, 1 - 1e-3))
    assert np.allclose(estimated[:, 2], np.clip(baseline + 0.05, 1e-3, 1 - 1e-3))


def test_no_baseline_means_no_probabilities(books) -> None:
    today, explored, _, _ = books["default"]
    fallen_back = today.head(50).copy()
    fallen_back["loss_probability"] = np.nan
    estimated = _estimate(fallen_back, explored)
    assert np.isnan(estimated).all()


def test_gender_and_post_outcome_columns_are_refused_as_inputs(books) -> None:
    today, explored, _, _ = books["default"]
    for bad in ("gender", "recovery_status"):
        with pytest.raises(ValueError):
            estimate_action_probabilities(
                today,
                explored,
                _sources("learned"),
                [*FEATURES, bad],
                categories=CATEGORIES,
                post_outcome_columns=POST_OUTCOME,
                protected_attributes=["gender"],
            )
