"""The report of a decision run: what it decided, and what it does not contain.

The monthly decision run (``loan-recovery build --model VERSION
--decide-only``, ``build_info.run_kind`` 'decision') scores, explains and
decides the open loans only and builds no model card, gains, fairness,
segment profiles or policy comparison. Drawing the full page from it would
show empty or misleading charts (score distributions of open loans only,
no back-test), so the report says instead, in a few lines and two small
tables, what the run decided and which relations a full build adds.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import duckdb

from loan_recovery import build_info
from loan_recovery.build_info import DECISION_RUN, BuildInfo

NOT_IN_A_DECISION_RUN: tuple[tuple[str, str], ...] = (
    ("main.risk_model_metrics", "the model card: every score's back-test, AUC and calibration"),
    ("main.model_gains", "gains and calibration by score decile"),
    ("main.strategy_policy_comparison", "the policies compared in money"),
    ("main.model_fairness", "score and strategy rates by gender"),
    ("main.borrower_segments", "the segment profiles"),
    ("intermediate.int_loan_baseline_scores", "the write-up's baselines"),
    ("main.recovery_strategies", "the scores of resolved loans (it holds the open loans only)"),
)
"""What a decision run leaves to a full build, and what each would have answered."""


@dataclass(frozen=True)
class DecisionRun:
    """What the decision-run page shows, read from the built file."""

    info: BuildInfo
    strategies: list[tuple[Any, ...]]
    """(strategy, open loans, amount at risk) from collection_work_queue."""
    drift: list[tuple[Any, ...]]
    """(variable, kind, PSI, stability) from model_monitoring, largest PSI first."""


def read(connection: duckdb.DuckDBPyConnection) -> DecisionRun | None:
    """The decision run in the file, or None when the file holds anything else."""
    info = build_info.read(connection)
    if info is None or info.run_kind != DECISION_RUN:
        return None
    strategies = connection.execute(
        "select recovery_strategy, count(*), sum(amount_at_risk) from main.collection_work_queue "
        "group by recovery_strategy, strategy_rank order by strategy_rank desc"
    ).fetchall()
    drift = connection.execute(
        "select variable, variable_kind, psi, stability from main.model_monitoring "
        "order by psi desc, variable"
    ).fetchall()
    return DecisionRun(info, strategies, drift)


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    def cell(value: Any) -> str:
        text = f"{value:,.4f}" if isinstance(value, float) and abs(value) < 10 else value
        text = f"{value:,.0f}" if isinstance(value, float) and abs(value) >= 10 else text
        return html.escape(f"{text:,}" if isinstance(text, int) else str(text))

    head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table class="facts"><tr>{head}</tr>{body}</table>'


def body_html(run: DecisionRun, database: str) -> str:
    """The page body: the run's facts, its decisions and drift, and what it does not contain."""
    info = run.info
    decided = sum(int(row[1]) for row in run.strategies)
    facts = [
        ("Built file", database),
        ("Build", f"{info.build_id} (decision run), cycle {info.as_of_date}"),
        ("Input", f"{info.input_file}: {info.rows_clean:,} valid loans, "
                  f"{info.rows_quarantined:,} quarantined"),
        ("Model", f"frozen model {info.model_version}"),
        ("Decided", f"{decided:,} open loans"),
    ]  # fmt: skip
    missing = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(what)}</li>"
        for name, what in NOT_IN_A_DECISION_RUN
    )
    return (
        "<h1>Loan-recovery report: decision run</h1>"
        + _table(("Fact", "Value"), facts)
        + "<p>This file holds the monthly decision run: the whole book was read and "
        "validated, and only the open loans were scored, explained and decided. The charts "
        "of the full report need the resolved loans' scores and the model card, which a "
        "decision run does not build, so they are not drawn.</p>"
        "<h3>This cycle's work queue</h3>"
        + _table(("Strategy", "Open loans", "Amount at risk"), run.strategies)
        + "<p>Per loan, with the reasons: <code>collection_work_queue</code>, "
        "<code>recovery_strategies</code>, <code>decision_log</code>.</p>"
        "<h3>Population stability of the open loans</h3>"
        + _table(("Variable", "Kind", "PSI", "Stability"), run.drift)
        + "<h3>Not in a decision run</h3><ul>"
        + missing
        + "</ul><p>A full build (<code>loan-recovery build --model VERSION</code>, without "
        "--decide-only) makes them, and this report draws every chart from it.</p>"
    )
