"""A broken model version promoted under steady load: the pool's smoke test rejects it, the
champion keeps serving, an alert is raised.

Two kinds of broken: a version whose pickled model is corrupted on disk (it cannot be loaded)
and a version that loads but raises on every prediction (the smoke test catches it). In both
cases ``champion`` is moved to the broken version while requests flow.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient

from tests._support.faults import corrupt_version, register_flaky
from tests._support.load import SteadyLoad, server_errors
from tests._support.mlflow_uris import mlflow_uris
from tests._support.registry import MODEL, build_registry
from tests._support.replica import service_settings, serving
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import log_forecaster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLL_S = 0.3


def broken_version(registry_root: Path, kind: str) -> tuple[str, str]:
    """A registry whose champion is v1 (CV) and whose v2 is broken in the way ``kind`` says."""
    registry = build_registry(registry_root)
    if kind == "raising":
        version = register_flaky(
            registry.uri, model_name=MODEL, fail_above_x=-math.inf, experiment_name="serving-tests"
        )
    else:
        with (
            mlflow_uris(registry.uri),
            mlflow.start_run(
                experiment_id=registry.client.get_experiment_by_name("serving-tests").experiment_id
            ),
        ):
            log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
        version = "2"
        corrupt_version(registry.client, model_name=MODEL, version=version)
    return registry.uri, version


@pytest.mark.parametrize("kind", ["raising", "corrupted"])
def test_broken_version_is_rejected_and_alerted(tmp_path: Path, kind: str) -> None:
    uri, broken = broken_version(tmp_path / "registry", kind)
    client = MlflowClient(uri, registry_uri=uri)
    settings = service_settings(
        tmp_path / "home", tracking_uri=uri, poll_interval_s=POLL_S, alert_interval_s=0.5
    )
    with serving(settings) as (url, http):
        key = {"X-API-Key": http.headers["X-API-Key"]}
        with SteadyLoad(url, headers=key, rate_per_s=80) as load:
            load.wait_requests(50)
            client.set_registered_model_alias(MODEL, "champion", broken)
            moved_at = time.monotonic()
            deadline = moved_at + 20
            alerts: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                found = http.get("/v1/monitoring/alerts", params={"status": "firing"}).json()
                alerts = [a for a in found["alerts"] if a["rule"] == "model_load_failure"]
                if alerts:
                    break
                time.sleep(0.3)
            load.wait_requests(100)
        outcomes = load.outcomes()
        models = http.get("/v1/models").json()
        ready = http.get("/readyz")
        metrics = http.get("/metrics").text

    assert len(outcomes) >= 150, "the load must be real"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    assert all(o.status == 200 for o in outcomes), [o for o in outcomes if o.status != 200][:3]
    assert {o.version for o in outcomes} == {"1"}, "the champion kept serving"
    assert models["aliases"]["champion"] == "1"
    assert broken not in {v["version"] for v in models["versions"]}
    assert "champion" in models["errors"], models["errors"]
    assert f"version {broken}" in models["errors"]
    assert ready.status_code == 200
    assert alerts, "a model_load_failure alert fired"
    assert alerts[0]["severity"] == "critical"
    failures = [
        line for line in metrics.splitlines() if line.startswith("trajops_model_loads_total")
    ]
    assert any('result="failure"' in line and float(line.split()[-1]) >= 1 for line in failures)
