"""A deterministic synthetic loan book with the shape of the public loan-recovery data.

``rules`` draws each loan (the numbered generating rules, and the drifted
population for monitoring); ``book`` assembles chunks, marks open loans,
writes CSV or Parquet and the truth file.
"""

from loan_recovery.generate.book import (
    CHUNK_ROWS,
    generate_loan_book,
    loan_book_chunks,
    write_loan_book,
)
from loan_recovery.generate.rules import BASE, DRIFTED, Population, amortisation_payment

__all__ = [
    "BASE",
    "CHUNK_ROWS",
    "DRIFTED",
    "Population",
    "amortisation_payment",
    "generate_loan_book",
    "loan_book_chunks",
    "write_loan_book",
]
