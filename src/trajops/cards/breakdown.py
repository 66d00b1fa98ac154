"""Per-window errors and the groups a performance card breaks them down by.

A performance card starts from one row per scored test window (:func:`window_table`): its
scene and agent, its ADE/FDE, and the observable traits that define the groups — mean
observed speed, crowd density at the last observed frame, walking direction, and how far a
constant-velocity extrapolation ends from the true final position (linear vs non-linear
path). The table is logged with every training run, so a card can be rebuilt later with
other group definitions (:class:`PerformanceConfig`) without predicting again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from trajops.data.windows import WindowSet
from trajops.errors import ValidationError
from trajops.evaluation.groups import GroupConfig, crowd_density, observed_speed
from trajops.evaluation.metrics import displacement

GROUPINGS: tuple[str, ...] = ("scene", "speed", "density", "direction", "path")
"""Every grouping a performance card knows, in the order the card shows them."""
WINDOW_COLUMNS: tuple[str, ...] = (
    "scene",
    "agent_id",
    "start_frame",
    "ade",
    "fde",
    "speed",
    "density",
    "heading_deg",
    "cv_fde",
)
"""Columns of :func:`window_table` (the logged per-window artifact)."""
_COMPASS = (
    "east",
    "north-east",
    "north",
    "north-west",
    "west",
    "south-west",
    "south",
    "south-east",
)


@dataclass(frozen=True)
class PerformanceConfig:
    """What a performance card groups by and when it raises a flag.

    Attributes:
        groupings: which of :data:`GROUPINGS` the card shows.
        bins: speed and crowd-density bin edges (shared with the evaluation breakdown).
        directions: walking-direction sectors (4: east/north/west/south; 8 adds diagonals),
            in the scene's frame, from the observed displacement.
        standing_speed: m/s below which an agent has no walking direction ("standing").
        linear_fde_m: a path is "linear" when a constant-velocity extrapolation of the
            observed part ends within this many metres of the true final position
            (TrajNet++'s definition, 0.5 m).
        min_samples: a group with fewer windows is flagged under-sampled and left out of the
            disparity ratio.
        underserved_ratio: a group is flagged underserved when its ADE exceeds this multiple
            of the overall ADE *and* its confidence interval lies above the overall ADE.
        confidence: two-sided level of the bootstrap intervals.
        n_boot: bootstrap resamples (agents are resampled, not windows: overlapping windows
            of one agent are not independent).
        seed: seed of the bootstrap.
    """

    groupings: tuple[str, ...] = GROUPINGS
    bins: GroupConfig = field(default_factory=GroupConfig)
    directions: int = 4
    standing_speed: float = 0.3
    linear_fde_m: float = 0.5
    min_samples: int = 30
    underserved_ratio: float = 1.25
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [g for g in self.groupings if g not in GROUPINGS]
        problems = {
            "groupings": bool(unknown) or not self.groupings,
            "directions": self.directions not in (4, 8),
            "standing_speed": not self.standing_speed >= 0,
            "linear_fde_m": not self.linear_fde_m > 0,
            "min_samples": self.min_samples < 1,
            "underserved_ratio": not self.underserved_ratio > 1.0,
            "confidence": not 0.5 <= self.confidence < 1.0,
            "n_boot": self.n_boot < 100,
        }
        bad = [name for name, failed in problems.items() if failed]
        if bad:
            rules = {
                "groupings": f"a non-empty subset of {', '.join(GROUPINGS)}",
                "directions": "4 or 8",
                "standing_speed": ">= 0",
                "linear_fde_m": "> 0",
                "min_samples": ">= 1",
                "underserved_ratio": "> 1",
                "confidence": "in [0.5, 1)",
                "n_boot": ">= 100",
            }
            raise ValidationError(
                "invalid performance card config: "
                + "; ".join(f"{name} must be {rules[name]}" for name in bad),
                details=[{"loc": [name], "msg": f"must be {rules[name]}"} for name in bad],
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (infinite bin edges as ``"inf"``)."""

        def edges(values: tuple[float, ...]) -> list[float | str]:
            return ["inf" if math.isinf(v) else v for v in values]

        return {
            "groupings": list(self.groupings),
            "speed_edges": edges(self.bins.speed_edges),
            "density_edges": edges(self.bins.density_edges),
            "density_radius": self.bins.density_radius,
            "directions": self.directions,
            "standing_speed": self.standing_speed,
            "linear_fde_m": self.linear_fde_m,
            "min_samples": self.min_samples,
            "underserved_ratio": self.underserved_ratio,
            "confidence": self.confidence,
            "n_boot": self.n_boot,
            "seed": self.seed,
        }


def window_table(
    windows: WindowSet, pred: np.ndarray, *, density_radius: float = GroupConfig.density_radius
) -> pd.DataFrame:
    """One row per scored window: identity, errors and the traits the groups are cut from.

    Args:
        windows: the scored test windows.
        pred: ``(N, T_pred, 2)`` deterministic forecast of ``windows``.
        density_radius: metres within which neighbours count towards crowd density.

    Returns:
        A frame with :data:`WINDOW_COLUMNS`.
    """
    if len(pred) != len(windows):
        raise ValidationError(f"{len(pred)} forecasts for {len(windows)} windows")
    obs, fut = windows.obs, windows.fut  # (N, T_obs, 2), (N, T_pred, 2)
    err = displacement(pred, fut)  # (N, T_pred)
    velocity = (obs[:, -1] - obs[:, -2]).astype(np.float64)  # (N, 2) metres per step
    steps = np.arange(1, fut.shape[1] + 1, dtype=np.float64)  # (T_pred,)
    cv_final = obs[:, -1] + velocity * steps[-1]  # (N, 2)
    travel = (obs[:, -1] - obs[:, 0]).astype(np.float64)  # (N, 2)
    return pd.DataFrame(
        {
            "scene": windows.scene.astype(str),
            "agent_id": windows.agent_id.astype(str),
            "start_frame": windows.start_frame.astype(np.int64),
            "ade": err.mean(axis=1),
            "fde": err[:, -1],
            "speed": observed_speed(obs),
            "density": crowd_density(obs, windows.neighbours, density_radius).astype(np.int64),
            "heading_deg": np.degrees(np.arctan2(travel[:, 1], travel[:, 0])) % 360.0,
            "cv_fde": np.linalg.norm(cv_final - fut[:, -1], axis=-1),
        }
    )


def check_table(frame: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Validate a per-window table read from a file (columns, types, no missing errors).

    Raises:
        ValidationError: a missing column, a non-numeric error, or no rows, naming ``source``.
    """
    missing = [c for c in WINDOW_COLUMNS if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{source}: not a per-window evaluation table; missing column(s) {', '.join(missing)}",
            details=[{"loc": [source, c], "msg": "missing column"} for c in missing],
        )
    if frame.empty:
        raise ValidationError(f"{source}: no rows", details=[{"loc": [source], "msg": "empty"}])
    out = frame.loc[:, list(WINDOW_COLUMNS)].copy()
    numeric = ("ade", "fde", "speed", "density", "heading_deg", "cv_fde")
    for col in numeric:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna()
        if bool(bad.any()):
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise ValidationError(
                f"{source}: column {col!r} row {row}: not a number ({out[col].iloc[row]!r})",
                details=[{"loc": [source, col, row], "msg": "not a number"}],
            )
        out[col] = values.astype(np.float64)
    out["scene"] = out["scene"].astype(str)
    out["agent_id"] = out["agent_id"].astype(str)
    return out


def _bin_labels(
    values: np.ndarray, edges: tuple[float, ...], unit: str
) -> list[tuple[str, np.ndarray]]:
    out = []
    for lo, hi in pairwise(edges):
        hi_s = "inf" if math.isinf(hi) else f"{hi:g}"
        out.append((f"[{lo:g}, {hi_s}) {unit}", (values >= lo) & (values < hi)))
    return out


def _direction_groups(
    frame: pd.DataFrame, config: PerformanceConfig
) -> list[tuple[str, np.ndarray]]:
    speed = frame["speed"].to_numpy()
    heading = frame["heading_deg"].to_numpy()
    width = 360.0 / config.directions
    sector = np.floor(((heading + width / 2.0) % 360.0) / width).astype(int)  # (N,)
    names = _COMPASS[:: 8 // config.directions]
    walking = speed >= config.standing_speed
    groups = [(f"{name}", walking & (sector == i)) for i, name in enumerate(names)]
    return [*groups, ("standing", ~walking)]


def assign_groups(
    frame: pd.DataFrame, config: PerformanceConfig
) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Grouping -> ``[(group label, boolean mask over the rows)]`` for each configured grouping.

    Scene groups are the scenes present; bins and sectors are listed even when empty.
    """
    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for grouping in config.groupings:
        if grouping == "scene":
            scenes = frame["scene"].to_numpy()
            out[grouping] = [(s, scenes == s) for s in sorted(set(scenes.tolist()))]
        elif grouping == "speed":
            speed = frame["speed"].to_numpy()
            out[grouping] = _bin_labels(speed, config.bins.speed_edges, "m/s")
        elif grouping == "density":
            density = frame["density"].to_numpy(np.float64)
            out[grouping] = _bin_labels(density, config.bins.density_edges, "neighbours")
        elif grouping == "direction":
            out[grouping] = _direction_groups(frame, config)
        else:  # path
            linear = frame["cv_fde"].to_numpy() <= config.linear_fde_m
            out[grouping] = [("linear", linear), ("non-linear", ~linear)]
    return out
