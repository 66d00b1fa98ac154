"""Live figures from the service's ``/metrics``: request rate, latency percentiles, error and
cache hit rates.

Prometheus counters only grow, so a rate needs two scrapes: :class:`MetricsSample` is one
scrape, :func:`live_figures` compares the newest with an older one (or with zero, i.e. since the
process started, when there is only one). With several replicas behind a load balancer a scrape
reaches one of them: the store-based traffic series (:mod:`trajops.dashboard.sources`) covers all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from trajops.monitoring.metrics import PREDICT_ROUTE, p99_ms

QUANTILES = (0.5, 0.95, 0.99)
"""Latency percentiles shown."""


@dataclass(frozen=True)
class MetricsSample:
    """The counters the dashboard needs from one scrape.

    Attributes:
        at: ``time.time()`` of the scrape.
        requests: HTTP requests answered, every route.
        errors: of which 5xx.
        predict_requests: ``/v1/predict`` requests answered.
        predictions: prediction requests answered by a model.
        cache_hits, cache_misses: prediction cache lookups.
        latency_buckets: cumulative ``{le seconds: count}`` of ``/v1/predict`` latency.
        online_ade_sum, online_ade_count: scored feedback (every version).
    """

    at: float
    requests: float = 0.0
    errors: float = 0.0
    predict_requests: float = 0.0
    predictions: float = 0.0
    cache_hits: float = 0.0
    cache_misses: float = 0.0
    latency_buckets: dict[float, float] = field(default_factory=dict)
    online_ade_sum: float = 0.0
    online_ade_count: float = 0.0


def parse_metrics(text: str, *, at: float | None = None) -> MetricsSample:
    """Read one Prometheus text exposition of ``trajops serve``."""
    totals = {
        "requests": 0.0,
        "errors": 0.0,
        "predict_requests": 0.0,
        "predictions": 0.0,
        "cache_hits": 0.0,
        "cache_misses": 0.0,
        "online_ade_sum": 0.0,
        "online_ade_count": 0.0,
    }
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            if s.name == "trajops_http_requests_total":
                totals["requests"] += s.value
                if labels.get("status", "").startswith("5"):
                    totals["errors"] += s.value
                if labels.get("route") == PREDICT_ROUTE:
                    totals["predict_requests"] += s.value
            elif s.name == "trajops_http_request_duration_seconds_bucket":
                if labels.get("route") == PREDICT_ROUTE:
                    le = float(labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
            elif s.name == "trajops_predictions_total":
                totals["predictions"] += s.value
            elif s.name == "trajops_cache_lookups_total":
                if labels.get("result") == "hit":
                    totals["cache_hits"] += s.value
                elif labels.get("result") == "miss":
                    totals["cache_misses"] += s.value
            elif s.name == "trajops_online_ade_meters_sum":
                totals["online_ade_sum"] += s.value
            elif s.name == "trajops_online_ade_meters_count":
                totals["online_ade_count"] += s.value
    return MetricsSample(at=time.time() if at is None else at, latency_buckets=buckets, **totals)


@dataclass(frozen=True)
class LiveFigures:
    """What the traffic panel shows; ``None`` where there was nothing to measure.

    Attributes:
        span_s: seconds between the two scrapes (``None``: since the process started).
        requests: requests in the span.
        request_rate: requests per second (needs two scrapes).
        error_rate: share of 5xx answers.
        cache_hit_rate: share of cache lookups that hit.
        latency_ms: ``{0.5: p50, 0.95: p95, 0.99: p99}`` of ``/v1/predict`` in milliseconds.
    """

    span_s: float | None
    requests: float
    request_rate: float | None
    error_rate: float | None
    cache_hit_rate: float | None
    latency_ms: dict[float, float | None]


def live_figures(current: MetricsSample, previous: MetricsSample | None = None) -> LiveFigures:
    """Figures over the span between ``previous`` and ``current`` (since start without one).

    A counter that went down means the process restarted: the span starts at zero again.
    """
    base = previous
    if base is not None and (current.requests < base.requests or current.at <= base.at):
        base = None
    zero = MetricsSample(at=current.at)
    b = base or zero
    requests = current.requests - b.requests
    errors = current.errors - b.errors
    hits = current.cache_hits - b.cache_hits
    lookups = hits + current.cache_misses - b.cache_misses
    delta = {
        le: n - b.latency_buckets.get(le, 0.0) for le, n in sorted(current.latency_buckets.items())
    }
    span = current.at - base.at if base is not None else None
    return LiveFigures(
        span_s=span,
        requests=requests,
        request_rate=requests / span if span else None,
        error_rate=errors / requests if requests > 0 else None,
        cache_hit_rate=hits / lookups if lookups > 0 else None,
        latency_ms={q: p99_ms(delta, q) for q in QUANTILES},
    )


class SampleHistory:
    """The last scrapes of one dashboard session (oldest first), bounded."""

    def __init__(self, keep: int = 120) -> None:
        self.keep = keep
        self.samples: list[MetricsSample] = []

    def add(self, sample: MetricsSample) -> None:
        if self.samples and sample.requests < self.samples[-1].requests:
            self.samples.clear()  # the service restarted: older counters are another process's
        self.samples.append(sample)
        del self.samples[: -self.keep]

    def latest(self) -> LiveFigures | None:
        """Figures between the last two scrapes (since start with only one)."""
        if not self.samples:
            return None
        previous = self.samples[-2] if len(self.samples) > 1 else None
        return live_figures(self.samples[-1], previous)

    def rates(self) -> list[dict[str, float | None]]:
        """One row per pair of consecutive scrapes: time, request rate, error rate, p99."""
        rows: list[dict[str, float | None]] = []
        for prev, cur in zip(self.samples, self.samples[1:], strict=False):
            fig = live_figures(cur, prev)
            rows.append(
                {
                    "at": cur.at,
                    "request_rate": fig.request_rate,
                    "error_rate": fig.error_rate,
                    "p99_ms": fig.latency_ms[0.99],
                }
            )
        return rows
