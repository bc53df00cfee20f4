{#-
    A fixed fact of the project from var `reference` in dbt_project.yml: the
    loan book's columns, category values, the feature list, the post-outcome
    columns. Per-run settings are plain vars; these may not be overridden
    (validate_run_vars refuses a --vars that tries; a --vars that replaces
    the whole mapping fails here, while models are parsed).
-#}
{% macro reference(name) -%}
    {%- set facts = var('reference') -%}
    {%- if facts is not mapping or name not in facts -%}
        {{ exceptions.raise_compiler_error("invalid --vars: 'reference' holds the project's fixed facts (columns, categories, features) and may not be overridden; it lacks " ~ name) }}
    {%- endif -%}
    {{ return(facts[name]) }}
{%- endmacro %}
