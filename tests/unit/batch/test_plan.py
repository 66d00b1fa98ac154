"""Partition planning: scene-aligned Parquet row groups, one partition per text file, fail fast."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests._support.batch import walkers
from trajops.batch.plan import input_digest, plan_partitions
from trajops.errors import DataError


def _parquet(path: Path, df: object, *, row_group_size: int) -> Path:
    pq.write_table(
        pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=row_group_size
    )
    return path


def test_sorted_parquet_splits_on_row_groups_without_splitting_a_scene(tmp_path: Path) -> None:
    df = walkers(scenes=6, agents=5, steps=10)  # 50 rows per scene
    # 30-row groups: scenes straddle group boundaries, so some groups must stay together
    path = _parquet(tmp_path / "t.parquet", df, row_group_size=30)
    parts = plan_partitions(path, partition_rows=60)
    assert sum(p.rows for p in parts) == len(df)
    assert next(p.first_row for p in parts) == 1
    meta = pq.ParquetFile(path).metadata
    col = meta.schema.names.index("scene")
    for a, b in itertools.pairwise(parts):
        last = meta.row_group(a.row_groups[-1]).column(col).statistics.max
        first = meta.row_group(b.row_groups[0]).column(col).statistics.min
        assert last < first  # no scene on both sides of a partition boundary
        assert b.first_row == a.first_row + a.rows
    assert len(parts) > 1


def test_unsorted_parquet_is_one_partition(tmp_path: Path) -> None:
    df = walkers(scenes=4, agents=2, steps=10).iloc[::-1]
    path = _parquet(tmp_path / "r.parquet", df, row_group_size=10)
    parts = plan_partitions(path, partition_rows=10)
    assert len(parts) == 1
    assert parts[0].rows == len(df)


def test_folder_plans_each_file_and_rejects_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("0 1 0.0 0.0\n")
    (tmp_path / "b.csv").write_text("scene,frame,agent_id,x,y\n")
    (tmp_path / "notes.md").write_text("ignored")
    parts = plan_partitions(tmp_path, partition_rows=100)
    assert [(Path(p.path).name, p.kind, p.index) for p in parts] == [
        ("a.txt", "txt", 0),
        ("b.csv", "csv", 1),
    ]
    (tmp_path / "c.csv").write_text("scene,frame,x,y\n")
    with pytest.raises(DataError, match=r"c\.csv: missing column\(s\) \['agent_id'\]"):
        plan_partitions(tmp_path, partition_rows=100)


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing.parquet", "file not found"), ("x.json", "unsupported file type '.json'")],
)
def test_bad_paths_fail_before_anything_runs(tmp_path: Path, name: str, message: str) -> None:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text("{}")
    with pytest.raises(DataError, match=message):
        plan_partitions(path, partition_rows=10)


def test_input_digest_follows_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("0 1 0.0 0.0\n")
    first = input_digest(path)
    assert input_digest(path) == first
    path.write_text("0 1 0.0 0.5\n")
    assert input_digest(path) != first
