-- One row per scored loan: both scores, the segment, the outcome where known,
-- and which score drives the strategy (docs block score_in_use). The models'
-- versions and status are per-build constants, not copied onto every loan
-- beyond the version of the score in use (risk_model_metrics reads them
-- from the score models). Every mart
-- that needs scores starts here, so the join is computed once, as a table.
with

loans as (

    select * from {{ ref('stg_loans') }}

),

segments as (

    select * from {{ ref('int_loan_segments') }}

),

segment_scores as (

    select * from {{ ref('int_loan_segment_scores') }}

),

outcome_scores as (

    select * from {{ ref('int_loan_outcome_scores') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

joined as (

    select
        loans.loan_id,
        loans.borrower_id,
        segments.segment_id,
        segments.segment_name,
        segments.is_high_risk,
        segment_scores.segment_risk_score,
        segment_scores.is_training_row as is_segment_training_row,
        outcome_scores.loss_probability,
        outcome_scores.is_training_row as is_outcome_training_row,
        loans.gender,
        loans.loan_type,
        loans.loan_amount,
        loans.outstanding_loan_amount,
        loans.monthly_emi,
        loans.num_missed_payments,
        loans.days_past_due,
        loans.is_resolved,
        loans.recovery_status,
        case when loans.is_resolved then loans.recovery_status <> 'Fully Recovered' end
            as is_not_fully_recovered,
        loans.collection_method,
        -- The versions are per-build constants: only the one of the score in
        -- use is kept (risk_model_metrics reads both from the score models).
        outcome_scores.outcome_model_version,
        segment_scores.segment_model_version
    from loans
    inner join segments on loans.loan_id = segments.loan_id
    inner join segment_scores on loans.loan_id = segment_scores.loan_id
    inner join outcome_scores on loans.loan_id = outcome_scores.loan_id

),

sourced as (

    select
        joined.*,
        case
            when settings.strategy_score = 'outcome' and joined.loss_probability is not null
                then 'outcome'
            else 'segment'
        end as score_source
    from joined
    cross join settings

),

final as (

    select
        * exclude (outcome_model_version, segment_model_version),
        case when score_source = 'outcome' then loss_probability else segment_risk_score end
            as risk_score,
        -- The loans a collector works this cycle: the open ones, or every loan
        -- when none is open (docs block capacity).
        not is_resolved or not (select bool_or(not open_loans.is_resolved) from loans as open_loans) as is_worked,
        case when score_source = 'outcome' then outcome_model_version else segment_model_version end
            as model_version
    from sourced

)

select * from final
