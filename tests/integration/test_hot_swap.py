"""Moving the champion alias under load: no request fails, the new version serves quickly.

The production path is on: API keys, rate limits, audit and prediction logging. With the
neural forecaster, requests are micro-batched: every answer must be the forecast of the
version it names (no batch mixes versions, no request is answered by a half-swapped model).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from tests._support.api_keys import issue_key
from tests._support.mlflow_uris import mlflow_uris
from tests._support.windows import synthetic_windows
from trajops.data.windows import neighbours_from_batch
from trajops.models import ConstantVelocity
from trajops.models.neural import NeuralForecaster
from trajops.models.pyfunc import log_forecaster
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "trajectory-forecaster"
POLL_S = 0.5
LOAD_S = 4.0
CONCURRENCY = 8


@dataclass(frozen=True)
class Outcome:
    started: float
    finished: float
    status: int
    version: str | None
    obs: list[list[float]]
    pred: Any = None  # (T_pred, 2) as answered


def cv(seed: int) -> Any:
    return ConstantVelocity()


def neural(seed: int) -> Any:
    model = NeuralForecaster(epochs=2, hidden=16, modes=2, device="cpu", seed=seed)
    model.fit(synthetic_windows(200, seed=seed), synthetic_windows(60, seed=seed + 1))
    return model


def register_two_versions(
    root: Path, make: Callable[[int], Any] = cv
) -> tuple[str, MlflowClient, dict[str, Any]]:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("hot-swap", artifact_location=(root / "art").as_uri())
    models = {}
    with mlflow_uris(uri):
        for v in ("1", "2"):
            models[v] = make(int(v))
            with mlflow.start_run(experiment_id=exp):
                log_forecaster(models[v], registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri, client, models


async def load(url: str, *, stop_at: float, worker: int, token: str) -> list[Outcome]:
    out: list[Outcome] = []
    headers = {"X-API-Key": token}
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            positions = [[0.4 * t + worker, 0.01 * i] for t in range(8)]
            body = {"agents": [{"agent_id": "w", "positions": positions}]}
            t0 = time.monotonic()
            r = await http.post("/v1/predict", json=body)
            ok = r.status_code == 200
            version = r.json()["model"]["version"] if ok else None
            pred = r.json()["predictions"][0]["positions"] if ok else None
            out.append(Outcome(t0, time.monotonic(), r.status_code, version, positions, pred))
    return out


@pytest.mark.parametrize("kind", ["cv", "neural"])
def test_alias_move_under_load(tmp_path: Path, kind: str) -> None:
    uri, client, models = register_two_versions(tmp_path, cv if kind == "cv" else neural)
    settings = Settings(
        home=tmp_path / "home",
        tracking_uri=uri,
        poll_interval_s=POLL_S,
        metrics_public=True,  # the scrape below needs no key; predictions do
        rate_limit_per_s=10_000,
    )
    _, token = issue_key(settings, scopes="predict")
    app = create_app(settings, options=AppOptions())

    async def scenario(url: str) -> tuple[float, list[Outcome]]:
        stop_at = time.monotonic() + 1.5 + POLL_S + LOAD_S
        workers = [
            asyncio.create_task(load(url, stop_at=stop_at, worker=w, token=token))
            for w in range(CONCURRENCY)
        ]
        await asyncio.sleep(1.0)
        moved_at = time.monotonic()
        await asyncio.to_thread(client.set_registered_model_alias, MODEL, "champion", "2")
        results = [o for batch in await asyncio.gather(*workers) for o in batch]
        return moved_at, results

    with serve_in_thread(app) as url:
        moved_at, outcomes = asyncio.run(scenario(url))
        swaps = httpx.get(f"{url}/metrics").text

    assert len(outcomes) > 50, "the load must be real"
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} requests failed during the swap: {failed[:3]}"
    assert any(o.version == "1" for o in outcomes if o.finished < moved_at)
    first_new = min(o.finished for o in outcomes if o.version == "2")
    assert first_new - moved_at <= POLL_S + LOAD_S, "picked up within poll interval + load"
    late_old = [o for o in outcomes if o.version == "1" and o.started > first_new]
    assert not late_old, "once the new version serves, the old one never does again"
    assert outcomes[-1].version == "2"
    assert 'trajops_model_swaps_total{alias="champion"} 1.0' in swaps
    if kind == "neural":  # each answer is the forecast of the version it names
        for o in outcomes:
            obs = np.asarray([o.obs])  # (1, T_obs, 2)
            nbr = neighbours_from_batch(obs.astype(np.float32))
            own = models[str(o.version)].predict(obs, neighbours=nbr)[0]
            np.testing.assert_allclose(np.asarray(o.pred), own, atol=2e-3)
