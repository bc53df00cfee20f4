{#-
    The contribution columns of `contributions` that each raises_risk code of
    `catalog` groups, as quoted identifiers, one list per code in reason_code
    order. A column belongs to a code when its feature (the part before '__',
    so loan_type__home is loan_type) is among the code's '|'-separated
    features. Column names come from the table, never from the catalog text:
    the catalog is only matched against them. Before the tables exist (parse,
    lint) there are no groups.
-#}
{% macro reason_code_columns(contributions, catalog) %}
    {%- if not execute or load_relation(contributions) is none or load_relation(catalog) is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set codes = run_query(
        "select features from " ~ catalog ~ " where reason_kind = 'raises_risk' order by reason_code"
    ) -%}
    {%- set names = adapter.get_columns_in_relation(contributions) | map(attribute='name') | list -%}
    {%- set groups = [] -%}
    {%- for row in codes.rows -%}
        {%- set features = (row[0] or '').split('|') -%}
        {%- set members = [] -%}
        {%- for name in names if name not in ['loan_id', 'bias'] and name.split('__')[0] in features -%}
            {%- do members.append(adapter.quote(name)) -%}
        {%- endfor -%}
        {%- do groups.append(members) -%}
    {%- endfor -%}
    {{ return(groups) }}
{% endmacro %}
