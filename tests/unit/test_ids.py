"""Request-path ids: blocks of OS randomness, time-ordered UUIDv7s and their milliseconds."""

from __future__ import annotations

import os
import re
import time
import uuid

import pytest

from trajops import _ids
from trajops._ids import ordered_hex, ordered_hex_ms, random_hex


def test_random_ids_are_128_bit_hex_and_never_repeat() -> None:
    ids = [random_hex() for _ in range(20_000)]  # many blocks of 256
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_reuse_the_parents_next_ids() -> None:
    random_hex()  # the parent holds a partly used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(read)
        os.write(write, random_hex().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child != random_hex()


def test_ordered_ids_are_uuid7s_in_the_order_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    ids = [ordered_hex() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for i in ids[::97]:
        parsed = uuid.UUID(i)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    stamps = [int(i[:12], 16) for i in ids]  # 48-bit Unix milliseconds
    assert before <= stamps[0] and stamps[-1] <= after + 1  # +1: a full millisecond borrows


def test_ordered_ids_stay_sorted_past_4096_per_millisecond_and_a_clock_step_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1_800_000_000_000 * 1_000_000]  # ns
    monkeypatch.setattr(_ids.time, "time_ns", lambda: now[0])
    monkeypatch.setattr(_ids, "_last_ms", 0)
    same_ms = [ordered_hex() for _ in range(5000)]  # more than the 12-bit counter holds
    now[0] -= 5_000_000_000  # the clock steps back 5 s
    stepped_back = [ordered_hex() for _ in range(10)]
    ids = same_ms + stepped_back
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {int(i[:12], 16) for i in same_ms} == {1_800_000_000_000, 1_800_000_000_001}
    assert all(uuid.UUID(i).version == 7 for i in ids)


def test_the_millisecond_of_an_ordered_id_is_read_back() -> None:
    before = time.time_ns() // 1_000_000
    made = ordered_hex_ms(ordered_hex())
    assert made is not None and before <= made <= time.time_ns() // 1_000_000
    assert ordered_hex_ms(uuid.uuid4().hex) is None  # version 4, not 7
    assert ordered_hex_ms("x" * 12 + "7" + "0" * 19) is None  # its time is not hex
    assert ordered_hex_ms("abc") is None
