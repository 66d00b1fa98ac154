"""Ids for the request path: random (:func:`random_hex`) and time-ordered (:func:`ordered_hex`).

Both draw 128 bits at a time from blocks of OS randomness: ``os.urandom`` is a system call
that releases the interpreter lock, and called twice per request on the event loop, each call
was a point where another thread (the log pipe's sender, the status reader) took the lock and
the loop waited to get it back. The pool draws 4 KiB at a time and hands out 16-byte slices,
one system call per 256 ids; the bytes are the same cryptographic randomness, each used once.

Ids that become keys of a store index (request ids, audit record ids) are time-ordered: a
random key lands on a random page of the index, so once the index outgrows the cache every
committed batch rewrites as many index pages as it has rows (in SQLite's WAL, or PostgreSQL's
full-page writes). ``bench/log_writer.py`` measures the difference.
"""

from __future__ import annotations

import os
import threading
import time

_BLOCK = 4096
_ID_BYTES = 16

_lock = threading.Lock()
_pool = b""
_offset = 0
_last_ms = 0
_counter = 0

# the variant's two bits (0b10) over the top of the random tail's first hex digit
_VARIANT_NIBBLE = {f"{n:x}": f"{0x8 | (n & 0x3):x}" for n in range(16)}


def _draw() -> bytes:
    """16 fresh random bytes (call with ``_lock`` held)."""
    global _pool, _offset
    if _offset + _ID_BYTES > len(_pool):
        _pool, _offset = os.urandom(_BLOCK), 0
    start = _offset
    _offset = start + _ID_BYTES
    return _pool[start : start + _ID_BYTES]


def random_hex() -> str:
    """32 hex characters of fresh OS randomness (as unique as ``uuid4().hex``)."""
    with _lock:
        return _draw().hex()


def ordered_hex() -> str:
    """A UUIDv7 (RFC 9562) as 32 hex characters: time-ordered, then random.

    48 bits of Unix time in milliseconds, the version, a 12-bit counter (RFC 9562's method 1:
    seeded at random each millisecond, incremented within one, so the ids of this process
    sort in the order they were made), the variant and 62 random bits. Ids of several
    processes interleave within a millisecond. They reveal when they were made, to the
    millisecond.
    """
    global _last_ms, _counter
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        drawn = _draw()
        if now_ms > _last_ms:
            _last_ms, _counter = now_ms, int.from_bytes(drawn[8:10]) & 0x7FF  # room to count
        else:  # the same millisecond (or the clock stepped back): count on from the last id
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        head = f"{_last_ms:012x}7{_counter:03x}"
    tail = drawn[:8].hex()
    return head + _VARIANT_NIBBLE[tail[0]] + tail[1:]


def ordered_hex_ms(value: str) -> int | None:
    """The Unix milliseconds of an :func:`ordered_hex` id (any 32-hex-digit UUIDv7), else None."""
    if len(value) != 32 or value[12] != "7":
        return None
    try:
        return int(value[:12], 16)
    except ValueError:
        return None


def _reset_after_fork() -> None:  # a forked child must not hand out its parent's next ids
    global _pool, _offset, _lock
    _lock = threading.Lock()
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_reset_after_fork)
