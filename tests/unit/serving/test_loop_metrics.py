"""The request path's lock-free series expose exactly what prometheus_client's own would."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from trajops.serving.loop_metrics import LoopCounter, LoopHistogram
from trajops.serving.metrics import LATENCY_BUCKETS, ServingMetrics

# latencies on, between and beyond the bounds, and a zero
_SECONDS = [0.0, 0.0004, 0.0005, 0.00051, 0.003, 0.01, 0.7, 2.5, 9.99, 10.0, 42.0]


def _without_created(text: str) -> str:
    return re.sub(r"(?m)^(\w+_created\{[^}]*\}) \S+$", r"\1 <t>", text)


def test_exposition_matches_prometheus_client() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    labels = ["route", "method", "status"]
    counters = (
        Counter("x_requests", "Requests.", labels, registry=theirs),
        LoopCounter("x_requests", "Requests.", labels, registry=ours),
    )
    histograms = (
        Histogram("x_seconds", "Latency.", labels, buckets=LATENCY_BUCKETS, registry=theirs),
        LoopHistogram("x_seconds", "Latency.", labels, buckets=LATENCY_BUCKETS, registry=ours),
    )
    for i, seconds in enumerate(_SECONDS):
        key = ("/v1/predict", "POST", "200" if i % 3 else "422")
        for counter in counters:
            counter.labels(*key).inc()
            counter.labels(*key).inc(2.5)
        for histogram in histograms:
            histogram.labels(*key).observe(seconds)
    expected = _without_created(generate_latest(theirs).decode())
    assert _without_created(generate_latest(ours).decode()) == expected
    assert (
        'x_seconds_bucket{le="0.0005",method="POST",route="/v1/predict",status="200"}' in expected
    )
    assert "x_requests_created{" in expected and "x_seconds_created{" in expected


def test_a_counter_refuses_to_go_down_and_labels_must_match() -> None:
    counter = LoopCounter("y", "Y.", ["a", "b"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="non-negative"):
        counter.labels("1", "2").inc(-1)
    with pytest.raises(ValueError, match="takes labels"):
        counter.labels("1")
    assert counter.labels("1", "2") is counter.labels("1", "2")  # one series per label set


def test_the_names_stay_taken_in_the_registry() -> None:
    metrics = ServingMetrics()
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("trajops_http_requests", "again", registry=metrics.registry)


def test_the_service_exposes_its_request_series() -> None:
    metrics = ServingMetrics()
    metrics.observe_request(
        route="/v1/predict", method="POST", status=200, model_version="3", seconds=0.002
    )
    metrics.predictions.labels("default", "3").inc()
    text = metrics.render()[0].decode()
    assert (
        'trajops_http_requests_total{method="POST",model_version="3",route="/v1/predict",'
        'status="200"} 1.0' in text
    )
    assert (
        'trajops_http_request_duration_seconds_bucket{le="0.0025",model_version="3",'
        'route="/v1/predict",status="200"} 1.0' in text
    )
    assert 'trajops_predictions_total{model_version="3",variant="default"} 1.0' in text
