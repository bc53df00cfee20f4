"""Every loan's borrower segment: KMeans on the standardized cluster features.

With ``model_version`` set, the approved artifact's scaler and centroids assign every loan
(the open ones only in the decision run: var ``decide_only``).
"""

from loan_recovery.modelling.model_store import keep
from loan_recovery.modelling.registry import frozen_component
from loan_recovery.modelling.scope import in_scope
from loan_recovery.modelling.segmentation import COMPONENT, assign_segments


def model(dbt, session):
    features = dbt.config.get("cluster_features")
    columns = ["loan_id", *features, "is_resolved", "is_not_fully_recovered"]
    loans = in_scope(dbt.ref("int_loan_features"), dbt.config.get("decide_only"))
    loans = loans.select(", ".join(columns))
    return keep(
        assign_segments(
            loans,
            features,
            post_outcome_columns=dbt.config.get("post_outcome_columns"),
            n_segments=dbt.config.get("n_segments"),
            sample_rows=dbt.config.get("segmentation_sample_rows"),
            random_state=dbt.config.get("random_state"),
            frozen=frozen_component(dbt.config.get("model_version"), COMPONENT),
            session=session,
        )
    )
