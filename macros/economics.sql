{#-
    The expected net value of an action for a loan (docs block
    action_economics), written once:
        outstanding x [P(full) x (1 - haircut) + (1 - P(full)) x partial_recovery_share] - cost
    A settlement that recovers the loan recovers it less the haircut; a loan
    not fully recovered still returns the partial share of its balance; the
    action's cost is paid either way. Null when P(full) is (no outcome model).
-#}
{% macro expected_net_value(outstanding, p_full, haircut, partial_share, cost) -%}
    ({{ outstanding }} * ({{ p_full }} * (1 - {{ haircut }}) + (1 - {{ p_full }}) * {{ partial_share }}) - {{ cost }})
{%- endmacro %}
