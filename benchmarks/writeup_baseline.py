"""The write-up's approach as a plain script, for the benchmark to time beside the dbt build.

pandas read_csv of the whole book, StandardScaler on the ten features, KMeans
k=4 (n_init=10) on every row, the write-up's segment label (clusters named by
index; 0 and 3 were its high-risk segments), RandomForest with 100 trees on
an 80/20 split, scoring only the 20 % test rows. Prints one JSON line.

Usage: python benchmarks/writeup_baseline.py BOOK.csv
"""

from __future__ import annotations

import json
import sys
import time

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

FEATURES = [
    "Age", "Monthly_Income", "Loan_Amount", "Loan_Tenure", "Interest_Rate", "Collateral_Value",
    "Outstanding_Loan_Amount", "Monthly_EMI", "Num_Missed_Payments", "Days_Past_Due",
]  # fmt: skip
WRITEUP_HIGH_RISK_CLUSTERS = (0, 3)


def main(path: str) -> None:
    started = time.perf_counter()
    book = pd.read_csv(path)
    scaled = StandardScaler().fit_transform(book[FEATURES])
    clusters = KMeans(n_clusters=4, random_state=42, n_init=10).fit_predict(scaled)
    label = pd.Series(clusters).isin(WRITEUP_HIGH_RISK_CLUSTERS).astype(int)
    train_x, test_x, train_y, test_y = train_test_split(
        book[FEATURES], label, test_size=0.2, random_state=42
    )
    forest = RandomForestClassifier(n_estimators=100, random_state=42, n_jobs=-1)
    forest.fit(train_x, train_y)
    scores = forest.predict_proba(test_x)[:, 1]
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": len(book),
                "scored_rows": len(test_x),
                "seconds": round(elapsed, 2),
                "test_roc_auc_label": round(float(roc_auc_score(test_y, scores)), 4),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
