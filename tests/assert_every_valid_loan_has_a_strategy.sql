-- Every valid loan is segmented, scored and given a strategy (the write-up
-- scored only its 20 % test split).
select
    loans.loan_id,
    segments.loan_id is null as missing_segment,
    scores.loan_id is null as missing_score,
    strategies.loan_id is null as missing_strategy
from {{ ref('stg_loans') }} as loans
left join {{ ref('int_loan_segments') }} as segments on loans.loan_id = segments.loan_id
left join {{ ref('int_loan_risk_scores') }} as scores on loans.loan_id = scores.loan_id
left join {{ ref('recovery_strategies') }} as strategies on loans.loan_id = strategies.loan_id
where segments.loan_id is null or scores.loan_id is null or strategies.loan_id is null
