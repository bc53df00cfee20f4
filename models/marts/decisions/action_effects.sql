-- What each strategy does to the chance of full recovery against reminders,
-- measured on randomised decisions only (docs block action_effects): per
-- strategy, the explored outcomes used, the difference in full-recovery
-- rates with a 95 % interval, whether the policy uses a learned effect or
-- its prior, and the average effect the policy used on this cycle's loans.
with

sources as (

    select * from {{ ref('int_action_effect_sources') }}

),

randomised as (

    select * from {{ ref('int_randomised_outcomes') }}

),

probabilities as (

    select * from {{ ref('int_loan_action_probabilities') }}

),

worked_loans as (

    select * from {{ ref('int_loans_scored') }}
    where is_worked

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

-- The strata a strategy is compared within: the loans that could take it.
-- Legal only from legal_min_days_past_due (as decided); the others, all.
strata as (

    select
        sources.strategy_code,
        sources.strategy_rank,
        eligibility.is_legal_eligible
    from sources
    cross join (values (true), (false)) as eligibility (is_legal_eligible)
    where sources.strategy_rank < 3 or eligibility.is_legal_eligible

),

explored as (

    select
        randomised.*,
        randomised.decision_days_past_due >= settings.legal_min_days_past_due as is_legal_eligible
    from randomised
    cross join settings

),

stratum_rates as (

    select
        strata.strategy_code,
        strata.is_legal_eligible,
        count(explored_action.loan_id) as action_outcomes,
        avg(explored_action.is_fully_recovered::double) as action_rate
    from strata
    left join explored as explored_action
        on
            strata.strategy_code = explored_action.assigned_strategy_code
            and strata.is_legal_eligible = explored_action.is_legal_eligible
    group by strata.strategy_code, strata.is_legal_eligible

),

baseline_rates as (

    select
        explored.is_legal_eligible,
        count(*) as baseline_outcomes,
        avg(explored.is_fully_recovered::double) as baseline_rate
    from explored
    inner join sources
        on explored.assigned_strategy_code = sources.strategy_code and sources.strategy_rank = 1
    group by explored.is_legal_eligible

),

stratum_weights as (

    select
        worked_loans.days_past_due >= settings.legal_min_days_past_due as is_legal_eligible,
        count(*) as worked_loans
    from worked_loans
    cross join settings
    group by worked_loans.days_past_due >= settings.legal_min_days_past_due

),

-- Post-stratified difference of rates: each stratum's difference weighted
-- by this cycle's worked loans in it; its variance from the binomial
-- variances of the two rates in each stratum.
compared as (

    select
        stratum_rates.strategy_code,
        sum(stratum_rates.action_outcomes) as randomised_outcomes,
        sum(baseline_rates.baseline_outcomes) as baseline_outcomes,
        sum(stratum_weights.worked_loans * (stratum_rates.action_rate - baseline_rates.baseline_rate))
        / sum(stratum_weights.worked_loans) as measured_effect,
        sqrt(
            sum(
                power(stratum_weights.worked_loans, 2) * (
                    stratum_rates.action_rate * (1 - stratum_rates.action_rate) / stratum_rates.action_outcomes
                    + baseline_rates.baseline_rate * (1 - baseline_rates.baseline_rate) / baseline_rates.baseline_outcomes
                )
            )
        ) / sum(stratum_weights.worked_loans) as measured_effect_se
    from stratum_rates
    left join baseline_rates on stratum_rates.is_legal_eligible = baseline_rates.is_legal_eligible
    left join stratum_weights on stratum_rates.is_legal_eligible = stratum_weights.is_legal_eligible
    group by stratum_rates.strategy_code

),

-- The average effect the policy used on this cycle's worked loans (the
-- loans that could take the strategy), from int_loan_action_probabilities.
used as (

    select
        sources.strategy_code,
        avg(
            case sources.strategy_rank
                when 3 then probabilities.p_full_legal - probabilities.p_full_reminders
                when 2 then probabilities.p_full_settlement - probabilities.p_full_reminders
                else 0
            end
        ) as effect_in_use
    from sources
    cross join probabilities
    inner join worked_loans on probabilities.loan_id = worked_loans.loan_id
    cross join settings
    where sources.strategy_rank < 3 or worked_loans.days_past_due >= settings.legal_min_days_past_due
    group by sources.strategy_code

),

final as (

    select
        sources.strategy_code,
        sources.strategy_rank,
        sources.source,
        (sources.randomised_outcomes)::bigint as randomised_outcomes,
        (case when sources.strategy_rank > 1 then compared.baseline_outcomes end)::bigint
            as baseline_outcomes,
        (case when sources.source = 'learned' then compared.measured_effect end)::double
            as measured_effect,
        (case when sources.source = 'learned' then compared.measured_effect - 1.959964 * compared.measured_effect_se end)::double
            as measured_effect_ci_low,
        (case when sources.source = 'learned' then compared.measured_effect + 1.959964 * compared.measured_effect_se end)::double
            as measured_effect_ci_high,
        (sources.prior_effect)::double as prior_effect,
        (used.effect_in_use)::double as effect_in_use,
        (settings.min_randomised_outcomes)::bigint as min_randomised_outcomes
    from sources
    cross join settings
    left join compared on sources.strategy_code = compared.strategy_code
    left join used on sources.strategy_code = used.strategy_code

)

select * from final
