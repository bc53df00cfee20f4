{#-
    The recovery strategy a score gets from the thresholds (docs block
    strategy_thresholds), as its strategy_rank in the seed
    recovery_strategy_catalog: above legal_threshold the most aggressive
    strategy (3); from settlement_threshold up to and including
    legal_threshold the middle one (2); below it the least (1). The
    strategies' codes and wording are written only in the catalog: a model
    joins it on strategy_rank to name them. Written once: int_loan_strategies
    applies it to the score in use, and strategy_policy_comparison to each
    score it compares.
-#}
{% macro strategy_rank(score, legal_threshold, settlement_threshold) %}
    case
        when {{ score }} > {{ legal_threshold }} then 3
        when {{ score }} >= {{ settlement_threshold }} then 2
        else 1
    end
{% endmacro %}
