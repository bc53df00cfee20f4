"""The HTML page: the first screen, then which sections, in which order, under which question.

The page is for the person who acts on it. It opens with this cycle in
money (``decision_summary``: the work queue per strategy, what capacity
left undone, drift, the back-test AUC, the model to approve, the change
since the last cycle), then the decisions on this cycle's open loans (the
top of the work queue per strategy, the policies in money, capacity,
reasons), the experiment and the trend, the back-test on resolved loans,
monitoring, segments, a short glossary, and last the write-up's
exploratory charts of the loan book.

:data:`SECTIONS` is the one list of sections after the first screen
(charts and tables). Its order is the page order, and each entry carries
the question it answers (the README's report table lists the same
questions, and a test holds the page to it) and its part. Adding a chart:
write its function in the chart module of its part, then add one
:class:`Chart` here; a table is a :class:`Table` whose ``render`` returns HTML.

The page is self-contained: plotly.js is embedded once in the head and every
chart is a div that uses it, so the file opens from disk with no network.

Where it is written (:func:`write_report`): only to a name ending in
``.html``, and over an existing file only when that file is one of our
reports (:data:`REPORT_MARKER` in its head, or the report's title for a
report written before the marker). ``report --out existing.csv`` once
replaced a loan book with HTML. The page is written under a scratch name
and renamed over the target, so a failure leaves the old report whole.
"""

from __future__ import annotations

import contextlib
import html
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from loan_recovery.config import project_dir
from loan_recovery.report import (
    book_charts,
    decision_charts,
    decision_run,
    experiment_charts,
    experiment_tables,
    glossary,
    model_card,
    model_charts,
    monitoring_charts,
    work_queue,
)
from loan_recovery.report.decision_summary import cycle_summary, render_summary
from loan_recovery.report.facts import BuildFacts, build_facts, header_rows
from loan_recovery.report.queries import SAMPLE_ROWS, ReportData, connect, read_report_data


@dataclass(frozen=True)
class Chart:
    """One chart of the page: an anchor, a heading, the question, and how to draw it."""

    key: str
    heading: str
    question: str
    draw: Callable[[ReportData], go.Figure]
    part: str = "The loan book"


@dataclass(frozen=True)
class Table:
    """One table (or text) section of the page: like a Chart, drawn as HTML."""

    key: str
    heading: str
    question: str
    render: Callable[[ReportData], str]
    part: str


DECISIONS = "Decisions: this cycle's open loans"
EXPERIMENT = "The experiment and the trend"
BACK_TEST = "Back-test: the scores on resolved loans"
MONITORING = "Model monitoring"
MODELS = "Segments"
GLOSSARY = "Glossary"
BOOK = "The loan book (the write-up's exploratory charts)"


SECTIONS: tuple[Chart | Table, ...] = (
    Table(
        "work_queue",
        "Work queue: the first loans of each strategy",
        "Who does each team work on first, why, and for how much money?",
        work_queue.render_work_queue,
        DECISIONS,
    ),
    Chart(
        "policy_money",
        "Policies in money",
        "What would each policy bring back this cycle, net of cost, and what did earlier "
        "decisions realise?",
        decision_charts.policy_money_figure,
        DECISIONS,
    ),
    Chart(
        "capacity",
        "Capacity use",
        "Could each strategy take the loans the thresholds sent, and how many were moved down?",
        decision_charts.capacity_figure,
        DECISIONS,
    ),
    Chart(
        "reason_codes",
        "Reason codes per strategy",
        "Which reasons raise the risk of the loans each strategy gets?",
        decision_charts.reason_codes_figure,
        DECISIONS,
    ),
    Chart(
        "risk_score_distribution",
        "Risk score distribution and strategy thresholds",
        "How are this cycle's risk scores spread, and where do the thresholds cut them into "
        "strategies?",
        model_charts.risk_score_figure,
        DECISIONS,
    ),
    Chart(
        "strategy_by_segment",
        "Strategies per segment",
        "How many loans, and how much outstanding money, go to each strategy in each segment?",
        model_charts.strategy_segment_figure,
        DECISIONS,
    ),
    Chart(
        "challenger_lift",
        "Champion against challenger",
        "Did the challenger (or exploring) lose less than the champion, and how surely?",
        experiment_charts.lift_figure,
        EXPERIMENT,
    ),
    Table(
        "challenger_results",
        "Challenger results per cycle and cell",
        "How many decisions per cell have resolved, and how many more would settle the lift?",
        experiment_tables.render_challenger_table,
        EXPERIMENT,
    ),
    Chart(
        "cycle_trend",
        "Cycle trend",
        "How has the money at risk per strategy moved from cycle to cycle, and how did each "
        "cycle's decisions end?",
        experiment_charts.trend_figure,
        EXPERIMENT,
    ),
    Chart(
        "action_effects",
        "Action effects",
        "What does settlement or legal action do to the chance of full recovery, and is that "
        "learned or assumed?",
        experiment_charts.effects_figure,
        EXPERIMENT,
    ),
    Table(
        "action_effects_table",
        "Action effects: learned or prior",
        "Which effects are learned from randomised outcomes, and how many outcomes are missing?",
        experiment_tables.render_effects_table,
        EXPERIMENT,
    ),
    Table(
        "assumptions",
        "Assumptions",
        "Which numbers behind the money are assumed rather than measured?",
        experiment_tables.render_assumptions_table,
        EXPERIMENT,
    ),
    Chart(
        "model_card",
        "Model card",
        "Which score ranks the actual outcome best, how surely, and which one drove the strategy?",
        model_card.model_card_figure,
        BACK_TEST,
    ),
    Chart(
        "gains",
        "Back-test: gains per score",
        "What share of the losses does each score find among its highest-scored loans?",
        decision_charts.gains_figure,
        BACK_TEST,
    ),
    Chart(
        "calibration",
        "Back-test: calibration of the outcome model",
        "Of the loans given a loss probability, does that share really end in a loss?",
        decision_charts.calibration_figure,
        BACK_TEST,
    ),
    Chart(
        "policy_comparison",
        "Back-test: policy comparison",
        "Under each policy, how did the loans each strategy would get really end?",
        decision_charts.policy_figure,
        BACK_TEST,
    ),
    Chart(
        "fairness",
        "Rates by gender",
        "Do loss rates, scores and strategies differ by gender, which no model sees?",
        model_card.fairness_figure,
        BACK_TEST,
    ),
    Chart(
        "drift",
        "Population stability",
        "Has this book drifted from the loans the model learned on, and in which variables?",
        monitoring_charts.drift_figure,
        MONITORING,
    ),
    Chart(
        "segment_profiles",
        "Borrower segments",
        "What distinguishes each segment from the whole book, and how large is each one?",
        model_charts.segment_profiles_figure,
        MODELS,
    ),
    Table(
        "glossary",
        "Glossary",
        "What do AUC, Brier, ECE and PSI mean?",
        lambda _data: glossary.render_glossary(),
        GLOSSARY,
    ),
    Chart(
        "loan_amount_distribution",
        "Loan amounts",
        "How are loan amounts distributed, and do larger loans go to higher incomes?",
        book_charts.loan_amount_figure,
        BOOK,
    ),
    Chart(
        "payment_history_by_status",
        "Payment history by recovery status",
        "Do borrowers who paid on time recover fully more often than those who delayed or missed?",
        book_charts.payment_history_figure,
        BOOK,
    ),
    Chart(
        "missed_payments_by_status",
        "Missed payments by recovery status",
        "Do loans that end partially recovered or written off have more missed payments?",
        book_charts.missed_payments_figure,
        BOOK,
    ),
    Chart(
        "income_vs_loan_by_status",
        "Monthly income against loan amount by recovery status",
        "Does the outcome depend on how large the loan is relative to the borrower's income?",
        book_charts.income_vs_loan_figure,
        BOOK,
    ),
)
"""The page after the first screen (the cycle summary), in order: the one list of sections."""

CHARTS: tuple[Chart, ...] = tuple(s for s in SECTIONS if isinstance(s, Chart))

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; margin: 0; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { margin-bottom: 4px; } h2.part { margin: 48px 0 0; font-size: 1.7em; }
h3 { margin: 32px 0 4px; border-top: 1px solid #ddd; padding-top: 20px; font-size: 1.3em; }
.question { color: #555; margin: 0 0 8px; font-style: italic; }
table.facts { border-collapse: collapse; margin: 12px 0; }
table.facts td, table.facts th { padding: 4px 14px 4px 0; text-align: left; vertical-align: top; }
table.facts td.source { color: #777; font-size: 0.9em; }
.warnings { color: #8a5300; background: #fff6e5; padding: 8px 12px 8px 28px; }
nav ol { columns: 2; }
section.summary h1 { margin: 0 0 6px; font-size: 1.8em; }
p.lede { font-size: 1.08em; margin: 0 0 10px; }
p.source { color: #777; font-size: 0.85em; margin: 4px 0 10px; }
table.money { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
table.money th, table.money td { padding: 5px 10px; border-bottom: 1px solid #e3e3e3; }
table.money td { text-align: right; } table.money th { text-align: left; }
table.money thead th { text-align: right; background: #f2f4f7; }
table.money thead th:first-child { text-align: left; }
table.money tr.total { font-weight: bold; border-top: 2px solid #333; }
table.money td[data-column="expected_net_value"] { font-weight: bold; color: #1d5e3a; }
table.money .sub { display: block; font-weight: normal; color: #777; font-size: 0.8em; }
.cards { display: grid; grid-template-columns: repeat(5, 1fr); gap: 10px; }
.card { border: 1px solid #d7dce3; border-radius: 6px; padding: 8px 10px; background: #f8fafc; }
.card.warn { border-color: #e0a030; background: #fff6e5; }
.card h4 { margin: 0; font-size: 0.8em; text-transform: uppercase; color: #555; }
.card p { margin: 2px 0; font-size: 0.85em; }
.card p.headline { font-size: 1.15em; font-weight: bold; }
table.queue, table.numbers { border-collapse: collapse; margin: 6px 0 18px; font-size: 0.85em; }
table.queue th, table.queue td, table.numbers th, table.numbers td {
  padding: 3px 8px; border-bottom: 1px solid #e3e3e3; text-align: left; vertical-align: top; }
table.queue caption { text-align: left; font-weight: bold; padding: 4px 0; }
dl.glossary dt { font-weight: bold; margin-top: 8px; } dl.glossary dd { margin-left: 16px; }
"""


def build_figures(data: ReportData) -> dict[str, go.Figure]:
    """Every chart, keyed as in CHARTS and in page order; pure, so tests can inspect the data."""
    return {chart.key: chart.draw(data) for chart in CHARTS}


def render_header(facts: BuildFacts) -> str:
    """The text header: what was built, when, from how many loans, with which thresholds."""
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td>"
        f'<td class="source">{html.escape(source)}</td></tr>'
        for label, value, source in header_rows(facts)
    )
    warnings = (
        '<ul class="warnings">'
        + "".join(f"<li>{html.escape(w)}</li>" for w in facts.warnings)
        + "</ul>"
        if facts.warnings
        else ""
    )
    return (
        '<table class="facts"><tr><th>Fact</th><th>Value</th><th>Source</th></tr>'
        f"{rows}</table>{warnings}"
    )


def render_html(figures: Mapping[str, go.Figure], facts: BuildFacts, data: ReportData) -> str:
    """One self-contained page: plotly.js once in the head, the cycle summary, then each section.

    The first screen is the cycle summary in money (``decision_summary``);
    the build's facts and any warning follow it, then the sections of
    :data:`SECTIONS` in order, each under its part, heading and question.
    """
    contents = "".join(
        f'<li><a href="#{section.key}">{html.escape(section.heading)}</a></li>'
        for section in SECTIONS
        if not isinstance(section, Chart) or section.key in figures
    )
    sections = []
    part = None
    for section in SECTIONS:
        if isinstance(section, Chart):
            if section.key not in figures:
                continue
            body = pio.to_html(
                figures[section.key],
                full_html=False,
                include_plotlyjs=False,
                div_id=f"chart-{section.key}",
                config={"displaylogo": False, "responsive": True},
            )
        else:
            body = section.render(data)
        if section.part != part:
            part = section.part
            sections.append(f'<h2 class="part">{html.escape(part)}</h2>')
        sections.append(
            f'<section id="{section.key}"><h3>{html.escape(section.heading)}</h3>'
            f'<p class="question">{html.escape(section.question)}</p>{body}</section>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"{REPORT_MARKER}"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Loan-recovery report</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body><main>{render_summary(cycle_summary(data))}"
        f'<h2 class="build" id="build">This build</h2>{render_header(facts)}'
        f"<nav><ol>{contents}</ol></nav>"
        f"{''.join(sections)}</main></body></html>\n"
    )


def default_report_path() -> Path:
    """reports/loan_recovery_report.html in the project (gitignored)."""
    return project_dir() / "reports" / "loan_recovery_report.html"


REPORT_MARKER = '<meta name="generator" content="loan-recovery report">'
"""In the head of every report: what tells our report from any other file named ``--out``."""
_OLD_TITLE = b"<title>Loan-recovery report</title>"
"""The title of reports written before the marker; recognised too, so they may be replaced."""
_HEAD_BYTES = 4096


class ReportTargetError(ValueError):
    """``--out`` may not be written: not an .html name, or a file that is not our report."""


def check_report_target(out: Path) -> None:
    """Refuse an ``--out`` the report may not be written to (:class:`ReportTargetError`)."""
    if out.suffix.lower() != ".html":
        raise ReportTargetError(
            f"--out {out}: the report is an .html file; choose a name ending in .html"
        )
    if out.is_dir():
        raise ReportTargetError(f"--out {out} is a directory; name the .html file")
    try:
        with out.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except FileNotFoundError:
        return
    if REPORT_MARKER.encode() not in head and _OLD_TITLE not in head:
        raise ReportTargetError(
            f"--out {out} exists and is not a loan-recovery report; refusing to overwrite it: "
            "choose another --out or move the file away"
        )


def _write_file(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _publish(out: Path, text: str) -> None:
    """Write ``text`` under a scratch name beside ``out``, then rename it over ``out``.

    A new report gets the usual mode for the umask; a replaced one keeps the
    old one's mode, so who may read it does not change.
    """
    scratch = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        _write_file(scratch, text)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(scratch, out.stat().st_mode & 0o7777)
        os.replace(scratch, out)
    finally:
        scratch.unlink(missing_ok=True)


def write_report(database: Path, out: Path, sample_rows: int = SAMPLE_ROWS) -> Path:
    """Read ``database`` read-only and write the report to ``out``; returns ``out``.

    ``out`` is judged first (:func:`check_report_target`), before the build is
    read. The connection is closed before drawing: everything the page needs
    is in ReportData, so the file is held open only while DuckDB computes it.
    """
    check_report_target(out)
    connection = connect(database)
    try:
        # A decision run has no model card to draw: it gets a page of its own.
        decided = decision_run.read(connection)
        if decided is None:
            data = read_report_data(connection, sample_rows)
    finally:
        connection.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if decided is not None:
        _publish(out, _page(decision_run.body_html(decided, str(database))))
        return out
    facts = build_facts(data, str(database))
    _publish(out, render_html(build_figures(data), facts, data))
    return out


def _page(body: str) -> str:
    """A page without charts (the decision run's), marked as our report like every other."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"{REPORT_MARKER}<title>Loan-recovery report</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
