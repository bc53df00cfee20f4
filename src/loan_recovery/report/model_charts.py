"""Charts of what the models produced: segment profiles, risk scores, strategies per segment.

The segment profiles are coloured by z-score against the whole book (not
against the few segment means), so a difference that is small for a borrower
stays pale however the segments rank on it. The risk score histogram says on
its axis which score risk_score is in this build (score_source), and draws
the thresholds from ``main.run_settings``, the ones the strategy CASE
applied, and colours each bin by the strategy the mart assigned: the report
shows the assignment, it never recomputes it. The model card, about the
model rather than the loans, is in ``model_card``.

Pure: :class:`ReportData` in, a plotly figure out.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loan_recovery.report.queries import RISK_SCORE_BINS, ReportData, profile_features
from loan_recovery.report.style import (
    BAR_COLOR,
    base_layout,
    legend_below,
    ordered,
    strategy_colors,
    vline,
    wrap_label,
)

FEATURE_LABELS = {
    "age": "Age (years)",
    "monthly_income": "Monthly income (currency units)",
    "loan_amount": "Loan amount (currency units)",
    "loan_tenure": "Loan tenure (months)",
    "interest_rate": "Interest rate (%)",
    "collateral_value": "Collateral value (currency units)",
    "outstanding_loan_amount": "Outstanding amount (currency units)",
    "monthly_emi": "Monthly EMI (currency units)",
    "num_missed_payments": "Missed payments (count)",
    "days_past_due": "Days past due (days)",
    "emi_to_income_ratio": "EMI / monthly income (ratio)",
    "outstanding_share_of_loan": "Outstanding / loan amount (share)",
}


def format_value(value: float) -> str:
    """Readable original units: thousands separators for money, decimals for small numbers."""
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def segment_labels(segments: pd.DataFrame) -> list[str]:
    """'1. Name' labels, marking the high-risk segments that form the risk model's label."""
    return [
        wrap_label(
            f"{row.segment_id}. {row.segment_name}" + (" (high risk)" if row.is_high_risk else "")
        )
        for row in segments.itertuples()
    ]


def profile_z_scores(data: ReportData) -> pd.DataFrame:
    """(segment mean - mean of all loans) / standard deviation of all loans; features x segments.

    The book's spread is also the scale KMeans clustered on.
    """
    segments = data.segments.sort_values("segment_id")
    stats = data.feature_stats.set_index("feature")
    features = [f for f in profile_features() if f"mean_{f}" in segments.columns]
    means = segments.set_index("segment_id")[[f"mean_{f}" for f in features]].T
    means.index = features
    std = stats.loc[features, "std"].where(stats.loc[features, "std"] > 0)
    return means.sub(stats.loc[features, "mean"], axis=0).div(std, axis=0).fillna(0.0)


def segment_profiles_figure(data: ReportData) -> go.Figure:
    """Segment sizes above a heatmap of feature means, coloured by z-score against the book."""
    segments = data.segments.sort_values("segment_id")
    z = profile_z_scores(data)
    features = list(z.index)
    means = segments[[f"mean_{f}" for f in features]].to_numpy(dtype=float).T
    labels = segment_labels(segments)
    fig = make_subplots(
        rows=2, cols=1, row_heights=[0.2, 0.8], shared_xaxes=True, vertical_spacing=0.03
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=segments["loan_count"],
            marker_color=BAR_COLOR,
            text=[
                f"{int(n):,} ({share:.0%})"
                for n, share in zip(segments["loan_count"], segments["share_of_loans"], strict=True)
            ],
            textposition="auto",
            showlegend=False,
            name="loans",
            hovertemplate="%{x}: %{y:,} loans<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Heatmap(
            z=z.to_numpy(),
            x=labels,
            y=[FEATURE_LABELS.get(f, f.replace("_", " ").capitalize()) for f in features],
            text=[[format_value(v) for v in row] for row in means],
            texttemplate="%{text}",
            colorscale="RdBu_r",
            zmid=0,
            colorbar={"title": {"text": "z-score"}, "len": 0.75, "y": 0, "yanchor": "bottom"},
            hovertemplate="%{x}<br>%{y}: mean %{text}<br>z = %{z:.2f}<extra></extra>",
            meta=features,  # the column behind each row, for tests
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="Loans (count)", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_xaxes(side="bottom", row=2, col=1)
    return base_layout(
        fig,
        "Borrower segment profiles and sizes",
        "Cells: segment mean in original units; colour: (segment mean - mean of all loans) / "
        "standard deviation of all loans. Exact, from borrower_segments and int_loan_features.",
        820,
        l=250,
    )


def strategy_names(data: ReportData) -> dict[str, str]:
    """Legend names: 'code: the catalogue's description of the strategy'."""
    frame = data.strategy_segments.drop_duplicates("strategy_code")
    return {
        row.strategy_code: f"{row.strategy_code}: {row.recovery_strategy}"
        for row in frame.itertuples()
    }


RISK_SCORE_AXIS = {
    "outcome": "Risk score = loss probability (outcome model, calibrated, 0 to 1)",
    "segment": (
        "Risk score = the write-up's segment score (0 to 1, resemblance to high-risk segments)"
    ),
}


def risk_score_axis_title(data: ReportData) -> str:
    """What risk_score is in this build, from recovery_strategies.score_source."""
    sources = list(dict.fromkeys(data.score_sources["score_source"]))
    if len(sources) == 1 and sources[0] in RISK_SCORE_AXIS:
        return RISK_SCORE_AXIS[sources[0]]
    return f"Risk score (0 to 1; score_source: {', '.join(map(str, sources))})"


def risk_score_figure(data: ReportData) -> go.Figure:
    """Stacked exact histogram of risk scores by assigned strategy, with both thresholds drawn."""
    bins = data.risk_score_bins
    width = 1.0 / RISK_SCORE_BINS
    names = strategy_names(data)
    fig = go.Figure()
    colors = strategy_colors(data.strategy_ranks)
    for code in ordered(bins["strategy_code"], data.strategy_order):
        rows = bins[bins["strategy_code"] == code]
        fig.add_trace(
            go.Bar(
                x=rows["bin_start"] + width / 2,
                y=rows["loans"],
                width=width * 0.95,
                name=f"{names.get(code, code)} ({int(rows['loans'].sum()):,} loans)",
                meta=code,
                marker_color=colors.get(code),
                customdata=rows["bin_start"],
                hovertemplate=f"{code}<br>score %{{customdata:.3f}} to +{width:.3f}: "
                "%{y:,} loans<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    legal, settlement = data.legal_threshold, data.settlement_threshold
    # Labels at two heights, so they stay readable when the thresholds are close.
    vline(fig, settlement, "settlement_threshold", f" settlement from {settlement:.2f}", y=0.9)
    vline(fig, legal, "legal_threshold", f" legal above {legal:.2f}", y=1.0)
    fig.update_xaxes(title_text=risk_score_axis_title(data), range=[0, 1])
    fig.update_yaxes(title_text="Loans (count)")
    fig = base_layout(
        fig,
        "Risk score distribution with the strategy thresholds",
        f"{data.worked_description.capitalize()}, exact counts in bins of {width:g}; "
        f"colour: strategy assigned in recovery_strategies; lines: main.run_settings.",
        500,
        b=120,
    )
    return legend_below(fig, -0.25)


def strategy_segment_figure(data: ReportData) -> go.Figure:
    """Stacked bars of loans and outstanding amount per segment and strategy (exact sums)."""
    frame = data.strategy_segments
    names = strategy_names(data)
    segments = frame.drop_duplicates("segment_id").sort_values("segment_id")
    labels = [
        wrap_label(f"{row.segment_id}. {row.segment_name}", 14) for row in segments.itertuples()
    ]
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Loans", "Outstanding amount"), horizontal_spacing=0.1
    )
    colors = strategy_colors(data.strategy_ranks)
    for code in ordered(frame["strategy_code"], data.strategy_order):
        rows = frame[frame["strategy_code"] == code].set_index("segment_id")
        for col, column in ((1, "loans"), (2, "outstanding")):
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=[float(rows[column].get(s, 0)) for s in segments["segment_id"]],
                    name=names[code],
                    legendgroup=code,
                    showlegend=col == 1,
                    marker_color=colors.get(code),
                    meta=code,
                    hovertemplate=f"{code}<br>%{{x}}: %{{y:,.0f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title_text="Loans (count)", row=1, col=1)
    fig.update_yaxes(title_text="Outstanding amount (currency units)", row=1, col=2)
    fig.update_xaxes(title_text="Segment", tickangle=0, tickfont={"size": 11})
    fig = base_layout(
        fig,
        "Loans and outstanding amount per strategy and segment",
        f"{data.worked_description.capitalize()}, exact counts and sums from recovery_strategies.",
        620,
        b=170,
    )
    return legend_below(fig, -0.32)
