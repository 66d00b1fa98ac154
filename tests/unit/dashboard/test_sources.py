"""The dashboard's data layer without Streamlit: live figures from real Prometheus expositions
of the service's metrics, and the CLI refusing bad options with a clear message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trajops.dashboard.live import SampleHistory, live_figures, parse_metrics
from trajops.dashboard.sources import mean_interval
from trajops.monitoring.metrics import ServingMetrics

TRAJOPS = str(Path(sys.executable).with_name("trajops"))


def _exposition(metrics: ServingMetrics) -> str:
    return metrics.render()[0].decode()


def test_live_figures_between_two_scrapes() -> None:
    m = ServingMetrics()
    for _ in range(8):
        m.observe_request(
            route="/v1/predict", method="POST", status=200, model_version="1", seconds=0.002
        )
    m.cache_lookups.labels("memory", "miss").inc(8)
    first = parse_metrics(_exposition(m), at=100.0)
    for status in (200, 200, 500, 200):
        m.observe_request(
            route="/v1/predict", method="POST", status=status, model_version="1", seconds=0.02
        )
    m.cache_lookups.labels("memory", "hit").inc(3)
    m.cache_lookups.labels("memory", "miss").inc(1)
    second = parse_metrics(_exposition(m), at=102.0)

    since_start = live_figures(first)
    assert since_start.span_s is None and since_start.request_rate is None
    assert since_start.requests == 8 and since_start.cache_hit_rate == 0.0
    assert 1.0 < since_start.latency_ms[0.99] <= 2.5  # type: ignore[operator]

    fig = live_figures(second, first)
    assert fig.span_s == 2.0 and fig.requests == 4 and fig.request_rate == 2.0
    assert fig.error_rate == 0.25
    assert fig.cache_hit_rate == 0.75
    assert 10.0 < fig.latency_ms[0.5] <= 25.0  # type: ignore[operator]

    history = SampleHistory(keep=3)
    for sample in (first, second):
        history.add(sample)
    assert [r["request_rate"] for r in history.rates()] == [2.0]
    history.add(parse_metrics(_exposition(ServingMetrics()), at=103.0))  # a restarted process
    assert len(history.samples) == 1 and history.latest().requests == 0  # type: ignore[union-attr]


def test_mean_interval_covers_the_mean() -> None:
    import numpy as np

    low, high = mean_interval(np.array([0.5, 1.0, 0.5, 1.0]))  # type: ignore[misc]
    assert low < 0.75 < high
    assert mean_interval(np.array([0.5])) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port must be between 1 and 65535"),
        (["--api-url", "localhost:8000"], "must start with http:// or https://"),
        (["--refresh", "-1"], "--refresh must be >= 0"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [TRAJOPS, "dashboard", *args],
        env={"PATH": "/usr/bin:/bin", "TRAJOPS_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_without_streamlit_names_the_extra(tmp_path: Path) -> None:
    """The serve image has no Streamlit: `trajops dashboard` says which extra installs it."""
    code = (
        "import sys, importlib.util as u; found = u.find_spec; "
        "u.find_spec = lambda name, *a: None if name == 'streamlit' else found(name, *a); "
        "sys.argv = ['trajops', 'dashboard']; from trajops.cli.main import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "TRAJOPS_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "pip install 'trajops[dashboard]'" in done.stderr
    assert "Traceback" not in done.stderr
