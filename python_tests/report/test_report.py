"""The HTML report: each chart and header fact against SQL over the same file; a browser render.

Expected values come from SQL over the built file, from facts computed here
with NumPy, pandas or sklearn on the file's raw columns, from the README, or
from hand-made data (a copy of the file with other thresholds, metrics,
quarantined rows or a build_info row; hand-written numbers), never from the
report's own helpers, so that each test fails when the report is wrong.

Two builds: the bundled sample (``sample_build``: 25 % open loans, the
outcome model in use, unlimited capacity) and ``constrained``, the same
sample built so that the outcome model falls back (min_resolved_loans above
the book) and with legal and settlement capacities small enough to move
loans down.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import yaml
from plotly.offline import get_plotlyjs
from sklearn.metrics import roc_auc_score

from conftest import DbtResult, info_for, run_dbt
from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo
from loan_recovery.cli import main
from loan_recovery.config import DB_PATH_ENV, cluster_features, database_path, project_dir
from loan_recovery.report import default_report_path, page, queries, write_report
from loan_recovery.report.facts import build_facts
from report.browser import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.dbt


@pytest.fixture(scope="module")
def connection(sample_build: DbtResult) -> Iterator[duckdb.DuckDBPyConnection]:
    with queries.connect(sample_build.database) as connection:
        yield connection


@pytest.fixture(scope="module")
def data(connection: duckdb.DuckDBPyConnection) -> queries.ReportData:
    return queries.read_report_data(connection)


@pytest.fixture(scope="module")
def figures(data: queries.ReportData) -> dict[str, go.Figure]:
    return page.build_figures(data)


@pytest.fixture(scope="module")
def report_file(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(sample_build.database, tmp_path_factory.mktemp("report") / "report.html")


LEGAL_CAPACITY, SETTLEMENT_CAPACITY = 40, 60


@pytest.fixture(scope="module")
def constrained(tmp_path_factory: pytest.TempPathFactory) -> DbtResult:
    """The sample built with the outcome model falling back and both capacities set."""
    result = run_dbt(
        tmp_path_factory.mktemp("constrained"),
        "build",
        dbt_vars={
            "min_resolved_loans": 100_000,
            "legal_capacity": LEGAL_CAPACITY,
            "settlement_capacity": SETTLEMENT_CAPACITY,
        },
    )
    assert result.returncode == 0, result.output
    return result


@pytest.fixture(scope="module")
def constrained_connection(constrained: DbtResult) -> Iterator[duckdb.DuckDBPyConnection]:
    with queries.connect(constrained.database) as connection:
        yield connection


@pytest.fixture(scope="module")
def constrained_figures(
    constrained_connection: duckdb.DuckDBPyConnection,
) -> dict[str, go.Figure]:
    return page.build_figures(queries.read_report_data(constrained_connection))


def built_figures(
    request: pytest.FixtureRequest, build: str
) -> tuple[duckdb.DuckDBPyConnection, dict[str, go.Figure]]:
    """The connection to and the figures of the "sample" or the "constrained" build."""
    if build == "sample":
        return request.getfixturevalue("connection"), request.getfixturevalue("figures")
    return (
        request.getfixturevalue("constrained_connection"),
        request.getfixturevalue("constrained_figures"),
    )


@pytest.fixture(scope="module")
def altered(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the build with other thresholds, quarantined rows and a weak outcome model.

    The strategies are left as the build assigned them: the report must draw
    what run_settings says, not re-derive anything. The outcome model's AUC
    becomes 0.52 with an interval including 0.5, as on the public 500 loans.
    """
    database = tmp_path_factory.mktemp("altered") / "altered.duckdb"
    shutil.copy(sample_build.database, database)
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            "update main.run_settings set legal_threshold = 0.9, settlement_threshold = 0.2"
        )
        connection.execute(
            "insert into main.quarantined_loans (Loan_ID, source_row_number, reject_reason) "
            "values ('LN_Q1', 1, 'hand-made'), ('LN_Q2', 2, 'hand-made'), ('LN_Q3', 3, 'hand-made')"
        )
        connection.execute(
            "update main.risk_model_metrics set roc_auc = 0.52, roc_auc_ci_low = 0.46, "
            "roc_auc_ci_high = 0.57 where score_name = 'outcome'"
        )
    return database


def sql(connection: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    return connection.execute(query).fetchall()


def numbers(values: Any) -> list[float]:
    return [float(v) for v in values]


def traces(fig: go.Figure, kind: str) -> list[Any]:
    return [trace for trace in fig.data if trace.type == kind]


def by_meta(fig: go.Figure) -> dict[Any, Any]:
    """Traces keyed by their meta (what each trace stands for)."""
    return {trace.meta: trace for trace in fig.data if isinstance(trace.meta, str)}


def subtitle(fig: go.Figure) -> str:
    """The subtitle as one line (the report wraps it with <br>)."""
    return fig.layout.title.subtitle.text.replace("<br>", " ")


def frame(connection: duckdb.DuckDBPyConnection, query: str) -> pd.DataFrame:
    return connection.execute(query).df()


def parse_header(markup: str) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The header's rows (label -> (value, source)) and its warnings, read back from HTML."""
    rows = {
        html.unescape(label): (html.unescape(value), html.unescape(source))
        for label, value, source in re.findall(
            r'<tr><th>([^<]*)</th><td>([^<]*)</td><td class="source">([^<]*)</td></tr>', markup
        )
    }
    found = re.search(r'<ul class="warnings">(.*?)</ul>', markup)
    warnings = (
        [html.unescape(w) for w in re.findall(r"<li>(.*?)</li>", found.group(1))] if found else []
    )
    return rows, warnings


def header_of(database: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The header the report would write for ``database`` (the page's own path, no charts)."""
    with queries.connect(database) as connection:
        data = queries.read_report_data(connection, sample_rows=10)
    return parse_header(page.render_header(build_facts(data, str(database))))


def readme_chart_questions() -> list[str]:
    """The Question column of the README's report table, in order."""
    readme = (project_dir() / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## The report\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [row.split("|")[2].strip() for row in rows]


def test_page_shows_the_readme_sections_in_order_under_their_questions(report_file: Path) -> None:
    page_html = report_file.read_text(encoding="utf-8")
    sections = re.findall(
        r'<section id="(\w+)"><h3>(.*?)</h3><p class="question">(.*?)</p>', page_html
    )
    assert [html.unescape(question) for _, _, question in sections] == readme_chart_questions()
    nav = re.findall(r'<li><a href="#(\w+)">', page_html)
    assert nav == [key for key, _, _ in sections]
    charts = [key for key, _, _ in sections if f'id="chart-{key}"' in page_html]
    assert page_html.count('class="plotly-graph-div"') == len(charts) == len(page.CHARTS)
    # The cycle summary opens the page, before any section; decisions come first,
    # the back-test after the experiment, the write-up's exploratory charts last.
    assert page_html.index('<section id="cycle_summary"') < page_html.index("<nav>")
    parts = re.findall(r'<h2 class="part">(.*?)</h2>', page_html)
    assert parts[0].startswith("Decisions") and parts[-1].startswith("The loan book")
    assert parts.index("The experiment and the trend") < parts.index(
        "Back-test: the scores on resolved loans"
    )
    book = page_html.index('<h2 class="part">The loan book')
    assert re.findall(r'<section id="(\w+)">', page_html[book:]) == [
        "loan_amount_distribution",
        "payment_history_by_status",
        "missed_payments_by_status",
        "income_vs_loan_by_status",
    ]
    first = re.findall(r'<section id="(\w+)">', page_html)[0]
    assert first == "work_queue"


def test_drift_chart_draws_every_variables_psi_in_its_class_with_both_cutoffs(
    figures: dict[str, go.Figure], connection: duckdb.DuckDBPyConnection
) -> None:
    fig = figures["drift"]
    drawn = {
        label.split(" (")[0]: (float(psi), trace.meta)
        for trace in fig.data
        for label, psi in zip(trace.y, trace.x, strict=True)
    }
    stored = {
        variable: (psi, stability)
        for variable, psi, stability in connection.execute(
            "select variable, psi, stability from main.model_monitoring"
        ).fetchall()
    }
    assert len(stored) == 20
    assert drawn == stored
    lines = {shape.name: shape.x0 for shape in fig.layout.shapes}
    assert lines == {"psi_moderate": 0.10, "psi_significant": 0.25}
    assert "this build's training population" in fig.layout.title.subtitle.text


def test_every_chart_has_a_title_a_subtitle_and_axis_units(figures: dict[str, go.Figure]) -> None:
    for key, fig in figures.items():
        assert fig.layout.template.layout.paper_bgcolor == "white", key  # plotly_white
        assert fig.layout.title.text and fig.layout.title.subtitle.text, key
        titled_axes = [
            axis
            for name, axis in fig.layout.to_plotly_json().items()
            if re.fullmatch(r"[xy]axis\d*", name) and axis.get("title", {}).get("text")
        ]
        assert titled_axes, key
        for axis in titled_axes:
            title = axis["title"]["text"]
            assert "(" in title or title in {"Segment", "Payment history", "Recovery status"}, title


def test_loan_amount_bars_are_exact_sql_bins(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    (bars,) = traces(figures["loan_amount_distribution"], "bar")
    assert sum(bars.y) == sql(connection, "select count(*) from staging.stg_loans")[0][0]
    for (start, end), loans in zip(bars.customdata, bars.y, strict=True):
        expected = sql(
            connection,
            f"select count(*) from staging.stg_loans "
            f"where loan_amount >= {start} and loan_amount < {end}",
        )[0][0]
        assert loans == expected, (start, end)


def test_payment_history_bars_equal_sql_counts(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    drawn = {
        (history, trace.name): count
        for trace in traces(figures["payment_history_by_status"], "bar")
        for history, count in zip(trace.x, trace.y, strict=True)
        if count
    }
    expected = sql(
        connection,
        "select payment_history, recovery_status, count(*) from staging.stg_loans "
        "where recovery_status is not null group by all",
    )
    assert drawn == {(history, status): count for history, status, count in expected}
    ((loans, resolved),) = sql(
        connection, "select count(*), count(recovery_status) from staging.stg_loans"
    )
    assert 0 < resolved < loans  # the sample has open loans
    assert subtitle(figures["payment_history_by_status"]).startswith(
        f"Resolved loans only ({resolved:,} of {loans:,}; {loans - resolved:,} open loans"
    )


def test_missed_payment_boxes_are_exact_quartiles_and_fences_with_sampled_points(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    boxes = traces(figures["missed_payments_by_status"], "box")
    drawn = {trace.name: trace for trace in boxes if trace.q1 is not None}
    values: dict[str, list[float]] = defaultdict(list)
    for status, missed in sql(
        connection,
        "select recovery_status, num_missed_payments from staging.stg_loans "
        "where recovery_status is not null",
    ):
        values[status].append(float(missed))
    assert set(drawn) == set(values)
    for status, missed in values.items():
        q1, median, q3 = np.quantile(missed, [0.25, 0.5, 0.75])  # linear, as quantile_cont
        inside = [v for v in missed if q1 - 1.5 * (q3 - q1) <= v <= q3 + 1.5 * (q3 - q1)]
        box = drawn[status]
        assert numbers([box.q1[0], box.median[0], box.q3[0], box.mean[0]]) == pytest.approx(
            [q1, median, q3, np.mean(missed)]
        ), status
        assert (box.lowerfence[0], box.upperfence[0]) == (min(inside), max(inside)), status
    points = sum(len(trace.y) for trace in boxes if trace.boxpoints == "all")
    resolved = sum(len(v) for v in values.values())
    assert resolved <= 5_000 and points == resolved  # every resolved loan, no open one
    assert "Resolved loans only" in subtitle(figures["missed_payments_by_status"])


def test_point_clouds_are_a_deterministic_sample_of_real_loans_that_says_so(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    small = queries.read_report_data(connection, sample_rows=500)
    again = queries.read_report_data(connection, sample_rows=500)
    assert small.sample["loan_id"].tolist() == again.sample["loan_id"].tolist()
    assert small.sample["loan_id"].is_unique and len(small.sample) == 500
    total, resolved = sql(
        connection, "select count(*), count(recovery_status) from staging.stg_loans"
    )[0]
    ids = ", ".join(f"'{loan_id}'" for loan_id in small.sample["loan_id"])
    sampled_resolved = sql(
        connection,
        f"select count(*) from staging.stg_loans where loan_id in ({ids}) "
        "and recovery_status is not null",
    )[0][0]
    figures = page.build_figures(small)
    assert f"sample of 500 of {total:,} loans" in subtitle(figures["loan_amount_distribution"])
    note = f"sample of {sampled_resolved:,} of {resolved:,} resolved loans"
    for key in ["missed_payments_by_status", "income_vs_loan_by_status"]:
        assert note in subtitle(figures[key]), key
    scatter = traces(figures["income_vs_loan_by_status"], "scatter")
    drawn = sorted(
        (float(x), float(y)) for trace in scatter for x, y in zip(trace.x, trace.y, strict=True)
    )
    assert drawn == sorted(
        sql(
            connection,
            f"select monthly_income, loan_amount from staging.stg_loans where loan_id in ({ids}) "
            "and recovery_status is not null",
        )
    )
    # Aggregates stay exact whatever the sample.
    (bars,) = traces(figures["loan_amount_distribution"], "bar")
    assert sum(bars.y) == total


def test_segment_profiles_are_z_scores_against_the_whole_book(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["segment_profiles"]
    (sizes,) = traces(fig, "bar")
    (heatmap,) = traces(fig, "heatmap")
    mart = connection.execute("select * from main.borrower_segments order by segment_id").df()
    assert list(sizes.y) == mart["loan_count"].tolist()
    marked = [("(high risk)" in label.replace("<br>", " ")) for label in sizes.x]
    assert marked == mart["is_high_risk"].tolist()
    features = list(heatmap.meta)
    assert set(features) == {
        *cluster_features(),
        "emi_to_income_ratio",
        "outstanding_share_of_loan",
    }
    weights = mart["loan_count"].to_numpy()
    for row, feature in enumerate(features):
        mean, std = sql(
            connection,
            f"select avg({feature}), stddev_pop({feature}) from intermediate.int_loan_features",
        )[0]
        segment_means = mart[f"mean_{feature}"].to_numpy()
        assert numbers(heatmap.z[row]) == pytest.approx((segment_means - mean) / std), feature
        # Segment means weighted by size are the book's mean: each row averages to zero.
        assert float(np.dot(heatmap.z[row], weights)) == pytest.approx(0, abs=1e-6), feature
        for text, value in zip(heatmap.text[row], segment_means, strict=True):
            decimals = len(text.split(".")[1]) if "." in text else 0
            assert abs(float(text.replace(",", "")) - value) <= 0.5 * 10**-decimals, (text, value)


def test_risk_score_bars_match_the_mart_and_lines_are_the_run_settings_thresholds(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["risk_score_distribution"]
    drawn = {trace.meta: sum(trace.y) for trace in traces(fig, "bar")}
    assert drawn == dict(
        sql(
            connection,
            "select strategy_code, count(*) from main.recovery_strategies where is_worked "
            "group by 1",
        )
    )
    ((legal, settlement),) = sql(
        connection, "select legal_threshold, settlement_threshold from main.run_settings"
    )
    lines = {shape.name: (shape.x0, shape.x1) for shape in fig.layout.shapes}
    assert lines == {"legal_threshold": (legal, legal), "settlement_threshold": (settlement,) * 2}


@pytest.mark.parametrize(
    ("build", "words"),
    [
        ("sample", "loss probability (outcome model"),
        ("constrained", "the write-up's segment score"),
    ],
)
def test_risk_score_axis_says_which_score_risk_score_is(
    request: pytest.FixtureRequest, build: str, words: str
) -> None:
    connection, figures = built_figures(request, build)
    ((source,),) = sql(connection, "select distinct score_source from main.recovery_strategies")
    assert source == ("outcome" if build == "sample" else "segment")
    title = figures["risk_score_distribution"].layout.xaxis.title.text
    assert words in title, title


def test_thresholds_come_from_run_settings_not_the_project_vars(
    altered: Path, tmp_path: Path
) -> None:
    with queries.connect(altered) as connection:
        fig = page.build_figures(queries.read_report_data(connection, 10))[
            "risk_score_distribution"
        ]
    assert {shape.name: shape.x0 for shape in fig.layout.shapes} == {
        "legal_threshold": 0.9,
        "settlement_threshold": 0.2,
    }
    rows, _ = header_of(altered)
    assert rows["Thresholds"][0] == "legal above 0.90, settlement from 0.20"
    assert rows["Thresholds"][1].startswith("main.run_settings")


def test_strategy_bars_equal_the_mart_per_segment(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    drawn: dict[tuple[str, str], list[float]] = {}
    for trace in traces(figures["strategy_by_segment"], "bar"):
        measure = "loans" if trace.xaxis == "x" else "outstanding"
        drawn[(trace.meta, measure)] = numbers(trace.y)
    rows = sql(
        connection,
        "select strategy_code, segment_id, count(*), sum(outstanding_loan_amount) "
        "from main.recovery_strategies where is_worked group by all",
    )
    segment_ids = sorted({segment for _, segment, _, _ in rows})
    for code in {code for code, _, _, _ in rows}:
        by_segment = {segment: (n, s) for c, segment, n, s in rows if c == code}
        loans = [by_segment.get(segment, (0, 0))[0] for segment in segment_ids]
        outstanding = [by_segment.get(segment, (0, 0))[1] for segment in segment_ids]
        assert drawn[(code, "loans")] == loans
        assert drawn[(code, "outstanding")] == pytest.approx(outstanding)


def scores_of(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(connection, "select * from main.risk_model_metrics").set_index("score_name")


def test_model_card_table_has_every_score_of_risk_model_metrics(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    (table,) = traces(figures["model_card"], "table")
    header = list(table.header.values)
    cells = {
        row[0].removesuffix(" (in use)"): dict(zip(header, row, strict=True))
        for row in zip(*table.cells.values, strict=True)
    }
    metrics = scores_of(connection)
    assert set(cells) == set(metrics.index) == {"outcome", "segment", "days_past_due", "base_rate"}
    for name, row in metrics.iterrows():
        drawn = cells[name]
        assert drawn["What it is"] == row["score_description"]
        assert int(drawn["Loans evaluated"].replace(",", "")) == row["evaluated_loans"]
        assert drawn["ROC AUC [95 % interval]"] == (
            f"{row['roc_auc']:.3f} [{row['roc_auc_ci_low']:.3f}, {row['roc_auc_ci_high']:.3f}]"
        )
        assert float(drawn["Brier"]) == pytest.approx(row["brier_score"], abs=5e-4)
        assert float(drawn["ECE"]) == pytest.approx(row["expected_calibration_error"], abs=5e-4)
        assert float(drawn["Base rate"].rstrip("%")) == pytest.approx(
            100 * row["base_rate"], abs=0.05
        )
        if pd.notna(row["model_version"]):
            assert drawn["Model version / status"].startswith(row["model_version"])
    assert float(cells["segment"]["Label AUC"]) == pytest.approx(
        metrics.loc["segment", "label_roc_auc"], abs=5e-4
    )
    assert (
        int(cells["outcome"]["Training rows"].replace(",", ""))
        == (metrics.loc["outcome", "training_rows"])
    )
    in_use = [row[0] for row in zip(*table.cells.values, strict=True) if "(in use)" in row[0]]
    assert in_use == [f"{metrics.index[metrics['is_score_in_use']][0]} (in use)"]


def test_model_card_aucs_are_sklearn_on_the_raw_columns_with_their_intervals(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    (points,) = traces(figures["model_card"], "scatter")
    drawn = dict(zip(points.meta, points.x, strict=True))
    resolved = frame(
        connection,
        "select recovery_status <> 'Fully Recovered' as lost, loss_probability, "
        "segment_risk_score, days_past_due from main.recovery_strategies where is_resolved",
    )
    for name, column in [
        ("outcome", "loss_probability"),
        ("segment", "segment_risk_score"),
        ("days_past_due", "days_past_due"),
    ]:
        expected = roc_auc_score(resolved["lost"], resolved[column])
        assert drawn[name] == pytest.approx(expected, abs=1e-9), name
    assert drawn["base_rate"] == pytest.approx(0.5)
    metrics = scores_of(connection).loc[list(points.meta)]
    x = np.array(points.x, dtype=float)
    assert x + np.array(points.error_x.array) == pytest.approx(metrics["roc_auc_ci_high"])
    assert x - np.array(points.error_x.arrayminus) == pytest.approx(metrics["roc_auc_ci_low"])
    # The score in use stands out, and the chance line is at 0.5.
    in_use = metrics["is_score_in_use"].tolist()
    colors, sizes = list(points.marker.color), list(points.marker.size)
    assert len({c for c, used in zip(colors, in_use, strict=True) if used}) == 1
    (highlight,) = [c for c, used in zip(colors, in_use, strict=True) if used]
    assert highlight not in [c for c, used in zip(colors, in_use, strict=True) if not used]
    assert max(sizes) == sizes[in_use.index(True)]
    assert [label.endswith("(in use)") for label in points.y] == in_use
    (chance,) = [shape for shape in figures["model_card"].layout.shapes if shape.name == "chance"]
    assert chance.x0 == chance.x1 == 0.5


def meaning(fig: go.Figure) -> str:
    (found,) = [a for a in fig.layout.annotations if a.name == "meaning"]
    return found.text.replace("<br>", " ")


def test_model_card_sentence_follows_the_builds_numbers(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure], altered: Path
) -> None:
    metrics = scores_of(connection)
    outcome = metrics.loc["outcome"]
    others = metrics.loc[["segment", "days_past_due"], "roc_auc_ci_high"]
    assert outcome["roc_auc_ci_low"] > 0.5 and outcome["roc_auc_ci_low"] > others.max()
    text = meaning(figures["model_card"])
    assert f"AUC is {outcome['roc_auc']:.3f}, 95 % interval {outcome['roc_auc_ci_low']:.3f}" in text
    assert "above 0.5, it ranks losses better than chance" in text
    assert "its interval lies above the write-up's segment score's and the days-past-due" in text
    assert "The strategy used the outcome model." in text
    # The public-file situation, by hand: an interval including 0.5 says so.
    with queries.connect(altered) as weak:
        weak_card = page.build_figures(queries.read_report_data(weak, 10))["model_card"]
    weak_text = meaning(weak_card)
    (points,) = traces(weak_card, "scatter")
    outcome_at = list(points.meta).index("outcome")
    assert points.x[outcome_at] == pytest.approx(0.52)
    assert points.error_x.arrayminus[outcome_at] == pytest.approx(0.06)  # down to 0.46
    assert points.error_x.array[outcome_at] == pytest.approx(0.05)  # up to 0.57
    assert "AUC is 0.520, 95 % interval 0.460 to 0.570: the interval includes 0.5" in weak_text
    assert "does not rank losses better than chance" in weak_text
    assert (
        "the write-up's segment score's and the days-past-due rule's intervals lie above it"
        in weak_text
    )


def test_model_card_says_when_the_outcome_model_fell_back(
    constrained_connection: duckdb.DuckDBPyConnection, constrained_figures: dict[str, go.Figure]
) -> None:
    ((status, in_use),) = sql(
        constrained_connection,
        "select (select fallback_reason from main.risk_model_metrics "
        "where score_name = 'outcome' and model_status = 'fallback'), "
        "(select score_name from main.risk_model_metrics where is_score_in_use)",
    )
    assert status and in_use == "segment"
    text = meaning(constrained_figures["model_card"])
    assert f"The outcome model fell back ({status})" in text
    assert "The strategy used the write-up's segment score." in text
    (points,) = traces(constrained_figures["model_card"], "scatter")
    assert np.isnan(points.x[list(points.meta).index("outcome")])
    # The segment score is the one highlighted now.
    segment = list(points.meta).index("segment")
    assert [label.endswith("(in use)") for label in points.y] == [
        i == segment for i in range(len(points.meta))
    ]
    assert max(points.marker.size) == points.marker.size[segment]
    assert list(points.marker.color).count(points.marker.color[segment]) == 1


def test_fairness_rates_are_the_loans_by_gender(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    loans = frame(
        connection,
        "select l.gender, s.is_resolved, s.recovery_status, s.loss_probability, s.risk_score, "
        "s.strategy_code from main.recovery_strategies s join staging.stg_loans l using (loan_id)",
    )
    bars = {tuple(trace.meta): trace for trace in traces(figures["fairness"], "bar")}
    assert set(bars) == {("gender", value) for value in loans["gender"].unique()}
    for gender, rows in loans.groupby("gender"):
        resolved = rows[rows["is_resolved"]]
        expected = [
            (resolved["recovery_status"] != "Fully Recovered").mean(),
            rows["loss_probability"].mean(),
            rows["risk_score"].mean(),
            (rows["strategy_code"] == "legal").mean(),
            (rows["strategy_code"] == "settlement").mean(),
            (rows["strategy_code"] == "reminders").mean(),
        ]
        trace = bars[("gender", gender)]
        assert numbers(trace.y) == pytest.approx(expected), gender
        assert f"{len(rows):,} loans, {len(resolved):,} resolved" in trace.name


def test_header_without_build_info_gives_the_marts_facts_and_says_so(
    connection: duckdb.DuckDBPyConnection, report_file: Path
) -> None:
    rows, warnings = parse_header(report_file.read_text(encoding="utf-8"))
    ((loans, quarantined, built, version, legal, settlement),) = sql(
        connection,
        "select (select count(*) from staging.stg_loans), "
        "(select count(*) from main.quarantined_loans), "
        "strftime(built_at, '%Y-%m-%d %H:%M:%S') || ' UTC', risk_model_metrics.model_version, "
        "legal_threshold, settlement_threshold "
        "from main.risk_model_metrics, main.run_settings where is_score_in_use",
    )
    assert rows["Loans reported (clean)"] == (f"{loans:,}", "count of staging.stg_loans")
    assert rows["Quarantined rows"][0].startswith(f"{quarantined:,} (")
    assert rows["Built"][0] == built
    assert rows["Model version"][0] == version
    assert rows["Thresholds"][0] == f"legal above {legal:.2f}, settlement from {settlement:.2f}"
    assert rows["Build id"] == ("none", "no build_info")
    assert any("no build_info" in warning for warning in warnings)


def test_header_counts_the_quarantined_rows(altered: Path) -> None:
    with duckdb.connect(str(altered), read_only=True) as connection:
        ((loans, quarantined),) = sql(
            connection,
            "select (select count(*) from staging.stg_loans), "
            "(select count(*) from main.quarantined_loans)",
        )
    assert quarantined == 3
    rows, _ = header_of(altered)
    share = quarantined / (loans + quarantined)
    assert rows["Quarantined rows"] == (
        f"{quarantined} ({share:.1%} of rows read)",
        "count of main.quarantined_loans",
    )


def describing(connection: duckdb.DuckDBPyConnection) -> BuildInfo:
    """A build_info row describing the build in ``connection`` (its counts from SQL)."""
    ((clean, quarantined, model_version),) = sql(
        connection,
        "select (select count(*) from staging.stg_loans), "
        "(select count(*) from main.quarantined_loans), "
        "(select model_version from main.run_settings)",
    )
    return info_for(
        "b-1",
        started_at=datetime(2026, 1, 1, 10, 0, 0),
        finished_at=datetime(2026, 1, 1, 10, 1, 0),
        input_file="/data/book.parquet",
        rows_in=clean + quarantined,
        rows_clean=clean,
        rows_quarantined=quarantined,
        model_version=model_version,
    )


def test_header_takes_the_build_identity_from_a_matching_build_info(
    sample_build: DbtResult, connection: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    database = tmp_path / "published.duckdb"
    shutil.copy(sample_build.database, database)
    with duckdb.connect(str(database)) as writable:
        build_info.write(writable, describing(connection))
    rows, warnings = header_of(database)
    assert rows["Build id"] == ("b-1", "build_info.build_id")
    assert rows["Input file"] == ("/data/book.parquet", "build_info.input_file")
    assert rows["Built"] == ("2026-01-01 10:01:00 UTC", "build_info.finished_at")
    assert rows["Loans reported (clean)"][1] == "build_info.rows_clean"
    assert warnings == []


@pytest.mark.parametrize("field", ["model_version", "rows_clean", "rows_quarantined"])
def test_a_build_info_of_another_build_is_ignored_with_a_warning(
    connection: duckdb.DuckDBPyConnection, data: queries.ReportData, field: str
) -> None:
    matching = describing(connection)
    value = "old" if field == "model_version" else getattr(matching, field) + 1
    facts = build_facts(replace(data, build_info=replace(matching, **{field: value})))
    assert facts.build_id.source == "no build_info"
    assert facts.loans.value == data.loan_count
    assert [w for w in facts.warnings if w.startswith(f"build_info ignored: its {field} ")]


def test_a_build_info_from_another_version_reads_as_none(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    database = tmp_path / "old.duckdb"
    shutil.copy(sample_build.database, database)
    with duckdb.connect(str(database)) as writable:  # the columns an earlier version wrote
        writable.execute(
            "create table main.build_info as select 'b-0' as build_id, "
            "0.8 as legal_threshold, '{}' as dbt_vars"
        )
    rows, warnings = header_of(database)
    assert rows["Build id"] == ("none", "no build_info")
    assert "0.80" not in rows["Thresholds"][0]  # thresholds only ever from run_settings
    assert any("no build_info" in warning for warning in warnings)


def test_html_is_self_contained_with_plotly_js_once(
    report_file: Path, figures: dict[str, go.Figure]
) -> None:
    page_html = report_file.read_text(encoding="utf-8")
    assert page_html.count(get_plotlyjs()[:300]) == 1
    assert page_html.count('class="plotly-graph-div"') == len(figures)
    remote = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page_html
    )
    assert not remote
    assert report_file.stat().st_size < 20_000_000
    # The marker `report --out` recognises its own earlier report by sits in the head.
    assert page.REPORT_MARKER in page_html[: page_html.index("</head>")][:4096]


def test_report_reads_only_the_relations_its_exposure_declares(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    exposures = yaml.safe_load((project_dir() / "models/marts/_exposures.yml").read_text())
    (exposure,) = [e for e in exposures["exposures"] if e["name"] == "loan_recovery_report"]
    declared = [re.sub(r"^ref\('(\w+)'\)$", r"\1", ref) for ref in exposure["depends_on"]]
    names = ", ".join(f"'{name}'" for name in declared)
    located = sample_build.query(
        "select table_schema, table_name from information_schema.tables "
        f"where table_name in ({names})"
    )
    assert sorted(name for _, name in located) == sorted(declared)
    assert sorted(queries.REPORT_RELATIONS) == sorted(located)
    only = tmp_path / "only.duckdb"
    with duckdb.connect(str(only)) as writable:
        writable.execute(f"attach '{sample_build.database}' as built (read_only)")
        for schema, name in located:
            writable.execute(f"create schema if not exists {schema}")
            writable.execute(f"create table {schema}.{name} as select * from built.{schema}.{name}")
    assert write_report(only, tmp_path / "r.html").stat().st_size > 0


def test_cli_defaults_to_the_env_database(
    sample_build: DbtResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_PATH_ENV, str(sample_build.database))
    assert database_path() == sample_build.database
    out = tmp_path / "nested" / "report.html"
    assert main(["report", "--out", str(out)]) == 0
    assert out.is_file()
    assert default_report_path() == project_dir() / "reports/loan_recovery_report.html"


def test_header_names_the_score_in_use(
    connection: duckdb.DuckDBPyConnection, report_file: Path
) -> None:
    rows, warnings = parse_header(report_file.read_text(encoding="utf-8"))
    ((in_use, training_rows, version),) = sql(
        connection,
        "select (select score_name from main.risk_model_metrics where is_score_in_use), "
        "training_rows, model_version from main.risk_model_metrics where score_name = 'outcome'",
    )
    assert sql(connection, "select distinct score_source from main.recovery_strategies") == [
        (in_use,)
    ]
    assert rows["Score in use"][0] == "outcome: the outcome model's loss_probability"
    assert "is_score_in_use" in rows["Score in use"][1]
    assert "score_source" in rows["Score in use"][1]
    assert rows["Outcome model"][0] == (
        f"trained on {training_rows:,} resolved loans, version {version}"
    )
    assert not [w for w in warnings if "fell back" in w]


def test_header_says_the_outcome_model_fell_back_and_why(constrained: DbtResult) -> None:
    ((status, reason, asked),) = constrained.query(
        "select model_status, fallback_reason, strategy_score "
        "from main.risk_model_metrics, main.run_settings where score_name = 'outcome'"
    )
    assert (status, asked) == ("fallback", "outcome") and "min_resolved_loans" in reason
    rows, warnings = header_of(constrained.database)
    assert rows["Score in use"][0] == (
        "segment: the write-up's segment_risk_score (run_settings.strategy_score asked for outcome)"
    )
    assert rows["Outcome model"] == (
        f"fell back: {reason}",
        "risk_model_metrics.model_status (score_name outcome)",
    )
    assert [w for w in warnings if "outcome model fell back" in w and reason in w], warnings


def test_header_warns_when_the_two_records_of_the_score_disagree(data: queries.ReportData) -> None:
    other = replace(data, score_sources=pd.DataFrame({"score_source": ["segment"], "loans": [1]}))
    facts = build_facts(other)
    assert [w for w in facts.warnings if "score_source says segment" in w], facts.warnings


def resolved_loans(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return frame(
        connection,
        "select loan_id, recovery_status <> 'Fully Recovered' as lost, loss_probability, "
        "segment_risk_score, days_past_due, threshold_strategy_code, recovery_status "
        "from main.recovery_strategies where is_resolved",
    )


def gains_of(loans: pd.DataFrame, column: str) -> tuple[list[float], list[float]]:
    """Cumulative shares of loans and losses by decile, highest score first (ties: loan_id)."""
    ordered = loans.dropna(subset=[column]).sort_values(
        [column, "loan_id"], ascending=[False, True]
    )
    n = len(ordered)
    sizes = [n // 10 + (1 if i < n % 10 else 0) for i in range(10)]  # as SQL ntile(10)
    ends = np.cumsum(sizes)
    lost = ordered["lost"].to_numpy()
    losses = np.array([lost[:end].sum() for end in ends], dtype=float)
    return [0.0, *(ends / n)], [0.0, *(losses / lost.sum())]


def test_gains_curves_are_each_scores_deciles(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["gains"]
    curves = by_meta(fig)
    assert set(curves) == {"random", "outcome", "segment", "days_past_due"}
    loans = resolved_loans(connection)
    for name, column in [
        ("outcome", "loss_probability"),
        ("segment", "segment_risk_score"),
        ("days_past_due", "days_past_due"),
    ]:
        x, y = gains_of(loans, column)
        assert numbers(curves[name].x) == pytest.approx(x), name
        assert numbers(curves[name].y) == pytest.approx(y), name
        mart = sql(
            connection,
            "select cumulative_share_of_losses from main.model_gains "
            f"where score_name = '{name}' order by decile",
        )
        assert numbers(curves[name].y)[1:] == pytest.approx([v for (v,) in mart]), name
    assert (list(curves["random"].x), list(curves["random"].y)) == ([0, 1], [0, 1])
    (in_use,) = sql(
        connection, "select score_name from main.risk_model_metrics where is_score_in_use"
    )
    widths = {name: curves[name].line.width for name in ("outcome", "segment", "days_past_due")}
    assert max(widths, key=lambda name: widths[name]) == in_use[0]
    assert "model_gains" in subtitle(fig)


def test_gains_without_the_outcome_model_say_so(
    constrained_figures: dict[str, go.Figure],
) -> None:
    fig = constrained_figures["gains"]
    assert set(by_meta(fig)) == {"random", "segment", "days_past_due"}
    assert "Outcome model fell back" in subtitle(fig) and "no outcome curve" in subtitle(fig)


def test_calibration_points_are_the_resolved_loans_in_ten_bins(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    loans = resolved_loans(connection)
    probability = loans["loss_probability"].to_numpy(dtype=float)
    assert not np.isnan(probability).any()
    bins = np.minimum(np.floor(probability * 10), 9)
    expected = (
        pd.DataFrame({"bin": bins, "p": probability, "lost": loans["lost"].astype(float)})
        .groupby("bin")
        .agg(loans=("p", "size"), mean_p=("p", "mean"), rate=("lost", "mean"))
    )
    traces_by = by_meta(figures["calibration"])
    points, counts = traces_by["calibration"], traces_by["loans"]
    assert numbers(points.x) == pytest.approx(expected["mean_p"].tolist())  # x: probability
    assert numbers(points.y) == pytest.approx(expected["rate"].tolist())  # y: loss rate
    assert [int(t.replace(",", "")) for t in points.text] == expected["loans"].tolist()
    assert numbers(counts.y) == expected["loans"].tolist()
    assert numbers(counts.x) == pytest.approx((expected.index.to_numpy() + 0.5) / 10)
    assert sum(counts.y) == len(loans)
    assert (list(traces_by["perfect"].x), list(traces_by["perfect"].y)) == ([0, 1], [0, 1])
    fig = figures["calibration"]
    assert "Observed loss rate" in fig.layout.yaxis.title.text
    assert "Loss probability" in fig.layout.xaxis2.title.text
    assert f"{len(loans):,} resolved loans in ten equal-width bins" in subtitle(fig)


def test_calibration_without_probabilities_says_the_outcome_model_fell_back(
    constrained_connection: duckdb.DuckDBPyConnection, constrained_figures: dict[str, go.Figure]
) -> None:
    assert sql(
        constrained_connection, "select count(loss_probability) from main.recovery_strategies"
    ) == [(0,)]
    fig = constrained_figures["calibration"]
    assert set(by_meta(fig)) == {"perfect"}
    notes = [a.text for a in fig.layout.annotations if a.name == "fallback"]
    assert notes == ["outcome model fell back: no probabilities"]
    assert "outcome model fell back: no probabilities" in subtitle(fig)


def test_policy_bars_are_the_comparison_and_the_policy_in_use_is_the_loans(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    bars = by_meta(figures["policy_comparison"])
    rows = sql(
        connection,
        "select policy_name, strategy_code, loss_rate, loans from main.strategy_policy_comparison "
        "where basis = 'back-test'",
    )
    assert (
        set(bars)
        == {policy for policy, _, _, _ in rows}
        == {
            "outcome",
            "segment",
            "days_past_due",
        }
    )
    for policy, code, rate, loans in rows:
        trace = bars[policy]
        index = list(trace.x).index(code)
        assert trace.y[index] == pytest.approx(rate), (policy, code)
        assert trace.customdata[index][0] == loans, (policy, code)
    # The policy in use is what the thresholds did to the resolved loans.
    resolved = resolved_loans(connection)
    outcome = bars["outcome"]
    for code, group in resolved.groupby("threshold_strategy_code"):
        assert outcome.y[list(outcome.x).index(code)] == pytest.approx(group["lost"].mean())
    assert list(outcome.x) == ["reminders", "settlement", "legal"]
    assert outcome.name.endswith("(in use)")


def test_policy_comparison_without_the_outcome_model_says_so(
    constrained_figures: dict[str, go.Figure],
) -> None:
    fig = constrained_figures["policy_comparison"]
    assert set(by_meta(fig)) == {"segment", "days_past_due"}
    assert "Outcome model fell back" in subtitle(fig)


@pytest.mark.parametrize("build", ["sample", "constrained"])
def test_reason_code_bars_count_the_work_queues_reasons(
    request: pytest.FixtureRequest, build: str
) -> None:
    connection, figures = built_figures(request, build)
    queue = frame(connection, "select * from main.collection_work_queue")
    catalog = dict(sql(connection, "select reason_code, reason from main.reason_code_catalog"))
    slots = pd.concat(
        [
            queue[["strategy_code", f"reason_code_{i}"]].set_axis(["strategy", "code"], axis=1)
            for i in (1, 2, 3)
        ]
    ).dropna()
    expected = slots.groupby(["strategy", "code"]).size().to_dict()
    assert expected  # the build gives reasons
    totals = queue.groupby("strategy_code").size().to_dict()
    drawn = {}
    for trace in traces(figures["reason_codes"], "bar"):
        for label, share, (code, count) in zip(trace.y, trace.x, trace.customdata, strict=True):
            assert label.replace("<br>", " ") == f"{code}: {catalog[code]}"
            assert share == pytest.approx(count / totals[trace.meta])
            if count:
                drawn[(trace.meta, code)] = count
    assert drawn == expected
    assert f"{len(queue):,} open loans" in subtitle(figures["reason_codes"])
    assert "collection_work_queue" in subtitle(figures["reason_codes"])


@pytest.mark.parametrize("build", ["sample", "constrained"])
def test_capacity_bars_are_the_worked_loans_and_run_settings(
    request: pytest.FixtureRequest, build: str
) -> None:
    connection, figures = built_figures(request, build)
    worked = frame(
        connection,
        "select threshold_strategy_code, intended_strategy_code, strategy_code, capacity_limited "
        "from main.recovery_strategies where is_worked",
    )
    ((legal, settlement),) = sql(
        connection, "select legal_capacity, settlement_capacity from main.run_settings"
    )
    expected_capacity = {
        "sample": (None, None),
        "constrained": (LEGAL_CAPACITY, SETTLEMENT_CAPACITY),
    }[build]
    assert (legal, settlement) == expected_capacity
    fig = figures["capacity"]
    bars = by_meta(fig)
    strategies = ["reminders", "settlement", "legal"]
    assert list(bars["threshold"].x) == list(bars["assigned"].x) == strategies
    sent = worked.groupby("threshold_strategy_code").size()
    assigned = worked.groupby("strategy_code").size()
    moved = worked[worked["capacity_limited"]].groupby("threshold_strategy_code").size()
    assert list(bars["threshold"].y) == [int(sent.get(code, 0)) for code in strategies]
    assert list(bars["assigned"].y) == [int(assigned.get(code, 0)) for code in strategies]
    assert list(bars["threshold"].customdata) == [int(moved.get(code, 0)) for code in strategies]
    capacities = {"reminders": None, "settlement": settlement, "legal": legal}
    drawn = dict(zip(bars["capacity"].x, bars["capacity"].y, strict=True))
    labels = {a.name: a.text for a in fig.layout.annotations if a.name.startswith("capacity_")}
    for code, capacity in capacities.items():
        assert drawn[code] == capacity, code
        expected = "unlimited" if capacity is None else f"{capacity:,}"
        assert labels[f"capacity_{code}"] == f"capacity: {expected}", code
    if build == "constrained":
        # Capacity binds: loans moved down, none over capacity, and a strategy
        # that turned a loan away is full. A loan's own policy (its cell's)
        # intended the strategy it was moved from; eligibility may leave the
        # legal demand below the threshold CASE's count.
        turned_away = worked[worked["capacity_limited"]].groupby("intended_strategy_code").size()
        assert turned_away.sum() > 0
        for code, capacity in (("legal", LEGAL_CAPACITY), ("settlement", SETTLEMENT_CAPACITY)):
            assert assigned.get(code, 0) <= capacity, code
            if turned_away.get(code, 0) > 0:
                assert assigned[code] == capacity, code
    else:
        assert not worked["capacity_limited"].any()
    assert f"{len(worked):,} open loans" in subtitle(fig)


# Runs in the page: records errors from the first script on, then, once the
# charts are drawn, writes what it found into the DOM for --dump-dom.
PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', e => window.__errors.push(
  String(e.message || (e.target && (e.target.src || e.target.href)) || e)), true);
window.addEventListener('unhandledrejection', e => window.__errors.push(String(e.reason)));
const __error = console.error;
console.error = (...args) => {
  window.__errors.push(args.map(String).join(' '));
  __error(...args);
};
</script>"""
PROBE_TAIL = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const drawn = plots.filter(plot => {
    const svg = plot.querySelector('svg.main-svg');
    const box = svg && svg.getBoundingClientRect();
    return box && box.width > 0 && box.height > 0 && (plot.data || []).length > 0;
  });
  const out = document.createElement('pre');
  out.id = 'report-check';
  out.textContent = JSON.stringify({
    plots: plots.length, drawn: drawn.length, errors: window.__errors,
    resources: performance.getEntriesByType('resource').map(entry => entry.name)});
  document.body.appendChild(out);
}, 2000));
</script>"""


@pytest.mark.parametrize("build", ["sample", "constrained"])
def test_every_chart_renders_in_headless_chromium_offline(
    request: pytest.FixtureRequest, build: str, tmp_path: Path
) -> None:
    browser = chromium()
    if build == "sample":
        report_file = request.getfixturevalue("report_file")
        figures = request.getfixturevalue("figures")
    else:
        database = request.getfixturevalue("constrained").database
        report_file = write_report(database, tmp_path / "constrained.html")
        figures = request.getfixturevalue("constrained_figures")
    page_html = report_file.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(
        page_html.replace(
            '<meta charset="utf-8">', '<meta charset="utf-8">' + PROBE_HEAD, 1
        ).replace("</body>", PROBE_TAIL + "</body>", 1),
        encoding="utf-8",
    )
    completed = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,900",
            "--virtual-time-budget=20000",
            "--dump-dom",
            probed.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="report-check">(.*?)</pre>', completed.stdout, re.DOTALL)
    assert found, completed.stderr[-2000:]
    result = json.loads(html.unescape(found.group(1)))
    assert result["plots"] == result["drawn"] == len(figures), result
    assert result["errors"] == [], result
    assert not [name for name in result["resources"] if not name.startswith("file:")], result
