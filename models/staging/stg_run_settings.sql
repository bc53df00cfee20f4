-- The per-run settings this build used (dbt vars, defaults included), typed,
-- in one row. Staging, so that every layer above reads the settings from
-- here: the intermediates take the score in use, the thresholds and the
-- capacities from this row, and the mart run_settings serves it unchanged
-- as the analysts' record, so what is recorded is what was applied.
with

final as (

    select
        cast({{ var('legal_threshold') }} as double) as legal_threshold,
        cast({{ var('settlement_threshold') }} as double) as settlement_threshold,
        {{ sql_string(var('strategy_score')) }} as strategy_score,
        cast({{ var('min_resolved_loans') }} as bigint) as min_resolved_loans,
        cast({{ 'null' if var('legal_capacity') is none else var('legal_capacity') }} as bigint) as legal_capacity,
        cast({{ 'null' if var('settlement_capacity') is none else var('settlement_capacity') }} as bigint) as settlement_capacity,
        cast({{ var('max_outstanding_to_loan_ratio') }} as double) as max_outstanding_to_loan_ratio,
        cast({{ var('n_segments') }} as integer) as n_segments,
        cast({{ var('segmentation_sample_rows') }} as bigint) as segmentation_sample_rows,
        cast({{ var('scoring_sample_rows') }} as bigint) as scoring_sample_rows,
        cast({{ var('scoring_trees') }} as integer) as scoring_trees,
        cast({{ var('outcome_sample_rows') }} as bigint) as outcome_sample_rows,
        cast({{ var('outcome_trees') }} as integer) as outcome_trees,
        cast({{ var('random_state') }} as bigint) as random_state,
        -- the artifact a frozen build was asked to score with; NULL when it trains
        nullif({{ sql_string(var('model_version')) }}, '') as model_version,
        -- the decision cycle and the experiment (docs block decision_experiment)
        {{ cycle_date_sql() }} as as_of_date,
        {{ sql_string(var('experiment_id')) }} as experiment_id,
        cast({{ var('challenger_share') }} as double) as challenger_share,
        cast({{ var('explore_share') }} as double) as explore_share,
        cast({{ var('challenger_legal_threshold') }} as double) as challenger_legal_threshold,
        cast({{ var('challenger_settlement_threshold') }} as double) as challenger_settlement_threshold,
        cast({{ var('legal_min_days_past_due') }} as integer) as legal_min_days_past_due,
        -- money and policies (docs blocks action_economics and decision_policy)
        cast({{ var('action_costs')['reminders'] }} as double) as reminders_cost,
        cast({{ var('action_costs')['settlement'] }} as double) as settlement_cost,
        cast({{ var('action_costs')['legal'] }} as double) as legal_cost,
        cast({{ var('settlement_haircut') }} as double) as settlement_haircut,
        cast({{ var('partial_recovery_share') }} as double) as partial_recovery_share,
        {{ sql_string(var('decision_policy')) }} as decision_policy,
        {{ sql_string(var('challenger_policy')) }} as challenger_policy,
        cast({{ var('min_randomised_outcomes') }} as bigint) as min_randomised_outcomes,
        cast({{ var('prior_action_effects')['settlement'] }} as double) as settlement_prior_effect,
        cast({{ var('prior_action_effects')['legal'] }} as double) as legal_prior_effect

)

select * from final
