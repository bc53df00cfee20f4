-- One row per scored loan: both scores, the segment, the outcome where known,
-- and which score drives the strategy (docs block score_in_use). Every mart
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
        segment_scores.segment_model_hash,
        segment_scores.segment_model_status,
        outcome_scores.loss_probability,
        outcome_scores.is_training_row as is_outcome_training_row,
        outcome_scores.outcome_model_hash,
        outcome_scores.outcome_model_status,
        outcome_scores.outcome_fallback_reason,
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
        loans.collection_method
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
        *,
        case when score_source = 'outcome' then loss_probability else segment_risk_score end
            as risk_score,
        -- The loans a collector works this cycle: the open ones, or every loan
        -- when none is open (docs block capacity).
        not is_resolved or not (select bool_or(not open_loans.is_resolved) from loans as open_loans) as is_worked,
        -- The content hash of the model whose score is in use: the reason
        -- codes check the stored forest against it. Not the build's
        -- model_version (the registry id, int_model_version).
        case when score_source = 'outcome' then outcome_model_hash else segment_model_hash end
            as score_model_hash
    from sourced

)

select * from final
