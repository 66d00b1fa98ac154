"""Served inputs as drift monitoring sees them: features with request-level neighbours.

Re-exported by :mod:`trajops.monitoring.drift`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trajops import STEP_S, T_OBS
from trajops.data.features import kinematic_features
from trajops.data.windows import WindowConfig, make_windows, neighbours_from_batch
from trajops.errors import ValidationError


def features_from_obs(
    obs: np.ndarray,
    *,
    step_s: float | np.ndarray = STEP_S,
    scene_ids: np.ndarray | None = None,
    max_neighbours: int = 16,
) -> pd.DataFrame:
    """Features of served inputs, neighbours taken from agents served together.

    At training time a window's neighbours are the other agents of its scene; at serving time
    the only agents known together are those of one request (one scene at one time), so
    neighbours are built per ``scene_ids`` group with
    :func:`trajops.data.neighbours_from_batch`.

    Args:
        obs: ``(N, T_obs, 2)`` observed positions in metres.
        step_s: seconds between positions, one number or ``(N,)`` (from the request).
        scene_ids: ``(N,)`` request (or scene + time) of each input; None: one group.
        max_neighbours: neighbour slots per agent.

    Returns:
        ``N`` rows, columns :data:`trajops.data.features.FEATURE_NAMES`.

    Raises:
        ValidationError: wrong shapes, non-finite positions or time steps.
    """
    arr = np.asarray(obs, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2 or arr.shape[1] < 2:
        raise ValidationError(
            f"obs must have shape (N, T_obs >= 2, 2), got {arr.shape}",
            details=[{"loc": ["obs"], "msg": "wrong shape"}],
        )
    n = arr.shape[0]
    if scene_ids is None:
        labels = np.zeros(n, np.int64)
    else:
        ids = np.asarray(scene_ids)
        if ids.shape != (n,):
            raise ValidationError(
                f"scene_ids must have one id per input ({n}), got shape {ids.shape}",
                details=[{"loc": ["scene_ids"], "msg": "wrong shape"}],
            )
        labels = pd.factorize(pd.Series(ids, dtype=object))[0]
    nbrs = np.full((n, max_neighbours, arr.shape[1], 2), np.nan, np.float32)  # (N, K, T_obs, 2)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) > 1:
            nbrs[idx] = neighbours_from_batch(arr[idx].astype(np.float32), max_neighbours)
    return kinematic_features(arr, neighbours=nbrs, step_s=step_s)


def served_features(
    tracks: pd.DataFrame, *, step_s: float = STEP_S, t_obs: int = T_OBS
) -> pd.DataFrame:
    """Features of tracks the way the API sees them (use it for the reference profile too).

    Every agent with ``t_obs`` consecutive positions is one input at every step; the agents
    of one scene at one step form one request, and neighbours come from that request only.
    Training windows differ: they need 12 future steps too (slow agents that stay long are
    over-represented) and take neighbours from the whole scene, so a profile built on them
    drifts from served inputs with no change in the world.

    Args:
        tracks: a validated tracks frame (``scene, frame, agent_id, x, y``).
        step_s: the seconds between steps the inputs claim.
        t_obs: observed positions per input.

    Returns:
        One row per input, time-ordered within each scene: ``scene`` and ``request``
        (``"<scene>@<frame>"`` of the last observed frame) then
        :data:`trajops.data.features.FEATURE_NAMES`.
    """
    windows = make_windows(tracks, WindowConfig(t_obs=t_obs, t_pred=0))
    last = windows.start_frame + (t_obs - 1) * windows.config.frame_step
    request = np.array([f"{s}@{f}" for s, f in zip(windows.scene, last, strict=True)], object)
    features = features_from_obs(windows.obs, step_s=step_s, scene_ids=request)
    features.insert(0, "request", request)
    features.insert(0, "scene", windows.scene.astype(object))
    return features


def sample_requests(
    features: pd.DataFrame,
    *,
    size: int,
    rng: np.random.Generator,
    request_column: str = "request",
) -> pd.DataFrame:
    """A monitoring window: whole requests drawn at random until ``size`` inputs.

    Served inputs of one request share their neighbours, so a window keeps requests whole
    (the last one is cut to make exactly ``size`` rows when the pool is large enough).

    Args:
        features: served features with a request id column (as :func:`served_features`).
        size: inputs in the window.
        rng: random generator.
        request_column: the column holding request ids.

    Returns:
        ``min(size, len(features))`` rows.

    Raises:
        ValidationError: no such column, or ``size < 1``.
    """
    if request_column not in features.columns or size < 1:
        raise ValidationError(
            f"need a {request_column!r} column and size >= 1 to sample a drift window",
            details=[{"loc": ["features", request_column], "msg": "missing column or bad size"}],
        )
    codes = pd.factorize(features[request_column])[0]
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)
    picked: list[np.ndarray] = []
    total = 0
    for g in rng.permutation(len(groups)):
        picked.append(groups[g])
        total += len(groups[g])
        if total >= size:
            break
    return features.iloc[np.concatenate(picked)[:size]]
