"""The model-monitoring chart: has the book drifted from the population the model learned on?"""

from __future__ import annotations

import plotly.graph_objects as go

from loan_recovery.config import reference
from loan_recovery.report.queries import ReportData
from loan_recovery.report.style import base_layout, note, vline

# Colours of the stability classes from the lowest PSI up; the class words
# come from var reference.psi_cutoffs, the one place they are written.
STABILITY_PALETTE = ("#4c78a8", "#e69f00", "#b22222")


def drift_figure(data: ReportData) -> go.Figure:
    """PSI per model variable, coloured by its class, with the two cut-offs drawn."""
    frame = data.monitoring.sort_values(["psi", "variable"], ascending=[True, False])
    cutoffs = reference()["psi_cutoffs"]
    classes = sorted(cutoffs, key=lambda name: float(cutoffs[name]))
    compared = str(frame["compared_with"].iloc[0]) if not frame.empty else "nothing"
    fig = go.Figure()
    for stability, color in zip(classes, STABILITY_PALETTE, strict=True):
        rows = frame[frame["stability"] == stability]
        fig.add_trace(
            go.Bar(
                x=rows["psi"],
                y=[
                    f"{name} ({kind})"
                    for name, kind in zip(rows["variable"], rows["variable_kind"], strict=True)
                ],
                orientation="h",
                name=f"{stability} ({len(rows)})",
                meta=stability,
                marker_color=color,
                customdata=rows["most_shifted_bin"],
                hovertemplate="%{y}: PSI %{x:.3f}; most moved bin %{customdata}<extra></extra>",
            )
        )
    for stability in classes[1:]:  # the lowest class starts at 0: no line
        cutoff = cutoffs[stability]
        vline(fig, float(cutoff), f"psi_{stability}", f"{stability} {cutoff}")
    if frame.empty:
        note(fig, "no_monitoring", "model_monitoring has no rows")
    fig.update_xaxes(title_text="population stability index (PSI)", rangemode="tozero")
    return base_layout(
        fig,
        "Population stability of every model variable",
        f"model_monitoring: this book against {compared}, in the bins stored with the model "
        f"({int(frame['scored_loans'].max()) if not frame.empty else 0:,} loans scored)",
        height=120 + 22 * max(len(frame), 1),
        l=240,
    )
