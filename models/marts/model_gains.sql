-- Gains table: for each score, the resolved loans in deciles from the
-- highest score down, with their losses and the share of all losses each
-- decile and the ones above it capture (docs block model_metrics).
with

resolved as (

    select * from {{ ref('int_loans_scored') }}
    where is_resolved

),

scores as (

    select
        'outcome' as score_name,
        loan_id,
        loss_probability as score,
        is_not_fully_recovered
    from resolved
    where loss_probability is not null
    union all
    select
        'segment' as score_name,
        loan_id,
        segment_risk_score as score,
        is_not_fully_recovered
    from resolved
    union all
    select
        'days_past_due' as score_name,
        loan_id,
        days_past_due as score,
        is_not_fully_recovered
    from resolved

),

deciles as (

    select
        *,
        ntile(10) over (partition by score_name order by score desc, loan_id asc) as decile
    from scores

),

per_decile as (

    select
        score_name,
        decile,
        count(*) as loans,
        count(*) filter (where is_not_fully_recovered) as losses,
        min(score) as min_score,
        max(score) as max_score
    from deciles
    group by score_name, decile

),

final as (

    select
        score_name,
        decile,
        loans,
        losses,
        losses / loans as loss_rate,
        min_score,
        max_score,
        sum(loans) over (partition by score_name order by decile) / sum(loans) over (partition by score_name)
            as cumulative_share_of_loans,
        sum(losses) over (partition by score_name order by decile)
        / nullif(sum(losses) over (partition by score_name), 0) as cumulative_share_of_losses
    from per_decile

)

select * from final
