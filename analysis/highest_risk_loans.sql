-- The loans to act on first: legal-strategy loans, highest risk score first,
-- then the largest outstanding amount.
with

strategies as (

    select * from {{ catalog_free_ref('recovery_strategies') }}

),

final as (

    select
        loan_id,
        borrower_id,
        segment_name,
        risk_score,
        recovery_strategy,
        loan_type,
        outstanding_loan_amount,
        num_missed_payments,
        days_past_due
    from strategies
    where strategy_code = 'legal'

)

select * from final
order by risk_score desc, outstanding_loan_amount desc
limit 100
