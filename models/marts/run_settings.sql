-- The analysts' record of the per-run settings this build used, defaults
-- included: one row, stg_run_settings, the row the strategy read its score,
-- thresholds and capacities from, with the build's model_version: the
-- registry id of the models that scored the book, trained or frozen (NULL
-- when the outcome model fell back). The report draws the thresholds from
-- here.
with

settings as (

    select * from {{ ref('stg_run_settings') }}

),

model_version as (

    select * from {{ ref('int_model_version') }}

),

final as (

    select
        settings.legal_threshold,
        settings.settlement_threshold,
        settings.strategy_score,
        settings.min_resolved_loans,
        settings.legal_capacity,
        settings.settlement_capacity,
        settings.max_outstanding_to_loan_ratio,
        settings.n_segments,
        settings.segmentation_sample_rows,
        settings.scoring_sample_rows,
        settings.scoring_trees,
        settings.outcome_sample_rows,
        settings.outcome_trees,
        settings.random_state,
        model_version.model_version,
        settings.as_of_date,
        settings.experiment_id,
        settings.challenger_share,
        settings.explore_share,
        settings.challenger_legal_threshold,
        settings.challenger_settlement_threshold,
        settings.legal_min_days_past_due,
        settings.reminders_cost,
        settings.settlement_cost,
        settings.legal_cost,
        settings.settlement_haircut,
        settings.partial_recovery_share,
        settings.decision_policy,
        settings.challenger_policy,
        settings.min_randomised_outcomes,
        settings.settlement_prior_effect,
        settings.legal_prior_effect
    from settings
    cross join model_version

)

select * from final
