-- Every outcome known to this cycle: the outcomes the history already held
-- (first seen before this cycle) and those seen now, the earlier decisions
-- whose loan this book holds as resolved (docs block decision_log). An
-- outcome, once seen, is kept with its decision even when a later book no
-- longer holds the loan.
with

outcome_history as (

    select * from {{ ref('stg_history__decision_outcomes') }}

),

decisions as (

    select * from {{ ref('stg_history__decision_log') }}

),

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

seen_now as (

    select
        decisions.as_of_date,
        decisions.loan_id,
        decisions.cell,
        decisions.assigned_strategy_code,
        scored_loans.recovery_status,
        scored_loans.is_not_fully_recovered,
        settings.as_of_date as resolved_as_of_date,
        {{ build_id_sql() }} as resolved_build_id
    from decisions
    inner join scored_loans on decisions.loan_id = scored_loans.loan_id
    cross join settings
    where
        scored_loans.is_resolved
        and not exists (
            select 1
            from outcome_history
            where
                outcome_history.as_of_date = decisions.as_of_date
                and outcome_history.loan_id = decisions.loan_id
        )

),

final as (

    select {{ contract_columns('decision_outcomes') }} from outcome_history
    union all
    select {{ contract_columns('decision_outcomes') }} from seen_now

)

select * from final
