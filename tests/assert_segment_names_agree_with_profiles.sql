-- A segment's name must not contradict what borrower_segments shows: "High
-- Income" above the book's mean income, "Low Loan" below its mean loan, and
-- the risk words follow the observed loss rates where outcomes decide
-- ("Higher Default Risk" and is_high_risk above the book's loss rate, "Low
-- Default Risk" below it), else the arrears (naming rules: docs segment_naming).
with

segments as (

    select * from {{ ref('borrower_segments') }}

),

book as (

    select
        sum(mean_monthly_income * loan_count) / sum(loan_count) as mean_monthly_income,
        sum(mean_loan_amount * loan_count) / sum(loan_count) as mean_loan_amount,
        sum(mean_num_missed_payments * loan_count) / sum(loan_count) as mean_num_missed_payments,
        sum(mean_days_past_due * loan_count) / sum(loan_count) as mean_days_past_due,
        sum(observed_loss_rate * resolved_loans) / nullif(sum(resolved_loans), 0) as loss_rate
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
            when segments.risk_basis = 'observed loss rate' and segments.is_high_risk <> (segments.observed_loss_rate > book.loss_rate)
                then 'high-risk flag disagrees with the loss rate'
            when
                segments.risk_basis = 'observed loss rate' and segments.segment_name like '%Higher Default Risk%'
                and segments.observed_loss_rate <= book.loss_rate
                then 'Higher Default Risk with a loss rate at or below the book'
            when
                segments.risk_basis = 'observed loss rate' and segments.segment_name like '%Low Default Risk%'
                and segments.observed_loss_rate >= book.loss_rate
                then 'Low Default Risk with a loss rate at or above the book'
            when
                segments.risk_basis = 'delinquency' and segments.segment_name like '%Low Default Risk%'
                and segments.mean_num_missed_payments >= book.mean_num_missed_payments
                and segments.mean_days_past_due >= book.mean_days_past_due
                then 'Low Default Risk with arrears above the book'
            when
                segments.risk_basis = 'delinquency' and segments.segment_name like '%Higher Default Risk%'
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
