"""What the dashboard reads from the operational store and the model registry.

The store holds what every replica served (the prediction log, scored feedback, the audit
trail), so time series drawn from it cover the whole deployment, not one process. Identifiers
are the stored pseudonyms: the dashboard never sees a raw agent id. No Streamlit here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import and_, select

from trajops.errors import NotFoundError, ValidationError
from trajops.experiments.config import variant_name
from trajops.monitoring.metrics import PREDICT_ROUTE
from trajops.registry.adapter import Registry
from trajops.registry.history import read_history
from trajops.store.db import Store
from trajops.store.models import AuditEntry, Feedback, PredictionRecord

MAX_ROWS = 200_000
"""Most rows one time series reads (a window that holds more shows its newest rows)."""


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


@dataclass(frozen=True)
class Trajectory:
    """One served agent: what was observed, what was forecast and (once known) what happened.

    Attributes:
        obs: ``(T_obs, 2)`` observed positions.
        pred: ``(T_pred, 2)`` served forecast.
        truth: ``(n, 2)`` true positions from feedback, ``None`` while unknown.
    """

    request_id: str
    agent_key: str
    created_at: datetime
    model_version: str
    variant: str
    obs: np.ndarray
    pred: np.ndarray
    truth: np.ndarray | None
    ade: float | None
    fde: float | None

    def label(self, tz: tzinfo = UTC) -> str:
        """Short label for a picker: time in ``tz``, version, request and agent pseudonym."""
        known = f"ADE {self.ade:.3f} m" if self.ade is not None else "no truth yet"
        return (
            f"{self.created_at.astimezone(tz):%H:%M:%S} v{self.model_version} "
            f"{self.request_id[:8]}/"
            f"{self.agent_key[:6]} ({known})"
        )


def recent_trajectories(
    store: Store, *, limit: int = 50, with_truth: bool = False
) -> list[Trajectory]:
    """The most recently served agents, newest first, with their feedback when it arrived."""
    stmt = (
        select(PredictionRecord, Feedback)
        .outerjoin(
            Feedback,
            and_(
                Feedback.request_id == PredictionRecord.request_id,
                Feedback.agent_key == PredictionRecord.agent_key,
            ),
        )
        .order_by(PredictionRecord.id.desc())
        .limit(limit)
    )
    if with_truth:
        stmt = stmt.where(Feedback.id.is_not(None))
    with store.session() as session:
        rows = session.execute(stmt).all()
    out = []
    for pred, fb in rows:
        out.append(
            Trajectory(
                request_id=pred.request_id,
                agent_key=pred.agent_key,
                created_at=_utc(pred.created_at),
                model_version=pred.model_version,
                variant=pred.variant,
                obs=np.asarray(pred.inputs, dtype=np.float64),  # (T_obs, 2)
                pred=np.asarray(pred.outputs, dtype=np.float64),  # (T_pred, 2)
                truth=None if fb is None else np.asarray(fb.positions, dtype=np.float64),
                ade=None if fb is None else float(fb.ade),
                fde=None if fb is None else float(fb.fde),
            )
        )
    return out


def traffic_series(
    store: Store, *, window: timedelta, bucket: str = "1min", now: datetime | None = None
) -> pd.DataFrame:
    """Requests of every replica per time bucket, from the audit trail.

    Returns:
        One row per bucket (index: bucket start, UTC) with ``requests``, ``rate_per_s``,
        ``error_rate`` (share of 5xx) and ``p50_ms`` / ``p95_ms`` / ``p99_ms`` of
        ``/v1/predict``; empty when nothing was served in the window.
    """
    since = (now or datetime.now(UTC)) - window
    stmt = (
        select(AuditEntry.created_at, AuditEntry.route, AuditEntry.status, AuditEntry.latency_ms)
        .where(AuditEntry.created_at >= since)
        .order_by(AuditEntry.id.desc())
        .limit(MAX_ROWS)
    )
    with store.session() as session:
        rows = session.execute(stmt).all()
    columns = ["requests", "rate_per_s", "error_rate", "p50_ms", "p95_ms", "p99_ms"]
    if not rows:
        return pd.DataFrame(columns=columns, dtype=float)
    frame = pd.DataFrame(rows, columns=["at", "route", "status", "latency_ms"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame["error"] = frame["status"] >= 500
    grouped = frame.groupby(pd.Grouper(key="at", freq=bucket))
    out = pd.DataFrame({"requests": grouped.size()})
    out["rate_per_s"] = out["requests"] / pd.Timedelta(bucket).total_seconds()
    out["error_rate"] = grouped["error"].mean()
    predict = frame[frame["route"] == PREDICT_ROUTE].groupby(pd.Grouper(key="at", freq=bucket))
    for q in (50, 95, 99):
        out[f"p{q}_ms"] = predict["latency_ms"].quantile(q / 100)
    return out[columns]


def accuracy_series(
    store: Store, *, window: timedelta, bucket: str = "5min", now: datetime | None = None
) -> pd.DataFrame:
    """Online accuracy per model version and time bucket, from scored feedback.

    Returns:
        Columns ``at`` (bucket start, UTC), ``model_version``, ``n``, ``ade``, ``fde``.
    """
    since = (now or datetime.now(UTC)) - window
    stmt = (
        select(Feedback.created_at, Feedback.model_version, Feedback.ade, Feedback.fde)
        .where(Feedback.created_at >= since)
        .order_by(Feedback.id.desc())
        .limit(MAX_ROWS)
    )
    with store.session() as session:
        rows = session.execute(stmt).all()
    columns = ["at", "model_version", "n", "ade", "fde"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows, columns=["at", "model_version", "ade", "fde"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.floor(bucket)
    out = (
        frame.groupby(["at", "model_version"])
        .agg(n=("ade", "size"), ade=("ade", "mean"), fde=("fde", "mean"))
        .reset_index()
    )
    return out[columns]


def mean_interval(values: np.ndarray, *, alpha: float = 0.05) -> tuple[float, float] | None:
    """Student-t ``1 - alpha`` interval of the mean of ``values`` (None below 2 values)."""
    n = len(values)
    if n < 2:
        return None
    half = float(stats.t.ppf(1 - alpha / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    mean = float(values.mean())
    return mean - half, mean + half


def arm_intervals(
    store: Store, *, experiment_id: str, arms: list[str], metric: str = "ade", alpha: float = 0.05
) -> list[dict[str, Any]]:
    """Per arm of an experiment: feedback count, mean ``metric`` and its interval."""
    if metric not in ("ade", "fde"):
        raise ValueError(f"metric must be 'ade' or 'fde', got {metric!r}")
    column = Feedback.ade if metric == "ade" else Feedback.fde
    variants = {variant_name(experiment_id, arm): arm for arm in arms}
    stmt = select(Feedback.variant, column).where(Feedback.variant.in_(list(variants)))
    with store.session() as session:
        rows = session.execute(stmt).all()
    values: dict[str, list[float]] = {arm: [] for arm in arms}
    for variant, value in rows:
        values[variants[variant]].append(float(value))
    out = []
    for arm in arms:
        x = np.asarray(values[arm], dtype=np.float64)  # (n_feedback,)
        ci = mean_interval(x, alpha=alpha)
        out.append(
            {
                "arm": arm,
                "n": len(x),
                "mean": float(x.mean()) if len(x) else None,
                "ci_low": ci[0] if ci else None,
                "ci_high": ci[1] if ci else None,
            }
        )
    return out


def drift_ratios(
    reports: list[dict[str, Any]], thresholds: Mapping[str, Mapping[str, float]]
) -> pd.DataFrame:
    """Per-feature drift score divided by its threshold over time (at or above 1: drifted).

    Args:
        reports: stored drift runs (``created_at``, ``model_version``, ``scores``).
        thresholds: model version -> feature -> the threshold its reference calibrated.

    Returns:
        Index: run time (UTC); one column per feature; NaN where the run did not test the
        feature. Runs of a version without known thresholds are left out.
    """
    rows = []
    for r in reports:
        limits = thresholds.get(str(r.get("model_version")))
        if not r.get("created_at") or not limits:
            continue
        scores = r.get("scores", {})
        rows.append(
            {"at": r["created_at"]}
            | {f: float(scores[f]) / limits[f] for f in limits if f in scores and limits[f] > 0}
        )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601")
    return frame.set_index("at").sort_index()


def drift_thresholds(registry: Registry, versions: Iterable[str]) -> dict[str, dict[str, float]]:
    """Model version -> feature -> drift threshold, from the reference logged with the version
    (what its drift runs compared against); versions without a reference are left out.

    Raises:
        TrackingUnavailable: the registry is down (nothing is left out for that).
    """
    from trajops.monitoring.reference import load_reference  # pandas/MLflow work, on demand

    out: dict[str, dict[str, float]] = {}
    for version in sorted(set(versions)):
        try:
            out[version] = dict(load_reference(registry, version).calibration.thresholds)
        except (NotFoundError, ValidationError):  # no version, no or a bad reference on its run
            continue
    return out


@dataclass(frozen=True)
class MlflowUi:
    """Links into the MLflow UI at ``base`` for the registered model ``model_name``."""

    base: str
    model_name: str

    def version_url(self, version: int | str) -> str:
        """The page of one registered version."""
        return f"{self.base}/#/models/{quote(self.model_name, safe='')}/versions/{version}"

    def run_url(self, run_id: str, experiment_id: str | None = None) -> str:
        """The page of one run (MLflow's run route finds the experiment when it is unknown)."""
        if experiment_id is None:
            return f"{self.base}/#/runs/{run_id}"
        return f"{self.base}/#/experiments/{experiment_id}/runs/{run_id}"


def mlflow_ui(*, ui_url: str | None, tracking_uri: str, model_name: str) -> MlflowUi | None:
    """Where MLflow's UI is: ``ui_url``, else an http(s) tracking server; None: no links."""
    base = ui_url or (tracking_uri if tracking_uri.startswith(("http://", "https://")) else None)
    return None if base is None else MlflowUi(base.rstrip("/"), model_name)


def run_experiments(registry: Registry, run_ids: Iterable[str]) -> dict[str, str]:
    """Run id -> its experiment id (runs that cannot be read are left out)."""
    from mlflow.exceptions import MlflowException

    out: dict[str, str] = {}
    for run_id in sorted(set(run_ids)):
        try:
            out[run_id] = str(registry.client.get_run(run_id).info.experiment_id)
        except (MlflowException, OSError):  # deleted run, or the server went away
            continue
    return out


def registry_view(registry: Registry) -> dict[str, Any]:
    """Versions with their offline metrics, where each alias points, and the history of moves."""
    versions = registry.list_versions()
    return {
        "aliases": registry.aliases() if versions else {},
        "versions": [
            {
                "version": v.version,
                "aliases": ", ".join(v.aliases),
                "model": v.tags.get("model", ""),
                "test_ade": v.metrics.get("test_ade"),
                "test_fde": v.metrics.get("test_fde"),
                "created_at": v.created_at,
                "run_id": v.run_id,
            }
            for v in versions
        ],
        "history": [e.to_dict() for e in read_history(registry)] if versions else [],
    }
