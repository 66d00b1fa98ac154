"""Statistics: fixed-horizon tests against scipy, and the mSPRT's always-valid guarantee."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from trajops.experiments.simulation import SimulationConfig, simulate
from trajops.experiments.stats import mann_whitney, msprt, paired_t, verdict, welch_t


@pytest.fixture
def samples() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.lognormal(-0.8, 0.5, 400), rng.lognormal(-0.7, 0.5, 300)


def test_welch_matches_scipy(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = samples
    res = welch_t(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert res.effect == pytest.approx(b.mean() - a.mean())


def test_paired_matches_scipy(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a = samples[0][:300]
    b = a * 1.05 + np.random.default_rng(2).normal(0, 0.01, 300)
    res = paired_t(a, b)
    assert res.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue, rel=1e-9)
    assert res.p_value < 1e-6 and res.effect > 0
    with pytest.raises(ValueError, match="differ in length"):
        paired_t(a, b[:-1])


def test_mann_whitney(samples: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = samples
    res = mann_whitney(a, b)
    assert res.p_value == pytest.approx(stats.mannwhitneyu(b, a).pvalue, rel=1e-9)
    assert 0.5 < res.statistic < 1  # the challenger's ADE is stochastically larger
    assert res.ci_low < res.effect < res.ci_high


def test_msprt_detects_a_large_regression_and_not_an_equal_one() -> None:
    rng = np.random.default_rng(3)
    a = rng.lognormal(-0.8, 0.5, 2000)
    worse = msprt(a, a[::-1] * 1.3 + rng.normal(0, 0.01, 2000))
    assert worse.p_value < 1e-6 and worse.effect > 0
    assert worse.ci_low > 0  # the always-valid interval excludes "no effect"
    same = msprt(a[:1000], a[1000:])
    assert same.p_value > 0.05
    assert same.ci_low < 0 < same.ci_high


def test_msprt_paired_and_too_few() -> None:
    rng = np.random.default_rng(4)
    d = rng.normal(0.05, 0.1, 500)
    assert msprt(d, scale=0.5).p_value < 0.01
    assert msprt(np.ones(3), np.ones(3)).p_value == 1.0  # under burn-in: no evidence yet


def test_verdict_rules() -> None:
    rng = np.random.default_rng(5)
    a = rng.lognormal(-0.8, 0.5, 600)
    seq = msprt(a, a * 1.5)
    assert verdict(seq, alpha=0.05, min_samples=100, max_samples=10**6, expired=False) == (
        "challenger_worse"
    )
    assert verdict(seq, alpha=0.05, min_samples=1000, max_samples=10**6, expired=False) == (
        "continue"
    )
    better = msprt(a, a * 0.6)
    assert verdict(better, alpha=0.05, min_samples=100, max_samples=10**6, expired=False) == (
        "challenger_better"
    )
    null = msprt(a[:300], a[300:])
    assert verdict(null, alpha=0.05, min_samples=100, max_samples=10**6, expired=True) == (
        "inconclusive"
    )


def test_aa_sequential_fpr_within_alpha_and_naive_peeking_exceeds_it() -> None:
    """500 A/A experiments looked at every 50 observations: the issue's proof."""
    res = simulate(SimulationConfig(n_experiments=500, n_max=2000, look_every=50, seed=11))
    assert res.looks == 40
    assert res.msprt_rejection_rate <= 0.05
    assert res.naive_t_rejection_rate > 0.05 * 2  # repeated significance testing inflates


def test_power_detects_a_ten_percent_regression() -> None:
    res = simulate(
        SimulationConfig(n_experiments=200, n_max=5000, look_every=50, effect=0.10, seed=12)
    )
    assert res.msprt_rejection_rate >= 0.95
    assert res.msprt_correct_direction_rate == res.msprt_rejection_rate
    assert res.median_n_to_detect is not None and res.median_n_to_detect < 2000
