-- This cycle's work: the worked loans (open ones, or every loan when none is
-- open) in the order a team works them, strategy by strategy, the most
-- money at risk first, with the reasons and the facts a collector needs.
with

strategies as (

    select * from {{ ref('recovery_strategies') }}
    where is_worked

),

catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

final as (

    select
        strategies.strategy_code,
        strategies.recovery_strategy,
        catalog.strategy_rank,
        row_number() over (
            partition by strategies.strategy_code
            order by {{ work_order('strategies.') }}
        ) as queue_rank,
        strategies.loan_id,
        strategies.borrower_id,
        strategies.segment_name,
        strategies.amount_at_risk,
        strategies.loss_probability,
        strategies.risk_score,
        strategies.score_source,
        strategies.cell,
        strategies.decision_policy,
        strategies.capacity_limited,
        strategies.expected_net_value,
        strategies.expected_recovery,
        strategies.expected_cost,
        strategies.best_strategy_code,
        strategies.best_expected_net_value,
        strategies.value_given_up_to_capacity,
        strategies.reason_code_1,
        strategies.reason_1,
        strategies.reason_code_2,
        strategies.reason_2,
        strategies.reason_code_3,
        strategies.reason_3,
        strategies.outstanding_loan_amount,
        strategies.loan_amount,
        strategies.monthly_emi,
        strategies.num_missed_payments,
        strategies.days_past_due,
        strategies.loan_type,
        strategies.model_version
    from strategies
    inner join catalog on strategies.strategy_code = catalog.strategy_code

)

select * from final
