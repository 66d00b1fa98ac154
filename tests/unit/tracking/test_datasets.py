"""Training data splits: by scene, by time, ETH/UCY folds, simulated, production harvests."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests._support.harvest import make_harvest
from trajops.data.fingerprint import fingerprint
from trajops.data.harvest import read_harvest, write_harvest
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import make_windows
from trajops.errors import DataError, ValidationError
from trajops.tracking.datasets import (
    BASE_PREFIX,
    EMBARGO_S,
    MIN_SPLIT_WINDOWS,
    eth_ucy_all_sites,
    eth_ucy_splits,
    harvest_splits,
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


# --- harvests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_harvest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sites over 160 s, an instant every 2 s: long enough to split in time."""
    config = SimulationConfig(n_scenes=2, n_agents=10, n_steps=400, seed=1)
    return make_harvest(tmp_path_factory.mktemp("h") / "long", config, every=5)


@pytest.fixture(scope="module")
def short_harvest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six sites over 24 s: many windows, too short for the embargo, so split by agent."""
    config = SimulationConfig(n_scenes=6, n_agents=10, n_steps=60, seed=2)
    return make_harvest(tmp_path_factory.mktemp("h") / "short", config, every=2)


def _instants(part: pd.DataFrame, harvest: pd.DataFrame) -> pd.Series:
    times = harvest.groupby("scene")["t"].first()
    return times.loc[sorted(set(part["scene"]))]


def test_a_long_harvest_is_split_in_time_with_an_embargo(long_harvest: Path) -> None:
    harvest = read_harvest(long_harvest)
    splits = path_splits(long_harvest)  # --data detects the harvest
    assert splits.name == f"harvest-{harvest.manifest['fingerprint'][:12]}"
    assert splits.source == str(long_harvest.resolve())
    assert splits.lineage["harvest.split"] == "time"
    assert splits.lineage["harvest.fingerprint"] == harvest.manifest["fingerprint"]
    assert splits.lineage["harvest.embargo_s"] == "8" and EMBARGO_S == 8.0
    assert splits.lineage["harvest.time_range"].startswith("2023-11-14T22:13:22+00:00/")
    windows = [len(make_windows(df)) for _, df in splits.items()]
    for name, n in zip(("train", "val", "test"), windows, strict=True):
        assert splits.lineage[f"harvest.n_{name}_windows"] == str(n)
        assert n >= MIN_SPLIT_WINDOWS
    assert windows[0] > 3 * windows[1]  # about 70 / 15 / 15 % before the embargo
    assert sum(windows) < harvest.n_windows  # the embargo dropped some
    train, val, test = (_instants(df, harvest.tracks) for _, df in splits.items())
    # Ordered in time, and a whole window span (8 s) between one split and the next.
    assert train.max() + EMBARGO_S <= val.min() and val.max() + EMBARGO_S <= test.min()
    assert set(splits.train.columns) == {"scene", "frame", "agent_id", "x", "y"}


def test_a_short_harvest_is_split_by_agent(short_harvest: Path) -> None:
    splits = harvest_splits(short_harvest, seed=0)
    assert splits.lineage["harvest.split"] == "agent"
    assert "harvest.embargo_s" not in splits.lineage
    owners = []
    for name, df in splits.items():
        ws = make_windows(df)
        assert len(ws) >= MIN_SPLIT_WINDOWS
        assert splits.lineage[f"harvest.n_{name}_windows"] == str(len(ws))
        owners.append(set(ws.agent_id))
        # Neighbours-only rows of other agents stay as context: observed frames only.
        others = df[~df["agent_id"].isin(owners[-1])]
        assert len(others) and others["frame"].max() <= 70
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert set.union(*owners) == set(make_windows(read_harvest(short_harvest).tracks).agent_id)
    other_seed = harvest_splits(short_harvest, seed=1)
    assert set(other_seed.test["agent_id"]) != set(splits.test["agent_id"])
    again = harvest_splits(short_harvest, seed=0)
    pd.testing.assert_frame_equal(again.test, splits.test)  # the hash is stable


def test_a_harvest_too_small_to_split_is_a_clear_data_error(tmp_path: Path) -> None:
    config = SimulationConfig(n_scenes=1, n_agents=6, n_steps=60, seed=2)
    path = make_harvest(tmp_path / "tiny", config)
    n = read_harvest(path).n_windows
    with pytest.raises(DataError, match=rf"too small to train on: {n} window\(s\)") as info:
        path_splits(path)
    assert f"need at least {MIN_SPLIT_WINDOWS} windows each" in info.value.message
    empty = tmp_path / "empty"
    write_harvest(read_harvest(path).tracks.iloc[:0], empty, n_windows=0, details={})
    with pytest.raises(DataError, match=r"0 window\(s\)"):
        harvest_splits(empty)


def test_base_data_joins_train_and_val_only(long_harvest: Path, tmp_path: Path) -> None:
    base = simulated_splits(SimulationConfig(n_scenes=3, n_agents=6, n_steps=40, seed=5))
    alone = harvest_splits(long_harvest)
    both = path_splits(long_harvest, base=base)
    for name in ("train", "val"):
        own, joined = getattr(alone, name), getattr(both, name)
        added = joined[joined["scene"].str.startswith(BASE_PREFIX)]
        assert len(joined) == len(own) + len(added) == len(own) + len(getattr(base, name))
        assert set(added["scene"]) == {BASE_PREFIX + s for s in getattr(base, name)["scene"]}
    pd.testing.assert_frame_equal(both.test, alone.test)  # the test split is production's
    assert both.lineage["base_data"] == base.source
    assert both.lineage["base_data.fingerprint"] == (
        fingerprint(pd.concat([base.train, base.val])).digest
    )
    csv = tmp_path / "tracks.csv"
    base.train.to_csv(csv, index=False)
    with pytest.raises(ValidationError, match="is not a harvest"):
        path_splits(csv, base=base)
