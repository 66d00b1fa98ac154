"""The harvest format: a round trip through write and read, and folders that are not one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._support.harvest import harvest_frame
from trajops.data.harvest import (
    FORMAT,
    HARVEST_COLUMNS,
    MANIFEST,
    WINDOWS,
    is_harvest,
    read_harvest,
    write_harvest,
)
from trajops.data.simulator import SimulationConfig
from trajops.data.windows import make_windows
from trajops.errors import DataError


def _rows(**overrides: object) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "scene": ["cam/r1"] * 3,
            "frame": [0, 10, 20],
            "agent_id": ["a"] * 3,
            "x": [0.0, 0.5, 1.0],
            "y": [0.0, 0.0, 0.1],
            "site": ["cam"] * 3,
            "t": [100.0] * 3,
            "request_id": ["r1"] * 3,
        }
    )
    return frame.assign(**overrides)


def test_a_harvest_round_trips_with_its_manifest(tmp_path: Path) -> None:
    frame, n_windows = harvest_frame(SimulationConfig(n_scenes=2, n_agents=6, n_steps=40, seed=4))
    manifest = write_harvest(frame, tmp_path / "h", n_windows=n_windows, details={"by": "test"})
    assert is_harvest(tmp_path / "h")
    harvest = read_harvest(tmp_path / "h")
    assert harvest.manifest == manifest == json.loads((tmp_path / "h" / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["by"] == "test"
    assert harvest.n_windows == n_windows == len(make_windows(harvest.tracks)) > 0
    assert manifest["instants"] == frame["scene"].nunique()
    assert manifest["time_range"] == [frame["t"].min(), frame["t"].max()]
    assert list(harvest.tracks.columns) == list(HARVEST_COLUMNS)
    expected = frame.sort_values(["scene", "agent_id", "frame"], ignore_index=True)
    pd.testing.assert_frame_equal(harvest.tracks, expected[list(HARVEST_COLUMNS)])
    # Writing again over a harvest replaces it; the folder is never left half-written.
    write_harvest(frame.iloc[:0], tmp_path / "h", n_windows=0, details={})
    empty = read_harvest(tmp_path / "h")
    assert len(empty.tracks) == 0 and empty.manifest["time_range"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h"]


def test_extra_columns_follow_rows_whatever_the_key_dtypes(tmp_path: Path) -> None:
    """Integer agent ids and float frames in the file are normalised (``"7"``, ``10``); the
    site, time and request of each row must still be found."""
    write_harvest(
        _rows(agent_id=[7, 7, 7], frame=[0.0, 10.0, 20.0]), tmp_path / "h", n_windows=0, details={}
    )
    tracks = read_harvest(tmp_path / "h").tracks
    assert tracks["agent_id"].tolist() == ["7"] * 3 and tracks["frame"].tolist() == [0, 10, 20]
    assert tracks["site"].tolist() == ["cam"] * 3
    assert tracks["request_id"].tolist() == ["r1"] * 3
    np.testing.assert_array_equal(tracks["t"].to_numpy(), [100.0] * 3)


def test_folders_that_are_not_harvests_are_named(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine")
    assert not is_harvest(plain) and not is_harvest(tmp_path / "missing")
    with pytest.raises(DataError, match="not a harvest"):
        read_harvest(plain)
    with pytest.raises(DataError, match="exists and is not a harvest folder"):
        write_harvest(_rows(), plain, n_windows=0, details={})
    assert (plain / "notes.txt").read_text() == "mine"  # never overwritten
    (plain / MANIFEST).write_text(json.dumps({"format": "something-else/1"}))
    assert not is_harvest(plain)


def test_a_damaged_harvest_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    write_harvest(_rows(), tmp_path / "h", n_windows=0, details={})
    file = tmp_path / "h" / WINDOWS
    _rows().drop(columns=["site"]).to_parquet(file)
    with pytest.raises(DataError, match=r"missing column\(s\) \['site'\]"):
        read_harvest(tmp_path / "h")
    _rows(t=[1.0, float("nan"), 1.0]).to_parquet(file)
    with pytest.raises(DataError, match="row 1: column t is not a finite number"):
        read_harvest(tmp_path / "h")
    file.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=f"{WINDOWS}: unreadable Parquet"):
        read_harvest(tmp_path / "h")
