"""Kinematic features: exact values on hand-made walkers, finite but for missing neighbours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trajops.data.features import (
    FEATURE_NAMES,
    NEIGHBOUR_FEATURES,
    NO_NEIGHBOUR_DIST,
    kinematic_features,
    missing_neighbours,
)
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import make_windows
from trajops.errors import ValidationError


def _straight(speed: float = 1.25, step_s: float = 0.4, heading: float = 0.3) -> np.ndarray:
    t = np.arange(8) * step_s
    direction = np.array([math.cos(heading), math.sin(heading)])
    return (np.array([2.0, -1.0]) + speed * t[:, None] * direction)[None]  # (1, 8, 2)


def test_straight_constant_speed_walker() -> None:
    f = kinematic_features(_straight()).iloc[0]
    assert list(kinematic_features(_straight()).columns) == list(FEATURE_NAMES)
    assert f["mean_speed"] == pytest.approx(1.25)
    assert f["max_speed"] == pytest.approx(1.25)
    assert f["max_accel"] == pytest.approx(0.0, abs=1e-9)
    assert f["heading_change"] == pytest.approx(0.0, abs=1e-9)
    assert f["curvature"] == pytest.approx(0.0, abs=1e-9)
    assert f["path_length"] == pytest.approx(1.25 * 0.4 * 7)
    assert f["straightness"] == pytest.approx(1.0)
    assert f["time_step"] == 0.4
    # No neighbour observed: missing, not "0 neighbours at 1 km".
    assert np.isnan(f["neighbour_count_2m"]) and np.isnan(f["min_neighbour_dist"])


def test_standing_agent_has_no_nan() -> None:
    still = np.full((1, 8, 2), 3.0)
    rng = np.random.default_rng(0)
    jitter = still + rng.normal(0, 0.005, still.shape)  # tracker noise around a standing agent
    for obs in (still, jitter):
        f = kinematic_features(obs)
        assert np.isfinite(f.drop(columns=list(NEIGHBOUR_FEATURES)).to_numpy()).all()
        assert f["straightness"].iloc[0] == 1.0
        assert f["heading_change"].iloc[0] == 0.0  # jitter has no heading
        assert f["curvature"].iloc[0] == 0.0
        assert f["mean_speed"].iloc[0] < 0.05


def test_right_angle_turn() -> None:
    # Four steps east then three steps north, 0.5 m each.
    pts = [(0.5 * i, 0.0) for i in range(5)] + [(2.0, 0.5 * j) for j in range(1, 4)]
    f = kinematic_features(np.asarray(pts)[None]).iloc[0]
    assert f["heading_change"] == pytest.approx(math.pi / 2)
    assert f["path_length"] == pytest.approx(3.5)
    assert f["curvature"] == pytest.approx(math.pi / 2 / 3.5)
    assert f["straightness"] == pytest.approx(math.hypot(2.0, 1.5) / 3.5)
    # Velocity turns from (1.25, 0) to (0, 1.25) m/s within one step of 0.4 s.
    assert f["max_accel"] == pytest.approx(math.hypot(1.25, 1.25) / 0.4)


def test_neighbour_count_and_min_distance() -> None:
    obs = np.zeros((2, 8, 2))
    nbr = np.full((2, 4, 8, 2), np.nan)
    nbr[0, 0, :, :] = [1.0, 0.0]
    nbr[0, 1, :, :] = [0.0, 1.5]
    nbr[0, 2, :, :] = [3.0, 0.0]  # beyond 2 m
    nbr[0, 3, :7, :] = [0.1, 0.0]  # not seen at the last step: ignored
    nbr[1, 0, :, :] = [3.0, 4.0]  # seen, beyond 2 m: 0 neighbours within 2 m, nearest at 5 m
    nbr[1, 1, :, :] = [NO_NEIGHBOUR_DIST, 0.0]  # 1 km away is no neighbour
    f = kinematic_features(obs, neighbours=nbr)
    assert f["neighbour_count_2m"].tolist() == [2.0, 0.0]
    assert f["min_neighbour_dist"].tolist() == [1.0, 5.0]
    nbr[1, 0] = np.nan  # nobody left within 1 km
    alone = kinematic_features(obs, neighbours=nbr).iloc[1]
    assert np.isnan(alone[list(NEIGHBOUR_FEATURES)].to_numpy(dtype=float)).all()
    assert np.isfinite(alone.drop(list(NEIGHBOUR_FEATURES)).to_numpy(dtype=float)).all()


def test_missing_neighbours_converts_profiles_that_wrote_a_distance() -> None:
    obs = np.zeros((3, 8, 2))
    nbr = np.full((3, 1, 8, 2), np.nan)
    nbr[0, 0] = [1.0, 0.0]
    nbr[2, 0] = [0.0, 2.5]
    new = kinematic_features(obs, neighbours=nbr)
    old = new.fillna({"neighbour_count_2m": 0.0, "min_neighbour_dist": NO_NEIGHBOUR_DIST})
    converted = missing_neighbours(old)
    assert converted is not old and old["min_neighbour_dist"].iloc[1] == NO_NEIGHBOUR_DIST
    assert converted.equals(new)
    assert missing_neighbours(new) is new  # nothing to convert: the same frame


def test_per_window_time_steps() -> None:
    obs = np.concatenate([_straight(step_s=0.4), _straight(step_s=0.4)])
    f = kinematic_features(obs, step_s=np.array([0.4, 0.5]))
    assert f["time_step"].tolist() == [0.4, 0.5]
    assert f["mean_speed"].iloc[1] == pytest.approx(1.25 * 0.4 / 0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"obs": np.full((1, 8, 2), np.nan)}, "non-finite position in window 0"),
        ({"obs": np.zeros((1, 8, 3))}, "shape"),
        ({"obs": np.zeros((1, 1, 2))}, "shape"),
        ({"obs": np.zeros((2, 8, 2)), "step_s": 0.0}, "positive"),
        ({"obs": np.zeros((2, 8, 2)), "step_s": np.array([0.4])}, "one value per window"),
        ({"obs": np.zeros((2, 8, 2)), "neighbours": np.zeros((3, 1, 8, 2))}, "neighbours"),
    ],
)
def test_bad_input_is_a_validation_error(kwargs: dict[str, object], match: str) -> None:
    obs = kwargs.pop("obs")
    with pytest.raises(ValidationError, match=match):
        kinematic_features(obs, **kwargs)  # type: ignore[arg-type]


def test_finite_for_finite_input_but_missing_neighbours() -> None:
    rng = np.random.default_rng(1)
    obs = np.concatenate(
        [
            rng.normal(0, 1, (50, 8, 2)),
            np.zeros((5, 8, 2)),  # standing exactly
            rng.normal(0, 1e150, (5, 8, 2)),  # absurd but finite: overflow must not leak
            np.repeat(rng.normal(0, 1, (5, 1, 2)), 8, axis=1),
        ]
    )
    nbr = np.where(rng.random((65, 3, 8, 1)) < 0.5, np.nan, rng.normal(0, 2, (65, 3, 8, 2)))
    f = kinematic_features(obs, neighbours=nbr)
    assert f.shape == (65, len(FEATURE_NAMES))
    assert np.isfinite(f.drop(columns=list(NEIGHBOUR_FEATURES)).to_numpy()).all()
    # Missing only as a pair, and only where no neighbour is within 1 km at the last step.
    last = np.linalg.norm(nbr[:, :, -1] - obs[:, None, -1], axis=-1)  # (65, 3)
    alone = ~(last < NO_NEIGHBOUR_DIST).any(axis=1)  # NaN compares False
    for name in NEIGHBOUR_FEATURES:
        assert (f[name].isna().to_numpy() == alone).all(), name
    assert (f["straightness"].between(0.0, 1.0)).all()
    empty = kinematic_features(np.zeros((0, 8, 2)), neighbours=np.zeros((0, 0, 8, 2)))
    assert empty.shape == (0, len(FEATURE_NAMES))


def test_simulated_windows_are_plausible_pedestrians() -> None:
    ws = make_windows(simulate(SimulationConfig(n_agents=16, n_steps=80, seed=5)))
    f = kinematic_features(ws.obs, neighbours=ws.neighbours)
    assert np.isfinite(f.to_numpy()).all()
    assert 0.8 < f["mean_speed"].median() < 1.6
    assert f["straightness"].median() > 0.95
    assert (f["neighbour_count_2m"] <= 16).all()
