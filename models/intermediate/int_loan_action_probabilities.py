"""Each worked loan's probability of full recovery under each strategy.

Learned from the explore cell's randomised decisions only, or from priors
until enough of them have resolved (loan_recovery.modelling.action_effects).
"""

from loan_recovery.modelling.action_effects import estimate_action_probabilities


def model(dbt, session):
    features = [*dbt.config.get("cluster_features"), *dbt.config.get("ratio_features")]
    levels = dbt.config.get("category_values")
    categories = {name: levels[name] for name in dbt.config.get("outcome_categories")}
    return estimate_action_probabilities(
        dbt.ref("int_worked_loan_features"),
        dbt.ref("int_randomised_outcomes"),
        dbt.ref("int_action_effect_sources"),
        features,
        categories=categories,
        post_outcome_columns=dbt.config.get("post_outcome_columns"),
        protected_attributes=dbt.config.get("protected_attributes"),
        session=session,
    )
