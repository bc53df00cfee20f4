{#-
    Canonical category value for a raw one: matched on lower-case letters and
    digits only, so ' on time ', 'ON-TIME' and 'On-Time' all become 'On-Time';
    `aliases` maps other spellings that mean a canonical value (a BOOLEAN
    Legal_Action_Taken reads as 'true'/'false', meaning 'Yes'/'No').
    Anything else is null: staging then decides whether the column is strict.
-#}
{% macro normalized_category(expression, values, aliases={}) %}
    case
        when cast({{ expression }} as varchar) in ({% for value in values %}{{ sql_string(value) }}{{ ", " if not loop.last }}{% endfor %})
            then cast({{ expression }} as varchar)
        else
            case regexp_replace(lower(cast({{ expression }} as varchar)), '[^a-z0-9]', '', 'g')
                {%- for value in values %}
                when {{ sql_string(modules.re.sub("[^a-z0-9]", "", value | lower)) }} then {{ sql_string(value) }}
                {%- endfor %}
                {%- for alias, value in aliases.items() %}
                when {{ sql_string(modules.re.sub("[^a-z0-9]", "", alias | lower)) }} then {{ sql_string(value) }}
                {%- endfor %}
            end
    end
{% endmacro %}


{#-
    An unknown value of a descriptive category, normalised so that spellings
    of one value meet: trimmed, inner whitespace collapsed, each word
    capitalised (' UNEMPLOYED ' and 'unemployed' both become 'Unemployed').
-#}
{% macro normalized_unknown_category(expression) %}
    array_to_string(
        list_transform(
            string_split(regexp_replace(lower(trim(cast({{ expression }} as varchar))), '\s+', ' ', 'g'), ' '),
            lambda word: upper(word[1]) || word[2:]
        ),
        ' '
    )
{% endmacro %}


{#- Null for a missing value: SQL null, or text that is empty or blank. -#}
{% macro is_blank(expression) %}
    ({{ expression }} is null or trim(cast({{ expression }} as varchar)) = '')
{% endmacro %}
