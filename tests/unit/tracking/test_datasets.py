"""Training data splits: by scene, by time, ETH/UCY folds, simulated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trajops.data.simulator import SimulationConfig, simulate
from trajops.errors import ValidationError
from trajops.tracking.datasets import (
    eth_ucy_all_sites,
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


def _write(path: Path, frames: range, agents: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{f}.0\t{a}.0\t{0.4 * f + a}\t{a}.0" for f in frames for a in range(agents)]
    path.write_text("\n".join(lines) + "\n")


def test_all_sites_holds_every_recording_once_cut_in_time(tmp_path: Path) -> None:
    """A two-fold root: each fold's test recording is whole; a recording that is never a test
    scene is the union of its train and val files."""
    for fold, own in (("eth", "biwi_eth"), ("hotel", "biwi_hotel")):
        other = "biwi_hotel" if fold == "eth" else "biwi_eth"
        _write(tmp_path / fold / "test" / f"{own}.txt", range(0, 1000, 10))
        _write(tmp_path / fold / "train" / f"{other}_train.txt", range(0, 800, 10))
        _write(tmp_path / fold / "val" / f"{other}_val.txt", range(800, 1000, 10))
        _write(tmp_path / fold / "train" / "zara03_train.txt", range(0, 600, 10))
        _write(tmp_path / fold / "val" / "zara03_val.txt", range(600, 700, 10))
    splits = eth_ucy_all_sites(tmp_path)
    assert splits.name == "eth_ucy-all" and splits.fold is None
    for _, part in splits.items():  # every site in every split
        assert set(part["scene"]) == {"biwi_eth", "biwi_hotel", "zara03"}
    total = sum(len(part) for _, part in splits.items())
    assert total == 2 * (100 + 100 + 70)  # each recording once (no fold's copy twice)
    for scene in ("biwi_eth", "biwi_hotel", "zara03"):  # validation is later than training
        train, val, test = (p[p["scene"] == scene]["frame"] for _, p in splits.items())
        assert train.max() < val.min() <= val.max() < test.min()
    with pytest.raises(ValidationError, match="not an ETH/UCY root"):
        eth_ucy_all_sites(tmp_path / "eth" / "test")
