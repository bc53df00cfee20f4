-- MONITOR, not a test of correctness: warn severity, it never fails a build
-- (docs block population_stability, "what the monitors are").
--
-- Warns when a model variable's open loans (the ones the strategy decides
-- for, whose outcome is not recorded yet) differ significantly (the highest
-- class of var reference.psi_cutoffs) from the model's training population.
-- On the bundled sample the honest build's variables stay at or below 0.04
-- (the score 0.08); a feature that a recorded outcome reached (a leak too
-- weak for the sentinel's 0.90: a planted one with univariate AUC 0.87
-- measured 0.77 here, the score 0.26)
-- is where they part. A real book's open loans may differ for honest
-- reasons (they are younger), so a validator looks before acting: it is a
-- signal, not a verdict.
{{ config(severity='warn', tags=['monitor']) }}

select
    variable,
    variable_kind,
    open_loans,
    open_psi
from {{ ref('model_monitoring') }}
where open_stability = '{{ (stability_classes() | last)[0] }}'
