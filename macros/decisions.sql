{#-
    The decision cycle and the experiment's draws (docs block
    decision_experiment), written once for the decision models.
-#}

{#- The cycle's date as text, YYYY-MM-DD: var as_of_date (validated by
    validate_run_vars), else the day dbt started, in UTC. -#}
{% macro cycle_date() -%}
    {%- set given = var('as_of_date') -%}
    {{- return(given if given else run_started_at.strftime('%Y-%m-%d')) -}}
{%- endmacro %}

{#- The cycle's date as a SQL DATE literal. -#}
{% macro cycle_date_sql() -%}
    cast({{ sql_string(cycle_date()) }} as date)
{%- endmacro %}

{#- Which build decided: `loan-recovery build` passes its build id; a plain
    dbt run records its invocation id. -#}
{% macro build_id_sql() -%}
    {{ sql_string(env_var('LOAN_RECOVERY_BUILD_ID', invocation_id)) }}
{%- endmacro %}

{#- A number in [0, 1) from text, the same on every engine and run: the
    first 15 hex digits of its MD5 as an integer, over 16^15. DuckDB's
    hash() differs between versions and engines, so draws that must stay
    put (a loan's cell) never use it. -#}
{% macro stable_uniform(text) -%}
    {{ return(adapter.dispatch('stable_uniform', 'loan_recovery')(text)) }}
{%- endmacro %}

{% macro default__stable_uniform(text) -%}
    (cast(('0x' || substr(md5({{ text }}), 1, 15)) as bigint) / 1152921504606846976.0)
{%- endmacro %}

{#- A worked loan's cell from its draw: the first challenger_share of the
    unit interval is the challenger's, the next explore_share explores, the
    rest is the champion's. Only the shares move a loan between cells. -#}
{% macro decision_cell(draw, challenger_share, explore_share) -%}
    case
        when {{ draw }} < {{ challenger_share }} then 'challenger'
        when {{ draw }} < {{ challenger_share }} + {{ explore_share }} then 'explore'
        else 'champion'
    end
{%- endmacro %}

{#- A strategy rank a loan may take: legal (the catalog's top rank, 3) only
    from legal_min_days_past_due; otherwise the next one down. -#}
{% macro eligible_rank(rank, is_legal_eligible) -%}
    case when {{ rank }} = 3 and not {{ is_legal_eligible }} then 2 else {{ rank }} end
{%- endmacro %}

{#- The decision history as this build found it: the served file's table
    `name` (carried into the build file by `loan-recovery build`, or left by
    the previous plain dbt run), without the rows of this cycle or later, so
    rebuilding a cycle replaces it. Typed by the mart's own contract, and
    empty (with the same columns) when there is no history yet. A history
    holding a cycle later than this one stops the build: history is not
    rewritten out of order (the newest cycle may be rebuilt). -#}
{% macro carried_history(name, cycle_column) -%}
    {%- set columns = graph.nodes['model.' ~ project_name ~ '.' ~ name].columns.values() | list if execute else [] -%}
    {%- set relation = adapter.get_relation(database=target.database, schema=target.schema, identifier=name) if execute else none -%}
    {%- if relation is not none and cycle_column == 'as_of_date' -%}
        {%- set newest = run_query("select cast(max(as_of_date) as varchar) from " ~ relation).columns[0].values()[0] -%}
        {%- if newest and cycle_date() < newest -%}
            {{ exceptions.raise_compiler_error("invalid --vars: as_of_date " ~ cycle_date() ~ " is earlier than the newest cycle in " ~ name ~ " (" ~ newest ~ "); rebuild that cycle or a later one") }}
        {%- endif -%}
    {%- endif %}
    select
        {%- for column in columns %}
        cast({{ adapter.quote(column.name) if relation is not none else 'null' }} as {{ column.data_type }}) as {{ column.name }}{{ ',' if not loop.last }}
        {%- endfor %}
    {%- if relation is not none %}
    from {{ relation }}
    where {{ cycle_column }} < {{ cycle_date_sql() }}
    {%- else %}
    where false
    {%- endif %}
{%- endmacro %}

{#- The columns of a carried mart's contract, in its order: the one column
    list both halves of a history-plus-this-cycle union select, so no two
    columns of one type can ever trade places. -#}
{% macro contract_columns(name) -%}
    {%- set columns = graph.nodes['model.' ~ project_name ~ '.' ~ name].columns.values() | list if execute else [] -%}
    {{- columns | map(attribute='name') | join(', ') -}}
{%- endmacro %}

{#- The Wilson score interval of a proportion p of n, at 95 %: the bounds
    one of them ('low' or 'high'). Null when n is 0. -#}
{% macro wilson_bound(p, n, side) -%}
    case when {{ n }} > 0 then
        (({{ p }}) + 1.920729 / ({{ n }}) {{ '-' if side == 'low' else '+' }} 1.959964 * sqrt(({{ p }}) * (1 - ({{ p }})) / ({{ n }}) + 0.960364 / (({{ n }}) * ({{ n }}))))
        / (1 + 3.841459 / ({{ n }}))
    end
{%- endmacro %}
