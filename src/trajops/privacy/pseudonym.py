"""Keyed pseudonyms: identifiers are replaced by an HMAC before anything is stored or logged."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from trajops.settings import Settings

KEY_FILE = "pseudonym.key"


def load_or_create_key(settings: Settings) -> bytes:
    """The HMAC key: ``TRAJOPS_PSEUDONYM_KEY`` or a random key kept (mode 0600) under ``home``.

    Replicas that share a store must share the key: set it explicitly in production.
    """
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    path: Path = settings.ensure_home() / KEY_FILE
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip().encode()


class Pseudonymiser:
    """Maps an identifier to a stable, non-reversible token (hex HMAC-SHA256, 32 chars)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key

    def __call__(self, identifier: str, *, namespace: str = "agent") -> str:
        mac = hmac.new(self._key, f"{namespace}\x00{identifier}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]
