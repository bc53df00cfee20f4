"""The page's short glossary: the four measures a manager meets on it, in plain words.

Kept here, once, so the page and the docs word them the same way; the
cut-offs quoted are the project's (PSI classes from var reference.psi_cutoffs).
"""

from __future__ import annotations

import html

TERMS: tuple[tuple[str, str], ...] = (
    (
        "AUC",
        "Area under the ROC curve: the chance that a loan which was not fully recovered got a "
        "higher score than one which was. 0.5 is a coin toss, 1 a perfect ranking; read its "
        "95 % interval, and act on a score only when the interval stays above 0.5.",
    ),
    (
        "Brier score",
        "The mean squared gap between the predicted loss probability and what happened (1 lost, "
        "0 fully recovered). Lower is better; the base rate's Brier is the bar to beat.",
    ),
    (
        "ECE",
        "Expected calibration error: the average gap between the predicted loss probability "
        "and the observed loss rate, over bins of loans. 0.02 means the probabilities are off "
        "by about 2 points; amounts at risk and expected values inherit that error.",
    ),
    (
        "PSI",
        "Population stability index: how far this book's mix of a model variable moved from "
        "the loans the model learned on. Below 0.10 stable, below 0.25 moderate, above that "
        "significant: retrain or validate before trusting the score.",
    ),
)


def render_glossary() -> str:
    """The glossary as an HTML definition list."""
    items = "".join(
        f"<dt>{html.escape(term)}</dt><dd>{html.escape(words)}</dd>" for term, words in TERMS
    )
    return f'<dl class="glossary">{items}</dl>'
