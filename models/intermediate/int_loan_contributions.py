"""Per-feature contributions to the score that drove the strategy, for the loans worked."""

from loan_recovery.modelling.model_store import for_dbt
from loan_recovery.modelling.reasons import explain_scores


def model(dbt, session):
    scored = dbt.ref("int_loans_scored").set_alias("scored")
    features = dbt.ref("int_loan_features").set_alias("features")
    worked = (
        scored.filter("scored.is_worked")
        .join(features, "scored.loan_id = features.loan_id")
        .select("scored.risk_score, scored.score_source, scored.score_model_hash, features.*")
    )
    return for_dbt(explain_scores(worked, session=session))
