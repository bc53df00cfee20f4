{#-
    The population stability classes from the lowest PSI up, as
    (class, the PSI it starts at) pairs: var reference.psi_cutoffs, the one
    place the class words are written (docs block population_stability).
-#}
{% macro stability_classes() %}
    {{ return(reference('psi_cutoffs') | dictsort(by='value')) }}
{% endmacro %}


{#- The class of a PSI: the last class whose cut-off it reaches. -#}
{% macro stability_class(psi) %}
    {%- set classes = stability_classes() %}
    case
        {%- for name, cutoff in classes[:-1] %}
        when {{ psi }} < {{ classes[loop.index][1] }} then '{{ name }}'
        {%- endfor %}
        else '{{ classes[-1][0] }}'
    end
{%- endmacro %}
