"""Drift alert persistence, served-input features and request sampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trajops.data.features import FEATURE_NAMES
from trajops.errors import ValidationError
from trajops.monitoring.drift import Persistence, features_from_obs, sample_requests


def test_persistence_needs_k_of_the_last_m() -> None:
    p = Persistence(2, 3)
    assert [p.update(v) for v in (True, False, False, True, False, True)] == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert p.history == [True, False, True]
    assert p.update(False) is False  # the oldest True fell out of the last 3
    p.reset()
    assert p.history == [] and p.alert is False


def test_persistence_resumes_from_stored_history() -> None:
    p = Persistence(3, 5, history=[True, True, False, False, False, True, True])
    assert p.history == [False, False, False, True, True]
    assert p.alert is False
    assert p.update(True) is True
    assert Persistence(1, 1).update(True) is True


@pytest.mark.parametrize(("k", "m"), [(0, 3), (4, 3), (-1, -1)])
def test_persistence_rejects_bad_k_m(k: int, m: int) -> None:
    with pytest.raises(ValidationError, match="1 <= k <= m"):
        Persistence(k, m)


def _walker(x0: float, y0: float, vx: float) -> np.ndarray:
    t = np.arange(8, dtype=np.float64)
    return np.stack([x0 + vx * 0.4 * t, np.full(8, y0)], axis=-1)  # (8, 2)


def test_features_from_obs_takes_neighbours_from_the_same_request_only() -> None:
    obs = np.stack(
        [_walker(0, 0, 1.0), _walker(0, 1, 1.0), _walker(0, 0.5, 1.5), _walker(50, 50, 1.0)]
    )  # (4, 8, 2)
    together = features_from_obs(obs)
    assert list(together.columns) == list(FEATURE_NAMES)
    assert together["neighbour_count_2m"].tolist()[:3] == [2.0, 2.0, 2.0]

    apart = features_from_obs(obs, scene_ids=np.array(["a", "b", "b", "c"]))
    # Alone in its request: no neighbour observed, so both neighbour features are missing.
    np.testing.assert_array_equal(apart["neighbour_count_2m"], [np.nan, 1.0, 1.0, np.nan])
    assert apart["min_neighbour_dist"].isna().tolist() == [True, False, False, True]
    assert apart["min_neighbour_dist"].iloc[1] == pytest.approx(
        np.linalg.norm(obs[1, -1] - obs[2, -1])
    )
    np.testing.assert_allclose(apart["mean_speed"], [1.0, 1.0, 1.5, 1.0])
    # A client whose 0.5 s steps are served as 0.4 s looks 25 % faster.
    slow = features_from_obs(obs[:1], step_s=0.5)
    assert slow["mean_speed"].iloc[0] == pytest.approx(0.8)


def test_features_from_obs_rejects_bad_shapes() -> None:
    with pytest.raises(ValidationError, match="shape"):
        features_from_obs(np.zeros((3, 8)))
    with pytest.raises(ValidationError, match="one id per input"):
        features_from_obs(np.zeros((3, 8, 2)), scene_ids=np.array(["a", "b"]))
    with pytest.raises(ValidationError, match="non-finite"):
        features_from_obs(np.full((2, 8, 2), np.nan), scene_ids=np.array(["a", "a"]))


def test_sample_requests_keeps_requests_whole() -> None:
    frame = pd.DataFrame({"request": np.repeat(["r0", "r1", "r2", "r3"], 5), "v": np.arange(20.0)})
    window = sample_requests(frame, size=12, rng=np.random.default_rng(0))
    assert len(window) == 12
    sizes = window["request"].value_counts().sort_values()
    assert sizes.iloc[-2:].tolist() == [5, 5] and sizes.sum() == 12
    assert len(sample_requests(frame, size=100, rng=np.random.default_rng(0))) == 20
    with pytest.raises(ValidationError, match="request"):
        sample_requests(frame.drop(columns="request"), size=3, rng=np.random.default_rng(0))
