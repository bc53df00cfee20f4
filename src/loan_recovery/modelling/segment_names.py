"""Segment ids, names and high-risk flags, derived from each segment's profile by fixed rules.

The KMeans clusters (:mod:`loan_recovery.modelling.segmentation`) are only an
intermediate; this module turns a cluster's profile into what a reader sees.

Which segments are risky is decided by what happened when that is known.
Round 1 ranked segments by arrears plus loan "burden", so big, well
collateralised loans were flagged high risk although they recovered best.
Now, when every segment holds at least ``MIN_SEGMENT_RESOLVED`` resolved
loans, a segment's risk is its observed loss rate (the share of its resolved
loans not fully recovered); otherwise its delinquency profile (missed
payments and days past due) decides. Loan size and EMI alone never make a
segment risky.

Profile measures, in z-scores (the cluster's mean of each standardized
feature; the fitting sample has mean 0 and standard deviation 1, so 0 is "the
book average"):

==============  ================================================================
measure         definition
==============  ================================================================
income          z(monthly_income)
loan            z(loan_amount)
burden          mean z(loan_amount, outstanding_loan_amount, monthly_emi)
                - z(monthly_income): what is owed and paid against what is earned
burden level    0.5 * burden (``BURDEN_WEIGHT``): burden is a difference of two
                z-means, so halving it puts it on the scale of income and loan
delinquency     mean z(num_missed_payments, days_past_due): observed arrears
loss rate       share of the segment's resolved loans not fully recovered
==============  ================================================================

Ids, flags and names (k segments; a tier is High if z > +0.25, Low if
z < -0.25, Moderate otherwise: ``TIER_THRESHOLD``):

==============  ================================================================
part            rule
==============  ================================================================
risk basis      "observed loss rate" when every segment has at least
                ``MIN_SEGMENT_RESOLVED`` resolved loans, else "delinquency"
segment_id      1..k by the risk basis ascending (1 = least risky); ties broken
                by delinquency, then the centroid's z-scores in feature order
is_high_risk    loss rate basis: the segments whose loss rate is above the
                book's; delinquency basis: the k // 2 most delinquent
                (``HIGH_RISK_RULE``); always at least one, never all
risk phrase     loss rate basis: high risk: "Higher Default Risk"; the least
                risky, below the book's loss rate: "Low Default Risk"; others
                "Medium Risk". Delinquency basis: high risk with delinquency
                > 0: "Higher Default Risk", other high risk: "Elevated Risk";
                id 1 with delinquency < 0: "Low Default Risk"; others "Medium
                Risk"
descriptor      the most distinctive (largest |z|) of income ("Income"), loan
                ("Loan") and burden level ("Loan Burden"), prefixed with its
                tier; if none is High or Low: "Moderate Income"
name            "<descriptor>, <risk phrase>"
uniqueness      segments sharing a name get their next most distinctive
                descriptor inserted ("High Income, Low Loan, Medium Risk");
                names still shared get " #1", " #2", ... in segment_id order
==============  ================================================================

So "High Income" means income above the book average by more than a quarter
of a standard deviation, and where outcomes are known "Higher Default Risk"
means a loss rate above the book's and "Low Default Risk" the lowest, below
it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

INCOME_FEATURE = "monthly_income"
LOAN_FEATURE = "loan_amount"
DEBT_FEATURES = ("loan_amount", "outstanding_loan_amount", "monthly_emi")
DELINQUENCY_FEATURES = ("num_missed_payments", "days_past_due")
PROFILE_FEATURES = (INCOME_FEATURE, *DEBT_FEATURES, *DELINQUENCY_FEATURES)

BURDEN_WEIGHT = 0.5
"""Burden level = BURDEN_WEIGHT x burden, the scale of income and loan (module docstring)."""

MIN_SEGMENT_RESOLVED = 20
"""Resolved loans every segment needs before its observed loss rate decides its risk."""

LOSS_RATE_BASIS = "observed loss rate"
DELINQUENCY_BASIS = "delinquency"

TIER_THRESHOLD = 0.25
"""|z| beyond which a measure is called High or Low rather than Moderate."""

HIGH_RISK_RULE = (
    "with outcomes, the segments whose observed loss rate is above the book's are high risk; "
    "without, the k // 2 most delinquent (k = 4 flags the two worst); at least one, never all"
)

LOW_RISK = "Low Default Risk"
MEDIUM_RISK = "Medium Risk"
HIGHER_RISK = "Higher Default Risk"
ELEVATED_RISK = "Elevated Risk"


def high_risk_count(n_segments: int) -> int:
    """How many segments are high risk: ``n_segments // 2`` (see ``HIGH_RISK_RULE``)."""
    return n_segments // 2


def profile_measures(centroids: pd.DataFrame) -> pd.DataFrame:
    """Income, loan, burden and delinquency of each centroid (z-score rows).

    ``centroids`` has one row per cluster and (at least) the columns in
    ``PROFILE_FEATURES``, holding the cluster's mean z-score of each.
    """
    missing = [name for name in PROFILE_FEATURES if name not in centroids.columns]
    if missing:
        raise ValueError(
            f"segment naming needs the features {', '.join(missing)} (see the segmentation "
            "module docstring for how each measure is defined)"
        )
    income = centroids[INCOME_FEATURE].astype(float)
    burden = centroids[list(DEBT_FEATURES)].astype(float).mean(axis=1) - income
    delinquency = centroids[list(DELINQUENCY_FEATURES)].astype(float).mean(axis=1)
    return pd.DataFrame(
        {
            "income": income,
            "loan": centroids[LOAN_FEATURE].astype(float),
            "burden": burden,
            "delinquency": delinquency,
        },
        index=centroids.index,
    )


def _tier(value: float) -> str:
    if value > TIER_THRESHOLD:
        return "High"
    if value < -TIER_THRESHOLD:
        return "Low"
    return "Moderate"


def _descriptors(income: float, loan: float, burden_level: float) -> list[str]:
    """Descriptors most distinctive first; the first one names the segment."""
    candidates = [("Income", income), ("Loan", loan), ("Loan Burden", burden_level)]
    ranked = sorted(candidates, key=lambda item: -abs(item[1]))  # stable: ties keep table order
    if _tier(ranked[0][1]) == "Moderate":
        ranked = [candidates[0], *[item for item in ranked if item is not candidates[0]]]
    return [f"{_tier(value)} {word}" for word, value in ranked]


def _risk_phrase(
    segment_id: int, high_risk: bool, delinquency: float, loss_rate: float | None, book_rate: float
) -> str:
    if loss_rate is not None:
        if high_risk:
            return HIGHER_RISK
        return LOW_RISK if segment_id == 1 and loss_rate < book_rate else MEDIUM_RISK
    if high_risk:
        return HIGHER_RISK if delinquency > 0 else ELEVATED_RISK
    return LOW_RISK if segment_id == 1 and delinquency < 0 else MEDIUM_RISK


def name_segments(
    centroids: pd.DataFrame,
    loss_rates: Sequence[float] | NDArray[np.float64] | None = None,
    book_loss_rate: float | None = None,
) -> pd.DataFrame:
    """Stable ids, names and high-risk flags for clusters, from their profiles and outcomes.

    ``centroids`` is indexed by the clustering's own labels (any order, any
    values) with the mean z-score of each feature per cluster. ``loss_rates``
    (one per centroid row) and ``book_loss_rate`` are given when outcomes
    decide (module docstring); else the delinquency profile does. The result
    has the same index and the columns segment_id, segment_name, is_high_risk,
    risk_basis, the measures of ``profile_measures`` and loss_rate. Nothing
    depends on the labels or the row order.
    """
    n_segments = len(centroids)
    measures = profile_measures(centroids)
    values = centroids.to_numpy(dtype=float)
    by_outcome = loss_rates is not None and book_loss_rate is not None
    rates = np.asarray(loss_rates, dtype=float) if by_outcome else np.full(n_segments, np.nan)
    risk = rates if by_outcome else measures["delinquency"].to_numpy()
    keys = [
        (risk[i], row.delinquency, *values[i])
        for i, row in enumerate(measures.itertuples(index=False))
    ]
    order = sorted(range(n_segments), key=lambda i: keys[i])
    segment_ids = np.empty(n_segments, dtype=np.int64)
    segment_ids[order] = np.arange(1, n_segments + 1)

    if by_outcome and book_loss_rate is not None:
        high = rates > float(book_loss_rate)
        if not high.any():  # every segment at the book's rate: the worst one still leads
            high = segment_ids == n_segments
        high &= ~(high.all() & (segment_ids == 1))  # never all
    else:
        high = segment_ids > n_segments - high_risk_count(n_segments)

    names = []
    descriptors = []
    for i, row in enumerate(measures.itertuples(index=False)):
        phrase = _risk_phrase(
            int(segment_ids[i]),
            bool(high[i]),
            row.delinquency,
            float(rates[i]) if by_outcome else None,
            float(book_loss_rate) if by_outcome and book_loss_rate is not None else 0.0,
        )
        descriptors.append(_descriptors(row.income, row.loan, BURDEN_WEIGHT * row.burden))
        names.append((descriptors[-1], phrase))
    labels = [f"{words[0]}, {phrase}" for words, phrase in names]
    shared = {label for label in labels if labels.count(label) > 1}
    for i, (words, phrase) in enumerate(names):
        if labels[i] in shared and len(words) > 1:
            labels[i] = f"{words[0]}, {words[1]}, {phrase}"
    for label in {label for label in labels if labels.count(label) > 1}:
        holders = sorted(
            (i for i in range(n_segments) if labels[i] == label), key=lambda i: segment_ids[i]
        )
        for number, i in enumerate(holders, start=1):
            labels[i] = f"{label} #{number}"

    result = pd.DataFrame(
        {
            "segment_id": segment_ids,
            "segment_name": labels,
            "is_high_risk": high,
            "risk_basis": LOSS_RATE_BASIS if by_outcome else DELINQUENCY_BASIS,
        },
        index=centroids.index,
    )
    return pd.concat(
        [result, measures, pd.Series(rates, index=centroids.index, name="loss_rate")], axis=1
    )
