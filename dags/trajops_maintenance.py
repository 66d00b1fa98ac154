"""``trajops_maintenance`` (daily): audit-chain verification, then the retention purge.

The chain is verified before anything is purged, so tampered rows are reported before the
purge could move them behind an anchor. Each task calls one function of
:mod:`trajops.pipelines.maintenance`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from trajops.pipelines import maintenance
from trajops.pipelines.failure import default_args, notify_failure

with DAG(
    "trajops_maintenance",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    on_failure_callback=notify_failure,  # the run as a whole failed
    description="Verify the audit hash chain, then purge data past its retention period.",
    tags=["trajops", "maintenance", "privacy"],
):
    verified = task(maintenance.verify_audit, task_id="verify_audit")()
    purged = task(maintenance.purge_retention, task_id="purge_retention")()
    verified >> purged
