"""The Redis token bucket against real Redis: shared by replicas, survives Redis going away."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests._support.services import free_port
from trajops.security.ratelimit import RateLimit, RedisRateLimiter

SHARED = "redis://127.0.0.1:6379/0"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(SHARED, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not _redis_up(), reason="Redis at 127.0.0.1:6379 is not running"),
]


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.25, socket_connect_timeout=0.25)


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"trajops-test:{uuid.uuid4().hex[:10]}"
    yield name
    client = _client(SHARED)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def test_replicas_share_one_bucket(prefix: str) -> None:
    limit = RateLimit(rate_per_s=1.0, burst=3)
    a = RedisRateLimiter(_client(SHARED), limit, prefix=prefix)
    b = RedisRateLimiter(_client(SHARED), limit, prefix=prefix)
    assert [a.hit("key1").allowed, a.hit("key1").allowed, b.hit("key1").allowed] == [True] * 3
    denied = b.hit("key1")
    assert not denied.allowed and 0.5 < denied.retry_after_s <= 1.0
    assert a.hit("key2").allowed  # another key, another bucket
    ttl = _client(SHARED).pttl(f"{prefix}:key1")
    assert 0 < ttl <= 4000  # idle buckets expire
    time.sleep(1.05)
    assert a.hit("key1").allowed
    assert a.fallbacks == b.fallbacks == 0


def test_unreachable_redis_falls_back_in_process_and_is_counted() -> None:
    calls: list[int] = []
    limiter = RedisRateLimiter(
        _client(f"redis://127.0.0.1:{free_port()}/0"),
        RateLimit(rate_per_s=0.1, burst=2),
        on_fallback=lambda: calls.append(1),
    )
    started = time.monotonic()
    outcomes = [limiter.hit("k").allowed for _ in range(20)]
    assert outcomes[:3] == [True, True, False]  # still limited, in-process
    assert limiter.fallbacks == 20 and len(calls) == 20
    assert time.monotonic() - started < 1.0  # one failed connect, then Redis is skipped


def test_limiter_returns_to_redis_when_it_is_back(prefix: str) -> None:
    port = free_port()
    args = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
    limiter = RedisRateLimiter(
        _client(f"redis://127.0.0.1:{port}/0"),
        RateLimit(rate_per_s=1.0, burst=5),
        prefix=prefix,
        retry_after_s=0.2,
    )
    assert limiter.hit("k").allowed and limiter.fallbacks == 1  # not started yet
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _client(f"redis://127.0.0.1:{port}/0").ping():
                    break
            except redis.RedisError:
                time.sleep(0.05)
        time.sleep(0.25)  # past the retry interval
        assert limiter.hit("k").allowed
        assert limiter.fallbacks == 1
        assert _client(f"redis://127.0.0.1:{port}/0").exists(f"{prefix}:k") == 1
    finally:
        proc.terminate()
        proc.wait(timeout=10)
