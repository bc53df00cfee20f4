-- The experiment's outcomes broken down by the strategy each loan was
-- assigned: per decision cycle, cell and assigned strategy, how many were
-- decided and resolved and their loss rate with a 95 % interval (docs block
-- challenger_results). Within the explore cell the strategy was drawn at
-- random, so its rows compare the actions themselves; in the other cells
-- the policy chose the strategy from the score, so their rows describe the
-- policy, not what each action does.
with

decisions as (

    select * from {{ ref('decision_log') }}

),

outcomes as (

    select * from {{ ref('decision_outcomes') }}

),

cells as (

    select
        decisions.as_of_date,
        decisions.experiment_id,
        decisions.cell,
        decisions.assigned_strategy_code,
        count(*) as decided_loans,
        count(outcomes.loan_id) as resolved_loans,
        count(*) filter (where outcomes.is_not_fully_recovered) as lost_loans
    from decisions
    left join outcomes
        on decisions.as_of_date = outcomes.as_of_date and decisions.loan_id = outcomes.loan_id
    group by decisions.as_of_date, decisions.experiment_id, decisions.cell, decisions.assigned_strategy_code

),

rates as (

    select
        *,
        case when resolved_loans > 0 then lost_loans / resolved_loans end as loss_rate
    from cells

),

final as (

    select
        as_of_date,
        experiment_id,
        cell,
        assigned_strategy_code,
        cast(decided_loans as bigint) as decided_loans,
        cast(resolved_loans as bigint) as resolved_loans,
        cast(lost_loans as bigint) as lost_loans,
        cast(loss_rate as double) as loss_rate,
        cast({{ wilson_bound('loss_rate', 'resolved_loans', 'low') }} as double) as loss_rate_ci_low,
        cast({{ wilson_bound('loss_rate', 'resolved_loans', 'high') }} as double) as loss_rate_ci_high
    from rates

)

select * from final
