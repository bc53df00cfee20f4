{#-
    Generic data tests the project needs without dbt_utils (the package hub
    is out of reach). Each returns the failing rows.
-#}

{#- Values outside [min_value, max_value]; nulls are left to not_null. -#}
{% test value_between(model, column_name, min_value, max_value) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where {{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }}
{% endtest %}


{#- Fails when the model has no rows: an empty mart is a broken build. -#}
{% test not_empty(model) %}
    select 'no rows' as problem
    where not exists (select 1 from {{ model }})
{% endtest %}


{#- Rows where a boolean expression over the model's columns is false. -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
