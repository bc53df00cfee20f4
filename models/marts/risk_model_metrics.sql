-- The model card: one row per score, each judged on the build's resolved
-- loans with out-of-sample scores only (docs block model_metrics).
with

scored_loans as (

    select * from {{ ref('int_loans_scored') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

baseline_scores as (

    select * from {{ ref('int_loan_baseline_scores') }}

),

-- Per-build constants, read where the score models write them.
outcome_model as (

    select
        any_value(outcome_model_version) as model_version,
        any_value(outcome_model_status) as model_status
    from {{ ref('int_loan_outcome_scores') }}

),

segment_model as (

    select any_value(segment_model_version) as model_version
    from {{ ref('int_loan_segment_scores') }}

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

models as (

    select
        'outcome' as score_name,
        count(*) filter (where is_outcome_training_row) as training_rows,
        (select outcome_model.model_version from outcome_model) as model_version,
        (select outcome_model.model_status from outcome_model) as model_status
    from scored_loans
    union all
    select
        'segment' as score_name,
        count(*) filter (where is_segment_training_row) as training_rows,
        (select segment_model.model_version from segment_model) as model_version,
        case when (select settings.model_version from settings) = '' then 'trained' else 'frozen' end as model_status
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
        coalesce(outcome_metrics.evaluated_loans, 0) as evaluated_loans,
        outcome_metrics.base_rate,
        outcome_metrics.roc_auc,
        outcome_metrics.roc_auc_ci_low,
        outcome_metrics.roc_auc_ci_high,
        outcome_metrics.brier_score,
        outcome_metrics.expected_calibration_error,
        label_metrics.roc_auc as label_roc_auc,
        models.training_rows,
        models.model_version,
        models.model_status,
        nullif(settings.model_version, '') as model_artifact,
        -- plain TIMESTAMP in UTC: DuckDB 1.x Python clients need pytz for TIMESTAMPTZ
        timezone('UTC', current_timestamp) as built_at
    from descriptions
    cross join in_use
    cross join settings
    left join outcome_metrics on descriptions.score_name = outcome_metrics.score_group
    left join label_metrics on descriptions.score_name = label_metrics.score_group
    left join models on descriptions.score_name = models.score_name

)

select * from final
