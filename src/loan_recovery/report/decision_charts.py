"""The Decisions section: is the score worth acting on, and what did the strategy do with it?

- gains: per score, the cumulative share of losses captured against the
  cumulative share of resolved loans taken from the highest score down
  (``main.model_gains``), with the diagonal a random order would give;
- calibration: the outcome model's mean loss_probability against the
  observed loss rate in ten equal-width bins over the resolved loans (exact,
  computed in ``queries``), with the diagonal and each bin's loans;
- policy comparison: the loss rate of each strategy under each policy
  (``main.strategy_policy_comparison``);
- reason codes: how often each reason code is among a worked loan's
  reason_code_1..3, per strategy (``main.recovery_strategies`` where
  is_worked, the rows of ``collection_work_queue``), in the wording of
  ``main.reason_code_catalog``;
- capacity: per strategy, the worked loans the thresholds sent
  (threshold_strategy_code), the capacity (``main.run_settings``, NULL =
  unlimited), the loans assigned, and how many capacity moved down
  (capacity_limited).

When the outcome model fell back the gains, calibration and policy charts
still draw, and say what is missing and why. Pure: :class:`ReportData` in, a
plotly figure out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loan_recovery.report.queries import CALIBRATION_BINS, ReportData
from loan_recovery.report.style import (
    SCORE_COLORS,
    SCORE_LABELS,
    base_layout,
    diagonal,
    legend_below,
    note,
    ordered,
    strategy_colors,
    wrap_label,
)

GAINS_SCORES = ("outcome", "segment", "days_past_due")
# A strategy's capacity is the run_settings column <strategy_code>_capacity;
# the least aggressive strategy has none: it is where capacity moves loans to.
CAPACITY_COLUMN = "{}_capacity"
NO_PROBABILITIES = "outcome model fell back: no probabilities"


def _in_use(data: ReportData) -> str | None:
    return data.score_in_use.get("score_name")


def _label(data: ReportData, name: str) -> str:
    return SCORE_LABELS.get(name, name) + (" (in use)" if name == _in_use(data) else "")


def _fallback_note(data: ReportData, what: str) -> str:
    reason = data.outcome_fallback
    return f" Outcome model fell back ({reason}): {what}." if reason else ""


def gains_figure(data: ReportData) -> go.Figure:
    """Cumulative share of losses captured against cumulative share of loans, per score."""
    gains = data.gains
    fig = go.Figure()
    diagonal(fig, "random", "random order (diagonal)")
    for name in GAINS_SCORES:
        rows = gains[gains["score_name"] == name].sort_values("decile")
        if rows.empty:
            continue
        top = float(rows["cumulative_share_of_losses"].iloc[0])
        fig.add_trace(
            go.Scatter(
                x=[0.0, *rows["cumulative_share_of_loans"].astype(float)],
                y=[0.0, *rows["cumulative_share_of_losses"].astype(float)],
                mode="lines+markers",
                name=f"{_label(data, name)}: top decile holds {top:.0%} of losses",
                meta=name,
                line={"color": SCORE_COLORS[name], "width": 4 if name == _in_use(data) else 2},
                hovertemplate="%{x:.0%} of loans hold %{y:.0%} of losses<extra></extra>",
            )
        )
    fig.update_xaxes(
        title_text="Resolved loans taken, highest score first (cumulative share)",
        tickformat=".0%",
        range=[0, 1],
    )
    fig.update_yaxes(title_text="Losses captured (cumulative share)", tickformat=".0%")
    fig = base_layout(
        fig,
        "Back-test: gains, the share of losses each score captures",
        "From model_gains: resolved loans in deciles from the highest score down, out-of-sample "
        "scores; a curve above the diagonal ranks losses first."
        + _fallback_note(data, "no outcome curve"),
        520,
        b=130,
    )
    return legend_below(fig, -0.22)


def calibration_figure(data: ReportData) -> go.Figure:
    """Mean loss_probability against observed loss rate per bin, with the diagonal and loans."""
    bins = data.calibration
    fig = make_subplots(
        rows=2, cols=1, row_heights=[0.72, 0.28], shared_xaxes=True, vertical_spacing=0.06
    )
    diagonal(fig, "perfect", "perfectly calibrated (diagonal)", row=1, col=1)
    width = 1.0 / CALIBRATION_BINS
    if bins.empty:
        note(fig, "fallback", NO_PROBABILITIES, y=0.7)
    else:
        loans = bins["loans"].astype(float)
        fig.add_trace(
            go.Scatter(
                x=bins["mean_probability"],
                y=bins["observed_loss_rate"],
                mode="markers+text",
                meta="calibration",
                name="bin of 0.1: mean probability against loss rate",
                marker={
                    "size": 8 + 22 * np.sqrt(loans / loans.max()),
                    "color": SCORE_COLORS["outcome"],
                    "opacity": 0.8,
                },
                text=[f"{int(n):,}" for n in bins["loans"]],
                textposition="middle right",
                customdata=bins[["bin_start", "loans", "losses"]],
                hovertemplate="bin %{customdata[0]:.1f}+: %{customdata[1]:,} loans, "
                "%{customdata[2]:,} losses<br>mean probability %{x:.3f}, "
                "loss rate %{y:.3f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=bins["bin_start"] + width / 2,
                y=bins["loans"],
                width=width * 0.95,
                meta="loans",
                name="resolved loans per bin",
                marker_color="#999",
                hovertemplate="%{x:.2f}: %{y:,} loans<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(
        title_text="Loss probability (outcome model; points: bin mean, bars: bins of 0.1)",
        range=[0, 1],
        row=2,
        col=1,
    )
    fig.update_yaxes(
        title_text="Observed loss rate (share not fully recovered)", range=[0, 1], row=1, col=1
    )
    fig.update_yaxes(title_text="Loans (count)", row=2, col=1)
    resolved = int(bins["loans"].sum()) if not bins.empty else 0
    source = (
        f"{resolved:,} resolved loans in ten equal-width bins of loss_probability, exact, "
        "from recovery_strategies; numbers: loans per bin."
        if not bins.empty
        else f"No loss_probability in recovery_strategies: {NO_PROBABILITIES}."
    )
    fig = base_layout(fig, "Calibration of the outcome model", source, 620, b=120)
    return legend_below(fig, -0.16)


def policy_figure(data: ReportData) -> go.Figure:
    """Loss rate per strategy under each policy, on the resolved loans."""
    policies = data.policies
    fig = go.Figure()
    strategies = ordered(policies["strategy_code"], data.strategy_order)
    for name in GAINS_SCORES:
        rows = policies[
            (policies["policy_name"] == name) & (policies["basis"] == "back-test")
        ].set_index("strategy_code")
        if rows.empty:
            continue
        fig.add_trace(
            go.Bar(
                x=strategies,
                y=[float(rows["loss_rate"].get(code, np.nan)) for code in strategies],
                name=_label(data, name),
                meta=name,
                marker_color=SCORE_COLORS[name],
                text=[
                    f"{float(rows['loss_rate'][code]):.0%}<br>{int(rows['loans'][code]):,} loans"
                    if code in rows.index
                    else "no loans"
                    for code in strategies
                ],
                textposition="outside",
                customdata=[
                    [int(rows["loans"].get(code, 0)), float(rows["written_off_rate"].get(code, 0))]
                    for code in strategies
                ],
                hovertemplate="%{x}: %{customdata[0]:,} loans, loss rate %{y:.1%}, "
                "written off %{customdata[1]:.1%}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Strategy the policy sends a loan to (least to most severe)")
    fig.update_yaxes(
        title_text="Loss rate (share not fully recovered)", tickformat=".0%", range=[0, 1.1]
    )
    fig = base_layout(
        fig,
        "Back-test: how the resolved loans each policy would send to a strategy really ended",
        "From strategy_policy_comparison: resolved loans; the thresholds on each score, and a "
        "days-past-due rule filling legal and settlement with as many loans as the policy in use."
        + _fallback_note(data, "no outcome policy"),
        520,
        b=120,
    )
    return legend_below(fig, -0.22)


MONEY_POLICIES = {
    "assigned": "assigned this cycle (cells and capacity)",
    "thresholds": "thresholds for every loan",
    "expected_value": "expected value for every loan",
    "reminders_only": "reminders for every loan",
}


def policy_money_figure(data: ReportData) -> go.Figure:
    """Expected net recovery of this cycle's worked loans under each policy, per strategy.

    From strategy_policy_comparison's ``expected`` rows (before capacity,
    except ``assigned``), and its ``realised`` rows when earlier decisions
    have resolved: what they were expected to bring and what they brought.
    """
    policies = data.policies
    colors = strategy_colors(data.strategy_ranks)
    expected = policies[policies["basis"] == "expected"]
    realised = policies[policies["basis"] == "realised"]
    names = [name for name in MONEY_POLICIES if name in set(expected["policy_name"])]
    labels = [wrap_label(MONEY_POLICIES[name], 18) for name in names]
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.6, 0.4],
        horizontal_spacing=0.12,
        subplot_titles=("This cycle, expected", "Earlier decisions that resolved, realised"),
    )
    for code in data.strategy_order[::-1]:
        rows = expected[expected["strategy_code"] == code].set_index("policy_name")
        values = [float(rows["expected_net_value"].get(name, 0.0)) for name in names]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=code,
                meta=code,
                legendgroup=code,
                marker_color=colors.get(code),
                customdata=[int(rows["loans"].get(name, 0)) for name in names],
                hovertemplate=f"{code}<br>%{{x}}: %{{customdata:,}} loans, expected net "
                "%{y:,.0f}<extra></extra>",
            ),
            row=1,
            col=1,
        )
        done = realised[realised["strategy_code"] == code]
        if not done.empty:
            fig.add_trace(
                go.Bar(
                    x=[wrap_label(str(p), 14) for p in done["policy_name"]],
                    y=done["realised_net_value"],
                    name=code,
                    meta=f"realised:{code}",
                    legendgroup=code,
                    showlegend=False,
                    marker_color=colors.get(code),
                    customdata=done[["loans", "expected_net_value"]],
                    hovertemplate=f"{code}<br>%{{x}}: %{{customdata[0]:,}} loans, realised net "
                    "%{y:,.0f} (expected %{customdata[1]:,.0f})<extra></extra>",
                ),
                row=1,
                col=2,
            )
    totals = expected.groupby("policy_name")["expected_net_value"].sum()
    for label, name in zip(labels, names, strict=True):
        fig.add_annotation(
            x=label,
            y=float(totals.get(name, 0.0)),
            text=f"{float(totals.get(name, 0.0)) / 1e6:,.1f} M",
            showarrow=False,
            yanchor="bottom",
            xref="x",
            yref="y",
        )
    if realised.empty:
        note(fig, "no_realised", "no earlier decision has resolved yet", y=0.5)
        fig.layout.annotations[-1].update(x=0.85)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="Net recovery (currency units)", row=1, col=1)
    fig.update_yaxes(title_text="Realised net recovery (currency units)", row=1, col=2)
    fig = base_layout(
        fig,
        "Policies in money: expected net recovery of this cycle's loans",
        f"From strategy_policy_comparison (basis expected: {data.worked_description}, each "
        "policy before capacity except 'assigned'; basis realised: earlier cycles' decisions "
        "whose loans resolved, at their own cycle's economics). Costs, haircut and partial "
        "share are assumptions (see Assumptions).",
        520,
        b=130,
    )
    return legend_below(fig, -0.25)


def worked_note(data: ReportData) -> str:
    """Which loans the reason-code and capacity charts count (is_worked)."""
    return data.worked_description


def reason_codes_figure(data: ReportData) -> go.Figure:
    """How often each reason code is among reason_code_1..3, per strategy."""
    frame = data.reason_codes
    catalog = dict(
        zip(data.reason_catalog["reason_code"], data.reason_catalog["reason"], strict=True)
    )
    codes = frame.groupby("reason_code")["loans"].sum().sort_values(ascending=True).index.tolist()
    labels = [
        wrap_label(f"{code}: {catalog.get(code, 'not in reason_code_catalog')}", 40)
        for code in codes
    ]
    fig = go.Figure()
    colors = strategy_colors(data.strategy_ranks)
    for strategy in ordered(frame["strategy_code"], data.strategy_order):
        rows = frame[frame["strategy_code"] == strategy].set_index("reason_code")
        total = int(rows["strategy_loans"].iloc[0])
        counts = [int(rows["loans"].get(code, 0)) for code in codes]
        fig.add_trace(
            go.Bar(
                y=labels,
                x=[count / total for count in counts],
                orientation="h",
                name=f"{strategy} ({total:,} worked loans)",
                meta=strategy,
                customdata=[[code, count] for code, count in zip(codes, counts, strict=True)],
                marker_color=colors.get(strategy),
                text=[f"{count:,}" if count else "" for count in counts],
                textposition="outside",
                hovertemplate="%{customdata[0]}: %{customdata[1]:,} loans (%{x:.1%})"
                f"<extra>{strategy}</extra>",
            )
        )
    if frame.empty:
        note(fig, "no_reasons", "No worked loan has a risk-raising reason code")
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Loans with the reason (share of the strategy's loans)")
    fig.update_xaxes(tickformat=".0%")
    fig.update_yaxes(title_text="Reason code (wording from reason_code_catalog)")
    fig = base_layout(
        fig,
        "Reason codes per strategy",
        f"From recovery_strategies, {worked_note(data)}, the rows of collection_work_queue: "
        "a loan counts once per code among its reason_code_1..3 (up to three risk-raising "
        "ones, or R00 alone when none raises the risk); numbers: loans. "
        "Wording from reason_code_catalog.",
        max(460, 160 + 22 * len(codes) * max(1, frame["strategy_code"].nunique())),
        l=320,
    )
    return legend_below(fig, -0.1)


def capacity_of(data: ReportData, strategy: str) -> int | None:
    """The strategy's capacity from run_settings; None is unlimited (NULL, or no such column)."""
    value = data.settings.get(CAPACITY_COLUMN.format(strategy))
    return None if value is None or pd.isna(value) else int(value)


def capacity_figure(data: ReportData) -> go.Figure:
    """Per strategy: worked loans the thresholds sent, the capacity, assigned, moved down."""
    frame = data.capacity.set_index("strategy_code")
    strategies = data.strategy_order + sorted(set(frame.index) - set(data.strategy_order))
    colors = strategy_colors(data.strategy_ranks)
    sent = [int(frame["threshold_loans"].get(code, 0)) for code in strategies]
    assigned = [int(frame["assigned_loans"].get(code, 0)) for code in strategies]
    moved = [int(frame["moved_down"].get(code, 0)) for code in strategies]
    capacities = [capacity_of(data, code) for code in strategies]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=strategies,
            y=sent,
            name="sent by the thresholds (threshold_strategy_code)",
            meta="threshold",
            marker_color="#bbbbbb",
            text=[f"{n:,} sent<br>{m:,} moved down" for n, m in zip(sent, moved, strict=True)],
            textposition="outside",
            customdata=moved,
            hovertemplate="%{x}: the thresholds sent %{y:,}, capacity moved %{customdata:,} "
            "down<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=strategies,
            y=assigned,
            name="assigned after capacity (strategy_code)",
            meta="assigned",
            marker_color=[colors.get(code, "#4c78a8") for code in strategies],
            text=[f"{n:,} assigned" for n in assigned],
            textposition="outside",
            hovertemplate="%{x}: %{y:,} assigned<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=strategies,
            y=[float(c) if c is not None else None for c in capacities],
            mode="markers",
            name="capacity (run_settings; unlimited when NULL)",
            meta="capacity",
            marker={
                "symbol": "line-ew-open",
                "size": 70,
                "color": "#333",
                "line": {"width": 3, "color": "#333"},
            },
            customdata=["unlimited" if c is None else f"{c:,}" for c in capacities],
            hovertemplate="%{x}: capacity %{customdata}<extra></extra>",
        )
    )
    for code, capacity in zip(strategies, capacities, strict=True):
        fig.add_annotation(
            x=code,
            y=1.0,
            yref="paper",
            yanchor="bottom",
            text=f"capacity: {'unlimited' if capacity is None else f'{capacity:,}'}",
            showarrow=False,
            name=f"capacity_{code}",
            font={"size": 13},
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Strategy (least to most severe)")
    fig.update_yaxes(title_text="Worked loans (count)", rangemode="tozero")
    fig = base_layout(
        fig,
        "Capacity: worked loans the thresholds sent against what each strategy can take",
        f"From recovery_strategies, {worked_note(data)}, and legal_capacity / "
        "settlement_capacity in run_settings; a loan beyond capacity moves down one strategy "
        "(capacity_limited). Resolved loans keep the thresholds' strategy when loans are open.",
        540,
        t=140,
        b=120,
    )
    return legend_below(fig, -0.2)
