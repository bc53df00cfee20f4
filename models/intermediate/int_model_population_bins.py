"""The training population's bins for every model variable, and this book's share in each.

Trained builds draw the bins on the outcome model's training loans and keep
them for the registry; a frozen build uses the artifact's bins.
"""

from loan_recovery.modelling.model_store import keep
from loan_recovery.modelling.monitoring import COMPONENT, monitor_population
from loan_recovery.modelling.registry import frozen_component


def model(dbt, session):
    numeric = [*dbt.config.get("cluster_features"), *dbt.config.get("ratio_features")]
    levels = dbt.config.get("category_values")
    categories = {name: levels[name] for name in dbt.config.get("outcome_categories")}
    scores = ["segment_risk_score", "loss_probability"]
    features = dbt.ref("int_loan_features").set_alias("features")
    scored = dbt.ref("int_loans_scored").set_alias("scored")
    loans = features.join(scored, "features.loan_id = scored.loan_id").select(
        ", ".join(
            [
                "features.loan_id",
                *(f"features.{name}" for name in [*numeric, *categories]),
                *(f"scored.{name}" for name in scores),
                "scored.is_outcome_training_row",
                "scored.is_resolved",
            ]
        )
    )
    return keep(
        monitor_population(
            loans,
            numeric,
            categories=categories,
            scores=scores,
            frozen=frozen_component(dbt.config.get("model_version"), COMPONENT),
            session=session,
        )
    )
