"""Every loan's calibrated loss_probability from the outcome model, trained on resolved loans.

With ``model_version`` set, the approved artifact's forest and calibration score every loan
(the open ones only in the decision run: var ``decide_only``).
"""

from loan_recovery.modelling.model_store import keep
from loan_recovery.modelling.outcome import COMPONENT, score_outcomes
from loan_recovery.modelling.registry import frozen_component
from loan_recovery.modelling.scope import in_scope


def model(dbt, session):
    # dbt passes a Python model the configs it finds as literal dbt.config.get calls.
    features = [*dbt.config.get("cluster_features"), *dbt.config.get("ratio_features")]
    levels = dbt.config.get("category_values")
    categories = {name: levels[name] for name in dbt.config.get("outcome_categories")}
    protected = {name: levels[name] for name in dbt.config.get("protected_attributes")}
    columns = [
        "loan_id",
        *features,
        *categories,
        *protected,
        "is_resolved",
        "is_not_fully_recovered",
    ]
    return keep(
        score_outcomes(
            in_scope(dbt.ref("int_loan_features"), dbt.config.get("decide_only")).select(
                ", ".join(columns)
            ),
            features,
            categories=categories,
            protected=protected,
            post_outcome_columns=dbt.config.get("post_outcome_columns"),
            n_trees=dbt.config.get("outcome_trees"),
            sample_rows=dbt.config.get("outcome_sample_rows"),
            min_resolved_loans=dbt.config.get("min_resolved_loans"),
            random_state=dbt.config.get("random_state"),
            frozen=frozen_component(dbt.config.get("model_version"), COMPONENT),
            session=session,
        )
    )
