"""Windowing tracks into fixed-length samples ``(N, T_obs + T_pred, 2)`` with neighbours.

A window is one agent seen on ``T_obs + T_pred`` consecutive frames (``FRAME_STEP`` apart);
gaps are never bridged. Each window carries the observed positions of up to ``max_neighbours``
other agents of the same scene over its observed frames, nearest (at the last observed frame)
first, NaN where a neighbour is not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trajops import T_OBS, T_PRED
from trajops.data.readers import FRAME_STEP
from trajops.errors import DataError


@dataclass(frozen=True)
class WindowConfig:
    """How tracks are cut into windows."""

    t_obs: int = T_OBS
    t_pred: int = T_PRED
    frame_step: int = FRAME_STEP
    stride: int = 1
    """Steps between the starts of two windows of the same agent."""
    max_neighbours: int = 16

    @property
    def length(self) -> int:
        return self.t_obs + self.t_pred


@dataclass
class WindowSet:
    """Windows and what is known about each.

    Attributes:
        traj: ``(N, T_obs + T_pred, 2)`` float32 positions.
        neighbours: ``(N, K, T_obs, 2)`` float32 observed neighbour positions, NaN if unseen.
        scene: ``(N,)`` scene of each window.
        agent_id: ``(N,)`` agent of each window.
        start_frame: ``(N,)`` first frame id of each window.
    """

    traj: np.ndarray
    neighbours: np.ndarray
    scene: np.ndarray
    agent_id: np.ndarray
    start_frame: np.ndarray
    config: WindowConfig = field(default_factory=WindowConfig)

    def __len__(self) -> int:
        return int(self.traj.shape[0])

    @property
    def obs(self) -> np.ndarray:
        """``(N, T_obs, 2)`` observed positions."""
        return self.traj[:, : self.config.t_obs]

    @property
    def fut(self) -> np.ndarray:
        """``(N, T_pred, 2)`` future positions (the ground truth)."""
        return self.traj[:, self.config.t_obs :]

    def subset(self, index: np.ndarray) -> WindowSet:
        """Windows selected by a boolean mask or integer index."""
        return WindowSet(
            traj=self.traj[index],
            neighbours=self.neighbours[index],
            scene=self.scene[index],
            agent_id=self.agent_id[index],
            start_frame=self.start_frame[index],
            config=self.config,
        )

    @classmethod
    def empty(cls, config: WindowConfig) -> WindowSet:
        """No windows, with the shapes ``config`` gives."""
        return cls(
            traj=np.zeros((0, config.length, 2), np.float32),
            neighbours=np.zeros((0, config.max_neighbours, config.t_obs, 2), np.float32),
            scene=np.zeros(0, dtype=object),
            agent_id=np.zeros(0, dtype=object),
            start_frame=np.zeros(0, np.int64),
            config=config,
        )

    @staticmethod
    def concat(sets: list[WindowSet]) -> WindowSet:
        """Concatenate window sets (neighbour slots are padded to the widest)."""
        if not sets:
            raise DataError("no window sets to concatenate")
        k = max(s.neighbours.shape[1] for s in sets)
        nbrs = [
            np.concatenate(
                [
                    s.neighbours,
                    np.full(
                        (len(s), k - s.neighbours.shape[1], *s.neighbours.shape[2:]),
                        np.nan,
                        np.float32,
                    ),
                ],
                axis=1,
            )
            if s.neighbours.shape[1] < k
            else s.neighbours
            for s in sets
        ]
        return WindowSet(
            traj=np.concatenate([s.traj for s in sets]),
            neighbours=np.concatenate(nbrs),
            scene=np.concatenate([s.scene for s in sets]),
            agent_id=np.concatenate([s.agent_id for s in sets]),
            start_frame=np.concatenate([s.start_frame for s in sets]),
            config=sets[0].config,
        )


_CHUNK_VALUES = 8_000_000
"""Largest candidate block (windows x T_obs x agents x 2) built at once: about 32 MB."""


def _neighbours(
    grid: np.ndarray,
    starts: np.ndarray,
    owners: np.ndarray,
    ego_last: np.ndarray,
    config: WindowConfig,
) -> np.ndarray:
    """Neighbours of each window: ``(N, max_neighbours, T_obs, 2)``, nearest at the last
    observed frame first, NaN-padded.

    Windows are processed in chunks so memory stays bounded for scenes with many agents
    (the candidate block is ``(chunk, T_obs, A, 2)``).
    """
    n_agents = grid.shape[1]
    k = min(config.max_neighbours, n_agents)
    out = np.full((len(starts), config.max_neighbours, config.t_obs, 2), np.nan, np.float32)
    chunk = max(1, _CHUNK_VALUES // (config.t_obs * n_agents * 2))
    for lo in range(0, len(starts), chunk):
        sl = slice(lo, lo + chunk)
        s, o, m = starts[sl], owners[sl], len(starts[sl])
        obs_rows = s[:, None] + np.arange(config.t_obs)[None, :]  # (n, T_obs)
        cand = grid[obs_rows]  # (n, T_obs, A, 2)
        seen = ~np.isnan(cand[..., 0]).all(axis=1)  # (n, A)
        seen[np.arange(m), o] = False
        dist = np.linalg.norm(cand[:, -1] - ego_last[sl][:, None, :], axis=-1)  # (n, A)
        dist = np.where(np.isnan(dist), 1e6, dist)  # seen earlier but not at the last frame: last
        dist = np.where(seen, dist, np.inf)
        order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (n, k)
        nbr = np.take_along_axis(cand.transpose(0, 2, 1, 3), order[:, :, None, None], axis=1)
        valid = np.take_along_axis(dist, order, axis=1) < np.inf  # (n, k)
        nbr[~valid] = np.nan
        out[sl, :k] = nbr
    return out


def _scene_windows(scene_df: pd.DataFrame, scene: str, config: WindowConfig) -> WindowSet | None:
    frames = scene_df["frame"].to_numpy()
    f0 = frames.min()
    fi = (frames - f0) // config.frame_step  # frame index, gaps stay empty rows
    agents, ai = np.unique(scene_df["agent_id"].to_numpy(dtype=str), return_inverse=True)
    n_frames, n_agents = int(fi.max()) + 1, len(agents)
    grid = np.full((n_frames, n_agents, 2), np.nan, np.float32)  # (F, A, 2)
    grid[fi, ai, 0] = scene_df["x"].to_numpy()
    grid[fi, ai, 1] = scene_df["y"].to_numpy()
    present = ~np.isnan(grid[:, :, 0])  # (F, A)

    # A window starts at frame f for agent a when a is present on all frames f .. f+L-1.
    L = config.length
    if n_frames < L:
        return None
    csum = np.concatenate([np.zeros((1, n_agents), np.int64), np.cumsum(present, axis=0)])
    full = (csum[L:] - csum[:-L]) == L  # (F-L+1, A)
    starts, owners = np.nonzero(full)
    if config.stride > 1:
        # Keep every stride-th start within each agent's run of consecutive starts.
        keep = np.zeros(len(starts), bool)
        for a in np.unique(owners):
            s = starts[owners == a]
            run_start = np.concatenate([[True], np.diff(s) != 1])
            run_id = np.cumsum(run_start)
            pos = np.arange(len(s)) - np.flatnonzero(run_start)[run_id - 1]
            keep[np.flatnonzero(owners == a)] = pos % config.stride == 0
        starts, owners = starts[keep], owners[keep]
    if len(starts) == 0:
        return None
    steps = np.arange(L)
    traj = grid[starts[:, None] + steps[None, :], owners[:, None]]  # (N, L, 2)

    nbr = _neighbours(grid, starts, owners, traj[:, config.t_obs - 1], config)
    return WindowSet(
        traj=traj.astype(np.float32),
        neighbours=nbr.astype(np.float32),
        scene=np.full(len(starts), scene, dtype=object),
        agent_id=agents[owners].astype(object),
        start_frame=(f0 + starts * config.frame_step).astype(np.int64),
        config=config,
    )


def make_windows(tracks: pd.DataFrame, config: WindowConfig | None = None) -> WindowSet:
    """Cut a validated tracks frame into windows of every agent, scene by scene.

    Args:
        tracks: a frame as returned by the readers (columns ``scene, frame, agent_id, x, y``).
        config: window lengths, frame step, stride and neighbour count.

    Returns:
        All windows, scenes in order of first appearance; empty if no agent is long enough.
    """
    config = config or WindowConfig()
    sets = [
        ws
        for scene, group in tracks.groupby("scene", sort=False)
        if (ws := _scene_windows(group, str(scene), config)) is not None
    ]
    return WindowSet.concat(sets) if sets else WindowSet.empty(config)


def neighbours_from_batch(obs: np.ndarray, max_neighbours: int = 16) -> np.ndarray:
    """Neighbours for agents observed together (one scene, e.g. one API request).

    Args:
        obs: ``(N, T_obs, 2)`` observed positions of the agents of one scene.
        max_neighbours: slots per agent.

    Returns:
        ``(N, max_neighbours, T_obs, 2)``: the other agents, nearest at the last step first,
        NaN-padded.
    """
    n, t = obs.shape[:2]
    out = np.full((n, max_neighbours, t, 2), np.nan, np.float32)
    if n <= 1:
        return out
    last = obs[:, -1]  # (N, 2)
    dist = np.linalg.norm(last[:, None] - last[None, :], axis=-1)  # (N, N)
    np.fill_diagonal(dist, np.inf)
    k = min(max_neighbours, n - 1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (N, k)
    out[:, :k] = obs[order]
    return out
