-- One row per decision cycle ever built into this file: when, by which
-- build and model, under which experiment, and what the drift monitor said
-- then (docs block decision_log). The earlier cycles as this build found
-- them, and this one.
with

history as (

    select * from {{ ref('stg_history__decision_cycles') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

loans as (

    select * from {{ ref('stg_loans') }}

),

-- One row: the registry id of the models that scored the book.
model_version as (

    select * from {{ ref('int_model_version') }}

),

monitoring as (

    select * from {{ ref('model_monitoring') }}

),

-- The whole book, counted from the clean loans: the decision run scores
-- the open loans only.
book as (

    select
        count(*) as loans,
        count(*) filter (where not is_resolved) as open_loans
    from loans

),

-- The drift verdict: the class of the largest PSI of any model variable,
-- the worst class model_monitoring shows (docs block population_stability).
largest_shift as (

    select max(psi) as max_psi from monitoring

),

drift as (

    select
        max_psi,
        case when max_psi is not null then {{ stability_class('max_psi') }} end as drift_verdict
    from largest_shift

),

decided as (

    select
        settings.as_of_date,
        {{ build_id_sql() }} as build_id,
        settings.experiment_id,
        model_version.model_version,
        cast(book.loans as bigint) as loans,
        cast(book.open_loans as bigint) as open_loans,
        drift.drift_verdict,
        cast(drift.max_psi as double) as max_psi,
        settings.decision_policy,
        settings.challenger_policy,
        settings.challenger_share,
        settings.explore_share,
        settings.reminders_cost,
        settings.settlement_cost,
        settings.legal_cost,
        settings.settlement_haircut,
        settings.partial_recovery_share,
        -- plain TIMESTAMP in UTC: DuckDB 1.x Python clients need pytz for TIMESTAMPTZ
        timezone('UTC', current_timestamp) as decided_at
    from settings
    cross join book
    cross join drift
    cross join model_version

),

final as (

    select {{ contract_columns('decision_cycles') }} from history
    union all
    select {{ contract_columns('decision_cycles') }} from decided

)

select * from final
