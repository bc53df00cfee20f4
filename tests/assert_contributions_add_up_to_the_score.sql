-- Every worked loan's bias plus per-feature contributions reproduce the score
-- the strategy used, within 1e-6 (docs block reason_codes), and every worked
-- loan has them.
with

contributions as (

    select * from {{ ref('int_loan_contributions') }}

),

scored as (

    select * from {{ ref('recovery_strategies') }}
    where is_worked

),

long as (

    unpivot contributions
    on columns(* exclude (loan_id, bias))
    into name contribution_column value contribution

),

totals as (

    select
        loan_id,
        sum(contribution) as contribution_sum
    from long
    group by loan_id

),

final as (

    select
        scored.loan_id,
        scored.risk_score,
        contributions.bias + totals.contribution_sum as explained_score
    from scored
    left join contributions on scored.loan_id = contributions.loan_id
    left join totals on scored.loan_id = totals.loan_id

)

select * from final
where explained_score is null or abs(explained_score - risk_score) > 1e-6
