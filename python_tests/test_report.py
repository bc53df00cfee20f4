"""The HTML report: every chart's data against SQL over the same file, and a real browser render."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
import pytest
import yaml

from conftest import DbtResult
from loan_recovery import report
from loan_recovery.cli import main
from loan_recovery.config import DB_PATH_ENV, database_path, project_dir, project_vars

CHROMIUM = shutil.which("chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


@pytest.fixture(scope="module")
def connection(sample_build: DbtResult) -> Iterator[duckdb.DuckDBPyConnection]:
    with report.connect(sample_build.database) as connection:
        yield connection


@pytest.fixture(scope="module")
def data(connection: duckdb.DuckDBPyConnection) -> report.ReportData:
    return report.read_report_data(connection)


@pytest.fixture(scope="module")
def facts(connection: duckdb.DuckDBPyConnection) -> report.BuildFacts:
    return report.read_build_facts(connection, "sample")


@pytest.fixture(scope="module")
def figures(data: report.ReportData, facts: report.BuildFacts) -> dict[str, go.Figure]:
    return report.build_figures_from(data, facts)


@pytest.fixture(scope="module")
def report_file(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return report.write_report(
        sample_build.database, tmp_path_factory.mktemp("report") / "report.html"
    )


def sql(connection: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    return connection.execute(query).fetchall()


def numbers(values: Any) -> list[float]:
    return [float(v) for v in values]


def traces(fig: go.Figure, kind: str) -> list[Any]:
    return [trace for trace in fig.data if trace.type == kind]


def test_every_chart_is_built_in_page_order_with_titles_and_axis_units(
    figures: dict[str, go.Figure],
) -> None:
    assert list(figures) == list(report.CHARTS)
    for key, fig in figures.items():
        assert fig.layout.template.layout.paper_bgcolor == "white", key  # plotly_white
        assert fig.layout.title.text and fig.layout.title.subtitle.text, key
        numeric_axes = [
            axis
            for name, axis in fig.layout.to_plotly_json().items()
            if re.fullmatch(r"[xy]axis\d*", name) and axis.get("title", {}).get("text")
        ]
        assert numeric_axes, key
        for axis in numeric_axes:
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
        "select payment_history, recovery_status, count(*) from staging.stg_loans group by all",
    )
    assert drawn == {(history, status): count for history, status, count in expected}


def test_missed_payment_boxes_are_exact_quartiles_with_sampled_points(
    connection: duckdb.DuckDBPyConnection, data: report.ReportData, figures: dict[str, go.Figure]
) -> None:
    boxes = traces(figures["missed_payments_by_status"], "box")
    stats = {trace.name: trace for trace in boxes if trace.q1 is not None}
    expected = sql(
        connection,
        "select recovery_status, quantile_cont(num_missed_payments, 0.25), "
        "quantile_cont(num_missed_payments, 0.5), quantile_cont(num_missed_payments, 0.75), "
        "max(num_missed_payments) from staging.stg_loans group by all",
    )
    assert set(stats) == {row[0] for row in expected}
    for status, q1, median, q3, largest in expected:
        box = stats[status]
        assert numbers([box.q1[0], box.median[0], box.q3[0]]) == pytest.approx([q1, median, q3])
        assert box.upperfence[0] <= min(largest, q3 + 1.5 * (q3 - q1))
    points = sum(len(trace.y) for trace in boxes if trace.boxpoints == "all")
    assert points == len(data.sample) == min(report.SAMPLE_ROWS, data.loan_count)


def test_point_clouds_are_a_deterministic_sample_that_says_so(
    connection: duckdb.DuckDBPyConnection, facts: report.BuildFacts
) -> None:
    small = report.read_report_data(connection, sample_rows=500)
    again = report.read_report_data(connection, sample_rows=500)
    assert small.sample["loan_id"].tolist() == again.sample["loan_id"].tolist()
    assert small.sample["loan_id"].is_unique and len(small.sample) == 500
    figures = report.build_figures_from(small, facts)
    note = "sample of 500 of 2,000 loans"
    for key in ["loan_amount_distribution", "missed_payments_by_status"]:
        assert note in figures[key].layout.title.subtitle.text, key
    assert note.capitalize() in figures["income_vs_loan_by_status"].layout.title.subtitle.text
    scatter = traces(figures["income_vs_loan_by_status"], "scatter")
    assert sum(len(trace.x) for trace in scatter) == 500
    # Aggregates stay exact whatever the sample.
    (bars,) = traces(figures["loan_amount_distribution"], "bar")
    assert sum(bars.y) == 2000


def test_segment_profiles_show_the_mart_and_agree_with_the_book(
    connection: duckdb.DuckDBPyConnection, data: report.ReportData, figures: dict[str, go.Figure]
) -> None:
    fig = figures["segment_profiles"]
    (sizes,) = traces(fig, "bar")
    (heatmap,) = traces(fig, "heatmap")
    mart = sql(
        connection, "select loan_count, mean_loan_amount from borrower_segments order by segment_id"
    )
    assert list(sizes.y) == [count for count, _ in mart]
    row = list(report.profile_z_scores(data).index).index("loan_amount")
    assert list(heatmap.text[row]) == [report._format_value(mean) for _, mean in mart]
    # Segment means weighted by size are the book's means: z-scores average to zero.
    z = report.profile_z_scores(data)
    weights = data.segments.sort_values("segment_id")["loan_count"].to_numpy()
    for feature, values in z.iterrows():
        assert float((values.to_numpy() * weights).sum()) == pytest.approx(0, abs=1e-6), feature


def test_risk_score_bars_match_the_mart_and_thresholds_are_drawn_at_the_vars(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["risk_score_distribution"]
    drawn = {trace.meta: sum(trace.y) for trace in traces(fig, "bar")}
    assert drawn == dict(
        sql(connection, "select strategy_code, count(*) from recovery_strategies group by 1")
    )
    lines = {shape.name: (shape.x0, shape.x1) for shape in fig.layout.shapes}
    for name in ["legal_threshold", "settlement_threshold"]:
        assert lines[name] == (project_vars()[name], project_vars()[name])


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
        "from recovery_strategies group by all",
    )
    segment_ids = sorted({segment for _, segment, _, _ in rows})
    for code in {code for code, _, _, _ in rows}:
        by_segment = {segment: (n, s) for c, segment, n, s in rows if c == code}
        loans = [by_segment.get(segment, (0, 0))[0] for segment in segment_ids]
        outstanding = [by_segment.get(segment, (0, 0))[1] for segment in segment_ids]
        assert drawn[(code, "loans")] == loans
        assert drawn[(code, "outstanding")] == pytest.approx(outstanding)


def test_model_card_shows_both_aucs_and_says_what_they_mean(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["model_card"]
    (bars,) = traces(fig, "bar")
    label_auc, outcome_auc = sql(
        connection, "select oof_roc_auc_label, roc_auc_outcome from risk_model_metrics"
    )[0]
    assert numbers(bars.x) == pytest.approx([outcome_auc, label_auc])
    (meaning,) = [a for a in fig.layout.annotations if a.name == "meaning"]
    assert "reproduces the segmentation" in meaning.text
    assert "does not rank" in meaning.text  # the sample's outcome AUC is near 0.5


@pytest.mark.parametrize(
    ("label_auc", "outcome_auc", "expected"),
    [
        (0.99, 0.51, ["reproduces the segmentation", "near 0.5: the score does not rank"]),
        (0.80, 0.70, ["only partly reproduces", "ranks recovery better than chance"]),
        (0.95, 0.30, ["reproduces the segmentation", "worse than chance"]),
    ],
)
def test_model_card_sentence_follows_the_numbers(
    label_auc: float, outcome_auc: float, expected: list[str]
) -> None:
    sentence = report.model_card_sentence(label_auc, outcome_auc)
    assert all(part in sentence for part in expected), sentence


def test_header_without_build_info_falls_back_and_names_its_sources(
    connection: duckdb.DuckDBPyConnection, facts: report.BuildFacts
) -> None:
    assert facts.loans == report.Sourced(2000, "count of stg_loans")
    assert facts.quarantined.source == "count of quarantined_loans"
    assert (
        facts.quarantined.value == sql(connection, "select count(*) from quarantined_loans")[0][0]
    )
    assert facts.legal_threshold == report.Sourced(0.75, "dbt_project.yml vars default")
    assert facts.settlement_threshold == report.Sourced(0.5, "dbt_project.yml vars default")
    assert facts.built_at.source.startswith("risk_model_metrics.built_at")
    assert any("no build_info" in warning for warning in facts.warnings)


def _with_build_info(source: Path, target: Path, **overrides: Any) -> Path:
    """A copy of the built file with one build_info row (the fields the report asks for)."""
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as connection:
        model_version = connection.execute(
            "select model_version from risk_model_metrics"
        ).fetchone()
        row = {
            "build_id": "b-1",
            "started_at": "2026-01-01 10:00:00",
            "finished_at": "2026-01-01 10:01:00",
            "input_file": "/data/book.parquet",
            "rows_in": 2000,
            "rows_clean": 2000,
            "rows_quarantined": 0,
            "model_version": model_version[0] if model_version else None,
            "legal_threshold": 0.75,
            "settlement_threshold": 0.5,
            **overrides,
        }
        columns = ", ".join(
            f"cast(${name} as timestamp) as {name}"
            if name.endswith("_at")
            else f"${name} as {name}"
            for name in row
        )
        connection.execute(f"create table build_info as select {columns}", row)
    return target


def test_header_prefers_a_matching_build_info(sample_build: DbtResult, tmp_path: Path) -> None:
    database = _with_build_info(sample_build.database, tmp_path / "b.duckdb")
    with report.connect(database) as connection:
        facts = report.read_build_facts(connection)
    assert facts.input_file == report.Sourced("/data/book.parquet", "build_info.input_file")
    assert facts.legal_threshold.source == "build_info.legal_threshold"
    assert facts.loans.source == "build_info.rows_clean"
    assert facts.warnings == ()


def test_recorded_thresholds_are_drawn_and_checked_against_the_assignment(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    database = _with_build_info(
        sample_build.database, tmp_path / "b.duckdb", legal_threshold=0.9, settlement_threshold=0.2
    )
    with report.connect(database) as connection:
        facts = report.read_build_facts(connection)
        fig = report.risk_score_figure(
            report.read_report_data(connection, 10),
            facts.legal_threshold.value,
            facts.settlement_threshold.value,
        )
    lines = {shape.name: shape.x0 for shape in fig.layout.shapes}
    assert lines == {"legal_threshold": 0.9, "settlement_threshold": 0.2}
    assert any("not assigned as these thresholds say" in w for w in facts.warnings)


@pytest.mark.parametrize(
    ("dbt_vars", "legal", "source"),
    [
        ('{"legal_threshold": 0.8, "loans_path": "x.csv"}', 0.8, "build_info.dbt_vars"),
        ('{"loans_path": "x.csv"}', 0.75, "dbt_project.yml default (not in build_info.dbt_vars)"),
    ],
)
def test_thresholds_come_from_the_recorded_vars(dbt_vars: str, legal: float, source: str) -> None:
    recorded = report.recorded_threshold({"dbt_vars": dbt_vars}, "legal_threshold")
    assert recorded == report.Sourced(legal, source)
    assert report.recorded_threshold({}, "legal_threshold").source == (
        "dbt_project.yml vars default"
    )


def test_stale_build_info_is_ignored(sample_build: DbtResult, tmp_path: Path) -> None:
    database = _with_build_info(sample_build.database, tmp_path / "b.duckdb", model_version="old")
    with report.connect(database) as connection:
        facts = report.read_build_facts(connection)
    assert facts.input_file.source == "no build_info"
    assert any("build_info ignored" in w for w in facts.warnings)


def test_html_is_self_contained_with_plotly_js_once(
    report_file: Path, figures: dict[str, go.Figure]
) -> None:
    page = report_file.read_text(encoding="utf-8")
    assert page.count(report.get_plotlyjs()[:300]) == 1
    assert page.count('class="plotly-graph-div"') == len(figures)
    remote = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", page
    )
    assert not remote
    assert report_file.stat().st_size < 20_000_000


def test_report_reads_only_the_relations_its_exposure_declares(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    exposures = yaml.safe_load((project_dir() / "models/marts/_exposures.yml").read_text())
    (exposure,) = [e for e in exposures["exposures"] if e["name"] == "loan_recovery_report"]
    declared = [re.sub(r"^ref\('(\w+)'\)$", r"\1", ref) for ref in exposure["depends_on"]]
    assert sorted(declared) == sorted(report.REPORT_RELATIONS)
    only = tmp_path / "only.duckdb"
    with duckdb.connect(str(only)) as connection:
        connection.execute(f"attach '{sample_build.database}' as built (read_only)")
        for name in declared:
            connection.execute(f"create table {name} as select * from built.{name}")
    assert report.write_report(only, tmp_path / "r.html").stat().st_size > 0


def test_cli_defaults_to_the_env_database(
    sample_build: DbtResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DB_PATH_ENV, str(sample_build.database))
    assert database_path() == sample_build.database
    out = tmp_path / "nested" / "report.html"
    assert main(["report", "--out", str(out)]) == 0
    assert out.is_file()
    assert report.default_report_path() == project_dir() / "reports/loan_recovery_report.html"


def test_cli_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "run `dbt build` first" in capsys.readouterr().err


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


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install chromium; .ci/run does)"
)
def test_every_chart_renders_in_headless_chromium_offline(
    report_file: Path, figures: dict[str, go.Figure], tmp_path: Path
) -> None:
    page = report_file.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(
        page.replace('<meta charset="utf-8">', '<meta charset="utf-8">' + PROBE_HEAD, 1).replace(
            "</body>", PROBE_TAIL + "</body>", 1
        ),
        encoding="utf-8",
    )
    completed = subprocess.run(
        [
            str(CHROMIUM),
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
