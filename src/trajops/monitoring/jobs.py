"""Monitoring jobs of a serving process: offline accuracy, health snapshots, drift and alerts.

No HTTP here (the routes in :mod:`trajops.serving.routes.monitoring` are thin). Every store,
registry or Evidently call blocks, so each runs in a worker thread; the periodic jobs are
asyncio tasks started by the lifespan when ``drift_interval_s`` / ``alert_interval_s`` > 0.

The health snapshot the alert rules read is measured from this process's own Prometheus
metrics, as the difference between two evaluations: p99 latency of ``/v1/predict`` and the
share of 5xx responses in the interval, and model-load failures counted by the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from trajops.errors import ServiceUnavailable, TrajopsError, ValidationError
from trajops.monitoring.alerts import HealthSnapshot, evaluate_rules
from trajops.monitoring.metrics import PREDICT_ROUTE, ServingMetrics, p99_ms
from trajops.store.lifecycle import store_call

if TYPE_CHECKING:
    from trajops.monitoring.reference import Reference
    from trajops.monitoring.service import Monitor
    from trajops.registry.adapter import Registry
    from trajops.security.audit_anchors import AnchorLog
    from trajops.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobsConfig:
    """Tuning of the in-service monitoring jobs."""

    accuracy_window: timedelta = timedelta(hours=1)
    """Feedback window the accuracy rule compares with the offline ADE."""
    offline_retry_s: float = 60.0
    """How long a version without offline metrics (or an unreachable registry) is remembered."""
    registry_timeout_s: float = 10.0


class OfflineMetrics:
    """Offline ``test_ade`` / ``test_fde`` of each model version, read once from the registry."""

    def __init__(
        self, settings: Settings, metrics: ServingMetrics, config: JobsConfig | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.config = config or JobsConfig()
        self._registry: Registry | None = None
        self._known: dict[str, dict[str, float]] = {}
        self._missing_until: dict[str, float] = {}
        self._references: dict[str, Reference] = {}
        self._pending: dict[str, asyncio.Task[dict[str, float]]] = {}

    def registry(self) -> Registry:
        """The registry adapter (blocking: call from a worker thread)."""
        if self._registry is None:
            from mlflow import MlflowClient

            from trajops.registry.adapter import Registry

            # Not Registry.from_settings: that also sets MLflow's process-wide URIs, which
            # belong to whoever embeds the app (tests run several apps in one process).
            s = self.settings
            client = MlflowClient(s.resolved_tracking_uri, s.resolved_registry_uri)
            self._registry = Registry(client, s.model_name, uri=s.resolved_registry_uri)
        return self._registry

    def _fetch(self, version: str) -> dict[str, float]:
        found = self.registry().resolve(version).metrics
        return {k: found[k] for k in ("test_ade", "test_fde") if k in found}

    async def get(self, version: str) -> dict[str, float]:
        """``{"test_ade", "test_fde"}`` of ``version`` (empty when unknown); never raises."""
        if version in self._known:
            return self._known[version]
        if self._missing_until.get(version, 0.0) > time.monotonic():
            return {}
        try:
            with anyio.fail_after(self.config.registry_timeout_s):
                found = await anyio.to_thread.run_sync(self._fetch, version, abandon_on_cancel=True)
        except Exception as exc:  # the registry is optional for monitoring
            log.info("offline metrics of version %s unavailable: %s", version, exc)
            found = {}
        if "test_ade" in found:
            self._known[version] = found
            self.metrics.offline_ade.labels(version).set(found["test_ade"])
        else:
            self._missing_until[version] = time.monotonic() + self.config.offline_retry_s
        return found

    def prefetch(self, version: str) -> None:
        """Look ``version`` up in the background (sets the offline gauge); returns at once."""
        if version in self._known or version in self._pending:
            return
        task = asyncio.create_task(self.get(version), name=f"trajops-offline-{version}")
        self._pending[version] = task
        task.add_done_callback(lambda _: self._pending.pop(version, None))

    async def reference(self, version: str) -> Reference:
        """The drift reference logged with ``version``'s training run (cached)."""
        if version not in self._references:
            from trajops.monitoring.reference import load_reference

            self._references[version] = await anyio.to_thread.run_sync(
                lambda: load_reference(self.registry(), version)
            )
        return self._references[version]


class MetricsWindow:
    """p99 latency, error rate and load failures since the previous :meth:`measure`."""

    def __init__(self, metrics: ServingMetrics) -> None:
        self.metrics = metrics
        self._last = self._totals()

    def _totals(self) -> dict[str, Any]:
        buckets: dict[float, float] = {}
        requests = errors = failures = 0.0
        for family in self.metrics.registry.collect():
            for s in family.samples:
                if s.name == "trajops_http_request_duration_seconds_bucket":
                    if s.labels.get("route") == PREDICT_ROUTE:
                        le = float(s.labels["le"])
                        buckets[le] = buckets.get(le, 0.0) + s.value
                elif s.name == "trajops_http_requests_total":
                    requests += s.value
                    if s.labels.get("status", "").startswith("5"):
                        errors += s.value
                elif s.name == "trajops_model_loads_total" and s.labels["result"] == "failure":
                    failures += s.value
        return {"buckets": buckets, "requests": requests, "errors": errors, "failures": failures}

    def measure(self) -> tuple[float | None, float | None, int]:
        """``(p99 latency in ms or None, error rate or None, model-load failures)``."""
        now, last = self._totals(), self._last
        self._last = now
        delta = {le: n - last["buckets"].get(le, 0.0) for le, n in sorted(now["buckets"].items())}
        requests = now["requests"] - last["requests"]
        error_rate = (now["errors"] - last["errors"]) / requests if requests > 0 else None
        return p99_ms(delta), error_rate, int(now["failures"] - last["failures"])


class MonitoringJobs:
    """Drift runs and alert evaluations, on demand and on a schedule."""

    def __init__(
        self,
        *,
        settings: Settings,
        monitor: Monitor,
        default_version: Callable[[], str | None],
        metrics: ServingMetrics,
        offline: OfflineMetrics,
        config: JobsConfig | None = None,
    ) -> None:
        self.settings = settings
        self.monitor = monitor
        self.default_version = default_version
        self.metrics = metrics
        self.offline = offline
        self.config = config or JobsConfig()
        self.window = MetricsWindow(metrics)
        self._tasks: list[asyncio.Task[None]] = []
        self._anchors: AnchorLog | None = None

    # --- on demand -------------------------------------------------------------------
    async def run_drift(self, *, window: int | None = None) -> dict[str, Any]:
        """One drift run of recent served inputs against the default model's reference.

        Raises:
            ServiceUnavailable: no default model loaded, or the store is unreachable.
            ModelNotFoundError: the model was logged without a reference profile.
            ValidationError: fewer served inputs than ``drift_min_inputs``.
        """
        from trajops.monitoring.drift_job import run_drift

        version = self.default_version()
        if version is None:
            raise ServiceUnavailable("no default model loaded: nothing to compare drift against")
        reference = await self.offline.reference(version)
        try:
            summary = await store_call(
                lambda: run_drift(
                    self.settings,
                    self.monitor.store,
                    reference,
                    model_version=version,
                    window=window,
                    alerts=self.monitor.alerts,
                )
            )
        except ValidationError:
            self.metrics.drift_runs.labels("skipped").inc()
            raise
        self.metrics.drift_runs.labels("drift" if summary["dataset_drift"] else "no_drift").inc()
        return summary

    async def snapshot(self) -> HealthSnapshot:
        """What the alert rules look at now (see the module docstring)."""
        p99, error_rate, failures = self.window.measure()
        rows = await anyio.to_thread.run_sync(self.monitor.performance, self.config.accuracy_window)
        online: dict[str, tuple[int, float]] = {}
        for row in rows:  # per version and variant -> per version, weighted by n
            n, ade = online.get(row["model_version"], (0, 0.0))
            total = n + row["n"]
            online[row["model_version"]] = (total, (ade * n + row["ade"] * row["n"]) / total)
        offline = {}
        for version in online:
            found = await self.offline.get(version)
            if "test_ade" in found:
                offline[version] = found["test_ade"]
        return HealthSnapshot(
            online_ade=online,
            offline_ade=offline,
            p99_latency_ms=p99,
            error_rate=error_rate,
            model_load_failures=failures,
        )

    async def checkpoint_audit(self) -> None:
        """Checkpoint the audit chain's head outside the store (signed; see
        :mod:`trajops.security.audit_anchors`)."""
        from trajops.security.audit_anchors import AnchorLog
        from trajops.security.audit_chain import chain_head

        def checkpoint() -> None:
            with self.monitor.store.session() as session:
                head_id, head_hash = chain_head(session)
            if head_id:
                if self._anchors is None:  # its key is read (or made) once, on first use
                    self._anchors = AnchorLog.from_settings(self.settings)
                self._anchors.append(head_id, head_hash)

        await store_call(checkpoint)

    async def evaluate_alerts(self) -> list[dict[str, Any]]:
        """Evaluate every rule once and apply it; returns the alerts that were notified."""
        snapshot = await self.snapshot()
        signals = evaluate_rules(snapshot, self.settings)
        return await store_call(lambda: self.monitor.alerts.apply(signals))

    # --- on a schedule ---------------------------------------------------------------
    def start(self) -> None:
        """Start the periodic jobs that settings enable."""
        if self.settings.drift_interval_s > 0:
            self._spawn("trajops-drift-job", self.settings.drift_interval_s, self._drift_once)
        if self.settings.alert_interval_s > 0:
            self._spawn("trajops-alert-job", self.settings.alert_interval_s, self.evaluate_alerts)
        if self.settings.audit_anchor_interval_s > 0:
            interval = self.settings.audit_anchor_interval_s
            self._spawn("trajops-audit-checkpoint", interval, self.checkpoint_audit)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _drift_once(self) -> None:
        try:
            summary = await self.run_drift()
        except ValidationError as exc:
            log.info("periodic drift run skipped: %s", exc.message)
            return
        except TrajopsError:
            self.metrics.drift_runs.labels("error").inc()
            raise
        log.info(
            "drift run %s: dataset_drift=%s drifted=%s",
            summary.get("id"),
            summary["dataset_drift"],
            summary["drifted_features"],
        )

    def _spawn(self, name: str, interval_s: float, job: Callable[[], Awaitable[Any]]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval_s)
                try:
                    await job()
                except TrajopsError as exc:
                    log.warning("%s failed: %s", name, exc.message)
                except Exception:  # a periodic job must outlive any single failure
                    log.exception("%s failed", name)

        self._tasks.append(asyncio.create_task(loop(), name=name))
