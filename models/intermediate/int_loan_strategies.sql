-- Every scored loan's recovery strategy: each worked loan's cell, what the
-- champion and the challenger policy would do for it, the action its cell
-- asks for, then capacity over all cells (docs blocks strategy_thresholds,
-- decision_experiment and capacity). Apart from the reasons and the
-- catalog's wording, which recovery_strategies joins on, so that the
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

-- The thresholds, in one place (macro strategy_rank, docs block
-- strategy_thresholds), and each worked loan's two draws: a stable hash of
-- experiment_id and loan_id only, so scores and thresholds never move a
-- loan between cells (docs block decision_experiment).
draws as (

    select
        scored_loans.*,
        scored_loans.outstanding_loan_amount * scored_loans.loss_probability as amount_at_risk,
        scored_loans.days_past_due >= settings.legal_min_days_past_due as is_legal_eligible,
        {{ strategy_rank('scored_loans.risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as threshold_strategy_rank,
        {{ strategy_rank('scored_loans.risk_score', 'settings.challenger_legal_threshold', 'settings.challenger_settlement_threshold') }}
            as challenger_threshold_rank,
        case when scored_loans.is_worked
            then {{ stable_uniform("settings.experiment_id || '|' || scored_loans.loan_id") }}
        end as cell_draw,
        case when scored_loans.is_worked
            then {{ stable_uniform("settings.experiment_id || '|' || scored_loans.loan_id || '|explore'") }}
        end as explore_draw
    from scored_loans
    cross join settings

),

-- Each policy's strategy within eligibility (no legal action before
-- legal_min_days_past_due), the exploration draw (uniform over the
-- eligible strategies) and the cell. A loan that is not worked this cycle
-- has no cell and keeps the champion's strategy.
policies as (

    select
        draws.*,
        {{ eligible_rank('draws.threshold_strategy_rank', 'draws.is_legal_eligible') }} as champion_rank,
        {{ eligible_rank('draws.challenger_threshold_rank', 'draws.is_legal_eligible') }} as challenger_rank,
        1 + cast(floor(draws.explore_draw * case when draws.is_legal_eligible then 3 else 2 end) as integer)
            as explore_rank,
        case when draws.is_worked
            then {{ decision_cell('draws.cell_draw', 'settings.challenger_share', 'settings.explore_share') }}
        end as cell
    from draws
    cross join settings

),

intended as (

    select
        *,
        case cell
            when 'challenger' then challenger_rank
            when 'explore' then explore_rank
            else champion_rank
        end as intended_rank,
        -- The order capacity serves loans in: the explore cell first, in its
        -- random order (so capacity keeps its actions random), then every
        -- other loan in work order.
        case when cell = 'explore' then 0 else 1 end as capacity_tier,
        case when cell = 'explore' then explore_draw else 0 end as capacity_draw
    from policies

),

-- Capacity, step 1 (docs block capacity): the worked loans whose cell asks
-- for legal (rank 3), in capacity order; those beyond legal_capacity move
-- down one, to settlement. Only the candidates are queued, so the sort
-- stays small.
legal_queue as (

    select
        loan_id,
        row_number() over (order by capacity_tier, capacity_draw, {{ work_order() }}) as legal_position
    from intended
    where is_worked and intended_rank = 3

),

after_legal as (

    select
        intended.*,
        case
            when legal_queue.legal_position > coalesce(settings.legal_capacity, legal_queue.legal_position)
                then intended.intended_rank - 1
            else intended.intended_rank
        end as after_legal_rank
    from intended
    cross join settings
    left join legal_queue on intended.loan_id = legal_queue.loan_id

),

-- Step 2: settlement (rank 2), now holding the loans moved down from legal
-- too; those beyond settlement_capacity move down one, to reminders.
settlement_queue as (

    select
        loan_id,
        row_number() over (order by capacity_tier, capacity_draw, {{ work_order() }}) as settlement_position
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
        assigned.cell,
        threshold_strategies.strategy_code as threshold_strategy_code,
        champion_strategies.strategy_code as champion_strategy_code,
        challenger_strategies.strategy_code as challenger_strategy_code,
        explore_strategies.strategy_code as explore_strategy_code,
        intended_strategies.strategy_code as intended_strategy_code,
        assigned_strategies.strategy_code,
        assigned.strategy_rank <> assigned.intended_rank as capacity_limited
    from assigned
    left join strategy_catalog as threshold_strategies
        on assigned.threshold_strategy_rank = threshold_strategies.strategy_rank
    left join strategy_catalog as champion_strategies
        on assigned.champion_rank = champion_strategies.strategy_rank
    left join strategy_catalog as challenger_strategies
        on assigned.challenger_rank = challenger_strategies.strategy_rank
    left join strategy_catalog as explore_strategies
        on assigned.cell = 'explore' and assigned.explore_rank = explore_strategies.strategy_rank
    left join strategy_catalog as intended_strategies
        on assigned.intended_rank = intended_strategies.strategy_rank
    left join strategy_catalog as assigned_strategies
        on assigned.strategy_rank = assigned_strategies.strategy_rank

)

select * from final
