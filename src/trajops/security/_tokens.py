"""What API keys and sessions share: peppered token digests and a short in-process cache.

A token is ``<prefix>_<id>_<secret>``: ``id`` (12 hex characters) is public and used for
lookup; ``secret`` is ``secrets.token_urlsafe(32)`` (256 bits). The store keeps
``HMAC-SHA256(pepper, token)`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_CACHE_MAX = 10_000
_DUMMY_DIGEST = "0" * 64


def digest_matches(stored: str | None, digest: str) -> bool:
    """Whether a row's stored digest (``None``: no row with that id) equals ``digest``, in the
    same time either way, so timing does not reveal which ids exist."""
    same = hmac.compare_digest(stored if stored is not None else _DUMMY_DIGEST, digest)
    return same and stored is not None


def token_pattern(prefix: str) -> re.Pattern[str]:
    """``<prefix>_<12 hex>_<43 url-safe>``; group 1 is the id."""
    return re.compile(rf"^{prefix}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{43}})$")


def new_token(prefix: str) -> tuple[str, str]:
    """A fresh ``(id, token)``."""
    token_id = secrets.token_hex(6)
    return token_id, f"{prefix}_{token_id}_{secrets.token_urlsafe(32)}"


class TokenDigest:
    """``HMAC-SHA256(pepper, token)`` as hex, from a keyed state prepared once."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise ValueError("token pepper must be at least 16 bytes")
        self._mac = hmac.new(pepper, digestmod=hashlib.sha256)  # copied per token

    def __call__(self, token: str) -> str:
        mac = self._mac.copy()
        mac.update(token.encode())
        return mac.hexdigest()


class VerifiedCache(Generic[T]):
    """Verified credentials by digest, each trusted for ``ttl_s`` (bounded, thread-safe).

    Args:
        ttl_s: seconds an entry is trusted (0: nothing is kept).
        clock: monotonic clock, injectable for tests.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, digest: str) -> T | None:
        with self._lock:
            cached = self._items.get(digest)
        if cached is None or cached[0] <= self._clock():
            return None
        return cached[1]

    def put(self, digest: str, value: T) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            self._items[digest] = (self._clock() + self.ttl_s, value)
            self._items.move_to_end(digest)
            while len(self._items) > _CACHE_MAX:
                self._items.popitem(last=False)

    def forget(self, match: Callable[[T], bool]) -> None:
        """Drop every entry whose value ``match`` accepts."""
        with self._lock:
            for digest in [d for d, (_, v) in self._items.items() if match(v)]:
                del self._items[digest]
