"""ModelPool against a real registry: alias moves, failed loads, an empty registry."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests._support.api_keys import issue_key
from tests._support.app_fixtures import make_settings
from tests._support.registry import MODEL, RegistryInfo, build_registry
from trajops.errors import ModelNotFoundError, ServiceUnavailable
from trajops.models import ConstantVelocity
from trajops.monitoring.metrics import ServingMetrics
from trajops.prediction.loading import LoadedModel
from trajops.prediction.pool import ModelPool, PoolConfig
from trajops.serving import AppOptions, create_app, serve_in_thread


@pytest.fixture(scope="module")
def own_registry(tmp_path_factory: pytest.TempPathFactory) -> RegistryInfo:
    """A registry this module may change: versions 1..3, version 3 broken on disk."""
    reg = build_registry(tmp_path_factory.mktemp("pool-registry"), versions=3)
    source = reg.client.get_model_version_download_uri(MODEL, "3")
    folder = Path(source.removeprefix("file://"))
    shutil.rmtree(next(folder.rglob("forecaster.json")).parent)  # the forecaster artifact
    return reg


def make_pool(reg: RegistryInfo, metrics: ServingMetrics) -> ModelPool:
    return ModelPool(
        model_name=MODEL,
        tracking_uri=reg.uri,
        registry_uri=reg.uri,
        default_ref="champion",
        poll_interval_s=60.0,
        metrics=metrics,
    )


def test_alias_move_swaps_and_failed_load_keeps_last_good(own_registry: RegistryInfo) -> None:
    reg, metrics = own_registry, ServingMetrics()

    async def scenario() -> None:
        pool = make_pool(reg, metrics)
        await pool.start(poll=False)
        try:
            held, alias = await pool.acquire(None)
            assert (held.version, alias) == ("1", "champion")

            reg.client.set_registered_model_alias(MODEL, "champion", "2")
            await pool.refresh()
            assert pool.resolve(None)[0].version == "2"  # type: ignore[index]
            assert held.predict(held_obs(), num_samples=1, seed=0).shape == (1, 12, 2)

            reg.client.set_registered_model_alias(MODEL, "champion", "3")  # broken artifact
            snap = await pool.refresh()
            assert pool.resolve(None)[0].version == "2", "the last good model keeps serving"  # type: ignore[index]
            assert "champion" in snap["errors"] and "version 3" in snap["errors"]
            status = pool.model_status()
            assert status["ok"] and status["failing"] == len(snap["errors"])
            assert "errors" not in status  # public readiness: how many fail, never why

            reg.client.set_registered_model_alias(MODEL, "champion", "1")
            await pool.refresh()
            assert pool.resolve(None)[0].version == "1"  # type: ignore[index]
            assert "champion" not in pool.snapshot()["errors"]
        finally:
            reg.client.set_registered_model_alias(MODEL, "champion", "1")
            await pool.stop()

    asyncio.run(scenario())
    assert metrics.model_loads.labels("failure")._value.get() >= 1
    assert metrics.model_swaps.labels("champion")._value.get() == 2


def held_obs() -> object:
    import numpy as np

    return np.cumsum(np.full((1, 8, 2), 0.4), axis=1)


def test_unknown_refs_raise_domain_errors(own_registry: RegistryInfo) -> None:
    async def scenario() -> None:
        pool = make_pool(own_registry, ServingMetrics())
        await pool.start(poll=False)
        try:
            with pytest.raises(ModelNotFoundError):
                await pool.acquire("77")
            with pytest.raises(ModelNotFoundError):
                await pool.acquire("staging")
            with pytest.raises(ModelNotFoundError):  # remembered, no second registry trip
                await pool.acquire("staging")
        finally:
            await pool.stop()

    asyncio.run(scenario())


def test_empty_registry_starts_unready(tmp_path: Path) -> None:
    reg = RegistryInfo(uri=f"sqlite:///{tmp_path / 'empty.db'}", root=tmp_path, client=None)  # type: ignore[arg-type]
    settings = make_settings(reg, tmp_path / "home")
    _, token = issue_key(settings, scopes="predict")
    app = create_app(settings, options=AppOptions(poll=False))
    with (
        serve_in_thread(app) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": token}) as http,
    ):
        r = http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["model"]["ok"] is False
        assert r.json()["checks"]["registry"]["ok"] is True
        p = http.post("/v1/predict", json={"agents": [{"agent_id": 1, "positions": [[0, 0]] * 8}]})
        assert p.status_code == 503 and p.json()["error"]["code"] == "service_unavailable"


def test_unreachable_registry_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")  # keep the stray thread short

    async def scenario() -> None:
        pool = ModelPool(
            model_name=MODEL,
            tracking_uri="http://127.0.0.1:9",  # discard port: nothing listens
            registry_uri="http://127.0.0.1:9",
            default_ref="champion",
            poll_interval_s=60.0,
            metrics=ServingMetrics(),
            config=PoolConfig(registry_timeout_s=0.5),
        )
        t0 = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            await pool.refresh()
        assert pool.last_poll_error and "unreachable" in pool.last_poll_error
        status = await pool.registry_status()
        assert status["ok"] is False
        assert time.monotonic() - t0 < 3.0, "registry outages must not stall the service"
        await pool.stop()

    asyncio.run(scenario())


class _Recorder(ConstantVelocity):
    """CV that records the neighbours it was given."""

    seen: list[object]

    def predict(self, obs: np.ndarray, **kwargs: Any) -> np.ndarray:
        self.seen.append(kwargs.get("neighbours"))
        return super().predict(obs, num_samples=kwargs.get("num_samples", 1))


@pytest.mark.parametrize("scene_aware", [True, False])
def test_neighbours_are_built_only_for_scene_aware_models(
    tmp_path: Path, scene_aware: bool
) -> None:
    forecaster = _Recorder()
    forecaster.seen = []
    forecaster.scene_aware = scene_aware  # type: ignore[misc]
    loaded = LoadedModel(
        name=MODEL, version="1", run_id=None, forecaster=forecaster,
        loaded_at=datetime.now(UTC), load_seconds=0.0, agent_seconds=0.0, path=tmp_path,
    )  # fmt: skip
    obs = np.cumsum(np.ones((3, 8, 2)), axis=1)  # (N, T_obs, 2)
    out = loaded.predict(obs, num_samples=1, seed=0)
    assert out.shape == (3, 12, 2)
    neighbours = forecaster.seen[0]
    if scene_aware:
        assert isinstance(neighbours, np.ndarray) and neighbours.shape[:2] == (3, 16)
    else:
        assert neighbours is None
    assert ConstantVelocity.scene_aware is False  # CV and the linear model skip them
