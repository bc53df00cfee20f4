"""What the expected-value policy earns against the thresholds, graded by the simulator's truth.

For each effect structure (the generator's own, and the alternative truth
built differently, on other columns) and seed: cycle 1 is built from a
fresh book and its model approved; cycles 2 and 3 are next month's books
from the served decision_log, built with the approved model, so cycle 3
decides after two explored cycles' outcomes have arrived. Cycle 3 is then
built twice into copies of the same served file, once with the champion on
the thresholds (decision_policy: thresholds) and once on expected value,
with the same cells, capacity and experiment.

Each build's decisions for cycle 3 are graded with the truth file's
P(full recovery | action) per loan, at the run's own economics (var
action_costs, settlement_haircut, partial_recovery_share): the true
expected net value of every decided loan, summed. Printed with reminders
for everyone and the oracle (each loan's best eligible action under the
truth) on the same loans, and with the action_effects the build learned
against the truth's average effects.

Usage::

    .venv/bin/python benchmarks/policy_value.py [--seeds 3] [--rows 20000] [--explore-share 0.2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from loan_recovery.config import run_setting_defaults
from loan_recovery.generate import write_loan_book
from loan_recovery.generate.lender import ALTERNATIVE_EFFECTS, DEFAULT_EFFECTS, ActionEffects
from loan_recovery.generate.next_month import write_next_month

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("loan-recovery"))
CYCLES = ("2026-01-31", "2026-02-28", "2026-03-31")
ACTIONS = ("reminders", "settlement", "legal")
STRUCTURES: dict[str, ActionEffects] = {
    "default": DEFAULT_EFFECTS,
    "alternative": ALTERNATIVE_EFFECTS,
}


def _cli(*args: str) -> None:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"loan-recovery {' '.join(args)} failed: {done.stderr.strip()}")


def _vars(settings: dict[str, Any]) -> str:
    return json.dumps(settings)


def _grade(served: Path, truth: Path, cycle: str) -> dict[str, float]:
    """True expected net value of the cycle's decisions, and of the yardsticks, on its loans."""
    with duckdb.connect(str(served), read_only=True) as connection:
        rows = connection.execute(
            """
            select d.assigned_strategy_code, d.outstanding_loan_amount, d.days_past_due,
                   t.p_full_recovery_reminders, t.p_full_recovery_settlement,
                   t.p_full_recovery_legal,
                   s.reminders_cost, s.settlement_cost, s.legal_cost, s.settlement_haircut,
                   s.partial_recovery_share, s.legal_min_days_past_due
            from decision_log as d
            join read_csv(?) as t using (loan_id)
            cross join run_settings as s
            where d.as_of_date = ?::date
            """,
            [str(truth), cycle],
        ).fetchall()
    assigned = np.array([ACTIONS.index(row[0]) for row in rows])
    outstanding = np.array([row[1] for row in rows], dtype=float)
    eligible = np.array([row[2] >= row[11] for row in rows])
    p_full = np.array([row[3:6] for row in rows], dtype=float)
    cost = np.array(rows[0][6:9], dtype=float)
    haircut = np.array([0.0, rows[0][9], 0.0])
    partial = float(rows[0][10])
    values = outstanding[:, None] * (p_full * (1 - haircut) + (1 - p_full) * partial) - cost
    allowed = np.where(eligible[:, None] | (np.arange(3) < 2), values, -np.inf)
    return {
        "loans": len(rows),
        "assigned": float(values[np.arange(len(rows)), assigned].sum()),
        "reminders_for_all": float(values[:, 0].sum()),
        "oracle": float(allowed.max(axis=1).sum()),
        "true_settlement_effect": float((p_full[:, 1] - p_full[:, 0]).mean()),
        "true_legal_effect": float((p_full[eligible, 2] - p_full[eligible, 0]).mean()),
    }


def _effects(served: Path) -> dict[str, Any]:
    with duckdb.connect(str(served), read_only=True) as connection:
        return {
            code: {"source": source, "outcomes": n, "measured": effect, "ci": [low, high]}
            for code, source, n, effect, low, high in connection.execute(
                "select strategy_code, source, randomised_outcomes, measured_effect, "
                "measured_effect_ci_low, measured_effect_ci_high from action_effects"
            ).fetchall()
        }


def one_run(
    structure: str, seed: int, rows: int, explore_share: float, workdir: Path
) -> dict[str, Any]:
    effects = STRUCTURES[structure]
    directory = workdir / f"{structure}-{seed}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    served = directory / "served.duckdb"
    learning = {"scoring_trees": 20, "outcome_trees": 20, "explore_share": explore_share}
    books = [directory / f"book_{i}.csv" for i in (1, 2, 3)]
    truths = [directory / f"truth_{i}.csv" for i in (1, 2, 3)]
    write_loan_book(rows, books[0], seed, open_share=0.3, truth_out=truths[0], effects=effects)
    _cli(
        "build",
        "--loans",
        str(books[0]),
        "--db",
        str(served),
        "--as-of",
        CYCLES[0],
        "--vars",
        _vars(learning),
    )
    with duckdb.connect(str(served), read_only=True) as connection:
        version = connection.execute("select model_version from build_info").fetchone()[0]
    _cli("models", "--db", str(served), "approve", version)
    for cycle in (1, 2):
        write_next_month(
            books[cycle - 1], served, books[cycle], truths[cycle], seed=seed, effects=effects
        )
        if cycle == 1:
            _cli(
                "build",
                "--loans",
                str(books[1]),
                "--db",
                str(served),
                "--as-of",
                CYCLES[1],
                "--model",
                "approved",
                "--vars",
                _vars(learning),
            )
    graded: dict[str, Any] = {}
    for policy in ("thresholds", "expected_value"):
        copy = directory / policy / "served.duckdb"
        copy.parent.mkdir()
        shutil.copy(served, copy)
        shutil.copytree(
            served.with_name(served.name + ".registry"), copy.with_name(copy.name + ".registry")
        )
        _cli(
            "build",
            "--loans",
            str(books[2]),
            "--db",
            str(copy),
            "--as-of",
            CYCLES[2],
            "--model",
            "approved",
            "--vars",
            _vars({**learning, "decision_policy": policy}),
        )
        graded[policy] = _grade(copy, truths[2], CYCLES[2])
        if policy == "expected_value":
            graded["action_effects"] = _effects(copy)
    thresholds, expected = graded["thresholds"], graded["expected_value"]
    return {
        "structure": structure,
        "seed": seed,
        "loans": expected["loans"],
        "expected_value_over_thresholds": expected["assigned"] / thresholds["assigned"] - 1,
        "expected_value_over_reminders": expected["assigned"] / expected["reminders_for_all"] - 1,
        "thresholds_over_reminders": thresholds["assigned"] / thresholds["reminders_for_all"] - 1,
        "oracle_over_reminders": expected["oracle"] / expected["reminders_for_all"] - 1,
        "true_effects": {
            "settlement": expected["true_settlement_effect"],
            "legal": expected["true_legal_effect"],
        },
        "action_effects": graded["action_effects"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--explore-share", type=float, default=float(run_setting_defaults()["explore_share"])
    )
    parser.add_argument("--structures", nargs="*", default=list(STRUCTURES))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/policy-value"))
    args = parser.parse_args(argv)
    started = time.monotonic()
    runs = []
    for structure in args.structures:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run = one_run(structure, seed, args.rows, args.explore_share, args.workdir)
            runs.append(run)
            print(json.dumps(run), flush=True)
    summary: dict[str, Any] = {"rows": args.rows, "explore_share": args.explore_share}
    for structure in args.structures:
        mine = [run for run in runs if run["structure"] == structure]
        summary[structure] = {
            key: [round(100 * run[key], 2) for run in mine]
            for key in (
                "expected_value_over_thresholds",
                "expected_value_over_reminders",
                "thresholds_over_reminders",
                "oracle_over_reminders",
            )
        }
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=2))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (results / f"policy-value-{stamp}.json").write_text(
        json.dumps({"summary": summary, "runs": runs}, indent=2), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
