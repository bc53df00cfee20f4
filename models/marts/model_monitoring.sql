-- Drift: the population stability index (PSI) of every model variable,
-- this book against the model's training population, in the bins the
-- model stored (docs block population_stability).
with

bins as (

    select * from {{ ref('int_model_population_bins') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

-- A bin empty on one side would make ln(a / e) infinite: both shares are
-- floored at 0.0001, the usual convention.
floored as (

    select
        *,
        greatest(expected_share, 0.0001) as expected_floored,
        greatest(actual_share, 0.0001) as actual_floored
    from bins

),

per_bin as (

    select
        *,
        (actual_floored - expected_floored) * ln(actual_floored / expected_floored) as psi_term
    from floored

),

per_variable as (

    select
        variable,
        any_value(variable_kind) as variable_kind,
        count(*) as bins,
        sum(actual_loans) as scored_loans,
        -- six places: the class is judged on the value a reader sees
        round(sum(psi_term), 6) as psi,
        arg_max(bin_label, abs(actual_share - expected_share)) as most_shifted_bin,
        round(max(abs(actual_share - expected_share)), 6) as most_shifted_bin_share_change
    from per_bin
    group by variable

),

final as (

    select
        per_variable.variable,
        per_variable.variable_kind,
        per_variable.bins,
        per_variable.scored_loans,
        per_variable.psi,
        {{ stability_class('per_variable.psi') }} as stability,
        per_variable.most_shifted_bin,
        per_variable.most_shifted_bin_share_change,
        nullif(settings.model_version, '') as model_artifact,
        case
            when settings.model_version = '' then 'this build''s training population'
            else 'the training population of artifact ' || settings.model_version
        end as compared_with
    from per_variable
    cross join settings

)

select * from final
