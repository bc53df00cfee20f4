-- The analysts' record of the per-run settings this build used, defaults
-- included: one row, exactly stg_run_settings, the row the strategy read
-- its score, thresholds and capacities from. The report draws the
-- thresholds from here.
with

settings as (

    select * from {{ ref('stg_run_settings') }}

),

final as (

    select
        legal_threshold,
        settlement_threshold,
        strategy_score,
        min_resolved_loans,
        legal_capacity,
        settlement_capacity,
        max_outstanding_to_loan_ratio,
        n_segments,
        segmentation_sample_rows,
        scoring_sample_rows,
        scoring_trees,
        outcome_sample_rows,
        outcome_trees,
        random_state,
        model_version,
        as_of_date,
        experiment_id,
        challenger_share,
        explore_share,
        challenger_legal_threshold,
        challenger_settlement_threshold,
        legal_min_days_past_due,
        reminders_cost,
        settlement_cost,
        legal_cost,
        settlement_haircut,
        partial_recovery_share,
        decision_policy,
        challenger_policy,
        min_randomised_outcomes,
        settlement_prior_effect,
        legal_prior_effect
    from settings

)

select * from final
