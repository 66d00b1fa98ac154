"""Sticky hash assignment and the sample-ratio-mismatch check."""

from __future__ import annotations

from collections import Counter

import pytest
from scipy import stats

from trajops.experiments.assignment import assign, bucket, srm_p_value
from trajops.experiments.config import Arm
from trajops.privacy.pseudonym import unit_hash

ARMS = (Arm("control", "champion", 80), Arm("treatment", "challenger", 20))


def test_assignment_is_sticky_and_salted() -> None:
    units = [f"agent-{i}" for i in range(500)]
    first = [assign("salt-a", u, ARMS).name for u in units]
    assert first == [assign("salt-a", u, ARMS).name for u in units]
    other = [assign("salt-b", u, ARMS).name for u in units]
    assert first != other  # a new experiment reshuffles
    assert unit_hash("salt-a", "agent-1") != unit_hash("salt-b", "agent-1")
    assert 0.0 <= bucket("s", "u") < 1.0


def test_weights_are_respected() -> None:
    counts = Counter(assign("w", f"u{i}", ARMS).name for i in range(20_000))
    share = counts["treatment"] / 20_000
    assert share == pytest.approx(0.2, abs=0.01)
    assert stats.chisquare([counts["control"], counts["treatment"]], [16_000, 4_000]).pvalue > 1e-3
    zero = (Arm("a", "champion", 1), Arm("b", "challenger", 0))
    assert {assign("w", f"u{i}", zero).name for i in range(1000)} == {"a"}


def test_srm() -> None:
    assert srm_p_value([8000, 2000], [80, 20]) == pytest.approx(1.0)
    assert srm_p_value([5000, 5000], [80, 20]) < 1e-6
    assert srm_p_value([0, 0], [50, 50]) is None
