-- What was decided, for whom, in every cycle ever built into this file: one
-- row per open loan per cycle (docs block decision_log). The history as
-- this build found it (stg_history__decision_log: every earlier cycle) and
-- this cycle's decisions; rebuilding a cycle replaces its rows.
with

history as (

    select * from {{ ref('stg_history__decision_log') }}

),

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

strategies as (

    select * from {{ ref('int_loan_strategies') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

-- One row: the registry id of the models that scored the book (NULL when
-- the outcome model fell back and nothing is registered).
model_version as (

    select * from {{ ref('int_model_version') }}

),

decided as (

    select
        settings.as_of_date,
        {{ build_id_sql() }} as build_id,
        settings.experiment_id,
        scored_loans.loan_id,
        strategies.cell,
        strategies.decision_policy,
        strategies.strategy_code as assigned_strategy_code,
        strategies.intended_strategy_code,
        strategies.champion_strategy_code,
        strategies.challenger_strategy_code,
        strategies.explore_strategy_code,
        strategies.capacity_limited,
        cast(scored_loans.loss_probability as double) as loss_probability,
        cast(strategies.amount_at_risk as double) as amount_at_risk,
        strategies.p_full_reminders,
        strategies.p_full_settlement,
        strategies.p_full_legal,
        strategies.expected_net_value,
        cast(scored_loans.outstanding_loan_amount as double) as outstanding_loan_amount,
        scored_loans.days_past_due,
        model_version.model_version
    from scored_loans
    inner join strategies on scored_loans.loan_id = strategies.loan_id
    cross join settings
    cross join model_version
    where not scored_loans.is_resolved

),

final as (

    select {{ contract_columns('decision_log') }} from history
    union all
    select {{ contract_columns('decision_log') }} from decided

)

select * from final
