"""Cache keys, array encoding and the in-process LRU."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from trajops.prediction.cache import (
    LRUCache,
    NullCache,
    cache_key,
    create_cache,
    decode_array,
    encode_array,
    input_digest,
    normalise_obs,
)


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_digest_ignores_sub_millimetre_noise_and_negative_zero() -> None:
    obs = np.arange(16, dtype=np.float64).reshape(1, 8, 2) * 0.1  # (1, T_obs, 2)
    noisy = obs + 1e-5
    flipped = obs.copy()
    flipped[0, 0, 0] = -0.0
    d = input_digest(normalise_obs(obs), 1)
    assert input_digest(normalise_obs(noisy), 1) == d
    assert input_digest(normalise_obs(flipped), 1) == d
    assert input_digest(normalise_obs(obs + 2e-3), 1) != d, "millimetres matter"
    assert input_digest(normalise_obs(obs), 2) != d, "the sample count is part of the key"
    assert input_digest(normalise_obs(obs[:, ::-1]), 1) != d, "order matters"


def test_key_separates_model_versions() -> None:
    digest = bytes(16)
    assert cache_key(model_name="m", version="1", digest=digest) != cache_key(
        model_name="m", version="2", digest=digest
    )


@pytest.mark.parametrize("shape", [(3, 12, 2), (2, 5, 12, 2), (0, 12, 2)])
def test_encode_decode_round_trip(shape: tuple[int, ...]) -> None:
    arr = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    back = decode_array(encode_array(arr))
    assert back.shape == shape and back.dtype == np.float32
    np.testing.assert_array_equal(back, arr)


def test_lru_evicts_least_recently_used() -> None:
    cache = LRUCache(max_entries=2, ttl_s=60)
    a, b, c = (np.full((1, 12, 2), v, np.float32) for v in (1, 2, 3))
    run(cache.set("a", a))
    run(cache.set("b", b))
    assert run(cache.get("a")) is not None  # a is now the most recent
    run(cache.set("c", c))
    assert run(cache.get("b")) is None
    assert float(run(cache.get("a"))[0, 0, 0]) == 1.0  # type: ignore[index]
    assert float(run(cache.get("c"))[0, 0, 0]) == 3.0  # type: ignore[index]
    assert len(cache) == 2


def test_lru_entries_expire_and_are_private_copies() -> None:
    cache = LRUCache(max_entries=10, ttl_s=0.05)
    value = np.zeros((1, 12, 2), np.float32)
    run(cache.set("k", value))
    value[:] = 9.0  # the caller's array changes after caching
    got = run(cache.get("k"))
    assert float(got.max()) == 0.0  # type: ignore[union-attr]
    assert not got.flags.writeable  # type: ignore[union-attr]
    asyncio.run(asyncio.sleep(0.08))
    assert run(cache.get("k")) is None and len(cache) == 0


def test_factory_picks_the_backend() -> None:
    assert isinstance(create_cache(redis_url=None, cache_size=10, ttl_s=5), LRUCache)
    assert isinstance(create_cache(redis_url=None, cache_size=0, ttl_s=5), NullCache)
    redis_cache = create_cache(redis_url="redis://127.0.0.1:1/0", cache_size=10, ttl_s=5)
    assert redis_cache.backend == "redis"
    run(redis_cache.close())
