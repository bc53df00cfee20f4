"""One offline HTML report of the loan-recovery analysis, read from the built DuckDB file.

The module has three layers, so that tests can check every chart against SQL:

1. queries (``read_build_facts``, ``read_report_data``): DuckDB does every
   count, sum, quartile and histogram bin over all loans, so the numbers are
   exact on a book of any size; only point clouds use a sample, a
   deterministic one (lowest hash of ``loan_id``), and each chart says so;
2. pure figure builders (``build_figures_from``): plain data in, plotly
   figures out, no database;
3. ``render_html``: one self-contained page, plotly.js embedded once in the
   head, nothing fetched from any network.

``build_info`` (written by ``loan-recovery build``) is optional: without it,
or when it describes another build, the header falls back to the marts and
the ``dbt_project.yml`` vars, and says which source each fact came from.
"""

from __future__ import annotations

import html
import json
import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from loan_recovery.config import category_values, cluster_features, project_dir, project_vars

T = TypeVar("T")

TEMPLATE = "plotly_white"
SAMPLE_ROWS = 5_000
RISK_SCORE_BINS = 40
LOAN_AMOUNT_TARGET_BINS = 40
SAMPLE_SALT = "loan-recovery-report"

# What the report reads: the exposure in models/marts/_exposures.yml lists
# exactly these (build_info is not a dbt node and is optional).
REPORT_RELATIONS = (
    "stg_loans",
    "quarantined_loans",
    "int_loan_features",
    "borrower_segments",
    "recovery_strategies",
    "risk_model_metrics",
)
BUILD_INFO = "build_info"

# Chart key -> (heading, the question the chart answers). The order is the page order.
CHARTS: dict[str, tuple[str, str]] = {
    "loan_amount_distribution": (
        "Loan amounts",
        "How are loan amounts distributed, and do larger loans go to higher incomes?",
    ),
    "payment_history_by_status": (
        "Payment history by recovery status",
        "Do borrowers who paid on time recover fully more often than those who delayed or missed?",
    ),
    "missed_payments_by_status": (
        "Missed payments by recovery status",
        "Do loans that end partially recovered or written off have more missed payments?",
    ),
    "income_vs_loan_by_status": (
        "Monthly income against loan amount by recovery status",
        "Does the outcome depend on how large the loan is relative to the borrower's income?",
    ),
    "segment_profiles": (
        "Borrower segments",
        "What distinguishes each segment from the whole book, and how large is each one?",
    ),
    "risk_score_distribution": (
        "Risk score distribution and strategy thresholds",
        "How are risk scores spread, and where do the thresholds cut the book into strategies?",
    ),
    "strategy_by_segment": (
        "Strategies per segment",
        "How many loans, and how much outstanding money, go to each strategy in each segment?",
    ),
    "model_card": (
        "Model card",
        "What does the risk score reproduce, and does it rank the actual recovery outcome?",
    ),
}

STATUS_COLORS = {
    "Fully Recovered": "#2e8b57",
    "Partially Recovered": "#e69f00",
    "Written Off": "#c0392b",
}
LEGEND_BELOW = {"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0, "xanchor": "left"}
STRATEGY_ORDER = ("reminders", "settlement", "legal")
STRATEGY_COLORS = {"reminders": "#4c78a8", "settlement": "#e69f00", "legal": "#b22222"}

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


class ReportError(RuntimeError):
    """The database cannot be reported on (missing file or tables)."""


# ---------------------------------------------------------------------------
# Build facts: the header, each fact with where it came from
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A fact and where it came from, so the reader can judge it."""

    value: T
    source: str


@dataclass(frozen=True)
class BuildFacts:
    """What the header says about the build the report shows."""

    database: str
    build_id: Sourced[str]
    built_at: Sourced[str]
    input_file: Sourced[str]
    loans: Sourced[int]
    quarantined: Sourced[int]
    legal_threshold: Sourced[float]
    settlement_threshold: Sourced[float]
    model_version: Sourced[str]
    warnings: tuple[str, ...] = ()


# build_info fact -> accepted column names (the table is another command's;
# the first name is the one asked for, the others are tolerated spellings).
BUILD_INFO_COLUMNS: dict[str, tuple[str, ...]] = {
    "build_id": ("build_id",),
    "finished_at": ("finished_at", "ended_at", "end_time"),
    "input_file": ("input_file", "loans_path"),
    "rows_clean": ("rows_clean",),
    "rows_quarantined": ("rows_quarantined",),
    "model_version": ("model_version",),
    "legal_threshold": ("legal_threshold",),
    "settlement_threshold": ("settlement_threshold",),
    "dbt_vars": ("dbt_vars",),
}


def connect(database: Path) -> duckdb.DuckDBPyConnection:
    """Open the built file read-only: the report must never change what it reports on."""
    if not database.is_file():
        raise ReportError(f"no DuckDB file at {database}: run `dbt build` first, or pass --db")
    connection = duckdb.connect(str(database), read_only=True)
    missing = [name for name in REPORT_RELATIONS if not _has_table(connection, name)]
    if missing:
        connection.close()
        raise ReportError(f"{database} lacks {', '.join(missing)}: was `dbt build` complete?")
    return connection


def _has_table(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = connection.execute(
        "select count(*) from information_schema.tables where table_name = ?", [name]
    ).fetchone()
    return bool(row and row[0])


def _scalar(
    connection: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None
) -> Any:
    row = connection.execute(sql, params or {}).fetchone()
    return row[0] if row else None


def latest_build_info(connection: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The newest build_info row with its columns renamed to BUILD_INFO_COLUMNS keys, if any."""
    if not _has_table(connection, BUILD_INFO):
        return None
    present = {row[0] for row in connection.execute(f"describe {BUILD_INFO}").fetchall()}
    mapping = {
        fact: next(name for name in names if name in present)
        for fact, names in BUILD_INFO_COLUMNS.items()
        if any(name in present for name in names)
    }
    if not mapping:
        return None
    order = (
        f'order by "{mapping["finished_at"]}" desc nulls last' if "finished_at" in mapping else ""
    )
    columns = ", ".join(f'"{column}" as "{fact}"' for fact, column in mapping.items())
    frame = connection.execute(f"select {columns} from {BUILD_INFO} {order} limit 1").df()
    if frame.empty:
        return None
    return {key: (None if pd.isna(value) else value) for key, value in frame.iloc[0].items()}


def _stale_reason(info: Mapping[str, Any], model_version: str, loans: int) -> str | None:
    """Why a build_info row describes another build than the marts (None if it matches).

    A plain ``dbt build`` into a file that once had ``loan-recovery build``
    leaves the old build_info behind, so it must be checked, not trusted.
    """
    if info.get("model_version") not in (None, model_version):
        return f"its model_version {info['model_version']} is not the marts' {model_version}"
    if info.get("rows_clean") not in (None, loans):
        return f"its rows_clean {info['rows_clean']:,} is not stg_loans' {loans:,} loans"
    return None


def recorded_threshold(info: Mapping[str, Any], name: str) -> Sourced[float]:
    """The threshold a build used: its own column, else its recorded --vars, else the default.

    ``loan-recovery build`` records the --vars it passed (JSON in
    ``dbt_vars``); a threshold absent there is the dbt_project.yml default.
    """
    default = float(project_vars()[name])
    if info.get(name) is not None:
        return Sourced(float(info[name]), f"build_info.{name}")
    if info.get("dbt_vars") is not None:
        try:
            passed = json.loads(str(info["dbt_vars"])) or {}
        except ValueError:
            passed = None
        if isinstance(passed, dict):
            if name in passed:
                return Sourced(float(passed[name]), "build_info.dbt_vars")
            return Sourced(default, "dbt_project.yml default (not in build_info.dbt_vars)")
    return Sourced(default, "dbt_project.yml vars default")


def read_build_facts(connection: duckdb.DuckDBPyConnection, database: str = "") -> BuildFacts:
    """The header's facts: build_info when it describes this build, else the marts and vars."""
    metrics_row = connection.execute(
        "select model_version, strftime(timezone('UTC', built_at), '%Y-%m-%d %H:%M:%S UTC') "
        "from risk_model_metrics"
    ).fetchone()
    model_version, metrics_built_at = metrics_row or (None, None)
    loans = int(_scalar(connection, "select count(*) from staging.stg_loans"))
    quarantined = int(_scalar(connection, "select count(*) from quarantined_loans"))
    warnings: list[str] = []

    info = latest_build_info(connection)
    if info is not None and (reason := _stale_reason(info, str(model_version), loans)):
        warnings.append(f"build_info ignored: {reason} (a later plain dbt build?)")
        info = None
    if info is None and not warnings:
        warnings.append(
            "no build_info table (plain dbt build): thresholds are the dbt_project.yml "
            "defaults, which a run with --vars may have overridden"
        )
    info = info or {}

    def pick(key: str, fallback: Any, fallback_source: str) -> Sourced[Any]:
        if info.get(key) is not None:
            return Sourced(info[key], f"build_info.{key}")
        return Sourced(fallback, fallback_source)

    facts = BuildFacts(
        database=database,
        build_id=pick("build_id", "none", "no build_info"),
        built_at=pick(
            "finished_at", metrics_built_at, "risk_model_metrics.built_at (when the model ran)"
        ),
        input_file=pick("input_file", "not recorded", "no build_info"),
        loans=pick("rows_clean", loans, "count of stg_loans"),
        quarantined=pick("rows_quarantined", quarantined, "count of quarantined_loans"),
        legal_threshold=recorded_threshold(info, "legal_threshold"),
        settlement_threshold=recorded_threshold(info, "settlement_threshold"),
        model_version=pick("model_version", model_version, "risk_model_metrics.model_version"),
    )
    mismatch = threshold_mismatches(
        connection, float(facts.legal_threshold.value), float(facts.settlement_threshold.value)
    )
    if mismatch:
        warnings.append(
            f"{mismatch:,} loans in recovery_strategies are not assigned as these thresholds "
            "say: the build used other thresholds, so the lines drawn on the risk score chart "
            "are not the ones it used"
        )
    return replace(facts, warnings=tuple(warnings))


def threshold_mismatches(
    connection: duckdb.DuckDBPyConnection, legal: float, settlement: float
) -> int:
    """Loans the given thresholds would assign another strategy: checks recorded thresholds."""
    return int(
        _scalar(
            connection,
            """
            select count(*) from recovery_strategies
            where strategy_code is distinct from case
                when risk_score > $legal then 'legal'
                when risk_score >= $settlement then 'settlement'
                else 'reminders'
            end
            """,
            {"legal": legal, "settlement": settlement},
        )
    )


# ---------------------------------------------------------------------------
# Report data: every aggregate computed in DuckDB
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportData:
    """Query results the figures are drawn from; small whatever the size of the book."""

    loan_count: int
    sample: pd.DataFrame
    loan_amount_bins: pd.DataFrame
    payment_history: pd.DataFrame
    missed_payment_boxes: pd.DataFrame
    segments: pd.DataFrame
    feature_stats: pd.DataFrame
    risk_score_bins: pd.DataFrame
    strategy_segments: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)


def profile_features() -> list[str]:
    """The segment profile columns: every cluster feature and the mart's two ratios."""
    return [*cluster_features(), "emi_to_income_ratio", "outstanding_share_of_loan"]


def nice_bin_width(low: float, high: float, target_bins: int) -> float:
    """A round bin width (1, 2, 2.5 or 5 times a power of ten) giving about target_bins bins.

    Round widths put the bar edges on numbers a reader can name.
    """
    span = high - low
    if span <= 0:
        return 1.0
    raw = span / target_bins
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _sample(connection: duckdb.DuckDBPyConnection, rows: int) -> pd.DataFrame:
    """A deterministic sample: the loans with the lowest salted hash of loan_id.

    Independent of thread count and row order, so the same file always gives
    the same points.
    """
    return connection.execute(
        """
        select loan_id, loan_amount, monthly_income, num_missed_payments, recovery_status
        from staging.stg_loans
        order by hash(loan_id || $salt), loan_id
        limit $rows
        """,
        {"salt": SAMPLE_SALT, "rows": rows},
    ).df()


def _loan_amount_bins(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    low, high = connection.execute(
        "select min(loan_amount), max(loan_amount) from staging.stg_loans"
    ).fetchone() or (0, 0)
    width = nice_bin_width(float(low or 0), float(high or 0), LOAN_AMOUNT_TARGET_BINS)
    return connection.execute(
        """
        select floor(loan_amount / $width) * $width as bin_start,
               floor(loan_amount / $width) * $width + $width as bin_end,
               count(*) as loans
        from staging.stg_loans group by all order by bin_start
        """,
        {"width": width},
    ).df()


def _missed_payment_boxes(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Exact box statistics per status (Tukey fences: furthest loans within 1.5 IQR)."""
    return connection.execute(
        """
        with stats as (
            select recovery_status, count(*) as loans, avg(num_missed_payments) as mean,
                   quantile_cont(num_missed_payments, 0.25) as q1,
                   quantile_cont(num_missed_payments, 0.5) as median,
                   quantile_cont(num_missed_payments, 0.75) as q3
            from staging.stg_loans group by recovery_status
        )
        select stats.*,
               min(l.num_missed_payments) filter (
                   where l.num_missed_payments >= q1 - 1.5 * (q3 - q1)) as lower_fence,
               max(l.num_missed_payments) filter (
                   where l.num_missed_payments <= q3 + 1.5 * (q3 - q1)) as upper_fence
        from stats join staging.stg_loans as l using (recovery_status)
        group by all
        """
    ).df()


def _feature_stats(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Mean and population standard deviation of each profile feature over all loans."""
    selects = " union all ".join(
        f'select \'{name}\' as feature, avg("{name}") as mean, stddev_pop("{name}") as std '
        "from intermediate.int_loan_features"
        for name in profile_features()
    )
    return connection.execute(selects).df()


def read_report_data(
    connection: duckdb.DuckDBPyConnection, sample_rows: int = SAMPLE_ROWS
) -> ReportData:
    """Run every query the charts need; aggregates are exact, only point clouds are sampled."""
    metrics = connection.execute("select * from risk_model_metrics").df()
    return ReportData(
        loan_count=int(_scalar(connection, "select count(*) from staging.stg_loans")),
        sample=_sample(connection, sample_rows),
        loan_amount_bins=_loan_amount_bins(connection),
        payment_history=connection.execute(
            "select payment_history, recovery_status, count(*) as loans "
            "from staging.stg_loans group by all"
        ).df(),
        missed_payment_boxes=_missed_payment_boxes(connection),
        segments=connection.execute("select * from borrower_segments order by segment_id").df(),
        feature_stats=_feature_stats(connection),
        risk_score_bins=connection.execute(
            """
            select least(floor(risk_score * $bins), $bins - 1) / $bins as bin_start,
                   strategy_code, count(*) as loans
            from recovery_strategies group by all order by bin_start, strategy_code
            """,
            {"bins": RISK_SCORE_BINS},
        ).df(),
        strategy_segments=connection.execute(
            """
            select segment_id, segment_name, strategy_code,
                   any_value(recovery_strategy) as recovery_strategy,
                   count(*) as loans, sum(outstanding_loan_amount) as outstanding
            from recovery_strategies group by all order by segment_id, strategy_code
            """
        ).df(),
        metrics=metrics.iloc[0].to_dict() if not metrics.empty else {},
    )


# ---------------------------------------------------------------------------
# Pure figure builders
# ---------------------------------------------------------------------------


def sample_note(sampled: int, total: int) -> str:
    """What a point cloud shows, e.g. 'sample of 5,000 of 1,000,000 loans'."""
    if sampled >= total:
        return f"all {total:,} loans"
    return f"sample of {sampled:,} of {total:,} loans"


def _title(text: str, subtitle: str) -> dict[str, Any]:
    return {"text": text, "subtitle": {"text": subtitle}, "x": 0.01, "xanchor": "left"}


def _base_layout(
    fig: go.Figure, title: str, subtitle: str, height: int, **margin: int
) -> go.Figure:
    """The shared look: plotly_white, a plain title with a subtitle saying what is shown."""
    fig.update_layout(
        template=TEMPLATE,
        title=_title(title, subtitle),
        height=height,
        margin={"t": 110, "l": 80, "r": 30, "b": 70, **margin},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 1, "xanchor": "right"},
    )
    return fig


def _ordered(values: pd.Series, preferred: list[str]) -> list[str]:
    """Categories in the project's canonical order, unknown ones after."""
    present = list(dict.fromkeys(values.dropna().tolist()))
    return [v for v in preferred if v in present] + sorted(v for v in present if v not in preferred)


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
            line_color="#4c78a8",
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
            marker_color="#4c78a8",
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
            marker={"size": 4, "opacity": 0.35, "color": "#4c78a8"},
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
    return _base_layout(
        fig,
        "Loan amount distribution and loan amount against monthly income",
        f"Bars: all {data.loan_count:,} loans, exact counts. Violin and points: {note}.",
        560,
    )


def payment_history_figure(data: ReportData) -> go.Figure:
    """Grouped bars of exact loan counts: payment history by recovery status."""
    frame = data.payment_history
    histories = _ordered(frame["payment_history"], category_values()["payment_history"])
    statuses = _ordered(frame["recovery_status"], category_values()["recovery_status"])
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
    return _base_layout(
        fig,
        "Payment history by recovery status",
        f"All {data.loan_count:,} loans, exact counts.",
        460,
    )


def missed_payments_figure(data: ReportData) -> go.Figure:
    """Boxes with exact quartiles over all loans, overlaid with the sampled loans as points."""
    boxes = data.missed_payment_boxes
    statuses = _ordered(boxes["recovery_status"], category_values()["recovery_status"])
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
        points = data.sample.loc[data.sample["recovery_status"] == status, "num_missed_payments"]
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
    return _base_layout(
        fig,
        "Missed payments by recovery status",
        f"Boxes: quartiles of all {data.loan_count:,} loans. "
        f"Points: {sample_note(len(data.sample), data.loan_count)}.",
        480,
    )


def income_vs_loan_figure(data: ReportData) -> go.Figure:
    """Sampled scatter of income against loan amount, coloured by status, sized by amount."""
    sample = data.sample
    statuses = _ordered(sample["recovery_status"], category_values()["recovery_status"])
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
    return _base_layout(
        fig,
        "Monthly income against loan amount by recovery status",
        f"{sample_note(len(sample), data.loan_count).capitalize()}; "
        "marker area proportional to loan amount.",
        560,
    )


def _format_value(value: float) -> str:
    """Readable original units: thousands separators for money, decimals for small numbers."""
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def wrap_label(text: str, width: int = 22) -> str:
    """Break a long category label over lines, so axis labels never overlap."""
    return "<br>".join(textwrap.wrap(text, width)) or text


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

    Scaled by the spread of the whole book, not of the few segment means, so
    a difference that is small for a borrower stays pale however the segments
    rank on it. It is also the scale KMeans clustered on.
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
        rows=2,
        cols=1,
        row_heights=[0.2, 0.8],
        shared_xaxes=True,
        vertical_spacing=0.03,
    )
    fig.add_trace(
        go.Bar(
            x=labels,
            y=segments["loan_count"],
            marker_color="#4c78a8",
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
            text=[[_format_value(v) for v in row] for row in means],
            texttemplate="%{text}",
            colorscale="RdBu_r",
            zmid=0,
            colorbar={"title": {"text": "z-score"}, "len": 0.75, "y": 0, "yanchor": "bottom"},
            hovertemplate="%{x}<br>%{y}: mean %{text}<br>z = %{z:.2f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text="Loans (count)", row=1, col=1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_xaxes(side="bottom", row=2, col=1)
    return _base_layout(
        fig,
        "Borrower segment profiles and sizes",
        "Cells: segment mean in original units; colour: (segment mean - mean of all loans) / "
        "standard deviation of all loans. Exact, from borrower_segments and int_loan_features.",
        820,
        l=250,
    )


def _vline(
    fig: go.Figure,
    x: float,
    name: str,
    text: str,
    xanchor: str = "left",
    y: float = 1.0,
    dash: str = "dash",
) -> None:
    """A named vertical line on the first x axis with a label above it (tests find it by name)."""
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


def strategy_names(data: ReportData) -> dict[str, str]:
    """Legend names: 'code: the catalogue's description of the strategy'."""
    frame = data.strategy_segments.drop_duplicates("strategy_code")
    return {
        row.strategy_code: f"{row.strategy_code}: {row.recovery_strategy}"
        for row in frame.itertuples()
    }


def risk_score_figure(data: ReportData, legal: float, settlement: float) -> go.Figure:
    """Stacked exact histogram of risk scores by assigned strategy, with both thresholds drawn."""
    bins = data.risk_score_bins
    width = 1.0 / RISK_SCORE_BINS
    names = strategy_names(data)
    fig = go.Figure()
    for code in _ordered(bins["strategy_code"], list(STRATEGY_ORDER)):
        rows = bins[bins["strategy_code"] == code]
        fig.add_trace(
            go.Bar(
                x=rows["bin_start"] + width / 2,
                y=rows["loans"],
                width=width * 0.95,
                name=f"{names.get(code, code)} ({int(rows['loans'].sum()):,} loans)",
                meta=code,
                marker_color=STRATEGY_COLORS.get(code),
                customdata=rows["bin_start"],
                hovertemplate=f"{code}<br>score %{{customdata:.3f}} to +{width:.3f}: "
                "%{y:,} loans<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    # Labels at two heights, so they stay readable when the thresholds are close.
    _vline(fig, settlement, "settlement_threshold", f" settlement from {settlement:.2f}", y=0.9)
    _vline(fig, legal, "legal_threshold", f" legal above {legal:.2f}", y=1.0)
    fig.update_xaxes(
        title_text="Risk score (0 to 1, resemblance to high-risk segments)", range=[0, 1]
    )
    fig.update_yaxes(title_text="Loans (count)")
    fig = _base_layout(
        fig,
        "Risk score distribution with the strategy thresholds",
        f"All {data.loan_count:,} loans, exact counts in bins of {width:g}; "
        f"colour: strategy assigned in recovery_strategies.",
        500,
        b=120,
    )
    fig.update_layout(legend={**LEGEND_BELOW, "y": -0.25})
    return fig


def strategy_segment_figure(data: ReportData) -> go.Figure:
    """Stacked bars of loans and outstanding amount per segment and strategy (exact sums)."""
    frame = data.strategy_segments
    names = strategy_names(data)
    segments = frame.drop_duplicates("segment_id").sort_values("segment_id")
    labels = [
        wrap_label(f"{row.segment_id}. {row.segment_name}", 14) for row in segments.itertuples()
    ]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Loans", "Outstanding amount"),
        horizontal_spacing=0.1,
    )
    for code in _ordered(frame["strategy_code"], list(STRATEGY_ORDER)):
        rows = frame[frame["strategy_code"] == code].set_index("segment_id")
        name = names[code]
        for col, column in ((1, "loans"), (2, "outstanding")):
            values = [float(rows[column].get(s, 0)) for s in segments["segment_id"]]
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=values,
                    name=name,
                    legendgroup=code,
                    showlegend=col == 1,
                    marker_color=STRATEGY_COLORS.get(code),
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
    fig = _base_layout(
        fig,
        "Loans and outstanding amount per strategy and segment",
        f"All {data.loan_count:,} loans, exact counts and sums from recovery_strategies.",
        620,
        b=170,
    )
    fig.update_layout(legend={**LEGEND_BELOW, "y": -0.32})
    return fig


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


def model_card_figure(metrics: Mapping[str, Any]) -> go.Figure:
    """The model card: a metrics table, the two AUCs against chance, and what they mean."""
    label_auc = float(metrics["oof_roc_auc_label"])
    outcome_auc = float(metrics["roc_auc_outcome"])
    rows = [
        ("Model version", str(metrics["model_version"])),
        ("Scored loans", f"{int(metrics['scored_loans']):,}"),
        ("Training rows (out-of-bag)", f"{int(metrics['training_rows']):,}"),
        ("Label base rate (high-risk segment)", f"{float(metrics['label_base_rate']):.1%}"),
        ("Out-of-bag ROC AUC vs label", f"{label_auc:.3f}"),
        ("Out-of-bag accuracy vs label (at 0.5)", f"{float(metrics['oof_accuracy_label']):.3f}"),
        ("Out-of-bag Brier score vs label", f"{float(metrics['oof_brier_label']):.3f}"),
        ("Outcome base rate (not fully recovered)", f"{float(metrics['outcome_base_rate']):.1%}"),
        ("ROC AUC vs actual outcome", f"{outcome_auc:.3f}"),
    ]
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
            y=[
                "vs actual<br>outcome",
                "out of bag<br>vs label",
            ],
            x=[outcome_auc, label_auc],
            orientation="h",
            marker_color=["#c0392b", "#4c78a8"],
            text=[f"{outcome_auc:.3f}", f"{label_auc:.3f}"],
            textposition="outside",
            showlegend=False,
            hovertemplate="%{y}: ROC AUC %{x:.3f}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    _vline(fig, 0.5, "chance", "chance (0.5)", xanchor="center", dash="dot")
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
    return _base_layout(
        fig,
        f"Model card: risk model {metrics['model_version']}",
        "From risk_model_metrics. Label AUC: out-of-bag scores against the high-risk label; "
        "outcome AUC: every score against the actual recovery status.",
        480,
        b=110,
    )


def build_figures_from(data: ReportData, facts: BuildFacts) -> dict[str, go.Figure]:
    """Every chart, keyed as in CHARTS and in page order; pure, so tests can inspect the data."""
    figures = {
        "loan_amount_distribution": loan_amount_figure(data),
        "payment_history_by_status": payment_history_figure(data),
        "missed_payments_by_status": missed_payments_figure(data),
        "income_vs_loan_by_status": income_vs_loan_figure(data),
        "segment_profiles": segment_profiles_figure(data),
        "risk_score_distribution": risk_score_figure(
            data, float(facts.legal_threshold.value), float(facts.settlement_threshold.value)
        ),
        "strategy_by_segment": strategy_segment_figure(data),
        "model_card": model_card_figure(data.metrics),
    }
    return {key: figures[key] for key in CHARTS}


def build_figures(connection: duckdb.DuckDBPyConnection) -> dict[str, go.Figure]:
    """Query the built file and draw every chart."""
    return build_figures_from(read_report_data(connection), read_build_facts(connection))


# ---------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------

STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #222; margin: 0; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { margin-bottom: 4px; } h2 { margin: 40px 0 4px; border-top: 1px solid #ddd; padding-top: 24px; }
.question { color: #555; margin: 0 0 8px; font-style: italic; }
table.facts { border-collapse: collapse; margin: 12px 0; }
table.facts td, table.facts th { padding: 4px 14px 4px 0; text-align: left; vertical-align: top; }
table.facts td.source { color: #777; font-size: 0.9em; }
.warnings { color: #8a5300; background: #fff6e5; padding: 8px 12px 8px 28px; }
nav ol { columns: 2; }
"""


def _format_time(value: Any) -> str:
    """Timestamps to the second; strings (already formatted) as they are."""
    return (
        value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if hasattr(value, "strftime") else str(value)
    )


def _facts_rows(facts: BuildFacts) -> list[tuple[str, str, str]]:
    loans, quarantined = int(facts.loans.value), int(facts.quarantined.value)
    return [
        ("Built", _format_time(facts.built_at.value), facts.built_at.source),
        ("Build id", str(facts.build_id.value), facts.build_id.source),
        ("Input file", str(facts.input_file.value), facts.input_file.source),
        ("Loans reported (clean)", f"{loans:,}", facts.loans.source),
        (
            "Quarantined rows",
            f"{quarantined:,} ({quarantined / max(loans + quarantined, 1):.1%} of rows read)",
            facts.quarantined.source,
        ),
        (
            "Thresholds",
            f"legal above {float(facts.legal_threshold.value):.2f}, settlement from "
            f"{float(facts.settlement_threshold.value):.2f}",
            facts.legal_threshold.source
            if facts.legal_threshold.source == facts.settlement_threshold.source
            else f"{facts.legal_threshold.source}; {facts.settlement_threshold.source}",
        ),
        ("Risk model", str(facts.model_version.value), facts.model_version.source),
        ("Database", facts.database, "--db"),
    ]


def render_header(facts: BuildFacts) -> str:
    """The text header: what was built, when, from how many loans, with which thresholds."""
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td>"
        f'<td class="source">{html.escape(source)}</td></tr>'
        for label, value, source in _facts_rows(facts)
    )
    warnings = (
        '<ul class="warnings">'
        + "".join(f"<li>{html.escape(w)}</li>" for w in facts.warnings)
        + "</ul>"
        if facts.warnings
        else ""
    )
    return (
        "<h1>Loan-recovery report</h1>"
        '<table class="facts"><tr><th>Fact</th><th>Value</th><th>Source</th></tr>'
        f"{rows}</table>{warnings}"
    )


def render_html(figures: Mapping[str, go.Figure], facts: BuildFacts) -> str:
    """One self-contained page: plotly.js once in the head, then each chart under its question."""
    contents = "".join(
        f'<li><a href="#{key}">{html.escape(CHARTS.get(key, (key, ""))[0])}</a></li>'
        for key in figures
    )
    sections = []
    for key, fig in figures.items():
        heading, question = CHARTS.get(key, (key, ""))
        chart = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{key}",
            config={"displaylogo": False, "responsive": True},
        )
        sections.append(
            f'<section id="{key}"><h2>{html.escape(heading)}</h2>'
            f'<p class="question">{html.escape(question)}</p>{chart}</section>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Loan-recovery report</title><style>{STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f"<body><main>{render_header(facts)}<nav><ol>{contents}</ol></nav>"
        f"{''.join(sections)}</main></body></html>\n"
    )


def default_report_path() -> Path:
    """reports/loan_recovery_report.html in the project (gitignored)."""
    return project_dir() / "reports" / "loan_recovery_report.html"


def write_report(database: Path, out: Path, sample_rows: int = SAMPLE_ROWS) -> Path:
    """Read ``database`` read-only and write the report to ``out``; returns ``out``."""
    connection = connect(database)
    try:
        facts = read_build_facts(connection, str(database))
        figures = build_figures_from(read_report_data(connection, sample_rows), facts)
    finally:
        connection.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(figures, facts), encoding="utf-8")
    return out
