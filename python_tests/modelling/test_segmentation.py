"""Segmentation: ids and names follow the profiles, never KMeans' numbering or row order."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.cluster import KMeans

from loan_recovery.config import cluster_features, post_outcome_columns, run_setting_defaults
from loan_recovery.modelling import segmentation
from loan_recovery.modelling.model_input import LoanColumns
from loan_recovery.modelling.segment_names import (
    BURDEN_WEIGHT,
    TIER_THRESHOLD,
    high_risk_count,
    name_segments,
    profile_measures,
)
from loan_recovery.modelling.segmentation import segment_loans

FEATURES = cluster_features()
SETTINGS = run_setting_defaults()


def segment(loans, features, **overrides):
    """segment_loans with the project's default settings, overridden where a test says."""
    settings = {
        "post_outcome_columns": post_outcome_columns(),
        "n_segments": SETTINGS["n_segments"],
        "sample_rows": SETTINGS["segmentation_sample_rows"],
        "random_state": SETTINGS["random_state"],
        **overrides,
    }
    return segment_loans(loans, features, **settings)


def assign(loans, features, **overrides):
    """assign_segments with the project's default settings, overridden where a test says."""
    return segment(loans, features, **overrides).assignments().read_all().to_pandas()


# Plausible units: (mean, standard deviation) per feature.
UNITS = {
    "age": (40.0, 10.0),
    "monthly_income": (60_000.0, 20_000.0),
    "loan_amount": (300_000.0, 100_000.0),
    "loan_tenure": (36.0, 12.0),
    "interest_rate": (10.0, 2.0),
    "collateral_value": (200_000.0, 80_000.0),
    "outstanding_loan_amount": (150_000.0, 60_000.0),
    "monthly_emi": (5_000.0, 2_000.0),
    "num_missed_payments": (3.0, 2.0),
    "days_past_due": (40.0, 30.0),
}

# Four planted borrower groups, as z-offsets; the two last are the delinquent ones.
# Debt and income move together in "affluent", so burden does not drive the ranking.
PLANTED = {
    "affluent": {
        "monthly_income": 1.5,
        "loan_amount": 1.5,
        "outstanding_loan_amount": 1.5,
        "monthly_emi": 1.5,
        "num_missed_payments": -1.0,
        "days_past_due": -1.0,
    },
    "steady": {"age": 1.5, "loan_tenure": 1.5, "num_missed_payments": -0.5, "days_past_due": -0.5},
    "arrears": {"interest_rate": 1.5, "num_missed_payments": 1.5, "days_past_due": 1.5},
    "defaulting": {"collateral_value": -1.5, "num_missed_payments": 2.0, "days_past_due": 2.0},
}


def make_book(n: int, seed: int = 0, spread: float = 0.3) -> pd.DataFrame:
    """``n`` loans from the planted groups (equal shares), with a ``blob`` column for checks."""
    rng = np.random.default_rng(seed)
    groups = list(PLANTED)
    blob = rng.integers(0, len(groups), n)
    frame = {"loan_id": [f"L{i:06d}" for i in range(n)], "blob": np.array(groups)[blob]}
    for feature in FEATURES:
        offsets = np.array([PLANTED[g].get(feature, 0.0) for g in groups])
        z = offsets[blob] + rng.normal(0.0, spread, n)
        mean, sd = UNITS[feature]
        frame[feature] = mean + sd * z
    return pd.DataFrame(frame)


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    return make_book(2_000)


@pytest.fixture(scope="module")
def segmented(book: pd.DataFrame) -> segmentation.Segmentation:
    return segment(book, FEATURES)


def by_loan(assignments: pd.DataFrame) -> pd.DataFrame:
    return assignments.sort_values("loan_id").reset_index(drop=True)


def test_every_loan_gets_one_segment(book: pd.DataFrame, segmented) -> None:
    out = segmented.assignments().read_all().to_pandas()
    assert list(out.columns) == [
        "loan_id",
        "segment_id",
        "segment_name",
        "is_high_risk",
        "risk_basis",
        "segmentation_model_hash",
    ]
    assert set(out["segmentation_model_hash"]) == {segmented.model.version}
    assert len(out) == len(book)
    assert out["loan_id"].tolist() == book["loan_id"].tolist()
    assert out["segment_id"].dtype == np.int64
    assert out["is_high_risk"].dtype == bool
    assert pd.api.types.is_string_dtype(out["segment_name"])
    assert sorted(out["segment_id"].unique()) == [1, 2, 3, 4]
    pairs = out[["segment_id", "segment_name", "is_high_risk"]].drop_duplicates()
    assert len(pairs) == 4
    assert segmented.profile["size"].sum() == len(book)


def test_ids_and_names_survive_row_shuffle(book: pd.DataFrame, segmented) -> None:
    shuffled = book.sample(frac=1.0, random_state=7).reset_index(drop=True)
    again = assign(shuffled, FEATURES)
    pd.testing.assert_frame_equal(
        by_loan(again), by_loan(segmented.assignments().read_all().to_pandas())
    )


def test_sampled_fit_is_independent_of_row_order(book: pd.DataFrame) -> None:
    # DuckDB does not promise row order between builds: a book larger than the
    # fitting sample must still give every loan the same segment.
    sample_rows = len(book) // 3
    first = assign(book, FEATURES, sample_rows=sample_rows)
    shuffled = book.sample(frac=1.0, random_state=11).reset_index(drop=True)
    again = assign(shuffled, FEATURES, sample_rows=sample_rows)
    pd.testing.assert_frame_equal(by_loan(again), by_loan(first))


def test_ids_and_names_survive_permuted_kmeans_labels(
    book: pd.DataFrame, segmented, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    class PermutedKMeans(KMeans):
        def fit(self, X, y=None, sample_weight=None):  # noqa: N803 - sklearn's signature
            super().fit(X, y, sample_weight)
            permutation = np.array([2, 0, 3, 1])
            self.cluster_centers_ = self.cluster_centers_[permutation]
            self.labels_ = np.argsort(permutation)[self.labels_]
            calls.append(1)
            return self

    monkeypatch.setattr(segmentation, "KMeans", PermutedKMeans)
    again = assign(book, FEATURES)
    assert calls
    # Ids, names and flags are the same; the content hash follows the stored
    # centroid order, which the permutation changed.
    hash_column = "segmentation_model_hash"
    pd.testing.assert_frame_equal(
        again.drop(columns=hash_column),
        segmented.assignments().read_all().to_pandas().drop(columns=hash_column),
    )


def test_name_segments_ignores_cluster_labels_and_order() -> None:
    rng = np.random.default_rng(3)
    centroids = pd.DataFrame(rng.normal(0, 1, (5, len(FEATURES))), columns=FEATURES)
    named = name_segments(centroids)
    permutation = rng.permutation(5)
    relabelled = centroids.iloc[permutation].set_axis([f"c{i}" for i in (9, 4, 7, 1, 3)])
    renamed = name_segments(relabelled)
    columns = ["segment_id", "segment_name", "is_high_risk"]
    for label, original in zip(relabelled.index, permutation, strict=True):
        assert renamed.loc[label, columns].tolist() == named.loc[original, columns].tolist()


def test_high_risk_segments_are_the_planted_delinquent_ones(book: pd.DataFrame, segmented) -> None:
    out = segmented.assignments().read_all().to_pandas().assign(blob=book["blob"])
    blob_of = out.groupby("segment_id")["blob"].agg(lambda b: b.mode().iloc[0])
    purity = (out["blob"] == out["segment_id"].map(blob_of)).mean()
    assert purity > 0.99
    high = set(blob_of[out.groupby("segment_id")["is_high_risk"].first()])
    assert high == {"arrears", "defaulting"}
    assert blob_of[4] == "defaulting"
    assert blob_of[1] == "affluent"
    profile = segmented.profile.set_index("segment_id")
    assert profile["delinquency"][[3, 4]].min() > profile["delinquency"][[1, 2]].max()


def _centroid(**z: float) -> dict[str, float]:
    return {feature: z.get(feature, 0.0) for feature in FEATURES}


VOCABULARY_CENTROIDS = pd.DataFrame(
    [
        _centroid(
            monthly_income=-0.2,
            loan_amount=1.2,
            outstanding_loan_amount=1.0,
            monthly_emi=0.8,
            num_missed_payments=1.5,
            days_past_due=1.5,
        ),
        _centroid(
            monthly_income=1.0, loan_amount=-0.1, num_missed_payments=-0.8, days_past_due=-0.8
        ),
        _centroid(
            loan_amount=0.2,
            outstanding_loan_amount=0.9,
            monthly_emi=1.0,
            num_missed_payments=0.3,
            days_past_due=0.3,
        ),
        _centroid(
            monthly_income=0.1,
            loan_amount=0.1,
            outstanding_loan_amount=0.1,
            monthly_emi=0.1,
            num_missed_payments=-0.1,
            days_past_due=-0.1,
        ),
    ]
)


def test_notebook_vocabulary_by_delinquency_without_outcomes() -> None:
    named = name_segments(VOCABULARY_CENTROIDS).sort_values("segment_id")
    assert named["segment_name"].tolist() == [
        "High Income, Low Default Risk",
        "Moderate Income, Medium Risk",
        "High Loan Burden, Higher Default Risk",
        "High Loan, Higher Default Risk",
    ]
    assert named["is_high_risk"].tolist() == [False, False, True, True]
    assert set(named["risk_basis"]) == {"delinquency"}


def test_outcomes_decide_the_risk_words_where_they_differ_from_arrears() -> None:
    # The most delinquent profile (row 0) recovered best, and the quiet one
    # (row 3) lost most: the names follow what happened, not the arrears.
    loss_rates = [0.10, 0.30, 0.45, 0.70]
    named = name_segments(VOCABULARY_CENTROIDS, loss_rates, book_loss_rate=0.40)
    by_row = named.sort_index()
    assert by_row["segment_id"].tolist() == [1, 2, 3, 4]
    assert by_row["is_high_risk"].tolist() == [False, False, True, True]
    assert by_row["segment_name"].tolist() == [
        "High Loan, Low Default Risk",
        "High Income, Medium Risk",
        "High Loan Burden, Higher Default Risk",
        "Moderate Income, Higher Default Risk",
    ]
    assert set(named["risk_basis"]) == {"observed loss rate"}


MEASURE_OF_WORD = {"Income": "income", "Loan": "loan", "Loan Burden": "burden_level"}


def check_claims(named: pd.DataFrame, book_loss_rate: float | None = None) -> None:
    """Every word of every name is backed by the segment's profile or its loss rate."""
    k = len(named)
    assert sorted(named["segment_id"]) == list(range(1, k + 1))
    assert named["segment_name"].is_unique
    ranked = named.sort_values("segment_id")
    by_outcome = book_loss_rate is not None
    if by_outcome:
        assert ranked["loss_rate"].is_monotonic_increasing
        expected_high = (ranked["loss_rate"] > book_loss_rate).tolist()
        if any(expected_high):
            assert ranked["is_high_risk"].tolist() == expected_high
    else:
        assert named["is_high_risk"].sum() == high_risk_count(k)
        assert ranked["delinquency"].is_monotonic_increasing
        assert ranked["is_high_risk"].tolist() == [i > k - k // 2 for i in range(1, k + 1)]
    for row in named.itertuples():
        parts = re.sub(r" #\d+$", "", row.segment_name).split(", ")
        phrase, descriptors = parts[-1], parts[:-1]
        assert 1 <= len(descriptors) <= 2
        levels = {
            "income": row.income,
            "loan": row.loan,
            "burden_level": BURDEN_WEIGHT * row.burden,
        }
        for descriptor in descriptors:
            tier, word = descriptor.split(" ", 1)
            value = levels[MEASURE_OF_WORD[word]]
            if tier == "High":
                assert value > TIER_THRESHOLD, row
            elif tier == "Low":
                assert value < -TIER_THRESHOLD, row
            else:
                assert tier == "Moderate" and abs(value) <= TIER_THRESHOLD, row
        if phrase == "Low Default Risk":
            assert not row.is_high_risk and row.segment_id == 1, row
            if by_outcome:
                assert row.loss_rate < book_loss_rate, row
            else:
                assert row.delinquency < 0, row
        elif phrase == "Higher Default Risk":
            assert row.is_high_risk, row
            if not by_outcome:
                assert row.delinquency > 0, row
        elif phrase == "Elevated Risk":
            assert row.is_high_risk and not by_outcome, row
        else:
            assert phrase == "Medium Risk" and not row.is_high_risk, row


def test_names_agree_with_profiles_for_any_k() -> None:
    rng = np.random.default_rng(11)
    for k in range(2, 9):
        for _ in range(25):
            scale = rng.choice([0.1, 0.5, 1.5])
            centroids = pd.DataFrame(rng.normal(0, scale, (k, len(FEATURES))), columns=FEATURES)
            check_claims(name_segments(centroids))
            sizes = rng.integers(50, 500, size=k)
            rates = rng.uniform(0.05, 0.9, size=k)
            book = float((rates * sizes).sum() / sizes.sum())
            check_claims(name_segments(centroids, rates, book), book_loss_rate=book)


def test_identical_profiles_still_get_unique_names() -> None:
    centroids = pd.DataFrame(np.zeros((3, len(FEATURES))), columns=FEATURES)
    named = name_segments(centroids)
    assert named["segment_name"].is_unique
    check_claims(named)


def test_planted_book_names_agree_with_profiles(segmented) -> None:
    check_claims(segmented.profile)
    income = segmented.profile.set_index("segment_name")["income"]
    for name, value in income.items():
        if "High Income" in name:
            assert value > 0


def test_segmentation_uses_outcomes_when_every_segment_has_enough(book: pd.DataFrame) -> None:
    # The planted "affluent" blob has no arrears but, here, the worst outcomes.
    lost = book["blob"].eq("affluent").to_numpy()
    with_outcomes = book.assign(is_resolved=True, is_not_fully_recovered=lost)
    profile = segment(with_outcomes, FEATURES).profile
    assert set(profile["risk_basis"]) == {"observed loss rate"}
    worst = profile.sort_values("segment_id").iloc[-1]
    assert worst["loss_rate"] == pytest.approx(1.0) and worst["is_high_risk"]
    assert "Higher Default Risk" in worst["segment_name"]
    check_claims(profile.assign(), book_loss_rate=float(lost.mean()))
    # With too few resolved loans per segment, the delinquency profile decides.
    few = with_outcomes.assign(is_resolved=np.arange(len(book)) < 40)
    assert set(segment(few, FEATURES).profile["risk_basis"]) == {"delinquency"}


def test_measures_follow_their_definitions() -> None:
    centroids = pd.DataFrame([dict.fromkeys(FEATURES, 0.0)])
    centroids.loc[0, ["loan_amount", "outstanding_loan_amount", "monthly_emi"]] = [0.3, 0.6, 0.9]
    centroids.loc[0, ["monthly_income", "num_missed_payments", "days_past_due"]] = [0.2, 1.0, 2.0]
    measures = profile_measures(centroids).iloc[0]
    assert measures["burden"] == pytest.approx(0.6 - 0.2)
    assert measures["delinquency"] == pytest.approx(1.5)


def test_fitting_on_a_sample_still_assigns_every_loan() -> None:
    book = make_book(3_000, seed=5)
    first = segment(book, FEATURES, sample_rows=500)
    second = first.assignments().read_all().to_pandas()
    assert len(second) == len(book)
    assert second["segment_id"].notna().all()
    assert first.profile["size"].sum() == len(book)
    full = assign(book, FEATURES)
    assert (full["segment_id"] == second["segment_id"]).mean() > 0.99


def test_arrow_input_matches_pandas(book: pd.DataFrame, segmented) -> None:
    table = pa.Table.from_pandas(book, preserve_index=False)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=77))
    out = assign(chunked, FEATURES)
    pd.testing.assert_frame_equal(
        out.astype({"loan_id": str}),
        segmented.assignments().read_all().to_pandas().astype({"loan_id": str}),
    )
    sampled = assign(chunked, FEATURES, sample_rows=500)
    pd.testing.assert_frame_equal(
        sampled.astype({"loan_id": str}),
        assign(book, FEATURES, sample_rows=500).astype({"loan_id": str}),
    )


def test_chunked_columns_read_like_one_array() -> None:
    rng = np.random.default_rng(2)
    whole = rng.normal(size=(1_000, 3))
    cuts = [0, 1, 250, 251, 600, 999, 1_000]
    columns = LoanColumns(
        loan_id=pd.Series(np.arange(1_000)),
        features=("a", "b", "c"),
        chunks=tuple(tuple(whole[lo:hi, j] for lo, hi in pairwise(cuts)) for j in range(3)),
    )
    for _ in range(50):
        start, stop = sorted(rng.integers(0, 1_001, 2))
        assert np.array_equal(columns.block(start, stop, np.float64), whole[start:stop])


def test_other_columns_are_ignored(book: pd.DataFrame, segmented) -> None:
    extra = book.assign(recovery_status="Written Off", notes="x")
    pd.testing.assert_frame_equal(
        assign(extra, FEATURES), segmented.assignments().read_all().to_pandas()
    )


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _with_holes(book: pd.DataFrame) -> pd.DataFrame:
    holes = book.copy()
    holes.loc[[3, 5, 8], "monthly_income"] = np.nan
    return holes


def _clones(book: pd.DataFrame) -> pd.DataFrame:
    clones = pd.concat([book.iloc[[0]]] * 6, ignore_index=True)
    clones["loan_id"] = [f"C{i}" for i in range(6)]
    return clones


# (a call of assign_segments on a spoiled book, the words of its one-line error)
BAD_INPUTS = [
    pytest.param(
        lambda book: assign(book.iloc[:0], FEATURES),
        "no loans to segment: the input has 0 rows",
        id="empty (pandas)",
    ),
    pytest.param(
        lambda book: assign(_arrow(book.iloc[:0]), FEATURES),
        "no loans to segment: the input has 0 rows",
        id="empty (arrow)",
    ),
    pytest.param(
        lambda book: assign(book.iloc[:3], FEATURES),
        "cannot form 4 segments from 3 loan",
        id="too few loans for k",
    ),
    pytest.param(
        lambda book: assign(book, FEATURES, n_segments=1),
        "n_segments must be at least 2",
        id="k below two",
    ),
    pytest.param(
        lambda book: assign(book.assign(collection_attempts=1), [*FEATURES, "collection_attempts"]),
        r"collection_attempts.*recorded after the recovery",
        id="post-outcome feature",
    ),
    pytest.param(
        lambda book: assign(book.drop(columns=["days_past_due", "monthly_emi"]), FEATURES),
        r"missing column\(s\) monthly_emi, days_past_due",
        id="missing columns",
    ),
    pytest.param(
        lambda book: assign(_with_holes(book), FEATURES),
        "'monthly_income' has 3 null",
        id="nulls (pandas)",
    ),
    pytest.param(
        lambda book: assign(_arrow(_with_holes(book)), FEATURES),
        "'monthly_income' has 3 null",
        id="nulls (arrow)",
    ),
    pytest.param(
        lambda book: assign(book.assign(age="forty"), FEATURES),
        "'age' must be numeric",
        id="text feature",
    ),
    pytest.param(
        lambda book: assign(book, [f for f in FEATURES if f != "days_past_due"]),
        "segment naming needs the features days_past_due",
        id="naming without its features",
    ),
    pytest.param(
        lambda book: assign(_clones(book), FEATURES),
        "too few distinct loans for n_segments=4",
        id="too few distinct loans for k",
        marks=pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    ),
]


@pytest.mark.parametrize(("call", "words"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(
    book: pd.DataFrame, call: Callable[[pd.DataFrame], object], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        call(book)


def test_parameters_must_be_integers(book: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="n_segments must be an integer"):
        assign(book, FEATURES, n_segments="4")
    with pytest.raises(TypeError, match="features must be a list"):
        assign(book, "age")
