"""Statistics of an experiment: fixed-horizon tests, the always-valid mSPRT, the verdict.

Lower is better for every metric here (ADE, FDE in metres). ``a`` is the control, ``b`` the
challenger; effects are ``mean(b) - mean(a)`` so a positive effect is a worse challenger.

The sequential test is the mixture sequential probability ratio test of Johari, Pekelis and
Walsh, "Always Valid Inference: Bringing Sequential Analysis to A/B Testing"
(arXiv:1512.04922), with a normal mixing prior ``theta ~ N(0, tau^2)`` on the difference of
means. With ``V`` the variance of the observed difference ``d``, the mixture likelihood ratio is

    Lambda_n = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))

and ``p_n = min(1, 1 / max_{k<=n} Lambda_k)`` is a p-value that stays valid however often
it is looked at (Ville's inequality), so an experiment can be checked after every batch and
stopped the moment ``p_n <= alpha`` without inflating the false-positive rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

Verdict = Literal["continue", "challenger_better", "challenger_worse", "inconclusive"]
VERDICTS: tuple[str, ...] = ("continue", "challenger_better", "challenger_worse", "inconclusive")


@dataclass(frozen=True)
class TestResult:
    """One two-sample (or paired) comparison.

    Attributes:
        effect: ``mean(b) - mean(a)`` (positive: challenger worse).
        ci_low, ci_high: ``1 - alpha`` confidence interval of ``effect``.
        relative: ``effect / mean(a)``.
    """

    test: str
    statistic: float
    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    relative: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def _arrays(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()


def _rel(effect: float, base: float) -> float:
    return effect / base if base > 0 else float("nan")


def welch_t(a: Any, b: Any, *, alpha: float = 0.05) -> TestResult:
    """Welch's unequal-variance t-test with a Welch-Satterthwaite confidence interval."""
    x, y = _arrays(a, b)
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = math.sqrt(va + vb)
    effect = float(y.mean() - x.mean())
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1)) if se > 0 else 1.0
    t = effect / se if se > 0 else 0.0
    p = float(2 * stats.t.sf(abs(t), df)) if se > 0 else 1.0
    half = float(stats.t.ppf(1 - alpha / 2, df) * se)
    return TestResult(
        "welch_t",
        t,
        p,
        effect,
        effect - half,
        effect + half,
        _rel(effect, float(x.mean())),
        len(x),
        len(y),
    )


def mann_whitney(a: Any, b: Any, *, alpha: float = 0.05) -> TestResult:
    """Mann-Whitney U (two-sided); ``statistic`` is P(challenger > control), 0.5 = no shift.

    The effect and interval are the Hodges-Lehmann shift estimate with a bootstrap-free normal
    approximation, which is robust to the heavy right tail of ADE.
    """
    x, y = _arrays(a, b)
    res = stats.mannwhitneyu(y, x, alternative="two-sided")
    auc = float(res.statistic) / (len(x) * len(y))
    rng = np.random.default_rng(0)  # the shift estimate on a bounded subsample: O(n) memory
    xs = x if len(x) <= 1000 else rng.choice(x, 1000, replace=False)
    ys = y if len(y) <= 1000 else rng.choice(y, 1000, replace=False)
    diffs = np.sort((ys[:, None] - xs[None, :]).ravel())  # (n_b * n_a,)
    shift = float(np.median(diffs))
    z = stats.norm.ppf(1 - alpha / 2)
    m, n = len(xs), len(ys)
    k = int(max(0, math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))))
    lo, hi = float(diffs[k]), float(diffs[min(len(diffs) - 1, len(diffs) - 1 - k)])
    return TestResult(
        "mann_whitney_u",
        auc,
        float(res.pvalue),
        shift,
        lo,
        hi,
        _rel(shift, float(np.median(x))),
        len(x),
        len(y),
    )


def paired_t(a: Any, b: Any, *, alpha: float = 0.05) -> TestResult:
    """Paired t-test of ``b - a`` (shadow mode: both arms scored on the same requests)."""
    x, y = _arrays(a, b)
    if len(x) != len(y):
        raise ValueError(f"paired samples differ in length: {len(x)} vs {len(y)}")
    d = y - x  # (n,)
    se = d.std(ddof=1) / math.sqrt(len(d))
    effect = float(d.mean())
    t = effect / se if se > 0 else 0.0
    p = float(2 * stats.t.sf(abs(t), len(d) - 1)) if se > 0 else 1.0
    half = float(stats.t.ppf(1 - alpha / 2, len(d) - 1) * se)
    return TestResult(
        "paired_t",
        t,
        p,
        effect,
        effect - half,
        effect + half,
        _rel(effect, float(x.mean())),
        len(x),
        len(y),
    )


def msprt_log_lr(diff: np.ndarray, var: np.ndarray, tau2: np.ndarray | float) -> np.ndarray:
    """Log mixture likelihood ratio of a normal mean difference ``diff`` with variance ``var``.

    Vectorised over any shape (experiments x looks in the simulations).
    """
    var = np.maximum(var, 1e-300)
    return 0.5 * np.log(var / (var + tau2)) + tau2 * diff**2 / (2 * var * (var + tau2))


@dataclass(frozen=True)
class SequentialResult:
    """The always-valid test after the last look.

    Attributes:
        p_value: always-valid p-value (running minimum over looks).
        effect: current ``mean(b) - mean(a)``; ``ci_low``/``ci_high`` its always-valid
            ``1 - alpha`` confidence sequence at the last look.
        looks: how many looks the running minimum was taken over.
    """

    p_value: float
    effect: float
    ci_low: float
    ci_high: float
    tau: float
    looks: int
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prefix_moments(x: np.ndarray, ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means and unbiased variances of ``x[:n]`` for each ``n`` in ``ns`` (cumulative sums)."""
    c1 = np.concatenate([[0.0], np.cumsum(x)])
    c2 = np.concatenate([[0.0], np.cumsum(x * x)])
    mean = c1[ns] / ns
    var = np.maximum(c2[ns] - ns * mean**2, 0.0) / np.maximum(ns - 1, 1)
    return mean, var


def msprt(
    a: Any,
    b: Any | None = None,
    *,
    alpha: float = 0.05,
    tau: float = 0.1,
    look_every: int = 10,
    burn_in: int = 10,
    scale: float | None = None,
) -> SequentialResult:
    """Always-valid mSPRT of ``mean(b) - mean(a)``; ``b=None`` tests paired differences ``a``.

    Looks are taken every ``look_every`` observations (of the smaller arm) after ``burn_in``
    observations per arm, on prefixes of the samples in arrival order, exactly as a monitor
    checking the experiment over time would have seen them.

    Args:
        a: control sample in arrival order (or paired differences when ``b`` is None).
        b: challenger sample in arrival order.
        tau: mixing prior standard deviation as a fraction of ``scale``.
        scale: what ``tau`` is relative to; default the control's mean (two samples) or
            the differences' standard deviation (paired; pass the control mean instead).
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = None if b is None else np.asarray(b, dtype=np.float64).ravel()
    n_min = len(x) if y is None else min(len(x), len(y))
    if n_min < max(burn_in, 2):
        return SequentialResult(
            1.0, float("nan"), -math.inf, math.inf, tau, 0, len(x), 0 if y is None else len(y)
        )
    looks = np.arange(burn_in, n_min + 1, look_every)
    if looks[-1] != n_min:
        looks = np.append(looks, n_min)
    frac = looks / n_min  # (L,) the same share of each arm at each look
    na = np.maximum(np.ceil(frac * len(x)).astype(int), 2)
    if y is None:  # paired: x holds the per-request differences b - a
        mean_x, var_x = _prefix_moments(x, na)
        diff, var = mean_x, var_x / na
        default = float(np.sqrt(var_x[-1])) if var_x[-1] > 0 else 1.0
        nb_last = len(x)
    else:
        nb = np.maximum(np.ceil(frac * len(y)).astype(int), 2)
        mean_x, var_x = _prefix_moments(x, na)
        mean_y, var_y = _prefix_moments(y, nb)
        diff, var = mean_y - mean_x, var_x / na + var_y / nb
        default = float(abs(mean_x[-1])) or 1.0
        nb_last = len(y)
    tau2 = (tau * (scale if scale else default)) ** 2
    log_lr = msprt_log_lr(diff, var, tau2)  # (L,)
    p = float(min(1.0, math.exp(-float(log_lr.max()))))
    v = float(var[-1])
    half = (
        math.sqrt(
            max(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + math.log((v + tau2) / v)), 0.0)
        )
        if v > 0
        else 0.0
    )
    d = float(diff[-1])
    return SequentialResult(p, d, d - half, d + half, tau, len(looks), len(x), nb_last)


def verdict(
    seq: SequentialResult,
    *,
    alpha: float,
    min_samples: int,
    max_samples: int,
    expired: bool,
) -> Verdict:
    """Decide from the always-valid test.

    ``continue`` until each arm has ``min_samples``; then a significant difference decides
    the direction (lower metric is better); ``inconclusive`` once the sample or time budget
    is spent without one.
    """
    n = min(seq.n_a, seq.n_b)
    if n >= min_samples and seq.p_value <= alpha:
        return "challenger_worse" if seq.effect > 0 else "challenger_better"
    if expired or n >= max_samples:
        return "inconclusive"
    return "continue"
