"""A champion swap while micro-batches are in flight: no request fails, and every answer is
wholly the forecast of the version it names (never a batch that mixed two models)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import mlflow
import numpy as np
from mlflow import MlflowClient

from tests._support.mlflow_uris import mlflow_uris
from tests._support.windows import synthetic_windows
from trajops.data.windows import neighbours_from_batch
from trajops.models.neural import NeuralForecaster
from trajops.models.pyfunc import log_forecaster
from trajops.monitoring.metrics import ServingMetrics
from trajops.prediction.batching import BatchConfig
from trajops.prediction.cache import NullCache, normalise_obs
from trajops.prediction.pool import ModelPool
from trajops.prediction.service import PredictionResult, PredictionService, ServiceConfig

MODEL = "trajectory-forecaster"


def test_a_swap_under_load_answers_everyone_from_one_whole_version(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("swap", artifact_location=(tmp_path / "art").as_uri())
    versions: dict[str, NeuralForecaster] = {}
    for seed in (1, 2):  # two networks with different weights: their forecasts differ
        model = NeuralForecaster(epochs=1, hidden=16, modes=1, seed=seed, device="cpu")
        model.fit(synthetic_windows(120, seed=seed), synthetic_windows(40, seed=9))
        with mlflow_uris(uri), mlflow.start_run(experiment_id=exp):
            log_forecaster(model, registered_model_name=MODEL)
        versions[str(seed)] = model
    client.set_registered_model_alias(MODEL, "champion", "1")
    rng = np.random.default_rng(0)
    scenes = [  # 160 scenes of 1..20 walkers
        rng.uniform(-5, 5, (n, 1, 2)) + rng.normal(0, 0.5, (n, 1, 2)) * np.arange(8)[None, :, None]
        for n in rng.integers(1, 21, size=160)
    ]

    async def scenario() -> tuple[list[PredictionResult | BaseException], int]:
        pool = ModelPool(
            model_name=MODEL,
            tracking_uri=uri,
            registry_uri=uri,
            default_ref="champion",
            poll_interval_s=60.0,
            metrics=ServingMetrics(),
        )
        service = PredictionService(
            pool=pool,
            cache=NullCache(),
            metrics=ServingMetrics(),
            config=ServiceConfig(batching=BatchConfig(max_wait_ms=2.0)),
        )
        await pool.start(poll=False)

        async def one(i: int, scene: np.ndarray) -> PredictionResult:
            await asyncio.sleep(0.002 * i)  # arrivals spread over the swap
            return await service.predict(obs=scene, num_samples=1, model_ref=None)

        async def swap() -> None:
            await asyncio.sleep(0.12)
            client.set_registered_model_alias(MODEL, "champion", "2")
            await pool.refresh()

        try:
            results = await asyncio.gather(
                *(one(i, s) for i, s in enumerate(scenes)), swap(), return_exceptions=True
            )
        finally:
            await pool.stop()
        batches = sum(b.batches for b in service._batchers.values())
        return list(results[:-1]), batches

    started = time.perf_counter()
    results, batches = asyncio.run(scenario())
    failed = [r for r in results if isinstance(r, BaseException)]
    assert not failed, failed[:3]
    answered = [r for r in results if isinstance(r, PredictionResult)]
    seen = [r.model.version for r in answered]
    assert set(seen) == {"1", "2"}, "the swap happened while requests were arriving"
    assert seen.index("2") > 0 and "1" not in seen[seen.index("2") :], "no version 1 after 2"
    assert batches < len(scenes), "requests shared forward passes"
    for scene, result in zip(scenes, answered, strict=True):
        norm = normalise_obs(scene)
        neighbours = neighbours_from_batch(norm.astype(np.float32))
        own = versions[result.model.version].predict(norm, neighbours=neighbours)
        np.testing.assert_allclose(result.predictions, own, rtol=0, atol=1e-5)
    assert time.perf_counter() - started < 60
