"""challenger_results' lift and interval, against published values computed another way.

The marts' SQL is compiled once by dbt and run on hand-made decision_log and
decision_outcomes tables: challenger_strategy_results (the per-strategy
counts) first, then challenger_results, which adds them up per cell. The
expected intervals are Newcombe's own worked
examples (Statistics in Medicine 17, 1998, "Interval estimation for the
difference between independent proportions", method 10, the hybrid score
interval), not numbers produced by this project's code.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from conftest import run_dbt

pytestmark = pytest.mark.dbt

CYCLE = "2026-01-31"

# (losses, resolved) of the challenger and the champion cells; Newcombe's
# interval for challenger minus champion.
NEWCOMBE = [
    ((56, 70), (48, 80), (0.0524, 0.3339)),
    ((9, 10), (3, 10), (0.1705, 0.8090)),
    ((6, 7), (2, 7), (0.0582, 0.8062)),
    ((5, 56), (0, 29), (-0.0381, 0.1926)),
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """challenger_strategy_results and challenger_results, compiled against results.duckdb."""
    workdir = tmp_path_factory.mktemp("challenger_results")
    result = run_dbt(
        workdir,
        "compile",
        "--select",
        "challenger_strategy_results",
        "challenger_results",
        database=workdir / "results.duckdb",
    )
    assert result.returncode == 0, result.output
    target = workdir / "target" / "compiled"
    return tuple(  # type: ignore[return-value]
        next(target.rglob(f"{name}.sql")).read_text(encoding="utf-8")
        for name in ("challenger_strategy_results", "challenger_results")
    )


def _run(
    compiled: tuple[str, str],
    database: Path,
    cells: dict[str, tuple[int, int, int]],
) -> dict[str, dict[str, float]]:
    """Run the mart on cells given as cell -> (decided, resolved, lost)."""
    with duckdb.connect(str(database)) as connection:
        connection.execute(
            "create or replace table main.decision_log (as_of_date date, experiment_id varchar, "
            "cell varchar, loan_id varchar, assigned_strategy_code varchar)"
        )
        connection.execute(
            "create or replace table main.decision_outcomes "
            "(as_of_date date, loan_id varchar, is_not_fully_recovered boolean)"
        )
        for cell, (decided, resolved, lost) in cells.items():
            connection.execute(
                "insert into main.decision_log "
                "select ?::date, 'e1', ?, ? || range, "
                "case when range % 2 = 0 then 'reminders' else 'settlement' end from range(?)",
                [CYCLE, cell, cell, decided],
            )
            connection.execute(
                "insert into main.decision_outcomes select ?::date, ? || range, range < ? "
                "from range(?)",
                [CYCLE, cell, lost, resolved],
            )
        by_strategy, by_cell = compiled
        connection.execute(
            f"create or replace table main.challenger_strategy_results as {by_strategy}"
        )
        cursor = connection.execute(by_cell)
        names = [column[0] for column in cursor.description]
        return {
            row[names.index("cell")]: dict(zip(names, row, strict=True))
            for row in cursor.fetchall()
        }


@pytest.mark.parametrize(("challenger", "champion", "interval"), NEWCOMBE)
def test_lift_and_interval_are_newcombes(
    compiled: tuple[str, str],
    tmp_path: Path,
    challenger: tuple[int, int],
    champion: tuple[int, int],
    interval: tuple[float, float],
) -> None:
    (lost, resolved), (champion_lost, champion_resolved) = challenger, champion
    # The explore cell is far worse: a lift taken against it, or against the
    # whole book, would miss Newcombe's interval.
    rows = _run(
        compiled,
        tmp_path / "results.duckdb",
        {
            "challenger": (resolved + 5, resolved, lost),
            "champion": (champion_resolved, champion_resolved, champion_lost),
            "explore": (40, 40, 39),
        },
    )
    row = rows["challenger"]
    assert row["decided_loans"] == resolved + 5
    assert row["resolved_loans"] == resolved
    assert row["lift_vs_champion"] == pytest.approx(
        lost / resolved - champion_lost / champion_resolved, abs=1e-12
    )
    assert (row["lift_ci_low"], row["lift_ci_high"]) == pytest.approx(interval, abs=5e-5)
    assert rows["champion"]["lift_vs_champion"] is None
    assert rows["champion"]["loss_rate"] == pytest.approx(champion_lost / champion_resolved)


def test_loans_needed_is_where_the_interval_would_exclude_zero(
    compiled: tuple[str, str], tmp_path: Path
) -> None:
    """At the reported size the same rates' interval excludes zero; a little below, not."""
    rows = _run(
        compiled,
        tmp_path / "results.duckdb",
        {"challenger": (200, 200, 70), "champion": (400, 400, 120)},
    )
    needed = rows["challenger"]["loans_needed"]
    assert needed is not None and needed > 200  # the observed 0.35 vs 0.30 is not yet significant
    assert rows["challenger"]["lift_ci_low"] < 0 < rows["challenger"]["lift_ci_high"]
    p, q = 0.35, 0.30
    for size, excludes in ((needed, True), (int(needed * 0.9), False)):
        champion_size = 2 * size  # the same 1:2 ratio as observed
        half = 1.959964 * (p * (1 - p) / size + q * (1 - q) / champion_size) ** 0.5
        assert (p - q - half > 0) is excludes, size


def test_a_cell_with_no_outcomes_yet_has_no_rate(compiled: tuple[str, str], tmp_path: Path) -> None:
    rows = _run(
        compiled,
        tmp_path / "results.duckdb",
        {"challenger": (50, 0, 0), "champion": (300, 300, 90)},
    )
    assert rows["challenger"]["decided_loans"] == 50
    assert rows["challenger"]["resolved_loans"] == 0
    for column in ("loss_rate", "lift_vs_champion", "lift_ci_low", "lift_ci_high"):
        assert rows["challenger"][column] is None, column
