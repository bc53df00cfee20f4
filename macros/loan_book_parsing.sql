{#-
    Canonical category value for a raw one: matched on lower-case letters and
    digits only, so ' on time ', 'ON-TIME' and 'On-Time' all become 'On-Time'.
    Anything else is null, which staging reports as an unknown value.
-#}
{% macro normalized_category(expression, values) %}
    case
        when cast({{ expression }} as varchar) in ({% for value in values %}'{{ value }}'{{ ", " if not loop.last }}{% endfor %})
            then cast({{ expression }} as varchar)
        else
            case regexp_replace(lower(cast({{ expression }} as varchar)), '[^a-z0-9]', '', 'g')
                {%- for value in values %}
                when '{{ modules.re.sub("[^a-z0-9]", "", value | lower) }}' then '{{ value }}'
                {%- endfor %}
            end
    end
{% endmacro %}


{#- Null for a missing value: SQL null, or text that is empty or blank. -#}
{% macro is_blank(expression) %}
    ({{ expression }} is null or trim(cast({{ expression }} as varchar)) = '')
{% endmacro %}
