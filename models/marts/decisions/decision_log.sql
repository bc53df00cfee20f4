-- What was decided, for whom, in every cycle ever built into this file: one
-- row per open loan per cycle (docs block decision_log). Incremental and
-- never fully refreshed: `loan-recovery build` carries the served file's log
-- into each new build, this model replaces this cycle's rows and leaves
-- every other row as it was.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false,
    pre_hook="{{ replace_this_cycle('as_of_date') }}"
) }}
{{ guard_cycle_order() }}
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

strategies as (

    select * from {{ ref('int_loan_strategies') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

final as (

    select
        settings.as_of_date,
        {{ build_id_sql() }} as build_id,
        settings.experiment_id,
        scored_loans.loan_id,
        strategies.cell,
        strategies.strategy_code as assigned_strategy_code,
        strategies.intended_strategy_code,
        strategies.champion_strategy_code,
        strategies.challenger_strategy_code,
        strategies.explore_strategy_code,
        strategies.capacity_limited,
        cast(scored_loans.loss_probability as double) as loss_probability,
        cast(strategies.amount_at_risk as double) as amount_at_risk,
        cast(scored_loans.outstanding_loan_amount as double) as outstanding_loan_amount,
        scored_loans.days_past_due,
        scored_loans.model_version
    from scored_loans
    inner join strategies on scored_loans.loan_id = strategies.loan_id
    cross join settings
    where not scored_loans.is_resolved

)

select * from final
