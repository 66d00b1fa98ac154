"""Training data splits: by scene, by time, ETH/UCY folds, simulated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trajops.data.simulator import SimulationConfig, simulate
from trajops.errors import ValidationError
from trajops.tracking.datasets import (
    eth_ucy_splits,
    is_eth_ucy_root,
    path_splits,
    simulated_splits,
    split_by_time,
)


def test_simulated_scenes_never_leak_across_splits() -> None:
    splits = simulated_splits(SimulationConfig(n_scenes=5, n_agents=6, n_steps=40, seed=1))
    scenes = [set(df["scene"]) for _, df in splits.items()]
    assert all(scenes) and sum(len(s) for s in scenes) == 5
    assert not (scenes[0] & scenes[1] or scenes[0] & scenes[2] or scenes[1] & scenes[2])
    assert splits.source.startswith("simulator:") and "seed=1" in splits.source


def test_too_few_simulated_scenes_is_a_user_error() -> None:
    with pytest.raises(ValidationError, match="at least 3 scenes"):
        simulated_splits(SimulationConfig(n_scenes=2))


def test_few_scenes_are_split_in_time(tmp_path: Path) -> None:
    tracks = simulate(SimulationConfig(n_scenes=1, n_agents=6, n_steps=100, seed=2))
    train, val, test = split_by_time(tracks)
    assert len(train) + len(val) + len(test) == len(tracks)
    assert train["frame"].max() < val["frame"].min() <= val["frame"].max() < test["frame"].min()
    path = tmp_path / "one.csv"
    tracks.to_csv(path, index=False)
    splits = path_splits(path)
    assert splits.name == "one" and splits.source == str(path.resolve())
    assert len(splits.test) == len(test)


def test_unknown_fold_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown fold 'mars'"):
        eth_ucy_splits(tmp_path, "mars")
    assert not is_eth_ucy_root(tmp_path)


@pytest.mark.skipif(
    not is_eth_ucy_root(Path(os.environ.get("TRAJOPS_DATA_ROOT", "/nonexistent"))),
    reason="TRAJOPS_DATA_ROOT is not set to the ETH/UCY benchmark root",
)
def test_eth_ucy_fold_holds_out_its_scene() -> None:
    root = Path(os.environ["TRAJOPS_DATA_ROOT"])
    splits = eth_ucy_splits(root, "hotel")
    assert set(splits.test["scene"]) == {"biwi_hotel"}
    assert not any("hotel" in s for s in splits.train["scene"].unique())
    assert splits.fold == "hotel"
