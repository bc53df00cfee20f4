with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

reasons as (

    select * from {{ ref('int_loan_reasons') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

settings as (

    select * from {{ ref('run_settings') }}

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
        row_number() over (order by amount_at_risk desc nulls last, risk_score desc, loan_id asc) as legal_rank
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
        row_number() over (order by amount_at_risk desc nulls last, risk_score desc, loan_id asc) as settlement_rank
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
        assigned.loan_id,
        assigned.borrower_id,
        cast(assigned.segment_id as integer) as segment_id,
        assigned.segment_name,
        assigned.is_resolved,
        assigned.is_worked,
        cast(assigned.loss_probability as double) as loss_probability,
        cast(assigned.segment_risk_score as double) as segment_risk_score,
        cast(assigned.risk_score as double) as risk_score,
        assigned.score_source,
        cast(assigned.amount_at_risk as double) as amount_at_risk,
        assigned.threshold_strategy_code,
        assigned.strategy_code,
        assigned.strategy_code <> assigned.threshold_strategy_code as capacity_limited,
        strategy_catalog.recovery_strategy,
        reasons.reason_code_1,
        reasons.reason_1,
        reasons.reason_code_2,
        reasons.reason_2,
        reasons.reason_code_3,
        reasons.reason_3,
        assigned.loan_type,
        assigned.loan_amount,
        assigned.outstanding_loan_amount,
        assigned.monthly_emi,
        assigned.num_missed_payments,
        assigned.days_past_due,
        assigned.recovery_status,
        assigned.collection_method,
        assigned.model_version
    from assigned
    left join strategy_catalog on assigned.strategy_code = strategy_catalog.strategy_code
    left join reasons on assigned.loan_id = reasons.loan_id

)

select * from final
