{#-
    Reading a CSV loan book: its physical lines (any mix of LF, CR LF and CR
    line ends), then its rows (the project's own CSV grammar, where one
    stray quote costs one row), then each row's fields as text. Called by
    loan_book_source; the rules are in docs block csv_reading
    (models/docs.md), and python_tests/test_loan_book_parsing.py holds a
    case for each.

    Why not DuckDB's CSV reader for the rows: with ignore_errors and
    store_rejects it swallows the lines after a stray quote into one
    rejected record up to the next quote, skips blank lines without a word,
    and numbers the rejects by its own count of line ends, so neither "one
    stray quote costs one row" nor the line numbers would hold.
-#}


{#-
    The pieces of the file between its line-end bytes, in file order: every
    CR and every LF byte ends one (a CR LF pair leaves an empty piece between
    them, which loan_book_lines drops), an empty piece is a NULL `line`, a
    byte-order mark is dropped. The delimiter is LF itself, so no piece is
    ever split into columns, and there is no quote, escape or comment
    character, so the reader never interprets a line or skips one.

    Why not DuckDB's own line ends: in strict mode DuckDB 2.0.1 stops with
    "state machine reached an invalid state" on a file that mixes them (a
    line holding only CR, a CR CR LF ending, a last line ending in a bare
    CR), and its auto-detected modes count a CR LF as two line ends in one
    file and drop the byte after a lone CR in another. Only this mode
    (new_line LF, not strict) is exact for every mix; the tests compare it
    byte for byte with a splitter of their own.
-#}
{% macro loan_book_line_pieces(file) %}
    read_csv(
        {{ sql_string(file) }},
        columns = {'line': 'varchar'},
        header = false,
        auto_detect = false,
        delim = e'\n',
        new_line = '\n',
        quote = '',
        escape = '',
        comment = '',
        strict_mode = false,
        max_line_size = {{ reference('max_line_bytes') }}
    )
{% endmacro %}


{#-
    The file's physical lines numbered from 1 (the header): LF, CR LF and a
    lone CR each end a line, in any mix. Each piece is a line, except the
    empty piece between a CR and its LF. The file's text (read_text, held
    in memory once: about the file's size) says which kind of file it is,
    and only that kind's branch reads the pieces:
    - no CR LF at all (LF, CR, or both): every piece is a line;
    - CR LF only: pieces 1, 3, 5, ... are the lines, 2, 4, 6, ... the halves;
    - a mix with CR LF: the file's CR and LF bytes in order name the pieces
      to drop (piece p ended at byte p), and the rest are numbered again.
-#}
{% macro loan_book_lines(file) %}
    (
        with

        file_line_ends as materialized (
            select
                case
                    when not contains(content, e'\r\n') then 'without CR LF'
                    when not regexp_matches(content, '\r(?:[^\n]|$)|(?:^|[^\r])\n') then 'CR LF only'
                    else 'mixed'
                end as line_ends,
                case when line_ends = 'mixed' then regexp_extract_all(content, '[\r\n]') end as end_bytes
            from read_text({{ sql_string(file) }})
        ),

        without_crlf as (
            select
                row_number() over () as line_number,
                line
            from {{ loan_book_line_pieces(file) }}
            where (select line_ends from file_line_ends) = 'without CR LF'
        ),

        crlf_only as (
            select
                (piece + 1) // 2 as line_number,
                line
            from (
                select
                    row_number() over () as piece,
                    line
                from {{ loan_book_line_pieces(file) }}
                where (select line_ends from file_line_ends) = 'CR LF only'
            ) as pieces
            where piece % 2 = 1
        ),

        crlf_halves as (
            select
                unnest(list_filter(
                    range(2, len(end_bytes) + 1),
                    lambda i: end_bytes[i] = e'\n' and end_bytes[i - 1] = e'\r'
                )) as piece
            from file_line_ends
            where line_ends = 'mixed'
        ),

        mixed as (
            select
                row_number() over (order by piece) as line_number,
                line
            from (
                select
                    row_number() over () as piece,
                    line
                from {{ loan_book_line_pieces(file) }}
                where (select line_ends from file_line_ends) = 'mixed'
            ) as pieces
            where not (line is null and piece in (select crlf_halves.piece from crlf_halves))
        ),

        final as (
            select * from without_crlf
            union all
            select * from crlf_only
            union all
            select * from mixed
        )

        select * from final
    )
{% endmacro %}


{#-
    The CSV grammar, as regular expressions over one line (RFC 4180 with the
    common leniency: a quote is special only at the start of a field, so
    `5" screen` is a value, and `""` inside a quoted field is one quote).
    The lenient field also takes text after a closing quote, so that such a
    row is told exactly that; the strict one does not, and decides where a
    quoted field may run on to the next line.
-#}
{% macro csv_field_pattern(strict=false) -%}
    {%- if strict -%}
        "(?:[^"]|"")*"|[^,"][^,]*|
    {%- else -%}
        "(?:[^"]|"")*"(?:[^",][^,]*)?|[^,"][^,]*|
    {%- endif -%}
{%- endmacro %}


{#-
    The rows of a CSV loan book with their line numbers. A row is one line,
    except where a quoted field holds line breaks: that is allowed only in a
    column the pipeline does not read (a Notes column, say), and only when
    the lines it joins make a row of the header's fields. Otherwise the line
    whose quote is never closed is a malformed row of its own and reading
    resumes on the next line, so one stray quote costs one row, never the
    loans after it (docs block csv_reading, models/docs.md). A row that
    cannot be split into the header's fields keeps its text and a
    `malformed_reason` instead of values. A row without a quote character
    (the common case) is split on its commas; only rows holding a quote pay
    for the regular expressions. A header of the 21 columns alone allows no
    line breaks in a field, and the rows are then the lines, read once.
-#}
{% macro csv_loan_book(file, header) %}
    {%- set width = header | length -%}
    {%- set lenient = csv_field_pattern() -%}
    {%- set strict = csv_field_pattern(strict=true) -%}
    {%- set strict_row = '(?:' ~ strict ~ ')(?:,(?:' ~ strict ~ '))*' -%}
    {%- set strict_field_comma = '(' ~ strict ~ '),' -%}
    {%- set opens = '(?:(?:' ~ lenient ~ '),)*"(?:[^"]|"")*' -%}
    {%- set read_positions = [] -%}
    {%- for column in reference('loan_book_columns') -%}
        {%- do read_positions.append(header.index(column.lower()) + 1) -%}
    {%- endfor -%}
    {%- set free_positions = [] -%}
    {%- for position in range(1, width + 1) if position not in read_positions -%}
        {%- do free_positions.append(position) -%}
    {%- endfor -%}
    (
        with

        lines as {{ loan_book_lines(file) }},

        {%- if free_positions %}

        -- Lines ending inside a quoted field they opened (few: computed once).
        openers as materialized (
            select line_number, line
            from lines
            where
                line_number > 1
                and contains(line, '"')
                and regexp_full_match(line, {{ sql_string(opens) }})
        ),

        -- A line holding a quote that is not one of a doubled pair ends any
        -- quoted field running into it (well formed or not); every other
        -- line lies inside such a field whole.
        field_ends as (
            select line_number, line
            from lines
            where
                contains(line, '"')
                -- A CASE, not AND: the expression runs only on lines after an
                -- opener (none in most files), never on every quoted line.
                and case
                    when line_number > (select min(openers.line_number) from openers)
                        then not regexp_full_match(line, '(?:[^"]|"")*')
                    else false
                end
        ),

        -- Each opener with the next field end: is each well formed, up to
        -- and after the field they would share; which field that is (the
        -- fields before it, plus one); and how many the end line adds.
        opener_ends as (
            select
                openers.line_number as first_line,
                field_ends.line_number as last_line,
                regexp_full_match(openers.line || '"', {{ sql_string(strict_row) }})
                and regexp_full_match('"' || field_ends.line, {{ sql_string(strict_row) }}) as is_well_formed,
                len(regexp_extract_all(openers.line || '",', {{ sql_string(strict_field_comma) }}, 1)) as open_field,
                len(regexp_extract_all('"' || field_ends.line || ',', {{ sql_string(strict_field_comma) }}, 1))
                - 1 as fields_after,
                openers.line_number = lag(field_ends.line_number) over (order by openers.line_number)
                    as opens_on_previous_end
            from openers
            asof left join field_ends on field_ends.line_number > openers.line_number
        ),

        -- The opener's field joins the lines up to the field end when both
        -- are well formed, the field is a column the pipeline does not read,
        -- and the joined row has the header's fields.
        candidates as (
            select
                first_line,
                last_line,
                coalesce(
                    is_well_formed
                    and open_field in ({{ free_positions | join(', ') }})
                    and open_field + fields_after = {{ width }},
                    false
                ) as is_valid,
                coalesce(opens_on_previous_end, false) as opens_on_previous_end
            from opener_ends
        ),

        -- Read in order, an opener that is the end line of the opener before
        -- it is no opener when that one's field was joined (the line was
        -- read inside the field). Along such a chain, a valid opener is
        -- joined when the chain, since its start or its last invalid opener,
        -- has reached an odd position: each joined one voids the next.
        chains as (
            select
                *,
                sum(case when opens_on_previous_end then 0 else 1 end)
                    over (order by first_line rows unbounded preceding)
                    as chain
            from candidates
        ),

        chain_positions as (
            select
                *,
                row_number() over (partition by chain order by first_line) as position
            from chains
        ),

        last_invalid as (
            select
                *,
                max(case when not is_valid then position else 0 end)
                    over (partition by chain order by first_line rows unbounded preceding)
                    as last_invalid_position
            from chain_positions
        ),

        joined_spans as (
            select first_line, last_line
            from last_invalid
            where is_valid and (position - last_invalid_position) % 2 = 1
        ),

        span_lines as (
            select
                joined_spans.first_line,
                lines.line_number,
                lines.line
            from joined_spans
            inner join lines
                on lines.line_number between joined_spans.first_line and joined_spans.last_line
        ),

        span_records as (
            select
                first_line,
                count(*) as line_count,
                string_agg(coalesce(line, ''), e'\n' order by line_number) as record_text
            from span_lines
            group by first_line
        ),

        {%- endif %}

        records as (
            select
                line_number as first_line,
                1 as line_count,
                line as record_text
            from lines
            where
                line_number > 1
                {%- if free_positions %}
                and line_number not in (select span_lines.line_number from span_lines)
            union all
            select * from span_records
            {%- endif %}
        ),

        split as (
            select
                *,
                contains(record_text, '"') as has_quote,
                case
                    when has_quote
                        then regexp_extract_all(record_text || ',', {{ sql_string('(' ~ lenient ~ '),') }}, 1)
                    else string_split(record_text, ',')
                end as fields
            from records
        ),

        judged as (
            select
                *,
                -- The fields rebuild the row unless a quote breaks it: one
                -- that never closes (its opening quote is in no field) or
                -- one in the wrong place. Well split, a row with a quote is
                -- well formed when the strict grammar takes it whole.
                case
                    when record_text is null then 'blank line'
                    when has_quote and array_to_string(fields, ',') <> record_text
                        then
                            case
                                when regexp_full_match(record_text, {{ sql_string(opens) }})
                                    then 'malformed row: a quote opened on line ' || first_line || ' is never closed'
                                else 'malformed row: a quote character breaks the row into fields'
                            end
                    when len(fields) <> {{ width }}
                        then 'malformed row: ' || len(fields) || ' fields, the header has {{ width }}'
                    when has_quote and not regexp_full_match(record_text, {{ sql_string(strict_row) }})
                        then 'malformed row: text after the closing quote of a field'
                end as malformed_reason
            from split
        ),

        final as (
            select
                first_line - 1 as source_row_number,
                line_count as source_line_count,
                malformed_reason,
                case when malformed_reason is not null then left(record_text, 2000) end as raw_line,
                {%- for column in reference('loan_book_columns') %}
                {%- set field = 'fields[' ~ (header.index(column.lower()) + 1) ~ ']' %}
                case
                    when malformed_reason is null then
                        case
                            when has_quote and {{ field }} like '"%' then replace({{ field }}[2:-2], '""', '"')
                            else {{ field }}
                        end
                end as {{ column }}{{ "," if not loop.last }}
                {%- endfor %}
            from judged
        )

        select * from final
    )
{% endmacro %}
