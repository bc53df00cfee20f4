-- Loans the thresholds sent to a strategy that was full this cycle, moved
-- down one (or two) strategies: where more capacity would go first.
with

strategies as (

    select * from {{ catalog_free_ref('recovery_strategies') }}

),

final as (

    select
        threshold_strategy_code,
        strategy_code,
        loan_id,
        amount_at_risk,
        risk_score,
        outstanding_loan_amount,
        reason_1
    from strategies
    where capacity_limited

)

select * from final
order by threshold_strategy_code asc, amount_at_risk desc nulls last, loan_id asc
