-- How often each reason code explains a worked loan, per segment: what
-- drives risk in each group of borrowers.
with

strategies as (

    select * from {{ catalog_free_ref('recovery_strategies') }}
    where is_worked

),

reasons as (

    {%- for rank in [1, 2, 3] %}
    select
        segment_id,
        segment_name,
        reason_code_{{ rank }} as reason_code,
        reason_{{ rank }} as reason,
        {{ rank }} as reason_rank
    from strategies
    where reason_code_{{ rank }} is not null
    {{ "union all" if not loop.last }}
    {%- endfor %}

),

final as (

    select
        segment_id,
        segment_name,
        reason_code,
        reason,
        count(*) as loans,
        count(*) filter (where reason_rank = 1) as loans_as_first_reason
    from reasons
    group by segment_id, segment_name, reason_code, reason

)

select * from final
order by segment_id asc, loans desc, reason_code asc
