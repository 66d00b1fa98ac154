"""Plain-Python tasks that the Airflow DAGs in ``dags/`` call, one function per task.

Nothing here imports Airflow: every function takes and returns small JSON-able metadata
(paths, run ids, versions, counts), reads its configuration from ``TRAJOPS_*`` settings when
it runs, and is idempotent for one pipeline run key (a rerun reuses the files, the MLflow run,
the model version and the experiment of the earlier try instead of creating new ones).

Modules:
    * :mod:`~trajops.pipelines.data`: extract, validate, windows and features.
    * :mod:`~trajops.pipelines.training`: candidates, training, evaluation, registration,
      gated promotion, A/B experiment.
    * :mod:`~trajops.pipelines.monitoring`: drift run, online accuracy, alert evaluation.
    * :mod:`~trajops.pipelines.maintenance`: retention purge, audit-chain verification.
    * :mod:`~trajops.pipelines.failure`: Airflow's ``default_args`` and the failure callback.
"""

DRIFT_ALERT_NAME = "trajops_drift_alert"
"""Name of the Airflow asset the monitoring DAG updates when drift persists."""
DRIFT_ALERT_ASSET = "trajops://monitoring/drift-alert"
"""Its URI; ``trajops_retraining`` is scheduled on it (and weekly)."""
