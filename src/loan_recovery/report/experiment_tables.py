"""The experiment's numbers as tables, and every assumption the money rests on, flagged.

- challenger results: one row per cycle and cell of ``main.challenger_results``
  (decided, resolved, loss rate, lift with its 95 % interval, loans needed);
- action effects: one row per action of ``main.action_effects``: its source
  (learned, prior, baseline), the randomised outcomes it has and needs, the
  measured effect with its interval only when the build has one, and the
  effect the expected values used. A prior effect says "assumption" and the
  measured column says it is not learned: the page never shows a learned
  number the build does not have;
- assumptions: every number the expected values assume rather than
  measure, from ``main.run_settings`` (action costs, settlement haircut,
  partial recovery share, the prior effects, with whether each prior is
  in use this cycle).

Pure: :class:`ReportData` in, HTML out.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from loan_recovery.report.decision_summary import is_missing, money
from loan_recovery.report.queries import ReportData

ASSUMPTION = "assumption"


def _table(css: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _rate(value: object) -> str:
    return "-" if is_missing(value) else f"{float(value):.1%}"  # type: ignore[arg-type]


def _points(value: object) -> str:
    return "-" if is_missing(value) else f"{float(value):+.1%}"  # type: ignore[arg-type]


def challenger_rows(data: ReportData) -> list[list[str]]:
    """challenger_results, one row per cycle and cell, in words."""
    rows = []
    for row in data.challenger_results.itertuples():
        if row.cell == "champion":
            lift = "the reference"
        elif is_missing(row.lift_vs_champion):
            lift = "no outcomes yet"
        else:
            lift = (
                f"{_points(row.lift_vs_champion)} ({_points(row.lift_ci_low)} to "
                f"{_points(row.lift_ci_high)})"
            )
        rows.append(
            [
                str(row.as_of_date)[:10],
                str(row.cell),
                f"{int(row.decided_loans):,}",
                f"{int(row.resolved_loans):,}",
                _rate(row.loss_rate),
                lift,
                "-" if is_missing(row.loans_needed) else f"{int(row.loans_needed):,}",
            ]
        )
    return rows


def effect_rows(data: ReportData) -> list[list[str]]:
    """action_effects, one row per action; a prior effect is an assumption, never 'measured'."""
    rows = []
    for row in data.action_effects.itertuples():
        needed = int(row.min_randomised_outcomes)
        outcomes = (
            "-" if is_missing(row.randomised_outcomes) else f"{int(row.randomised_outcomes):,}"
        )
        if row.source == "baseline":
            measured, in_use = "the baseline", "0 (baseline)"
        elif row.source == "learned":
            measured = (
                f"{_points(row.measured_effect)} ({_points(row.measured_effect_ci_low)} to "
                f"{_points(row.measured_effect_ci_high)})"
            )
            in_use = f"{_points(row.effect_in_use)} learned"
        else:
            measured = f"not learned: {outcomes} of {needed:,} randomised outcomes"
            in_use = f"{_points(row.effect_in_use)} {ASSUMPTION} (prior)"
        rows.append(
            [str(row.strategy_code), str(row.source), f"{outcomes} / {needed:,}", measured, in_use]
        )
    return rows


def assumption_rows(data: ReportData) -> list[list[str]]:
    """Every assumed number of run_settings the expected values use, with its var."""
    settings = data.settings
    prior = set(data.action_effects.loc[data.action_effects["source"] == "prior", "strategy_code"])
    rows = [
        [f"cost of {code}", money(settings.get(f"{code}_cost")), f"action_costs.{code}", ASSUMPTION]
        for code in data.strategy_order[::-1]
    ]
    rows.append(
        [
            "settlement haircut",
            _rate(settings.get("settlement_haircut")),
            "settlement_haircut",
            ASSUMPTION,
        ]
    )
    rows.append(
        [
            "partial recovery share",
            _rate(settings.get("partial_recovery_share")),
            "partial_recovery_share",
            ASSUMPTION,
        ]
    )
    for code in ("settlement", "legal"):
        used = "in use this cycle" if code in prior else "not in use (learned)"
        rows.append(
            [
                f"prior effect of {code}",
                _points(settings.get(f"{code}_prior_effect")),
                f"prior_action_effects.{code}",
                f"{ASSUMPTION}, {used}",
            ]
        )
    return rows


def render_challenger_table(data: ReportData) -> str:
    return _table(
        "numbers challenger",
        (
            "Cycle",
            "Cell",
            "Decided",
            "Resolved",
            "Loss rate",
            "Lift vs champion (95 %)",
            "Loans needed",
        ),
        challenger_rows(data),
    )


def render_effects_table(data: ReportData) -> str:
    return _table(
        "numbers effects",
        ("Action", "Source", "Randomised outcomes / needed", "Measured effect (95 %)", "Used"),
        effect_rows(data),
    )


def render_assumptions_table(data: ReportData) -> str:
    return _table(
        "numbers assumptions",
        ("Assumed number", "Value", "Var (run_settings)", "Flag"),
        assumption_rows(data),
    )
