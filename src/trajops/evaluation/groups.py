"""ADE/FDE broken down by horizon step, by agent speed and by crowd density, as tidy rows.

Every row is ``{"model", "group", "bin", "n", "ade", "fde"}`` (the horizon rows carry the mean
error at that step as both ``ade`` and ``fde`` and add ``t_s``, the lead time in seconds).
Speed and density are computed from observed (past) positions only, so the same bins can be
applied to served traffic before the truth arrives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from trajops import STEP_S
from trajops.data.windows import WindowSet
from trajops.errors import ValidationError
from trajops.evaluation.metrics import displacement


@dataclass(frozen=True)
class GroupConfig:
    """Bin edges for the grouped breakdowns (left-closed, right-open; last edge may be inf)."""

    speed_edges: tuple[float, ...] = (0.0, 0.3, 0.8, 1.3, 1.8, math.inf)
    """Observed speed in m/s (mean over the observed steps)."""
    density_edges: tuple[float, ...] = (0.0, 1.0, 3.0, 6.0, math.inf)
    """Neighbours within ``density_radius`` of the agent at its last observed frame."""
    density_radius: float = 2.0
    """Metres."""

    def __post_init__(self) -> None:
        for name in ("speed_edges", "density_edges"):
            edges = getattr(self, name)
            if len(edges) < 2 or any(b <= a for a, b in pairwise(edges)):
                raise ValidationError(
                    f"{name} must hold at least two strictly increasing edges, got {edges}",
                    details=[{"loc": [name], "msg": "not strictly increasing"}],
                )


def observed_speed(obs: np.ndarray) -> np.ndarray:
    """Mean speed over the observed steps in m/s: ``(N, T_obs, 2) -> (N,)``."""
    steps = np.diff(np.asarray(obs, np.float64), axis=1)  # (N, T_obs-1, 2)
    return np.linalg.norm(steps, axis=-1).mean(axis=1) / STEP_S


def crowd_density(obs: np.ndarray, neighbours: np.ndarray, radius: float) -> np.ndarray:
    """Neighbours within ``radius`` metres at the last observed frame: ``(N,)`` ints."""
    last = np.asarray(obs, np.float64)[:, -1]  # (N, 2)
    nbr_last = np.asarray(neighbours, np.float64)[:, :, -1]  # (N, K, 2)
    dist = np.linalg.norm(nbr_last - last[:, None], axis=-1)  # (N, K), NaN if unseen
    return np.sum(np.nan_to_num(dist, nan=np.inf) < radius, axis=1)


def _label(lo: float, hi: float, unit: str) -> str:
    hi_s = "inf" if math.isinf(hi) else f"{hi:g}"
    return f"[{lo:g}, {hi_s}) {unit}".rstrip()


def _binned(
    err: np.ndarray,
    values: np.ndarray,
    edges: tuple[float, ...],
    *,
    model: str,
    group: str,
    unit: str,
) -> list[dict[str, Any]]:
    rows = []
    for lo, hi in pairwise(edges):
        sel = (values >= lo) & (values < hi)
        n = int(sel.sum())
        rows.append(
            {
                "model": model,
                "group": group,
                "bin": _label(lo, hi, unit),
                "n": n,
                "ade": float(err[sel].mean()) if n else float("nan"),
                "fde": float(err[sel, -1].mean()) if n else float("nan"),
            }
        )
    return rows


def horizon_rows(pred: np.ndarray, true: np.ndarray, *, model: str) -> list[dict[str, Any]]:
    """Mean displacement at each predicted step (1-based ``bin``; ``t_s`` = lead time)."""
    err = displacement(pred, true)  # (N, T)
    return [
        {
            "model": model,
            "group": "horizon",
            "bin": t + 1,
            "t_s": round((t + 1) * STEP_S, 6),
            "n": int(err.shape[0]),
            "ade": float(e),
            "fde": float(e),
        }
        for t, e in enumerate(err.mean(axis=0))
    ]


def grouped_rows(
    pred: np.ndarray, windows: WindowSet, *, model: str, config: GroupConfig | None = None
) -> list[dict[str, Any]]:
    """Horizon, speed and density rows for one model's deterministic forecast.

    Args:
        pred: ``(N, T_pred, 2)`` forecast for ``windows``.
        windows: the scored windows (their observed part defines speed and density).
        model: name written into each row.
        config: bin edges.

    Returns:
        Tidy rows: 12 horizon rows, one per speed bin, one per density bin (empty bins have
        ``n = 0`` and NaN metrics).
    """
    config = config or GroupConfig()
    if len(pred) != len(windows):
        raise ValidationError(f"{len(pred)} forecasts for {len(windows)} windows")
    err = displacement(pred, windows.fut)  # (N, T_pred)
    rows = horizon_rows(pred, windows.fut, model=model)
    rows += _binned(
        err, observed_speed(windows.obs), config.speed_edges, model=model, group="speed", unit="m/s"
    )
    density = crowd_density(windows.obs, windows.neighbours, config.density_radius).astype(
        np.float64
    )
    rows += _binned(
        err, density, config.density_edges, model=model, group="density", unit="neighbours"
    )
    return rows
