{{ config(materialized='ephemeral') }}

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

final as (

    select
        scores.loan_id,
        loans.borrower_id,
        segments.segment_id,
        segments.segment_name,
        segments.is_high_risk,
        scores.risk_score,
        scores.is_training_row,
        scores.model_version,
        loans.loan_type,
        loans.loan_amount,
        loans.outstanding_loan_amount,
        loans.monthly_emi,
        loans.num_missed_payments,
        loans.days_past_due,
        loans.recovery_status,
        loans.collection_method
    from scores
    inner join loans on scores.loan_id = loans.loan_id
    inner join segments on scores.loan_id = segments.loan_id

)

select * from final
