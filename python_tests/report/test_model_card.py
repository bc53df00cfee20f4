"""model_card: the sentence under the model card says what the AUCs and their intervals show."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loan_recovery.report.model_card import model_card_sentence


def _score(name: str, auc: float, low: float, high: float, **extra: Any) -> dict[str, Any]:
    return {
        "score_name": name,
        "roc_auc": auc,
        "roc_auc_ci_low": low,
        "roc_auc_ci_high": high,
        "evaluated_loans": 500,
        "is_score_in_use": False,
        "model_status": "trained" if name in ("outcome", "segment") else None,
        "label_roc_auc": 0.99 if name == "segment" else None,
        **extra,
    }


@pytest.mark.parametrize(
    ("outcome", "segment", "expected", "absent"),
    [
        (  # the public 500 loans: everything near chance
            (0.518, 0.467, 0.570),
            (0.526, 0.474, 0.577),
            [
                "the interval includes 0.5",
                "overlaps the write-up's segment score's",
                "(including 0.5",
            ],
            ["lies above", "better than chance:"],
        ),
        (
            (0.80, 0.77, 0.83),
            (0.70, 0.68, 0.72),
            ["above 0.5, it ranks losses better", "lies above the write-up's segment score's"],
            ["includes 0.5", "overlaps"],
        ),
        (
            (0.70, 0.66, 0.74),
            (0.71, 0.68, 0.74),
            ["above 0.5", "overlaps the write-up's segment score's"],
            ["lies above", "includes 0.5"],
        ),
        (  # the segment's AUC is below the outcome's interval, but its interval is not
            (0.80, 0.75, 0.85),
            (0.72, 0.66, 0.78),
            ["above 0.5", "overlaps the write-up's segment score's"],
            ["lies above"],
        ),
        (
            (0.40, 0.35, 0.45),
            (0.60, 0.55, 0.65),
            [
                "below 0.5, it ranks losses worse",
                "the write-up's segment score's interval lies above",
            ],
            ["includes 0.5"],
        ),
    ],
)
def test_model_card_sentence_follows_the_numbers(
    outcome: tuple[float, float, float],
    segment: tuple[float, float, float],
    expected: list[str],
    absent: list[str],
) -> None:
    scores = {
        "outcome": _score("outcome", *outcome, is_score_in_use=True),
        "segment": _score("segment", *segment),
        "base_rate": _score("base_rate", 0.5, 0.45, 0.55),
    }
    sentence = model_card_sentence(scores)
    assert all(part in sentence for part in expected), sentence
    assert not any(part in sentence for part in absent), sentence
    assert sentence.endswith("The strategy used the outcome model.")


def test_model_card_sentence_of_a_fallback() -> None:
    scores = {
        "outcome": _score(
            "outcome",
            np.nan,
            np.nan,
            np.nan,
            model_status="fallback",
            fallback_reason="150 resolved loans",
        ),
        "segment": _score("segment", 0.7, 0.65, 0.75, is_score_in_use=True),
    }
    sentence = model_card_sentence(scores)
    assert sentence.startswith("The outcome model fell back (150 resolved loans)"), sentence
    assert sentence.endswith("The strategy used the write-up's segment score.")
