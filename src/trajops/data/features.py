"""Kinematic features of observed windows: what drift monitoring and the reference profile use.

One row per window, columns :data:`FEATURE_NAMES`. Every value is finite for any finite input
(standing agents, a single step), except the two neighbour features of an agent with no
neighbour observed, which are NaN (missing: nothing was seen, so there is no distance or count
to compare; drift monitoring skips them):

- ``mean_speed`` / ``max_speed`` (m/s): step lengths divided by the time step.
- ``max_accel`` (m/s^2): largest norm of the change of velocity between consecutive steps
  (0 with fewer than three observed positions).
- ``heading_change`` (rad): total absolute turn between consecutive steps, counting only
  pairs of steps that both move at least ``MIN_STEP_M`` (the heading of sensor jitter around
  a standing agent is noise, not turning).
- ``curvature`` (rad/m): ``heading_change / max(path_length, MIN_PATH_M)``, the mean absolute
  turn per metre walked; 0 for a standing agent.
- ``path_length`` (m): sum of step lengths.
- ``straightness``: displacement / path length in [0, 1]; 1.0 by definition when the path is
  shorter than ``MIN_PATH_M`` (a standing agent does not wander).
- ``time_step`` (s): seconds between observed positions, as given.
- ``neighbour_count_2m``: neighbours within ``NEIGHBOUR_RADIUS_M`` at the last observed step;
  NaN when no neighbour is observed at that step.
- ``min_neighbour_dist`` (m): distance to the nearest neighbour at the last observed step;
  NaN when no neighbour is observed there (a one-agent request, an agent alone in its scene).

A neighbour counts as observed when its last position is finite and closer than
``NO_NEIGHBOUR_DIST``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trajops import STEP_S
from trajops.errors import ValidationError

FEATURE_NAMES: tuple[str, ...] = (
    "mean_speed",
    "max_speed",
    "max_accel",
    "heading_change",
    "curvature",
    "path_length",
    "straightness",
    "time_step",
    "neighbour_count_2m",
    "min_neighbour_dist",
)
"""Columns of :func:`kinematic_features`, in order."""

MIN_STEP_M = 0.05
"""Steps shorter than this (m) have no heading: they do not count towards turning."""
MIN_PATH_M = 0.1
"""Paths shorter than this (m) count as standing for curvature and straightness."""
NEIGHBOUR_RADIUS_M = 2.0
"""Radius of ``neighbour_count_2m``, in metres."""
NO_NEIGHBOUR_DIST = 1e3
"""Neighbours this far (m) or farther are not observed. Profiles built before "no neighbour"
was missing stored this value in ``min_neighbour_dist`` instead (see :func:`missing_neighbours`)."""
NEIGHBOUR_FEATURES: tuple[str, ...] = ("neighbour_count_2m", "min_neighbour_dist")
"""The features that are missing (NaN) when no neighbour is observed."""
_VALUE_CAP = 1e12
"""Guard against overflow for absurd but finite inputs: features are clipped to +/- this."""


def _time_steps(step_s: float | np.ndarray, n: int) -> np.ndarray:
    dt = np.asarray(step_s, dtype=np.float64)
    if dt.ndim == 0:
        dt = np.full(n, float(dt))
    if dt.shape != (n,):
        raise ValidationError(
            f"step_s must be a number or one value per window ({n}), got shape {dt.shape}",
            details=[{"loc": ["step_s"], "msg": "wrong shape"}],
        )
    if not (np.isfinite(dt).all() and (dt > 0).all()):
        raise ValidationError(
            "step_s must be positive and finite",
            details=[{"loc": ["step_s"], "msg": "must be positive and finite"}],
        )
    return dt


def _check_obs(obs: np.ndarray) -> np.ndarray:
    arr = np.asarray(obs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[1] < 2:
        raise ValidationError(
            f"obs must have shape (N, T_obs >= 2, 2), got {arr.shape}",
            details=[{"loc": ["obs"], "msg": "wrong shape"}],
        )
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))[0])
        raise ValidationError(
            f"obs holds a non-finite position in window {i}",
            details=[{"loc": ["obs", i], "msg": "not finite"}],
        )
    return arr


def _neighbour_features(
    last: np.ndarray, neighbours: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour count within 2 m and nearest distance at the last observed step (NaN, NaN
    where no neighbour is observed)."""
    if neighbours is None:
        return np.full(n, np.nan), np.full(n, np.nan)
    nbr = np.asarray(neighbours, dtype=np.float64)
    if nbr.ndim != 4 or nbr.shape[0] != n or nbr.shape[3] != 2:
        raise ValidationError(
            f"neighbours must have shape (N={n}, K, T_obs, 2), got {nbr.shape}",
            details=[{"loc": ["neighbours"], "msg": "wrong shape"}],
        )
    if nbr.shape[1] == 0 or nbr.shape[2] == 0:
        return np.full(n, np.nan), np.full(n, np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        dist = np.linalg.norm(nbr[:, :, -1] - last[:, None], axis=-1)  # (N, K), NaN if unseen
        seen = np.isfinite(dist) & (dist < NO_NEIGHBOUR_DIST)  # (N, K)
    count = (seen & (dist <= NEIGHBOUR_RADIUS_M)).sum(axis=1).astype(np.float64)  # (N,)
    nearest = np.where(seen, dist, np.inf).min(axis=1)  # (N,)
    alone = ~seen.any(axis=1)  # (N,)
    return np.where(alone, np.nan, count), np.where(alone, np.nan, nearest)


def kinematic_features(
    obs: np.ndarray,
    *,
    neighbours: np.ndarray | None = None,
    step_s: float | np.ndarray = STEP_S,
) -> pd.DataFrame:
    """Kinematic features of each observed window (see the module docstring for definitions).

    Args:
        obs: ``(N, T_obs, 2)`` observed positions in metres, finite, ``T_obs >= 2``.
        neighbours: ``(N, K, T_obs, 2)`` neighbour positions, NaN where unseen (optional).
        step_s: seconds between observed positions: one number, or ``(N,)`` per window
            (e.g. from the timestamps a client sent).

    Returns:
        A frame of ``N`` rows and the columns :data:`FEATURE_NAMES` (float64, finite except
        :data:`NEIGHBOUR_FEATURES`, NaN where no neighbour is observed).

    Raises:
        ValidationError: wrong shapes, a non-finite position, or a non-positive time step.
    """
    xy = _check_obs(obs)  # (N, T, 2)
    n = xy.shape[0]
    dt = _time_steps(step_s, n)  # (N,)
    with np.errstate(over="ignore", invalid="ignore"):
        disp = np.diff(xy, axis=1)  # (N, T-1, 2)
        step_len = np.linalg.norm(disp, axis=-1)  # (N, T-1)
        speed = step_len / dt[:, None]  # (N, T-1)
        vel = disp / dt[:, None, None]  # (N, T-1, 2)
        if vel.shape[1] >= 2:
            accel = np.linalg.norm(np.diff(vel, axis=1), axis=-1) / dt[:, None]  # (N, T-2)
            max_accel = accel.max(axis=1)
        else:
            max_accel = np.zeros(n)

        # Signed turn between consecutive steps, only where both steps really move.
        a, b = disp[:, :-1], disp[:, 1:]  # (N, T-2, 2)
        cross = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
        dot = (a * b).sum(axis=-1)
        moving = (step_len[:, :-1] >= MIN_STEP_M) & (step_len[:, 1:] >= MIN_STEP_M)
        turn = np.where(moving, np.abs(np.arctan2(cross, dot)), 0.0)  # (N, T-2)
        heading_change = turn.sum(axis=1)

        path_length = step_len.sum(axis=1)
        displacement = np.linalg.norm(xy[:, -1] - xy[:, 0], axis=-1)
        standing = path_length < MIN_PATH_M
        straightness = np.where(
            standing, 1.0, np.clip(displacement / np.maximum(path_length, MIN_PATH_M), 0.0, 1.0)
        )
        curvature = np.where(standing, 0.0, heading_change / np.maximum(path_length, MIN_PATH_M))
    count, nearest = _neighbour_features(xy[:, -1], neighbours, n)
    alone = np.isnan(nearest)  # (N,) no neighbour observed

    columns = {
        "mean_speed": speed.mean(axis=1),
        "max_speed": speed.max(axis=1),
        "max_accel": max_accel,
        "heading_change": heading_change,
        "curvature": curvature,
        "path_length": path_length,
        "straightness": straightness,
        "time_step": dt,
        "neighbour_count_2m": count,
        "min_neighbour_dist": nearest,
    }
    out = pd.DataFrame({name: columns[name] for name in FEATURE_NAMES}, dtype=np.float64)
    # Overflow for absurd (but finite) coordinates becomes the cap instead of inf/NaN; the
    # neighbour features' NaN means "no neighbour observed" and stays.
    values = np.nan_to_num(out.to_numpy(), nan=_VALUE_CAP, posinf=_VALUE_CAP, neginf=-_VALUE_CAP)
    values = np.clip(values, -_VALUE_CAP, _VALUE_CAP)  # (N, F)
    for name in NEIGHBOUR_FEATURES:
        j = FEATURE_NAMES.index(name)
        values[:, j] = np.where(alone, np.nan, values[:, j])
    return pd.DataFrame(values, columns=list(FEATURE_NAMES))


def missing_neighbours(features: pd.DataFrame) -> pd.DataFrame:
    """``features`` with "no neighbour" as missing, whichever way it was written.

    Profiles built before the neighbour features could be missing stored ``min_neighbour_dist
    = NO_NEIGHBOUR_DIST`` and ``neighbour_count_2m = 0`` for an agent with no neighbour; such
    rows get NaN in both, as :func:`kinematic_features` now writes them. Other columns and rows
    are returned unchanged (a copy when anything changed).
    """
    if not isinstance(features, pd.DataFrame) or "min_neighbour_dist" not in features.columns:
        return features  # nothing to convert (a caller's checks name what is wrong)
    alone = features["min_neighbour_dist"].to_numpy(dtype=np.float64) >= NO_NEIGHBOUR_DIST
    if not alone.any():
        return features
    present = [c for c in NEIGHBOUR_FEATURES if c in features.columns]
    out = features.copy()
    out.loc[alone, present] = np.nan
    return out
