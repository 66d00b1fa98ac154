"""Prediction cache: one small protocol, an in-process LRU (embedded) and a Redis adapter.

Keys are ``<prefix><model name>:<version>:<digest>`` where the digest covers the normalised
input (positions rounded to :data:`ROUND_DECIMALS` decimals, ``-0.0`` folded into ``0.0``)
and the sample count, so two requests that differ by less than the rounding share an entry and a
new model version never reads an old version's predictions.

Adapters raise on failure; the caller (:class:`~trajops.prediction.service.PredictionService`)
turns every failure into a miss and a metric, so a broken cache never fails a request.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

ROUND_DECIMALS = 3
"""Positions are rounded to millimetres before hashing (and before predicting)."""


def normalise_obs(obs: np.ndarray) -> np.ndarray:
    """``(N, T_obs, 2)`` positions rounded to :data:`ROUND_DECIMALS`, with ``-0.0`` as ``0.0``."""
    norm = np.asarray(obs, dtype=np.float64).round(ROUND_DECIMALS)  # (N, T_obs, 2), a new array
    norm += 0.0  # -0.0 + 0.0 is 0.0; in place: no second array
    return norm


def input_digest(obs: np.ndarray, num_samples: int) -> bytes:
    """16-byte digest of normalised positions ``(N, T_obs, 2)`` and the sample count."""
    h = hashlib.blake2b(digest_size=16)
    h.update(struct.pack("<II", num_samples, obs.shape[0]))
    h.update(np.ascontiguousarray(obs, dtype="<f8").tobytes())
    return h.digest()


def cache_key(*, model_name: str, version: str, digest: bytes) -> str:
    """The cache key of one prediction (the adapter adds its own prefix)."""
    return f"{model_name}:{version}:{digest.hex()}"


def encode_array(arr: np.ndarray) -> bytes:
    """Compact bytes of a float32 array: ndim, dims, then the little-endian values."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    return struct.pack(f"<B{arr.ndim}I", arr.ndim, *arr.shape) + arr.tobytes()


def decode_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`encode_array` (a read-only float32 array)."""
    ndim = blob[0]
    shape = struct.unpack_from(f"<{ndim}I", blob, 1)
    arr = np.frombuffer(blob, dtype="<f4", offset=1 + 4 * ndim).reshape(shape)
    return arr.astype(np.float32, copy=False)


@runtime_checkable
class PredictionCache(Protocol):
    """Where predictions are kept between requests (values are float32 arrays)."""

    backend: str
    """Short name for metrics and status (``lru``, ``redis``, ``none``)."""

    async def get(self, key: str) -> np.ndarray | None:
        """The cached array or ``None``; raises when the backend fails."""
        ...

    async def set(self, key: str, value: np.ndarray) -> None:
        """Store an array for the configured TTL; raises when the backend fails."""
        ...

    async def status(self) -> dict[str, Any]:
        """``{"backend", "ok", ...}`` for ``/readyz``; never raises."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class NullCache:
    """No caching (``cache_size = 0`` and no Redis)."""

    backend = "none"

    async def get(self, key: str) -> np.ndarray | None:
        return None

    async def set(self, key: str, value: np.ndarray) -> None:
        return None

    async def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        return None


class LRUCache:
    """In-process LRU with a TTL, used from the event loop only (no locking needed)."""

    backend = "lru"

    def __init__(self, *, max_entries: int, ttl_s: float) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._data: OrderedDict[str, tuple[float, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> np.ndarray | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: np.ndarray) -> None:
        value = np.array(value, dtype=np.float32)  # a private, read-only copy
        value.setflags(write=False)
        self._data[key] = (time.monotonic() + self.ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)

    async def status(self) -> dict[str, Any]:
        return {"backend": self.backend, "ok": True, "entries": len(self._data)}

    async def close(self) -> None:
        self._data.clear()


@dataclass(frozen=True)
class RedisCacheConfig:
    """How the Redis adapter talks to Redis."""

    key_prefix: str = "trajops:pred:"
    timeout_s: float = 0.05
    """Connect and socket timeout: a slow cache must not slow the API down."""
    retry_after_s: float = 1.0
    """After a failure, skip Redis for this long instead of paying the timeout per request."""


class CacheUnavailableError(RuntimeError):
    """Raised while the Redis adapter is backing off after a failure."""


class RedisCache:
    """Shared cache in Redis (``redis.asyncio``), with a short timeout and a back-off."""

    backend = "redis"

    def __init__(self, url: str, *, ttl_s: int, config: RedisCacheConfig | None = None) -> None:
        import redis.asyncio as aioredis

        self.config = config or RedisCacheConfig()
        self.ttl_s = ttl_s
        self._client = aioredis.Redis.from_url(
            url,
            socket_timeout=self.config.timeout_s,
            socket_connect_timeout=self.config.timeout_s,
            retry_on_timeout=False,
            health_check_interval=30,
        )
        self._down_until = 0.0
        self.last_error: str | None = None

    def _guard(self) -> None:
        if time.monotonic() < self._down_until:
            raise CacheUnavailableError(f"redis backing off after: {self.last_error}")

    def _failed(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._down_until = time.monotonic() + self.config.retry_after_s

    async def get(self, key: str) -> np.ndarray | None:
        self._guard()
        try:
            blob = await self._client.get(self.config.key_prefix + key)
        except Exception as exc:
            self._failed(exc)
            raise
        return None if blob is None else decode_array(blob)

    async def set(self, key: str, value: np.ndarray) -> None:
        self._guard()
        try:
            await self._client.set(self.config.key_prefix + key, encode_array(value), ex=self.ttl_s)
        except Exception as exc:
            self._failed(exc)
            raise

    async def status(self) -> dict[str, Any]:
        try:
            await self._client.ping()
        except Exception as exc:
            self._failed(exc)
            return {"backend": self.backend, "ok": False, "error": self.last_error}
        self._down_until = 0.0
        return {"backend": self.backend, "ok": True}

    async def close(self) -> None:
        await self._client.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


def create_cache(
    *,
    redis_url: str | None,
    cache_size: int,
    ttl_s: int,
    redis_config: RedisCacheConfig | None = None,
) -> PredictionCache:
    """The configured cache: Redis when a URL is given, else an LRU, else none.

    Args:
        redis_url: Redis URL (``redis://host:port/db``) or ``None``.
        cache_size: LRU entries; ``0`` disables the in-process cache.
        ttl_s: seconds an entry lives.
        redis_config: Redis adapter tuning.
    """
    if redis_url:
        return RedisCache(redis_url, ttl_s=ttl_s, config=redis_config)
    if cache_size > 0:
        return LRUCache(max_entries=cache_size, ttl_s=ttl_s)
    return NullCache()
