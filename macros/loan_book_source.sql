{#-
    Reading the loan book. Three sources, one shape: the user's CSV or
    Parquet file, else the bundled seed. Every data row of the file comes out
    exactly once, numbered in file order, malformed CSV rows included (they
    carry `malformed_reason`, and staging quarantines them), so nothing the
    file holds is lost between the file and staging.

    The file arrives by one of two routes, both data, never code:
    - `loan-recovery build` passes it in environment variables (the file
      itself as /proc/self/fd/N, its format and its display name), which dbt
      does not render as Jinja and which hold no glob characters: DuckDB
      reads exactly the file that was hashed;
    - plain `dbt build --vars '{loans_path: ...}'`: the path is checked for
      glob characters (DuckDB would read every file a pattern matches).
-#}

{#- The loan book to read: {file, format, name}, or none for the bundled seed. -#}
{% macro loan_book_input() %}
    {%- set file = env_var('LOAN_RECOVERY_LOANS_FILE', '') -%}
    {%- if file -%}
        {{ return({
            'file': file,
            'format': env_var('LOAN_RECOVERY_LOANS_FORMAT', ''),
            'name': env_var('LOAN_RECOVERY_LOANS_NAME', file),
        }) }}
    {%- endif -%}
    {%- set path = var('loans_path') -%}
    {%- if not path -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lowered = (path | string).lower() -%}
    {%- set format = 'parquet' if lowered.endswith('.parquet') else ('csv' if lowered.endswith('.csv') else '') -%}
    {{ return({'file': path | string, 'format': format, 'name': path | string}) }}
{% endmacro %}


{#- A value as a SQL string literal: the one way file names and text enter SQL. -#}
{% macro sql_string(text) -%}
    '{{ text | string | replace("'", "''") }}'
{%- endmacro %}


{#-
    The file's physical lines: one VARCHAR column per line, no quote,
    escape or comment character, and a delimiter that does not occur in
    text, so the reader never interprets a line and never skips one (an
    empty line is a NULL `line`). CR, LF and CRLF all end a line; a
    byte-order mark is dropped.
-#}
{% macro loan_book_line_reader(file) %}
    read_csv(
        {{ sql_string(file) }},
        columns = {'line': 'varchar'},
        header = false,
        auto_detect = false,
        delim = e'\x1f\x1e\x1d\x1c',
        quote = '',
        escape = '',
        comment = '',
        strict_mode = true,
        max_line_size = {{ loan_book_max_line_bytes() }}
    )
{% endmacro %}


{#- The physical lines numbered from 1 (the header), in file order. -#}
{% macro loan_book_lines(file) %}
    (select row_number() over () as line_number, line from {{ loan_book_line_reader(file) }})
{% endmacro %}


{% macro loan_book_max_line_bytes() %}{{ return(8388608) }}{% endmacro %}


{#-
    The CSV grammar, as regular expressions over one line (RFC 4180 with the
    common leniency: a quote is special only at the start of a field, so
    `5" screen` is a value, and `""` inside a quoted field is one quote).
-#}
{% macro csv_field_pattern() -%}
    "(?:[^"]|"")*"(?:[^",][^,]*)?|[^,"][^,]*|
{%- endmacro %}


{#-
    The rows of a CSV loan book with their line numbers. A quoted field may
    span lines; only lines holding a quote character can open or close one,
    so the common file (no such line) pays for two cheap scans. A row that
    cannot be split into the header's fields keeps its text and a
    `malformed_reason` instead of values.
-#}
{% macro csv_loan_book(file, header) %}
    {%- set field = csv_field_pattern() -%}
    {%- set opens = '(?:(?:' ~ field ~ '),)*"(?:[^"]|"")*' -%}
    {%- set closes = '(?:[^"]|"")*"(?:[^",][^,]*)?(?:,(?:' ~ field ~ '))*' -%}
    (
        with

        lines as materialized {{ loan_book_lines(file) }},

        -- Starting outside a quoted field, does the line end inside one
        -- (opens)? Starting inside, does it end outside (closes)?
        quoted_lines as (
            select
                line_number,
                regexp_full_match(line, {{ sql_string(opens) }}) as opens,
                regexp_full_match(line, {{ sql_string(closes) }}) as closes
            from lines
            where strpos(line, '"') > 0 and line_number > 1
        ),

        openers as (select line_number from quoted_lines where opens),

        closers as (select line_number from quoted_lines where closes),

        -- Each opener's span ends at the first closer after it. Openers
        -- inside an earlier span share its closer and are not openers at
        -- all: a span starts at the first opener after the previous span's
        -- closer.
        opener_closers as (
            select
                openers.line_number as opener,
                closers.line_number as closer
            from openers
            asof left join closers on closers.line_number > openers.line_number
        ),

        closer_order as (
            select
                closer,
                lag(closer) over (order by closer nulls last) as previous_closer
            from (select distinct closer from opener_closers) as distinct_closers
        ),

        -- A quote that no later line closes spans only its own line, which is
        -- malformed; reading resumes on the next line, so one stray quote
        -- costs one row, not the rest of the file.
        spans as (
            select
                min(opener_closers.opener) as first_line,
                closer_order.closer as last_line
            from opener_closers
            inner join closer_order on opener_closers.closer = closer_order.closer
            where opener_closers.opener > coalesce(closer_order.previous_closer, 0)
            group by closer_order.closer
            union all
            select
                opener_closers.opener as first_line,
                null as last_line
            from opener_closers
            inner join closer_order on closer_order.closer is null
            where opener_closers.closer is null and opener_closers.opener > coalesce(closer_order.previous_closer, 0)
        ),

        span_lines as (
            select
                lines.line_number,
                lines.line,
                spans.first_line,
                spans.last_line is null as is_unterminated
            from lines
            inner join spans
                on lines.line_number between spans.first_line and coalesce(spans.last_line, spans.first_line)
        ),

        records as (
            select
                line_number as first_line,
                1 as line_count,
                line as record_text,
                false as is_unterminated
            from lines
            where line_number > 1 and line_number not in (select line_number from span_lines)
            union all
            select
                first_line,
                count(*) as line_count,
                string_agg(coalesce(line, ''), e'\n' order by line_number) as record_text,
                any_value(is_unterminated) as is_unterminated
            from span_lines
            group by first_line
        ),

        split as (
            select
                *,
                case
                    when record_text is null then []
                    when strpos(record_text, '"') = 0 then string_split(record_text, ',')
                    else regexp_extract_all(record_text || ',', {{ sql_string('(' ~ field ~ '),') }}, 1)
                end as fields
            from records
        ),

        judged as (
            select
                *,
                case
                    when record_text is null then 'blank line'
                    when is_unterminated
                        then 'malformed row: a quote opened on line ' || first_line || ' is never closed'
                    when array_to_string(fields, ',') <> record_text
                        then 'malformed row: a quote character breaks the row into fields'
                    when len(fields) <> {{ header | length }}
                        then 'malformed row: ' || len(fields) || ' fields, the header has {{ header | length }}'
                    when list_bool_or(list_transform(fields, lambda f: f like '"%' and not regexp_full_match(f, '"(?:[^"]|"")*"')))
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
                {%- set position = header.index(column.lower()) + 1 %}
                case
                    when malformed_reason is null then
                        case
                            when fields[{{ position }}] like '"%' then replace(fields[{{ position }}][2:-2], '""', '"')
                            else fields[{{ position }}]
                        end
                end as {{ column }}{{ "," if not loop.last }}
                {%- endfor %}
            from judged
        )

        select * from final
    )
{% endmacro %}


{#-
    The loan book the pipeline reads, as a subquery: `source_row_number`
    (where the row is in the file, header not counted: a CSV row's first
    line after the header, which is line source_row_number + 1 of the file;
    a Parquet or seed row's 1-based position), `source_line_count` (lines
    the row spans), `malformed_reason`, `raw_line` (a malformed row's text)
    and the loan book's columns under their file names. CSV values stay text, so that staging, not the reader,
    judges every value and can quarantine a bad one with its original text.
-#}
{% macro loan_book_source() %}
    {%- set input = loan_book_input() -%}
    {%- if input is none -%}
        {#- row_number, not rowid: `dbt build --empty` wraps refs in a subquery, which has no rowid -#}
        (select
            row_number() over () as source_row_number,
            1 as source_line_count,
            null::varchar as malformed_reason,
            null::varchar as raw_line,
            *
        from {{ ref('sample_loan_book') }})
    {%- else -%}
        {%- set header = check_loan_book_file(input) -%}
        {%- if input.format == 'parquet' -%}
            (select
                file_row_number + 1 as source_row_number,
                    1 as source_line_count,
                null::varchar as malformed_reason,
                null::varchar as raw_line,
                {%- for column in reference('loan_book_columns') %}
                "{{ column }}"{{ "," if not loop.last }}
                {%- endfor %}
            from read_parquet({{ sql_string(input.file) }}, file_row_number = true))
        {%- else -%}
            {{ csv_loan_book(input.file, header) }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}


{#-
    How many data lines the file holds, counted without the reader staging
    uses: the CSV's physical lines after the header (a row spans one or
    more; a blank line is a row of its own), the Parquet footer's row count,
    or the seed table's rows. The CSV count deliberately configures its own
    reader (another delimiter, not strict) instead of calling
    loan_book_line_reader, so a reader that loses lines cannot hide it. The
    singular test assert_loan_book_rows_reconcile compares this with what
    reached stg_loans and quarantined_loans.
-#}
{% macro loan_book_data_lines() %}
    {%- set input = loan_book_input() -%}
    {%- if input is none -%}
        (select count(*) as data_lines from {{ ref('sample_loan_book') }})
    {%- elif input.format == 'parquet' -%}
        (select sum(num_rows) as data_lines from parquet_file_metadata({{ sql_string(input.file) }}))
    {%- else -%}
        (select count(*) - 1 as data_lines from read_csv(
            {{ sql_string(input.file) }},
            columns = {'text': 'varchar'},
            header = false,
            auto_detect = false,
            delim = e'\x1c',
            quote = '',
            escape = '',
            comment = '',
            strict_mode = false,
            null_padding = true,
            max_line_size = {{ loan_book_max_line_bytes() }}
        ))
    {%- endif -%}
{% endmacro %}


{#-
    Fails the build, naming the file and the problem, when the loan book
    cannot be read as one: not CSV/Parquet, a path with glob characters (plain
    dbt only), missing, empty, columns missing or repeated (usually a wrong
    delimiter), or a header with no rows. Row-level problems are not judged
    here; staging quarantines those. Returns the header's column names in
    lower case, in file order (the CSV reader picks fields by position).
-#}
{% macro check_loan_book_file(input) %}
    {%- set expected = reference('loan_book_columns') | map('lower') | list -%}
    {%- if not execute -%}
        {{ return(expected) }}
    {%- endif -%}
    {%- set prefix = "loans_path '" ~ input.name ~ "': " -%}
    {%- if input.format not in ('csv', 'parquet') -%}
        {{ exceptions.raise_compiler_error(prefix ~ "unsupported file type; give a .csv or .parquet loan book") }}
    {%- endif -%}
    {%- for character in ['*', '?', '[', ']', '{', '}'] if character in input.file -%}
        {{ exceptions.raise_compiler_error(prefix ~ "the path holds the glob character '" ~ character ~ "', so DuckDB would read every file the pattern matches; rename the file, or build with `loan-recovery build --loans`, which reads it literally") }}
    {%- endfor -%}
    {%- set found = run_query("select count(*) from glob(" ~ sql_string(input.file) ~ ")").columns[0].values()[0] -%}
    {%- if found == 0 -%}
        {{ exceptions.raise_compiler_error(prefix ~ "no such file (relative paths start at the dbt project directory)") }}
    {%- endif -%}
    {%- set size = run_query("select size from read_blob(" ~ sql_string(input.file) ~ ")").columns[0].values()[0] -%}
    {%- if size == 0 -%}
        {{ exceptions.raise_compiler_error(prefix ~ "the file is empty") }}
    {%- endif -%}
    {%- if input.format == 'parquet' -%}
        {%- set found_names = run_query("describe select * from read_parquet(" ~ sql_string(input.file) ~ ")").columns[0].values() | list -%}
        {%- set rows = run_query("select sum(num_rows) from parquet_file_metadata(" ~ sql_string(input.file) ~ ")").columns[0].values()[0] -%}
    {%- else -%}
        {%- set first_lines = run_query("select line from " ~ loan_book_line_reader(input.file) ~ " limit 2").columns[0].values() -%}
        {%- set first_line = first_lines[0] -%}
        {%- set found_names = [] -%}
        {%- for name in (first_line or '').split(',') -%}
            {%- set name = name.strip() -%}
            {%- do found_names.append(name[1:-1] if name.startswith('"') and name.endswith('"') and name | length > 1 else name) -%}
        {%- endfor -%}
        {%- set rows = first_lines | length - 1 -%}
    {%- endif -%}
    {%- set lowered = found_names | map('lower') | list -%}
    {%- set missing = [] -%}
    {%- set repeated = [] -%}
    {%- for column in reference('loan_book_columns') -%}
        {%- if column.lower() not in lowered -%}{%- do missing.append(column) -%}{%- endif -%}
        {%- if lowered | select('equalto', column.lower()) | list | length > 1 -%}{%- do repeated.append(column) -%}{%- endif -%}
    {%- endfor -%}
    {%- if missing -%}
        {%- set delimiter_hint = [] -%}
        {%- if found_names | length == 1 -%}
            {%- for candidate in [';', '\t', '|'] if candidate in found_names[0] -%}
                {%- do delimiter_hint.append(
                    "the header is one column, so the file looks " ~ ("tab" if candidate == '\t' else "'" ~ candidate ~ "'") ~ "-separated; "
                ) -%}
            {%- endfor -%}
        {%- endif -%}
        {{ exceptions.raise_compiler_error(
            prefix ~ (delimiter_hint | first if delimiter_hint else "")
            ~ "missing columns " ~ missing[:5] | join(', ')
            ~ (" and " ~ (missing | length - 5) ~ " more" if missing | length > 5 else "")
            ~ " (found " ~ found_names | length ~ ": " ~ found_names[:5] | join(', ') | truncate(120)
            ~ (", ..." if found_names | length > 5 else "")
            ~ "); a loan book needs a header row with the 21 columns, comma-separated"
        ) }}
    {%- endif -%}
    {%- if repeated -%}
        {{ exceptions.raise_compiler_error(prefix ~ "the header names " ~ repeated | join(', ') ~ " more than once; which one holds the data is ambiguous") }}
    {%- endif -%}
    {%- if rows == 0 -%}
        {{ exceptions.raise_compiler_error(prefix ~ "the file has a header but no loan rows") }}
    {%- endif -%}
    {{ return(lowered) }}
{% endmacro %}
