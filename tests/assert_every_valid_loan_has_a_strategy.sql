-- Every valid loan in scope is segmented, scored by both models and given a
-- strategy (the write-up scored only its 20 % test split). In scope: every
-- valid loan, or the open ones in the decision run (var decide_only), which
-- scores no resolved loan: one scored there fails here too.
with

loans as (

    select
        loan_id,
        {{ 'not is_resolved' if var('decide_only') else 'true' }} as is_in_scope
    from {{ ref('stg_loans') }}

),

found as (

    select
        loans.loan_id,
        loans.is_in_scope,
        segments.loan_id is not null as has_segment,
        segment_scores.loan_id is not null as has_segment_score,
        outcome_scores.loan_id is not null as has_outcome_score,
        strategies.loan_id is not null as has_strategy
    from loans
    left join {{ ref('int_loan_segments') }} as segments on loans.loan_id = segments.loan_id
    left join {{ ref('int_loan_segment_scores') }} as segment_scores on loans.loan_id = segment_scores.loan_id
    left join {{ ref('int_loan_outcome_scores') }} as outcome_scores on loans.loan_id = outcome_scores.loan_id
    left join {{ ref('recovery_strategies') }} as strategies on loans.loan_id = strategies.loan_id

)

select *
from found
where
    is_in_scope and not (has_segment and has_segment_score and has_outcome_score and has_strategy)
    or not is_in_scope and (has_segment or has_segment_score or has_outcome_score or has_strategy)
