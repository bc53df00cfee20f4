"""Tests of loan_recovery.report: the HTML report against SQL over a built file."""
