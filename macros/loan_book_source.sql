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
    or the seed table's rows. The CSV count does not use read_csv at all: it
    counts the line ends in the file's text (each LF, each CR, less each CR
    LF pair, and one more when the last line has no end), so a reader that
    loses or invents lines cannot hide it. The singular test
    assert_loan_book_rows_reconcile compares this with what reached
    stg_loans and quarantined_loans; `loan-recovery build` also compares
    staging with the count it took from the bytes it hashed.
-#}
{% macro loan_book_data_lines() %}
    {%- set input = loan_book_input() -%}
    {%- if input is none -%}
        (select count(*) as data_lines from {{ ref('sample_loan_book') }})
    {%- elif input.format == 'parquet' -%}
        (select sum(num_rows) as data_lines from parquet_file_metadata({{ sql_string(input.file) }}))
    {%- else -%}
        (select
            len(regexp_extract_all(content, '\n'))
            + case
                when contains(content, e'\r')
                    then len(regexp_extract_all(content, '\r')) - len(regexp_extract_all(content, '\r\n'))
                else 0
            end
            + case when suffix(content, e'\n') or suffix(content, e'\r') then 0 else 1 end
            - 1 as data_lines
        from read_text({{ sql_string(input.file) }}))
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
        {#- The header is the first line; a row is any later line that is not blank. -#}
        {%- set first_line = run_query("select line from " ~ loan_book_line_pieces(input.file) ~ " limit 1").columns[0].values()[0] -%}
        {%- set filled = run_query("select count(*) from (select 1 from " ~ loan_book_line_pieces(input.file) ~ " where line is not null limit 2)").columns[0].values()[0] -%}
        {%- set found_names = [] -%}
        {%- for name in (first_line or '').split(',') -%}
            {%- set name = name.strip() -%}
            {%- do found_names.append(name[1:-1] if name.startswith('"') and name.endswith('"') and name | length > 1 else name) -%}
        {%- endfor -%}
        {%- set rows = filled - 1 -%}
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
