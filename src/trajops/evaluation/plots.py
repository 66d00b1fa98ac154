"""PNG plots for runs and reports: sample forecasts and ADE by horizon.

Figures are drawn on matplotlib's non-interactive Agg canvas directly (no pyplot state and no
global backend switch), so plotting is safe in servers, workers and tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from trajops import STEP_S
from trajops.errors import ValidationError
from trajops.evaluation.metrics import per_horizon


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig).print_png(str(path))
    return path


def plot_samples(
    obs: np.ndarray,
    pred: np.ndarray,
    true: np.ndarray,
    path: Path,
    *,
    max_agents: int = 6,
    title: str = "",
) -> Path:
    """Grid of sample forecasts: observed (black), predicted (blue; samples faint), true (green).

    Args:
        obs: ``(N, T_obs, 2)`` observed positions.
        pred: ``(N, T_pred, 2)`` forecast, or ``(N, K, T_pred, 2)`` samples (sample 0 bold).
        true: ``(N, T_pred, 2)`` true futures.
        path: PNG file to write.
        max_agents: panels drawn (the first agents).
        title: figure title.

    Returns:
        ``path``.
    """
    if len(obs) == 0:
        raise ValidationError("no agents to plot")
    samples = pred if pred.ndim == 4 else pred[:, None]  # (N, K, T_pred, 2)
    n = min(max_agents, len(obs))
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(4 * cols, 4 * rows))
    for i in range(n):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(obs[i, :, 0], obs[i, :, 1], "o-", color="black", ms=3, label="observed")
        for k in range(1, samples.shape[1]):
            ax.plot(
                samples[i, k, :, 0], samples[i, k, :, 1], "-", color="tab:blue", alpha=0.2, lw=1
            )
        ax.plot(
            samples[i, 0, :, 0],
            samples[i, 0, :, 1],
            "o-",
            color="tab:blue",
            ms=3,
            label="predicted",
        )
        ax.plot(true[i, :, 0], true[i, :, 1], "o-", color="tab:green", ms=3, label="true")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("x (m)")
        ax.set_ylabel("y (m)")
        if i == 0:
            ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_horizon(
    errors: Mapping[str, np.ndarray], path: Path, *, title: str = "Displacement error by horizon"
) -> Path:
    """Line plot of mean displacement per predicted step, one line per model.

    Args:
        errors: model name -> ``(T_pred,)`` mean error per step (see :func:`horizon_errors`).
        path: PNG file to write.
        title: axes title.
    """
    if not errors:
        raise ValidationError("no models to plot")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot(1, 1, 1)
    for name, err in errors.items():
        t = np.arange(1, len(err) + 1) * STEP_S
        ax.plot(t, err, "o-", ms=3, label=f"{name} (ADE {float(np.mean(err)):.3f})")
    ax.set_xlabel("lead time (s)")
    ax.set_ylabel("mean displacement (m)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def horizon_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``(T_pred,)`` mean error per step, the input of :func:`plot_horizon`."""
    return per_horizon(pred, true)
