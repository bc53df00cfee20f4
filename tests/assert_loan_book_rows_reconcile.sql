-- Nothing in the loan book is dropped silently: every data line of the file,
-- counted by a reader of its own (macro loan_book_data_lines), belongs to a
-- row that reached stg_loans or quarantined_loans.
with

file_lines as (

    select data_lines from {{ loan_book_data_lines() }}

),

checked as (

    select * from {{ ref('stg_loan_book__checked') }}

),

published_rows as (

    select source_row_number from {{ ref('stg_loans') }}
    union all
    select source_row_number from {{ ref('quarantined_loans') }}

),

published as (

    select
        count(*) as published_rows,
        coalesce(sum(checked.source_line_count), 0) as published_lines
    from published_rows
    inner join checked on published_rows.source_row_number = checked.source_row_number

)

select
    file_lines.data_lines,
    published.published_rows,
    published.published_lines
from file_lines
cross join published
where file_lines.data_lines is distinct from published.published_lines
