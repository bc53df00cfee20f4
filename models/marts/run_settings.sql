-- The per-run settings this build used, defaults included: one row. The
-- strategy CASE reads its thresholds from here, so what is recorded is what
-- was applied, and the report draws the thresholds from the same row.
with

final as (

    select
        cast({{ var('legal_threshold') }} as double) as legal_threshold,
        cast({{ var('settlement_threshold') }} as double) as settlement_threshold,
        cast({{ var('n_segments') }} as integer) as n_segments,
        cast({{ var('segmentation_sample_rows') }} as bigint) as segmentation_sample_rows,
        cast({{ var('scoring_sample_rows') }} as bigint) as scoring_sample_rows,
        cast({{ var('scoring_trees') }} as integer) as scoring_trees,
        cast({{ var('random_state') }} as bigint) as random_state

)

select * from final
