{#-
    A fixed fact of the project from var `reference` in dbt_project.yml: the
    loan book's columns, category values, the feature list, the post-outcome
    columns. Per-run settings are plain vars; these may not be overridden.
-#}
{% macro reference(name) -%}
    {{ return(var('reference')[name]) }}
{%- endmacro %}
