"""The HTML report: each chart and header fact against SQL over the same file; a browser render.

Expected values come from SQL over the built file, from the README, or from
hand-made data (a copy of the file with other thresholds, quarantined rows or
a build_info row; hand-written numbers), never from the report's own helpers,
so that each test fails when the report is wrong.
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
import plotly.graph_objects as go
import pytest
import yaml
from plotly.offline import get_plotlyjs

from conftest import DbtResult, needs
from loan_recovery import build_info
from loan_recovery.build_info import BuildInfo
from loan_recovery.cli import main
from loan_recovery.config import DB_PATH_ENV, cluster_features, database_path, project_dir
from loan_recovery.report import ReportError, default_report_path, page, queries, write_report
from loan_recovery.report.facts import build_facts
from loan_recovery.report.model_card import model_card_sentence

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


@pytest.fixture(scope="module")
def altered(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the build with other thresholds in run_settings and three quarantined rows.

    The strategies are left as the build assigned them: the report must draw
    what run_settings says, not re-derive anything.
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
    return database


def sql(connection: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    return connection.execute(query).fetchall()


def numbers(values: Any) -> list[float]:
    return [float(v) for v in values]


def traces(fig: go.Figure, kind: str) -> list[Any]:
    return [trace for trace in fig.data if trace.type == kind]


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


def test_page_shows_the_readme_charts_in_order_under_their_questions(report_file: Path) -> None:
    page_html = report_file.read_text(encoding="utf-8")
    sections = re.findall(
        r'<section id="(\w+)"><h2>(.*?)</h2><p class="question">(.*?)</p>', page_html
    )
    assert [html.unescape(question) for _, _, question in sections] == readme_chart_questions()
    nav = re.findall(r'<li><a href="#(\w+)">', page_html)
    assert nav == [key for key, _, _ in sections]
    assert page_html.count('class="plotly-graph-div"') == len(sections)


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
        "select payment_history, recovery_status, count(*) from staging.stg_loans group by all",
    )
    assert drawn == {(history, status): count for history, status, count in expected}


def test_missed_payment_boxes_are_exact_quartiles_and_fences_with_sampled_points(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    boxes = traces(figures["missed_payments_by_status"], "box")
    drawn = {trace.name: trace for trace in boxes if trace.q1 is not None}
    values: dict[str, list[float]] = defaultdict(list)
    for status, missed in sql(
        connection, "select recovery_status, num_missed_payments from staging.stg_loans"
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
    assert points == min(5_000, sum(len(v) for v in values.values()))


def test_point_clouds_are_a_deterministic_sample_of_real_loans_that_says_so(
    connection: duckdb.DuckDBPyConnection,
) -> None:
    small = queries.read_report_data(connection, sample_rows=500)
    again = queries.read_report_data(connection, sample_rows=500)
    assert small.sample["loan_id"].tolist() == again.sample["loan_id"].tolist()
    assert small.sample["loan_id"].is_unique and len(small.sample) == 500
    total = sql(connection, "select count(*) from staging.stg_loans")[0][0]
    figures = page.build_figures(small)
    note = f"sample of 500 of {total:,} loans"
    for key in ["loan_amount_distribution", "missed_payments_by_status"]:
        assert note in figures[key].layout.title.subtitle.text, key
    assert note.capitalize() in figures["income_vs_loan_by_status"].layout.title.subtitle.text
    scatter = traces(figures["income_vs_loan_by_status"], "scatter")
    drawn = sorted(
        (float(x), float(y)) for trace in scatter for x, y in zip(trace.x, trace.y, strict=True)
    )
    ids = ", ".join(f"'{loan_id}'" for loan_id in small.sample["loan_id"])
    assert drawn == sorted(
        sql(
            connection,
            f"select monthly_income, loan_amount from staging.stg_loans where loan_id in ({ids})",
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
        sql(connection, "select strategy_code, count(*) from main.recovery_strategies group by 1")
    )
    ((legal, settlement),) = sql(
        connection, "select legal_threshold, settlement_threshold from main.run_settings"
    )
    lines = {shape.name: (shape.x0, shape.x1) for shape in fig.layout.shapes}
    assert lines == {"legal_threshold": (legal, legal), "settlement_threshold": (settlement,) * 2}


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
        "from main.recovery_strategies group by all",
    )
    segment_ids = sorted({segment for _, segment, _, _ in rows})
    for code in {code for code, _, _, _ in rows}:
        by_segment = {segment: (n, s) for c, segment, n, s in rows if c == code}
        loans = [by_segment.get(segment, (0, 0))[0] for segment in segment_ids]
        outstanding = [by_segment.get(segment, (0, 0))[1] for segment in segment_ids]
        assert drawn[(code, "loans")] == loans
        assert drawn[(code, "outstanding")] == pytest.approx(outstanding)


def test_model_card_shows_the_metrics_both_aucs_and_what_they_mean(
    connection: duckdb.DuckDBPyConnection, figures: dict[str, go.Figure]
) -> None:
    fig = figures["model_card"]
    (bars,) = traces(fig, "bar")
    metrics = connection.execute("select * from main.risk_model_metrics").df().iloc[0]
    assert numbers(bars.x) == pytest.approx(
        [metrics["roc_auc_outcome"], metrics["oof_roc_auc_label"]]
    )
    (table,) = traces(fig, "table")
    cells = dict(zip(*table.cells.values, strict=True))
    column_of = {
        "Scored loans": "scored_loans",
        "Training rows (out-of-bag)": "training_rows",
        "Out-of-bag ROC AUC vs label": "oof_roc_auc_label",
        "Out-of-bag Brier score vs label": "oof_brier_label",
        "ROC AUC vs actual outcome": "roc_auc_outcome",
    }
    for label, column in column_of.items():
        assert float(cells[label].replace(",", "")) == pytest.approx(metrics[column], abs=5e-4)
    assert cells["Model version"] == metrics["model_version"]
    (meaning,) = [a for a in fig.layout.annotations if a.name == "meaning"]
    assert "reproduces the segmentation" in meaning.text  # the sample's label AUC is above 0.9
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
    sentence = model_card_sentence(label_auc, outcome_auc)
    assert all(part in sentence for part in expected), sentence


def test_header_without_build_info_gives_the_marts_facts_and_says_so(
    connection: duckdb.DuckDBPyConnection, report_file: Path
) -> None:
    rows, warnings = parse_header(report_file.read_text(encoding="utf-8"))
    ((loans, quarantined, built, version, legal, settlement),) = sql(
        connection,
        "select (select count(*) from staging.stg_loans), "
        "(select count(*) from main.quarantined_loans), "
        "strftime(timezone('UTC', built_at), '%Y-%m-%d %H:%M:%S') || ' UTC', model_version, "
        "legal_threshold, settlement_threshold "
        "from main.risk_model_metrics, main.run_settings",
    )
    assert rows["Loans reported (clean)"] == (f"{loans:,}", "count of staging.stg_loans")
    assert rows["Quarantined rows"][0].startswith(f"{quarantined:,} (")
    assert rows["Built"][0] == built
    assert rows["Risk model"][0] == version
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


def describing(connection: duckdb.DuckDBPyConnection, **overrides: Any) -> BuildInfo:
    """A build_info row describing the build in ``connection`` (from SQL), with overrides."""
    ((clean, quarantined, model_version),) = sql(
        connection,
        "select (select count(*) from staging.stg_loans), "
        "(select count(*) from main.quarantined_loans), "
        "(select model_version from main.risk_model_metrics)",
    )
    info = BuildInfo(
        build_id="b-1",
        started_at=datetime(2026, 1, 1, 10, 0, 0),
        finished_at=datetime(2026, 1, 1, 10, 1, 0),
        input_file="/data/book.parquet",
        input_sha256="0" * 64,
        input_bytes=1,
        rows_in=clean + quarantined,
        rows_clean=clean,
        rows_quarantined=quarantined,
        model_version=model_version,
        project_version="0.1.0",
        git_commit=None,
        dbt_version=None,
        duckdb_version=duckdb.__version__,
    )
    return replace(info, **overrides)


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


def _bad_database(kind: str, tmp_path: Path) -> Path:
    """A --db that cannot be reported on, made by hand."""
    path = tmp_path / {"csv": "book.csv", "directory": "builds"}.get(kind, f"{kind}.duckdb")
    if kind == "csv":
        path.write_text("Loan_ID,Loan_Amount\nLN_1,1000\n", encoding="utf-8")
    elif kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.touch()
    elif kind == "corrupt":  # DuckDB's magic bytes, then nothing valid
        path.write_bytes(bytes(8) + b"DUCK" + bytes(5000))
    elif kind == "unbuilt":
        with duckdb.connect(str(path)) as writable:
            writable.execute("create table main.stg_loans (loan_id varchar)")
    return path


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("missing", "run `dbt build` first"),
        ("directory", "is a directory"),
        ("csv", "is not a DuckDB database file"),
        ("empty", "is empty"),
        ("corrupt", "cannot open"),
        ("unbuilt", "lacks staging.stg_loans, main.quarantined_loans"),
    ],
)
def test_cli_says_in_one_line_what_is_wrong_with_the_db(
    kind: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = _bad_database(kind, tmp_path)
    assert main(["report", "--db", str(database), "--out", str(tmp_path / "r.html")]) != 0
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(database) in error and problem in error, error
    with pytest.raises(ReportError):
        queries.connect(database)


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


def chromium() -> str:
    """The browser, else a skip; in CI (CI=true) a missing browser fails instead of skipping."""
    needs(CHROMIUM is not None, "chromium not installed (apt-get install chromium; .ci/run does)")
    assert CHROMIUM is not None
    return CHROMIUM


def test_every_chart_renders_in_headless_chromium_offline(
    report_file: Path, figures: dict[str, go.Figure], tmp_path: Path
) -> None:
    browser = chromium()
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
