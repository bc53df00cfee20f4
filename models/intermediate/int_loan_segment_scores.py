"""Every loan's out-of-sample segment score: the write-up's RandomForest on its high-risk label.

With ``model_version`` set, the approved artifact's forest scores every loan and nothing
trains (the open ones only in the decision run: var ``decide_only``).
"""

from loan_recovery.modelling.model_store import keep
from loan_recovery.modelling.registry import frozen_component
from loan_recovery.modelling.scope import in_scope
from loan_recovery.modelling.segment_score import COMPONENT, score_segment_risk


def model(dbt, session):
    features = dbt.config.get("cluster_features")
    loans = in_scope(dbt.ref("int_loan_features"), dbt.config.get("decide_only"))
    loans = loans.set_alias("loans")
    segments = dbt.ref("int_loan_segments").set_alias("segments")
    training = loans.join(segments, "loans.loan_id = segments.loan_id").select(
        ", ".join(["loans.loan_id", *(f"loans.{f}" for f in features), "segments.is_high_risk"])
    )
    return keep(
        score_segment_risk(
            training,
            features,
            post_outcome_columns=dbt.config.get("post_outcome_columns"),
            n_trees=dbt.config.get("scoring_trees"),
            sample_rows=dbt.config.get("scoring_sample_rows"),
            random_state=dbt.config.get("random_state"),
            frozen=frozen_component(dbt.config.get("model_version"), COMPONENT),
            session=session,
        )
    )
