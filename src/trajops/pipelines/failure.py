"""Failure handling of the pipelines: Airflow ``default_args`` and the on-failure callback.

Retries use an exponential back-off: Airflow 3.3 reads ``retry_exponential_backoff`` as the
*multiplier* of the delay (``True`` counts as 1.0, a constant delay), so it is given as a float.
When a task has used up its retries, :func:`notify_failure` raises a ``pipeline_failure``
alert through trajops' notifiers (log, webhook, SMTP), recorded in the operational store
when that is reachable and sent directly when it is not (it may be why the task failed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from trajops.pipelines._workspace import pipeline_settings
from trajops.settings import Settings

if TYPE_CHECKING:  # the store and notifiers load when a task fails: DAG files parse fast
    from trajops.monitoring.alerts import Signal

log = logging.getLogger(__name__)

FAILURE_RULE = "pipeline_failure"
MAX_ERROR_CHARS = 500


def default_args(settings: Settings | None = None) -> dict[str, Any]:
    """``default_args`` of every trajops DAG: retries with back-off, a timeout, the callback.

    Args:
        settings: where the numbers come from (default: ``TRAJOPS_PIPELINE_*`` variables).
    """
    s = settings or pipeline_settings()
    return {
        "owner": "trajops",
        "retries": s.pipeline_retries,
        "retry_delay": timedelta(seconds=s.pipeline_retry_delay_s),
        "retry_exponential_backoff": float(s.pipeline_retry_backoff),
        "max_retry_delay": timedelta(seconds=s.pipeline_max_retry_delay_s),
        "execution_timeout": timedelta(seconds=s.pipeline_task_timeout_s),
        "on_failure_callback": notify_failure,
        "on_success_callback": resolve_failure,
    }


def failure_signal(context: Mapping[str, Any]) -> Signal:
    """The alert for a failed task, from Airflow's callback context (read by attribute only)."""
    from trajops.monitoring.alerts import Signal

    ti = context.get("ti") or context.get("task_instance")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?"))
    if ti is None or "reason" in context:
        # A DAG-level callback (Airflow sets "reason", and passes the last failed task instance
        # when there is one): the run as a whole failed, e.g. its timeout passed.
        dag_run = context.get("dag_run")
        run_id = str(
            getattr(dag_run, "run_id", None)
            or context.get("run_id")
            or getattr(ti, "run_id", None)
            or "?"
        )
        reason = str(context.get("reason") or "failed")[:MAX_ERROR_CHARS]
        return Signal(
            FAILURE_RULE,
            f"{dag_id}.run",
            True,
            f"pipeline run {dag_id} {run_id} failed: {reason}",
            severity="critical",
            context={"dag_id": dag_id, "run_id": run_id, "reason": reason},
        )
    task_id = str(getattr(ti, "task_id", "?"))
    map_index = getattr(ti, "map_index", -1)
    run_id = str(getattr(ti, "run_id", None) or context.get("run_id", "?"))
    tries = getattr(ti, "try_number", None)
    exc = context.get("exception")
    error = f"{exc.__class__.__name__}: {exc}" if exc is not None else "unknown error"
    error = error[:MAX_ERROR_CHARS]
    task = task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"
    return Signal(
        FAILURE_RULE,
        f"{dag_id}.{task_id}",
        True,
        f"pipeline task {dag_id}.{task} failed after {tries} tries in run {run_id}: {error}",
        severity="critical",
        context={
            "dag_id": dag_id,
            "task_id": task_id,
            "map_index": map_index,
            "run_id": run_id,
            "try_number": tries,
            "error": error,
        },
    )


def notify_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: tell someone that a task failed for good. Never raises."""
    from sqlalchemy.exc import SQLAlchemyError

    from trajops.errors import TrajopsError
    from trajops.monitoring.alerts import AlertManager
    from trajops.monitoring.notifiers import notifiers_from_settings
    from trajops.store.db import Store

    try:
        signal = failure_signal(context)
        settings = pipeline_settings()
        notifiers = notifiers_from_settings(settings)
    except Exception:  # a callback that raises hides the task's own error in Airflow's log
        log.exception("pipeline failure notification could not be prepared")
        return
    try:
        store = Store(settings.resolved_database_url)
        try:
            AlertManager(store, notifiers, cooldown_s=0).fire(signal)
        finally:
            store.dispose()
        return
    except (TrajopsError, SQLAlchemyError) as exc:
        log.warning("pipeline failure not recorded in the store (%s); notifying directly", exc)
    alert = {
        "rule": signal.rule,
        "key": signal.key,
        "severity": signal.severity,
        "status": "firing",
        "message": signal.message,
        "context": signal.context,
    }
    for notifier in notifiers:
        try:
            notifier.send(alert)
        except Exception:
            log.exception("notifier %s failed", getattr(notifier, "name", notifier))


def resolve_failure(context: Mapping[str, Any]) -> None:
    """Airflow ``on_success_callback``: a task that succeeds again resolves its
    ``pipeline_failure`` alert (no-op when none is firing). Never raises."""
    from trajops.monitoring.alerts import AlertManager
    from trajops.monitoring.notifiers import notifiers_from_settings
    from trajops.store.db import Store

    ti = context.get("ti") or context.get("task_instance")
    key = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
    try:
        settings = pipeline_settings()
        store = Store(settings.resolved_database_url)
        try:
            AlertManager(store, notifiers_from_settings(settings), cooldown_s=0).resolve(
                FAILURE_RULE, key
            )
        finally:
            store.dispose()
    except Exception:  # the task succeeded; a failed resolve must not change that
        log.warning("could not resolve the pipeline_failure alert %s", key, exc_info=True)
