"""The report's first screen (the cycle summary in money) and the experiment's sections.

Expected numbers come from SQL over the built file or from hand-made copies
of it (an earlier cycle in cycle_trend, loans moved by capacity, a learned
action effect), never from the report's helpers. The browser test renders
the page in headless Chromium at 1280x800 and reads what lies in the first
800 pixels; it saves the screenshot for the README.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from conftest import DbtResult
from loan_recovery.config import project_dir
from loan_recovery.report import page, queries, write_report
from report.browser import CHROMIUM_FLAGS, chromium

pytestmark = pytest.mark.dbt

SCREENSHOT = project_dir() / "docs" / "img" / "report-first-screen.png"


def page_of(database: Path) -> str:
    with queries.connect(database) as connection:
        data = queries.read_report_data(connection, sample_rows=10)
    from loan_recovery.report.facts import build_facts

    return page.render_html(page.build_figures(data), build_facts(data), data)


def amount(text: str) -> tuple[float, float]:
    """A displayed amount ('7.8 M', '595,000') as a number and the rounding it allows."""
    text = text.strip()
    if text.endswith(" M"):
        return float(text[:-2].replace(",", "")) * 1e6, 0.05e6
    return float(text.replace(",", "")), 0.5


def summary_cells(markup: str) -> dict[str, dict[str, str]]:
    """The money table of the first screen: strategy -> column -> text."""
    table = re.search(r'<table class="money" id="cycle-money">(.*?)</table>', markup, re.S)
    assert table, "no money table"
    rows = {}
    for strategy, body in re.findall(r'<tr[^>]*data-strategy="(\w+)">(.*?)</tr>', table.group(1)):
        rows[strategy] = dict(re.findall(r'<td data-column="(\w+)">(.*?)</td>', body))
    return rows


def card(markup: str, key: str) -> str:
    found = re.search(rf'<div class="card[^"]*" data-fact="{key}">(.*?)</div>', markup, re.S)
    assert found, key
    return html.unescape(re.sub(r"<[^>]+>", " | ", found.group(1)))


@pytest.fixture(scope="module")
def sample_page(sample_build: DbtResult) -> str:
    return page_of(sample_build.database)


def test_first_screen_money_is_the_work_queue_per_strategy(
    sample_build: DbtResult, sample_page: str
) -> None:
    cells = summary_cells(sample_page)
    expected = {
        code: (loans, at_risk, recovery, cost, net)
        for code, loans, at_risk, recovery, cost, net in sample_build.query(
            "select strategy_code, count(*), sum(amount_at_risk), sum(expected_recovery), "
            "sum(expected_cost), sum(expected_net_value) from main.collection_work_queue "
            "group by all"
        )
    }
    assert set(expected) <= set(cells) and "all" in cells
    columns = ("amount_at_risk", "expected_recovery", "expected_cost", "expected_net_value")
    for code, (loans, *money) in expected.items():
        assert int(cells[code]["loans"].replace(",", "")) == loans, code
        for column, value in zip(columns, money, strict=True):
            shown, tolerance = amount(cells[code][column])
            assert abs(shown - value) <= tolerance, (code, column, shown, value)
    total_net, tolerance = amount(cells["all"]["expected_net_value"])
    assert abs(total_net - sum(v[4] for v in expected.values())) <= tolerance
    (as_of,) = sample_build.query("select as_of_date from main.run_settings")[0]
    assert f"cycle {str(as_of)[:10]}</h1>" in sample_page


def test_first_screen_says_first_cycle_and_the_drift_and_back_test(
    sample_build: DbtResult, sample_page: str
) -> None:
    assert "first cycle" in card(sample_page, "change")
    worst = sample_build.query(
        "select stability from main.model_monitoring order by psi desc limit 1"
    )[0][0]
    assert worst in card(sample_page, "drift")
    auc, low, high, base = sample_build.query(
        "select roc_auc, roc_auc_ci_low, roc_auc_ci_high, base_rate "
        "from main.risk_model_metrics where is_score_in_use"
    )[0]
    backtest = card(sample_page, "backtest")
    assert f"AUC {auc:.3f}" in backtest and f"{low:.3f} to {high:.3f}" in backtest
    assert f"{base:.1%}" in backtest
    # The registry id to approve is run_settings.model_version (issue 26: one model id).
    (version,) = sample_build.query("select model_version from main.run_settings")[0]
    model = card(sample_page, "model")
    assert version and f"Model to approve | | {version}" in model.replace("  ", " ")
    assert f"loan-recovery models approve {version}" in model


@pytest.fixture(scope="module")
def two_cycles(sample_build: DbtResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with an earlier cycle in cycle_trend, loans moved by capacity, and a
    learned settlement effect: what a later cycle's file holds, made by hand."""
    database = tmp_path_factory.mktemp("cycles") / "cycles.duckdb"
    shutil.copy(sample_build.database, database)
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            """
            insert into main.cycle_trend by name
            select * replace (
                as_of_date - interval 31 day as as_of_date, open_loans + 40 as open_loans,
                amount_at_risk + 2500000 as amount_at_risk, legal_loans + 7 as legal_loans,
                'moderate' as drift_verdict, 300 as resolved_loans, 0.25 as loss_rate_so_far)
            from main.cycle_trend
            """
        )
        connection.execute(
            """
            update main.collection_work_queue set capacity_limited = true,
                value_given_up_to_capacity = 1000000
            where strategy_code = 'settlement' and queue_rank <= 3
            """
        )
        connection.execute(
            """
            update main.action_effects set source = 'learned', randomised_outcomes = 80,
                measured_effect = 0.123, measured_effect_ci_low = 0.051,
                measured_effect_ci_high = 0.195, effect_in_use = 0.118
            where strategy_code = 'settlement'
            """
        )
    return database


def test_change_since_the_last_cycle_is_cycle_trend(two_cycles: Path) -> None:
    markup = page_of(two_cycles)
    change = card(markup, "change")
    assert "first cycle" not in change
    assert "-40 open loans" in change and "-2.5 M at risk" in change, change
    assert "legal -7" in change
    assert "drift moderate ->" in change
    assert "300 of" in change and "25% not fully recovered" in change


def test_capacity_card_counts_the_moved_loans_and_the_value_given_up(two_cycles: Path) -> None:
    markup = page_of(two_cycles)
    capacity = card(markup, "capacity")
    with duckdb.connect(str(two_cycles), read_only=True) as connection:
        (at_risk,) = connection.execute(
            "select sum(amount_at_risk) from main.collection_work_queue where capacity_limited"
        ).fetchone() or (0,)
    assert "3 loans moved down" in capacity, capacity
    assert "given up: 3.0 M" in capacity
    assert "3 now in settlement" in capacity
    shown = re.search(r"moved down, ([\d.,]+(?: M)?) at risk", capacity)
    assert shown, capacity
    value, tolerance = amount(shown.group(1))
    assert abs(value - at_risk) <= tolerance
    assert summary_cells(markup)["settlement"]["moved_down_loans"] == "3"


def effects_rows(markup: str) -> dict[str, list[str]]:
    table = re.search(r'<table class="numbers effects">(.*?)</table>', markup, re.S)
    assert table
    rows = [
        [html.unescape(cell) for cell in re.findall(r"<td>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table.group(1))
    ]
    return {row[0]: row for row in rows if row}


def test_a_prior_effect_is_flagged_and_no_learned_number_is_shown(sample_page: str) -> None:
    rows = effects_rows(sample_page)
    for code in ("settlement", "legal"):
        assert rows[code][1] == "prior"
        assert rows[code][3].startswith("not learned")
        assert "assumption" in rows[code][4]
    assert "still assumptions (prior)" in sample_page
    assumptions = re.search(r'<table class="numbers assumptions">(.*?)</table>', sample_page, re.S)
    assert assumptions
    flagged = re.findall(r"<tr><td>(.*?)</td>.*?<td>(assumption[^<]*)</td></tr>", assumptions[1])
    names = [name for name, _ in flagged]
    assert names == [
        "cost of legal",
        "cost of settlement",
        "cost of reminders",
        "settlement haircut",
        "partial recovery share",
        "prior effect of settlement",
        "prior effect of legal",
    ]
    assert all(flag.startswith("assumption") for _, flag in flagged)


def test_a_learned_effect_shows_its_measured_interval(two_cycles: Path) -> None:
    markup = page_of(two_cycles)
    rows = effects_rows(markup)
    assert rows["settlement"][3] == "+12.3% (+5.1% to +19.5%)"
    assert rows["settlement"][4] == "+11.8% learned"
    assert rows["legal"][3].startswith("not learned")
    with queries.connect(two_cycles) as connection:
        fig = page.build_figures(queries.read_report_data(connection, 10))["action_effects"]
    by_source = {trace.meta: list(trace.x) for trace in fig.data}
    assert by_source == {"learned": ["settlement"], "prior": ["legal"]}


def test_glossary_defines_the_four_measures(sample_page: str) -> None:
    glossary = re.search(r'<dl class="glossary">(.*?)</dl>', sample_page, re.S)
    assert glossary
    assert re.findall(r"<dt>(.*?)</dt>", glossary.group(1)) == ["AUC", "Brier score", "ECE", "PSI"]


VISIBLE_PROBE = """<script>
window.addEventListener('load', () => setTimeout(() => {
  const seen = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.textContent.trim()) continue;
    const range = document.createRange(); range.selectNodeContents(node);
    const box = range.getBoundingClientRect();
    if (box.width > 0 && box.top >= 0 && box.bottom <= 800) seen.push(node.textContent.trim());
  }
  const out = document.createElement('pre');
  out.id = 'first-screen';
  out.style.display = 'none';
  out.textContent = JSON.stringify({seen: seen, scroll: window.scrollY,
    width: window.innerWidth, height: window.innerHeight});
  document.body.appendChild(out);
}, 500));
</script>"""

BROWSER_FLAGS = [
    *CHROMIUM_FLAGS,
    "--hide-scrollbars",
    "--window-size=1280,800",
    "--virtual-time-budget=8000",
]


def test_first_screen_at_1280x800_shows_the_cycle_summary_with_money(
    sample_build: DbtResult, tmp_path: Path
) -> None:
    browser = chromium()
    report = write_report(sample_build.database, tmp_path / "report.html")
    probed = tmp_path / "probed.html"
    probed.write_text(
        report.read_text(encoding="utf-8").replace("</body>", VISIBLE_PROBE + "</body>", 1),
        encoding="utf-8",
    )
    common = [browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dumped = subprocess.run(
        [*common, "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="first-screen"[^>]*>(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stderr[-2000:]
    probe = json.loads(html.unescape(found.group(1)))
    # Layout depends on the width only; the text whose box ends within the first 800
    # CSS pixels of a 1280-wide page is what the 1280x800 screenshot below shows.
    assert (probe["width"], probe["scroll"]) == (1280, 0)
    visible = probe["seen"]
    (as_of,) = sample_build.query("select as_of_date from main.run_settings")[0]
    assert f"Loan-recovery report: cycle {str(as_of)[:10]}" in visible
    for words in ("Expected net recovery", "Amount at risk", "Capacity left undone", "Drift"):
        assert words in visible, (words, visible)
    assert any(text.startswith("AUC ") for text in visible), visible
    assert "first cycle" in visible
    # The money itself: every strategy's expected net recovery and the total are on screen.
    cells = summary_cells(report.read_text(encoding="utf-8"))
    for code in [
        *(
            row[0]
            for row in sample_build.query(
                "select strategy_code from main.recovery_strategy_catalog"
            )
        ),
        "all",
    ]:
        assert cells[code]["expected_net_value"] in visible, (code, visible)
        assert cells[code]["amount_at_risk"] in visible, (code, visible)
    shot = tmp_path / "first-screen.png"
    taken = subprocess.run(
        [*common, f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.is_file(), taken.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")) == (
        1280,
        800,
    )
