{#-
    The order a team works loans in, and the order capacity keeps them in
    (docs block capacity): most money at risk first, then the higher score,
    then loan_id, so ties always fall the same way. Written once for the
    capacity ranks of int_loan_strategies and the queue_rank of
    collection_work_queue. `prefix` qualifies the columns ('strategies.').
-#}
{% macro work_order(prefix='') -%}
    {{ prefix }}amount_at_risk desc nulls last, {{ prefix }}risk_score desc, {{ prefix }}loan_id asc
{%- endmacro %}
