"""The Redis prediction cache against the real Redis at 127.0.0.1:6379, and without it."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis

from tests._support.api_keys import issue_key
from tests._support.registry import build_registry
from trajops.prediction.cache import RedisCache, RedisCacheConfig
from trajops.serving import AppOptions, create_app, serve_in_thread
from trajops.settings import Settings

pytestmark = pytest.mark.integration

REDIS_URL = "redis://127.0.0.1:6379/0"
MODEL = "trajectory-forecaster"
BODY = {"agents": [{"agent_id": "r", "positions": [[0.3 * i, 2.0] for i in range(8)]}]}


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    value = f"trajops-test:{uuid.uuid4().hex}:"
    yield value
    keys = list(redis_client.scan_iter(match=f"{value}*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite registry with one CV version as champion."""
    root = tmp_path_factory.mktemp("redis-registry")
    return build_registry(root).uri


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings(
    tracking_uri: str, home: Path, redis_url: str, *, shared: Path | None = None
) -> Settings:
    """Replica settings; replicas given the same ``shared`` folder share the operational store
    and the secrets, as production replicas do (so one API key works on all of them)."""
    shared = shared or home
    return Settings(
        home=home,
        tracking_uri=tracking_uri,
        redis_url=redis_url,  # type: ignore[arg-type]
        database_url=f"sqlite:///{shared / 'ops.db'}",  # type: ignore[arg-type]
        api_key_pepper="p" * 32,  # type: ignore[arg-type]
        pseudonym_key="k" * 32,  # type: ignore[arg-type]
    )


def test_adapter_round_trip_with_ttl(redis_client: redis.Redis, prefix: str) -> None:
    value = np.random.default_rng(1).normal(size=(2, 3, 12, 2)).astype(np.float32)

    async def scenario() -> None:
        cache = RedisCache(REDIS_URL, ttl_s=30, config=RedisCacheConfig(key_prefix=prefix))
        try:
            assert await cache.get("missing") is None
            await cache.set("k", value)
            got = await cache.get("k")
            assert got is not None
            np.testing.assert_array_equal(got, value)
            assert (await cache.status())["ok"] is True
        finally:
            await cache.close()

    asyncio.run(scenario())
    assert 0 < redis_client.ttl(f"{prefix}k") <= 30


def test_two_replicas_share_the_cache(
    tracking_uri: str, tmp_path: Path, redis_client: redis.Redis, prefix: str
) -> None:
    options = AppOptions(poll=False, redis=RedisCacheConfig(key_prefix=prefix))
    settings_a = settings(tracking_uri, tmp_path / "a", REDIS_URL, shared=tmp_path)
    _, token = issue_key(settings_a, scopes="admin")
    key = {"X-API-Key": token}
    app_a = create_app(settings_a, options=options)
    app_b = create_app(
        settings(tracking_uri, tmp_path / "b", REDIS_URL, shared=tmp_path), options=options
    )
    with serve_in_thread(app_a) as url_a, serve_in_thread(app_b) as url_b:
        first = httpx.post(f"{url_a}/v1/predict", json=BODY, headers=key).json()
        second = httpx.post(f"{url_b}/v1/predict", json=BODY, headers=key).json()
        assert (first["cached"], second["cached"]) == (False, True)
        assert first["predictions"] == second["predictions"]
        keys = list(redis_client.scan_iter(match=f"{prefix}{MODEL}:1:*"))
        assert len(keys) == 1
        ready = httpx.get(f"{url_b}/readyz").json()["checks"]["cache"]
        assert ready == {"backend": "redis", "ok": True, "required": False}
        metrics = httpx.get(f"{url_b}/metrics", headers=key).text
        assert 'trajops_cache_lookups_total{backend="redis",result="hit"} 1.0' in metrics
        assert "trajops_ratelimit_fallbacks_total 0.0" in metrics, "limits came from Redis"
    buckets = list(redis_client.scan_iter(match="trajops:ratelimit:*"))
    assert any(b.decode().endswith(token.split("_")[1]) for b in buckets), "per-key bucket"


def test_unreachable_redis_never_fails_a_request(tracking_uri: str, tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{closed_port()}/0"
    unreachable = settings(tracking_uri, tmp_path, url)
    _, token = issue_key(unreachable, scopes="admin")
    app = create_app(unreachable, options=AppOptions(poll=False))
    with (
        serve_in_thread(app) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": token}) as http,
    ):
        for _ in range(5):
            r = http.post("/v1/predict", json=BODY)
            assert r.status_code == 200, r.text
            assert r.json()["cached"] is False
            assert len(r.json()["predictions"][0]["positions"]) == 12
        ready = http.get("/readyz")
        assert ready.status_code == 200, "a broken cache costs speed, not readiness"
        assert ready.json()["checks"]["cache"]["ok"] is False
        metrics = http.get("/metrics").text
    errors = [
        line
        for line in metrics.splitlines()
        if line.startswith('trajops_cache_lookups_total{backend="redis",result="error"}')
    ]
    assert errors and float(errors[0].split()[-1]) == 5.0
    assert 'trajops_cache_errors_total{backend="redis",op="get"} 5.0' in metrics
    fallbacks = [
        line
        for line in metrics.splitlines()
        if line.startswith("trajops_ratelimit_fallbacks_total ")
    ]
    assert float(fallbacks[0].split()[-1]) >= 5, (
        "rate limits fell back in-process, no request failed"
    )


def track_frame(scene: str, k: int) -> dict[str, object]:
    """Frame ``k`` of two agents walking in straight lines (0.4 s apart)."""
    t = 0.4 * k
    return {
        "scene_id": scene,
        "t": 1_765_000_000.0 + t,
        "agents": [
            {"agent_id": "p1", "position": [1.1 * t, 0.0]},
            {"agent_id": "p2", "position": [3.0, -0.7 * t]},
        ],
    }


def test_two_replicas_share_the_tracks(
    tracking_uri: str, tmp_path: Path, redis_client: redis.Redis
) -> None:
    """Frames of one scene alternate between two replicas behind a balancer: each sees the
    whole track (forecasts from the 8th frame on, the first forecasts scored at the 20th)."""
    settings_a = settings(tracking_uri, tmp_path / "a", REDIS_URL, shared=tmp_path)
    _, token = issue_key(settings_a, scopes="predict")
    key = {"X-API-Key": token}
    app_a = create_app(settings_a, options=AppOptions(poll=False))
    app_b = create_app(
        settings(tracking_uri, tmp_path / "b", REDIS_URL, shared=tmp_path),
        options=AppOptions(poll=False),
    )
    scene = f"shared-{uuid.uuid4().hex}"
    answers = []
    with serve_in_thread(app_a) as url_a, serve_in_thread(app_b) as url_b:
        for k in range(21):
            url = (url_a, url_b)[k % 2]
            r = httpx.post(f"{url}/v1/tracks", json=track_frame(scene, k), headers=key)
            assert r.status_code == 200, r.text
            answers.append(r.json())
        stale = httpx.post(f"{url_a}/v1/tracks", json=track_frame(scene, 19), headers=key)
        assert stale.status_code == 409  # replica a knows what replica b took
    assert [len(a["predictions"]) for a in answers[:8]] == [0] * 7 + [2]
    assert all(len(a["predictions"]) == 2 for a in answers[7:])
    assert answers[7]["waiting"] == [] and answers[6]["waiting"][0]["history_s"] == 2.4
    scored = [len(a["scored"]) for a in answers]
    assert scored[:19] == [0] * 19 and scored[19] == 2 and scored[20] == 2
    assert all(s["ade"] < 0.05 for s in answers[19]["scored"])  # CV is exact on straight lines
    keys = list(redis_client.scan_iter(match="trajops:track:*"))
    assert keys and all(scene.encode() not in k and b"p1" not in k for k in keys)
    assert 0 < redis_client.pttl(keys[0]) <= 30_000


def test_tracks_refuse_a_frame_while_redis_is_unreachable(
    tracking_uri: str, tmp_path: Path
) -> None:
    """A track only one replica could see would split: the frame is a 503, nothing kept."""
    unreachable = settings(tracking_uri, tmp_path, f"redis://127.0.0.1:{closed_port()}/0")
    _, token = issue_key(unreachable, scopes="predict")
    app = create_app(unreachable, options=AppOptions(poll=False))
    with serve_in_thread(app) as base:
        r = httpx.post(
            f"{base}/v1/tracks", json=track_frame("down", 0), headers={"X-API-Key": token}
        )
    assert r.status_code == 503, r.text
    assert "track store" in r.json()["error"]["message"]
