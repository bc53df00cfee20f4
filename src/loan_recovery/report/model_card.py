"""The model card: what the risk score reproduces, and whether it ranks the actual outcome.

A chart of its own, apart from the loan charts, because it is about the
model, not the book: a table of ``main.risk_model_metrics`` beside the two
ROC AUCs against chance, and a sentence whose wording follows the numbers.
The AUC against the label (membership of a high-risk segment) is shown next
to the AUC against what actually happened because the first alone reads as
a good model, while the label is the segmentation the forest learned to
reproduce; near 0.5 the second says the score does not rank recovery.

Pure: :class:`ReportData` in, a plotly figure out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import BAR_COLOR, base_layout, vline


def model_card_sentence(label_auc: float, outcome_auc: float) -> str:
    """What the two AUCs mean, in words that follow the numbers."""
    if label_auc >= 0.9:
        label = f"label AUC {label_auc:.3f}: the forest reproduces the segmentation"
    else:
        label = f"label AUC {label_auc:.3f}: the forest only partly reproduces the segmentation"
    if abs(outcome_auc - 0.5) < 0.05:
        outcome = (
            f"outcome AUC {outcome_auc:.3f} is near 0.5: the score does not rank recovery, "
            "so read it as resemblance to the high-risk segments, not as a chance of loss"
        )
    elif outcome_auc > 0.5:
        outcome = f"outcome AUC {outcome_auc:.3f}: the score ranks recovery better than chance"
    else:
        outcome = (
            f"outcome AUC {outcome_auc:.3f}: the score ranks recovery worse than chance "
            "(higher scores recover more often)"
        )
    return f"Out of bag, {label}; {outcome}."


def _metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Model version", str(metrics["model_version"])),
        ("Scored loans", f"{int(metrics['scored_loans']):,}"),
        ("Training rows (out-of-bag)", f"{int(metrics['training_rows']):,}"),
        ("Label base rate (high-risk segment)", f"{float(metrics['label_base_rate']):.1%}"),
        ("Out-of-bag ROC AUC vs label", f"{float(metrics['oof_roc_auc_label']):.3f}"),
        ("Out-of-bag accuracy vs label (at 0.5)", f"{float(metrics['oof_accuracy_label']):.3f}"),
        ("Out-of-bag Brier score vs label", f"{float(metrics['oof_brier_label']):.3f}"),
        ("Outcome base rate (not fully recovered)", f"{float(metrics['outcome_base_rate']):.1%}"),
        ("ROC AUC vs actual outcome", f"{float(metrics['roc_auc_outcome']):.3f}"),
    ]


def model_card_figure(data: ReportData) -> go.Figure:
    """The model card: a metrics table, the two AUCs against chance, and what they mean."""
    metrics = data.metrics
    label_auc = float(metrics["oof_roc_auc_label"])
    outcome_auc = float(metrics["roc_auc_outcome"])
    rows = _metric_rows(metrics)
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.42, 0.58],
        specs=[[{"type": "table"}, {"type": "xy"}]],
        horizontal_spacing=0.16,
    )
    fig.add_trace(
        go.Table(
            header={"values": ["Metric", "Value"], "align": "left", "fill_color": "#eef2f7"},
            cells={"values": [list(c) for c in zip(*rows, strict=True)], "align": "left"},
            columnwidth=[3, 1.4],
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            y=["vs actual<br>outcome", "out of bag<br>vs label"],
            x=[outcome_auc, label_auc],
            orientation="h",
            marker_color=["#c0392b", BAR_COLOR],
            text=[f"{outcome_auc:.3f}", f"{label_auc:.3f}"],
            textposition="outside",
            showlegend=False,
            hovertemplate="%{y}: ROC AUC %{x:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    vline(fig, 0.5, "chance", "chance (0.5)", xanchor="center", dash="dot")
    fig.update_xaxes(
        title_text="ROC AUC (0.5 = chance, 1 = perfect ranking)", range=[0, 1.1], row=1, col=2
    )
    sentence = model_card_sentence(label_auc, outcome_auc)
    fig.add_annotation(
        text="<br>".join(textwrap.wrap(sentence[0].upper() + sentence[1:], 130)),
        xref="paper",
        yref="paper",
        x=0,
        y=-0.2,
        xanchor="left",
        yanchor="top",
        showarrow=False,
        align="left",
        font={"size": 13},
        name="meaning",
    )
    return base_layout(
        fig,
        f"Model card: risk model {metrics['model_version']}",
        "From risk_model_metrics. Label AUC: out-of-bag scores against the high-risk label; "
        "outcome AUC: every score against the actual recovery status.",
        480,
        b=110,
    )
