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

-- One row: the registry id of the models that scored the book.
model_version as (

    select * from {{ ref('int_model_version') }}

),

-- A bin empty on one side would make ln(a / e) infinite: both shares are
-- floored at 0.0001, the usual convention.
floored as (

    select
        *,
        greatest(expected_share, 0.0001) as expected_floored,
        greatest(actual_share, 0.0001) as actual_floored,
        -- greatest() skips NULLs: a book with no open loan keeps a null share
        case when open_share is not null then greatest(open_share, 0.0001) end as open_floored
    from bins

),

per_bin as (

    select
        *,
        (actual_floored - expected_floored) * ln(actual_floored / expected_floored) as psi_term,
        (open_floored - expected_floored) * ln(open_floored / expected_floored) as open_psi_term
    from floored

),

per_variable as (

    select
        variable,
        any_value(variable_kind) as variable_kind,
        count(*) as bins,
        -- BIGINT: DuckDB sums BIGINTs as HUGEINT, which BI drivers read poorly
        cast(sum(actual_loans) as bigint) as scored_loans,
        -- six places: the class is judged on the value a reader sees
        round(sum(psi_term), 6) as psi,
        arg_max(bin_label, abs(actual_share - expected_share)) as most_shifted_bin,
        round(max(abs(actual_share - expected_share)), 6) as most_shifted_bin_share_change,
        cast(sum(open_loans) as bigint) as open_loans,
        -- null when the book has no open loan (open_share is null then)
        round(sum(open_psi_term), 6) as open_psi
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
        per_variable.open_loans,
        per_variable.open_psi,
        case when per_variable.open_psi is not null then {{ stability_class('per_variable.open_psi') }} end
            as open_stability,
        model_version.model_version,
        -- settings.model_version is the artifact a frozen build was asked to score with
        case
            when settings.model_version is null then 'this build''s training population'
            else 'the training population of model ' || settings.model_version
        end as compared_with
    from per_variable
    cross join settings
    cross join model_version

)

select * from final
