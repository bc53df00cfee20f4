-- The two baselines the model card judges the models against, as a
-- probability for every resolved loan (docs block model_metrics), fitted
-- here beside the other scores so that risk_model_metrics only evaluates:
-- the days-past-due rule, the loss rate of the loan's 30-day arrears bucket
-- learned on the other four folds (so no loan sees its own outcome), and
-- the base rate, the book's loss rate.
with

features as (

    select * from {{ ref('int_loan_features') }}

),

resolved as (

    select
        loan_id,
        is_not_fully_recovered,
        hash(loan_id) % 5 as fold,
        least(ceil(days_past_due / 30), 12) as arrears_bucket
    from features
    where is_resolved

),

fold_buckets as (

    select
        fold,
        arrears_bucket,
        count(*) as loans,
        count(*) filter (where is_not_fully_recovered) as losses
    from resolved
    group by fold, arrears_bucket

),

folds as (

    select distinct fold from resolved

),

-- Each fold's bucket rates come from the other four folds; a bucket they
-- never saw falls back to their overall rate.
other_fold_bucket_rates as (

    select
        folds.fold,
        fold_buckets.arrears_bucket,
        sum(fold_buckets.losses) / sum(fold_buckets.loans) as loss_rate
    from folds
    inner join fold_buckets on folds.fold <> fold_buckets.fold
    group by folds.fold, fold_buckets.arrears_bucket

),

other_fold_rates as (

    select
        folds.fold,
        sum(fold_buckets.losses) / sum(fold_buckets.loans) as loss_rate
    from folds
    inner join fold_buckets on folds.fold <> fold_buckets.fold
    group by folds.fold

),

book_rate as (

    select avg(is_not_fully_recovered::double) as loss_rate from resolved

),

final as (

    select
        resolved.loan_id,
        resolved.fold,
        resolved.arrears_bucket,
        coalesce(other_fold_bucket_rates.loss_rate, other_fold_rates.loss_rate) as days_past_due_probability,
        book_rate.loss_rate as base_rate_probability
    from resolved
    left join other_fold_bucket_rates
        on resolved.fold = other_fold_bucket_rates.fold and resolved.arrears_bucket = other_fold_bucket_rates.arrears_bucket
    left join other_fold_rates on resolved.fold = other_fold_rates.fold
    cross join book_rate

)

select * from final
