"""Tests of loan_recovery.generate: the synthetic loan-book generator."""
