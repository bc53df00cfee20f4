with

scored_loans as (

    select
        *,
        recovery_status <> 'Fully Recovered' as is_not_fully_recovered
    from {{ ref('int_loans_scored') }}

),

-- Out-of-bag scores only: the honest estimate of how well the model
-- reproduces its label on loans it did not see.
training_rows as (

    select * from scored_loans
    where is_training_row

),

summary as (

    select
        any_value(model_version) as model_version,
        count(*) as scored_loans,
        count(*) filter (where is_training_row) as training_rows,
        avg(is_high_risk::double) filter (where is_training_row) as label_base_rate,
        avg(((risk_score >= 0.5) = is_high_risk)::double) filter (where is_training_row)
            as oof_accuracy_label,
        avg(power(risk_score - is_high_risk::double, 2)) filter (where is_training_row)
            as oof_brier_label,
        avg(is_not_fully_recovered::double) as outcome_base_rate
    from scored_loans

),

oof_auc_label as ({{ roc_auc('training_rows', 'risk_score', 'is_high_risk') }}),

outcome_auc as ({{ roc_auc('scored_loans', 'risk_score', 'is_not_fully_recovered') }}),

final as (

    select
        summary.model_version,
        -- plain TIMESTAMP in UTC: DuckDB 1.x Python clients need pytz for TIMESTAMPTZ
        timezone('UTC', current_timestamp) as built_at,
        summary.scored_loans,
        summary.training_rows,
        summary.label_base_rate,
        oof_auc_label.roc_auc as oof_roc_auc_label,
        summary.oof_accuracy_label,
        summary.oof_brier_label,
        summary.outcome_base_rate,
        outcome_auc.roc_auc as roc_auc_outcome
    from summary
    cross join oof_auc_label
    cross join outcome_auc

)

select * from final
