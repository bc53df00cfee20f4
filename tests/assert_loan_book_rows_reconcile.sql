-- Rows in = clean + quarantined: nothing in the loan book is dropped silently.
with

loan_book as (

    select count(*) as rows_in from {{ loan_book_source() }}

),

clean as (

    select count(*) as rows_clean from {{ ref('stg_loans') }}

),

quarantined as (

    select count(*) as rows_quarantined from {{ ref('quarantined_loans') }}

)

select
    loan_book.rows_in,
    clean.rows_clean,
    quarantined.rows_quarantined
from loan_book
cross join clean
cross join quarantined
where loan_book.rows_in <> clean.rows_clean + quarantined.rows_quarantined
