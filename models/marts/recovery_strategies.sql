with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

settings as (

    select * from {{ ref('run_settings') }}

),

-- The business rule, in one place (macro strategy_code, docs block strategy_thresholds).
assigned as (

    select
        scored_loans.*,
        {{ strategy_code('scored_loans.risk_score', 'settings.legal_threshold', 'settings.settlement_threshold') }}
            as strategy_code
    from scored_loans
    cross join settings

),

final as (

    select
        assigned.loan_id,
        assigned.borrower_id,
        cast(assigned.segment_id as integer) as segment_id,
        assigned.segment_name,
        assigned.is_resolved,
        cast(assigned.loss_probability as double) as loss_probability,
        cast(assigned.segment_risk_score as double) as segment_risk_score,
        cast(assigned.risk_score as double) as risk_score,
        assigned.score_source,
        assigned.strategy_code,
        strategy_catalog.recovery_strategy,
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

)

select * from final
