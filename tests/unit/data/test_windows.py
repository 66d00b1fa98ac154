"""Windowing: counts, gaps, stride, neighbour order and padding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trajops.data import windows as windows_mod
from trajops.data.readers import validate_tracks
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import WindowConfig, WindowSet, make_windows, neighbours_from_batch


def _track(
    agent: str, steps: list[int], *, x0: float = 0.0, y: float = 0.0, scene: str = "s"
) -> pd.DataFrame:
    """A walker moving 0.5 m per step along x, seen at the given step indices."""
    s = np.asarray(steps)
    return pd.DataFrame(
        {"scene": scene, "frame": s * 10, "agent_id": agent, "x": x0 + 0.5 * s, "y": y}
    )


def _tracks(*parts: pd.DataFrame) -> pd.DataFrame:
    return validate_tracks(pd.concat(parts, ignore_index=True))


def test_track_of_25_steps_gives_6_windows() -> None:
    ws = make_windows(_tracks(_track("a", list(range(25)))))
    assert len(ws) == 6
    assert ws.traj.shape == (6, 20, 2)
    assert ws.obs.shape == (6, 8, 2) and ws.fut.shape == (6, 12, 2)
    assert ws.start_frame.tolist() == [0, 10, 20, 30, 40, 50]
    np.testing.assert_allclose(ws.traj[2, :, 0], 0.5 * np.arange(2, 22))


@pytest.mark.parametrize(("stride", "starts"), [(1, 6), (2, 3), (5, 2), (10, 1)])
def test_stride(stride: int, starts: int) -> None:
    ws = make_windows(_tracks(_track("a", list(range(25)))), WindowConfig(stride=stride))
    assert len(ws) == starts
    assert (np.diff(ws.start_frame) == stride * 10).all()


def test_gaps_are_never_bridged() -> None:
    # 15 steps, a missing step, 15 steps: 30 observations but no 20 consecutive ones.
    split = _track("a", list(range(15)) + list(range(16, 31)))
    assert len(make_windows(_tracks(split))) == 0
    # 10 steps, a gap, then 21 steps: only the second run yields windows (2 of them).
    later = _track("b", list(range(10)) + list(range(12, 33)))
    ws = make_windows(_tracks(later))
    assert ws.start_frame.tolist() == [120, 130]
    assert not np.isnan(ws.traj).any()


def test_too_short_and_empty() -> None:
    ws = make_windows(_tracks(_track("a", list(range(19)))))
    assert len(ws) == 0
    assert ws.traj.shape == (0, 20, 2) and ws.neighbours.shape == (0, 16, 8, 2)


def test_neighbours_nearest_first_and_nan_padded() -> None:
    steps = list(range(20))
    ego = _track("ego", steps)
    far = _track("far", steps, y=3.0)
    near = _track("near", steps, y=1.0)
    mid = _track("mid", steps, y=2.0)
    early = _track(
        "early", list(range(0, 4)), y=0.5
    )  # seen in the observed frames, gone at the last
    late = _track("late", list(range(10, 20)), y=0.2)  # only in the future: not a neighbour
    other_scene = _track("x", steps, y=0.1, scene="elsewhere")
    ws = make_windows(
        _tracks(ego, far, near, mid, early, late, other_scene), WindowConfig(max_neighbours=6)
    )
    w = ws.subset((ws.agent_id == "ego") & (ws.scene == "s"))
    assert len(w) == 1
    nbr = w.neighbours[0]  # (K, T_obs, 2)
    last_y = nbr[:, -1, 1]
    np.testing.assert_allclose(last_y[:3], [1.0, 2.0, 3.0])  # nearest at the last observed step
    assert np.isnan(nbr[3, -1]).all() and not np.isnan(nbr[3, 0]).any()  # "early" ranks after
    np.testing.assert_allclose(nbr[3, :4, 1], 0.5)
    assert np.isnan(nbr[4:]).all()  # padding: "late" and the other scene's agent are absent


def test_neighbour_chunking_gives_identical_results(monkeypatch: pytest.MonkeyPatch) -> None:
    tracks = simulate(SimulationConfig(n_agents=12, n_steps=60, seed=3))
    whole = make_windows(tracks)
    monkeypatch.setattr(windows_mod, "_CHUNK_VALUES", 64)  # a few windows per chunk
    chunked = make_windows(tracks)
    assert len(whole) > 50
    np.testing.assert_array_equal(whole.neighbours, chunked.neighbours)


def test_concat_pads_neighbour_slots() -> None:
    a = make_windows(_tracks(_track("a", list(range(20)))), WindowConfig(max_neighbours=2))
    b = make_windows(_tracks(_track("b", list(range(20)))), WindowConfig(max_neighbours=4))
    both = WindowSet.concat([a, b])
    assert both.neighbours.shape == (2, 4, 8, 2)
    assert np.isnan(both.neighbours[0, 2:]).all()


def test_neighbours_from_batch() -> None:
    obs = np.zeros((3, 8, 2), np.float32)
    obs[:, :, 0] = np.array([0.0, 5.0, 1.0])[:, None]  # agents at x = 0, 5, 1
    nbr = neighbours_from_batch(obs, max_neighbours=4)
    assert nbr.shape == (3, 4, 8, 2)
    np.testing.assert_allclose(nbr[0, :2, -1, 0], [1.0, 5.0])
    assert np.isnan(nbr[:, 2:]).all()
    assert np.isnan(neighbours_from_batch(obs[:1])).all()
