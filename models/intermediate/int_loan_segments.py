"""Every loan's borrower segment: KMeans on the standardized cluster features."""

from loan_recovery.segmentation import assign_segments


def model(dbt, session):
    features = dbt.config.get("cluster_features")
    columns = ["loan_id", *features, "is_resolved", "is_not_fully_recovered"]
    loans = dbt.ref("int_loan_features").select(", ".join(columns))
    return assign_segments(
        loans.to_arrow_table(),
        features,
        post_outcome_columns=dbt.config.get("post_outcome_columns"),
        n_segments=dbt.config.get("n_segments"),
        sample_rows=dbt.config.get("segmentation_sample_rows"),
        random_state=dbt.config.get("random_state"),
    )
