{#-
    ROC AUC of `score` for the boolean `label` over `relation`, as a one-row
    select. Mann-Whitney form with tied scores given their average rank, so
    it equals sklearn's roc_auc_score without moving the rows into Python.
    Null when the label has only one class.
-#}
{% macro roc_auc(relation, score, label) %}
    select
        (
            sum(average_rank) filter (where {{ label }})
            - count(*) filter (where {{ label }}) * (count(*) filter (where {{ label }}) + 1) / 2
        )
        / nullif(count(*) filter (where {{ label }}) * count(*) filter (where not {{ label }}), 0)
            as roc_auc
    from (
        select
            {{ label }},
            rank() over (order by {{ score }})
            + (count(*) over (partition by {{ score }}) - 1) / 2 as average_rank
        from {{ relation }}
    ) as ranked
{% endmacro %}
