-- This cycle's legal queue, in working order, with the reasons a manager
-- signing the notices asks for and the money at stake.
with

queue as (

    select * from {{ catalog_free_ref('collection_work_queue') }}

),

final as (

    select
        queue_rank,
        loan_id,
        borrower_id,
        segment_name,
        amount_at_risk,
        loss_probability,
        outstanding_loan_amount,
        days_past_due,
        reason_1,
        reason_2,
        reason_3
    from queue
    where strategy_code = 'legal'

)

select * from final
order by queue_rank
