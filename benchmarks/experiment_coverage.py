"""How often the experiment's 95 % intervals cover the simulated lender's true effects.

For each seed: a book of ``--rows`` loans (30 % open) is generated with its
truth file, built as cycle 1, its model approved, next month's book is
generated from the served decision_log (the simulator resolves every
cycle-1 loan under the action it was assigned) and built as cycle 2 with the
approved model. Cycle 1's decisions then all have outcomes.

The truth is the simulator's, per loan and action (``p_full_recovery_*`` in
the truth file), never the product's:

* the challenger's true lift is the mean over every logged cycle-1 loan of
  P(loss | challenger_strategy_code) - P(loss | champion_strategy_code);
* the explore cell's true lift is the mean over the same loans of the mean
  P(loss) over the loan's eligible actions minus P(loss | champion's).

A seed counts as covered when challenger_results' [lift_ci_low,
lift_ci_high] holds the true lift.

action_effects (cycle 2, learned from cycle 1's explored outcomes) is
graded the same way: its measured effect of settlement and of legal
action against reminders is the explored loans' difference in
full-recovery rates within each eligibility stratum, weighted by cycle 2's
worked loans; the truth it estimates is the same weighting of the mean
true difference, P(full | action) - P(full | reminders), over all of cycle
1's open loans in each stratum (legal: only the eligible stratum).

Prints one JSON line per seed and a summary; writes
benchmarks/results/experiment-coverage-<time>.json.

Usage::

    .venv/bin/python benchmarks/experiment_coverage.py --seeds 20 [--rows 20000]
        [--explore-share 0.2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("loan-recovery"))
FAST_VARS = {"scoring_trees": 20, "outcome_trees": 20}
CYCLE_1, CYCLE_2 = "2026-01-31", "2026-02-28"


def _run(*args: str) -> None:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"loan-recovery {' '.join(args)} failed: {done.stderr.strip()}")


def _served_artifact(database: Path) -> str:
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute("select model_version from build_info").fetchone()
    assert row is not None and row[0], "cycle 1 registered no model"
    return str(row[0])


def one_seed(seed: int, rows: int, explore_share: float, workdir: Path) -> dict[str, Any]:
    """Two cycles for one seed; the experiment's intervals against the truth."""
    directory = workdir / f"seed-{seed}"
    directory.mkdir(parents=True, exist_ok=True)
    served = directory / "served.duckdb"
    book_1, truth_1 = directory / "book_1.parquet", directory / "truth_1.parquet"
    book_2, truth_2 = directory / "book_2.parquet", directory / "truth_2.parquet"
    common = ["--seed", str(seed)]
    _run(
        "generate",
        "--rows",
        str(rows),
        "--out",
        str(book_1),
        "--open-share",
        "0.3",
        "--truth-out",
        str(truth_1),
        *common,
    )
    _run(
        "build",
        "--loans",
        str(book_1),
        "--db",
        str(served),
        "--as-of",
        CYCLE_1,
        "--vars",
        json.dumps({**FAST_VARS, "explore_share": explore_share}),
    )
    _run("models", "--db", str(served), "approve", _served_artifact(served))
    _run(
        "generate",
        "--next-from",
        str(book_1),
        "--decisions",
        str(served),
        "--out",
        str(book_2),
        "--truth-out",
        str(truth_2),
        *common,
    )
    _run(
        "build",
        "--loans",
        str(book_2),
        "--db",
        str(served),
        "--as-of",
        CYCLE_2,
        "--model",
        "approved",
    )
    with duckdb.connect(str(served), read_only=True) as connection:
        truth = connection.execute(
            """
            with truth as (select * from read_parquet(?)),
            decided as (
                select d.*, s.legal_min_days_past_due
                from decision_log as d cross join run_settings as s
                where d.as_of_date = ?::date
            ),
            losses as (
                select
                    decided.*,
                    1 - truth.p_full_recovery_reminders as loss_reminders,
                    1 - truth.p_full_recovery_settlement as loss_settlement,
                    1 - truth.p_full_recovery_legal as loss_legal
                from decided join truth using (loan_id)
            ),
            by_code as (
                select
                    *,
                    case champion_strategy_code when 'legal' then loss_legal
                        when 'settlement' then loss_settlement else loss_reminders end
                        as loss_champion,
                    case challenger_strategy_code when 'legal' then loss_legal
                        when 'settlement' then loss_settlement else loss_reminders end
                        as loss_challenger,
                    case when days_past_due >= legal_min_days_past_due
                        then (loss_reminders + loss_settlement + loss_legal) / 3
                        else (loss_reminders + loss_settlement) / 2 end as loss_explore
                from losses
            )
            select
                count(*),
                avg(loss_challenger - loss_champion),
                avg(loss_explore - loss_champion)
            from by_code
            """,
            [str(truth_1), CYCLE_1],
        ).fetchone()
        assert truth is not None
        results = {
            cell: (low, high, lift, resolved)
            for cell, low, high, lift, resolved in connection.execute(
                "select cell, lift_ci_low, lift_ci_high, lift_vs_champion, resolved_loans "
                "from challenger_results where as_of_date = ?::date",
                [CYCLE_1],
            ).fetchall()
        }
        effect_truth = connection.execute(
            """
            with truth as (select * from read_parquet(?)),
            settings as (select legal_min_days_past_due as minimum from run_settings),
            decided as (
                select d.loan_id, d.days_past_due >= settings.minimum as eligible
                from decision_log as d cross join settings where d.as_of_date = ?::date
            ),
            weights as (
                select d.days_past_due >= settings.minimum as eligible, count(*) as loans
                from decision_log as d cross join settings where d.as_of_date = ?::date
                group by 1
            ),
            strata as (
                select
                    decided.eligible,
                    avg(p_full_recovery_settlement - p_full_recovery_reminders) as settlement,
                    avg(p_full_recovery_legal - p_full_recovery_reminders) as legal
                from decided join truth using (loan_id) group by 1
            )
            select
                sum(weights.loans * strata.settlement) / sum(weights.loans),
                max(strata.legal) filter (where strata.eligible)
            from strata join weights using (eligible)
            """,
            [str(truth_1), CYCLE_1, CYCLE_2],
        ).fetchone()
        measured = {
            code: (source, effect, low, high, n)
            for code, source, effect, low, high, n in connection.execute(
                "select strategy_code, source, measured_effect, measured_effect_ci_low, "
                "measured_effect_ci_high, randomised_outcomes from action_effects"
            ).fetchall()
        }
    logged, true_challenger, true_explore = truth
    entry: dict[str, Any] = {"seed": seed, "decided": logged}
    for cell, true_lift in (("challenger", true_challenger), ("explore", true_explore)):
        low, high, lift, resolved = results[cell]
        entry[cell] = {
            "true_lift": true_lift,
            "estimated_lift": lift,
            "ci": [low, high],
            "resolved": resolved,
            "covered": low <= true_lift <= high,
        }
    assert effect_truth is not None
    for code, true_effect in zip(("settlement", "legal"), effect_truth, strict=True):
        source, effect, low, high, n = measured[code]
        entry[f"{code}_effect"] = {
            "true_effect": true_effect,
            "source": source,
            "measured": effect,
            "ci": [low, high],
            "randomised_outcomes": n,
            "covered": None if effect is None else low <= true_effect <= high,
        }
    return entry


def _share_interval(hits: int, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of a coverage share."""
    z = 1.959964
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--explore-share", type=float, default=0.2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/experiment-coverage"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    entries = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        entry = one_seed(seed, args.rows, args.explore_share, args.workdir)
        entries.append(entry)
        print(json.dumps(entry), flush=True)
    summary: dict[str, Any] = {"seeds": len(entries), "rows": args.rows}
    for cell in ("challenger", "explore"):
        hits = sum(entry[cell]["covered"] for entry in entries)
        widths = [entry[cell]["ci"][1] - entry[cell]["ci"][0] for entry in entries]
        summary[cell] = {
            "covered": hits,
            "coverage": hits / len(entries),
            "coverage_95ci": _share_interval(hits, len(entries)),
            "mean_interval_width": sum(widths) / len(widths),
        }
    for code in ("settlement", "legal"):
        graded = [
            e[f"{code}_effect"] for e in entries if e[f"{code}_effect"]["covered"] is not None
        ]
        if graded:
            hits = sum(item["covered"] for item in graded)
            summary[f"{code}_effect"] = {
                "learned_in": len(graded),
                "covered": hits,
                "coverage": hits / len(graded),
                "coverage_95ci": _share_interval(hits, len(graded)),
            }
    summary["explore_share"] = args.explore_share
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=2))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (results / f"experiment-coverage-{stamp}.json").write_text(
        json.dumps({"summary": summary, "seeds": entries}, indent=2), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
