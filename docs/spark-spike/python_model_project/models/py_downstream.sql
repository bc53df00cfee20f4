select count(*) as loans, round(avg(score), 6) as mean_score from {{ ref('py_scored') }}
