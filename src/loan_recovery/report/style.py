"""The look every chart shares: template, colours, category order, titles, labelled lines.

One place for it so that the charts agree (the same strategy is the same
colour on every chart, a status keeps its colour from the bars to the
points) and so that a new chart gets the house style by calling
:func:`base_layout` instead of copying layout settings.
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

TEMPLATE = "plotly_white"

STATUS_COLORS = {
    "Fully Recovered": "#2e8b57",
    "Partially Recovered": "#e69f00",
    "Written Off": "#c0392b",
}
# A strategy's colour by its strategy_rank in recovery_strategy_catalog (1 the
# least aggressive): the codes are written only in the catalog.
STRATEGY_RANK_COLORS = {1: "#4c78a8", 2: "#e69f00", 3: "#b22222"}
BAR_COLOR = "#4c78a8"
SCORE_LABELS = {
    "outcome": "Outcome model",
    "segment": "Write-up's segment score",
    "days_past_due": "Days-past-due rule",
    "base_rate": "Base rate",
}
SCORE_COLORS = {
    "outcome": "#c0392b",
    "segment": "#4c78a8",
    "days_past_due": "#7f7f7f",
    "base_rate": "#bbbbbb",
}
IN_USE_COLOR = "#c0392b"
OTHER_COLOR = "#4c78a8"
LEGEND_BELOW = {"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0, "xanchor": "left"}


SUBTITLE_WIDTH = 160  # characters per subtitle line; plotly does not wrap titles


def base_layout(fig: go.Figure, title: str, subtitle: str, height: int, **margin: int) -> go.Figure:
    """The shared look: plotly_white, a plain title with a subtitle saying what is shown.

    The subtitle is where a chart says where its data comes from and whether
    it shows every loan or a sample, so every chart has one; it is wrapped
    over lines (and the top margin grown to fit) because plotly never wraps.
    """
    lines = textwrap.wrap(subtitle, SUBTITLE_WIDTH) or [subtitle]
    top = 110 + 17 * (len(lines) - 1)
    fig.update_layout(
        template=TEMPLATE,
        title={
            "text": title,
            "subtitle": {"text": "<br>".join(lines)},
            "x": 0.01,
            "xanchor": "left",
        },
        height=height + top - 110,
        margin={"t": top, "l": 80, "r": 30, "b": 70, **margin},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
    )
    return fig


def strategy_colors(ranks: dict[str, int]) -> dict[str, str]:
    """Each strategy code's colour, from its rank in the catalog (``ReportData.strategy_ranks``)."""
    return {
        code: STRATEGY_RANK_COLORS[rank]
        for code, rank in ranks.items()
        if rank in STRATEGY_RANK_COLORS
    }


def ordered(values: pd.Series, preferred: list[str]) -> list[str]:
    """Categories in the project's canonical order, unknown ones after (sorted)."""
    present = list(dict.fromkeys(values.dropna().tolist()))
    return [v for v in preferred if v in present] + sorted(v for v in present if v not in preferred)


def wrap_label(text: str, width: int = 22) -> str:
    """Break a long category label over lines, so axis labels never overlap."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def vline(
    fig: go.Figure,
    x: float,
    name: str,
    text: str,
    xanchor: str = "left",
    y: float = 1.0,
    dash: str = "dash",
) -> None:
    """A named vertical line on the first x axis with a label above it.

    Thresholds and the chance level are drawn with this; the name lets tests
    find the line and check where it is.
    """
    fig.add_shape(
        type="line",
        name=name,
        xref="x",
        yref="y domain",
        x0=x,
        x1=x,
        y0=0,
        y1=1,
        line={"color": "#333", "dash": dash, "width": 2},
    )
    fig.add_annotation(
        x=x,
        xref="x",
        yref="y domain",
        y=y,
        yanchor="bottom",
        xanchor=xanchor,
        text=text,
        showarrow=False,
        name=name,
    )


def diagonal(fig: go.Figure, name: str, text: str, **position: int) -> None:
    """The y = x line from (0, 0) to (1, 1) as a trace, meta ``name`` (chance, calibration)."""
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name=text,
            meta=name,
            line={"color": "#333", "dash": "dot", "width": 1.5},
            hoverinfo="skip",
        ),
        **position,
    )


def note(fig: go.Figure, name: str, text: str, y: float = 0.5) -> None:
    """A named note in the middle of the plot (what is missing from this build, and why)."""
    fig.add_annotation(
        text=text,
        name=name,
        xref="paper",
        yref="paper",
        x=0.5,
        y=y,
        showarrow=False,
        font={"size": 14, "color": "#8a5300"},
        bgcolor="#fff6e5",
    )


def legend_below(fig: go.Figure, y: float) -> go.Figure:
    """Move the legend under the plot (long strategy names would cover the title)."""
    fig.update_layout(legend={**LEGEND_BELOW, "y": y})
    return fig
