with

segments as (

    select * from {{ ref('int_loan_segments') }}

),

features as (

    select * from {{ ref('int_loan_features') }}

),

profiles as (

    select
        segments.segment_id,
        segments.segment_name,
        segments.is_high_risk,
        any_value(segments.risk_basis) as risk_basis,
        count(*) as loan_count,
        count(*) filter (where features.is_resolved) as resolved_loans,
        avg(features.is_not_fully_recovered::double) filter (where features.is_resolved) as observed_loss_rate,
        {%- for feature in reference('cluster_features') %}
        avg(features.{{ feature }}) as mean_{{ feature }},
        {%- endfor %}
        avg(features.emi_to_income_ratio) as mean_emi_to_income_ratio,
        avg(features.outstanding_share_of_loan) as mean_outstanding_share_of_loan
    from segments
    inner join features on segments.loan_id = features.loan_id
    group by segments.segment_id, segments.segment_name, segments.is_high_risk

),

final as (

    select
        *,
        loan_count / sum(loan_count) over () as share_of_loans
    from profiles

)

select * from final
