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
        -- Ratios (docs block loan_ratios); the ones in var reference.ratio_features
        -- are defined for every loan, so the outcome model can use them.
        monthly_emi / monthly_income as emi_to_income_ratio,
        loan_amount / (12 * monthly_income) as loan_to_annual_income_ratio,
        outstanding_loan_amount / loan_amount as outstanding_share_of_loan,
        collateral_value / loan_amount as collateral_to_loan_ratio,
        least(coalesce(collateral_value / nullif(outstanding_loan_amount, 0), 10), 10) as collateral_cover_ratio,
        loan_amount / nullif(collateral_value, 0) as loan_to_collateral_ratio,
        collateral_value > 0 as is_secured,
        -- Pre-collection categories and the protected attribute (read only by
        -- the leak sentinel and the model card, never a feature).
        {%- for category in reference('outcome_categories') + reference('protected_attributes') %}
        {{ category }},
        {%- endfor %}
        -- The outcome the models learn, known for resolved loans only.
        is_resolved,
        case when is_resolved then recovery_status <> 'Fully Recovered' end as is_not_fully_recovered
    from loans

)

select * from final
