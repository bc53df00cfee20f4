{#-
    The recovery strategy a score gets from the thresholds (docs block
    strategy_thresholds): above legal is legal; from settlement up to and
    including legal is settlement; below is reminders. Written once:
    int_loan_strategies applies it to the score in use, and
    strategy_policy_comparison to each score it compares.
-#}
{% macro strategy_code(score, legal_threshold, settlement_threshold) %}
    case
        when {{ score }} > {{ legal_threshold }} then 'legal'
        when {{ score }} >= {{ settlement_threshold }} then 'settlement'
        else 'reminders'
    end
{% endmacro %}
