"""Grade a build's scores on its open loans against the generator's truth file.

The build never sees an open loan's outcome; the generator's --truth-out file
holds it. This joins the two and reports, on the open loans only:

* ROC AUC (95 % interval, Hanley and McNeil) of the outcome model's
  loss_probability, the write-up's segment score and the days-past-due rule;
* the expected calibration error (10 equal-width bins) and Brier score of
  loss_probability;
* the true loss rate of each strategy tier, and the most aggressive tier's over
  the least's (legal / reminders; the codes come from recovery_strategy_catalog).

Usage (after ``loan-recovery generate ... --open-share 0.3 --truth-out T``
and ``loan-recovery build --loans BOOK --db DB``)::

    .venv/bin/python benchmarks/grade_open_loans.py --db DB --truth T  # prints JSON
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score


def hanley_mcneil(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    half = 1.96 * math.sqrt(variance)
    return max(auc - half, 0.0), min(auc + half, 1.0)


def expected_calibration_error(probability: np.ndarray, label: np.ndarray, bins: int = 10) -> float:
    index = np.minimum((probability * bins).astype(int), bins - 1)
    return float(
        sum(
            (index == b).mean() * abs(probability[index == b].mean() - label[index == b].mean())
            for b in range(bins)
            if (index == b).any()
        )
    )


def grade(database: Path, truth: Path) -> dict[str, Any]:
    reader = "read_parquet" if truth.suffix == ".parquet" else "read_csv_auto"
    with duckdb.connect(str(database), read_only=True) as connection:
        frame = connection.execute(
            f"""
            select s.loan_id, s.loss_probability, s.segment_risk_score, s.days_past_due,
                   s.strategy_code, s.score_source, t.recovery_status <> 'Fully Recovered' as lost
            from main.recovery_strategies as s
            inner join {reader}(?) as t on s.loan_id = t.loan_id
            where not s.is_resolved
            """,
            [str(truth)],
        ).df()
        # The codes live only in the catalog: the most and least aggressive by rank.
        codes = [
            code
            for (code,) in connection.execute(
                "select strategy_code from main.recovery_strategy_catalog order by strategy_rank"
            ).fetchall()
        ]
    lost = frame["lost"].to_numpy(dtype=bool)
    result: dict[str, Any] = {
        "open_loans": len(frame),
        "open_loss_rate": round(float(lost.mean()), 4),
        "score_source": str(frame["score_source"].iloc[0]) if len(frame) else None,
    }
    for name, column in (
        ("outcome", "loss_probability"),
        ("segment", "segment_risk_score"),
        ("days_past_due", "days_past_due"),
    ):
        scores = frame[column].to_numpy(dtype=float)
        if np.isnan(scores).any():
            continue
        auc = float(roc_auc_score(lost, scores))
        low, high = hanley_mcneil(auc, int(lost.sum()), int((~lost).sum()))
        result[f"auc_{name}"] = [round(auc, 4), round(low, 4), round(high, 4)]
    if not frame["loss_probability"].isna().any():
        probability = frame["loss_probability"].to_numpy(dtype=float)
        result["ece_outcome"] = round(expected_calibration_error(probability, lost), 4)
        result["brier_outcome"] = round(float(brier_score_loss(lost, probability)), 4)
    tiers = frame.groupby("strategy_code")["lost"].agg(["count", "mean"])
    result["tiers"] = {
        tier: {"loans": int(row["count"]), "true_loss_rate": round(float(row["mean"]), 4)}
        for tier, row in tiers.iterrows()
    }
    least, most = codes[0], codes[-1]
    if {most, least} <= set(tiers.index):
        result[f"{most}_over_{least}"] = round(
            float(tiers.loc[most, "mean"] / tiers.loc[least, "mean"]), 2
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, required=True, help="the built DuckDB file")
    parser.add_argument("--truth", type=Path, required=True, help="the generator's --truth-out")
    args = parser.parse_args()
    print(json.dumps(grade(args.db, args.truth), indent=2))


if __name__ == "__main__":
    main()
