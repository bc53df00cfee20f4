-- The write-up's question: do loans that were not recovered miss more
-- payments? Distribution of missed payments per recovery status.
with

loans as (

    select * from {{ catalog_free_ref('stg_loans') }}

),

final as (

    select
        recovery_status,
        count(*) as loans,
        avg(num_missed_payments) as mean_missed_payments,
        quantile_cont(num_missed_payments, 0.5) as median_missed_payments,
        quantile_cont(num_missed_payments, 0.9) as p90_missed_payments,
        avg(days_past_due) as mean_days_past_due
    from loans
    group by recovery_status

)

select * from final
order by recovery_status
