"""The build's model_version: the registry id of the four models that scored the book (one row).

NULL when the outcome model fell back (nothing registered); a frozen build's is var model_version.
"""

from loan_recovery.modelling.model_version import build_model_version


def model(dbt, session):
    return build_model_version(
        {
            "segmentation": dbt.ref("int_loan_segments"),
            "segment_score": dbt.ref("int_loan_segment_scores"),
            "outcome": dbt.ref("int_loan_outcome_scores"),
            "monitoring": dbt.ref("int_model_population_bins"),
        },
        requested=dbt.config.get("model_version"),
        session=session,
    )
