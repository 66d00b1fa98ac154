"""Seed spread and bootstrap intervals: known answers."""

from __future__ import annotations

import numpy as np

from trajops.evaluation.spread import bootstrap_ci, seed_summary


def test_bootstrap_interval_holds_the_mean_and_narrows_with_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 0.5, 30)
    large = rng.normal(1.0, 0.5, 3000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 5  # about sqrt(100) = 10 times narrower
    assert abs((hi_l - lo_l) - 2 * 1.96 * 0.5 / np.sqrt(3000)) < 0.01  # the normal interval
    assert np.isnan(bootstrap_ci(np.array([1.0]))[0])
    assert bootstrap_ci(np.array([2.0, np.nan, 2.0])) == (2.0, 2.0)


def test_seed_summary_means_and_spreads() -> None:
    runs = {
        0: [{"model": "m", "scene": "eth", "ade": 1.0, "fde": 2.0}],
        1: [{"model": "m", "scene": "eth", "ade": 1.2, "fde": 2.0}],
        2: [{"model": "m", "scene": "eth", "ade": 1.4, "fde": 2.0, "min_ade": 0.5}],
    }
    (row,) = seed_summary(runs)
    assert row["seeds"] == [0, 1, 2]
    assert abs(row["ade"]["mean"] - 1.2) < 1e-12 and abs(row["ade"]["std"] - 0.2) < 1e-12
    assert row["fde"]["std"] == 0.0
    assert "min_ade" not in row  # not reported by every seed
    assert seed_summary({0: runs[0]})[0]["ade"]["std"] == 0.0
