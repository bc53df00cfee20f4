{#-
    A ref for analysis/: the relation as schema.table, without the catalog.
    dbt-duckdb names a relation "<file stem>"."<schema>"."<table>", the
    catalog being the stem of the file dbt compiled against; compiled
    analyses are SQL an analyst keeps and runs against whatever file they
    open (the served one, a copy, last month's), where that catalog does not
    exist. schema.table resolves in the file the query runs in. Models keep
    plain ref(): dbt runs them in the file it builds.
-#}
{% macro catalog_free_ref(name) -%}
    {{ return(ref(name).include(database=false)) }}
{%- endmacro %}
