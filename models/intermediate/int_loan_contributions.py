"""Per-feature contributions to the score that drove the strategy, for the loans worked."""

from loan_recovery.reasons import explain_scores


def model(dbt, session):
    scored = dbt.ref("int_loans_scored").select(
        "loan_id, risk_score, score_source, model_version, is_resolved"
    )
    features = dbt.ref("int_loan_features")
    return explain_scores(
        scored.order("loan_id").to_arrow_table(), features.order("loan_id").to_arrow_table()
    )
