"""The model card: every score judged on the resolved loans, and the rates by gender.

``main.risk_model_metrics`` holds one row per score (the outcome model, the
write-up's segment score, a days-past-due rule and the base rate), each
judged on the build's resolved loans with out-of-sample scores. The card is a
table of every row, the AUCs with their 95 % intervals against the 0.5
chance line (the score that drove the strategy highlighted), and a sentence
whose wording follows the numbers: whether the outcome model's interval
includes 0.5, and whether it lies above the other scores' intervals. On the
write-up's public 500 loans the outcome model's interval includes 0.5, and
the sentence says so.

``main.model_fairness`` is drawn beside it: observed and predicted rates and
the strategy shares per value of each protected attribute (gender), which is
never a model feature.

Pure: :class:`ReportData` in, a plotly figure out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loan_recovery.modelling.status import MODES
from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import (
    IN_USE_COLOR,
    OTHER_COLOR,
    SCORE_LABELS,
    base_layout,
    legend_below,
    vline,
)

SCORE_NOUNS = {
    "outcome": "outcome model",
    "segment": "write-up's segment score",
    "days_past_due": "days-past-due rule",
    "base_rate": "base rate",
}
FAIRNESS_MEASURES = {
    "observed_loss_rate": "Observed loss rate<br>(resolved loans)",
    "mean_loss_probability": "Mean loss<br>probability",
    "mean_risk_score": "Mean risk score<br>(score in use)",
    "legal_share": "Share sent<br>to legal",
    "settlement_share": "Share sent<br>to settlement",
    "reminders_share": "Share sent<br>to reminders",
}


def present(value: Any) -> bool:
    """Not None, NaN or pandas NA."""
    return not pd.isna(value)


def _interval(row: Mapping[str, Any]) -> str:
    return (
        f"AUC is {float(row['roc_auc']):.3f}, 95 % interval {float(row['roc_auc_ci_low']):.3f} "
        f"to {float(row['roc_auc_ci_high']):.3f}"
    )


def _possessive(rows: list[Mapping[str, Any]]) -> str:
    return " and the ".join(f"{SCORE_NOUNS[row['score_name']]}'s" for row in rows)


def _outcome_words(outcome: Mapping[str, Any], others: list[Mapping[str, Any]]) -> str:
    low, high = float(outcome["roc_auc_ci_low"]), float(outcome["roc_auc_ci_high"])
    loans = int(outcome["evaluated_loans"])
    words = f"the outcome model's {_interval(outcome)}"
    if low <= 0.5 <= high:
        words += (
            f": the interval includes 0.5, so on these {loans:,} resolved loans it does not "
            "rank losses better than chance"
        )
    elif low > 0.5:
        words += ": above 0.5, it ranks losses better than chance"
    else:
        words += ": below 0.5, it ranks losses worse than chance"
    below = [o for o in others if float(o["roc_auc_ci_high"]) < low]
    above = [o for o in others if float(o["roc_auc_ci_low"]) > high]
    overlap = [o for o in others if o not in below and o not in above]
    if below:
        words += f"; its interval lies above the {_possessive(below)}: it ranks losses better"
    if overlap:
        words += (
            f"; its interval overlaps the {_possessive(overlap)}: these loans do not show "
            "that it ranks better"
        )
    if above:
        if len(above) > 1:
            words += f"; the {_possessive(above)} intervals lie above it: they rank losses better"
        else:
            words += f"; the {_possessive(above)} interval lies above it: it ranks losses better"
    return words


def model_card_sentence(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """What the numbers say, in words that follow them; ``scores`` keyed by score_name."""
    in_use = next((name for name, row in scores.items() if row.get("is_score_in_use")), None)
    outcome = scores.get("outcome", {})
    ranked = [
        row
        for name, row in scores.items()
        if name in ("segment", "days_past_due") and present(row.get("roc_auc"))
    ]
    parts = []
    if present(outcome.get("roc_auc")) and outcome.get("model_status") in MODES:
        parts.append(_outcome_words(outcome, ranked))
    elif outcome.get("model_status") in MODES:
        parts.append("the outcome model scored the book, but no resolved loan judges it here")
    else:
        reason = outcome.get("fallback_reason") if outcome else "no outcome row"
        reason = reason if present(reason) else "no reason recorded"
        parts.append(f"the outcome model fell back ({reason}), so it has no scores to judge")
    segment = scores.get("segment", {})
    if present(segment.get("roc_auc")):
        words = f"against the outcome the write-up's segment score's {_interval(segment)}"
        if float(segment["roc_auc_ci_low"]) <= 0.5 <= float(segment["roc_auc_ci_high"]):
            words += " (including 0.5: no better than chance)"
        if present(segment.get("label_roc_auc")):
            words += (
                f", while its label AUC {float(segment['label_roc_auc']):.3f} only says it "
                "reproduces the segmentation it learned"
            )
        parts.append(words)
    if in_use:
        parts.append(f"the strategy used the {SCORE_NOUNS.get(in_use, in_use)}")
    text = ". ".join(part[0].upper() + part[1:] for part in parts)
    return f"{text}."


def _number(value: Any, spec: str) -> str:
    return format(float(value), spec) if present(value) else "-"


def card_rows(data: ReportData) -> list[list[str]]:
    """One row of table cells per score, in the table's column order."""
    rows = []
    for row in data.scores.to_dict("records"):
        name = str(row["score_name"])
        auc = (
            f"{float(row['roc_auc']):.3f} [{float(row['roc_auc_ci_low']):.3f}, "
            f"{float(row['roc_auc_ci_high']):.3f}]"
            if present(row["roc_auc"])
            else "-"
        )
        version = str(row["model_version"]) if present(row["model_version"]) else ""
        status = str(row["model_status"]) if present(row["model_status"]) else ""
        model = " / ".join(part for part in (version, status) if part) or "-"
        rows.append(
            [
                name + (" (in use)" if row["is_score_in_use"] else ""),
                str(row["score_description"]),
                f"{int(row['evaluated_loans']):,}",
                _number(row["base_rate"], ".1%"),
                auc,
                _number(row["brier_score"], ".3f"),
                _number(row["expected_calibration_error"], ".3f"),
                _number(row["label_roc_auc"], ".3f"),
                f"{int(row['training_rows']):,}" if present(row["training_rows"]) else "-",
                "<br>".join(textwrap.wrap(model, 34)),
            ]
        )
    return rows


CARD_COLUMNS = [
    "Score",
    "What it is",
    "Loans evaluated",
    "Base rate",
    "ROC AUC [95 % interval]",
    "Brier",
    "ECE",
    "Label AUC",
    "Training rows",
    "Model version / status",
]


def model_card_figure(data: ReportData) -> go.Figure:
    """The model card: every score's metrics, the AUCs with intervals, and what they mean."""
    scores = data.scores
    rows = card_rows(data)
    fig = make_subplots(
        rows=2,
        cols=1,
        row_heights=[0.44, 0.56],
        specs=[[{"type": "table"}], [{"type": "xy"}]],
        vertical_spacing=0.05,
    )
    fig.add_trace(
        go.Table(
            header={"values": CARD_COLUMNS, "align": "left", "fill_color": "#eef2f7"},
            cells={"values": [list(c) for c in zip(*rows, strict=True)], "align": "left"},
            columnwidth=[1.3, 3, 1, 0.8, 1.7, 0.7, 0.7, 0.8, 0.9, 2.2],
        ),
        row=1,
        col=1,
    )
    in_use = scores["is_score_in_use"].fillna(False).astype(bool).tolist()
    labels = [
        SCORE_LABELS.get(name, name) + (" (in use)" if used else "")
        for name, used in zip(scores["score_name"], in_use, strict=True)
    ]
    auc = scores["roc_auc"].astype(float)
    fig.add_trace(
        go.Scatter(
            x=auc,
            y=labels,
            mode="markers+text",
            meta=scores["score_name"].tolist(),
            error_x={
                "type": "data",
                "symmetric": False,
                "array": scores["roc_auc_ci_high"].astype(float) - auc,
                "arrayminus": auc - scores["roc_auc_ci_low"].astype(float),
                "thickness": 2,
                "width": 6,
            },
            marker={
                "size": [16 if used else 11 for used in in_use],
                "color": [IN_USE_COLOR if used else OTHER_COLOR for used in in_use],
                "symbol": ["diamond" if used else "circle" for used in in_use],
            },
            text=[f"{v:.3f}" if present(v) else "no scores" for v in auc],
            textposition="top center",
            showlegend=False,
            hovertemplate="%{y}: ROC AUC %{x:.3f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    vline(fig, 0.5, "chance", "chance (0.5)", xanchor="center", dash="dot")
    fig.update_xaxes(
        title_text="ROC AUC against the outcome, with 95 % interval (0.5 = chance, 1 = perfect)",
        range=[0, 1.05],
        row=2,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    by_name = {str(row["score_name"]): row for row in scores.to_dict("records")}
    sentence = model_card_sentence(by_name)
    fig.add_annotation(
        text="<br>".join(textwrap.wrap(sentence, 150)),
        xref="paper",
        yref="paper",
        x=0,
        y=-0.1,
        xanchor="left",
        yanchor="top",
        showarrow=False,
        align="left",
        font={"size": 13},
        name="meaning",
    )
    in_use_row = data.score_in_use
    return base_layout(
        fig,
        f"Model card: {SCORE_LABELS.get(str(in_use_row.get('score_name')), 'no score')} in use "
        f"(version {in_use_row.get('model_version')})",
        "From risk_model_metrics: every score judged on the build's resolved loans with "
        "out-of-sample scores, against the outcome (not Fully Recovered); highlighted: the "
        "score that drove the strategy.",
        860,
        b=150,
    )


def fairness_figure(data: ReportData) -> go.Figure:
    """Grouped bars per protected attribute value: loss rates, scores and strategy shares."""
    frame = data.fairness
    fig = go.Figure()
    palette = ["#4c78a8", "#e69f00", "#2e8b57", "#b22222", "#7f7f7f"]
    for index, row in enumerate(frame.to_dict("records")):
        values = [row[m] for m in FAIRNESS_MEASURES]
        fig.add_trace(
            go.Bar(
                x=list(FAIRNESS_MEASURES.values()),
                y=[float(v) if present(v) else None for v in values],
                name=f"{row['protected_attribute']} {row['attribute_value']}: "
                f"{int(row['loans']):,} loans, {int(row['resolved_loans']):,} resolved",
                meta=[row["protected_attribute"], row["attribute_value"]],
                marker_color=palette[index % len(palette)],
                text=[f"{float(v):.1%}" if present(v) else "none" for v in values],
                textposition="outside",
                hovertemplate="%{x}: %{y:.1%}<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="Rate (share of loans)", tickformat=".0%", rangemode="tozero")
    fig.update_xaxes(title_text="Measure (per protected attribute value)")
    missing = (
        " Mean loss probability: none, the outcome model fell back."
        if data.outcome_fallback
        else ""
    )
    fig = base_layout(
        fig,
        "Rates by protected attribute (gender is never a model feature)",
        "From model_fairness: all loans, loss rate over the resolved ones, "
        f"risk score = the score in use.{missing}",
        480,
        b=120,
    )
    return legend_below(fig, -0.3)
