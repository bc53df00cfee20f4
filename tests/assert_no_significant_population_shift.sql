-- Warns (does not fail the build) when any model variable has shifted
-- significantly (the highest class of var reference.psi_cutoffs) from the
-- model's training population: the scores still
-- come out, but a validator should look before they are acted on (docs
-- block population_stability).
{{ config(severity='warn') }}

select
    variable,
    variable_kind,
    psi,
    most_shifted_bin
from {{ ref('model_monitoring') }}
where stability = '{{ (stability_classes() | last)[0] }}'
