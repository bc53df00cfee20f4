"""The top of each strategy's work queue: who to call, sue or offer a settlement first, and why.

One table per strategy of ``main.collection_work_queue`` (legal first, as the
catalog ranks them), its first :data:`~loan_recovery.report.queries.QUEUE_TOP_ROWS`
rows in ``queue_rank`` order, with the reasons and the money a team lead
needs: the amount at risk, the expected net value of the assigned action,
the best action when capacity or the policy chose another, and the value
given up to capacity. The full queue is ``loan-recovery export``'s CSV files.
Pure: ReportData in, HTML out.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from loan_recovery.report.decision_summary import is_missing, money
from loan_recovery.report.queries import QUEUE_TOP_ROWS, ReportData

COLUMNS = (
    "#",
    "Loan",
    "Amount at risk",
    "Loss probability",
    "Expected net value",
    "Best action (value)",
    "Value given up to capacity",
    "Cell / policy",
    "Reasons",
    "Days past due",
)


def _reasons(row: pd.Series) -> str:
    parts = [
        f"{row[f'reason_code_{i}']} {row[f'reason_{i}']}"
        for i in (1, 2, 3)
        if not is_missing(row.get(f"reason_code_{i}"))
    ]
    return "; ".join(parts)


def _best(row: pd.Series) -> str:
    best = row.get("best_strategy_code")
    if is_missing(best):
        return "-"
    same = " (this one)" if best == row["strategy_code"] else ""
    return f"{best}{same}: {money(row['best_expected_net_value'])}"


def _probability(value: Any) -> str:
    return "-" if is_missing(value) else f"{float(value):.0%}"


def queue_rows(rows: pd.DataFrame) -> list[list[str]]:
    """The cells of one strategy's table, in queue order."""
    return [
        [
            f"{int(row['queue_rank']):,}",
            f"{row['loan_id']} ({row['borrower_id']})",
            money(row["amount_at_risk"]),
            _probability(row["loss_probability"]),
            money(row["expected_net_value"]),
            _best(row),
            money(row["value_given_up_to_capacity"])
            + (" (moved)" if row["capacity_limited"] else ""),
            f"{row['cell']} / {row['decision_policy']}",
            _reasons(row),
            f"{int(row['days_past_due']):,}",
        ]
        for _, row in rows.sort_values("queue_rank").iterrows()
    ]


def render_work_queue(data: ReportData) -> str:
    """One table per strategy, the first QUEUE_TOP_ROWS loans of each, with a caption."""
    totals = data.queue_summary.set_index("strategy_code")["loans"]
    header = "".join(f"<th>{html.escape(name)}</th>" for name in COLUMNS)
    tables = []
    for code in data.strategy_order[::-1]:
        rows = data.queue_top[data.queue_top["strategy_code"] == code]
        total = int(totals.get(code, 0))
        caption = (
            f"{code}: the first {len(rows):,} of {total:,} loans"
            if total > len(rows)
            else f"{code}: all {total:,} loans"
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
            for cells in queue_rows(rows)
        )
        if not body:
            body = f'<tr><td colspan="{len(COLUMNS)}">no loans this cycle</td></tr>'
        tables.append(
            f'<table class="queue" data-strategy="{html.escape(code)}">'
            f"<caption>{html.escape(caption)}</caption>"
            f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"
        )
    return (
        f'<p class="source">From collection_work_queue, in queue_rank order (the first '
        f"{QUEUE_TOP_ROWS} per strategy); every row: <code>loan-recovery export</code>.</p>"
        + "".join(tables)
    )
