-- The write-up's question: how do loan sizes relate to income? Loan amount
-- against monthly income by income decile, with the burden it implies.
with

features as (

    select * from {{ catalog_free_ref('int_loan_features') }}

),

banded as (

    select
        *,
        ntile(10) over (order by monthly_income) as income_decile
    from features

),

final as (

    select
        income_decile,
        count(*) as loans,
        min(monthly_income) as min_monthly_income,
        max(monthly_income) as max_monthly_income,
        avg(loan_amount) as mean_loan_amount,
        avg(loan_to_annual_income_ratio) as mean_loan_to_annual_income,
        avg(emi_to_income_ratio) as mean_emi_to_income
    from banded
    group by income_decile

)

select * from final
order by income_decile
