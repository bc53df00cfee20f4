{#-
    Runs before anything is built (on-run-start): a strategy run with
    thresholds that are not numbers in [0, 1], or with the settlement
    threshold above the legal one, would silently mis-assign every loan.
-#}
{% macro validate_run_vars() %}
    {%- set legal = var('legal_threshold') -%}
    {%- set settlement = var('settlement_threshold') -%}
    {%- for name, value in [('legal_threshold', legal), ('settlement_threshold', settlement)] -%}
        {%- if value is not number or value is boolean or value < 0 or value > 1 -%}
            {{ exceptions.raise_compiler_error(
                name ~ " must be a number between 0 and 1, got " ~ value ~ "; pass it as --vars '{" ~ name ~ ": 0.6}'"
            ) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if settlement > legal -%}
        {{ exceptions.raise_compiler_error(
            "settlement_threshold (" ~ settlement ~ ") must not be above legal_threshold (" ~ legal ~ ")"
        ) }}
    {%- endif -%}
    {%- set segments = var('n_segments') -%}
    {%- if segments is not number or segments is boolean or segments < 2 -%}
        {{ exceptions.raise_compiler_error("n_segments must be a whole number of at least 2, got " ~ segments) }}
    {%- endif -%}
    select 1
{% endmacro %}
