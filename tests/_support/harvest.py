"""Small harvests from simulated crowds: each simulated scene is one site, cut into forecast
instants the way the prediction service records them (:mod:`trajops.data.harvest`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from trajops import STEP_S, T_OBS, T_PRED
from trajops.data.harvest import scene_name, write_harvest
from trajops.data.readers import FRAME_STEP
from trajops.data.simulator import SimulationConfig, simulate

T0 = 1_700_000_000.0
"""Epoch seconds of the first simulated step."""


def harvest_frame(
    config: SimulationConfig, *, every: int = 5, site_offset_s: float = 0.0
) -> tuple[pd.DataFrame, int]:
    """Harvest rows of ``config``'s scenes and the windows they yield.

    An instant every ``every`` steps: each agent seen on the ``T_OBS`` steps up to it is
    observed (frames ``0 .. 70``); one also seen on the ``T_PRED`` steps after it has its future
    (frames ``80 .. 190``). Agents keep one pseudonym across instants. Scene ``i`` starts
    ``i * site_offset_s`` seconds after ``T0``.
    """
    tracks = simulate(config)
    pieces: list[pd.DataFrame] = []
    n_windows = 0
    for i, (site, part) in enumerate(tracks.groupby("scene", sort=True)):
        step = (part["frame"] // FRAME_STEP).to_numpy()
        xs = part.assign(step=step).pivot(index="agent_id", columns="step", values="x")
        ys = part.assign(step=step).pivot(index="agent_id", columns="step", values="y")
        xy = np.stack([xs.to_numpy(), ys.to_numpy()], axis=-1)  # (A, S, 2), NaN where unseen
        steps = xs.columns.to_numpy()
        for s in range(int(steps.min()) + T_OBS - 1, int(steps.max()) + 1, every):
            obs_cols = np.flatnonzero((steps > s - T_OBS) & (steps <= s))
            fut_cols = np.flatnonzero((steps > s) & (steps <= s + T_PRED))
            seen = ~np.isnan(xy[:, obs_cols, 0]).any(axis=1) & (len(obs_cols) == T_OBS)
            future = seen & (len(fut_cols) == T_PRED)
            if len(fut_cols) == T_PRED:
                future &= ~np.isnan(xy[:, fut_cols, 0]).any(axis=1)
            if not seen.any():
                continue
            n_windows += int(future.sum())
            request = f"{site}-{s:04d}"
            rows = []
            for a in np.flatnonzero(seen):
                cols = np.concatenate([obs_cols, fut_cols]) if future[a] else obs_cols
                rows.append(
                    pd.DataFrame(
                        {
                            "frame": np.arange(len(cols)) * FRAME_STEP,
                            "agent_id": f"p-{site}-{xs.index[a]}",
                            "x": xy[a, cols, 0],
                            "y": xy[a, cols, 1],
                        }
                    )
                )
            frame = pd.concat(rows, ignore_index=True)
            frame["scene"] = scene_name(str(site), request)
            frame["site"] = str(site)
            frame["t"] = T0 + i * site_offset_s + s * STEP_S
            frame["request_id"] = request
            pieces.append(frame)
    return pd.concat(pieces, ignore_index=True), n_windows


def make_harvest(
    path: Path, config: SimulationConfig, *, every: int = 5, site_offset_s: float = 0.0
) -> Path:
    """Write the harvest of :func:`harvest_frame` to ``path``; returns ``path``."""
    frame, n_windows = harvest_frame(config, every=every, site_offset_s=site_offset_s)
    write_harvest(frame, path, n_windows=n_windows, details={"source": "simulator"})
    return path
