-- Champion against challenger and explore, per decision cycle and cell: how
-- the cell's decisions have resolved so far, and its loss rate against the
-- champion cell's with a 95 % interval (docs block challenger_results).
with

-- The per-strategy counts, added up per cell: one place counts decisions
-- against their outcomes.
by_strategy as (

    select * from {{ ref('challenger_strategy_results') }}

),

cells as (

    select
        as_of_date,
        experiment_id,
        cell,
        sum(decided_loans) as decided_loans,
        sum(resolved_loans) as resolved_loans,
        sum(lost_loans) as lost_loans
    from by_strategy
    group by as_of_date, experiment_id, cell

),

rates as (

    select
        *,
        case when resolved_loans > 0 then lost_loans / resolved_loans end as loss_rate
    from cells

),

bounded as (

    select
        *,
        {{ wilson_bound('loss_rate', 'resolved_loans', 'low') }} as loss_rate_ci_low,
        {{ wilson_bound('loss_rate', 'resolved_loans', 'high') }} as loss_rate_ci_high
    from rates

),

champion as (

    select * from bounded
    where cell = 'champion'

),

-- The difference of two loss rates and its 95 % interval by Newcombe's
-- method (hybrid Wilson score): each cell's own Wilson bounds, combined.
compared as (

    select
        bounded.*,
        bounded.loss_rate - champion.loss_rate as lift_vs_champion,
        bounded.loss_rate - champion.loss_rate - sqrt(
            power(bounded.loss_rate - bounded.loss_rate_ci_low, 2)
            + power(champion.loss_rate_ci_high - champion.loss_rate, 2)
        ) as lift_ci_low,
        bounded.loss_rate - champion.loss_rate + sqrt(
            power(bounded.loss_rate_ci_high - bounded.loss_rate, 2)
            + power(champion.loss_rate - champion.loss_rate_ci_low, 2)
        ) as lift_ci_high,
        -- The loans this cell would need, at the same size ratio to the
        -- champion cell and the same loss rates, for the 95 % interval of
        -- the lift to exclude zero: 1.96^2 (v + v_champion / r) / lift^2.
        ceil(
            3.841459 * (
                bounded.loss_rate * (1 - bounded.loss_rate)
                + champion.loss_rate * (1 - champion.loss_rate)
                * bounded.resolved_loans / champion.resolved_loans
            ) / nullif(power(bounded.loss_rate - champion.loss_rate, 2), 0)
        ) as loans_needed
    from bounded
    left join champion
        on
            bounded.as_of_date = champion.as_of_date
            and bounded.experiment_id = champion.experiment_id
            and bounded.cell <> 'champion'

),

final as (

    select
        as_of_date,
        experiment_id,
        cell,
        cast(decided_loans as bigint) as decided_loans,
        cast(resolved_loans as bigint) as resolved_loans,
        cast(lost_loans as bigint) as lost_loans,
        cast(loss_rate as double) as loss_rate,
        cast(loss_rate_ci_low as double) as loss_rate_ci_low,
        cast(loss_rate_ci_high as double) as loss_rate_ci_high,
        cast(lift_vs_champion as double) as lift_vs_champion,
        cast(lift_ci_low as double) as lift_ci_low,
        cast(lift_ci_high as double) as lift_ci_high,
        cast(loans_needed as bigint) as loans_needed
    from compared

)

select * from final
