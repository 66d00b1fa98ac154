"""Prometheus metrics of one app instance, in its own ``CollectorRegistry``.

A per-app registry (not the process-global one) lets several apps live in one process (tests,
embedded use) without duplicate-metric errors, and keeps the exposition to what this service
owns. With several uvicorn workers each worker exposes its own counters; scrape each replica
or put the workers behind separate ports.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from trajops.evaluation.metrics import MISS_THRESHOLD_M

if TYPE_CHECKING:
    from trajops.logpipe import LogSink

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
"""Seconds; the service answers in about a millisecond, so the low end is fine-grained."""

ERROR_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Metres; ETH/UCY forecasters score 0.3-1.5 m ADE, a broken one several metres."""

PREDICT_ROUTE = "/v1/predict"
"""``route`` label of prediction requests (the p99 latency alert reads it)."""

NO_MODEL = ""
"""``model_version`` label of requests that no model served (health checks, errors)."""

NO_SCENE = "none"
"""``scene`` label of feedback whose prediction was sent without a scene."""

OTHER_SCENES = "other"
"""``scene`` label of every scene past the first ``max_scene_labels`` this process has seen."""


class ServingMetrics:
    """Every metric the prediction service exports.

    Args:
        registry: the registry to register in (default: a new one of this instance's own).
        max_scene_labels: most distinct ``scene`` labels of the per-scene online metrics; the
            scenes seen after them share the label ``other`` (bounded series count).

    Attributes:
        registry: the registry ``/metrics`` renders.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, max_scene_labels: int = 20
    ) -> None:
        if max_scene_labels < 0:
            raise ValueError(f"max_scene_labels must be >= 0, got {max_scene_labels}")
        self.max_scene_labels = max_scene_labels
        self._scenes: set[str] = set()
        self._scenes_lock = threading.Lock()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "trajops_http_requests",
            "HTTP requests by route template, method, status and model version.",
            ["route", "method", "status", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "trajops_http_request_duration_seconds",
            "Server-side request latency by route template, status and model version.",
            ["route", "status", "model_version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "trajops_predictions",
            "Prediction requests answered, by experiment variant and model version.",
            ["variant", "model_version"],
            registry=r,
        )
        self.predicted_agents = Counter(
            "trajops_predicted_agents",
            "Agents forecast, by experiment variant.",
            ["variant"],
            registry=r,
        )
        self.cache_lookups = Counter(
            "trajops_cache_lookups",
            "Prediction cache lookups by result (hit, miss, error).",
            ["backend", "result"],
            registry=r,
        )
        self.cache_errors = Counter(
            "trajops_cache_errors",
            "Prediction cache failures by operation (a failure never fails a request).",
            ["backend", "op"],
            registry=r,
        )
        self.model_loads = Counter(
            "trajops_model_loads",
            "Model loads by result (success, failure).",
            ["result"],
            registry=r,
        )
        self.model_load_seconds = Histogram(
            "trajops_model_load_duration_seconds",
            "Seconds to download, load and smoke-test one model version.",
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=r,
        )
        self.model_swaps = Counter(
            "trajops_model_swaps",
            "Alias moves picked up and swapped in, by alias.",
            ["alias"],
            registry=r,
        )
        self.model_loaded = Gauge(
            "trajops_model_loaded",
            "1 for each model version held in memory.",
            ["version"],
            registry=r,
        )
        self.online_ade = Histogram(
            "trajops_online_ade_meters",
            "ADE of each scored ground-truth feedback (online accuracy), metres.",
            ["model_version", "variant"],
            buckets=ERROR_BUCKETS,
            registry=r,
        )
        self.online_fde = Histogram(
            "trajops_online_fde_meters",
            "FDE (error at the last step given) of each scored feedback, metres.",
            ["model_version", "variant"],
            buckets=ERROR_BUCKETS,
            registry=r,
        )
        self.online_ade_by_scene = Histogram(
            "trajops_online_ade_by_scene_meters",
            "ADE of each scored feedback by scene pseudonym (first scenes seen; the rest "
            "'other', no scene 'none'), metres.",
            ["model_version", "scene"],
            buckets=ERROR_BUCKETS,
            registry=r,
        )
        self.online_misses = Counter(
            "trajops_online_misses",
            f"Scored feedbacks whose FDE is above {MISS_THRESHOLD_M} m, by scene pseudonym "
            "(divide by trajops_online_ade_by_scene_meters_count for the miss rate).",
            ["model_version", "scene"],
            registry=r,
        )
        self.offline_ade = Gauge(
            "trajops_offline_ade_meters",
            "Test ADE logged at training for each model version seen by this process.",
            ["model_version"],
            registry=r,
        )
        self.auth_failures = Counter(
            "trajops_auth_failures",
            "Requests refused by authentication, authorisation or rate limit, by reason.",
            ["reason"],
            registry=r,
        )
        self.ratelimit_fallbacks = Counter(
            "trajops_ratelimit_fallbacks",
            "Requests rate-limited in-process because Redis was unreachable.",
            registry=r,
        )
        self.log_backpressure = Counter(
            "trajops_log_backpressure_seconds",
            "Seconds requests waited for the log writer to catch up (sustained overload).",
            registry=r,
        )
        self.drift_runs = Counter(
            "trajops_drift_runs",
            "Drift runs started by this process, by result (no_drift, drift, skipped, error).",
            ["result"],
            registry=r,
        )
        self._log_collector: Collector | None = None

    def watch_log_writer(self, writer: LogSink | None) -> None:
        """Export the log writer's queue, spool and health (``None`` stops exporting)."""
        if self._log_collector is not None:
            self.registry.unregister(self._log_collector)
            self._log_collector = None
        if writer is not None:
            self._log_collector = _LogWriterCollector(writer)
            self.registry.register(self._log_collector)

    def observe_request(
        self, *, route: str, method: str, status: int, model_version: str, seconds: float
    ) -> None:
        """Count one finished HTTP request and its latency."""
        code = str(status)
        self.requests.labels(route, method, code, model_version).inc()
        self.latency.labels(route, code, model_version).observe(seconds)

    def observe_online(
        self,
        *,
        model_version: str,
        variant: str,
        scene_key: str | None,
        ade: float,
        fde: float,
        n_steps: int,
    ) -> None:
        """Record one scored ground truth: online ADE/FDE per version and variant, and per
        scene the ADE and whether it missed (FDE above ``MISS_THRESHOLD_M``).

        Args:
            scene_key: the prediction's scene pseudonym (``None``: sent without a scene).
            n_steps: positions scored; ``fde`` is the error at the last of them (a miss of a
                partial future is a miss at that horizon, as in ``online_performance``).
        """
        self.online_ade.labels(model_version, variant).observe(ade)
        self.online_fde.labels(model_version, variant).observe(fde)
        scene = self.scene_label(scene_key)
        self.online_ade_by_scene.labels(model_version, scene).observe(ade)
        missed = self.online_misses.labels(model_version, scene)  # 0 until a miss: rates work
        if fde > MISS_THRESHOLD_M:
            missed.inc()

    def scene_label(self, scene_key: str | None) -> str:
        """The ``scene`` label of ``scene_key``: itself while fewer than ``max_scene_labels``
        scenes were labelled (or it is one of them), ``other`` past that, ``none`` without one."""
        if scene_key is None:
            return NO_SCENE
        with self._scenes_lock:
            if scene_key in self._scenes:
                return scene_key
            if len(self._scenes) < self.max_scene_labels:
                self._scenes.add(scene_key)
                return scene_key
        return OTHER_SCENES

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LogWriterCollector(Collector):
    """Reads the prediction/audit log writer's counters at scrape time (nothing on the hot path)."""

    def __init__(self, writer: LogSink) -> None:
        self.writer = writer

    def collect(self) -> Iterator[Metric]:
        w = self.writer
        yield CounterMetricFamily(
            "trajops_log_rows_written",
            "Log rows (predictions, feedback, audit) inserted into the store.",
            value=w.written,
        )
        yield CounterMetricFamily(
            "trajops_log_rows_spooled",
            "Log rows written to the local spool because the store was unreachable.",
            value=w.spooled,
        )
        yield GaugeMetricFamily(
            "trajops_log_queue_rows", "Log rows queued in memory, not yet written.", value=w.pending
        )
        yield GaugeMetricFamily(
            "trajops_log_spool_backlog_rows",
            "Log rows waiting in spool files for the store to come back.",
            value=w.spool_size(),
        )
        yield GaugeMetricFamily(
            "trajops_log_writer_healthy",
            "1 while the last write to the store succeeded, 0 while spooling.",
            value=1.0 if w.healthy else 0.0,
        )


def p99_ms(cumulative: dict[float, float], q: float = 0.99) -> float | None:
    """Quantile ``q`` in ms of a cumulative histogram ``{le: count}`` (Prometheus-style linear
    interpolation inside the bucket); ``None`` without observations."""
    if not cumulative:
        return None
    total = cumulative.get(float("inf"), max(cumulative.values()))
    if total <= 0:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for le, count in sorted(cumulative.items()):
        if count >= rank:
            if le == float("inf"):
                return lower * 1e3  # beyond the last finite bucket: its bound, like Prometheus
            share = (rank - below) / (count - below) if count > below else 1.0
            return (lower + (le - lower) * share) * 1e3
        lower, below = le, count
    return lower * 1e3
