-- The explore cell's resolved decisions, the only ones whose action was
-- drawn at random: what the action-effect model learns from (docs block
-- action_effects). Each with the loan's baseline probability as it was
-- decided (decision_log) and its features from this book; a loan this book
-- no longer holds cannot teach the model and is left out.
with

outcomes as (

    select * from {{ ref('int_decision_outcomes') }}
    where cell = 'explore'

),

decisions as (

    select * from {{ ref('stg_history__decision_log') }}

),

features as (

    select * from {{ ref('int_loan_features') }}

),

final as (

    select
        features.*,
        outcomes.as_of_date,
        outcomes.cell,
        outcomes.assigned_strategy_code,
        not outcomes.is_not_fully_recovered as is_fully_recovered,
        decisions.loss_probability,
        decisions.days_past_due as decision_days_past_due
    from outcomes
    inner join decisions
        on outcomes.as_of_date = decisions.as_of_date and outcomes.loan_id = decisions.loan_id
    inner join features on outcomes.loan_id = features.loan_id
    where decisions.loss_probability is not null

)

-- every feature the outcome model reads, whatever the list (sqlfluff cannot see a ref's columns)
select * from final  -- noqa: AM04
