"""The write-up's four exploratory charts of the loan book, drawn from ``staging.stg_loans``.

Each is the write-up's chart made honest on a book of any size: bars and
boxes are exact aggregates computed in DuckDB over every loan, while the
shapes that need individual loans (violin, points) come from the
deterministic sample and say "sample of n of N loans" in the subtitle.

The three charts by recovery status show resolved loans only, and say so:
an open loan (recovery_status NULL) has no outcome yet, so it belongs to no
status. The loan amount chart shows every loan.

Pure: :class:`ReportData` in, a plotly figure out.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loan_recovery.config import category_values
from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import BAR_COLOR, STATUS_COLORS, base_layout, ordered


def sample_note(sampled: int, total: int, what: str = "loans") -> str:
    """What a point cloud shows, e.g. 'sample of 5,000 of 1,000,000 loans'."""
    if sampled >= total:
        return f"all {total:,} {what}"
    return f"sample of {sampled:,} of {total:,} {what}"


def resolved_note(data: ReportData) -> str:
    """What the status charts leave out, e.g. 'Resolved loans only (1,502 of 2,000; 498 open...'."""
    open_loans = data.loan_count - data.resolved_count
    if open_loans == 0:
        return f"All {data.loan_count:,} loans (none open)"
    return (
        f"Resolved loans only ({data.resolved_count:,} of {data.loan_count:,}; "
        f"{open_loans:,} open loans have no recovery status yet)"
    )


def resolved_sample(data: ReportData) -> pd.DataFrame:
    """The sampled loans that have a recovery status."""
    return data.sample[data.sample["recovery_status"].notna()]


def loan_amount_figure(data: ReportData) -> go.Figure:
    """Histogram (exact SQL bins) with a violin marginal, beside loan amount against income."""
    fig = make_subplots(
        rows=2,
        cols=2,
        column_widths=[0.55, 0.45],
        row_heights=[0.22, 0.78],
        specs=[[{}, {"rowspan": 2}], [{}, None]],
        vertical_spacing=0.03,
        horizontal_spacing=0.1,
        subplot_titles=("", "Loan amount against monthly income", ""),
    )
    note = sample_note(len(data.sample), data.loan_count)
    fig.add_trace(
        go.Violin(
            x=data.sample["loan_amount"],
            name="violin",
            orientation="h",
            line_color=BAR_COLOR,
            showlegend=False,
            hoverinfo="x",
            y0="violin",
        ),
        row=1,
        col=1,
    )
    bins = data.loan_amount_bins
    fig.add_trace(
        go.Bar(
            x=(bins["bin_start"] + bins["bin_end"]) / 2,
            y=bins["loans"],
            width=(bins["bin_end"] - bins["bin_start"]) * 0.95,
            customdata=bins[["bin_start", "bin_end"]],
            hovertemplate="%{customdata[0]:,.0f} to %{customdata[1]:,.0f}: %{y:,} loans"
            "<extra></extra>",
            marker_color=BAR_COLOR,
            name="loans",
            showlegend=False,
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=data.sample["monthly_income"],
            y=data.sample["loan_amount"],
            mode="markers",
            marker={"size": 4, "opacity": 0.35, "color": BAR_COLOR},
            name="loan",
            showlegend=False,
            hovertemplate="income %{x:,.0f}<br>loan %{y:,.0f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(matches="x3", showticklabels=False, row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    fig.update_xaxes(title_text="Loan amount (currency units)", row=2, col=1)
    fig.update_yaxes(title_text="Loans (count)", row=2, col=1)
    fig.update_xaxes(title_text="Monthly income (currency units)", row=1, col=2)
    fig.update_yaxes(title_text="Loan amount (currency units)", row=1, col=2)
    return base_layout(
        fig,
        "Loan amount distribution and loan amount against monthly income",
        f"Bars: all {data.loan_count:,} loans, exact counts. Violin and points: {note}.",
        560,
    )


def payment_history_figure(data: ReportData) -> go.Figure:
    """Grouped bars of exact loan counts: payment history by recovery status."""
    frame = data.payment_history
    histories = ordered(frame["payment_history"], category_values()["payment_history"])
    statuses = ordered(frame["recovery_status"], category_values()["recovery_status"])
    fig = go.Figure()
    for status in statuses:
        rows = frame[frame["recovery_status"] == status].set_index("payment_history")
        counts = [int(rows["loans"].get(h, 0)) for h in histories]
        fig.add_trace(
            go.Bar(
                x=histories,
                y=counts,
                name=status,
                marker_color=STATUS_COLORS.get(status),
                text=[f"{c:,}" for c in counts],
                textposition="outside",
                hovertemplate=f"{status}<br>%{{x}}: %{{y:,}} loans<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="Payment history")
    fig.update_yaxes(title_text="Loans (count)")
    return base_layout(
        fig,
        "Payment history by recovery status",
        f"{resolved_note(data)}, exact counts from stg_loans.",
        460,
    )


def missed_payments_figure(data: ReportData) -> go.Figure:
    """Boxes with exact quartiles over all loans, overlaid with the sampled loans as points."""
    boxes = data.missed_payment_boxes
    sample = resolved_sample(data)
    statuses = ordered(boxes["recovery_status"], category_values()["recovery_status"])
    fig = go.Figure()
    for status in statuses:
        stats = boxes[boxes["recovery_status"] == status].iloc[0]
        color = STATUS_COLORS.get(status)
        fig.add_trace(
            go.Box(
                x=[status],
                q1=[stats["q1"]],
                median=[stats["median"]],
                q3=[stats["q3"]],
                mean=[stats["mean"]],
                lowerfence=[stats["lower_fence"]],
                upperfence=[stats["upper_fence"]],
                name=status,
                marker_color=color,
                boxpoints=False,
                legendgroup=status,
            )
        )
        points = sample.loc[sample["recovery_status"] == status, "num_missed_payments"]
        fig.add_trace(
            go.Box(
                x=[status] * len(points),
                y=points,
                name=f"{status} (sampled loans)",
                boxpoints="all",
                jitter=0.6,
                pointpos=0,
                fillcolor="rgba(0,0,0,0)",
                line={"width": 0},
                marker={"color": color, "size": 3, "opacity": 0.3},
                hoveron="points",
                showlegend=False,
                legendgroup=status,
            )
        )
    fig.update_layout(boxmode="overlay", showlegend=False)
    fig.update_xaxes(title_text="Recovery status")
    fig.update_yaxes(title_text="Missed payments (count)")
    return base_layout(
        fig,
        "Missed payments by recovery status",
        f"{resolved_note(data)}. Boxes: exact quartiles from stg_loans. "
        f"Points: {sample_note(len(sample), data.resolved_count, 'resolved loans')}.",
        480,
    )


def income_vs_loan_figure(data: ReportData) -> go.Figure:
    """Sampled scatter of income against loan amount, coloured by status, sized by amount."""
    sample = resolved_sample(data)
    statuses = ordered(sample["recovery_status"], category_values()["recovery_status"])
    largest = float(sample["loan_amount"].max()) if not sample.empty else 1.0
    fig = go.Figure()
    for status in statuses:
        rows = sample[sample["recovery_status"] == status]
        fig.add_trace(
            go.Scatter(
                x=rows["monthly_income"],
                y=rows["loan_amount"],
                mode="markers",
                name=status,
                marker={
                    "color": STATUS_COLORS.get(status),
                    "size": rows["loan_amount"],
                    "sizemode": "area",
                    "sizeref": 2.0 * largest / 14**2,
                    "sizemin": 2,
                    "opacity": 0.45,
                    "line": {"width": 0},
                },
                hovertemplate="income %{x:,.0f}<br>loan %{y:,.0f}<extra>" + status + "</extra>",
            )
        )
    fig.update_xaxes(title_text="Monthly income (currency units)")
    fig.update_yaxes(title_text="Loan amount (currency units)")
    return base_layout(
        fig,
        "Monthly income against loan amount by recovery status",
        f"{resolved_note(data)}: {sample_note(len(sample), data.resolved_count, 'resolved loans')}"
        " from stg_loans; marker area proportional to loan amount.",
        560,
    )
