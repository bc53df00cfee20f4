-- The evidence table (docs block policy_comparison), three kinds of row:
-- basis back-test: on resolved loans (out-of-sample scores), what each
-- policy_name would have done and how those loans really ended; basis
-- expected: this cycle's worked loans under each policy, in money; basis
-- realised: earlier cycles' decisions that have resolved, in money. Policies: the thresholds on the outcome model's
-- loss_probability, the thresholds on the write-up's segment score, and a
-- days-past-due rule that sends as many loans to legal and to settlement as
-- the policy_name in use. Strategies are ranked as in recovery_strategy_catalog
-- (3 legal, 2 settlement, 1 reminders) and named from it.
with

resolved as (

    select * from {{ ref('int_loans_scored') }}
    where is_resolved

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

strategies as (

    select * from {{ ref('int_loan_strategies') }}

),

worked_loans as (

    select * from {{ ref('int_loans_scored') }}
    where is_worked

),

decisions as (

    select * from {{ ref('decision_log') }}

),

outcomes as (

    select * from {{ ref('decision_outcomes') }}

),

cycles as (

    select * from {{ ref('decision_cycles') }}

),

threshold_policies as (

    select
        'outcome' as policy_name,
        resolved.*,
        {{ strategy_rank('resolved.loss_probability', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as strategy_rank
    from resolved
    cross join settings
    where resolved.loss_probability is not null
    union all
    select
        'segment' as policy_name,
        resolved.*,
        {{ strategy_rank('resolved.segment_risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as strategy_rank
    from resolved
    cross join settings

),

score_in_use as (

    select any_value(resolved.score_source) as score_source from resolved

),

policy_in_use as (

    select threshold_policies.* from threshold_policies
    inner join score_in_use on threshold_policies.policy_name = score_in_use.score_source

),

tier_sizes as (

    select
        count(*) filter (where strategy_rank = 3) as legal_loans,
        count(*) filter (where strategy_rank = 2) as settlement_loans
    from policy_in_use

),

days_past_due_policy as (

    select
        'days_past_due' as policy_name,
        ranked.* exclude (ranked.arrears_rank),
        case
            when ranked.arrears_rank <= tier_sizes.legal_loans then 3
            when ranked.arrears_rank <= tier_sizes.legal_loans + tier_sizes.settlement_loans then 2
            else 1
        end as strategy_rank
    from (
        select
            *,
            row_number() over (order by days_past_due desc, loan_id asc) as arrears_rank
        from resolved
    ) as ranked
    cross join tier_sizes

),

policies as (

    select * from threshold_policies
    union all by name
    select * from days_past_due_policy

),

per_strategy as (

    select
        policy_name,
        strategy_rank,
        count(*) as loans,
        count(*) / sum(count(*)) over (partition by policy_name) as share_of_loans,
        avg(is_not_fully_recovered::double) as loss_rate,
        avg((recovery_status = 'Written Off')::double) as written_off_rate,
        sum(outstanding_loan_amount) as outstanding_amount
    from policies
    group by policy_name, strategy_rank

),

back_test as (

    select
        'back-test' as basis,
        per_strategy.policy_name,
        per_strategy.strategy_rank,
        per_strategy.loans,
        per_strategy.share_of_loans,
        per_strategy.loss_rate,
        per_strategy.written_off_rate,
        per_strategy.outstanding_amount,
        null::double as expected_recovery,
        null::double as expected_cost,
        null::double as expected_net_value,
        null::double as realised_recovery,
        null::double as realised_cost,
        null::double as realised_net_value
    from per_strategy

),

-- This cycle's worked loans under each policy, before capacity: the
-- thresholds (champion's, within eligibility), expected value, reminders
-- for every loan; and what was assigned (cells and capacity). Money from
-- each loan's probabilities and this run's economics (docs block
-- action_economics).
policy_choices as (

    select
        strategies.*,
        worked_loans.outstanding_loan_amount,
        worked_loans.days_past_due >= settings.legal_min_days_past_due as is_legal_eligible,
        settings.partial_recovery_share,
        settings.settlement_haircut,
        settings.reminders_cost,
        settings.settlement_cost,
        settings.legal_cost
    from strategies
    inner join worked_loans on strategies.loan_id = worked_loans.loan_id
    cross join settings

),

reminders_strategy as (

    select strategy_code from strategy_catalog
    where strategy_rank = 1

),

chosen as (

    select
        'thresholds' as policy_name,
        policy_choices.*,
        policy_choices.champion_strategy_code as chosen_code
    from policy_choices
    where policy_choices.champion_strategy_code is not null
    union all
    select
        'expected_value' as policy_name,
        policy_choices.*,
        policy_choices.best_strategy_code as chosen_code
    from policy_choices
    where policy_choices.best_strategy_code is not null
    union all
    select
        'reminders_only' as policy_name,
        policy_choices.*,
        reminders_strategy.strategy_code as chosen_code
    from policy_choices
    cross join reminders_strategy
    union all
    select
        'assigned' as policy_name,
        policy_choices.*,
        policy_choices.strategy_code as chosen_code
    from policy_choices

),

chosen_money as (

    select
        chosen.policy_name,
        chosen.chosen_code,
        chosen.outstanding_loan_amount,
        case chosen.chosen_code
            when 'legal' then chosen.p_full_legal
            when 'settlement' then chosen.p_full_settlement
            else chosen.p_full_reminders
        end as p_full,
        case chosen.chosen_code when 'settlement' then chosen.settlement_haircut else 0 end as haircut,
        chosen.partial_recovery_share,
        case chosen.chosen_code
            when 'legal' then chosen.legal_cost
            when 'settlement' then chosen.settlement_cost
            else chosen.reminders_cost
        end as action_cost
    from chosen

),

expected as (

    select
        'expected' as basis,
        chosen_money.policy_name,
        strategy_catalog.strategy_rank,
        count(*) as loans,
        count(*) / sum(count(*)) over (partition by chosen_money.policy_name) as share_of_loans,
        avg(1 - chosen_money.p_full) as loss_rate,
        null::double as written_off_rate,
        sum(chosen_money.outstanding_loan_amount) as outstanding_amount,
        sum({{ expected_net_value('chosen_money.outstanding_loan_amount', 'chosen_money.p_full', 'chosen_money.haircut', 'chosen_money.partial_recovery_share', '0') }})
            as expected_recovery,
        sum(chosen_money.action_cost) as expected_cost,
        sum({{ expected_net_value('chosen_money.outstanding_loan_amount', 'chosen_money.p_full', 'chosen_money.haircut', 'chosen_money.partial_recovery_share', 'chosen_money.action_cost') }})
            as expected_net_value,
        null::double as realised_recovery,
        null::double as realised_cost,
        null::double as realised_net_value
    from chosen_money
    inner join strategy_catalog on chosen_money.chosen_code = strategy_catalog.strategy_code
    group by chosen_money.policy_name, strategy_catalog.strategy_rank

),

-- Earlier cycles' decisions that have resolved, by the policy that decided
-- them: what they were expected to bring when decided and what they did,
-- priced at their own cycle's economics (a fully recovered loan returns its
-- balance, less the haircut after a settlement; any other returns the
-- partial share).
resolved_decisions as (

    select
        decisions.decision_policy as policy_name,
        decisions.assigned_strategy_code,
        decisions.outstanding_loan_amount,
        decisions.expected_net_value,
        outcomes.is_not_fully_recovered,
        outcomes.recovery_status,
        case decisions.assigned_strategy_code
            when 'settlement' then cycles.settlement_haircut else 0
        end as haircut,
        cycles.partial_recovery_share,
        case decisions.assigned_strategy_code
            when 'legal' then cycles.legal_cost
            when 'settlement' then cycles.settlement_cost
            else cycles.reminders_cost
        end as action_cost
    from decisions
    inner join outcomes
        on decisions.as_of_date = outcomes.as_of_date and decisions.loan_id = outcomes.loan_id
    inner join cycles on decisions.as_of_date = cycles.as_of_date

),

realised as (

    select
        'realised' as basis,
        resolved_decisions.policy_name,
        strategy_catalog.strategy_rank,
        count(*) as loans,
        count(*) / sum(count(*)) over (partition by resolved_decisions.policy_name) as share_of_loans,
        avg(resolved_decisions.is_not_fully_recovered::double) as loss_rate,
        avg((resolved_decisions.recovery_status = 'Written Off')::double) as written_off_rate,
        sum(resolved_decisions.outstanding_loan_amount) as outstanding_amount,
        null::double as expected_recovery,
        null::double as expected_cost,
        sum(resolved_decisions.expected_net_value) as expected_net_value,
        sum(
            resolved_decisions.outstanding_loan_amount * case
                when resolved_decisions.is_not_fully_recovered
                    then resolved_decisions.partial_recovery_share
                else 1 - resolved_decisions.haircut
            end
        ) as realised_recovery,
        sum(resolved_decisions.action_cost) as realised_cost,
        sum(
            resolved_decisions.outstanding_loan_amount * case
                when resolved_decisions.is_not_fully_recovered
                    then resolved_decisions.partial_recovery_share
                else 1 - resolved_decisions.haircut
            end
            - resolved_decisions.action_cost
        ) as realised_net_value
    from resolved_decisions
    inner join strategy_catalog
        on resolved_decisions.assigned_strategy_code = strategy_catalog.strategy_code
    group by resolved_decisions.policy_name, strategy_catalog.strategy_rank

),

all_rows as (

    select * from back_test
    union all
    select * from expected
    union all
    select * from realised

),

final as (

    select
        all_rows.basis,
        all_rows.policy_name,
        strategy_catalog.strategy_code,
        (all_rows.loans)::bigint as loans,
        (all_rows.share_of_loans)::double as share_of_loans,
        (all_rows.loss_rate)::double as loss_rate,
        (all_rows.written_off_rate)::double as written_off_rate,
        (all_rows.outstanding_amount)::double as outstanding_amount,
        (all_rows.expected_recovery)::double as expected_recovery,
        (all_rows.expected_cost)::double as expected_cost,
        (all_rows.expected_net_value)::double as expected_net_value,
        (all_rows.realised_recovery)::double as realised_recovery,
        (all_rows.realised_cost)::double as realised_cost,
        (all_rows.realised_net_value)::double as realised_net_value
    from all_rows
    left join strategy_catalog on all_rows.strategy_rank = strategy_catalog.strategy_rank

)

select * from final
