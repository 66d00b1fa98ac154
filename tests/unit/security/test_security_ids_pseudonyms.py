"""Request-path ids (blocks of OS randomness, time-ordered UUIDv7s), memoised pseudonyms and
the prepared HMAC behind them and the API key digests."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
import uuid

import pytest

from trajops import _ids
from trajops._hmac import HmacSha256
from trajops._ids import ordered_hex, ordered_hex_ms, random_hex
from trajops.privacy.pseudonym import Pseudonymiser


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


def test_memoised_pseudonyms_equal_fresh_ones_and_stay_bounded() -> None:
    key = b"k" * 32
    memo = Pseudonymiser(key, memo_size=8)
    fresh = Pseudonymiser(key, memo_size=1)
    for _ in range(2):  # the second round is answered from the memo
        for i in range(20):
            assert memo(f"ped-{i}") == fresh(f"ped-{i}")
            assert memo(f"ped-{i}", namespace="client") == fresh(f"ped-{i}", namespace="client")
    assert memo("a") != memo("a", namespace="scene")  # namespaces stay apart
    assert len(memo._memo) <= 8
    assert Pseudonymiser(b"x" * 32)("ped-1") != memo("ped-1")  # keyed


@pytest.mark.parametrize("key_len", [16, 32, 63, 64, 65, 200])
def test_the_prepared_hmac_equals_the_standard_one(key_len: int) -> None:
    key = bytes(range(256))[:key_len]
    mac = HmacSha256(key)
    for msg in (b"", b"a", b"tok_" + b"x" * 43, bytes(range(256)) * 3):
        assert mac.hexdigest(msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()
    assert mac.hexdigest(b"a") == mac.hexdigest(b"a")  # the prepared states are not consumed


def test_pseudonyms_are_the_documented_hmac() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"agent\x00ped-1", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymiser(key)("ped-1") == expected
