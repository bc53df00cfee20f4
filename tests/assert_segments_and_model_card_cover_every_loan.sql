-- The one-row-per-segment and one-row-per-score marts describe the whole
-- book: the segments' sizes add up to the valid loans of stg_loans, there
-- are n_segments of them, and the model card has its four rows, the
-- baselines judged on every resolved loan. An empty mart fails here (a test
-- on its own rows would pass on no rows).
with

loans as (

    select
        count(*) as valid_loans,
        count(*) filter (where is_resolved) as resolved_loans
    from {{ ref('stg_loans') }}

),

segments as (

    select
        count(*) as segment_count,
        sum(loan_count) as segmented_loans
    from {{ ref('borrower_segments') }}

),

model_card as (

    select
        count(*) as model_card_rows,
        max(evaluated_loans) filter (where score_name = 'base_rate') as baseline_loans,
        count(*) filter (where is_score_in_use) as scores_in_use
    from {{ ref('risk_model_metrics') }}

)

select
    loans.valid_loans,
    loans.resolved_loans,
    segments.segment_count,
    segments.segmented_loans,
    model_card.model_card_rows,
    model_card.baseline_loans,
    model_card.scores_in_use
from loans
cross join segments
cross join model_card
where
    segments.segmented_loans is distinct from loans.valid_loans
    or segments.segment_count <> {{ var('n_segments') }}
    or model_card.model_card_rows <> 4
    or model_card.baseline_loans is distinct from loans.resolved_loans
    or model_card.scores_in_use <> 1
