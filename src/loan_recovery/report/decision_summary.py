"""The first screen: this cycle in money, and what a collections manager must decide.

A manager opening the report asks, in this order: how much is at stake this
cycle and what will each team work on; what did capacity leave undone; can
the model be trusted this month (drift, the back-test); which model do I
approve; and what changed since last month. :func:`cycle_summary` answers
each from :class:`ReportData` (pure, no database), and :func:`render_summary`
draws it as the top of the page, before any chart.

Where the numbers come from:

- per strategy, this cycle's work queue (``main.collection_work_queue``,
  the worked loans after capacity): loans, amount at risk, expected
  recovery, cost and expected net recovery (docs block action_economics);
- capacity: the queue's ``capacity_limited`` loans, their amount at risk
  and ``value_given_up_to_capacity``;
- drift: the worst ``stability`` in ``main.model_monitoring``;
- the back-test: ``main.risk_model_metrics`` row of the score in use (AUC
  with its 95 % interval and the base rate, on the resolved loans);
- the model to approve: the registry id ``run_settings.model_version``
  (what ``loan-recovery models approve`` takes; every mart carries it);
- the change since the last cycle: ``main.cycle_trend``, this cycle's row
  against the latest earlier one ("first cycle" when there is none).

Action effects still assumed (``action_effects.source = 'prior'``) are named
here too: every expected value on the page rests on them.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from loan_recovery.modelling.status import FROZEN
from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import SCORE_LABELS

STABILITY_ORDER = ("stable", "moderate", "significant")
SUMMARY_COLUMNS = (
    ("loans", "Loans"),
    ("amount_at_risk", "Amount at risk"),
    ("expected_recovery", "Expected recovery"),
    ("expected_cost", "Cost"),
    ("expected_net_value", "Expected net recovery"),
    ("moved_down_loans", "Moved down by capacity"),
)


def is_missing(value: Any) -> bool:
    """None, NaN or pandas' NA: a number the build does not have."""
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def money(value: Any) -> str:
    """An amount as a manager reads it: '98.8 M' from a million up, else '595,000'; '-' if none."""
    if is_missing(value):
        return "-"
    amount = float(value)
    if abs(amount) >= 1e6:
        return f"{amount / 1e6:,.1f} M"
    return f"{amount:,.0f}"


def signed_money(value: float) -> str:
    """A change in money, with its sign ('+1.2 M', '-350,000', '0')."""
    if value == 0:
        return "0"
    return ("+" if value > 0 else "-") + money(abs(value))


def signed_count(value: int) -> str:
    return f"{value:+,}" if value else "0"


@dataclass(frozen=True)
class Fact:
    """One card of the first screen: a heading, the line that matters, details, a warning flag."""

    key: str
    heading: str
    headline: str
    details: tuple[str, ...] = ()
    warn: bool = False


@dataclass(frozen=True)
class CycleSummary:
    """The first screen's content."""

    as_of_date: str
    lede: str
    rows: pd.DataFrame
    totals: dict[str, Any]
    facts: tuple[Fact, ...]


def _date(value: Any) -> str:
    if is_missing(value):
        return "not recorded"
    return str(pd.Timestamp(value).date())


def capacity_fact(data: ReportData) -> Fact:
    """What capacity left undone: loans moved below what their cell asked for, and the value."""
    rows = data.queue_summary
    moved = int(rows["moved_down_loans"].sum())
    limits = []
    for code in ("legal", "settlement"):
        limit = data.settings.get(f"{code}_capacity")
        words = "unlimited" if limit is None or is_missing(limit) else f"{int(limit):,}"
        limits.append(f"{code} {words}")
    capacities = "capacity: " + ", ".join(limits)
    if moved == 0:
        return Fact(
            "capacity", "Capacity left undone", "nothing: no loan moved down", (capacities,)
        )
    at_risk = rows["moved_down_at_risk"].sum(min_count=1)
    given_up = rows["value_given_up"].sum(min_count=1)
    landed = [
        f"{int(row.moved_down_loans):,} now in {row.strategy_code}"
        for row in rows.itertuples()
        if row.moved_down_loans
    ]
    return Fact(
        "capacity",
        "Capacity left undone",
        f"{moved:,} loans moved down, {money(at_risk)} at risk",
        (
            f"expected net value given up: {money(given_up)}",
            "; ".join(landed),
            capacities,
        ),
        warn=True,
    )


def drift_fact(data: ReportData) -> Fact:
    """The worst population stability class of any model variable (model_monitoring)."""
    monitoring = data.monitoring
    if monitoring.empty:
        return Fact("drift", "Drift", "not measured", ("model_monitoring is empty",), warn=True)
    rank = {name: i for i, name in enumerate(STABILITY_ORDER)}
    worst = max(monitoring["stability"], key=lambda s: rank.get(str(s), len(rank)))
    top = monitoring.sort_values("psi", ascending=False).iloc[0]
    shifted = int((monitoring["stability"] != "stable").sum())
    return Fact(
        "drift",
        "Drift",
        f"{worst}",
        (
            f"largest PSI {float(top['psi']):.3f} ({top['variable']})",
            f"{shifted} of {len(monitoring)} variables not stable",
        ),
        warn=worst != "stable",
    )


def backtest_fact(data: ReportData) -> Fact:
    """The score in use judged on the resolved loans: AUC with its interval, the base rate."""
    score = data.score_in_use
    if not score or is_missing(score.get("roc_auc")):
        return Fact("backtest", "Back-test", "no resolved loans to judge the score", warn=True)
    name = SCORE_LABELS.get(str(score["score_name"]), str(score["score_name"]))
    low, high = float(score["roc_auc_ci_low"]), float(score["roc_auc_ci_high"])
    details = [
        f"95 % interval {low:.3f} to {high:.3f}",
        f"base rate {float(score['base_rate']):.1%} not fully recovered, "
        f"{int(score['evaluated_loans']):,} resolved loans",
        name,
    ]
    if data.outcome_fallback is not None:
        details.append(f"outcome model fell back: {data.outcome_fallback}")
    return Fact(
        "backtest",
        "Back-test",
        f"AUC {float(score['roc_auc']):.3f}",
        tuple(details),
        warn=low <= 0.5 or data.outcome_fallback is not None,
    )


def model_fact(data: ReportData) -> Fact:
    """The registry id a validator approves (``loan-recovery models approve``).

    ``run_settings.model_version`` is the registry id every mart carries
    (None when the outcome model fell back and nothing was saved). A frozen
    build was scored by an approved model; a trained one offers its models
    for approval, which only ``loan-recovery build`` saves to the registry.
    """
    version = data.model_version
    if version is None:
        reason = data.outcome_fallback or "no model id recorded"
        return Fact(
            "model",
            "Model to approve",
            "none saved",
            (f"nothing to approve: {reason}",),
            warn=True,
        )
    if data.score("outcome").get("model_status") == FROZEN:
        return Fact(
            "model",
            "Model",
            version,
            ("approved: it scored this cycle unchanged", "registry id (run_settings)"),
        )
    saved = (
        "saved by this build to the registry"
        if data.build_info is not None
        else "a plain dbt build: loan-recovery build saves it to the registry"
    )
    return Fact(
        "model",
        "Model to approve",
        version,
        (f"trained this cycle; {saved}", f"loan-recovery models approve {version}"),
    )


def change_fact(data: ReportData) -> Fact:
    """This cycle against the latest earlier one in cycle_trend, or 'first cycle'."""
    trend = data.cycle_trend
    as_of = pd.Timestamp(data.as_of_date) if not is_missing(data.as_of_date) else None
    if trend.empty or as_of is None:
        return Fact("change", "Since the last cycle", "first cycle", ("no earlier cycle logged",))
    dates = pd.to_datetime(trend["as_of_date"])
    earlier = trend[dates < as_of]
    current = trend[dates == as_of]
    if earlier.empty:
        return Fact("change", "Since the last cycle", "first cycle", ("no earlier cycle logged",))
    last = earlier.iloc[-1]
    details = [f"last cycle {_date(last['as_of_date'])}"]
    if current.empty:
        details.append("this cycle is not in cycle_trend")
        return Fact("change", "Since the last cycle", "not comparable", tuple(details), warn=True)
    now = current.iloc[0]
    risk_change = float(now["amount_at_risk"] or 0) - float(last["amount_at_risk"] or 0)
    headline = (
        f"{signed_count(int(now['open_loans']) - int(last['open_loans']))} open loans, "
        f"{signed_money(risk_change)} at risk"
    )
    moves = ", ".join(
        f"{code} {signed_count(int(now[f'{code}_loans']) - int(last[f'{code}_loans']))}"
        for code in data.strategy_order[::-1]
        if f"{code}_loans" in trend.columns
    )
    details.append(f"loans per strategy: {moves}")
    if str(now["drift_verdict"]) != str(last["drift_verdict"]):
        details.append(f"drift {last['drift_verdict']} -> {now['drift_verdict']}")
    if str(now["model_version"]) != str(last["model_version"]):
        details.append(f"model {last['model_version']} -> {now['model_version']}")
    resolved = int(last["resolved_loans"] or 0)
    if resolved:
        details.append(
            f"its decisions: {resolved:,} of {int(last['decided_loans']):,} resolved, "
            f"{float(last['loss_rate_so_far']):.0%} not fully recovered"
        )
    else:
        details.append("none of its decisions has resolved yet")
    return Fact("change", "Since the last cycle", headline, tuple(details))


def assumed_effects(data: ReportData) -> list[str]:
    """The actions whose effect the expected values still assume (action_effects source prior)."""
    effects = data.action_effects
    return [str(code) for code in effects.loc[effects["source"] == "prior", "strategy_code"]]


def cycle_summary(data: ReportData) -> CycleSummary:
    """The first screen's numbers and words, from ReportData."""
    rows = data.queue_summary
    totals = {
        column: rows[column].sum(min_count=1) if column != "loans" else int(rows[column].sum())
        for column, _ in SUMMARY_COLUMNS
    }
    assumed = assumed_effects(data)
    lede = (
        (
            f"{data.worked_count:,} open loans in this cycle's work queue: "
            if data.worked_count < data.loan_count
            else f"No loan is open, so all {data.worked_count:,} are in the work queue: "
        )
        + f"{money(totals['amount_at_risk'])} at risk, expected net recovery "
        f"{money(totals['expected_net_value'])} after {money(totals['expected_cost'])} of cost."
    )
    if assumed:
        lede += (
            f" The effects of {' and '.join(assumed)} are still assumptions (prior), "
            "not learned: see Action effects."
        )
    facts = (
        capacity_fact(data),
        drift_fact(data),
        backtest_fact(data),
        model_fact(data),
        change_fact(data),
    )
    return CycleSummary(_date(data.as_of_date), lede, rows, totals, facts)


def _cell(column: str, value: Any) -> str:
    if column in ("loans", "moved_down_loans"):
        return f"{int(value):,}"
    return money(value)


def render_summary(summary: CycleSummary) -> str:
    """The first screen as HTML: the heading with the cycle, the money table, the fact cards."""
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label in SUMMARY_COLUMNS)
    body = "".join(
        f'<tr data-strategy="{html.escape(str(row["strategy_code"]))}">'
        f"<th>{html.escape(str(row['strategy_code']))}"
        f'<span class="sub">{html.escape(str(row["recovery_strategy"]))}</span></th>'
        + "".join(
            f'<td data-column="{column}">{_cell(column, row[column])}</td>'
            for column, _ in SUMMARY_COLUMNS
        )
        + "</tr>"
        for _, row in summary.rows.iterrows()
    )
    total = "".join(
        f'<td data-column="{column}">{_cell(column, summary.totals[column])}</td>'
        for column, _ in SUMMARY_COLUMNS
    )
    cards = "".join(
        f'<div class="card{" warn" if fact.warn else ""}" data-fact="{fact.key}">'
        f"<h4>{html.escape(fact.heading)}</h4>"
        f'<p class="headline">{html.escape(fact.headline)}</p>'
        + "".join(f"<p>{html.escape(line)}</p>" for line in fact.details if line)
        + "</div>"
        for fact in summary.facts
    )
    return (
        '<section id="cycle_summary" class="summary">'
        f"<h1>Loan-recovery report: cycle {html.escape(summary.as_of_date)}</h1>"
        f'<p class="lede">{html.escape(summary.lede)}</p>'
        '<table class="money" id="cycle-money"><thead><tr><th>Strategy</th>'
        f"{header}</tr></thead><tbody>{body}"
        f'<tr class="total" data-strategy="all"><th>All</th>{total}</tr></tbody></table>'
        '<p class="source">From collection_work_queue (after capacity); money in the book\'s '
        "currency, expected values from run_settings' assumed costs, haircut and partial share "
        "(see Assumptions).</p>"
        f'<div class="cards">{cards}</div></section>'
    )
