"""Tests of loan_recovery.modelling: fitting, scoring, explaining and storing the models."""
