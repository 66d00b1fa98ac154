"""Synthetic trajectory windows for model and augmentation tests (no data files needed)."""

from __future__ import annotations

import numpy as np

from trajops.data.windows import WindowConfig, WindowSet

CFG = WindowConfig()
"""The default window layout the synthetic windows use."""


def synthetic_windows(n: int, *, seed: int = 0, noise: float = 0.01) -> WindowSet:
    """Walkers on gently curving paths (speeds 0-0.6 m/step, some standing), with neighbours."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-10, 10, size=(n, 2))
    heading = rng.uniform(0, 2 * np.pi, size=n)
    speed = np.where(rng.random(n) < 0.15, 0.0, rng.uniform(0.1, 0.6, size=n))
    turn = rng.normal(0.0, 0.02, size=n)
    t = np.arange(CFG.length)
    angle = heading[:, None] + turn[:, None] * t[None]  # (N, L)
    steps = speed[:, None, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (N, L, 2)
    traj = start[:, None] + np.cumsum(steps, axis=1) + rng.normal(0, noise, size=(n, CFG.length, 2))
    nbrs = np.full((n, CFG.max_neighbours, CFG.t_obs, 2), np.nan)
    nbrs[:, :3] = traj[:, None, : CFG.t_obs] + rng.normal(0, 3.0, size=(n, 3, 1, 2))
    return WindowSet(
        traj=traj.astype(np.float32),
        neighbours=nbrs.astype(np.float32),
        scene=np.full(n, "synthetic", dtype=object),
        agent_id=np.arange(n).astype(str).astype(object),
        start_frame=np.zeros(n, np.int64),
        config=CFG,
    )
