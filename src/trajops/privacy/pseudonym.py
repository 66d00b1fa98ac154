"""Keyed pseudonyms: identifiers are replaced by an HMAC before anything is stored or logged."""

from __future__ import annotations

from trajops._hmac import HmacSha256
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
    every frame, and one dict lookup costs a tenth of an HMAC.
    """

    def __init__(self, key: bytes, *, memo_size: int = 65_536) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._mac = HmacSha256(key)
        self._memo: dict[tuple[str, str], str] = {}
        self._memo_size = memo_size

    def __call__(self, identifier: str, *, namespace: str = "agent") -> str:
        found = self._memo.get((namespace, identifier))
        if found is not None:
            return found
        token = self._mac.hexdigest(f"{namespace}\x00{identifier}".encode())[:32]
        if len(self._memo) >= self._memo_size:  # identifiers come from the network: bounded
            self._memo.clear()
        self._memo[(namespace, identifier)] = token
        return token
