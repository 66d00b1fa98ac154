"""Micro-batching of the neural forecaster: a batched forecast equals the request's own,
concurrent requests share forward passes, nobody waits past the bound, a full queue refuses at
once, and a version swap never mixes models inside a batch."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests._support.windows import synthetic_windows
from trajops.models.constant_velocity import ConstantVelocity
from trajops.models.neural import NeuralForecaster
from trajops.prediction.batching import BatchConfig, MicroBatcher, Overloaded
from trajops.prediction.loading import LoadedModel


@pytest.fixture(scope="module")
def neural() -> NeuralForecaster:
    model = NeuralForecaster(epochs=2, hidden=16, modes=2, ensemble=2, device="cpu")
    model.fit(synthetic_windows(200, seed=1), synthetic_windows(60, seed=2))
    return model


def loaded(forecaster: Any, tmp_path: Path, version: str = "1") -> LoadedModel:
    return LoadedModel(
        name="m", version=version, run_id=None, forecaster=forecaster,
        loaded_at=datetime.now(UTC), load_seconds=0.0, agent_seconds=1e-3, path=tmp_path,
    )  # fmt: skip


def scenes(n: int, seed: int = 0) -> list[np.ndarray]:
    """Scenes of 1 to 25 walking agents, each around its own place."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        agents = int(rng.integers(1, 26))
        start = rng.uniform(-8, 8, (agents, 1, 2)) + 3.0 * i
        velocity = rng.normal(0, 0.5, (agents, 1, 2))
        out.append(start + velocity * np.arange(8)[None, :, None])  # (N, T_obs, 2)
    return out


def test_a_batched_forecast_equals_the_requests_own(
    neural: NeuralForecaster, tmp_path: Path
) -> None:
    model = loaded(neural, tmp_path)
    assert model.batchable and not loaded(ConstantVelocity(), tmp_path).batchable
    batch = scenes(12)
    together = model.predict_scenes(batch)
    for scene, out in zip(batch, together, strict=True):
        alone = model.predict(scene, num_samples=1, seed=0)
        assert out.shape == alone.shape == (len(scene), 12, 2)
        np.testing.assert_allclose(out, alone, rtol=0, atol=1e-6)  # metres


def test_concurrent_requests_share_forward_passes(neural: NeuralForecaster, tmp_path: Path) -> None:
    model = loaded(neural, tmp_path)
    batch = scenes(40, seed=3)

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher(model, BatchConfig(max_batch_agents=4096, max_wait_ms=2.0))
        outs = await asyncio.gather(*(batcher.predict(s) for s in batch))
        assert batcher.batched_requests == 40 and batcher.batches < 40
        return outs

    outs = asyncio.run(scenario())
    for scene, out in zip(batch, outs, strict=True):
        np.testing.assert_allclose(out, model.predict(scene, num_samples=1, seed=0), atol=1e-6)


class Slow(ConstantVelocity):
    """Constant velocity with a fixed cost per call, like a network's forward pass."""

    batchable = True

    def __init__(self, cost_s: float) -> None:
        super().__init__()
        self.cost_s = cost_s
        self.calls: list[int] = []

    def predict(self, obs: np.ndarray, **kwargs: Any) -> np.ndarray:
        time.sleep(self.cost_s)
        self.calls.append(len(obs))
        return super().predict(obs, num_samples=1)


def test_no_request_waits_past_the_bound(tmp_path: Path) -> None:
    """A request waits at most for the forward in flight, the gathering window and its own
    forward (batches are big enough to take everyone waiting)."""
    forward_s, config = 0.05, BatchConfig(max_batch_agents=10_000, max_wait_ms=5.0)
    model = loaded(Slow(forward_s), tmp_path)

    async def one(batcher: MicroBatcher, scene: np.ndarray, delay: float) -> float:
        await asyncio.sleep(delay)
        started = time.perf_counter()
        await batcher.predict(scene)
        return time.perf_counter() - started

    async def scenario() -> list[float]:
        batcher = MicroBatcher(model, config)
        work = [one(batcher, s, 0.004 * i) for i, s in enumerate(scenes(60, seed=4))]
        return list(await asyncio.gather(*work))

    waits = asyncio.run(scenario())
    bound = 2 * forward_s + config.max_wait_ms / 1e3 + 0.04  # + scheduling slack of this box
    assert max(waits) <= bound, (max(waits), bound)
    assert len(model.forecaster.calls) < 60  # type: ignore[attr-defined]  # it did batch


def test_a_full_queue_refuses_at_once(tmp_path: Path) -> None:
    model = loaded(Slow(0.2), tmp_path)

    async def scenario() -> list[Any]:
        batcher = MicroBatcher(model, BatchConfig(max_queue=3))
        first = asyncio.create_task(batcher.predict(scenes(1)[0]))  # running the forward
        await asyncio.sleep(0.05)
        return list(
            await asyncio.gather(
                first, *(batcher.predict(s) for s in scenes(6, seed=5)), return_exceptions=True
            )
        )

    started = time.perf_counter()
    results = asyncio.run(scenario())
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert len(refused) == 3 and all(r.retry_after_s >= 1 for r in refused)
    assert all(isinstance(r, np.ndarray) for r in results if not isinstance(r, Overloaded))
    assert refused[0].status_code == 503
    assert time.perf_counter() - started < 1.0  # the refused did not wait for a forward


def test_a_failing_model_fails_its_batch_only(tmp_path: Path) -> None:
    class Broken(Slow):
        def predict(self, obs: np.ndarray, **kwargs: Any) -> np.ndarray:
            return np.full((len(obs), 12, 2), np.nan)

    broken = MicroBatcher(loaded(Broken(0.0), tmp_path))
    good = MicroBatcher(loaded(Slow(0.0), tmp_path, version="2"))

    async def scenario() -> tuple[list[Any], list[Any]]:
        bad = await asyncio.gather(*(broken.predict(s) for s in scenes(3)), return_exceptions=True)
        ok = await asyncio.gather(*(good.predict(s) for s in scenes(3)), return_exceptions=True)
        return list(bad), list(ok)

    bad, ok = asyncio.run(scenario())
    assert all("returned" in str(e) for e in bad)  # ModelLoadError: non-finite output
    assert all(isinstance(o, np.ndarray) for o in ok)
