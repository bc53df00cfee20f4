-- Fails the build when the outcome model ranks the resolved loans worse
-- than chance: its AUC's 95 % interval lies entirely below 0.5. A model
-- that learned the label upside down (say, a flipped label in SQL) orders
-- the work queue backwards, and a production run has no truth file to
-- notice. An interval that includes 0.5 (the public 500-loan file) is no
-- better than chance but not worse, and builds; the model card says so.
select
    score_name,
    roc_auc,
    roc_auc_ci_low,
    roc_auc_ci_high
from {{ ref('risk_model_metrics') }}
where score_name = 'outcome' and roc_auc_ci_high < 0.5
