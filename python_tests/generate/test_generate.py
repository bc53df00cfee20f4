"""Tests for the synthetic loan-book generator.

Every consistency rule in the module docstring of ``loan_recovery.generate``
is checked on every row of a generated book; mixes and model signal are
checked against the targets the generator documents, not against numbers
taken from a run.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from loan_recovery import config
from loan_recovery.cli import main as cli_main
from loan_recovery.generate import book as book_module
from loan_recovery.generate import generate_loan_book, rules, write_loan_book

ROWS = 20_000
SEED = 7


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    """A book large enough for mixes to settle (standard error < 0.4 points)."""
    return generate_loan_book(ROWS, seed=SEED)


def share(mask: pd.Series) -> float:
    return float(mask.mean())


# --- determinism and shape ---


def test_same_seed_gives_same_book_and_another_seed_another() -> None:
    first = generate_loan_book(3_000, seed=11)
    pd.testing.assert_frame_equal(first, generate_loan_book(3_000, seed=11))
    other = generate_loan_book(3_000, seed=12)
    assert not first.drop(columns=["Borrower_ID", "Loan_ID"]).equals(
        other.drop(columns=["Borrower_ID", "Loan_ID"])
    )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_written_file_is_byte_identical_for_same_seed(tmp_path: Path, suffix: str) -> None:
    # Several chunks, so the per-chunk seeding is exercised too.
    paths = [
        write_loan_book(2_500, tmp_path / f"{name}{suffix}", seed, chunk_rows=1_000)
        for name, seed in [("a", 5), ("b", 5), ("c", 6)]
    ]
    contents = [path.read_bytes() for path in paths]
    assert contents[0] == contents[1]
    assert contents[0] != contents[2]


def test_columns_are_the_configured_columns_in_order(book: pd.DataFrame) -> None:
    assert list(book.columns) == config.loan_book_columns()
    assert len(book) == ROWS


def test_column_order_is_read_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    reordered = list(reversed(config.loan_book_columns()))
    monkeypatch.setattr(book_module, "loan_book_columns", lambda: reordered)
    assert list(generate_loan_book(10).columns) == reordered


def test_changed_category_list_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    values = config.category_values()
    values["loan_type"] = [*values["loan_type"], "Education"]
    monkeypatch.setattr(rules, "category_values", lambda: values)
    with pytest.raises(ValueError, match="loan_type"):
        generate_loan_book(10)


def test_ids_count_from_one_across_chunks() -> None:
    loans = generate_loan_book(2_500, seed=SEED, chunk_rows=1_000)
    numbers = range(1, 2_501)
    assert loans["Borrower_ID"].tolist() == [f"BRW_{i}" for i in numbers]
    assert loans["Loan_ID"].tolist() == [f"LN_{i}" for i in numbers]


def test_empty_book_keeps_the_columns(tmp_path: Path) -> None:
    assert list(generate_loan_book(0).columns) == config.loan_book_columns()
    out = write_loan_book(0, tmp_path / "empty.csv", seed=SEED)
    assert out.read_text().strip() == ",".join(config.loan_book_columns())


# --- categories and ranges ---


def test_categories_are_configured_values_each_well_represented(book: pd.DataFrame) -> None:
    configured = config.category_values()
    checked = 0
    for column in config.loan_book_columns():
        values = configured.get(config.snake_case(column))
        if values is None:
            continue
        checked += 1
        mix = book[column].value_counts(normalize=True)
        assert set(mix.index) <= set(values), column
        for value in values:
            # The rarest documented values are the old policy's settlement offers and legal
            # action (about 0.5 and 1.6 % of loans, rule 14).
            assert mix.get(value, 0.0) >= 0.003, (column, value)
    assert checked == len(configured)


@pytest.mark.parametrize(
    ("column", "target"),
    [
        ("Gender", {"Male": 0.62}),
        ("Employment_Type", {"Salaried": 0.58, "Self-Employed": 0.31, "Business Owner": 0.11}),
        ("Loan_Type", {"Personal": 0.44, "Home": 0.29, "Auto": 0.17, "Business": 0.10}),
        ("Payment_History", {"On-Time": 0.61, "Delayed": 0.28, "Missed": 0.11}),
        (
            "Recovery_Status",
            {"Fully Recovered": 0.59, "Partially Recovered": 0.31, "Written Off": 0.10},
        ),
    ],
)
def test_category_mix_matches_the_public_data(
    book: pd.DataFrame, column: str, target: dict[str, float]
) -> None:
    mix = book[column].value_counts(normalize=True)
    for value, expected in target.items():
        assert mix[value] == pytest.approx(expected, abs=0.03), (column, value)


def test_values_are_in_plausible_ranges(book: pd.DataFrame) -> None:
    assert book["Age"].between(21, 64).all()
    assert book["Age"].nunique() == 44
    assert book["Monthly_Income"].between(15_000, 250_000).all()
    assert book["Num_Dependents"].between(0, 4).all()
    assert book["Loan_Amount"].between(50_000, 2_000_000).all()
    assert set(book["Loan_Tenure"]) == {12, 24, 36, 48, 60, 72}
    assert book["Interest_Rate"].between(5, 18).all()
    assert (book["Interest_Rate"] == book["Interest_Rate"].round(2)).all()
    for column in ["Monthly_EMI", "Collateral_Value", "Outstanding_Loan_Amount"]:
        assert (book[column] == book[column].round(2)).all(), column
    for column in ["Num_Missed_Payments", "Days_Past_Due", "Collection_Attempts"]:
        assert (book[column] >= 0).all(), column


# --- consistency rules, on every row ---


def test_emi_is_the_amortisation_payment(book: pd.DataFrame) -> None:
    principal = book["Loan_Amount"].to_numpy()
    monthly = book["Interest_Rate"].to_numpy() / 1200
    months = book["Loan_Tenure"].to_numpy()
    growth = (1 + monthly) ** months
    expected = np.round(principal * monthly * growth / (growth - 1), 2)
    # One cent of slack: two float formulas may round a half-cent differently.
    assert np.abs(book["Monthly_EMI"].to_numpy() - expected).max() <= 0.0100001


def test_collateral_is_zero_exactly_for_personal_loans(book: pd.DataFrame) -> None:
    personal = book["Loan_Type"] == "Personal"
    assert (book.loc[personal, "Collateral_Value"] == 0).all()
    cover = book.loc[~personal, "Collateral_Value"] / book.loc[~personal, "Loan_Amount"]
    assert cover.between(0.6 - 1e-6, 1.6 + 1e-6).all()


def test_outstanding_is_positive_and_at_most_the_amount(book: pd.DataFrame) -> None:
    assert (book["Outstanding_Loan_Amount"] > 0).all()
    assert (book["Outstanding_Loan_Amount"] <= book["Loan_Amount"]).all()


def test_outstanding_is_balance_plus_arrears_and_missed_within_elapsed(
    book: pd.DataFrame,
) -> None:
    """Recover the months elapsed from the outstanding amount, then check missed <= elapsed.

    Outstanding = scheduled balance after k months + missed x EMI (capped at the
    amount), with 1 <= k < tenure. The balance falls by at least a principal
    instalment a month, so at most one k fits an uncapped row.
    """
    missed = book["Num_Missed_Payments"].to_numpy()
    tenure = book["Loan_Tenure"].to_numpy()
    assert (missed <= tenure - 1).all()

    uncapped = (book["Outstanding_Loan_Amount"] < book["Loan_Amount"]).to_numpy()
    assert uncapped.mean() > 0.9
    rows = book[uncapped]
    principal = rows["Loan_Amount"].to_numpy()[:, None]
    monthly = (rows["Interest_Rate"].to_numpy() / 1200)[:, None]
    months = rows["Loan_Tenure"].to_numpy()[:, None]
    emi = rows["Monthly_EMI"].to_numpy()[:, None]
    k = np.arange(1, 72)[None, :]
    exact_emi = principal * monthly / (1 - (1 + monthly) ** -months)
    balance = principal * (1 + monthly) ** k - exact_emi * ((1 + monthly) ** k - 1) / monthly
    candidate = balance + rows["Num_Missed_Payments"].to_numpy()[:, None] * emi
    fits = (np.abs(candidate - rows["Outstanding_Loan_Amount"].to_numpy()[:, None]) <= 0.011) & (
        k < months
    )
    assert (fits.sum(axis=1) == 1).all()
    elapsed = k[0][fits.argmax(axis=1)]
    assert (rows["Num_Missed_Payments"].to_numpy() <= elapsed).all()


def test_days_past_due_follow_missed_payments(book: pd.DataFrame) -> None:
    missed = book["Num_Missed_Payments"]
    days = book["Days_Past_Due"]
    assert ((days == 0) == (missed == 0)).all()
    late = missed > 0
    assert (days[late] <= 30 * missed[late]).all()
    assert (days[late] >= 30 * missed[late] - 29).all()


def test_payment_history_follows_missed_payments(book: pd.DataFrame) -> None:
    missed = book["Num_Missed_Payments"]
    history = book["Payment_History"]
    assert ((history == "On-Time") == (missed == 0)).all()
    # Documented rule: the other label on HISTORY_NOISE of delinquent loans.
    expected = 1 - rules.HISTORY_NOISE
    assert share(history[missed.between(1, 2)] == "Delayed") == pytest.approx(expected, abs=0.03)
    assert share(history[missed >= 3] == "Missed") == pytest.approx(expected, abs=0.03)


# --- structure: segments and risk differ ---


def test_heavy_burden_is_common_and_drives_delinquency(book: pd.DataFrame) -> None:
    burden = book["Monthly_EMI"] / book["Monthly_Income"]
    heavy = burden > rules.HEAVY_BURDEN
    assert 0.10 <= share(heavy) <= 0.30
    assert (burden < 1).all()
    delinquent = book["Num_Missed_Payments"] > 0
    assert share(delinquent[heavy]) > share(delinquent[burden < 0.2]) + 0.25


def test_self_employed_miss_more_than_salaried(book: pd.DataFrame) -> None:
    delinquent = book["Num_Missed_Payments"] > 0
    employment = book["Employment_Type"]
    assert share(delinquent[employment == "Self-Employed"]) > share(
        delinquent[employment == "Salaried"]
    )


def test_unsecured_and_delinquent_loans_recover_worse(book: pd.DataFrame) -> None:
    lost = book["Recovery_Status"] != "Fully Recovered"
    assert share(lost[book["Loan_Type"] == "Personal"]) > share(lost[book["Loan_Type"] == "Home"])
    missed = book["Num_Missed_Payments"]
    assert share(lost[missed >= 3]) > share(lost[missed == 0]) + 0.2


def test_pre_collection_features_predict_recovery_but_not_perfectly() -> None:
    sample = generate_loan_book(4_000, seed=SEED + 1).rename(columns=config.snake_case)
    features = sample[config.cluster_features()]
    not_recovered = sample["recovery_status"] != "Fully Recovered"
    forest = RandomForestClassifier(
        n_estimators=100, oob_score=True, random_state=0, n_jobs=-1
    ).fit(features, not_recovered)
    auc = roc_auc_score(not_recovered, forest.oob_decision_function_[:, 1])
    assert 0.6 <= auc <= 0.95


# Collection follows the action (rule 11): python_tests/test_simulated_lender.py.


# --- writers ---


@pytest.mark.parametrize(
    ("suffix", "reader"),
    [
        (".parquet", "read_parquet('{}')"),
        # DuckDB sniffs a Yes/No column as BOOLEAN; the loan book keeps the text.
        (".csv", "read_csv('{}', types = {{'Legal_Action_Taken': 'VARCHAR'}})"),
    ],
    ids=["parquet", "csv"],
)
def test_written_book_round_trips_through_duckdb(tmp_path: Path, suffix: str, reader: str) -> None:
    out = write_loan_book(2_500, tmp_path / f"book{suffix}", SEED, chunk_rows=1_000)
    read = duckdb.sql(f"select * from {reader.format(out)}").df()
    expected = generate_loan_book(2_500, SEED, chunk_rows=1_000)
    pd.testing.assert_frame_equal(read, expected, check_dtype=False)


def test_unknown_suffix_is_refused_naming_the_file(tmp_path: Path) -> None:
    out = tmp_path / "book.xlsx"
    with pytest.raises(ValueError, match=re.escape(str(out))):
        write_loan_book(10, out, SEED)
    assert list(tmp_path.iterdir()) == []


def test_cli_generate_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "book.parquet"
    assert cli_main(["generate", "--rows", "1234", "--out", str(out), "--seed", "3"]) == 0
    assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall() == [(1234,)]


# --- open loans, the truth file, the drifted population ---


def test_open_loans_have_no_outcome_and_keep_every_other_value(tmp_path: Path) -> None:
    closed = generate_loan_book(3_000, seed=SEED)
    opened = generate_loan_book(3_000, seed=SEED, open_share=0.3)
    is_open = opened["Recovery_Status"].isna()
    assert share(is_open) == pytest.approx(0.3, abs=0.03)
    blank = ["Recovery_Status", "Collection_Attempts", "Collection_Method", "Legal_Action_Taken"]
    assert opened.loc[is_open, blank].isna().all().all()
    assert opened.loc[~is_open, blank].notna().all().all()
    others = [column for column in closed.columns if column not in blank]
    pd.testing.assert_frame_equal(opened[others], closed[others])
    pd.testing.assert_frame_equal(
        opened.loc[~is_open, blank], closed.loc[~is_open, blank], check_dtype=False
    )


def test_truth_file_holds_every_loans_true_outcome(tmp_path: Path) -> None:
    out, truth = tmp_path / "book.csv", tmp_path / "truth.csv"
    write_loan_book(2_500, out, SEED, chunk_rows=1_000, open_share=0.4, truth_out=truth)
    written = pd.read_csv(truth)
    closed = generate_loan_book(2_500, seed=SEED, chunk_rows=1_000)
    assert list(written.columns[:2]) == ["loan_id", "recovery_status"]
    assert written["loan_id"].tolist() == closed["Loan_ID"].tolist()
    # An open loan's truth is its outcome under reminders (the old policy's usual action).
    reminded = closed["Collection_Method"].isin(["Calls", "Debt Collectors"])
    assert (written["recovery_status"] == closed["Recovery_Status"])[reminded].all()
    assert pd.read_csv(out)["Recovery_Status"].isna().sum() > 800


def test_drifted_population_earns_less_and_misses_more() -> None:
    base = generate_loan_book(20_000, seed=SEED)
    drifted = generate_loan_book(20_000, seed=SEED, population=rules.DRIFTED)
    assert drifted["Monthly_Income"].mean() == pytest.approx(
        0.7 * base["Monthly_Income"].mean(), rel=0.01
    )
    assert drifted["Days_Past_Due"].mean() > 1.3 * base["Days_Past_Due"].mean()
    lost = drifted["Recovery_Status"] != "Fully Recovered"
    assert share(lost) > share(base["Recovery_Status"] != "Fully Recovered") + 0.05


def test_cli_generate_writes_open_loans_and_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "b.parquet", tmp_path / "t.csv"
    argv = ["generate", "--rows", "500", "--out", str(out), "--open-share", "0.5"]
    assert cli_main([*argv, "--truth-out", str(truth)]) == 0
    assert duckdb.sql(
        f"select count(*) filter (where Recovery_Status is null) > 200 from read_parquet('{out}')"
    ).fetchall() == [(True,)]
    assert len(pd.read_csv(truth)) == 500
    assert cli_main([*argv[:-2], "--open-share", "1.5"]) == 2
