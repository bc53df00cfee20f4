with

checked as (

    select * from {{ ref('stg_loan_book__checked') }}

),

valid as (

    select * from checked
    where reject_reason is null

),

final as (

    select
        loan_id,
        borrower_id,
        source_row_number,
        cast(age as integer) as age,
        gender,
        employment_type,
        monthly_income,
        cast(num_dependents as integer) as num_dependents,
        loan_amount,
        cast(loan_tenure as integer) as loan_tenure,
        interest_rate,
        loan_type,
        collateral_value,
        outstanding_loan_amount,
        monthly_emi,
        payment_history,
        cast(num_missed_payments as integer) as num_missed_payments,
        cast(days_past_due as integer) as days_past_due,
        recovery_status,
        is_resolved,
        cast(collection_attempts as integer) as collection_attempts,
        collection_method,
        legal_action_taken = 'Yes' as legal_action_taken
    from valid

)

select * from final
