-- The loans decided this cycle (the worked loans) with what the
-- action-effect model reads: the outcome model's inputs and its
-- loss_probability (docs block action_effects).
with

features as (

    select * from {{ ref('int_loan_features') }}

),

scored_loans as (

    select * from {{ ref('int_loans_scored') }}
    where is_worked

),

final as (

    select
        features.*,
        scored_loans.loss_probability
    from features
    inner join scored_loans on features.loan_id = scored_loans.loan_id

)

-- every feature the outcome model reads, whatever the list (sqlfluff cannot see a ref's columns)
select * from final  -- noqa: AM04
