with

loans as (

    select * from {{ ref('stg_loans') }}

),

final as (

    select
        loan_id,
        borrower_id,
        {%- for feature in reference('cluster_features') %}
        cast({{ feature }} as double) as {{ feature }},
        {%- endfor %}
        monthly_emi / nullif(monthly_income, 0) as emi_to_income_ratio,
        loan_amount / nullif(12 * monthly_income, 0) as loan_to_annual_income_ratio,
        outstanding_loan_amount / nullif(loan_amount, 0) as outstanding_share_of_loan,
        loan_amount / nullif(collateral_value, 0) as loan_to_collateral_ratio,
        collateral_value / nullif(outstanding_loan_amount, 0) as collateral_cover_ratio,
        collateral_value > 0 as is_secured
    from loans

)

select * from final
