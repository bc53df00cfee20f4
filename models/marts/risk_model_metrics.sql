-- The model card: one row per score, each judged on the build's resolved
-- loans with out-of-sample scores only (docs block model_metrics).
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

baseline_scores as (

    select * from {{ ref('int_loan_baseline_scores') }}

),

-- One row: the registry id of the models that scored the book (NULL when
-- the outcome model fell back and nothing is registered).
model_version as (

    select * from {{ ref('int_model_version') }}

),

resolved as (

    select * from scored_loans
    where is_resolved

),

-- The base rate is one number, the book's loss rate, whichever loan.
book_rate as (

    select any_value(base_rate_probability) as loss_rate from baseline_scores

),

evaluated as (

    select
        'outcome' as score_name,
        loss_probability as score,
        loss_probability as probability,
        is_not_fully_recovered
    from resolved
    where loss_probability is not null
    union all
    select
        'segment' as score_name,
        segment_risk_score as score,
        segment_risk_score as probability,
        is_not_fully_recovered
    from resolved
    union all
    select
        'days_past_due' as score_name,
        resolved.days_past_due as score,
        baseline_scores.days_past_due_probability as probability,
        resolved.is_not_fully_recovered
    from resolved
    left join baseline_scores on resolved.loan_id = baseline_scores.loan_id
    union all
    select
        'base_rate' as score_name,
        book_rate.loss_rate as score,
        book_rate.loss_rate as probability,
        resolved.is_not_fully_recovered
    from resolved
    cross join book_rate

),

outcome_metrics as ({{ score_evaluation('evaluated', 'score_name', 'score', 'is_not_fully_recovered', 'probability') }}),

-- The write-up's own yardstick: how well the segment score reproduces its
-- label (high-risk segment), out of bag, on the loans its forest trained on.
label_evaluated as (

    select
        'segment' as score_name,
        segment_risk_score,
        is_high_risk
    from scored_loans
    where is_segment_training_row

),

label_metrics as ({{ score_evaluation('label_evaluated', 'score_name', 'segment_risk_score', 'is_high_risk', 'segment_risk_score') }}),

-- Each model's status as its Python model reported it (the words live in
-- loan_recovery.modelling.status); the outcome model's fallback reason
-- travels in a column of its own.
models as (

    select
        'outcome' as score_name,
        count(*) filter (where is_outcome_training_row) as training_rows,
        any_value(outcome_model_status) as model_status,
        any_value(outcome_fallback_reason) as fallback_reason
    from scored_loans
    union all
    select
        'segment' as score_name,
        count(*) filter (where is_segment_training_row) as training_rows,
        any_value(segment_model_status) as model_status,
        cast(null as varchar) as fallback_reason
    from scored_loans

),

in_use as (

    select any_value(score_source) as score_source from scored_loans

),

descriptions as (

    select descriptions.* from (
        values
        ('outcome', 'Outcome model: calibrated probability of not being fully recovered'),
        ('segment', 'The write-up''s score: resemblance to the high-risk segments'),
        ('days_past_due', 'Days-past-due rule: ranks by days past due'),
        ('base_rate', 'Base rate: every loan gets the book''s loss rate')
    ) as descriptions (score_name, score_description)

),

final as (

    select
        descriptions.score_name,
        descriptions.score_description,
        descriptions.score_name = in_use.score_source as is_score_in_use,
        -- BIGINT: the rank sums add BIGINTs up as HUGEINT, which BI drivers read poorly
        cast(coalesce(outcome_metrics.evaluated_loans, 0) as bigint) as evaluated_loans,
        outcome_metrics.base_rate,
        outcome_metrics.roc_auc,
        outcome_metrics.roc_auc_ci_low,
        outcome_metrics.roc_auc_ci_high,
        outcome_metrics.brier_score,
        outcome_metrics.expected_calibration_error,
        label_metrics.roc_auc as label_roc_auc,
        models.training_rows,
        -- The registry id on the rows of the models it holds; the baselines
        -- are no model of the artifact.
        case when models.score_name is not null then model_version.model_version end as model_version,
        models.model_status,
        models.fallback_reason,
        -- plain TIMESTAMP in UTC: DuckDB 1.x Python clients need pytz for TIMESTAMPTZ
        timezone('UTC', current_timestamp) as built_at
    from descriptions
    cross join in_use
    cross join model_version
    left join outcome_metrics on descriptions.score_name = outcome_metrics.score_group
    left join label_metrics on descriptions.score_name = label_metrics.score_group
    left join models on descriptions.score_name = models.score_name

)

select * from final
