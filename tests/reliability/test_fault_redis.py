"""Redis killed and restarted under steady load: no 5xx, the cache resumes on its own.

The replica's cache and rate limiter point at a private ``redis-server``; it is SIGKILLed while
requests flow (cache lookups become misses, rate limits fall back in-process) and restarted on
the same port, empty: the cache fills and answers again without any restart of the service.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests._support.load import SteadyLoad, cycling_body, server_errors
from tests._support.redis_server import private_redis, redis_server_binary
from tests._support.registry import build_registry
from tests._support.replica import service_settings, serving
from trajops.prediction.cache import RedisCacheConfig
from trajops.serving import AppOptions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(redis_server_binary() is None, reason="redis-server is not installed"),
]


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


def test_redis_killed_and_restarted_under_load(tmp_path: Path) -> None:
    registry = build_registry(tmp_path / "registry")
    options = AppOptions(
        poll=False, freeze_gc=False, redis=RedisCacheConfig(timeout_s=0.2, retry_after_s=0.5)
    )
    hits = 'trajops_cache_lookups_total{backend="redis",result="hit"}'
    with private_redis() as redis_server:
        settings = service_settings(
            tmp_path / "home", tracking_uri=registry.uri, redis_url=redis_server.url
        )
        with serving(settings, options) as (url, http):
            key = {"X-API-Key": http.headers["X-API-Key"]}
            with SteadyLoad(url, headers=key, rate_per_s=120, body=cycling_body(25)) as load:
                load.wait_requests(100)
                assert any(o.cached for o in load.outcomes()), "the cache answers before"
                redis_server.kill()
                killed_at = time.monotonic()
                load.wait_requests(150)
                ready = http.get("/readyz")
                assert ready.status_code == 200, "a dead cache costs speed, not readiness"
                assert ready.json()["checks"]["cache"]["ok"] is False
                hits_down = _metric(http.get("/metrics").text, hits)
                redis_server.start()  # same port, empty
                restarted_at = time.monotonic()
                resumed = load.wait_for(
                    lambda out: any(o.cached and o.started > restarted_at + 0.1 for o in out),
                    timeout_s=15,
                )
                load.wait_requests(50)
            outcomes = load.outcomes()
            assert http.get("/readyz").json()["checks"]["cache"]["ok"] is True
            hits_after = _metric(http.get("/metrics").text, hits)
        client = redis_server.client()
        try:
            keys = client.dbsize()
        finally:
            client.close()

    assert len(outcomes) >= 300, "the load must be real"
    assert not server_errors(outcomes), server_errors(outcomes)[:3]
    failed = [o for o in outcomes if o.status != 200]
    assert not failed, f"{len(failed)} requests failed: {failed[:3]}"
    during = [o for o in outcomes if killed_at < o.started < restarted_at]
    assert len(during) >= 100 and not any(o.cached for o in during), "misses while Redis is dead"
    assert resumed, "cache hits resume after Redis restarts"
    assert hits_after > hits_down, "the metric sees the cache answering again"
    assert keys > 0, "the restarted Redis holds fresh predictions"
