"""Per-key token-bucket rate limits: in-process, or shared by all replicas through Redis.

Each API key owns a bucket of ``burst`` tokens refilled at ``rate_per_s``; a request takes one.
The Redis limiter runs the whole read-refill-take step as one Lua script (atomic, on the Redis
clock, so replicas with skewed clocks agree). If Redis fails, requests are not failed: the
limiter falls back to an in-process bucket (per replica, so the effective limit is at most
``replicas x`` the configured one during the outage), counts it in ``fallbacks`` and retries
Redis after ``retry_after_s``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from trajops.errors import RateLimited
from trajops.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket parameters: sustained ``rate_per_s`` and ``burst`` tokens when idle."""

    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")


@dataclass(frozen=True)
class Decision:
    """Outcome of one request against a bucket."""

    allowed: bool
    remaining: float
    retry_after_s: float


class RateLimiter(Protocol):
    """Takes ``cost`` tokens from ``key``'s bucket if it has them."""

    def hit(self, key: str, *, cost: float = 1.0) -> Decision: ...


def _take(tokens: float, elapsed: float, limit: RateLimit, cost: float) -> tuple[float, Decision]:
    tokens = min(float(limit.burst), tokens + max(0.0, elapsed) * limit.rate_per_s)
    if tokens >= cost:
        return tokens - cost, Decision(True, tokens - cost, 0.0)
    return tokens, Decision(False, tokens, (cost - tokens) / limit.rate_per_s)


class LocalRateLimiter:
    """Thread-safe in-process buckets (one process only); keeps at most ``max_keys`` buckets."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: str) -> float:
        """Tokens ``key`` has now (a full bucket for an unknown key); takes none."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.limit.burst), now))
        return min(float(self.limit.burst), tokens + (now - last) * self.limit.rate_per_s)

    def hit(self, key: str, *, cost: float = 1.0) -> Decision:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.limit.burst), now))
            tokens, decision = _take(tokens, now - last, self.limit, cost)
            self._buckets[key] = (tokens, now)
            self._buckets.move_to_end(key)
            if len(self._buckets) > self._max_keys:
                # An evicted bucket restarts full: only long-idle keys are evicted.
                self._buckets.popitem(last=False)
        return decision


_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(retry)}
"""


class RedisRateLimiter:
    """Buckets shared by every replica in Redis, with an in-process fallback.

    Args:
        client: a ``redis.Redis`` (use short socket timeouts: it is on the request path).
        limit: the bucket parameters.
        prefix: key prefix in Redis (``<prefix>:<key>``).
        retry_after_s: after a Redis failure, seconds served in-process before Redis is retried.
        on_fallback: called once per request served by the fallback (for metrics).
    """

    def __init__(
        self,
        client: redis.Redis,
        limit: RateLimit,
        *,
        prefix: str = "trajops:ratelimit",
        retry_after_s: float = 5.0,
        on_fallback: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.prefix = prefix
        self.fallback = LocalRateLimiter(limit, clock=clock)
        self.fallbacks = 0
        self._client = client
        self._script: Any = client.register_script(_LUA)
        self._retry_after_s = retry_after_s
        self._on_fallback = on_fallback
        self._clock = clock
        self._down_until = 0.0

    def hit(self, key: str, *, cost: float = 1.0) -> Decision:
        if self._clock() >= self._down_until:
            try:
                allowed, remaining, retry = self._script(
                    keys=[f"{self.prefix}:{key}"],
                    args=[self.limit.rate_per_s, self.limit.burst, cost],
                )
                return Decision(bool(int(allowed)), float(remaining), float(retry))
            except redis.RedisError as exc:
                log.warning(
                    "rate limiter: Redis unavailable (%s), limiting in-process for %.0f s",
                    exc.__class__.__name__,
                    self._retry_after_s,
                )
                self._down_until = self._clock() + self._retry_after_s
        self.fallbacks += 1
        if self._on_fallback is not None:
            self._on_fallback()
        return self.fallback.hit(key, cost=cost)


def enforce(limiter: RateLimiter, key: str, *, cost: float = 1.0) -> Decision:
    """Take a token for ``key`` or raise :class:`RateLimited` carrying ``Retry-After`` seconds."""
    decision = limiter.hit(key, cost=cost)
    if not decision.allowed:
        retry = max(1, math.ceil(decision.retry_after_s))
        raise RateLimited(
            f"rate limit exceeded for API key {key}; retry in {retry} s",
            retry_after_s=decision.retry_after_s,
            details=[{"loc": ["header", "Retry-After"], "msg": str(retry)}],
        )
    return decision


def rate_limiter_from_settings(
    settings: Settings, *, on_fallback: Callable[[], None] | None = None
) -> RateLimiter | None:
    """Redis buckets when ``redis_url`` is set, in-process otherwise; ``None`` when disabled.

    Creating the client does not connect, so this is safe in an app factory.
    """
    if settings.rate_limit_per_s <= 0:
        return None
    limit = RateLimit(settings.rate_limit_per_s, settings.rate_limit_burst)
    if settings.redis_url is None:
        return LocalRateLimiter(limit)
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_timeout=0.25, socket_connect_timeout=0.25
    )
    return RedisRateLimiter(client, limit, on_fallback=on_fallback)
