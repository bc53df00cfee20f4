-- Score and strategy rates by protected attribute (gender), which is never a
-- model feature: so that a disparity is visible (docs block model_metrics).
with

strategies as (

    select * from {{ ref('recovery_strategies') }}

),

loans as (

    select * from {{ ref('stg_loans') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

-- Each strategy's code by its rank in the catalog, the one place the codes
-- are written; one row, so the loans keep their order when joined to it.
strategy_codes as (

    select
        any_value(strategy_code) filter (where strategy_rank = 3) as legal_code,
        any_value(strategy_code) filter (where strategy_rank = 2) as settlement_code,
        any_value(strategy_code) filter (where strategy_rank = 1) as reminders_code
    from strategy_catalog

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
        joined.{{ attribute }} as attribute_value,
        count(*) as loans,
        count(*) filter (where joined.is_resolved) as resolved_loans,
        avg((joined.recovery_status <> 'Fully Recovered')::double) filter (where joined.is_resolved) as observed_loss_rate,
        avg(joined.loss_probability) as mean_loss_probability,
        avg(joined.risk_score) as mean_risk_score,
        avg((joined.strategy_code = strategy_codes.legal_code)::double) as legal_share,
        avg((joined.strategy_code = strategy_codes.settlement_code)::double) as settlement_share,
        avg((joined.strategy_code = strategy_codes.reminders_code)::double) as reminders_share
    from joined
    cross join strategy_codes
    group by joined.{{ attribute }}
    {{ "union all" if not loop.last }}
    {%- endfor %}

)

select * from final
