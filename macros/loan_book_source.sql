{#-
    The loan book the pipeline reads, as a subquery with a 1-based
    `source_row_number` in file order: the user's file when `loans_path` is
    set (CSV or Parquet, read by DuckDB directly), else the bundled seed.
    CSV is read as text so that staging, not the reader, judges every value
    and can quarantine a bad one with its original text.
-#}
{% macro loan_book_source() %}
    {%- set path = var('loans_path') -%}
    {%- if path -%}
        {{ check_loan_book_file(path) }}
        {%- if path.lower().endswith('.parquet') -%}
            (select file_row_number + 1 as source_row_number, * exclude (file_row_number)
             from {{ loan_book_reader(path, row_numbers=true) }})
        {%- else -%}
            (select row_number() over () as source_row_number, * from {{ loan_book_reader(path) }})
        {%- endif -%}
    {%- else -%}
        {#- row_number, not rowid: `dbt build --empty` wraps refs in a subquery, which has no rowid -#}
        (select row_number() over () as source_row_number, * from {{ ref('sample_loan_book') }})
    {%- endif -%}
{% endmacro %}


{% macro loan_book_reader(path, row_numbers=false) %}
    {%- set quoted = "'" ~ path | replace("'", "''") ~ "'" -%}
    {%- if path.lower().endswith('.parquet') -%}
        read_parquet({{ quoted }}{{ ", file_row_number = true" if row_numbers }})
    {%- else -%}
        read_csv({{ quoted }}, header = true, delim = ',', quote = '"', all_varchar = true)
    {%- endif -%}
{% endmacro %}


{#-
    Fails the build, naming the file and the problem, when the loan book
    cannot be read as one: missing, empty, not CSV/Parquet, columns missing
    (usually a wrong delimiter), or a header with no rows. Row-level problems
    are not judged here; staging quarantines those.
-#}
{% macro check_loan_book_file(path) %}
    {%- if execute -%}
        {%- set quoted = "'" ~ path | replace("'", "''") ~ "'" -%}
        {%- set prefix = "loans_path '" ~ path ~ "': " -%}
        {%- set lowered = path.lower() -%}
        {%- if not (lowered.endswith('.csv') or lowered.endswith('.parquet')) -%}
            {{ exceptions.raise_compiler_error(prefix ~ "unsupported file type; give a .csv or .parquet loan book") }}
        {%- endif -%}
        {%- set found = run_query("select count(*) from glob(" ~ quoted ~ ")").columns[0].values()[0] -%}
        {%- if found == 0 -%}
            {{ exceptions.raise_compiler_error(prefix ~ "no such file (relative paths start at the dbt project directory)") }}
        {%- endif -%}
        {%- set size = run_query("select size from read_blob(" ~ quoted ~ ")").columns[0].values()[0] -%}
        {%- if size == 0 -%}
            {{ exceptions.raise_compiler_error(prefix ~ "the file is empty") }}
        {%- endif -%}
        {%- set described = run_query("describe select * from " ~ loan_book_reader(path)) -%}
        {%- set found_columns = described.columns[0].values() | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for column in reference('loan_book_columns') -%}
            {%- if column.lower() not in found_columns -%}{%- do missing.append(column) -%}{%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {%- set found_names = described.columns[0].values() -%}
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
        {%- set first_row = run_query("select 1 from " ~ loan_book_reader(path) ~ " limit 1") -%}
        {%- if first_row.rows | length == 0 -%}
            {{ exceptions.raise_compiler_error(prefix ~ "the file has a header but no loan rows") }}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
