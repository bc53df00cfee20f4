-- Every scored loan's recovery strategy: the thresholds' CASE, then capacity
-- (docs blocks strategy_thresholds and capacity). Apart from the reasons and
-- the catalog's wording, which recovery_strategies joins on, so that the
-- strategy (and its unit tests) runs while the reasons are still computed.
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

-- The thresholds, in one place (macro strategy_code, docs block strategy_thresholds).
thresholds as (

    select
        scored_loans.*,
        scored_loans.outstanding_loan_amount * scored_loans.loss_probability as amount_at_risk,
        {{ strategy_code('scored_loans.risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as threshold_strategy_code
    from scored_loans
    cross join settings

),

-- Capacity, step 1 (docs block capacity): the worked loans the thresholds
-- send to legal, by amount at risk (then risk_score, then loan_id); those
-- beyond legal_capacity move down to settlement. Only the candidates are
-- ranked, so the sort stays small.
legal_ranks as (

    select
        loan_id,
        row_number() over (order by {{ work_order() }}) as legal_rank
    from thresholds
    where is_worked and threshold_strategy_code = 'legal'

),

after_legal as (

    select
        thresholds.*,
        case
            when legal_ranks.legal_rank > coalesce(settings.legal_capacity, legal_ranks.legal_rank)
                then 'settlement'
            else thresholds.threshold_strategy_code
        end as after_legal_code
    from thresholds
    cross join settings
    left join legal_ranks on thresholds.loan_id = legal_ranks.loan_id

),

-- Step 2: settlement, now holding the loans moved down from legal too; those
-- beyond settlement_capacity move down to reminders.
settlement_ranks as (

    select
        loan_id,
        row_number() over (order by {{ work_order() }}) as settlement_rank
    from after_legal
    where is_worked and after_legal_code = 'settlement'

),

assigned as (

    select
        after_legal.*,
        case
            when settlement_ranks.settlement_rank > coalesce(settings.settlement_capacity, settlement_ranks.settlement_rank)
                then 'reminders'
            else after_legal.after_legal_code
        end as strategy_code
    from after_legal
    cross join settings
    left join settlement_ranks on after_legal.loan_id = settlement_ranks.loan_id

),

final as (

    select
        loan_id,
        amount_at_risk,
        threshold_strategy_code,
        strategy_code,
        strategy_code <> threshold_strategy_code as capacity_limited
    from assigned

)

select * from final
