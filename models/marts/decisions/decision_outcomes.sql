-- Each logged decision whose loan has since resolved, with its outcome
-- (docs block decision_log): int_decision_outcomes, served.
with

outcomes as (

    select * from {{ ref('int_decision_outcomes') }}

),

final as (

    select * from outcomes

)

-- the columns are the contract in _decisions.yml (sqlfluff cannot see a ref's columns)
select * from final  -- noqa: AM04
