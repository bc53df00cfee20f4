-- Score and strategy rates by protected attribute (gender), which is never a
-- model feature: so that a disparity is visible (docs block model_metrics).
with

strategies as (

    select * from {{ ref('recovery_strategies') }}

),

loans as (

    select * from {{ ref('stg_loans') }}

),

joined as (

    select
        strategies.*,
    {%- for attribute in reference('protected_attributes') %}
    loans.{{ attribute }}
{{ "," if not loop.last }}
    {%- endfor %}
    from strategies
    inner join loans on strategies.loan_id = loans.loan_id

),

final as (

    {%- for attribute in reference('protected_attributes') %}
    select
        '{{ attribute }}' as protected_attribute,
        {{ attribute }} as attribute_value,
        count(*) as loans,
        count(*) filter (where is_resolved) as resolved_loans,
        avg((recovery_status <> 'Fully Recovered')::double) filter (where is_resolved) as observed_loss_rate,
        avg(loss_probability) as mean_loss_probability,
        avg(risk_score) as mean_risk_score,
        avg((strategy_code = 'legal')::double) as legal_share,
        avg((strategy_code = 'settlement')::double) as settlement_share,
        avg((strategy_code = 'reminders')::double) as reminders_share
    from joined
    group by {{ attribute }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

)

select * from final
