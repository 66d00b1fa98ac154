"""A model whose batch queue is full: 503 with Retry-After over HTTP, and nothing is written
to the prediction log for the refused request (its audit row says 503)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import mlflow
from mlflow import MlflowClient
from sqlalchemy import func, select

from tests._support.api_keys import issue_key
from tests._support.mlflow_uris import mlflow_uris
from tests._support.windows import synthetic_windows
from trajops.models.neural import NeuralForecaster
from trajops.models.pyfunc import log_forecaster
from trajops.prediction.batching import BatchConfig
from trajops.prediction.service import ServiceConfig
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings
from trajops.store import Store
from trajops.store.models import AuditEntry, PredictionRecord

MODEL = "trajectory-forecaster"


def test_a_full_queue_answers_503_and_logs_no_prediction(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("bp", artifact_location=(tmp_path / "art").as_uri())
    model = NeuralForecaster(epochs=1, hidden=8, modes=1, device="cpu")
    model.fit(synthetic_windows(100, seed=1), synthetic_windows(30, seed=2))
    with mlflow_uris(uri), mlflow.start_run(experiment_id=exp):
        log_forecaster(model, registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    settings = Settings(home=tmp_path / "home", tracking_uri=uri, log_flush_interval_s=0.05)
    _, token = issue_key(settings, scopes="predict")
    full = ServiceConfig(batching=BatchConfig(max_queue=0))  # every request finds it full
    app = create_app(settings, options=AppOptions(poll=False, service=full))
    body = {"agents": [{"agent_id": "a", "positions": [[0.4 * t, 0.0] for t in range(8)]}]}
    with serve_in_thread(app) as url:
        r = httpx.post(f"{url}/v1/predict", json=body, headers={"X-API-Key": token}, timeout=30)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "overloaded"
    assert int(r.headers["retry-after"]) >= 1
    store = Store(settings.resolved_database_url, run_migrations=False)
    try:
        deadline = time.monotonic() + 10
        statuses: list[int] = []
        while time.monotonic() < deadline and 503 not in statuses:
            with store.session() as s:
                statuses = list(s.scalars(select(AuditEntry.status)))
            time.sleep(0.1)
        with store.session() as s:
            predictions = s.scalar(select(func.count()).select_from(PredictionRecord))
    finally:
        store.dispose()
    assert 503 in statuses and predictions == 0
