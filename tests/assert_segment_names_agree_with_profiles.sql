-- A segment's name must not contradict the profile borrower_segments shows:
-- "High Income" above the book's mean income, "Low Default Risk" with fewer
-- missed payments than the book, and so on (naming rules: docs segment_naming).
with

segments as (

    select * from {{ ref('borrower_segments') }}

),

book as (

    select
        sum(mean_monthly_income * loan_count) / sum(loan_count) as mean_monthly_income,
        sum(mean_loan_amount * loan_count) / sum(loan_count) as mean_loan_amount,
        sum(mean_num_missed_payments * loan_count) / sum(loan_count) as mean_num_missed_payments,
        sum(mean_days_past_due * loan_count) / sum(loan_count) as mean_days_past_due
    from segments

),

contradictions as (

    select
        segments.segment_id,
        segments.segment_name,
        case
            when segments.segment_name like 'High Income%' and segments.mean_monthly_income <= book.mean_monthly_income
                then 'High Income below the book mean'
            when segments.segment_name like 'Low Income%' and segments.mean_monthly_income >= book.mean_monthly_income
                then 'Low Income above the book mean'
            when segments.segment_name like 'High Loan,%' and segments.mean_loan_amount <= book.mean_loan_amount
                then 'High Loan below the book mean'
            when segments.segment_name like 'Low Loan,%' and segments.mean_loan_amount >= book.mean_loan_amount
                then 'Low Loan above the book mean'
            when
                segments.segment_name like '%Low Default Risk'
                and segments.mean_num_missed_payments >= book.mean_num_missed_payments
                and segments.mean_days_past_due >= book.mean_days_past_due
                then 'Low Default Risk with arrears above the book'
            when
                segments.segment_name like '%Higher Default Risk'
                and (not segments.is_high_risk or (
                    segments.mean_num_missed_payments <= book.mean_num_missed_payments
                    and segments.mean_days_past_due <= book.mean_days_past_due
                ))
                then 'Higher Default Risk without high risk or arrears'
        end as contradiction
    from segments
    cross join book

)

select * from contradictions
where contradiction is not null
