"""What knowing the true action effects is worth: the oracle against reminders for everyone.

For each seed, a book of ``--rows`` loans with ``--open-share`` open is
generated with its truth file (exactly what ``loan-recovery generate ...
--truth-out`` writes). On the open loans it compares, in total expected net
value under the provisional economics (``loan_recovery.generate.economics``):

* reminders for every open loan;
* the oracle: per loan, the allowed action (legal only from
  ``legal_min_days_past_due``, 60, days past due) with the highest expected
  net value under the TRUE probabilities.

It prints JSON: per seed and effect structure, the oracle's gain over
reminders (percent), its action mix and the gain each action contributes;
and the mean over seeds. Usage::

    .venv/bin/python benchmarks/simulated_lender_value.py                # 20,000 loans, 30 % open
    .venv/bin/python benchmarks/simulated_lender_value.py --seeds 1 2 3 --rows 50000
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from loan_recovery.generate import (
    ACTIONS,
    ALTERNATIVE_EFFECTS,
    DEFAULT_EFFECTS,
    ActionEffects,
    generate_loan_book,
    generate_truth,
)
from loan_recovery.generate.economics import PROVISIONAL, best_actions, expected_net_values

STRUCTURES: dict[str, ActionEffects] = {
    "default (stretch and security)": DEFAULT_EFFECTS,
    "alternative (segment steps)": ALTERNATIVE_EFFECTS,
}


def oracle_value(rows: int, seed: int, open_share: float, effects: ActionEffects) -> dict[str, Any]:
    """The oracle's gain over reminders for everyone, on one book's open loans."""
    book = generate_loan_book(rows, seed, open_share=open_share, effects=effects)
    truth = generate_truth(rows, seed, open_share=open_share, effects=effects)
    open_loans = book["Recovery_Status"].isna().to_numpy()
    p = truth[[f"p_full_recovery_{a}" for a in ACTIONS]].to_numpy()[open_loans]
    outstanding = book["Outstanding_Loan_Amount"].to_numpy()[open_loans]
    days = book["Days_Past_Due"].to_numpy()[open_loans]
    values = expected_net_values(outstanding, p, PROVISIONAL)
    best = best_actions(outstanding, p, days, PROVISIONAL)
    chosen = values[np.arange(len(best)), best]
    reminders = values[:, 0].sum()
    return {
        "open_loans": int(open_loans.sum()),
        "reminders_for_everyone": round(float(reminders)),
        "oracle": round(float(chosen.sum())),
        "gain_percent": round(100 * float(chosen.sum() / reminders - 1), 2),
        "oracle_mix": {a: int((best == i).sum()) for i, a in enumerate(ACTIONS)},
        "gain_percent_by_action": {
            a: round(100 * float((chosen - values[:, 0])[best == i].sum() / reminders), 2)
            for i, a in enumerate(ACTIONS)
            if i
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--open-share", type=float, default=0.3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4])
    args = parser.parse_args()
    result: dict[str, Any] = {
        "rows": args.rows,
        "open_share": args.open_share,
        "economics": {
            "action_costs": dict(PROVISIONAL.action_costs),
            "settlement_haircut": PROVISIONAL.settlement_haircut,
            "partial_recovery_share": PROVISIONAL.partial_recovery_share,
            "legal_min_days_past_due": PROVISIONAL.legal_min_days_past_due,
        },
    }
    for name, effects in STRUCTURES.items():
        runs = {
            seed: oracle_value(args.rows, seed, args.open_share, effects) for seed in args.seeds
        }
        gains = [run["gain_percent"] for run in runs.values()]
        result[name] = {
            "mean_gain_percent": round(float(np.mean(gains)), 2),
            "min_gain_percent": min(gains),
            "max_gain_percent": max(gains),
            "per_seed": runs,
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
