-- Every scored loan's recovery strategy: each worked loan's cell, what the
-- champion and the challenger policy would do for it, the action its cell
-- asks for, then capacity over all cells (docs blocks strategy_thresholds,
-- decision_experiment, decision_policy and capacity). Apart from the
-- reasons and the catalog's wording, which recovery_strategies joins on, so
-- that the strategy (and its unit tests) runs while the reasons are still
-- computed. Strategies are handled by their rank in
-- recovery_strategy_catalog (3 legal, 2 settlement, 1 reminders) and named
-- from the catalog at the end, so the codes are written only there.
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

probabilities as (

    select * from {{ ref('int_loan_action_probabilities') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

-- The thresholds, in one place (macro strategy_rank, docs block
-- strategy_thresholds), each action's expected net value (docs block
-- action_economics; legal only for an eligible loan) and each worked
-- loan's two draws: a stable hash of experiment_id and loan_id only, so
-- scores and thresholds never move a loan between cells (docs block
-- decision_experiment).
draws as (

    select
        scored_loans.*,
        probabilities.p_full_reminders,
        probabilities.p_full_settlement,
        probabilities.p_full_legal,
        scored_loans.outstanding_loan_amount * scored_loans.loss_probability as amount_at_risk,
        scored_loans.days_past_due >= settings.legal_min_days_past_due as is_legal_eligible,
        {{ strategy_rank('scored_loans.risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as threshold_strategy_rank,
        {{ strategy_rank('scored_loans.risk_score', 'settings.challenger_legal_threshold', 'settings.challenger_settlement_threshold') }}
            as challenger_threshold_rank,
        {{ expected_net_value('scored_loans.outstanding_loan_amount', 'probabilities.p_full_reminders', '0', 'settings.partial_recovery_share', 'settings.reminders_cost') }}
            as reminders_value,
        {{ expected_net_value('scored_loans.outstanding_loan_amount', 'probabilities.p_full_settlement', 'settings.settlement_haircut', 'settings.partial_recovery_share', 'settings.settlement_cost') }}
            as settlement_value,
        case
            when scored_loans.days_past_due >= settings.legal_min_days_past_due then
                {{ expected_net_value('scored_loans.outstanding_loan_amount', 'probabilities.p_full_legal', '0', 'settings.partial_recovery_share', 'settings.legal_cost') }}
        end as legal_value,
        case
            when scored_loans.is_worked
                then {{ stable_uniform("settings.experiment_id || '|' || scored_loans.loan_id") }}
        end as cell_draw,
        case
            when scored_loans.is_worked
                then {{ stable_uniform("settings.experiment_id || '|' || scored_loans.loan_id || '|explore'") }}
        end as explore_draw
    from scored_loans
    cross join settings
    left join probabilities on scored_loans.loan_id = probabilities.loan_id

),

-- The expected-value policy (docs block decision_policy): the eligible
-- action of highest expected net value (ties to the cheaper one), and its
-- gain over the next best, which decides who capacity keeps.
valued as (

    select
        *,
        case
            when legal_value > settlement_value and legal_value > reminders_value then 3
            when settlement_value > reminders_value then 2
            when reminders_value is not null then 1
        end as value_rank
    from draws

),

-- Each policy's strategy within eligibility (no legal action before
-- legal_min_days_past_due), the exploration draw (uniform over the
-- eligible strategies) and the cell. A loan that is not worked this cycle
-- has no cell and keeps the champion's thresholds. Without probabilities
-- (the outcome model fell back) the expected-value policy keeps the
-- thresholds too.
policies as (

    select
        valued.*,
        case
            when settings.decision_policy = 'expected_value' and valued.is_worked
                then coalesce(valued.value_rank, {{ eligible_rank('valued.threshold_strategy_rank', 'valued.is_legal_eligible') }})
            else {{ eligible_rank('valued.threshold_strategy_rank', 'valued.is_legal_eligible') }}
        end as champion_rank,
        case
            when settings.challenger_policy = 'expected_value'
                then coalesce(valued.value_rank, {{ eligible_rank('valued.challenger_threshold_rank', 'valued.is_legal_eligible') }})
            else {{ eligible_rank('valued.challenger_threshold_rank', 'valued.is_legal_eligible') }}
        end as challenger_rank,
        1 + cast(floor(valued.explore_draw * case when valued.is_legal_eligible then 3 else 2 end) as integer)
            as explore_rank,
        case
            when valued.is_worked
                then {{ decision_cell('valued.cell_draw', 'settings.challenger_share', 'settings.explore_share') }}
        end as cell
    from valued
    cross join settings

),

intended as (

    select
        policies.*,
        case policies.cell
            when 'challenger' then policies.challenger_rank
            when 'explore' then policies.explore_rank
            else policies.champion_rank
        end as intended_rank,
        case
            when policies.cell = 'challenger' then settings.challenger_policy
            when policies.cell = 'explore' then 'explore'
            when policies.is_worked then settings.decision_policy
            else 'thresholds'
        end as decision_policy,
        -- The order capacity serves loans in: the explore cell first, in its
        -- random order (so capacity keeps its actions random), then every
        -- other loan by its priority: the gain over its next-best action
        -- under the expected-value policy, the amount at risk under the
        -- thresholds.
        case when policies.cell = 'explore' then 0 else 1 end as capacity_tier,
        case when policies.cell = 'explore' then policies.explore_draw else 0 end as capacity_draw
    from policies
    cross join settings

),

-- Capacity, step 1 (docs block capacity): the worked loans whose cell asks
-- for legal (rank 3), in capacity order; those beyond legal_capacity move
-- down: to their best remaining action under the expected-value policy,
-- one strategy down under the thresholds. Only the candidates are queued,
-- so the sort stays small.
legal_queue as (

    select
        loan_id,
        row_number() over (
            order by
                capacity_tier asc,
                capacity_draw asc,
                case
                    when decision_policy = 'expected_value'
                        then legal_value - greatest(settlement_value, reminders_value)
                    else amount_at_risk
                end desc nulls last,
                risk_score desc,
                loan_id asc
        ) as legal_position
    from intended
    where is_worked and intended_rank = 3

),

after_legal as (

    select
        intended.*,
        case
            when
                legal_queue.legal_position <= coalesce(settings.legal_capacity, legal_queue.legal_position)
                or legal_queue.legal_position is null
                then intended.intended_rank
            when intended.decision_policy = 'expected_value' and intended.settlement_value <= intended.reminders_value
                then 1
            else 2
        end as after_legal_rank
    from intended
    cross join settings
    left join legal_queue on intended.loan_id = legal_queue.loan_id

),

-- Step 2: settlement (rank 2), now holding the loans moved down from legal
-- too; those beyond settlement_capacity move down to reminders.
settlement_queue as (

    select
        loan_id,
        row_number() over (
            order by
                capacity_tier asc,
                capacity_draw asc,
                case
                    when decision_policy = 'expected_value' then settlement_value - reminders_value
                    else amount_at_risk
                end desc nulls last,
                risk_score desc,
                loan_id asc
        ) as settlement_position
    from after_legal
    where is_worked and after_legal_rank = 2

),

assigned as (

    select
        after_legal.*,
        case
            when settlement_queue.settlement_position > coalesce(settings.settlement_capacity, settlement_queue.settlement_position)
                then 1
            else after_legal.after_legal_rank
        end as strategy_rank
    from after_legal
    cross join settings
    left join settlement_queue on after_legal.loan_id = settlement_queue.loan_id

),

-- What the assigned action is expected to bring (docs block
-- action_economics): its recovery before cost, its cost and its net value;
-- the best action and its value; and what capacity gave up.
money as (

    select
        assigned.*,
        case assigned.strategy_rank
            when 3 then assigned.legal_value
            when 2 then assigned.settlement_value
            else assigned.reminders_value
        end as expected_net_value,
        case assigned.strategy_rank
            when 3 then settings.legal_cost
            when 2 then settings.settlement_cost
            else settings.reminders_cost
        end as expected_cost,
        case assigned.value_rank
            when 3 then assigned.legal_value
            when 2 then assigned.settlement_value
            else assigned.reminders_value
        end as best_expected_net_value,
        case assigned.intended_rank
            when 3 then assigned.legal_value
            when 2 then assigned.settlement_value
            else assigned.reminders_value
        end as intended_value
    from assigned
    cross join settings

),

final as (

    select
        money.loan_id,
        money.amount_at_risk,
        money.cell,
        money.decision_policy,
        threshold_strategies.strategy_code as threshold_strategy_code,
        champion_strategies.strategy_code as champion_strategy_code,
        challenger_strategies.strategy_code as challenger_strategy_code,
        explore_strategies.strategy_code as explore_strategy_code,
        intended_strategies.strategy_code as intended_strategy_code,
        assigned_strategies.strategy_code,
        money.strategy_rank <> money.intended_rank as capacity_limited,
        money.p_full_reminders,
        money.p_full_settlement,
        money.p_full_legal,
        money.expected_net_value,
        money.expected_net_value + money.expected_cost as expected_recovery,
        money.expected_cost,
        best_strategies.strategy_code as best_strategy_code,
        money.best_expected_net_value,
        money.intended_value - money.expected_net_value as value_given_up_to_capacity
    from money
    left join strategy_catalog as threshold_strategies
        on money.threshold_strategy_rank = threshold_strategies.strategy_rank
    left join strategy_catalog as champion_strategies
        on money.champion_rank = champion_strategies.strategy_rank
    left join strategy_catalog as challenger_strategies
        on money.challenger_rank = challenger_strategies.strategy_rank
    left join strategy_catalog as explore_strategies
        on money.cell = 'explore' and money.explore_rank = explore_strategies.strategy_rank
    left join strategy_catalog as intended_strategies
        on money.intended_rank = intended_strategies.strategy_rank
    left join strategy_catalog as assigned_strategies
        on money.strategy_rank = assigned_strategies.strategy_rank
    left join strategy_catalog as best_strategies
        on money.value_rank = best_strategies.strategy_rank

)

select * from final
