-- Every valid loan is segmented, scored by both models and given a strategy
-- (the write-up scored only its 20 % test split).
select
    loans.loan_id,
    segments.loan_id is null as missing_segment,
    segment_scores.loan_id is null as missing_segment_score,
    outcome_scores.loan_id is null as missing_outcome_score,
    strategies.loan_id is null as missing_strategy
from {{ ref('stg_loans') }} as loans
left join {{ ref('int_loan_segments') }} as segments on loans.loan_id = segments.loan_id
left join {{ ref('int_loan_segment_scores') }} as segment_scores on loans.loan_id = segment_scores.loan_id
left join {{ ref('int_loan_outcome_scores') }} as outcome_scores on loans.loan_id = outcome_scores.loan_id
left join {{ ref('recovery_strategies') }} as strategies on loans.loan_id = strategies.loan_id
where
    segments.loan_id is null
    or segment_scores.loan_id is null
    or outcome_scores.loan_id is null
    or strategies.loan_id is null
