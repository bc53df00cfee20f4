"""The models the dbt Python models call: fitting, scoring, explaining and storing them.

One module per job, read in this order by a newcomer:

* input: ``loan_source`` (a dbt relation or frame read, checked and sampled
  in SQL, streamed in Arrow batches), ``model_input`` (validated, leak-checked
  feature blocks) and ``sentinel`` (the data-level leak and proxy guard);
* the shared estimators: ``forest`` (the sized RandomForest, its scoring
  stream and version) and ``calibration`` (Platt scaling, cross-fitted);
* the models: ``segmentation`` and ``segment_names`` (KMeans segments and
  their names), ``segment_score`` (the write-up's score, kept as the
  baseline), ``outcome`` (the calibrated outcome model), ``reasons``
  (per-feature contributions) and ``monitoring`` (population stability);
* keeping them: ``model_store`` (fitted models as arrays, no pickle) and
  ``registry`` (versioned, approved artifacts).

Modules here import the shared base (``loan_recovery.config``,
``build_info``, ``errors``) and each other, never ``serving`` or ``report``.
"""
