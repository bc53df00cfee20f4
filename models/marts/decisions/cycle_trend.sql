-- One row per decision cycle: the open loans it decided for, loans and
-- amount at risk per assigned strategy, the model and its drift verdict
-- then, and how that cycle's decisions have resolved so far (docs block
-- decision_log).
with

cycles as (

    select * from {{ ref('decision_cycles') }}

),

decisions as (

    select * from {{ ref('decision_log') }}

),

outcomes as (

    select * from {{ ref('decision_outcomes') }}

),

decided as (

    select
        decisions.as_of_date,
        count(*) as decided_loans,
        count(*) filter (where decisions.assigned_strategy_code = 'legal') as legal_loans,
        count(*) filter (where decisions.assigned_strategy_code = 'settlement') as settlement_loans,
        count(*) filter (where decisions.assigned_strategy_code = 'reminders') as reminders_loans,
        sum(decisions.amount_at_risk) as amount_at_risk,
        sum(decisions.amount_at_risk) filter (where decisions.assigned_strategy_code = 'legal') as legal_amount_at_risk,
        sum(decisions.amount_at_risk) filter (where decisions.assigned_strategy_code = 'settlement') as settlement_amount_at_risk,
        sum(decisions.amount_at_risk) filter (where decisions.assigned_strategy_code = 'reminders') as reminders_amount_at_risk,
        count(*) filter (where decisions.capacity_limited) as capacity_limited_loans,
        count(outcomes.loan_id) as resolved_loans,
        count(*) filter (where outcomes.is_not_fully_recovered) as lost_loans
    from decisions
    left join outcomes
        on decisions.as_of_date = outcomes.as_of_date and decisions.loan_id = outcomes.loan_id
    group by decisions.as_of_date

),

final as (

    select
        cycles.as_of_date,
        cycles.build_id,
        cycles.experiment_id,
        cycles.model_version,
        cycles.drift_verdict,
        cycles.max_psi,
        cycles.open_loans,
        cast(coalesce(decided.decided_loans, 0) as bigint) as decided_loans,
        cast(coalesce(decided.legal_loans, 0) as bigint) as legal_loans,
        cast(coalesce(decided.settlement_loans, 0) as bigint) as settlement_loans,
        cast(coalesce(decided.reminders_loans, 0) as bigint) as reminders_loans,
        cast(decided.amount_at_risk as double) as amount_at_risk,
        cast(decided.legal_amount_at_risk as double) as legal_amount_at_risk,
        cast(decided.settlement_amount_at_risk as double) as settlement_amount_at_risk,
        cast(decided.reminders_amount_at_risk as double) as reminders_amount_at_risk,
        cast(coalesce(decided.capacity_limited_loans, 0) as bigint) as capacity_limited_loans,
        cast(coalesce(decided.resolved_loans, 0) as bigint) as resolved_loans,
        cast(
            case when decided.resolved_loans > 0 then decided.lost_loans / decided.resolved_loans end
            as double
        ) as loss_rate_so_far
    from cycles
    left join decided on cycles.as_of_date = decided.as_of_date

)

select * from final
