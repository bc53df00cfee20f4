{#-
    How well each score ranks a boolean label, per `group_column`, over
    `relation` (one row per loan and group): loans, positives, ROC AUC with
    a 95 % interval, Brier score of `probability` and its expected
    calibration error over ten equal-width bins. Computed in SQL, so the
    rows never move into Python:

    - AUC: Mann-Whitney form, tied scores given their average rank, which
      equals sklearn's roc_auc_score; NULL when the label has one class;
    - interval: Hanley and McNeil (1982), AUC +/- 1.96 SE with
      SE^2 = (A(1-A) + (P-1)(Q1-A^2) + (N-1)(Q2-A^2)) / (P N),
      Q1 = A / (2 - A), Q2 = 2A^2 / (1 + A), clipped to [0, 1];
    - ECE: sum over bins of (bin loans / loans) x |mean probability - loss rate|.
-#}
{% macro score_evaluation(relation, group_column, score, label, probability) %}
    with

    -- One row per group and distinct score: ranking distinct scores sorts far
    -- fewer rows than ranking every loan, and ties take their average rank.
    grouped as (

        select
            {{ group_column }} as score_group,
            {{ score }} as score,
            count(*) as loans,
            count(*) filter (where {{ label }}) as positives
        from {{ relation }}
        group by {{ group_column }}, {{ score }}

    ),

    ranked as (

        select
            *,
            sum(loans) over (partition by score_group order by score rows unbounded preceding) - loans
                as loans_below
        from grouped

    ),

    rank_sums as (

        select
            score_group,
            sum(loans) as evaluated_loans,
            sum(positives) as positives,
            sum(loans) - sum(positives) as negatives,
            sum(positives * (loans_below + (loans + 1) / 2)) as positive_rank_sum
        from ranked
        group by score_group

    ),

    probabilities as (

        select
            {{ group_column }} as score_group,
            avg({{ label }}::double) as base_rate,
            avg(power({{ probability }} - {{ label }}::double, 2)) as brier_score
        from {{ relation }}
        group by {{ group_column }}

    ),

    auc as (

        select
            rank_sums.score_group,
            rank_sums.evaluated_loans,
            rank_sums.positives,
            rank_sums.negatives,
            probabilities.base_rate,
            (rank_sums.positive_rank_sum - rank_sums.positives * (rank_sums.positives + 1) / 2)
            / nullif(rank_sums.positives * rank_sums.negatives, 0) as roc_auc,
            probabilities.brier_score
        from rank_sums
        inner join probabilities on rank_sums.score_group = probabilities.score_group

    ),

    bins as (

        select
            score_group,
            count(*) as loans,
            avg(probability) as mean_probability,
            avg({{ label }}::double) as loss_rate
        from (
            select
                {{ group_column }} as score_group,
                {{ probability }} as probability,
                {{ label }}
            from {{ relation }}
        ) as rows_with_probability
        where probability is not null
        group by score_group, least(floor(probability * 10), 9)

    ),

    calibration as (

        select
            score_group,
            sum(loans * abs(mean_probability - loss_rate)) / sum(loans) as expected_calibration_error
        from bins
        group by score_group

    ),

    interval_width as (

        select
            auc.*,
            1.96 * sqrt(
                (
                    roc_auc * (1 - roc_auc)
                    + (positives - 1) * (roc_auc / (2 - roc_auc) - roc_auc * roc_auc)
                    + (negatives - 1) * (2 * roc_auc * roc_auc / (1 + roc_auc) - roc_auc * roc_auc)
                )
                / (positives * negatives)
            ) as half_width
        from auc

    )

    select
        interval_width.score_group,
        interval_width.evaluated_loans,
        interval_width.base_rate,
        interval_width.roc_auc,
        greatest(interval_width.roc_auc - interval_width.half_width, 0) as roc_auc_ci_low,
        least(interval_width.roc_auc + interval_width.half_width, 1) as roc_auc_ci_high,
        interval_width.brier_score,
        calibration.expected_calibration_error
    from interval_width
    left join calibration on interval_width.score_group = calibration.score_group
{% endmacro %}
