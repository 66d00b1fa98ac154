"""The MLflow tracking server killed under steady load: serving continues on the loaded models,
``/readyz`` reports the registry as degraded, and alias polling resumes when it returns.

The replica's registry is a private ``mlflow server`` (SQLite backend, proxied artifacts); it is
SIGKILLed while requests flow and started again on the same port; then ``champion`` moves to
version 2 and the replica must pick it up through its poller.
"""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests._support.load import SteadyLoad, server_errors
from tests._support.mlflow_server import private_mlflow_server
from tests._support.mlflow_uris import mlflow_uris
from tests._support.replica import service_settings, serving
from tests._support.waiting import eventually
from trajops.models import ConstantVelocity
from trajops.models.pyfunc import log_forecaster
from trajops.prediction.pool import PoolConfig
from trajops.serving import AppOptions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "trajectory-forecaster"
POLL_S = 0.5


def test_mlflow_server_down_under_load(tmp_path: Path) -> None:
    with private_mlflow_server(tmp_path / "mlflow") as server:
        client = MlflowClient(server.url, registry_uri=server.url)
        with mlflow_uris(server.url):
            for _ in range(2):
                with mlflow.start_run():
                    log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
        client.set_registered_model_alias(MODEL, "champion", "1")
        settings = service_settings(
            tmp_path / "home", tracking_uri=server.url, poll_interval_s=POLL_S
        )
        options = AppOptions(freeze_gc=False, pool=PoolConfig(registry_timeout_s=1.0))
        with serving(settings, options) as (url, http):
            key = {"X-API-Key": http.headers["X-API-Key"]}
            with SteadyLoad(url, headers=key, rate_per_s=100) as load:
                load.wait_requests(100)
                server.kill()
                killed_at = time.monotonic()
                load.wait_requests(200)
                ready = http.get("/readyz")
                models_down = http.get("/v1/models").json()
                server.start()
                client.set_registered_model_alias(MODEL, "champion", "2")
                moved_at = time.monotonic()
                swapped = load.wait_for(
                    lambda out: any(o.version == "2" for o in out), timeout_s=30
                )
                load.wait_requests(50)
            outcomes = load.outcomes()
            ready_after = eventually(  # a loaded machine may miss one 1 s probe
                lambda: http.get("/readyz").json()["checks"]["registry"],
                lambda registry: registry["ok"],
                timeout_s=30,
                every_s=0.5,
            )

    assert len(outcomes) >= 350, "the load must be real"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    during = [o for o in outcomes if killed_at < o.started < moved_at]
    assert len(during) >= 150 and {o.version for o in during} == {"1"}, "served from memory"
    assert ready.status_code == 200, "the registry is not required while a model is loaded"
    registry = ready.json()["checks"]["registry"]
    assert registry["ok"] is False and registry["status"] == "degraded", registry
    assert models_down["aliases"]["champion"] == "1"
    assert swapped, "alias polling resumed once the server was back"
    first_new = min(o.finished for o in outcomes if o.version == "2")
    assert first_new - moved_at < 20
    assert outcomes[-1].version == "2"
    assert ready_after["ok"] is True and ready_after["status"] == "ok", ready_after
