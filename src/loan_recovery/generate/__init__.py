"""A deterministic synthetic loan book with the shape of the public loan-recovery data,
collected by a simulated lender whose actions truly change recovery.

``rules`` draws each loan's pre-collection facts (the numbered generating
rules, and the drifted population for monitoring); ``lender`` is what
collection does: the true effect of each action, the old policy that
collected the resolved loans, the outcome and the collection columns;
``economics`` prices actions under provisional assumptions; ``book``
assembles chunks, marks open loans, writes CSV or Parquet and the truth file;
``next_month`` writes next month's book from the served decision log.
"""

from loan_recovery.generate.book import (
    CHUNK_ROWS,
    MAX_ROWS,
    TRUTH_COLUMNS,
    generate_loan_book,
    generate_truth,
    loan_book_chunks,
    write_loan_book,
)
from loan_recovery.generate.lender import (
    ACTIONS,
    ALTERNATIVE_EFFECTS,
    DEFAULT_EFFECTS,
    ActionEffects,
    SegmentStepEffects,
    StretchAndSecurityEffects,
    full_recovery_probabilities,
)
from loan_recovery.generate.rules import BASE, DRIFTED, Population, amortisation_payment

__all__ = [
    "ACTIONS",
    "ALTERNATIVE_EFFECTS",
    "BASE",
    "CHUNK_ROWS",
    "DEFAULT_EFFECTS",
    "DRIFTED",
    "MAX_ROWS",
    "TRUTH_COLUMNS",
    "ActionEffects",
    "Population",
    "SegmentStepEffects",
    "StretchAndSecurityEffects",
    "amortisation_payment",
    "full_recovery_probabilities",
    "generate_loan_book",
    "generate_truth",
    "loan_book_chunks",
    "write_loan_book",
]
