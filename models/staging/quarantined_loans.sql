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
        reject_reason
    from rejected

)

select * from final
