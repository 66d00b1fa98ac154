"""The in-process token bucket on a controlled clock."""

from __future__ import annotations

import pytest

from trajops.errors import RateLimited
from trajops.security.ratelimit import (
    LocalRateLimiter,
    RateLimit,
    enforce,
    rate_limiter_from_settings,
)
from trajops.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_at_the_configured_rate() -> None:
    clock = Clock()
    limiter = LocalRateLimiter(RateLimit(rate_per_s=2.0, burst=3), clock=clock)
    assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]
    denied = limiter.hit("k")
    assert not denied.allowed and denied.retry_after_s == pytest.approx(0.5)
    assert limiter.hit("other").allowed  # buckets are per key
    clock.now += 0.5
    assert limiter.hit("k").allowed and not limiter.hit("k").allowed
    clock.now += 100
    assert [limiter.hit("k").allowed for _ in range(4)] == [True, True, True, False]  # capped


def test_enforce_raises_429_with_retry_after() -> None:
    limiter = LocalRateLimiter(RateLimit(rate_per_s=0.5, burst=1), clock=Clock())
    enforce(limiter, "k1")
    with pytest.raises(RateLimited) as err:
        enforce(limiter, "k1")
    assert err.value.status_code == 429
    assert err.value.retry_after_s == pytest.approx(2.0)
    assert err.value.details == [{"loc": ["header", "Retry-After"], "msg": "2"}]


def test_settings_choose_the_limiter() -> None:
    assert rate_limiter_from_settings(Settings(rate_limit_per_s=0)) is None
    assert isinstance(rate_limiter_from_settings(Settings()), LocalRateLimiter)
    with pytest.raises(ValueError):
        RateLimit(rate_per_s=0, burst=1)
