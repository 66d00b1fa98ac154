"""Reference profiles: one logged before "no neighbour" was missing is read as a current one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trajops.data import WindowConfig, make_windows
from trajops.data.features import FEATURE_NAMES, NEIGHBOUR_FEATURES, NO_NEIGHBOUR_DIST
from trajops.data.simulator import SimulationConfig, simulate
from trajops.monitoring.drift import DriftDetector, calibrate, features_from_obs, sample_requests
from trajops.monitoring.reference import (
    Reference,
    read_reference,
    upgrade_reference,
    write_reference,
)

FEATURES = list(FEATURE_NAMES)
WINDOW = 300


def _profile(seed: int) -> pd.DataFrame:
    """Served features where about a third of the agents come alone in their request."""
    tracks = simulate(SimulationConfig.pedestrians(n_scenes=3, n_steps=150, seed=seed))
    w = make_windows(tracks, WindowConfig(t_pred=0))
    last = w.start_frame + (w.config.t_obs - 1) * w.config.frame_step
    request = np.array([f"{s}@{f}" for s, f in zip(w.scene, last, strict=True)], object)
    lone = np.random.default_rng(seed).random(len(request)) < 0.3
    request[lone] = [f"lone-{i}" for i in np.flatnonzero(lone)]
    features = features_from_obs(w.obs, scene_ids=request)
    features.insert(0, "request", request)
    features.insert(0, "scene", w.scene.astype(object))
    return features


@pytest.fixture(scope="module")
def profile() -> pd.DataFrame:
    return _profile(0)


def _legacy(profile: pd.DataFrame) -> Reference:
    """The profile as it was written before: no neighbour = 0 within 2 m, nearest at 1 km."""
    old = profile.fillna({"neighbour_count_2m": 0.0, "min_neighbour_dist": NO_NEIGHBOUR_DIST})
    groups = old["scene"].to_numpy()
    return Reference(old, calibrate(old[FEATURES], window_size=WINDOW, groups=groups, seed=0))


def test_an_old_profile_is_upgraded_on_read(profile: pd.DataFrame, tmp_path: Path) -> None:
    legacy = _legacy(profile)
    write_reference(legacy, tmp_path)
    upgraded = read_reference(tmp_path)
    alone = profile["min_neighbour_dist"].isna()
    assert 0.2 < alone.mean() < 0.4
    for name in NEIGHBOUR_FEATURES:
        assert (upgraded.profile[name].isna() == alone).all(), name
    old, new = legacy.calibration.thresholds, upgraded.calibration.thresholds
    assert list(new) == list(old)  # profile order kept
    assert {f: new[f] for f in FEATURES if f not in NEIGHBOUR_FEATURES} == {
        f: old[f] for f in FEATURES if f not in NEIGHBOUR_FEATURES
    }
    # The neighbour thresholds are those of the converted columns: close to a fresh calibration.
    fresh = calibrate(
        profile[FEATURES], window_size=WINDOW, groups=profile["scene"].to_numpy(), seed=0
    ).thresholds
    for name in NEIGHBOUR_FEATURES:
        assert new[name] == pytest.approx(fresh[name], rel=0.15), name
    assert upgrade_reference(upgraded) == upgraded  # a current reference is left as it is


def test_upgraded_reference_reads_served_inputs_like_a_new_one(profile: pd.DataFrame) -> None:
    upgraded = upgrade_reference(_legacy(profile))
    detector = DriftDetector(upgraded.profile, upgraded.calibration)
    pool = _profile(1)  # the same kind of traffic, another day
    rng = np.random.default_rng(0)
    verdicts = [detector.run(sample_requests(pool, size=WINDOW, rng=rng)) for _ in range(3)]
    assert all(r.skipped_features == [] for r in verdicts)
    assert not any(set(NEIGHBOUR_FEATURES) & set(r.drifted_features) for r in verdicts)
    assert all(r.reference_neighbour_share == pytest.approx(0.7, abs=0.05) for r in verdicts)
    assert all(0.55 < (r.neighbour_share or 0) < 0.85 for r in verdicts)
