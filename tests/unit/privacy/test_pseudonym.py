"""Keyed pseudonyms: the documented HMAC, memoised, namespaced and bounded."""

from __future__ import annotations

import hashlib
import hmac

from trajops.privacy.pseudonym import Pseudonymiser


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
    ids = [f"ped-{i}" for i in (3, 30, 3, 31)]  # memoised and fresh, in order
    assert memo.many(ids) == [fresh(i) for i in ids]
    assert memo.many(ids, namespace="scene") == [fresh(i, namespace="scene") for i in ids]


def test_pseudonyms_are_the_documented_hmac() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"agent\x00ped-1", hashlib.sha256).hexdigest()[:32]
    assert Pseudonymiser(key)("ped-1") == expected
