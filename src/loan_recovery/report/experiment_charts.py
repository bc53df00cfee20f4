"""The experiment and the trend: did the challenger do better, what do actions do, and the trend.

- lift: per decision cycle and cell, the cell's loss rate minus the
  champion cell's with its 95 % interval (``main.challenger_results``);
  a cell whose decisions have not resolved yet is named, not drawn;
- trend: per cycle, the amount at risk each strategy was given and how the
  cycle's decisions have resolved so far (``main.cycle_trend``);
- action effects: per action, the change in P(full recovery) against
  reminders the expected values use (``main.action_effects``). A learned
  effect is drawn with its measured 95 % interval; a prior one is drawn
  hatched and labelled an assumption, and no measured number is drawn for
  it, because the build has none.

Pure: :class:`ReportData` in, a plotly figure out.
"""

from __future__ import annotations

import plotly.graph_objects as go

from loan_recovery.report.decision_summary import is_missing
from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import base_layout, legend_below, note, strategy_colors

CELL_COLORS = {"challenger": "#e69f00", "explore": "#4c78a8"}
ASSUMED = "assumed (prior)"


def lift_figure(data: ReportData) -> go.Figure:
    """Each non-champion cell's lift over the champion per cycle, with its 95 % interval."""
    results = data.challenger_results
    cells = results[results["cell"] != "champion"]
    fig = go.Figure()
    waiting = []
    for cell in sorted(cells["cell"].unique()):
        rows = cells[cells["cell"] == cell]
        drawn = rows[~rows["lift_vs_champion"].isna()]
        waiting += [
            f"{str(row.as_of_date)[:10]} {cell}"
            for row in rows.itertuples()
            if is_missing(row.lift_vs_champion)
        ]
        if drawn.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=[str(d)[:10] for d in drawn["as_of_date"]],
                y=drawn["lift_vs_champion"],
                mode="markers+text",
                name=f"{cell} minus champion",
                meta=cell,
                marker={"size": 11, "color": CELL_COLORS.get(cell)},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": drawn["lift_ci_high"] - drawn["lift_vs_champion"],
                    "arrayminus": drawn["lift_vs_champion"] - drawn["lift_ci_low"],
                },
                text=[
                    f"{lift:+.1%}"
                    + ("" if is_missing(needed) else f"<br>needs {int(needed):,} loans")
                    for lift, needed in zip(
                        drawn["lift_vs_champion"], drawn["loans_needed"], strict=True
                    )
                ],
                textposition="middle right",
                customdata=drawn[["resolved_loans", "lift_ci_low", "lift_ci_high"]],
                hovertemplate="%{x}: lift %{y:+.1%} (95 %: %{customdata[1]:+.1%} to "
                "%{customdata[2]:+.1%}), %{customdata[0]:,} resolved<extra>%{fullData.name}"
                "</extra>",
            )
        )
    fig.add_hline(y=0, line={"color": "#333", "dash": "dash", "width": 1.5})
    if not fig.data:
        # An empty trace keeps the axes (plotly draws none without data); the note says why.
        fig.add_trace(go.Scatter(x=[], y=[], mode="markers", name="no lift yet", meta="none"))
        note(fig, "no_outcomes", "no cell's decisions have resolved yet: no lift to measure")
    fig.update_xaxes(title_text="Decision cycle (as-of date)", type="category")
    fig.update_yaxes(title_text="Lift: loss rate minus the champion's (negative is better)")
    fig.update_yaxes(tickformat="+.0%")
    waiting_words = f" Not resolved yet: {', '.join(waiting)}." if waiting else ""
    fig = base_layout(
        fig,
        "Champion against challenger: lift in loss rate with its 95 % interval",
        "From challenger_results: each cell's resolved decisions per cycle; the interval is "
        "Newcombe's; 'needs' is the resolved loans the cell would need for the interval to "
        f"exclude zero.{waiting_words}",
        460,
    )
    return legend_below(fig, -0.2)


def trend_figure(data: ReportData) -> go.Figure:
    """Per cycle: amount at risk per assigned strategy, and its decisions' loss rate so far."""
    trend = data.cycle_trend
    cycles = [str(d)[:10] for d in trend["as_of_date"]]
    colors = strategy_colors(data.strategy_ranks)
    fig = go.Figure()
    for code in data.strategy_order:
        column = f"{code}_amount_at_risk"
        if column not in trend.columns:
            continue
        fig.add_trace(
            go.Bar(
                x=cycles,
                y=trend[column].fillna(0),
                name=f"{code}: amount at risk",
                meta=code,
                marker_color=colors.get(code),
                customdata=trend[f"{code}_loans"],
                hovertemplate=f"{code}<br>%{{x}}: %{{y:,.0f}} at risk, "
                "%{customdata:,} loans<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.add_trace(
        go.Scatter(
            x=cycles,
            y=list(trend["amount_at_risk"].fillna(0)),
            mode="text",
            text=[
                f"loss so far {rate:.0%} of {int(n):,}" if not is_missing(rate) else "none resolved"
                for rate, n in zip(trend["loss_rate_so_far"], trend["resolved_loans"], strict=True)
            ],
            textposition="top center",
            showlegend=False,
            meta="resolved",
            hoverinfo="skip",
        )
    )
    fig.update_xaxes(title_text="Decision cycle (as-of date)", type="category")
    fig.update_yaxes(title_text="Amount at risk (currency units)")
    fig = base_layout(
        fig,
        "Cycle trend: money at risk per strategy, and how each cycle's decisions resolved",
        f"From cycle_trend: {len(trend):,} cycle(s) logged in this file; the text is the share "
        "of the cycle's resolved decisions not fully recovered so far.",
        460,
    )
    return legend_below(fig, -0.2)


def effects_figure(data: ReportData) -> go.Figure:
    """Per action, the effect in use against reminders: learned with its interval, or assumed."""
    effects = data.action_effects
    actions = effects[effects["source"] != "baseline"]
    fig = go.Figure()
    for source in ("learned", "prior"):
        rows = actions[actions["source"] == source]
        if rows.empty:
            continue
        learned = source == "learned"
        fig.add_trace(
            go.Bar(
                x=list(rows["strategy_code"]),
                y=rows["measured_effect"] if learned else rows["prior_effect"],
                name="learned from the explore cell" if learned else ASSUMED,
                meta=source,
                marker={
                    "color": "#2e8b57" if learned else "#bbbbbb",
                    "pattern": {"shape": "" if learned else "/"},
                },
                error_y=(
                    {
                        "type": "data",
                        "symmetric": False,
                        "array": rows["measured_effect_ci_high"] - rows["measured_effect"],
                        "arrayminus": rows["measured_effect"] - rows["measured_effect_ci_low"],
                    }
                    if learned
                    else None
                ),
                text=[
                    f"{effect:+.1%}"
                    if learned
                    else f"{effect:+.1%} {ASSUMED}<br>{int(n):,} of {int(needed):,} outcomes"
                    for effect, n, needed in zip(
                        rows["measured_effect"] if learned else rows["prior_effect"],
                        rows["randomised_outcomes"],
                        rows["min_randomised_outcomes"],
                        strict=True,
                    )
                ],
                textposition="outside",
            )
        )
    fig.add_hline(y=0, line={"color": "#333", "width": 1})
    fig.update_xaxes(title_text="Action (against reminders, the baseline)")
    fig.update_yaxes(title_text="Change in P(full recovery) (points)", tickformat="+.0%")
    fig = base_layout(
        fig,
        "What each action does to the chance of full recovery",
        "From action_effects: learned only from the explore cell's randomised outcomes, with "
        "the measured 95 % interval; an action without enough of them uses the prior "
        "(run_settings), drawn hatched and labelled an assumption.",
        420,
    )
    return legend_below(fig, -0.2)
