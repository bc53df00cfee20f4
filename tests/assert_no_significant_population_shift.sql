-- MONITOR, not a test of correctness: warn severity, it never fails a build
-- and nothing counts it as a check that the build is right (docs block
-- population_stability, "what the monitors are").
--
-- Warns when any model variable has shifted significantly (the highest
-- class of var reference.psi_cutoffs) from the model's training population.
-- It speaks on a frozen build, where the book is new: the scores still come
-- out, but a validator should look before they are acted on. On a training
-- build the book is mostly the training population itself, so its PSI is
-- near 0 by construction and this cannot fire; there the open loans'
-- monitor (assert_open_loans_look_like_the_training_loans) is the signal.
{{ config(severity='warn', tags=['monitor']) }}

select
    variable,
    variable_kind,
    psi,
    most_shifted_bin
from {{ ref('model_monitoring') }}
where stability = '{{ (stability_classes() | last)[0] }}'
