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

    ranked as (

        select
            {{ group_column }} as score_group,
            {{ label }} as label,
            {{ probability }} as probability,
            rank() over (partition by {{ group_column }} order by {{ score }})
            + (count(*) over (partition by {{ group_column }}, {{ score }}) - 1) / 2 as average_rank
        from {{ relation }}

    ),

    auc as (

        select
            score_group,
            count(*) as evaluated_loans,
            count(*) filter (where label) as positives,
            count(*) filter (where not label) as negatives,
            avg(label::double) as base_rate,
            (
                sum(average_rank) filter (where label)
                - count(*) filter (where label) * (count(*) filter (where label) + 1) / 2
            )
            / nullif(count(*) filter (where label) * count(*) filter (where not label), 0)
                as roc_auc,
            avg(power(probability - label::double, 2)) as brier_score
        from ranked
        group by score_group

    ),

    bins as (

        select
            score_group,
            count(*) as loans,
            avg(probability) as mean_probability,
            avg(label::double) as loss_rate
        from ranked
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
