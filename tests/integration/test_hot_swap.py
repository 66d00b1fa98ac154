"""Moving the champion alias under load: no request fails, the new version serves quickly.

The production path is on: API keys, rate limits, audit and prediction logging.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from tests._support.api_keys import issue_key
from tests._support.mlflow_uris import mlflow_uris
from trajops.models import ConstantVelocity
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


def register_two_versions(root: Path) -> tuple[str, MlflowClient]:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("hot-swap", artifact_location=(root / "art").as_uri())
    with mlflow_uris(uri):
        for _ in range(2):
            with mlflow.start_run(experiment_id=exp):
                log_forecaster(ConstantVelocity(), registered_model_name=MODEL)
    client.set_registered_model_alias(MODEL, "champion", "1")
    return uri, client


async def load(url: str, *, stop_at: float, worker: int, token: str) -> list[Outcome]:
    out: list[Outcome] = []
    headers = {"X-API-Key": token}
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            body = {
                "agents": [
                    {"agent_id": "w", "positions": [[0.4 * t + worker, 0.01 * i] for t in range(8)]}
                ]
            }
            t0 = time.monotonic()
            r = await http.post("/v1/predict", json=body)
            version = r.json()["model"]["version"] if r.status_code == 200 else None
            out.append(Outcome(t0, time.monotonic(), r.status_code, version))
    return out


def test_alias_move_under_load(tmp_path: Path) -> None:
    uri, client = register_two_versions(tmp_path)
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
