-- Each worked loan's top three risk-raising reasons: its contributions
-- (int_loan_contributions) summed per reason code of the catalog, the
-- positive ones ranked, the largest first. A loan with fewer than three
-- risk-raising codes has fewer reasons; one with none gets the catalog's
-- nothing_raises_risk code as its only reason (docs block reason_codes).
with

contributions as (

    select * from {{ ref('int_loan_contributions') }}

),

catalog as (

    select * from {{ ref('reason_code_catalog') }}

),

catalog_features as (

    select
        reason_code,
        reason,
        unnest(string_split(features, '|')) as feature
    from catalog
    where reason_kind = 'raises_risk'

),

nothing_raises_risk as (

    select
        reason_code,
        reason
    from catalog
    where reason_kind = 'nothing_raises_risk'

),

long as (

    unpivot contributions
    on columns(* exclude (loan_id, bias))
    into name contribution_column value contribution

),

coded as (

    select
        long.loan_id,
        catalog_features.reason_code,
        catalog_features.reason,
        sum(long.contribution) as contribution
    from long
    -- A category's levels (loan_type__home) belong to the category's code.
    inner join catalog_features on split_part(long.contribution_column, '__', 1) = catalog_features.feature
    group by long.loan_id, catalog_features.reason_code, catalog_features.reason

),

ranked as (

    select
        *,
        row_number() over (partition by loan_id order by contribution desc, reason_code asc) as reason_rank
    from coded
    where contribution > 0

),

top_three as (

    select
        contributions.loan_id,
        {%- for rank in [1, 2, 3] %}
        max(ranked.reason_code) filter (where ranked.reason_rank = {{ rank }}) as reason_code_{{ rank }},
        max(ranked.reason) filter (where ranked.reason_rank = {{ rank }}) as reason_{{ rank }},
        {%- endfor %}
        count(ranked.reason_code) filter (where ranked.reason_rank <= 3) as risk_raising_reasons
    from contributions
    left join ranked on contributions.loan_id = ranked.loan_id
    group by contributions.loan_id

),

final as (

    select
        top_three.loan_id,
        coalesce(top_three.reason_code_1, nothing_raises_risk.reason_code) as reason_code_1,
        coalesce(top_three.reason_1, nothing_raises_risk.reason) as reason_1,
        top_three.reason_code_2,
        top_three.reason_2,
        top_three.reason_code_3,
        top_three.reason_3,
        top_three.risk_raising_reasons
    from top_three
    -- The catalog holds one nothing_raises_risk code (seed test); the
    -- not_null test on reason_code_1 fails if it is missing.
    left join nothing_raises_risk on top_three.risk_raising_reasons = 0

)

select * from final
