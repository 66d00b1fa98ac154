"""Displacement metrics. Every function takes ``pred`` and ``true`` as ``(N, T, 2)`` arrays."""

from __future__ import annotations

import numpy as np


def displacement(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Euclidean error per agent and step: ``(N, T)``. NaN in ``true`` marks an unknown step."""
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"pred shape {pred.shape} != true shape {true.shape}")
    return np.linalg.norm(pred - true, axis=-1)


def ade(pred: np.ndarray, true: np.ndarray) -> float:
    """Average displacement error over agents and steps (steps with NaN truth are skipped)."""
    return float(np.nanmean(displacement(pred, true)))


def fde(pred: np.ndarray, true: np.ndarray) -> float:
    """Final displacement error: mean over agents of the error at the last step."""
    return float(np.nanmean(displacement(pred, true)[:, -1]))


def per_horizon(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean error at each step: ``(T,)``."""
    return np.asarray(np.nanmean(displacement(pred, true), axis=0))


def min_ade_fde(samples: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """minADE / minFDE over K samples.

    Args:
        samples: ``(N, K, T, 2)`` sampled futures.
        true: ``(N, T, 2)`` true futures.

    Returns:
        Mean over agents of the best sample's ADE, and of the best sample's FDE (each chosen
        independently, as in the literature).
    """
    d = np.linalg.norm(
        np.asarray(samples, np.float64) - np.asarray(true, np.float64)[:, None], axis=-1
    )  # (N, K, T)
    return float(d.mean(axis=2).min(axis=1).mean()), float(d[:, :, -1].min(axis=1).mean())


MISS_THRESHOLD_M = 2.0
"""Final displacement above which a forecast misses (Argoverse's MR@2m)."""
KDE_LOG_PDF_FLOOR = -20.0
"""Lower clip of each step's log-density, as Trajectron++'s ``compute_kde_nll``."""
KDE_MIN_BANDWIDTH_M = 0.01
"""Smallest kernel standard deviation along any axis: guards singular sample covariances."""
_KDE_CHUNK = 8192
"""Agents per block of :func:`kde_nll` (about 30 MB per intermediate array at K = 20)."""


def miss_rate(pred: np.ndarray, true: np.ndarray, *, threshold: float = MISS_THRESHOLD_M) -> float:
    """Share of agents whose final displacement error exceeds ``threshold`` metres.

    Args:
        pred: ``(N, T, 2)`` forecasts.
        true: ``(N, T, 2)`` true futures; agents with an unknown (NaN) last step are skipped.
        threshold: metres.

    Returns:
        A fraction in [0, 1]; NaN when no agent has a known last step.
    """
    return min_fde_miss_rate(np.asarray(pred)[:, None], true, threshold=threshold)


def min_fde_miss_rate(
    samples: np.ndarray, true: np.ndarray, *, threshold: float = MISS_THRESHOLD_M
) -> float:
    """Share of agents for which *every* one of the K samples misses: minFDE > ``threshold``.

    Args:
        samples: ``(N, K, T, 2)`` sampled futures.
        true: ``(N, T, 2)`` true futures; agents with an unknown (NaN) last step are skipped.
        threshold: metres.
    """
    last = np.asarray(samples, np.float64)[:, :, -1]  # (N, K, 2)
    goal = np.asarray(true, np.float64)[:, -1]  # (N, 2)
    best = np.linalg.norm(last - goal[:, None], axis=-1).min(axis=1)  # (N,)
    known = ~np.isnan(best)
    return float(np.mean(best[known] > threshold)) if known.any() else float("nan")


def kde_nll(
    samples: np.ndarray,
    true: np.ndarray,
    *,
    log_pdf_floor: float = KDE_LOG_PDF_FLOOR,
    min_bandwidth: float = KDE_MIN_BANDWIDTH_M,
) -> float:
    """Negative log-likelihood of the truth under a Gaussian KDE of the samples (Trajectron++).

    At each agent and step the K sample positions define a Gaussian kernel density with
    Scott's bandwidth (kernel covariance = sample covariance x ``K ** (-1/3)``, as
    ``scipy.stats.gaussian_kde``). The log-density of the true position is clipped below at
    ``log_pdf_floor`` and averaged over steps and agents. Kernel standard deviations below
    ``min_bandwidth`` (identical or collinear samples, e.g. a deterministic model) are raised
    to it instead of failing on a singular covariance.

    Args:
        samples: ``(N, K, T, 2)`` sampled futures, K >= 2.
        true: ``(N, T, 2)`` true futures; unknown (NaN) steps are skipped.
        log_pdf_floor: lower clip of each step's log-density (nats).
        min_bandwidth: metres.

    Returns:
        Mean NLL in nats (lower is better; it can be negative).

    Raises:
        ValueError: fewer than two samples.
    """
    s = np.asarray(samples, np.float64)
    y = np.asarray(true, np.float64)
    k = s.shape[1]
    if k < 2:
        raise ValueError(f"a KDE needs at least 2 samples, got K = {k}")
    # Blocks of agents bound the memory of the (n, T, K, 2) intermediates.
    log_pdf = np.concatenate(
        [
            _kde_log_pdf(s[lo : lo + _KDE_CHUNK], y[lo : lo + _KDE_CHUNK], min_bandwidth)
            for lo in range(0, len(s), _KDE_CHUNK)
        ]
        or [np.full((0, s.shape[2]), np.nan)]
    )  # (N, T)
    return float(-np.nanmean(np.maximum(log_pdf, log_pdf_floor)))


def _kde_log_pdf(samples: np.ndarray, true: np.ndarray, min_bandwidth: float) -> np.ndarray:
    """``(n, T)`` log-density of ``true (n, T, 2)`` under the KDE of ``samples (n, K, T, 2)``."""
    k = samples.shape[1]
    x = samples.transpose(0, 2, 1, 3)  # (n, T, K, 2)
    centred = x - x.mean(axis=2, keepdims=True)
    cov = np.einsum("ntki,ntkj->ntij", centred, centred) / (k - 1)  # (n, T, 2, 2)
    var, axes = np.linalg.eigh(cov * k ** (-1.0 / 3.0))  # (n, T, 2), (n, T, 2, 2)
    var = np.maximum(var, min_bandwidth**2)
    diff = true[:, :, None, :] - x  # (n, T, K, 2)
    proj = np.einsum("ntkj,ntji->ntki", diff, axes)  # (n, T, K, 2) along the kernel's axes
    log_kernel = (
        -0.5 * (proj**2 / var[:, :, None]).sum(-1)
        - 0.5 * np.log(var).sum(-1)[..., None]
        - np.log(2.0 * np.pi)
    )  # (n, T, K)
    top = log_kernel.max(axis=2)  # (n, T)
    return np.asarray(top + np.log(np.exp(log_kernel - top[..., None]).sum(axis=2)) - np.log(k))


def coverage(samples: np.ndarray, true: np.ndarray, *, level: float) -> float:
    """Share of agents whose true final position lies in the samples' ``level`` disc.

    The disc is centred on the mean of the K sampled final positions, with the smallest
    radius holding at least ``ceil(level * K)`` of them. A calibrated sampler covers the
    truth about ``level`` of the time; less means over-confident, more under-confident.

    Args:
        samples: ``(N, K, T, 2)`` sampled futures.
        true: ``(N, T, 2)`` true futures; agents with an unknown (NaN) last step are skipped.
        level: in (0, 1], e.g. 0.5 or 0.9.

    Returns:
        A fraction in [0, 1]; NaN when no agent has a known last step.
    """
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be in (0, 1], got {level}")
    last = np.asarray(samples, np.float64)[:, :, -1]  # (N, K, 2)
    goal = np.asarray(true, np.float64)[:, -1]  # (N, 2)
    centre = last.mean(axis=1)  # (N, 2)
    spread = np.sort(np.linalg.norm(last - centre[:, None], axis=-1), axis=1)  # (N, K)
    radius = spread[:, int(np.ceil(level * last.shape[1])) - 1]  # (N,)
    off = np.linalg.norm(goal - centre, axis=-1)  # (N,)
    known = ~np.isnan(off)
    # The 1e-9 m slack keeps a truth equal to every sample covered despite round-off.
    return float(np.mean(off[known] <= radius[known] + 1e-9)) if known.any() else float("nan")
