"""The agent frame the learned models are built in (trajops.data.augment)."""

from __future__ import annotations

import numpy as np

from tests._support.windows import synthetic_windows
from trajops.data.augment import agent_frame, heading, mirror, random_rotation


def test_last_position_goes_to_the_origin_and_the_last_step_along_plus_x() -> None:
    obs = synthetic_windows(30, seed=1).obs.astype(np.float64)
    moving = np.linalg.norm(obs[:, -1] - obs[:, -2], axis=-1) > 1e-2
    local = agent_frame(obs).to_agent(obs)  # (N, T_obs, 2)
    np.testing.assert_allclose(local[:, -1], 0.0, atol=1e-9)
    step = local[moving, -1] - local[moving, -2]
    assert (step[:, 0] > 0).all()
    np.testing.assert_allclose(step[:, 1], 0.0, atol=1e-9)


def test_round_trip_keeps_points_and_nan() -> None:
    w = synthetic_windows(20, seed=2)
    frame = agent_frame(w.obs)
    back = frame.to_world(frame.to_agent(w.neighbours))
    np.testing.assert_allclose(back, w.neighbours, atol=1e-4)
    assert np.array_equal(np.isnan(back), np.isnan(w.neighbours))


def test_a_standing_agent_uses_its_overall_displacement_then_the_x_axis() -> None:
    obs = np.zeros((2, 8, 2))
    obs[0, :4, 1] = -1.0  # walked north, then stood still for the last steps
    assert heading(obs)[0] == np.pi / 2
    assert heading(obs)[1] == 0.0


def test_random_rotation_keeps_distances_and_the_pivot() -> None:
    w = synthetic_windows(10, seed=3)
    r = random_rotation(w, np.random.default_rng(0))
    np.testing.assert_allclose(r.obs[:, -1], w.obs[:, -1], atol=1e-4)
    d = np.linalg.norm(np.diff(w.traj, axis=1), axis=-1)
    np.testing.assert_allclose(np.linalg.norm(np.diff(r.traj, axis=1), axis=-1), d, atol=1e-4)
    assert np.abs(r.traj - w.traj).max() > 0.1


def test_mirror_flips_the_lateral_axis() -> None:
    assert mirror(np.array([[1.0, 2.0]])).tolist() == [[1.0, -2.0]]
