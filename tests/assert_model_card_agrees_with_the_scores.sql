-- The model card describes the scores the marts serve: each score's loans,
-- loss rate and ROC AUC on the resolved loans, recomputed here from
-- recovery_strategies (the scores and recorded outcomes analysts see), must
-- equal risk_model_metrics'. A card computed from another score, another
-- label or other loans fails the build. The AUC is recomputed another way
-- than the card's rank sums (macro score_evaluation): for each positive,
-- the share of negatives scored below it, ties counting half.
with

strategies as (

    select * from {{ ref('recovery_strategies') }}

),

metrics as (

    select * from {{ ref('risk_model_metrics') }}

),

resolved as (

    select
        'outcome' as score_name,
        loss_probability as score,
        recovery_status <> 'Fully Recovered' as is_lost
    from strategies
    where is_resolved and loss_probability is not null
    union all
    select
        'segment' as score_name,
        segment_risk_score as score,
        recovery_status <> 'Fully Recovered' as is_lost
    from strategies
    where is_resolved
    union all
    select
        'days_past_due' as score_name,
        cast(days_past_due as double) as score,
        recovery_status <> 'Fully Recovered' as is_lost
    from strategies
    where is_resolved

),

per_score_value as (

    select
        score_name,
        score,
        count(*) filter (where is_lost) as positives,
        count(*) filter (where not is_lost) as negatives
    from resolved
    group by score_name, score

),

negatives_below as (

    select
        *,
        coalesce(sum(negatives) over (
            partition by score_name order by score rows between unbounded preceding and 1 preceding
        ), 0) as negatives_scored_lower
    from per_score_value

),

recomputed as (

    select
        score_name,
        sum(positives + negatives) as evaluated_loans,
        sum(positives) / sum(positives + negatives) as base_rate,
        sum(positives * (negatives_scored_lower + negatives / 2))
        / nullif(sum(positives) * sum(negatives), 0) as roc_auc
    from negatives_below
    group by score_name

),

compared as (

    select
        coalesce(metrics.score_name, recomputed.score_name) as score_name,
        metrics.evaluated_loans as card_loans,
        recomputed.evaluated_loans as recomputed_loans,
        metrics.base_rate as card_base_rate,
        recomputed.base_rate as recomputed_base_rate,
        metrics.roc_auc as card_roc_auc,
        recomputed.roc_auc as recomputed_roc_auc
    from metrics
    full join recomputed on metrics.score_name = recomputed.score_name
    where coalesce(metrics.score_name, recomputed.score_name) in ('outcome', 'segment', 'days_past_due')

)

select * from compared
where
    coalesce(card_loans, 0) <> coalesce(recomputed_loans, 0)
    or abs(card_base_rate - recomputed_base_rate) > 1e-9
    or (card_base_rate is null) <> (recomputed_base_rate is null)
    or abs(card_roc_auc - recomputed_roc_auc) > 1e-9
    or (card_roc_auc is null) <> (recomputed_roc_auc is null)
