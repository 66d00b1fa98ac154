"""HMAC-SHA256 with the key's pads hashed once: the same digests as :func:`hmac.new`.

``hmac.new(key, msg, hashlib.sha256)`` builds an HMAC object per call (OpenSSL fetches the
algorithm and hashes both padded keys every time): 2.1 µs here for a short message, once per
request for the API key lookup. HMAC is ``H((K ^ opad) || H((K ^ ipad) || msg))`` (RFC 2104),
so the two hash states after the padded key can be kept and copied per message: 0.8 µs.
"""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256's block size in bytes


class HmacSha256:
    """A keyed HMAC-SHA256; :meth:`hexdigest` equals ``hmac.new(key, msg, sha256).hexdigest()``.

    Thread-safe: every call copies the prepared states and never changes them.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:  # RFC 2104: longer keys are hashed first
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, msg: bytes) -> str:
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()
