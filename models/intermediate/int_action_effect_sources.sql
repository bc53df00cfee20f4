-- Per strategy: how many resolved randomised outcomes it has and whether
-- its effect is learned or taken from its prior (docs block action_effects).
-- The least intensive strategy (rank 1, reminders) is the baseline every
-- effect is measured against; an action is learned once it and the
-- baseline each have min_randomised_outcomes explored outcomes.
with

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

randomised as (

    select * from {{ ref('int_randomised_outcomes') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

counted as (

    select
        strategy_catalog.strategy_code,
        strategy_catalog.strategy_rank,
        count(randomised.loan_id) as randomised_outcomes
    from strategy_catalog
    left join randomised on strategy_catalog.strategy_code = randomised.assigned_strategy_code
    group by strategy_catalog.strategy_code, strategy_catalog.strategy_rank

),

baseline as (

    select randomised_outcomes as baseline_outcomes from counted
    where strategy_rank = 1

),

final as (

    select
        counted.strategy_code,
        counted.strategy_rank,
        cast(counted.randomised_outcomes as bigint) as randomised_outcomes,
        case
            when counted.strategy_rank = 1 then 'baseline'
            when
                counted.randomised_outcomes >= settings.min_randomised_outcomes
                and baseline.baseline_outcomes >= settings.min_randomised_outcomes
                then 'learned'
            else 'prior'
        end as source,  -- noqa: RF04
        case counted.strategy_code
            when 'settlement' then settings.settlement_prior_effect
            when 'legal' then settings.legal_prior_effect
        end as prior_effect
    from counted
    cross join baseline
    cross join settings

)

select * from final
