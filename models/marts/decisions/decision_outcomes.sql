-- Each logged decision whose loan has since resolved, with its outcome
-- (docs block decision_log). An outcome, once seen, is kept with its
-- decision and carried forward like the log, even when a later book no
-- longer holds the loan; rebuilding a cycle replaces only the outcomes first
-- seen in it.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    full_refresh=false,
    pre_hook="{{ replace_this_cycle('resolved_as_of_date') }}"
) }}
with

decisions as (

    select * from {{ ref('decision_log') }}

),

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

-- Decisions of earlier cycles whose loan this book holds as resolved.
resolved as (

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
        and decisions.as_of_date < settings.as_of_date

),

final as (

    select resolved.*
    from resolved
    {% if is_incremental() %}
        where not exists (
            select 1
            from {{ this }} as seen
            where seen.as_of_date = resolved.as_of_date and seen.loan_id = resolved.loan_id
        )
    {% endif %}

)

select * from final
