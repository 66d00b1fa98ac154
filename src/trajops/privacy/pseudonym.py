"""Keyed pseudonyms: identifiers are replaced by an HMAC before anything is stored or logged."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from trajops._secrets import load_or_create_secret
from trajops.settings import Settings

KEY_FILE = "pseudonym.key"


def load_or_create_key(settings: Settings) -> bytes:
    """The HMAC key: ``TRAJOPS_PSEUDONYM_KEY`` or a random key kept (mode 0600) under ``home``.

    Replicas that share a store must share the key: set it explicitly in production.
    """
    return load_or_create_secret(settings, settings.pseudonym_key, KEY_FILE)


class Pseudonymiser:
    """Maps an identifier to a stable, non-reversible token (hex HMAC-SHA256, 32 chars).

    Recent pseudonyms are memoised (at most ``memo_size``): a tracked agent comes back with
    every frame, and a dict lookup is cheaper than an HMAC. The keyed HMAC is prepared once
    and copied per identifier.
    """

    def __init__(self, key: bytes, *, memo_size: int = 65_536) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._memo: dict[tuple[str, str], str] = {}
        self._memo_size = memo_size

    def __call__(self, identifier: str, *, namespace: str = "agent") -> str:
        found = self._memo.get((namespace, identifier))
        if found is not None:
            return found
        mac = self._mac.copy()
        mac.update(f"{namespace}\x00{identifier}".encode())
        token = mac.hexdigest()[:32]
        if len(self._memo) >= self._memo_size:  # identifiers come from the network: bounded
            self._memo.clear()
        self._memo[(namespace, identifier)] = token
        return token

    def many(self, identifiers: Iterable[str], *, namespace: str = "agent") -> list[str]:
        """The pseudonyms of ``identifiers``, in order (memoised ones looked up, the rest
        computed)."""
        memo = self._memo
        return [memo.get((namespace, i)) or self(i, namespace=namespace) for i in identifiers]


def unit_hash(salt: str, unit_id: str) -> str:
    """A salted, non-reversible key of an experiment unit (hex, 32 chars); stored instead of
    the id (the experiment's salt keeps keys of different experiments unlinkable)."""
    return hashlib.sha256(f"{salt}\x00{unit_id}".encode()).hexdigest()[:32]
