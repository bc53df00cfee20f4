"""Tests of loan_recovery.serving: one file per module, and the build command end to end."""
