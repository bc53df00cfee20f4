{#-
    Schemas by layer, named exactly as configured (dbt's default would
    prefix them with the target schema): the served file's default schema,
    main, holds what analysts and BI tools use (the marts, build_info and the
    quarantine data stewards read); staging and intermediate relations live
    in schemas of those names.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
