{#-
    Generic data tests the project needs without dbt_utils (the package hub
    is out of reach). Each returns the failing rows, and a NULL fails unless
    the test is told it may pass (a test that passes on NULL would pass on a
    broken model: a one-class label gives a NULL AUC).
-#}

{#- Values outside [min_value, max_value], and NULLs unless allow_null. -#}
{% test value_between(model, column_name, min_value, max_value, allow_null=false) %}
    select {{ column_name }} as failing_value
    from {{ model }}
    where
        {{ column_name }} < {{ min_value }}
        or {{ column_name }} > {{ max_value }}
        {%- if not allow_null %}
        or {{ column_name }} is null
        {%- endif %}
{% endtest %}


{#- Fails when the model has no rows: an empty row-level model is a broken build. -#}
{% test not_empty(model) %}
    select 'no rows' as problem
    where not exists (select 1 from {{ model }})
{% endtest %}


{#- Rows where a boolean expression over the model's columns is not true (false or NULL). -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce({{ expression }}, false)
{% endtest %}


{#- Combinations of columns that occur more than once (a NULL counts as a value). -#}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
