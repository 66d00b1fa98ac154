"""``trajops_monitoring`` (hourly): drift run, online accuracy, alert evaluation.

Two independent branches: drift -> drift_alert_raised -> signal_retraining, and
online_accuracy -> evaluate_alerts.

When drift persists (k of the last m windows), ``signal_retraining`` updates the
``trajops_drift_alert`` asset, which schedules ``trajops_retraining``; otherwise the
short-circuit skips it and no asset event is emitted. Each task calls one function of
:mod:`trajops.pipelines.monitoring`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, task

from trajops.pipelines import DRIFT_ALERT_ASSET, DRIFT_ALERT_NAME, monitoring
from trajops.pipelines.failure import default_args, notify_failure

with DAG(
    "trajops_monitoring",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=55),
    render_template_as_native_obj=True,
    default_args=default_args(),
    on_failure_callback=notify_failure,  # the run timeout skips tasks without their callbacks
    params={
        "model": Param("champion", type="string", description="Alias or version to compare with."),
        "window": Param(None, type=["null", "integer"], minimum=1, description="Served inputs."),
        "accuracy_window_s": Param(3600, type="number", exclusiveMinimum=0),
    },
    description="Hourly drift run, online accuracy and alert evaluation.",
    tags=["trajops", "monitoring"],
):
    drift = task(monitoring.drift, task_id="drift")(
        model="{{ params.model }}", window="{{ params.window }}"
    )
    accuracy = task(monitoring.online_accuracy, task_id="online_accuracy")(
        window_s="{{ params.accuracy_window_s }}"
    )
    alerts = task(monitoring.evaluate_alerts, task_id="evaluate_alerts")(accuracy=accuracy)
    gate = task.short_circuit(monitoring.drift_alert_raised, task_id="drift_alert_raised")(drift)
    signal = task(
        monitoring.retraining_request,
        task_id="signal_retraining",
        outlets=[Asset(name=DRIFT_ALERT_NAME, uri=DRIFT_ALERT_ASSET)],
    )(drift)
    gate >> signal  # accuracy and alerts do not wait for drift: one failing leaves the other
