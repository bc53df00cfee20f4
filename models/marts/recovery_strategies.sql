with

scores as (

    select * from {{ ref('int_loan_risk_scores') }}

),

segments as (

    select * from {{ ref('int_loan_segments') }}

),

loans as (

    select * from {{ ref('stg_loans') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

scored_loans as (

    select
        scores.loan_id,
        loans.borrower_id,
        cast(segments.segment_id as integer) as segment_id,
        segments.segment_name,
        cast(scores.risk_score as double) as risk_score,
        loans.loan_type,
        loans.loan_amount,
        loans.outstanding_loan_amount,
        loans.monthly_emi,
        loans.num_missed_payments,
        loans.days_past_due,
        loans.recovery_status,
        loans.collection_method,
        scores.model_version
    from scores
    inner join loans on scores.loan_id = loans.loan_id
    inner join segments on scores.loan_id = segments.loan_id

),

-- The business rule, in one place (docs block strategy_thresholds).
assigned as (

    select
        *,
        case
            when risk_score > {{ var('legal_threshold') }} then 'legal'
            when risk_score >= {{ var('settlement_threshold') }} then 'settlement'
            else 'reminders'
        end as strategy_code
    from scored_loans

),

final as (

    select
        assigned.loan_id,
        assigned.borrower_id,
        assigned.segment_id,
        assigned.segment_name,
        assigned.risk_score,
        assigned.strategy_code,
        strategy_catalog.recovery_strategy,
        assigned.loan_type,
        assigned.loan_amount,
        assigned.outstanding_loan_amount,
        assigned.monthly_emi,
        assigned.num_missed_payments,
        assigned.days_past_due,
        assigned.recovery_status,
        assigned.collection_method,
        assigned.model_version
    from assigned
    left join strategy_catalog on assigned.strategy_code = strategy_catalog.strategy_code

)

select * from final
