-- The evidence table: on resolved loans (out-of-sample scores), what each
-- policy_name would have done and how those loans really ended (docs block
-- policy_comparison). Policies: the thresholds on the outcome model's
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

final as (

    select
        per_strategy.policy_name,
        strategy_catalog.strategy_code,
        per_strategy.loans,
        per_strategy.share_of_loans,
        per_strategy.loss_rate,
        per_strategy.written_off_rate,
        per_strategy.outstanding_amount
    from per_strategy
    left join strategy_catalog on per_strategy.strategy_rank = strategy_catalog.strategy_rank

)

select * from final
