"""The monitoring service the API holds: prediction log, ground truth, online accuracy, alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from trajops.errors import ServiceUnavailable
from trajops.logpipe.durable import DurableLogWriter
from trajops.logpipe.writer import LogSink, WriterConfig
from trajops.monitoring.accuracy import (
    FeedbackScore,
    Grouping,
    online_performance,
    record_feedback_many,
)
from trajops.monitoring.alerts import AlertManager
from trajops.monitoring.notifiers import notifiers_from_settings
from trajops.privacy import Pseudonymiser, load_or_create_key
from trajops.security.anonymise import bucket_time, stored_array, stored_coordinates
from trajops.security.audit import AUDIT_HOOKS
from trajops.settings import Settings
from trajops.store import Store

if TYPE_CHECKING:
    from trajops.prediction.tracks import Realised


def _log_writer(settings: Settings, store: Store) -> LogSink:
    """The serving log: a write-ahead log here, inserts by a writer process or a thread."""
    config = WriterConfig(
        queue_size=settings.log_queue_size,
        batch_size=settings.log_batch_size,
        flush_interval_s=settings.log_flush_interval_s,
        gather_s=settings.log_gather_s,
    )
    return DurableLogWriter(
        settings.wal_dir,
        store.url,
        settings.spool_dir,
        config,
        consumer=settings.log_writer,
        fsync=settings.log_fsync,
        hooks=AUDIT_HOOKS,
    )


class Monitor:
    """Owns the store, the asynchronous log writer, the pseudonymiser and the alert manager.

    Built in the API's lifespan (or a CLI command) from settings; ``close`` flushes the log.
    """

    def __init__(self, settings: Settings, *, store: Store | None = None) -> None:
        self.settings = settings
        settings.ensure_home()
        try:
            self.store = store or Store(settings.resolved_database_url)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"operational store unreachable: {exc.__class__.__name__}"
            ) from None
        self.pseudonymise = Pseudonymiser(load_or_create_key(settings))
        self.writer = _log_writer(settings, self.store)
        self.alerts = AlertManager(
            self.store, notifiers_from_settings(settings), cooldown_s=settings.alert_cooldown_s
        )

    @classmethod
    def open(cls, settings: Settings) -> Monitor:
        """A started monitor on a store that is not migrated yet (never connects): the
        serving process migrates in the background (:mod:`trajops.store.lifecycle`)."""
        store = Store(settings.resolved_database_url, run_migrations=False)
        return cls(settings, store=store).start()

    def start(self) -> Monitor:
        self.writer.start()
        return self

    def close(self) -> None:
        self.writer.close()
        self.store.dispose()

    # --- hot path ---------------------------------------------------------------------
    def log_prediction(
        self,
        *,
        request_id: str,
        model_name: str,
        model_version: str,
        variant: str,
        agent_ids: Sequence[str],
        scene_id: str | None,
        obs: np.ndarray,
        pred: np.ndarray,
        step_s: float,
        latency_ms: float,
        obs_decimals: int | None = None,
        observed_at: float | None = None,
    ) -> None:
        """Queue one row per agent, encoded once for the request; returns at once.

        Args:
            obs: ``(N, T_obs, 2)`` served inputs.
            pred: ``(N, T_pred, 2)`` served forecasts.
            obs_decimals: places ``obs`` is already rounded to, when it is (the service
                logs its normalised inputs): not rounded again when the store keeps at least
                as many.
            observed_at: Unix seconds of the last observed position by the client's clock
                (``/v1/tracks``), coarsened like ``created_at``.
        """
        bucket_s = self.settings.store_time_bucket_s
        seen = None
        if observed_at is not None:
            seen = bucket_time(datetime.fromtimestamp(observed_at, UTC), bucket_s)
        decimals = self.settings.store_coordinate_decimals
        common = {
            "request_id": request_id,
            "created_at": bucket_time(datetime.now(UTC), bucket_s),
            "model_name": model_name,
            "model_version": model_version,
            "variant": variant,
            "scene_key": self.pseudonymise(scene_id, namespace="scene") if scene_id else None,
            "step_s": step_s,
            "latency_ms": latency_ms,
            "observed_at": seen,
        }
        columns = {
            "agent_key": self.pseudonymise.many(agent_ids),
            "inputs": stored_array(obs, decimals, rounded_to=obs_decimals),
            "outputs": stored_array(pred, decimals),
        }
        self.writer.submit_columns("predictions", common, columns)

    def log_shadow_prediction(
        self,
        *,
        experiment_id: str,
        arm: str,
        request_id: str,
        model_version: str,
        agent_ids: Sequence[str],
        pred: np.ndarray,
    ) -> None:
        """Queue a shadow arm's forecast of a request, one row per agent (pseudonymised as
        :meth:`log_prediction` does, so the rows pair up with the served ones).

        Args:
            pred: ``(N, T_pred, 2)`` the shadow arm's forecasts.
        """
        common = {
            "experiment_id": experiment_id,
            "arm": arm,
            "request_id": request_id,
            "created_at": datetime.now(UTC),
            "model_version": model_version,
        }
        columns = {
            "agent_key": self.pseudonymise.many(agent_ids),
            "outputs": stored_array(pred, self.settings.store_coordinate_decimals),
        }
        self.writer.submit_columns("experiment_shadow_predictions", common, columns)

    # --- ground truth -----------------------------------------------------------------
    def log_realised(self, realised: Sequence[Realised]) -> None:
        """Queue a ``feedback`` row per forecast the streaming route scored itself (through
        the durable log: a replay never duplicates one, the natural key is request + agent)."""
        now = datetime.now(UTC)
        decimals = self.settings.store_coordinate_decimals
        rows = [
            {
                "request_id": r.forecast.request_id,
                "agent_key": r.agent_key,
                "created_at": now,
                "model_version": r.forecast.model_version,
                "variant": r.forecast.variant,
                "positions": stored_coordinates(r.truth[None], decimals)[0],
                "n_steps": int(r.truth.shape[0]),
                "ade": r.ade,
                "fde": r.fde,
            }
            for r in realised
        ]
        self.writer.submit("feedback", rows)

    def feedback(
        self, *, request_id: str, truths: Sequence[tuple[str, list[list[float]]]]
    ) -> list[FeedbackScore]:
        """Score the ground truth of agents of one request, all or nothing.

        Args:
            truths: ``(agent_id as sent, positions (n, 2))`` per agent; ids are pseudonymised
                here, as the prediction rows' were.

        Raises:
            NotFoundError: a prediction not (yet) in the store.
            ConflictError: feedback already recorded for one of the agents.
            ServiceUnavailable: the store is unreachable.
        """
        keyed = [(self.pseudonymise(agent_id), positions) for agent_id, positions in truths]
        try:
            return record_feedback_many(self.store, request_id=request_id, truths=keyed)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"operational store unreachable, feedback not recorded (retry later): {exc.__class__.__name__}"
            ) from None

    def performance(self, window: timedelta, *, by: Grouping | None = None) -> list[dict[str, Any]]:
        """Online accuracy of the feedback in ``window`` (see :func:`online_performance`)."""
        try:
            return online_performance(self.store, window=window, by=by)
        except SQLAlchemyError as exc:
            raise ServiceUnavailable(
                f"operational store unreachable: {exc.__class__.__name__}"
            ) from None

    def health(self) -> dict[str, Any]:
        """Store reachability and the writer's state, for ``/readyz``."""
        reachable = self.store.ping()
        return {
            "status": "ok" if reachable else "degraded",
            "reachable": reachable,
            "writer_healthy": self.writer.healthy,
            "pending": self.writer.pending,
            # rows accepted but not yet inserted or spooled (a writer process's queue included)
            "unwritten": max(0, self.writer.submitted - self.writer.handled),
            "spooled": self.writer.spool_size(),
        }
