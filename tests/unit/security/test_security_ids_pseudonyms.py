"""Request-path ids (blocks of OS randomness) and memoised pseudonyms."""

from __future__ import annotations

import os
import re

from trajops._ids import random_hex
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
