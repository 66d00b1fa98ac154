"""Dataset fingerprints: invariant to row order and file format, sensitive to any value."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trajops.data.fingerprint import DatasetFingerprint, digest_windows, fingerprint
from trajops.data.readers import read_tracks, write_tracks
from trajops.data.simulator import SimulationConfig, simulate
from trajops.data.windows import make_windows
from trajops.errors import DataError


@pytest.fixture(scope="module")
def tracks() -> pd.DataFrame:
    return simulate(SimulationConfig(n_agents=8, n_steps=40, n_scenes=2, seed=9))


def test_counts_and_schema(tracks: pd.DataFrame) -> None:
    fp = fingerprint(tracks)
    assert isinstance(fp, DatasetFingerprint)
    assert len(fp.digest) == 64 and int(fp.digest, 16) >= 0
    assert fp.n_rows == len(tracks)
    assert fp.n_agents == tracks[["scene", "agent_id"]].drop_duplicates().shape[0]
    assert fp.n_scenes == 2 and fp.scenes == ["sim-000", "sim-001"]
    assert fp.n_frames == 2 * 40
    assert fp.schema == {
        "scene": "str",
        "frame": "int64",
        "agent_id": "str",
        "x": "float64",
        "y": "float64",
    }
    assert json.loads(json.dumps(fp.to_dict())) == fp.to_dict()
    assert fp.short == fp.digest[:12]


def test_row_order_and_extra_columns_do_not_matter(tracks: pd.DataFrame) -> None:
    shuffled = tracks.sample(frac=1.0, random_state=0).reset_index(drop=True)
    shuffled = shuffled[["y", "x", "agent_id", "frame", "scene"]].assign(extra=1)
    assert fingerprint(shuffled).digest == fingerprint(tracks).digest


def test_file_format_does_not_matter(tmp_path: Path, tracks: pd.DataFrame) -> None:
    write_tracks(tracks, tmp_path / "t.csv")
    write_tracks(tracks, tmp_path / "t.parquet")
    digests = {fingerprint(read_tracks(tmp_path / f)).digest for f in ("t.csv", "t.parquet")}
    assert digests == {fingerprint(tracks).digest}
    # Different number formatting in ETH/UCY text files: the same data.
    (tmp_path / "a.txt").write_text("0\t1\t1.5\t2.0\n10\t1\t2.0\t2.0\n")
    (tmp_path / "b.txt").write_text("10 1.0 2.000 2\n0 1 1.50 2.0000\n")
    a, b = read_tracks(tmp_path / "a.txt", scene="s"), read_tracks(tmp_path / "b.txt", scene="s")
    assert fingerprint(a).digest == fingerprint(b).digest


@pytest.mark.parametrize(
    ("column", "value"),
    [("x", 1e-3), ("y", -1e-3), ("frame", 10_000), ("agent_id", "changed"), ("scene", "other")],
)
def test_any_single_change_changes_the_digest(
    tracks: pd.DataFrame, column: str, value: object
) -> None:
    changed = tracks.copy()
    i = len(changed) // 2
    if column in ("x", "y"):
        changed.loc[i, column] = float(changed.loc[i, column]) + float(value)  # type: ignore[arg-type]
    else:
        changed.loc[i, column] = value
    assert fingerprint(changed).digest != fingerprint(tracks).digest


def test_negative_zero_and_missing_columns(tracks: pd.DataFrame) -> None:
    zero = tracks.head(3).assign(x=0.0)
    negative = tracks.head(3).assign(x=-0.0)
    assert fingerprint(zero).digest == fingerprint(negative).digest
    with pytest.raises(DataError, match="missing column"):
        fingerprint(tracks.drop(columns=["y"]))


def test_digest_windows(tracks: pd.DataFrame) -> None:
    ws = make_windows(tracks)
    assert len(ws) > 0
    d = digest_windows(ws)
    assert d == digest_windows(make_windows(tracks))
    moved = ws.subset(np.arange(len(ws)))
    moved.traj[0, 0, 0] += 0.01
    assert digest_windows(moved) != d
    reordered = ws.subset(np.arange(len(ws))[::-1])
    assert digest_windows(reordered) != d  # order is part of a training input
    # A NaN with another bit pattern in a padding slot hashes the same.
    other_nan = ws.subset(np.arange(len(ws)))
    nan_mask = np.isnan(other_nan.neighbours)
    assert nan_mask.any()
    bits = other_nan.neighbours.view(np.uint32)
    bits[nan_mask] = np.uint32(0x7FC00001)
    assert np.isnan(other_nan.neighbours[nan_mask]).all()
    assert digest_windows(other_nan) == d
