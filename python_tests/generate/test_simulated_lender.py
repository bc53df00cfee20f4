"""Tests for the simulated lender: true action effects, collection that follows the action,
the truth file, next month's book from the served decision log, and hostile inputs.

The rules are documented in ``loan_recovery.generate.rules`` (10, 11, 13-15)
and ``loan_recovery.generate.lender``; the money assumptions in
``loan_recovery.generate.economics``. Checks compare with documented targets
or with independent statistics (realised rates against probabilities), never
with a copy of the generating code.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from loan_recovery.cli import main as cli_main
from loan_recovery.config import project_dir
from loan_recovery.generate import book as book_module
from loan_recovery.generate import economics, lender
from loan_recovery.generate.book import MAX_ROWS, TRUTH_COLUMNS, generate_truth
from loan_recovery.generate.book import generate_loan_book as generate
from loan_recovery.generate.book import write_loan_book as write_book
from loan_recovery.generate.next_month import write_next_month
from loan_recovery.generate.rules import draw_loans

SEED = 11
ACTIONS = ("reminders", "settlement", "legal")
P_COLUMNS = [f"p_full_recovery_{action}" for action in ACTIONS]
LOAN_TOOL = str(Path(sys.executable).with_name("loan-recovery"))


def facts_and_ids(n: int, seed: int = 3) -> tuple[dict[str, np.ndarray], pa.Array]:
    facts = draw_loans(np.random.default_rng(seed), n)
    return facts, pa.array([f"LN_{i}" for i in range(1, n + 1)])


def burden_of(frame: pd.DataFrame) -> pd.Series:
    return frame["Monthly_EMI"] / frame["Monthly_Income"]


def cover_of(frame: pd.DataFrame) -> pd.Series:
    return frame["Collateral_Value"] / frame["Outstanding_Loan_Amount"]


def read_book(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def one_line_refusal(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 30,000-loan book, 30 % open, with its truth file (as the command line writes them)."""
    folder = tmp_path_factory.mktemp("fresh")
    out, truth = folder / "book.csv", folder / "truth.csv"
    write_book(30_000, out, SEED, open_share=0.3, truth_out=truth)
    return read_book(out), pd.read_csv(truth)


# --- rule 13: the true effects, and outcomes that follow them ---


@pytest.mark.parametrize("action", range(3))
def test_outcomes_follow_the_probability_of_the_action_taken(action: int) -> None:
    """200,000 loans collected under one action: the realised full-recovery rate is the mean
    true probability of that action, within 4 standard errors (about +-0.4 points), over all
    loans and over those the action helps and those it harms (legal does both)."""
    facts, ids = facts_and_ids(200_000)
    actions = np.full(len(ids), action, dtype=np.int8)
    collected = lender.collect(facts, ids, actions, SEED, lender.DEFAULT_EFFECTS)
    p = lender.full_recovery_probabilities(facts, lender.DEFAULT_EFFECTS)
    recovered = collected["recovery_status"] == 0  # code 0: Fully Recovered
    effect = p[:, action] - p[:, 0]
    groups = {"all": np.ones(len(p), bool), "helped": effect > 0.05, "harmed": effect < -0.05}
    checked = 0
    for name, members in groups.items():
        if members.sum() < 1_000:
            continue
        chance = p[members, action]
        error = math.sqrt((chance * (1 - chance)).sum()) / len(chance)
        realised = recovered[members].mean()
        assert abs(realised - chance.mean()) < 4 * error, (ACTIONS[action], name, realised)
        checked += 1
    assert checked == (1, 2, 3)[action]


def test_the_actions_truly_differ_on_average() -> None:
    """The test above could pass with the action ignored if the effects were nil: they are not."""
    facts, _ = facts_and_ids(50_000)
    p = lender.full_recovery_probabilities(facts, lender.DEFAULT_EFFECTS)
    mean = p.mean(axis=0)
    assert mean[1] > mean[0] + 0.10  # settlement, on average, resolves more loans
    assert abs(mean[2] - mean[0]) > 0.0 and p[:, 2].std() > 0.1  # legal: it depends


def test_a_loan_draws_the_same_noise_under_every_action() -> None:
    """Common random numbers: a loan that recovers under reminders recovers under any action
    that lowers its latent, and one lost under reminders is lost under any that raises it."""
    facts, ids = facts_and_ids(50_000)
    shifts = lender.DEFAULT_EFFECTS.latent_shifts(facts)
    status = {
        a: lender.collect(facts, ids, np.full(len(ids), i, np.int8), SEED, lender.DEFAULT_EFFECTS)[
            "recovery_status"
        ]
        for i, a in enumerate(ACTIONS)
    }
    for action in ("settlement", "legal"):
        helps = shifts[action] <= 0
        assert (status[action][helps] <= status["reminders"][helps]).all()
        assert (status[action][~helps] >= status["reminders"][~helps]).all()
        assert (status[action] != status["reminders"]).mean() > 0.05


def test_settlement_helps_stretched_borrowers_more(fresh) -> None:
    loans, truth = fresh
    gain = truth["p_full_recovery_settlement"] - truth["p_full_recovery_reminders"]
    burden = burden_of(loans)
    stretched, comfortable = gain[burden > 0.45].mean(), gain[burden < 0.15].mean()
    assert stretched > comfortable + 0.3, (stretched, comfortable)
    assert abs(comfortable) < 0.02  # an offer to someone who can pay changes nothing


def test_legal_action_helps_where_collateral_covers_the_balance(fresh) -> None:
    loans, truth = fresh
    gain = truth["p_full_recovery_legal"] - truth["p_full_recovery_reminders"]
    deep = loans["Days_Past_Due"] >= 90
    secured, unsecured = gain[deep & (cover_of(loans) >= 1)], gain[deep & (cover_of(loans) == 0)]
    assert secured.mean() > 0.4, secured.mean()
    assert (unsecured < 0).all()  # no security: costs and a damaged relationship
    barely = loans["Days_Past_Due"].between(1, 15) & (cover_of(loans) >= 1)
    assert gain[barely].mean() < secured.mean() - 0.3


def test_the_alternative_truth_is_built_differently() -> None:
    """Issue 28's second truth: steps on employment and loan type, not ramps on burden and cover."""
    facts, _ = facts_and_ids(50_000)
    default = lender.full_recovery_probabilities(facts, lender.DEFAULT_EFFECTS)
    other = lender.full_recovery_probabilities(facts, lender.ALTERNATIVE_EFFECTS)
    gains = [p[:, 1] - p[:, 0] for p in (default, other)]
    assert np.corrcoef(*gains)[0, 1] < 0.6
    salaried = facts["employment_type"] == 0
    assert (gains[1][salaried] <= 0).all() and gains[1][~salaried].mean() > 0.1
    home = facts["loan_type"] == 1
    deep = facts["num_missed_payments"] >= 3
    legal_gain = other[:, 2] - other[:, 0]
    assert legal_gain[home & deep].mean() > legal_gain[~home & deep].mean()


def test_a_book_can_be_drawn_from_the_alternative_truth(tmp_path: Path) -> None:
    out, truth_path = tmp_path / "b.parquet", tmp_path / "t.parquet"
    write_book(
        20_000, out, SEED, open_share=0.0, truth_out=truth_path, effects=lender.ALTERNATIVE_EFFECTS
    )
    truth = pd.read_parquet(truth_path)
    default = generate_truth(20_000, SEED)
    assert not np.allclose(
        truth["p_full_recovery_settlement"], default["p_full_recovery_settlement"]
    )
    pd.testing.assert_series_equal(
        truth["p_full_recovery_reminders"], default["p_full_recovery_reminders"]
    )


# --- money: the oracle is worth about 8 % ---


def test_expected_net_value_by_hand() -> None:
    """100,000 outstanding, P(full) 0.5 under each action: 67,000 / 47,500 / 27,500."""
    values = economics.expected_net_values(np.array([100_000.0]), np.array([[0.5, 0.5, 0.5]]))
    # reminders: 100k (0.5 + 0.5 x 0.35) - 500; settlement: 100k (0.5 x 0.7 + 0.175) - 5,000;
    # legal: 100k x 0.675 - 40,000
    np.testing.assert_allclose(values[0], [67_000.0, 47_500.0, 27_500.0])


def test_the_best_action_per_open_loan_is_worth_about_eight_percent(fresh) -> None:
    loans, truth = fresh
    open_loans = loans["Recovery_Status"].isna().to_numpy()
    p = truth[P_COLUMNS].to_numpy()[open_loans]
    outstanding = loans["Outstanding_Loan_Amount"].to_numpy()[open_loans]
    days = loans["Days_Past_Due"].to_numpy()[open_loans]
    best = economics.best_actions(outstanding, p, days)
    values = economics.expected_net_values(outstanding, p)
    gain = values[np.arange(len(best)), best].sum() / values[:, 0].sum() - 1
    assert 0.06 <= gain <= 0.10, gain
    assert not (best[days < economics.LEGAL_MIN_DAYS_PAST_DUE] == 2).any()
    assert set(np.unique(best)) == {0, 1, 2}


# --- rule 11: collection follows the action; rule 14: the old policy ---


def test_collection_columns_follow_the_action_not_the_outcome(fresh) -> None:
    loans, truth = fresh
    resolved = loans["Recovery_Status"].notna()
    assert (truth["collection_strategy_code"].notna() == resolved).all()
    action = truth["collection_strategy_code"][resolved]
    closed = loans[resolved]
    assert ((closed["Legal_Action_Taken"] == "Yes") == (action == "legal")).all()
    assert ((closed["Collection_Method"] == "Legal Notice") == (action == "legal")).all()
    assert ((closed["Collection_Method"] == "Settlement Offer") == (action == "settlement")).all()
    reminded = closed["Collection_Method"].isin(["Calls", "Debt Collectors"])
    assert (reminded == (action == "reminders")).all()
    # Within an action, effort does not depend on how it ended.
    recovered = closed["Recovery_Status"] == "Fully Recovered"
    for name in ACTIONS:
        attempts = closed["Collection_Attempts"][action == name]
        low, high = lender.ATTEMPTS_RANGE[name]
        assert attempts.between(low, high).all()
        groups = attempts.groupby(recovered[action == name]).agg(["mean", "var", "count"])
        difference = groups.loc[True, "mean"] - groups.loc[False, "mean"]
        error = math.sqrt((groups["var"] / groups["count"]).sum())
        assert abs(difference) < 4 * error, (name, groups)
    # Reminders are worked by calls or, once in arrears, by collectors: never by the outcome.
    calls = closed["Collection_Method"] == "Calls"
    current = closed["Num_Missed_Payments"] < lender.AGENCY_MISSED
    assert (calls[action == "reminders"] == current[action == "reminders"]).all()


def test_resolved_loans_were_collected_by_a_rule_not_at_random(fresh) -> None:
    """The confounding issue 28 must avoid: the old policy's action is fixed by the facts."""
    loans, truth = fresh
    resolved = loans["Recovery_Status"].notna()
    action = truth["collection_strategy_code"][resolved]
    deep = loans["Days_Past_Due"][resolved] >= lender.LEGACY_LEGAL_DAYS
    assert (action[deep] == "legal").all() and (action[~deep] != "legal").all()
    settled = action == "settlement"
    assert (burden_of(loans[resolved])[settled] >= lender.LEGACY_SETTLEMENT_BURDEN).all()
    assert 0.002 < settled.mean() < 0.05 and 0.005 < (action == "legal").mean() < 0.05


def test_realised_outcomes_of_resolved_loans_follow_their_actions(fresh) -> None:
    _, truth = fresh
    for name in ACTIONS:
        taken = truth["collection_strategy_code"] == name
        p = truth.loc[taken, f"p_full_recovery_{name}"]
        realised = (truth.loc[taken, "recovery_status"] == "Fully Recovered").mean()
        error = math.sqrt((p * (1 - p)).sum()) / len(p)
        assert abs(realised - p.mean()) < 4 * error, (name, realised, p.mean())


# --- the truth file ---


def test_truth_file_has_the_documented_columns_and_every_loan(fresh) -> None:
    loans, truth = fresh
    assert (
        list(truth.columns)
        == list(TRUTH_COLUMNS)
        == [
            "loan_id",
            "recovery_status",
            *P_COLUMNS,
            "collection_strategy_code",
        ]
    )
    assert truth["loan_id"].tolist() == loans["Loan_ID"].tolist()
    assert truth[P_COLUMNS].gt(0).all().all() and truth[P_COLUMNS].lt(1).all().all()
    resolved = loans["Recovery_Status"].notna()
    assert (truth["recovery_status"][resolved] == loans["Recovery_Status"][resolved]).all()
    assert truth["recovery_status"].notna().all()


def test_an_open_loan_truth_is_its_outcome_under_reminders() -> None:
    """An open loan's truth is what reminders would give; a loan the old policy left to
    reminders therefore has the same outcome open or resolved, whatever the open share."""
    closed = generate(6_000, SEED)
    closed_truth = generate_truth(6_000, SEED)
    opened = generate(6_000, SEED, open_share=0.5)
    opened_truth = generate_truth(6_000, SEED, open_share=0.5)
    is_open = opened["Recovery_Status"].isna()
    reminded = closed_truth["collection_strategy_code"] == "reminders"
    same = opened_truth["recovery_status"] == closed["Recovery_Status"]
    assert same[~is_open | reminded].all()
    assert not same[is_open & ~reminded].all()  # the old policy changed some outcomes
    pd.testing.assert_frame_equal(opened_truth[P_COLUMNS], closed_truth[P_COLUMNS])


def test_the_truth_file_still_grades_a_build(tmp_path: Path, fresh) -> None:
    """benchmarks/grade_open_loans.py reads loan_id and recovery_status from it."""
    sys.path.insert(0, str(project_dir() / "benchmarks"))
    try:
        import grade_open_loans
    finally:
        sys.path.pop(0)
    loans, truth = fresh
    truth_path = tmp_path / "truth.csv"
    truth.to_csv(truth_path, index=False)
    database = tmp_path / "fake.duckdb"
    with duckdb.connect(str(database)) as connection:
        frame = pd.DataFrame(
            {
                "loan_id": loans["Loan_ID"],
                "loss_probability": 1 - truth["p_full_recovery_reminders"],
                "segment_risk_score": 0.5,
                "days_past_due": loans["Days_Past_Due"],
                "strategy_code": "reminders",
                "score_source": "outcome",
                "is_resolved": loans["Recovery_Status"].notna(),
            }
        )
        connection.register("frame", frame)
        connection.execute("create table main.recovery_strategies as select * from frame")
        catalog = project_dir() / "seeds" / "recovery_strategy_catalog.csv"
        connection.execute(
            "create table main.recovery_strategy_catalog as select * from read_csv(?)",
            [str(catalog)],
        )
    graded = grade_open_loans.grade(database, truth_path)
    assert graded["open_loans"] == int(loans["Recovery_Status"].isna().sum())
    assert graded["auc_outcome"][0] > 0.75  # the true probabilities rank the truth well


# --- determinism ---


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_book_and_truth_are_byte_identical_for_the_same_seed(tmp_path: Path, suffix: str) -> None:
    written = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out, truth = tmp_path / f"{name}{suffix}", tmp_path / f"{name}_truth{suffix}"
        write_book(2_500, out, seed, chunk_rows=1_000, open_share=0.3, truth_out=truth)
        written.append((out.read_bytes(), truth.read_bytes()))
    assert written[0] == written[1]
    assert written[0][0] != written[2][0] and written[0][1] != written[2][1]


# --- next month's book ---


def make_log(
    path: Path, rows: list[tuple[str, str | None, str]], *, table_sql: str | None = None
) -> Path:
    """A served file with main.decision_log rows (as_of_date, loan_id, assigned_strategy_code)."""
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            table_sql
            or "create table main.decision_log (as_of_date date, build_id varchar, "
            "loan_id varchar, cell varchar, assigned_strategy_code varchar)"
        )
        if rows:
            frame = pd.DataFrame(rows, columns=["as_of_date", "loan_id", "action"])
            connection.register("logged", frame)
            connection.execute(
                "insert into main.decision_log (as_of_date, build_id, loan_id, cell, "
                "assigned_strategy_code) "
                "select as_of_date::date, 'b', loan_id, 'explore', action from logged"
            )
    return path


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Month 1 (30,000 loans, 30 % open) and month 2 from a two-cycle log; 100 loans unlogged."""
    folder = tmp_path_factory.mktemp("month")
    first, first_truth = folder / "m1.csv", folder / "t1.csv"
    write_book(30_000, first, SEED, open_share=0.3, truth_out=first_truth)
    loans = read_book(first)
    open_ids = loans.loc[loans["Recovery_Status"].isna(), "Loan_ID"].tolist()
    rng = np.random.default_rng(0)
    assigned = {loan: ACTIONS[rng.integers(3)] for loan in open_ids[100:]}  # 100 unlogged
    older = [("2026-01-31", loan, "legal") for loan in open_ids]  # an older cycle: ignored
    newest = [("2026-02-28", loan, action) for loan, action in assigned.items()]
    resolved_id = loans.loc[loans["Recovery_Status"].notna(), "Loan_ID"].iloc[0]
    newest.append(("2026-02-28", resolved_id, "legal"))  # logged, but not open: not applied
    log = make_log(folder / "served.duckdb", older + newest)
    second, second_truth = folder / "m2.csv", folder / "t2.csv"
    summary = write_next_month(first, log, second, second_truth, seed=SEED, new_rows=5_000)
    return {
        "first": loans,
        "first_truth": pd.read_csv(first_truth),
        "assigned": assigned,
        "second": read_book(second),
        "second_truth": pd.read_csv(second_truth),
        "summary": summary,
        "paths": (first, log, second, second_truth),
    }


def test_next_month_keeps_history_and_resolves_exactly_the_open_loans(month) -> None:
    first, second = month["first"], month["second"]
    before = second.iloc[: len(first)].reset_index(drop=True)
    was_open = first["Recovery_Status"].isna()
    pd.testing.assert_frame_equal(before[~was_open], first[~was_open])
    pre_collection = [c for c in first.columns if not c.startswith(("Recovery", "Collection"))]
    pre_collection.remove("Legal_Action_Taken")
    pd.testing.assert_frame_equal(before[pre_collection], first[pre_collection])
    assert before["Recovery_Status"].notna().all()
    assert before.loc[was_open, ["Collection_Attempts", "Collection_Method"]].notna().all().all()
    summary = month["summary"]
    assert summary.kept_resolved == int((~was_open).sum())
    assert sum(summary.resolved_now.values()) == int(was_open.sum())
    assert summary.unlogged == 100 and summary.logged_not_open == 1


def test_next_month_resolves_each_loan_under_its_newest_logged_action(month) -> None:
    first, second, truth = month["first"], month["second"], month["second_truth"]
    was_open = first["Recovery_Status"].isna().to_numpy()
    resolved_now = second.iloc[: len(first)][was_open]
    taken = truth.iloc[: len(first)][was_open].set_index("loan_id")["collection_strategy_code"]
    expected = pd.Series({loan: month["assigned"].get(loan, "reminders") for loan in taken.index})
    assert (taken == expected).all()
    legal = (resolved_now["Legal_Action_Taken"] == "Yes").to_numpy()
    assert (legal == (taken == "legal").to_numpy()).all()
    # The resolved-not-open loan that was logged legal is untouched.
    resolved_id = first.loc[~was_open, "Loan_ID"].iloc[0]
    row = second.set_index("Loan_ID").loc[resolved_id]
    assert (
        row["Collection_Method"] == first.set_index("Loan_ID").loc[resolved_id, "Collection_Method"]
    )


def test_next_month_outcomes_follow_the_logged_actions_probabilities(month) -> None:
    first, truth = month["first"], month["second_truth"]
    was_open = first["Recovery_Status"].isna().to_numpy()
    rows = truth.iloc[: len(first)][was_open]
    for name in ACTIONS:
        taken = rows[rows["collection_strategy_code"] == name]
        p = taken[f"p_full_recovery_{name}"]
        realised = (taken["recovery_status"] == "Fully Recovered").mean()
        error = math.sqrt((p * (1 - p)).sum()) / len(p)
        assert abs(realised - p.mean()) < 4 * error, (name, realised, p.mean())
    # With the book's seed, a loan left to reminders gets the outcome its truth file gave.
    first_truth = month["first_truth"].iloc[was_open.nonzero()[0]]
    reminded = (rows["collection_strategy_code"] == "reminders").to_numpy()
    assert (
        rows["recovery_status"].to_numpy()[reminded]
        == first_truth["recovery_status"].to_numpy()[reminded]
    ).all()
    # Probabilities are recomputed from the written columns: they equal month 1's.
    np.testing.assert_array_equal(
        truth.iloc[: len(first)][P_COLUMNS].to_numpy(), month["first_truth"][P_COLUMNS].to_numpy()
    )


def test_next_month_adds_new_open_loans_continuing_the_numbering(month) -> None:
    first, second, truth = month["first"], month["second"], month["second_truth"]
    new = second.iloc[len(first) :]
    assert len(new) == 5_000
    assert new["Loan_ID"].tolist() == [f"LN_{i}" for i in range(30_001, 35_001)]
    assert new["Borrower_ID"].tolist() == [f"BRW_{i}" for i in range(30_001, 35_001)]
    assert new["Recovery_Status"].isna().all()
    assert truth["loan_id"].tolist() == second["Loan_ID"].tolist()
    assert truth["collection_strategy_code"].iloc[len(first) :].isna().all()
    # New loans are new: not copies of month 1's first loans.
    assert not np.isclose(new["Monthly_Income"].to_numpy()[:50], first["Monthly_Income"][:50]).all()


def test_next_month_is_byte_identical_for_the_same_inputs(month, tmp_path: Path) -> None:
    first, log, second, second_truth = month["paths"]
    again, again_truth = tmp_path / "again.csv", tmp_path / "again_truth.csv"
    write_next_month(first, log, again, again_truth, seed=SEED, new_rows=5_000)
    assert again.read_bytes() == second.read_bytes()
    assert again_truth.read_bytes() == second_truth.read_bytes()


def test_next_month_from_parquet_with_an_empty_log_sends_everyone_to_reminders(
    tmp_path: Path,
) -> None:
    first = tmp_path / "m1.parquet"
    write_book(2_000, first, SEED, open_share=0.4)
    log = make_log(tmp_path / "empty.duckdb", [])
    summary = write_next_month(first, log, tmp_path / "m2.parquet", open_share=0.5)
    assert (
        summary.unlogged == sum(summary.resolved_now.values()) == summary.resolved_now["reminders"]
    )
    assert summary.new_loans == summary.unlogged  # default: as many new loans as were open
    assert 0.35 < summary.new_open / summary.new_loans < 0.65


def test_cli_next_month_prints_what_it_did(month, tmp_path: Path, capsys) -> None:
    first, log, _, _ = month["paths"]
    out = tmp_path / "m2.parquet"
    argv = ["generate", "--next-from", str(first), "--decisions", str(log), "--out", str(out)]
    assert cli_main([*argv, "--seed", str(SEED), "--rows", "10"]) == 0
    printed = capsys.readouterr().out
    assert "cycle 2026-02-28" in printed and "100 had no logged decision" in printed
    assert duckdb.sql(f"select count(*) from read_parquet('{out}')").fetchall() == [(30_010,)]


# --- hostile inputs ---


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    path = tmp_path / "prev.csv"
    write_book(300, path, SEED, open_share=0.5)
    return path


def hostile_logs(folder: Path) -> Iterator[tuple[str, Path]]:
    yield "no such file", folder / "missing.duckdb"
    yield "not a file", folder
    text = folder / "book.duckdb"
    text.write_text("as_of_date,loan_id\n2026-01-01,LN_1\n")
    yield "is not a DuckDB file", text
    yield (
        "no table main.decision_log",
        make_log(folder / "other.duckdb", [], table_sql="create table x (a int)"),
    )
    view = make_log(
        folder / "view.duckdb",
        [],
        table_sql="create view main.decision_log as select date '2026-01-01' as as_of_date, "
        "'b' as build_id, 'LN_1' as loan_id, 'c' as cell, 'legal' as assigned_strategy_code",
    )
    yield "is a VIEW, not a table", view
    yield (
        "has no column cell",
        make_log(
            folder / "nocell.duckdb",
            [],
            table_sql="create table main.decision_log (as_of_date date, build_id varchar, "
            "loan_id varchar, assigned_strategy_code varchar)",
        ),
    )
    yield (
        "as_of_date is VARCHAR, not DATE",
        make_log(
            folder / "texts.duckdb",
            [],
            table_sql="create table main.decision_log (as_of_date varchar, build_id varchar, "
            "loan_id varchar, cell varchar, assigned_strategy_code varchar)",
        ),
    )
    yield "assigns 'prison'", make_log(folder / "prison.duckdb", [("2026-01-31", "LN_2", "prison")])
    yield (
        "names a loan more than once",
        make_log(
            folder / "twice.duckdb",
            [("2026-01-31", "LN_2", "legal"), ("2026-01-31", "LN_2", "legal")],
        ),
    )
    yield "without loan_id", make_log(folder / "null.duckdb", [("2026-01-31", None, "legal")])
    yield (
        "rows without as_of_date (1)",
        make_log(folder / "undated.duckdb", [(None, "LN_2", "legal")]),
    )


def test_hostile_decision_files_are_refused_in_one_line(
    previous: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    cases = list(hostile_logs(folder))
    for expected, log in cases:
        before = log.read_bytes() if log.is_file() else None
        out = tmp_path / "next.csv"
        argv = ["generate", "--next-from", str(previous), "--decisions", str(log)]
        assert cli_main([*argv, "--out", str(out)]) == 3, expected
        line = one_line_refusal(capsys)
        assert expected in line and str(log) in line, (expected, line)
        assert not out.exists()
        assert before is None or log.read_bytes() == before  # read, never written
    assert len(cases) == 11


def test_a_decision_file_name_is_data_not_sql(previous: Path, tmp_path: Path, capsys) -> None:
    odd = make_log(tmp_path / "x'); drop table main.decision_log; --{{ 1 }}.duckdb", [])
    out = tmp_path / "next.csv"
    argv = ["generate", "--next-from", str(previous), "--decisions", str(odd), "--out", str(out)]
    assert cli_main(argv) == 0
    assert out.exists()
    with duckdb.connect(str(odd), read_only=True) as connection:
        assert connection.execute("select count(*) from main.decision_log").fetchall() == [(0,)]


def test_a_decision_log_view_cannot_read_other_files(previous: Path, tmp_path: Path) -> None:
    """Even were a view accepted, the file is opened with file access switched off."""
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    log = tmp_path / "reads.duckdb"
    with duckdb.connect(str(log)) as connection:
        connection.execute(f"create view v as select * from read_csv('{secret}')")
    from loan_recovery.generate.next_month import _connect_read_only

    connection = _connect_read_only(log)
    with pytest.raises(duckdb.Error, match="disabled"):
        connection.execute("select * from v").fetchall()
    connection.close()


def previous_books(folder: Path, good: Path) -> Iterator[tuple[str, Path]]:
    yield "no such file", folder / "missing.csv"
    yield "ends in .csv or .parquet", make_log(folder / "served.duckdb", [])
    rows = list(csv.reader(good.open()))
    wrong = folder / "wrong.csv"
    wrong.write_text("\n".join(",".join(r[:-1]) for r in rows) + "\n")
    yield "missing columns ['Legal_Action_Taken']", wrong
    unknown = folder / "unknown.csv"
    unknown.write_text(good.read_text().replace(",Personal,", ",Education,", 1))
    yield "Loan_Type 'Education'", unknown
    repeated = folder / "repeated.csv"
    repeated.write_text(good.read_text().replace("LN_2,", "LN_1,", 1))
    yield "Loan_ID repeats", repeated
    blank = folder / "blank.csv"
    lines = good.read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = ""  # Monthly_Income
    blank.write_text("\n".join([*lines[:3], ",".join(cells), *lines[4:]]) + "\n")
    yield "row 3 has no Monthly_Income", blank
    text = folder / "text.csv"
    text.write_text(good.read_text().replace(",LN_5,", ",LN_5,", 1).replace(",36,", ",three,", 1))
    yield "not a readable loan book", text


def test_a_previous_book_that_is_not_a_loan_book_is_refused(
    previous: Path, tmp_path: Path, capsys
) -> None:
    log = make_log(tmp_path / "served.duckdb", [])
    folder = tmp_path / "books"
    folder.mkdir()
    for expected, book in previous_books(folder, previous):
        out = tmp_path / "next.csv"
        argv = ["generate", "--next-from", str(book), "--decisions", str(log)]
        assert cli_main([*argv, "--out", str(out)]) == 3, expected
        line = one_line_refusal(capsys)
        assert expected in line, (expected, line)
        assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--out", "{previous}"], "each file must be a different one"),
        (["--out", "{tmp}/n.csv", "--truth-out", "{tmp}/n.csv"], "each file must be"),
        (["--out", "{tmp}/n.csv", "--open-share", "2"], "--open-share"),
        (["--out", "{tmp}/n.xlsx"], "must end in .csv or .parquet"),
    ],
)
def test_next_month_usage_errors_exit_2(
    previous: Path, tmp_path: Path, capsys, extra: list[str], expected: str
) -> None:
    log = make_log(tmp_path / "served.duckdb", [])
    extra = [e.format(previous=previous, tmp=tmp_path) for e in extra]
    argv = ["generate", "--next-from", str(previous), "--decisions", str(log), *extra]
    before = previous.read_bytes()
    assert cli_main(argv) == 2
    assert expected in one_line_refusal(capsys)
    assert previous.read_bytes() == before


def test_decisions_without_next_from_is_a_usage_error(tmp_path: Path, capsys) -> None:
    argv = ["generate", "--rows", "5", "--out", str(tmp_path / "b.csv"), "--decisions", "x"]
    assert cli_main(argv) == 2
    assert "--decisions needs --next-from" in one_line_refusal(capsys)


# --- issue 26: bounded rows, and no partial file on SIGTERM ---


@pytest.mark.parametrize("rows", ["99999999999999999999", str(MAX_ROWS + 1), "-5"])
def test_rows_beyond_the_bound_are_refused_in_one_line(tmp_path: Path, capsys, rows: str) -> None:
    out = tmp_path / "b.csv"
    assert cli_main(["generate", "--rows", rows, "--out", str(out)]) == 2
    assert "--rows must be 0 or more and at most 100,000,000" in one_line_refusal(capsys)
    assert list(tmp_path.iterdir()) == []


def test_the_bound_itself_is_allowed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """MAX_ROWS passes the check (the book is not written: the writer is replaced)."""
    calls = []
    monkeypatch.setattr(
        "loan_recovery.generate.write_loan_book", lambda **kwargs: calls.append(kwargs)
    )
    assert cli_main(["generate", "--rows", str(MAX_ROWS), "--out", str(tmp_path / "b.csv")]) == 0
    assert calls[0]["rows"] == MAX_ROWS
    assert book_module.MAX_ROWS == 100_000_000


def test_sigterm_leaves_no_partial_file_and_the_old_book_intact(tmp_path: Path) -> None:
    out = tmp_path / "book.csv"
    out.write_text("the previous book\n")
    partial = book_module.partial_path(out)
    command = [LOAN_TOOL, "generate", "--rows", "30000000", "--out", str(out)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        deadline = time.monotonic() + 60
        while not (partial.exists() and partial.stat().st_size > 1_000_000):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the partial file never appeared"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert err.strip().splitlines() == [
        f"loan-recovery generate: interrupted (SIGTERM): nothing written, {out} unchanged"
    ]
    assert not partial.exists()
    assert out.read_text() == "the previous book\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.csv"]
