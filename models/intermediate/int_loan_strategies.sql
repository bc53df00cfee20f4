-- Every scored loan's recovery strategy: the thresholds' CASE, then capacity
-- (docs blocks strategy_thresholds and capacity). Apart from the reasons and
-- the catalog's wording, which recovery_strategies joins on, so that the
-- strategy (and its unit tests) runs while the reasons are still computed.
-- Strategies are handled by their rank in recovery_strategy_catalog (3
-- legal, 2 settlement, 1 reminders) and named from the catalog at the end,
-- so the codes are written only there.
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

-- The thresholds, in one place (macro strategy_rank, docs block strategy_thresholds).
thresholds as (

    select
        scored_loans.*,
        scored_loans.outstanding_loan_amount * scored_loans.loss_probability as amount_at_risk,
        {{ strategy_rank('scored_loans.risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as threshold_strategy_rank
    from scored_loans
    cross join settings

),

-- Capacity, step 1 (docs block capacity): the worked loans the thresholds
-- send to legal (rank 3), by amount at risk (then risk_score, then
-- loan_id); those beyond legal_capacity move down one, to settlement. Only
-- the candidates are queued, so the sort stays small.
legal_queue as (

    select
        loan_id,
        row_number() over (order by {{ work_order() }}) as legal_position
    from thresholds
    where is_worked and threshold_strategy_rank = 3

),

after_legal as (

    select
        thresholds.*,
        case
            when legal_queue.legal_position > coalesce(settings.legal_capacity, legal_queue.legal_position)
                then thresholds.threshold_strategy_rank - 1
            else thresholds.threshold_strategy_rank
        end as after_legal_rank
    from thresholds
    cross join settings
    left join legal_queue on thresholds.loan_id = legal_queue.loan_id

),

-- Step 2: settlement (rank 2), now holding the loans moved down from legal
-- too; those beyond settlement_capacity move down one, to reminders.
settlement_queue as (

    select
        loan_id,
        row_number() over (order by {{ work_order() }}) as settlement_position
    from after_legal
    where is_worked and after_legal_rank = 2

),

assigned as (

    select
        after_legal.*,
        case
            when settlement_queue.settlement_position > coalesce(settings.settlement_capacity, settlement_queue.settlement_position)
                then after_legal.after_legal_rank - 1
            else after_legal.after_legal_rank
        end as strategy_rank
    from after_legal
    cross join settings
    left join settlement_queue on after_legal.loan_id = settlement_queue.loan_id

),

final as (

    select
        assigned.loan_id,
        assigned.amount_at_risk,
        threshold_strategies.strategy_code as threshold_strategy_code,
        assigned_strategies.strategy_code,
        assigned.strategy_rank <> assigned.threshold_strategy_rank as capacity_limited
    from assigned
    left join strategy_catalog as threshold_strategies
        on assigned.threshold_strategy_rank = threshold_strategies.strategy_rank
    left join strategy_catalog as assigned_strategies
        on assigned.strategy_rank = assigned_strategies.strategy_rank

)

select * from final
