"""How much a result owes to chance: the spread over seeds, and bootstrap intervals.

Small test scenes make the seed of a model (its initialisation, its samples) move ADE by a few
centimetres; a table of one seed can rank two models by noise. :func:`seed_summary` reports each
metric's mean and standard deviation over seeds; :func:`bootstrap_ci` gives the interval of a
mean over agents (percentile bootstrap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SUMMARISED = (
    "ade",
    "fde",
    "min_ade",
    "min_fde",
    "miss_rate",
    "collision_rate",
    "min_fde_miss_rate",
    "kde_nll",
    "coverage_50",
    "coverage_90",
)
"""Row keys :func:`seed_summary` spreads (those present in every seed's row)."""


def bootstrap_ci(
    values: np.ndarray, *, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` ``(N,)`` (NaNs dropped).

    Returns:
        ``(low, high)``; ``(nan, nan)`` with fewer than two values.
    """
    finite = values[np.isfinite(values)]
    if len(finite) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(finite), size=(n_resamples, len(finite)))  # (R, N)
    means = finite[picks].mean(axis=1)  # (R,)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def seed_summary(runs: Mapping[int, Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Per model and scene, each metric's mean and standard deviation over the seeds.

    Args:
        runs: seed -> the result rows of that seed (``{"model", "scene", metric...}``).

    Returns:
        One row per (model, scene) in the first seed's order: ``{"model", "scene", "seeds",
        "<metric>": {"mean", "std", "values"}}`` for every metric of :data:`SUMMARISED` that
        every seed reports (``std`` is the sample standard deviation; 0 with one seed).
    """
    seeds = sorted(runs)
    keyed = [{(r["model"], r["scene"]): r for r in runs[s]} for s in seeds]
    out = []
    for model, scene in keyed[0]:
        rows = [k.get((model, scene)) for k in keyed]
        if any(r is None for r in rows):
            continue
        row: dict[str, Any] = {"model": model, "scene": scene, "seeds": seeds}
        for metric in SUMMARISED:
            values = [r[metric] for r in rows if r is not None and metric in r]
            if len(values) == len(seeds):
                arr = np.asarray(values, dtype=np.float64)
                row[metric] = {
                    "mean": float(arr.mean()),
                    "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
                    "values": [float(v) for v in arr],
                }
        out.append(row)
    return out
