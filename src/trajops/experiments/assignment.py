"""Sticky, deterministic assignment of units (agents, clients, scenes) to arms.

``hash(salt, unit) -> [0, 1)`` is compared with the cumulative arm weights: the same unit
always lands in the same arm of one experiment (on any replica, after any restart), and a new
salt per experiment makes assignments of different experiments independent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from scipy import stats

from trajops.experiments.config import Arm

_SCALE = float(2**64)


def bucket(salt: str, unit_id: str) -> float:
    """The unit's uniform position in ``[0, 1)`` for this salt."""
    digest = hashlib.sha256(f"{salt}\x00{unit_id}".encode()).digest()
    return int.from_bytes(digest[8:16], "big") / _SCALE


def assign(salt: str, unit_id: str, arms: Sequence[Arm]) -> Arm:
    """The arm ``unit_id`` belongs to, with probability proportional to each arm's weight."""
    weights = np.array([a.weight for a in arms], dtype=np.float64)  # (A,)
    edges = np.cumsum(weights) / weights.sum()  # (A,)
    idx = int(np.searchsorted(edges, bucket(salt, unit_id), side="right"))
    return arms[min(idx, len(arms) - 1)]


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float | None:
    """Sample-ratio-mismatch check: chi-square p-value of observed counts vs the weights.

    Returns:
        The p-value, or ``None`` when there is nothing to test (no units yet, or fewer than
        two arms with positive weight).
    """
    observed = np.asarray(counts, dtype=np.float64)  # (A,)
    w = np.asarray(weights, dtype=np.float64)  # (A,)
    keep = w > 0
    total = observed[keep].sum()
    if keep.sum() < 2 or total <= 0:
        return None
    expected = total * w[keep] / w[keep].sum()
    return float(stats.chisquare(observed[keep], expected).pvalue)
