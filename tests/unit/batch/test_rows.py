"""Tolerant row validation of batch partitions: every bad row is reported with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trajops.batch.plan import Partition
from trajops.batch.rows import BAD_ROW_COLUMNS, read_partition, split_bad_rows
from trajops.errors import DataError


def _raw(**cols: list[object]) -> pd.DataFrame:
    return pd.DataFrame(cols)


def test_split_bad_rows_names_each_reason_and_keeps_the_good_rows() -> None:
    df = _raw(
        scene=["a"] * 7,
        frame=["0", "10", "20", "abc", "30", "30", "35"],
        agent_id=["1", "1", "1", "1", "", "1", "1"],
        x=["0.0", "1.0", "inf", "3.0", "4.0", "3.0", "3.5"],
        y=["0", "0", "0", "0", "0", "0", "0"],
    )
    # one duplicate of agent 1 at frame 30 follows a valid row at frame 30
    df.loc[len(df)] = ["a", "30", "1", "9.0", "0"]
    tracks, bad = split_bad_rows(df, source="f.csv", lines=np.arange(len(df)) + 2, scene="a")
    assert list(bad.columns) == list(BAD_ROW_COLUMNS)
    reasons = dict(zip(bad["line"], bad["reason"], strict=True))
    assert reasons[4].startswith("not a finite number: 'inf'")
    assert reasons[5].startswith("not a finite number: 'abc'")
    assert reasons[6] == "empty agent id"
    assert reasons[8].startswith("irregular frame step: frame 35")
    assert reasons[9] == "duplicate observation of agent '1' at frame 30"
    assert len(bad) == 5
    assert tracks["frame"].tolist() == [0, 10, 30]
    assert tracks["x"].tolist() == [0.0, 1.0, 3.0]


def test_timestamps_become_frames_and_off_grid_times_are_reported() -> None:
    df = _raw(
        scene=["s"] * 4,
        timestamp=[0.0, 0.4, 0.8, 1.0],
        agent_id=["a"] * 4,
        x=[0.0, 1.0, 2.0, 3.0],
        y=[0.0] * 4,
    )
    tracks, bad = split_bad_rows(df, source="t.parquet", lines=np.arange(1, 5), scene="s")
    assert tracks["frame"].tolist() == [0, 10, 20]
    assert bad["line"].tolist() == [4]
    assert bad["reason"].iloc[0].startswith("irregular time step")


def test_text_partition_reports_malformed_lines_with_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "scene.txt"
    lines = [f"{f * 10}\t1.0\t{f * 0.5}\t0.0" for f in range(10)]
    lines.insert(3, "30 1.0 0.5")  # line 4: three fields
    lines.insert(6, "nan 2.0 0.0 0.0")  # line 7: not finite
    lines.append("100 1.5 0.0 0.0")  # line 13: not an integer agent id
    path.write_text("\n".join(lines) + "\n")
    rows = read_partition(Partition(index=0, path=str(path), kind="txt", scene="scene"))
    assert rows.rows_read == 13
    assert rows.bad["line"].tolist() == [4, 7, 13]
    assert rows.bad["reason"].iloc[2] == "agent id must be an integer, got '1.5'"
    assert rows.bad["reason"].iloc[0] == "expected 4 fields (frame agent x y), found 3"
    assert set(rows.tracks["agent_id"]) == {"1"}
    assert len(rows.tracks) == 10


def test_csv_partition_uses_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("scene,frame,agent_id,x,y\nq,0,7,0,0\nq,10,7,oops,0\nq,20,7,2,0\n")
    rows = read_partition(Partition(index=0, path=str(path), kind="csv", scene="t"))
    assert rows.bad[["line", "column", "value"]].values.tolist() == [[3, "x", "oops"]]
    assert rows.tracks["frame"].tolist() == [0, 20]


def test_a_file_that_cannot_be_read_at_all_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"broken\.parquet"):
        read_partition(Partition(index=0, path=str(path), kind="parquet", scene="x"))
