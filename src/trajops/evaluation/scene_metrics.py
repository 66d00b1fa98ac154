"""Metrics between the agents of a scene: who is forecast to collide with whom.

Agents are "of one scene" when they were observed together: windows with the same ``scene``
and ``start_frame`` cover the same frames (both windowing variants cut every agent of a
sequence on the same frames), so their futures happen at the same time.
"""

from __future__ import annotations

import numpy as np

from trajops.data.windows import WindowSet

COLLISION_DISTANCE_M = 0.2
"""Centre distance at or below which two agents collide: two TrajNet++ person radii of 0.1 m."""


def scene_groups(windows: WindowSet) -> np.ndarray:
    """``(N,)`` int id of each window's group of agents observed together (scene, start frame)."""
    if len(windows) == 0:
        return np.zeros(0, np.int64)
    _, scene_id = np.unique(windows.scene.astype(str), return_inverse=True)  # (N,)
    keys = np.stack([scene_id.ravel(), windows.start_frame.astype(np.int64)], axis=1)  # (N, 2)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    return np.asarray(group, np.int64).ravel()


def colliding_agents(
    paths: np.ndarray, groups: np.ndarray, *, distance: float = COLLISION_DISTANCE_M
) -> np.ndarray:
    """Which agents come within ``distance`` of another agent of their group at the same step.

    Args:
        paths: ``(N, T, 2)`` future positions (forecast or truth), steps aligned across agents
            of a group; a NaN position never collides.
        groups: ``(N,)`` group label of each agent (e.g. :func:`scene_groups`).
        distance: metres, centre to centre.

    Returns:
        ``(N,)`` bool; an agent alone in its group never collides.
    """
    paths = np.asarray(paths, np.float64)
    groups = np.asarray(groups)
    if paths.ndim != 3 or groups.shape != paths.shape[:1]:
        raise ValueError(f"paths {paths.shape} and groups {groups.shape} do not match")
    out = np.zeros(len(paths), bool)
    if len(paths) == 0:
        return out
    _, inverse = np.unique(groups, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(inverse[order])) + 1):
        if len(idx) < 2:
            continue
        p = paths[idx]  # (G, T, 2)
        gap = np.linalg.norm(p[:, None] - p[None], axis=-1)  # (G, G, T)
        gap[np.arange(len(idx)), np.arange(len(idx))] = np.inf
        out[idx] = (gap <= distance).any(axis=(1, 2))  # NaN compares False
    return out


def collision_rate(
    paths: np.ndarray, groups: np.ndarray, *, distance: float = COLLISION_DISTANCE_M
) -> float:
    """Share of agents that collide with another agent of their group (see
    :func:`colliding_agents`); NaN for no agents.

    Scored on forecasts it says how often a model puts people into each other; scored on the
    true futures at the same ``distance`` it gives the data's own rate, the reference.
    """
    hit = colliding_agents(paths, groups, distance=distance)
    return float(hit.mean()) if len(hit) else float("nan")
