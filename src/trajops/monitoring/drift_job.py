"""One drift run: recent served inputs vs the serving model's reference, stored and alerted on."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.exc import SQLAlchemyError

from trajops import T_OBS
from trajops.errors import NotEnoughData, NotFoundError, ServiceUnavailable
from trajops.monitoring.alerts import AlertManager, Signal
from trajops.monitoring.drift import (
    DriftDetector,
    DriftResult,
    Persistence,
    features_from_obs,
    save_html,
)
from trajops.monitoring.reference import Reference
from trajops.settings import Settings
from trajops.store.db import Store
from trajops.store.models import DriftReport, PredictionRecord

log = logging.getLogger(__name__)


INPUT_COLUMNS = (
    PredictionRecord.inputs,
    PredictionRecord.step_s,
    PredictionRecord.request_id,
    PredictionRecord.agent_key,
    PredictionRecord.id,
)
"""What a drift run reads of a served input (``select(*INPUT_COLUMNS)`` for :func:`read_inputs`)."""


class ServedInputs(NamedTuple):
    """Served inputs as read from the store, one entry per input, in the query's row order."""

    obs: np.ndarray  # (N, T_obs, 2)
    step_s: np.ndarray  # (N,)
    request_id: np.ndarray  # (N,) object
    agent_key: np.ndarray  # (N,) object
    id: np.ndarray  # (N,) int64


def read_inputs(store: Store, stmt: Select[Any]) -> ServedInputs:
    """Run ``stmt`` (selecting :data:`INPUT_COLUMNS`).

    Raises:
        ServiceUnavailable: the store is unreachable.
    """
    try:
        with store.session() as session:
            rows = session.execute(stmt).all()
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            f"operational store unreachable: {exc.__class__.__name__}"
        ) from None
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * len(INPUT_COLUMNS)
    return ServedInputs(
        np.asarray(columns[0], dtype=np.float64) if rows else np.zeros((0, T_OBS, 2)),
        np.asarray(columns[1], dtype=np.float64),
        np.asarray(columns[2], dtype=object),
        np.asarray(columns[3], dtype=object),
        np.asarray(columns[4], dtype=np.int64),
    )


def recent_inputs(
    store: Store, *, window: int | None = None, since: datetime | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The last ``window`` served inputs (or those since ``since``).

    Returns:
        ``obs (N, T_obs, 2)``, ``step_s (N,)`` and the request id of each input.
    """
    stmt = select(*INPUT_COLUMNS)
    if since is not None:
        stmt = stmt.where(PredictionRecord.created_at >= since)
    stmt = stmt.order_by(PredictionRecord.id.desc())
    if window is not None:
        stmt = stmt.limit(window)
    found = read_inputs(store, stmt)
    return found.obs, found.step_s, found.request_id


SCENE_FOLDER = "scene-"
"""Reports of a per-scene run are written under ``<home>/drift/scene-<scene key>/``."""


def _scope(scene_key: str | None) -> ColumnElement[bool]:
    """The stored reports of one scene's runs, or (None) of the all-traffic runs."""
    if scene_key is not None:
        return DriftReport.scene_key == scene_key
    return DriftReport.scene_key.is_(None)


def _persistence(
    store: Store, settings: Settings, drifted: bool, scene_key: str | None = None
) -> bool:
    """k-of-m over the stored drift reports of the same scope plus this one."""
    with store.session() as session:
        past = session.execute(
            select(DriftReport.dataset_drift)
            .where(_scope(scene_key))
            .order_by(DriftReport.id.desc())
            .limit(settings.drift_persistence_m - 1)
        ).scalars()
        history = list(reversed(list(past)))
    rule = Persistence(settings.drift_persistence_k, settings.drift_persistence_m, history)
    return rule.update(drifted)


def run_drift(
    settings: Settings,
    store: Store,
    reference: Reference,
    *,
    model_version: str | None,
    window: int | None = None,
    since: datetime | None = None,
    alerts: AlertManager | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Compare recent served inputs with ``reference``; store, alert on and return the summary.

    Raises:
        NotEnoughData: fewer served inputs than ``settings.drift_min_inputs``.
    """
    n = window or (None if since else settings.drift_window_size)
    obs, steps, requests = recent_inputs(store, window=n, since=since)
    if len(obs) < settings.drift_min_inputs:
        raise NotEnoughData(
            f"not enough served inputs for a drift run: {len(obs)} < {settings.drift_min_inputs} "
            "(serve more traffic, or widen --window/--since)",
            details=[{"loc": ["window"], "msg": "too few inputs"}],
        )
    current = features_from_obs(obs, step_s=steps, scene_ids=requests)
    result = DriftDetector(reference.profile, reference.calibration).run(current)
    return record_run(
        settings,
        store,
        result,
        model_version=model_version,
        alerts=alerts,
        log_to_mlflow=log_to_mlflow,
    )


def record_run(
    settings: Settings,
    store: Store,
    result: DriftResult,
    *,
    model_version: str | None,
    scene_key: str | None = None,
    alerts: AlertManager | None = None,
    log_to_mlflow: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Keep one drift run: HTML and JSON summary under ``<home>/drift``, a ``DriftReport``
    row, the persistence rule over the runs of the same scope (all traffic, or ``scene_key``),
    its ``drift`` alert (key ``inputs`` or ``scene:<scene_key>``), the Evidently workspace and
    MLflow when enabled.

    Returns:
        ``result.summary()`` with ``model_version``, ``report_path``, ``created_at``, ``id``,
        ``alert``, ``alert_started`` and ``extra``.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = settings.home / "drift"
    if scene_key is not None:
        folder = folder / f"{SCENE_FOLDER}{scene_key}"
    folder = (folder / stamp).resolve()
    html = save_html(result, folder / "report.html")
    summary = {
        **result.summary(),
        "model_version": model_version,
        "report_path": str(html),
        "created_at": datetime.now(UTC).isoformat(),
        **(extra or {}),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    persistent = _persistence(store, settings, result.dataset_drift, scene_key)
    with store.session() as session:
        row = DriftReport(
            model_version=model_version,
            n_reference=result.n_reference,
            n_current=result.n_current,
            dataset_drift=result.dataset_drift,
            drifted_features=result.drifted_features,
            scores=result.scores,
            report_path=str(html),
            scene_key=scene_key,
        )
        session.add(row)
        session.flush()
        summary["id"] = row.id
    summary["alert"] = persistent
    summary["alert_started"] = persistent  # without an alert manager: every persistent run
    if alerts is not None:
        of_scene = "" if scene_key is None else f" of scene {scene_key}"
        signal = Signal(
            "drift",
            "inputs" if scene_key is None else f"scene:{scene_key}",
            persistent,
            f"input drift{of_scene} in {settings.drift_persistence_k} of the last "
            f"{settings.drift_persistence_m} windows: {', '.join(result.drifted_features) or '-'}",
            context={"drifted_features": result.drifted_features, "report_id": summary["id"]},
        )
        if persistent:
            # Started now, or still firing from an earlier run (then nothing new to act on).
            summary["alert_started"] = alerts.fire(signal)["count"] == 1
        else:
            alerts.resolve(signal.rule, signal.key)
    if settings.evidently_workspace is not None and result.snapshot is not None:
        summary["evidently_run_id"] = add_to_workspace(
            settings.evidently_workspace, result.snapshot
        )
    if log_to_mlflow:
        _log_to_mlflow(settings, summary, folder)
    return summary


EVIDENTLY_PROJECT = "trajops"


def add_to_workspace(path: Path, snapshot: Any) -> str | None:
    """Add a drift snapshot to the ``trajops`` project of a local Evidently workspace.

    Never fails the drift run: the workspace is a convenience for Evidently's UI.
    """
    from evidently.ui.workspace import Workspace

    try:
        workspace = Workspace.create(str(path))
        found = workspace.search_project(EVIDENTLY_PROJECT)
        project = found[0] if found else workspace.create_project(EVIDENTLY_PROJECT)
        ref = workspace.add_run(project.id, snapshot)
        return str(getattr(ref, "id", ref))
    except Exception as exc:  # Evidently raises several unrelated types for a bad folder
        log.warning("drift snapshot not added to the Evidently workspace: %s", exc)
        return None


def _log_to_mlflow(settings: Settings, summary: dict[str, Any], folder: Path) -> None:
    """Log the run to the ``<experiment>-monitoring`` experiment; never fails the drift run.

    The experiment is created like the training ones (:func:`ensure_experiment`): with the
    embedded store its artifacts go under ``TRAJOPS_HOME``, not MLflow's default ``./mlruns``
    of whatever folder the job runs in.
    """
    import mlflow

    from trajops.tracking.backend import connect, ensure_experiment

    try:
        client = connect(settings)  # also points the fluent API at the resolved URIs
        name = f"{settings.experiment_name}-monitoring"
        exp_id = ensure_experiment(settings, client, name)
        with mlflow.start_run(experiment_id=exp_id, run_name=f"drift-{summary['id']}") as run:
            mlflow.set_tags(
                {
                    "trajops.kind": "drift",
                    "model_version": str(summary["model_version"]),
                    **({"scene_key": summary["scene_key"]} if summary.get("scene_key") else {}),
                }
            )
            mlflow.log_metrics(
                {
                    "dataset_drift": float(summary["dataset_drift"]),
                    "n_current": float(summary["n_current"]),
                    **{f"drift_score/{k}": float(v) for k, v in summary["scores"].items()},
                }
            )
            mlflow.log_artifacts(str(folder), artifact_path="drift")
            summary["mlflow_run_id"] = run.info.run_id
    except Exception as exc:  # the tracking server is optional for monitoring
        log.warning("drift run not logged to MLflow: %s", exc.__class__.__name__)


def _report_dict(r: DriftReport) -> dict[str, Any]:
    return {
        "id": r.id,
        "created_at": r.created_at.isoformat(),
        "model_version": r.model_version,
        "dataset_drift": r.dataset_drift,
        "drifted_features": r.drifted_features,
        "scores": r.scores,
        "n_reference": r.n_reference,
        "n_current": r.n_current,
        "report_path": r.report_path,
        "scene_key": r.scene_key,
    }


def list_reports(store: Store, *, limit: int = 50) -> list[dict[str, Any]]:
    """Stored drift runs, newest first."""
    with store.session() as session:
        rows = session.execute(
            select(DriftReport).order_by(DriftReport.id.desc()).limit(limit)
        ).scalars()
        return [_report_dict(r) for r in rows]


def get_report(store: Store, report_id: int) -> dict[str, Any]:
    """One stored drift run.

    Raises:
        NotFoundError: no drift report with this id.
    """
    with store.session() as session:
        row = session.get(DriftReport, report_id)
        if row is None:
            raise NotFoundError(
                f"no drift report with id {report_id}",
                details=[{"loc": ["path", "report_id"], "msg": "unknown report"}],
            )
        return _report_dict(row)
