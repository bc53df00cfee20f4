-- The outcome model scored the book whenever it could, and fell back only
-- when it had to (docs block outcome_model). It can when the build scores
-- with an approved model (var model_version), or when at least
-- min_resolved_loans resolved loans hold both outcomes. Then every loan has
-- a loss_probability, no fallback reason is given, and the model card
-- judges it on every resolved loan (with an AUC when they hold both
-- outcomes); otherwise every loan carries the fallback reason. The value
-- tests on loss_probability and roc_auc allow NULL (a fallback is a valid
-- build): this is what tells a NULL that had to be from one that must not.
with

loans as (

    select
        count(*) filter (where is_resolved) as resolved_loans,
        count(*) filter (where is_resolved and recovery_status <> 'Fully Recovered') as lost_loans
    from {{ ref('stg_loans') }}

),

settings as (

    select * from {{ ref('stg_run_settings') }}

),

scores as (

    select
        count(*) as loans,
        count(loss_probability) as scored_loans,
        count(outcome_fallback_reason) as fallback_loans
    from {{ ref('int_loan_outcome_scores') }}

),

card as (

    select
        evaluated_loans,
        roc_auc,
        fallback_reason
    from {{ ref('risk_model_metrics') }}
    where score_name = 'outcome'

),

judged as (

    select
        loans.resolved_loans,
        loans.lost_loans,
        scores.loans,
        scores.scored_loans,
        scores.fallback_loans,
        card.evaluated_loans,
        card.roc_auc,
        card.fallback_reason,
        loans.lost_loans between 1 and loans.resolved_loans - 1 as has_both_outcomes,
        settings.model_version is not null
        or (loans.resolved_loans >= settings.min_resolved_loans and loans.lost_loans between 1 and loans.resolved_loans - 1)
            as could_score
    from loans
    cross join settings
    cross join scores
    left join card on true

)

select * from judged
where
    (
        could_score and (
            scored_loans <> loans
            or fallback_loans > 0
            or fallback_reason is not null
            or evaluated_loans is distinct from resolved_loans
            or (has_both_outcomes and roc_auc is null)
        )
    )
    or (not could_score and (fallback_loans <> loans or fallback_reason is null))
