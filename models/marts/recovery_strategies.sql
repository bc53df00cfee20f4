-- The strategy each loan gets (int_loan_strategies: thresholds, then
-- capacity), in the catalog's wording, with its reasons and the loan facts.
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

strategies as (

    select * from {{ ref('int_loan_strategies') }}

),

reasons as (

    select * from {{ ref('int_loan_reasons') }}

),

-- One row: the registry id of the models that scored the book (NULL when
-- the outcome model fell back and nothing is registered).
model_version as (

    select * from {{ ref('int_model_version') }}

),

strategy_catalog as (

    select * from {{ ref('recovery_strategy_catalog') }}

),

final as (

    select
        scored_loans.loan_id,
        scored_loans.borrower_id,
        cast(scored_loans.segment_id as integer) as segment_id,
        scored_loans.segment_name,
        scored_loans.is_resolved,
        scored_loans.is_worked,
        cast(scored_loans.loss_probability as double) as loss_probability,
        cast(scored_loans.segment_risk_score as double) as segment_risk_score,
        cast(scored_loans.risk_score as double) as risk_score,
        scored_loans.score_source,
        cast(strategies.amount_at_risk as double) as amount_at_risk,
        strategies.threshold_strategy_code,
        strategies.cell,
        strategies.decision_policy,
        strategies.intended_strategy_code,
        strategies.strategy_code,
        strategies.capacity_limited,
        strategies.p_full_reminders,
        strategies.p_full_settlement,
        strategies.p_full_legal,
        strategies.expected_net_value,
        strategies.expected_recovery,
        strategies.expected_cost,
        strategies.best_strategy_code,
        strategies.best_expected_net_value,
        strategies.value_given_up_to_capacity,
        strategy_catalog.recovery_strategy,
        reasons.reason_code_1,
        reasons.reason_1,
        reasons.reason_code_2,
        reasons.reason_2,
        reasons.reason_code_3,
        reasons.reason_3,
        scored_loans.loan_type,
        scored_loans.loan_amount,
        scored_loans.outstanding_loan_amount,
        scored_loans.monthly_emi,
        scored_loans.num_missed_payments,
        scored_loans.days_past_due,
        scored_loans.recovery_status,
        scored_loans.collection_method,
        model_version.model_version
    from scored_loans
    cross join model_version
    inner join strategies on scored_loans.loan_id = strategies.loan_id
    left join strategy_catalog on strategies.strategy_code = strategy_catalog.strategy_code
    left join reasons on scored_loans.loan_id = reasons.loan_id

)

select * from final
