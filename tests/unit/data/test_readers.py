"""Readers: ETH/UCY text, CSV (frame or timestamp), Parquet, folders, and every malformed case."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trajops.data.readers import (
    list_folds,
    read_eth_ucy_file,
    read_eth_ucy_split,
    read_tracks,
    validate_tracks,
    write_tracks,
)
from trajops.errors import DataError

GOOD_ROWS = [(0, 1, 1.0, 2.0), (10, 1, 1.5, 2.5), (0, 2, 5.0, 5.0), (10, 2, 5.5, 5.25)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _txt(rows: list[tuple[float, ...]], sep: str = "\t") -> str:
    return "".join(sep.join(str(v) for v in row) + "\n" for row in rows)


def test_tab_and_space_separated_files_read_the_same(tmp_path: Path) -> None:
    tab = read_eth_ucy_file(_write(tmp_path / "a.txt", _txt(GOOD_ROWS, "\t")), scene="s")
    space = read_eth_ucy_file(_write(tmp_path / "b.txt", _txt(GOOD_ROWS, "   ")), scene="s")
    pd.testing.assert_frame_equal(tab, space)
    assert list(tab.columns) == ["scene", "frame", "agent_id", "x", "y"]
    assert tab["frame"].dtype == np.int64 and tab["x"].dtype == np.float64
    assert tab["agent_id"].tolist() == ["1", "1", "2", "2"]  # "1.0" in the file becomes "1"
    assert tab["x"].tolist() == [1.0, 1.5, 5.0, 5.5]


def test_scene_defaults_to_file_stem_and_comments_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "zara.txt", "# header comment\n\n" + _txt(GOOD_ROWS))
    df = read_tracks(path)
    assert set(df["scene"]) == {"zara"}
    assert len(df) == 4


@pytest.mark.parametrize(
    ("text", "line", "column", "reason"),
    [
        ("0\t1\t1.0\t2.0\n10\t1\tabc\t2.0\n", 2, "'x'", "not a number: 'abc'"),
        ("0\t1\t1.0\t2.0\n10\t1\t1.0\tnan\n", 2, "'y'", "not a finite number"),
        ("0\t1\t1.0\t2.0\n10\t1\tinf\t2.0\n", 2, "'x'", "not a finite number"),
        ("0\t1\t1.0\t2.0\n0\t1\t3.0\t2.0\n", 2, "'agent_id'", "duplicate observation of agent '1'"),
        ("0\t1\t1.0\t2.0\n15\t1\t3.0\t2.0\n", 2, "'frame'", "irregular frame step"),
        ("0\t1\t1.0\t2.0\n10\t1\t3.0\n", 2, None, "expected 4 fields"),
        ("0\t1\t1.0\t2.0\n10.5\t1\t3.0\t2.0\n", 2, "'frame'", "must be an integer"),
    ],
)
def test_malformed_text_names_file_line_column(
    tmp_path: Path, text: str, line: int, column: str | None, reason: str
) -> None:
    path = _write(tmp_path / "bad.txt", text)
    with pytest.raises(DataError) as info:
        read_tracks(path)
    message = info.value.message
    assert str(path) in message
    assert f"line {line}" in message
    if column:
        assert f"column {column}" in message
    assert reason in message
    assert info.value.details[0]["loc"][:2] == [str(path), line]


def test_empty_and_missing_files_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no observations"):
        read_tracks(_write(tmp_path / "empty.txt", "\n# nothing\n"))
    with pytest.raises(DataError, match="file not found"):
        read_tracks(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="unreadable CSV"):
        read_tracks(_write(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match="unsupported file type"):
        read_tracks(_write(tmp_path / "tracks.json", "{}"))


def test_csv_with_frame_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.csv",
        "scene,frame,agent_id,x,y\nplaza,20,a,1.0,1.0\nplaza,30,a,1.4,1.0\nplaza,20,b,3,3\n",
    )
    df = read_tracks(path)
    assert df["agent_id"].tolist() == ["a", "a", "b"]
    assert df["frame"].tolist() == [20, 30, 20]


def test_csv_with_timestamps_becomes_frames(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.csv",
        "scene,timestamp,agent_id,x,y\ns,100.0,a,0,0\ns,100.4,a,0.5,0\ns,100.8,a,1.0,0\n",
    )
    assert read_tracks(path)["frame"].tolist() == [0, 10, 20]
    bad = _write(
        tmp_path / "irregular.csv", "scene,timestamp,agent_id,x,y\ns,0.0,a,0,0\ns,0.6,a,1,0\n"
    )
    with pytest.raises(DataError) as info:
        read_tracks(bad)
    assert "line 3" in info.value.message and "column 'timestamp'" in info.value.message


def test_csv_errors_point_at_file_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "scene,frame,agent_id,x,y\ns,0,a,1.0,1.0\ns,10,a,oops,1.0\n")
    with pytest.raises(DataError) as info:
        read_tracks(path)
    assert f"{path}, line 3, column 'x'" in info.value.message
    missing = _write(tmp_path / "m.csv", "scene,frame,agent_id,x\ns,0,a,1.0\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['y'\]"):
        read_tracks(missing)


def test_parquet_round_trip_and_folder(tmp_path: Path) -> None:
    txt = read_tracks(_write(tmp_path / "src.txt", _txt(GOOD_ROWS)))
    folder = tmp_path / "mixed"
    write_tracks(txt.assign(scene="p"), folder / "one.parquet")
    write_tracks(txt.assign(scene="c"), folder / "sub" / "two.csv")
    from_parquet = read_tracks(folder / "one.parquet")
    pd.testing.assert_frame_equal(from_parquet, txt.assign(scene="p"))
    both = read_tracks(folder)
    assert sorted(set(both["scene"])) == ["c", "p"]
    assert len(both) == 2 * len(txt)


def test_folder_fails_as_a_whole_when_one_file_is_bad(tmp_path: Path) -> None:
    _write(tmp_path / "a.txt", _txt(GOOD_ROWS))
    _write(tmp_path / "b.txt", "0\t1\t1.0\n")
    with pytest.raises(DataError, match=r"b\.txt, line 1"):
        read_tracks(tmp_path)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(DataError, match="holds no"):
        read_tracks(tmp_path / "nothing")


def test_validate_tracks_sorts_and_normalises() -> None:
    df = pd.DataFrame(
        {"scene": ["s", "s"], "frame": [10.0, 0.0], "agent_id": [7, 7], "x": [1, 0], "y": [0, 0]}
    )
    out = validate_tracks(df)
    assert out["frame"].tolist() == [0, 10]
    assert out["agent_id"].tolist() == ["7", "7"]
    assert out["x"].dtype == np.float64


def test_write_tracks_is_atomic(tmp_path: Path) -> None:
    good = read_tracks(_write(tmp_path / "src.txt", _txt(GOOD_ROWS)))
    out = tmp_path / "out"
    target = write_tracks(good, out / "t.parquet")
    before = target.read_bytes()
    broken = good.astype({"x": object})
    broken.loc[0, "x"] = object()  # pyarrow cannot serialise this: the write fails midway
    with pytest.raises(Exception):  # noqa: B017 - pyarrow raises several types
        write_tracks(broken, target)
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(out)) == ["t.parquet"]  # and no temp file is left behind
    with pytest.raises(DataError, match="unsupported output type"):
        write_tracks(good, out / "t.json")
    assert not (out / "t.json").exists()


@pytest.fixture
def data_root() -> Path:
    root = os.environ.get("TRAJOPS_DATA_ROOT")
    if not root or not Path(root).is_dir():
        pytest.skip("TRAJOPS_DATA_ROOT is not set to the ETH/UCY benchmark root")
    return Path(root)


def test_real_eth_ucy_layout(data_root: Path) -> None:
    assert list_folds(data_root) == ["eth", "hotel", "univ", "zara1", "zara2"]
    test = read_eth_ucy_split(data_root, "eth", "test")
    assert set(test["scene"]) == {"biwi_eth"}
    assert len(test) > 5000
    assert (test["frame"] % 10 == 0).all()
    train = read_eth_ucy_split(data_root, "eth", "train")
    assert "biwi_eth_train" not in set(train["scene"])  # leave-one-scene-out: eth is held out
    with pytest.raises(DataError, match="unknown split"):
        read_eth_ucy_split(data_root, "eth", "nope")  # type: ignore[arg-type]
