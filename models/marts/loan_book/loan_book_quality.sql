-- What staging accepted but a data steward should know about, one row per
-- finding: each unknown value of a descriptive category (kept, normalised;
-- docs block validation_rules) and the loans whose outstanding balance is
-- above the amount lent (allowed up to var max_outstanding_to_loan_ratio).
with

loans as (

    select * from {{ ref('stg_loans') }}

),

checked as (

    select * from {{ ref('stg_loan_book__checked') }}
    where reject_reason is null and unknown_category_columns is not null

),

unknown_values as (

    {%- for name in reference('category_values') if name not in reference('strict_categories') %}
    select
        'unknown_category_value' as finding,
        '{{ name }}' as column_name,
        {{ name }} as category_value,
        count(*) as loan_count
    from checked
    where list_contains(string_split(unknown_category_columns, '; '), '{{ name }}')
    group by {{ name }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

outstanding_above_amount as (

    select
        'outstanding_above_loan_amount' as finding,
        'outstanding_loan_amount' as column_name,
        null as category_value,
        count(*) as loan_count
    from loans
    where outstanding_loan_amount > loan_amount
    having count(*) > 0

),

final as (

    select * from unknown_values
    union all
    select * from outstanding_above_amount

)

select * from final
