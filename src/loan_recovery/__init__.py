"""Loan-recovery analytics: borrower segmentation, risk scoring and recovery strategies.

The dbt project in this repository does the SQL work; this package holds the
Python that earns its place there (data generation, KMeans, RandomForest,
charts, publishing) as small, tested, pure functions.
"""

__version__ = "0.1.0"
