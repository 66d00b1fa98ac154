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
