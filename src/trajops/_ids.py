"""Random ids for the request path: 128 bits from the OS generator, drawn in blocks.

``os.urandom`` is a system call that releases the interpreter lock: called twice per request
on the event loop, each call was a point where another thread (the log pipe's sender, the
status reader) took the lock and the loop waited to get it back. :func:`random_hex` draws
4 KiB at a time and hands out 16-byte slices, one system call per 256 ids; the bytes are the
same cryptographic randomness, each used once.
"""

from __future__ import annotations

import os
import threading

_BLOCK = 4096
_ID_BYTES = 16

_lock = threading.Lock()
_pool = b""
_offset = 0


def random_hex() -> str:
    """32 hex characters of fresh OS randomness (as unique as ``uuid4().hex``)."""
    global _pool, _offset
    with _lock:
        if _offset + _ID_BYTES > len(_pool):
            _pool, _offset = os.urandom(_BLOCK), 0
        start = _offset
        _offset = start + _ID_BYTES
        return _pool[start : start + _ID_BYTES].hex()


def _reset_after_fork() -> None:  # a forked child must not hand out its parent's next ids
    global _pool, _offset, _lock
    _lock = threading.Lock()
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)
