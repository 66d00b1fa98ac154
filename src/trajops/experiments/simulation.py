"""Seeded, vectorised simulations of many experiments: false-positive rate and power.

ADE per scored agent is drawn from a log-normal (right-skewed, like real ADE) with a given
mean and coefficient of variation; a regression multiplies the challenger's mean. Every
experiment is looked at every ``look_every`` observations per arm, and both the mSPRT and a
naive Welch t-test are applied at every look, the way a dashboard is watched in practice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from trajops.experiments.stats import _prefix_moments, msprt_log_lr


@dataclass(frozen=True)
class SimulationConfig:
    """One batch of simulated experiments."""

    n_experiments: int = 500
    n_max: int = 2000
    """Observations per arm after which an experiment stops undecided."""
    look_every: int = 50
    alpha: float = 0.05
    tau: float = 0.1
    mean_ade: float = 0.5
    cv: float = 0.6
    """Standard deviation / mean of per-agent ADE."""
    effect: float = 0.0
    """Relative change of the challenger's mean ADE (0.1: a 10 % regression)."""
    seed: int = 0


@dataclass(frozen=True)
class SimulationResult:
    """How often each procedure rejected, and when the mSPRT did."""

    config: SimulationConfig
    msprt_rejection_rate: float
    naive_t_rejection_rate: float
    msprt_correct_direction_rate: float
    median_n_to_detect: float | None
    """Median observations per arm at the mSPRT's first rejection, among experiments that
    rejected (None when none did)."""
    looks: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "config": asdict(self.config)}


def _lognormal(
    rng: np.random.Generator, mean: float, cv: float, size: tuple[int, int]
) -> np.ndarray:
    sigma2 = np.log1p(cv**2)
    mu = np.log(mean) - sigma2 / 2
    return rng.lognormal(mu, np.sqrt(sigma2), size=size)


def simulate(config: SimulationConfig, *, pool: np.ndarray | None = None) -> SimulationResult:
    """Run ``config.n_experiments`` experiments at once and count rejections at any look.

    Args:
        config: the batch.
        pool: ``(M,)`` observed per-agent ADE values to resample (bootstrap) instead of the
            log-normal; the challenger's draws are multiplied by ``1 + effect``.
    """
    rng = np.random.default_rng(config.seed)
    shape = (config.n_experiments, config.n_max)
    if pool is None:
        a = _lognormal(rng, config.mean_ade, config.cv, shape)  # (E, N) control
        b = _lognormal(rng, config.mean_ade * (1 + config.effect), config.cv, shape)  # (E, N)
    else:
        a = rng.choice(pool, size=shape)  # (E, N)
        b = rng.choice(pool, size=shape) * (1 + config.effect)  # (E, N)
    ns = np.arange(config.look_every, config.n_max + 1, config.look_every)  # (L,)
    mean_a, var_a = np.empty((shape[0], len(ns))), np.empty((shape[0], len(ns)))
    mean_b, var_b = np.empty_like(mean_a), np.empty_like(mean_a)
    for i in range(shape[0]):  # cumulative sums per row: O(E N) memory in total
        mean_a[i], var_a[i] = _prefix_moments(a[i], ns)
        mean_b[i], var_b[i] = _prefix_moments(b[i], ns)
    se2 = var_a / ns + var_b / ns  # (E, L)
    diff = mean_b - mean_a  # (E, L)
    tau2 = (config.tau * mean_a) ** 2
    log_lr = msprt_log_lr(diff, se2, tau2)  # (E, L)
    hit = log_lr >= np.log(1 / config.alpha)  # (E, L)
    rejected = hit.any(axis=1)  # (E,)
    first = np.argmax(hit, axis=1)  # (E,) first look that rejected
    direction = np.sign(diff[np.arange(shape[0]), first])
    want = np.sign(config.effect) if config.effect else 0.0
    correct = rejected & (direction == want) if want else np.zeros_like(rejected)
    # Naive: Welch t-test at each look, stop at the first p < alpha.
    df = se2**2 / ((var_a / ns) ** 2 / (ns - 1) + (var_b / ns) ** 2 / (ns - 1))
    p_naive = 2 * stats.t.sf(np.abs(diff) / np.sqrt(se2), df)  # (E, L)
    naive = (p_naive < config.alpha).any(axis=1)
    median_n = float(np.median(ns[first[rejected]])) if rejected.any() else None
    return SimulationResult(
        config=config,
        msprt_rejection_rate=float(rejected.mean()),
        naive_t_rejection_rate=float(naive.mean()),
        msprt_correct_direction_rate=float(correct.mean()),
        median_n_to_detect=median_n,
        looks=len(ns),
    )
