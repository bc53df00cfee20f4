-- The write-up's question: how does payment history relate to the recovery
-- outcome? Loans per payment history and recovery status, with row shares.
with

loans as (

    select * from {{ catalog_free_ref('stg_loans') }}

),

counted as (

    select
        payment_history,
        recovery_status,
        count(*) as loans
    from loans
    group by payment_history, recovery_status

),

final as (

    select
        payment_history,
        recovery_status,
        loans,
        loans / sum(loans) over (partition by payment_history) as share_of_payment_history
    from counted

)

select * from final
order by payment_history, recovery_status
