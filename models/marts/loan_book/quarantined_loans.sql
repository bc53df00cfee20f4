-- Every loan book row that failed validation, for the data steward who fixes
-- the file: its original values under the file's own column names, where it
-- sits in the file, and every rule it fails (docs block validation_rules).
with

checked as (

    select * from {{ ref('stg_loan_book__checked') }}

),

rejected as (

    select * from checked
    where reject_reason is not null

),

final as (

    select
        {%- for column in reference('loan_book_columns') %}
        raw_{{ column | lower }} as {{ column }},
        {%- endfor %}
        source_row_number,
        {%- if (loan_book_input() or {}).get('format') == 'csv' %}
        source_row_number + 1 as source_line_number,
        {%- else %}
        null::bigint as source_line_number,
        {%- endif %}
        raw_line,
        reject_reason
    from rejected

)

select * from final
