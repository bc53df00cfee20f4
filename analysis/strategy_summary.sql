-- Loans and outstanding amount per recovery strategy and borrower segment:
-- where the collection team's workload and money sit.
with

strategies as (

    select * from {{ catalog_free_ref('recovery_strategies') }}

),

final as (

    select
        strategy_code,
        recovery_strategy,
        segment_id,
        segment_name,
        count(*) as loans,
        sum(outstanding_loan_amount) as outstanding_amount,
        avg(risk_score) as mean_risk_score
    from strategies
    group by strategy_code, recovery_strategy, segment_id, segment_name

)

select * from final
order by outstanding_amount desc
