"""The decision log across monthly cycles: kept, replaced, withdrawn and restored, never lost.

At the end, the monthly decision run (--decide-only) of the last cycle is
built beside the full build of it, and every open loan's decision, the log
and the history it carries must be the full build's.

One simulated lender, two monthly books built into one --db by the real
command: cycle 1 trains, its model is approved, the simulator resolves
cycle 1's open loans under the actions the served decision_log assigned,
and cycle 2 scores next month's book with the approved model. Then a
rollback, a roll-forward, a rebuild of cycle 2 with other thresholds, a
build killed mid-dbt and the refusals. After each step the log's rows are
counted against the books themselves (open loans read from the files),
not against anything the build reports.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from conftest import kill_cli_at, query, run_cli, served_build_info
from loan_recovery.generate import write_loan_book
from loan_recovery.modelling.registry import registry_dir
from loan_recovery.report.decision_run import NOT_IN_A_DECISION_RUN
from loan_recovery.serving import EXIT_BAD_INPUT, EXIT_USAGE, ServedPaths

pytestmark = pytest.mark.dbt

ROWS = 8_000
SEED = 11
FAST_VARS = "{scoring_trees: 20, outcome_trees: 20}"
OTHER_THRESHOLDS = (
    "{scoring_trees: 20, outcome_trees: 20, legal_threshold: 0.9, settlement_threshold: 0.2}"
)
CYCLE_1, CYCLE_2, CYCLE_3 = "2026-01-31", "2026-02-28", "2026-03-31"
EXPERIMENT = "experiment-1"
SHARES = {"challenger": 0.10, "explore": 0.05}


def open_loans(book: Path) -> set[str]:
    """The loan ids a book holds without a recovery status, read from the file itself."""
    with duckdb.connect() as connection:
        rows = connection.execute(
            "select Loan_ID from read_csv(?, all_varchar = true) "
            "where coalesce(Recovery_Status, '') = ''",
            [str(book)],
        ).fetchall()
    return {row[0] for row in rows}


def log_counts(database: Path) -> dict[str, int]:
    return {
        str(day): count
        for day, count in query(
            database, "select as_of_date, count(*) from decision_log group by 1 order by 1"
        )
    }


def log_rows(database: Path) -> set[tuple[object, ...]]:
    return set(query(database, "select * from decision_log"))


def expected_cell(loan_id: str, experiment: str = EXPERIMENT) -> str:
    """The cell the issue defines, computed here with hashlib (not the project's SQL)."""
    draw = int(hashlib.md5(f"{experiment}|{loan_id}".encode()).hexdigest()[:15], 16) / 16**15
    if draw < SHARES["challenger"]:
        return "challenger"
    if draw < SHARES["challenger"] + SHARES["explore"]:
        return "explore"
    return "champion"


def build(paths: ServedPaths, loans: Path, as_of: str, *extra: str) -> None:
    result = run_cli(
        "build", "--loans", str(loans), "--db", str(paths.served), "--as-of", as_of, *extra
    )
    assert result.returncode == 0, result.stderr


@dataclass
class History:
    paths: ServedPaths
    books: tuple[Path, Path]
    open_1: set[str]
    open_2: set[str]
    after_cycle_1: dict[str, int]
    after_cycle_2: dict[str, int]
    rows_cycle_2: set[tuple[object, ...]]
    after_rollback: dict[str, int]
    after_forward: dict[str, int]
    rows_forward: set[tuple[object, ...]]
    after_rebuild: dict[str, int]
    rebuild_cells: dict[str, str]
    cycle_2_cells: dict[str, str]
    cycle_2_codes: dict[str, str]
    rebuild_codes: dict[str, str]
    rows_before_kill: set[tuple[object, ...]]
    rows_after_kill: set[tuple[object, ...]]
    kill_marker: str
    outcomes: int


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    root = tmp_path_factory.mktemp("decision_history")
    paths = ServedPaths(root / "served.duckdb")
    book_1, truth_1 = root / "book_1.csv", root / "truth_1.csv"
    write_loan_book(rows=ROWS, out=book_1, seed=SEED, open_share=0.3, truth_out=truth_1)
    build(paths, book_1, CYCLE_1, "--vars", FAST_VARS)
    after_cycle_1 = log_counts(paths.served)
    version = served_build_info(paths.served)["model_version"]
    approved = run_cli("models", "--db", str(paths.served), "approve", version)
    assert approved.returncode == 0, approved.stderr

    book_2 = root / "book_2.csv"
    written = run_cli(
        "generate",
        "--next-from",
        str(book_1),
        "--decisions",
        str(paths.served),
        "--out",
        str(book_2),
        "--truth-out",
        str(root / "truth_2.csv"),
        "--seed",
        str(SEED),
    )
    assert written.returncode == 0, written.stderr
    build(paths, book_2, CYCLE_2, "--model", "approved")
    after_cycle_2 = log_counts(paths.served)
    rows_cycle_2 = log_rows(paths.served)
    cells_sql = "select loan_id, cell from decision_log where as_of_date = '2026-02-28'"
    codes_sql = (
        "select loan_id, assigned_strategy_code from decision_log where as_of_date = '2026-02-28'"
    )
    cycle_2_cells = dict(query(paths.served, cells_sql))
    cycle_2_codes = dict(query(paths.served, codes_sql))
    outcomes = query(paths.served, "select count(*) from decision_outcomes")[0][0]

    assert run_cli("rollback", "--db", str(paths.served)).returncode == 0
    after_rollback = log_counts(paths.served)
    assert run_cli("rollback", "--db", str(paths.served)).returncode == 0
    after_forward = log_counts(paths.served)
    rows_forward = log_rows(paths.served)

    build(paths, book_2, CYCLE_2, "--model", "approved", "--vars", OTHER_THRESHOLDS)
    after_rebuild = log_counts(paths.served)
    rebuild_cells = dict(query(paths.served, cells_sql))
    rebuild_codes = dict(query(paths.served, codes_sql))

    rows_before_kill = log_rows(paths.served)
    marker = kill_cli_at(
        "dbt",
        "build",
        "--loans",
        str(book_2),
        "--db",
        str(paths.served),
        "--as-of",
        CYCLE_3,
        "--model",
        "approved",
    )
    rows_after_kill = log_rows(paths.served)
    return History(
        paths=paths,
        books=(book_1, book_2),
        open_1=open_loans(book_1),
        open_2=open_loans(book_2),
        after_cycle_1=after_cycle_1,
        after_cycle_2=after_cycle_2,
        rows_cycle_2=rows_cycle_2,
        after_rollback=after_rollback,
        after_forward=after_forward,
        rows_forward=rows_forward,
        after_rebuild=after_rebuild,
        rebuild_cells=rebuild_cells,
        cycle_2_cells=cycle_2_cells,
        cycle_2_codes=cycle_2_codes,
        rebuild_codes=rebuild_codes,
        rows_before_kill=rows_before_kill,
        rows_after_kill=rows_after_kill,
        kill_marker=marker,
        outcomes=outcomes,
    )


def test_each_cycle_logs_one_row_per_open_loan(history: History) -> None:
    assert history.after_cycle_1 == {CYCLE_1: len(history.open_1)}
    assert history.after_cycle_2 == {CYCLE_1: len(history.open_1), CYCLE_2: len(history.open_2)}
    logged_2 = {
        row[0]
        for row in query(
            history.paths.served, "select loan_id from decision_log where as_of_date = '2026-02-28'"
        )
    }
    assert logged_2 == history.open_2
    assert not history.open_1 & history.open_2  # the simulator resolved every cycle-1 loan


def test_outcomes_join_the_decisions_they_belong_to(history: History) -> None:
    """Every cycle-1 decision has its outcome once cycle 2's book shows the loan resolved."""
    assert history.outcomes == len(history.open_1)
    mismatched = query(
        history.paths.served,
        "select count(*) from decision_outcomes as o "
        "join decision_log as d using (as_of_date, loan_id) "
        "where o.cell <> d.cell or o.assigned_strategy_code <> d.assigned_strategy_code "
        "or o.resolved_as_of_date <> '2026-02-28'",
    )
    assert mismatched == [(0,)]


def test_rollback_withdraws_the_cycle_and_rolling_forward_brings_it_back(
    history: History,
) -> None:
    assert history.after_rollback == history.after_cycle_1
    assert history.after_forward == history.after_cycle_2
    assert history.rows_forward == history.rows_cycle_2


def test_rebuilding_a_cycle_replaces_it_and_keeps_the_rest(history: History) -> None:
    assert history.after_rebuild == history.after_cycle_2  # replaced, never duplicated
    cycle_1_before = {row for row in history.rows_cycle_2 if str(row[0]) == CYCLE_1}
    cycle_1_after = {row for row in log_rows(history.paths.served) if str(row[0]) == CYCLE_1}
    assert cycle_1_after == cycle_1_before


def test_cells_stay_put_when_thresholds_change(history: History) -> None:
    assert history.rebuild_cells == history.cycle_2_cells
    changed = sum(
        history.rebuild_codes[loan] != code for loan, code in history.cycle_2_codes.items()
    )
    assert changed > len(history.cycle_2_codes) * 0.1  # the thresholds did change decisions


def test_cells_are_the_hash_of_experiment_and_loan(history: History) -> None:
    logged = query(history.paths.served, "select loan_id, cell from decision_log")
    assert logged
    assert all(cell == expected_cell(loan) for loan, cell in logged)


def test_realised_shares_are_within_two_points_of_the_vars(history: History) -> None:
    for day in (CYCLE_1, CYCLE_2):
        shares = dict(
            query(
                history.paths.served,
                "select cell, count(*) / sum(count(*)) over () from decision_log "
                f"where as_of_date = '{day}' group by cell",
            )
        )
        for cell, share in SHARES.items():
            assert abs(shares[cell] - share) <= 0.02, (day, cell, shares)


def test_the_explore_cell_spreads_over_every_action_and_respects_eligibility(
    history: History,
) -> None:
    explored = dict(
        query(
            history.paths.served,
            "select assigned_strategy_code, count(*) from decision_log "
            "where cell = 'explore' group by 1",
        )
    )
    assert set(explored) == {"reminders", "settlement", "legal"}, explored
    too_early = query(
        history.paths.served,
        "select count(*) from decision_log as d cross join run_settings as s "
        "where d.assigned_strategy_code = 'legal' and d.days_past_due < s.legal_min_days_past_due",
    )
    assert too_early == [(0,)]


def test_a_killed_build_changes_nothing(history: History) -> None:
    assert "step=dbt" in history.kill_marker
    assert history.rows_after_kill == history.rows_before_kill


def _refused(paths: ServedPaths, *args: str) -> tuple[int, str]:
    before = paths.served.read_bytes()
    result = run_cli("build", "--db", str(paths.served), *args)
    assert paths.served.read_bytes() == before
    lines = result.stderr.strip().splitlines()
    return result.returncode, lines[0] if lines else ""


def test_an_earlier_cycle_is_refused_before_anything_is_built(history: History) -> None:
    code, line = _refused(
        history.paths,
        "--loans",
        str(history.books[1]),
        "--as-of",
        "2026-02-27",
        "--model",
        "approved",
    )
    assert code == EXIT_USAGE
    assert "earlier than the newest cycle in the decision log (2026-02-28)" in line


@pytest.mark.parametrize(
    ("as_of", "shares"),
    [
        ("2026-02-30x", None),
        ("31/01/2026", None),
        (CYCLE_3, "{challenger_share: 1.2}"),
        (CYCLE_3, "{explore_share: -0.1}"),
        (CYCLE_3, "{challenger_share: 0.6, explore_share: 0.5}"),
    ],
)
def test_bad_dates_and_shares_are_one_line_and_exit_2(
    history: History, as_of: str, shares: str | None
) -> None:
    extra = ["--vars", shares] if shares else []
    code, line = _refused(
        history.paths,
        "--loans",
        str(history.books[1]),
        "--as-of",
        as_of,
        "--model",
        "approved",
        *extra,
    )
    assert code == EXIT_USAGE, line
    assert line.startswith("build failed at step settings:") or "invalid --vars" in line, line


@pytest.mark.parametrize(
    "damage",
    [
        "alter table decision_log drop column cell",
        "alter table decision_log add column note varchar",
        "alter table decision_log alter loss_probability type varchar",
        "drop table decision_log",
    ],
)
def test_a_damaged_or_foreign_log_is_refused_never_replaced(
    history: History, tmp_path: Path, damage: str
) -> None:
    copy = ServedPaths(tmp_path / "served.duckdb")
    shutil.copy(history.paths.served, copy.served)
    with duckdb.connect(str(copy.served)) as connection:
        connection.execute(damage)
    code, line = _refused(copy, "--loans", str(history.books[1]), "--as-of", CYCLE_3)
    assert code == EXIT_BAD_INPUT, line
    assert "decision" in line and str(copy.served) in line, line


@dataclass(frozen=True)
class DecisionRun:
    full: Path
    """The full build of cycle 2 (frozen model, OTHER_THRESHOLDS): what the decision run matches."""
    decision: Path
    """The decision run of the same book, cycle, model and settings, built over a copy of it."""
    stdout: str


@pytest.fixture(scope="module")
def decision_run(history: History, tmp_path_factory: pytest.TempPathFactory) -> DecisionRun:
    """One small decision run (--decide-only) beside the history's last full build."""
    root = tmp_path_factory.mktemp("decision_run")
    paths = ServedPaths(root / "served.duckdb")
    full = Path(shutil.copy(history.paths.served, root / "full.duckdb"))
    shutil.copy(history.paths.served, paths.served)
    shutil.copytree(registry_dir(history.paths.served), registry_dir(paths.served))
    # As if no build had yet seen cycle 1's outcomes: the decision run must find
    # them in the book itself (it scores no resolved loan).
    with duckdb.connect(str(paths.served)) as connection:
        connection.execute("delete from main.decision_outcomes")
    result = run_cli(
        "build",
        "--loans",
        str(history.books[1]),
        "--db",
        str(paths.served),
        "--as-of",
        CYCLE_2,
        "--model",
        "approved",
        "--vars",
        OTHER_THRESHOLDS,
        "--decide-only",
    )
    assert result.returncode == 0, result.stderr
    return DecisionRun(full, paths.served, result.stdout)


def differences(run: DecisionRun, full_sql: str, decision_sql: str) -> tuple[int, int, int]:
    """Rows of the full build's query missing from the decision run's, the reverse, and
    the decision run's rows (EXCEPT ALL both ways: duplicates count)."""
    with duckdb.connect() as connection:
        connection.execute("attach ? as f (read_only)", [str(run.full)])
        connection.execute("attach ? as d (read_only)", [str(run.decision)])
        full, decision = full_sql.format(db="f"), decision_sql.format(db="d")
        (missing,) = connection.execute(
            f"select count(*) from ({full} except all {decision})"
        ).fetchall()[0]
        (extra,) = connection.execute(
            f"select count(*) from ({decision} except all {full})"
        ).fetchall()[0]
        (rows,) = connection.execute(f"select count(*) from ({decision})").fetchall()[0]
    return int(missing), int(extra), int(rows)


def test_the_decision_run_decides_every_open_loan_exactly_as_the_full_build(
    decision_run: DecisionRun, history: History
) -> None:
    """Scores, segments, strategies, cells, values and reasons: every column, every open loan."""
    assert differences(
        decision_run,
        "select * from {db}.main.recovery_strategies where not is_resolved",
        "select * from {db}.main.recovery_strategies",
    ) == (0, 0, len(history.open_2))
    assert differences(
        decision_run,
        "select * from {db}.main.collection_work_queue",
        "select * from {db}.main.collection_work_queue",
    ) == (0, 0, len(history.open_2))


def test_the_decision_run_scores_no_resolved_loan(
    decision_run: DecisionRun, history: History
) -> None:
    for table in ("int_loan_outcome_scores", "int_loan_segment_scores", "int_loan_segments"):
        scored = {
            row[0]
            for row in query(decision_run.decision, f"select loan_id from intermediate.{table}")
        }
        assert scored == history.open_2, table


def test_the_decision_run_logs_and_carries_the_history_as_the_full_build(
    decision_run: DecisionRun, history: History
) -> None:
    log = "select * exclude (build_id) from {db}.main.decision_log"
    assert differences(decision_run, log, log) == (
        0,
        0,
        len(history.open_1) + len(history.open_2),
    )
    outcomes = "select * exclude (resolved_build_id) from {db}.main.decision_outcomes"
    assert differences(decision_run, outcomes, outcomes) == (0, 0, len(history.open_1))
    # effect_in_use averages over this cycle's loans: DuckDB's parallel sum may differ in
    # the last bit between two runs of the same query, so it is compared to 1e-12.
    effects = (
        "select * exclude (effect_in_use), round(effect_in_use, 12) from {db}.main.action_effects"
    )
    assert differences(decision_run, effects, effects) == (0, 0, 3)
    for table in ("quarantined_loans", "loan_book_quality"):
        every_row = f"select * from {{db}}.main.{table}"
        missing, extra, _ = differences(decision_run, every_row, every_row)
        assert (missing, extra) == (0, 0), table
    # The cycle counts the whole book in both runs; only the drift verdict may differ
    # (the decision run monitors the open loans it scored).
    cycles = (
        "select as_of_date, experiment_id, model_version, loans, open_loans "
        "from {db}.main.decision_cycles"
    )
    assert differences(decision_run, cycles, cycles) == (0, 0, 2)


def test_build_info_says_which_kind_of_run_it_was(decision_run: DecisionRun) -> None:
    full, decision = served_build_info(decision_run.full), served_build_info(decision_run.decision)
    assert (full["run_kind"], decision["run_kind"]) == ("full", "decision")
    assert decision["model_mode"] == "frozen"
    for column in ("model_version", "rows_in", "rows_clean", "input_sha256"):
        assert decision[column] == full[column], column
    assert "decision run: the open loans scored, explained and decided" in decision_run.stdout


def test_a_decision_run_builds_no_model_card_and_the_report_says_so(
    decision_run: DecisionRun, tmp_path: Path
) -> None:
    tables = {
        f"{schema}.{table}"
        for schema, table in query(
            decision_run.decision, "select schema_name, table_name from duckdb_tables()"
        )
    }
    absent = {name for name, _ in NOT_IN_A_DECISION_RUN} - {"main.recovery_strategies"}
    assert absent <= {
        f"{schema}.{table}"
        for schema, table in query(
            decision_run.full, "select schema_name, table_name from duckdb_tables()"
        )
    }
    assert not absent & tables
    out = tmp_path / "report.html"
    result = run_cli("report", "--db", str(decision_run.decision), "--out", str(out))
    assert result.returncode == 0, result.stderr
    page = out.read_text(encoding="utf-8")
    decided = len(query(decision_run.decision, "select 1 from main.recovery_strategies"))
    assert "decision run" in page and f"{decided:,} open loans" in page
    assert all(name in page for name, _ in NOT_IN_A_DECISION_RUN)
    assert "plotly" not in page.lower()
