-- The one-row and one-row-per-segment marts describe the whole book: the
-- segments' sizes add up to the valid loans, there are n_segments of them,
-- and the model card counts every valid loan. An empty mart fails here
-- (a test on its own rows would pass on no rows).
with

loans as (

    select count(*) as valid_loans from {{ ref('stg_loans') }}

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
        max(scored_loans) as scored_loans
    from {{ ref('risk_model_metrics') }}

)

select
    loans.valid_loans,
    segments.segment_count,
    segments.segmented_loans,
    model_card.model_card_rows,
    model_card.scored_loans
from loans
cross join segments
cross join model_card
where
    segments.segmented_loans is distinct from loans.valid_loans
    or segments.segment_count <> {{ var('n_segments') }}
    or model_card.model_card_rows = 0
    or model_card.scored_loans is distinct from loans.valid_loans
