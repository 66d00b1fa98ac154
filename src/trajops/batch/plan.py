"""Planning a batch job: which files, which partitions, and the digest of the whole input.

A partition is the unit of work a Dask task reads, windows, predicts and writes. Partitions
never split a scene (windows and neighbours need every row of a scene), so:

* a Parquet file is split along its row groups when its ``scene`` column is sorted across row
  groups (the row-group statistics say so; ``trajops data`` and :func:`write_tracks` write
  sorted files); row groups sharing a scene stay together, and consecutive groups are packed up
  to ``partition_rows`` rows. A file without sorted statistics is one partition;
* a CSV or ETH/UCY text file is one partition.

Planning reads metadata and headers only, never the data, so the driver's memory does not grow
with the input. Structural problems (a missing file, an unsupported type, missing columns, an
unreadable Parquet footer) fail the whole job here, before any output is written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq

from trajops.errors import DataError

Kind = Literal["parquet", "csv", "txt"]
SUFFIXES: dict[str, Kind] = {".parquet": "parquet", ".csv": "csv", ".txt": "txt"}
REQUIRED = ("agent_id", "x", "y")
"""Columns a CSV or Parquet input must have, plus ``frame`` or ``timestamp``."""
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Partition:
    """One unit of batch work (picklable: it travels to the Dask workers).

    Attributes:
        index: position in the plan; names the output files (``part-00007``).
        path: absolute path of the input file.
        kind: file type.
        scene: scene name for rows without a ``scene`` column (the file stem).
        row_groups: Parquet row groups to read (empty: the whole file).
        first_row: 1-based row number in the file of the partition's first row (Parquet).
        rows: rows in the partition (Parquet), or 0 when unknown before reading.
    """

    index: int
    path: str
    kind: Kind
    scene: str
    row_groups: tuple[int, ...] = ()
    first_row: int = 1
    rows: int = 0

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    def describe(self) -> dict[str, object]:
        """JSON-ready summary (for ``job.json`` and the manifest)."""
        return {
            "name": self.name,
            "path": self.path,
            "kind": self.kind,
            "row_groups": list(self.row_groups),
            "rows": self.rows,
        }


def _err(path: Path | str, reason: str) -> DataError:
    return DataError(f"{path}: {reason}", details=[{"loc": [str(path)], "msg": reason}])


def input_files(path: str | Path) -> list[Path]:
    """The input files of a job: ``path`` itself, or every supported file under a folder.

    Raises:
        DataError: a missing path, an unsupported file type, or a folder without inputs.
    """
    path = Path(path).resolve()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise _err(path, "folder holds no .txt, .csv or .parquet files")
        return files
    if not path.exists():
        raise _err(path, "file not found")
    if path.suffix.lower() not in SUFFIXES:
        raise _err(path, f"unsupported file type {path.suffix!r}; expected .txt, .csv or .parquet")
    return [path]


def _check_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in columns]
    if "frame" not in columns and "timestamp" not in columns:
        missing.append("frame (or timestamp)")
    if missing:
        raise _err(path, f"missing column(s) {missing}; expected scene, frame, agent_id, x, y")


def _parquet_partitions(path: Path, *, start: int, partition_rows: int) -> list[Partition]:
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt footer
        raise _err(path, f"unreadable Parquet: {exc}") from None
    columns = [meta.schema.column(i).name for i in range(meta.num_columns)]
    _check_columns(path, columns)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    blocks = _scene_blocks(meta, columns, sizes)
    parts: list[Partition] = []
    first_row = 1
    group: list[int] = []
    for block in blocks:
        if group and sum(sizes[i] for i in group) + sum(sizes[i] for i in block) > partition_rows:
            parts.append(_parquet_part(path, start + len(parts), group, sizes, first_row))
            first_row += sum(sizes[i] for i in group)
            group = []
        group.extend(block)
    if group:
        parts.append(_parquet_part(path, start + len(parts), group, sizes, first_row))
    return parts


def _parquet_part(
    path: Path, index: int, groups: list[int], sizes: list[int], first_row: int
) -> Partition:
    return Partition(
        index=index,
        path=str(path),
        kind="parquet",
        scene=path.stem,
        row_groups=tuple(groups),
        first_row=first_row,
        rows=sum(sizes[i] for i in groups),
    )


def _scene_blocks(meta: pq.FileMetaData, columns: list[str], sizes: list[int]) -> list[list[int]]:
    """Runs of row groups that must be read together (they share a scene).

    One block of every row group when the file has no ``scene`` column (it is one scene) or its
    statistics do not show scenes sorted across row groups.
    """
    everything = [list(range(len(sizes)))] if sizes else []
    if "scene" not in columns or len(sizes) <= 1:
        return everything
    col = columns.index("scene")
    bounds: list[tuple[str, str]] = []
    for i in range(len(sizes)):
        stats = meta.row_group(i).column(col).statistics
        if stats is None or not stats.has_min_max:
            return everything
        bounds.append((str(stats.min), str(stats.max)))
    blocks: list[list[int]] = [[0]]
    for i in range(1, len(sizes)):
        prev_max, (lo, _) = bounds[i - 1][1], bounds[i]
        if lo < prev_max:  # not sorted: a scene may be anywhere in the file
            return everything
        if lo == prev_max:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return blocks


def _text_partition(path: Path, *, index: int, kind: Kind) -> Partition:
    if kind == "csv":
        try:
            header = pd.read_csv(path, nrows=0)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise _err(path, f"unreadable CSV: {exc}") from None
        _check_columns(path, [str(c) for c in header.columns])
    return Partition(index=index, path=str(path), kind=kind, scene=path.stem)


def plan_partitions(path: str | Path, *, partition_rows: int) -> list[Partition]:
    """Split the input at ``path`` (a file or a folder) into partitions.

    Args:
        path: a ``.parquet``, ``.csv`` or ETH/UCY ``.txt`` file, or a folder of them.
        partition_rows: most rows per Parquet partition (a scene larger than this stays whole).

    Returns:
        Partitions in file order, indexed from 0.

    Raises:
        DataError: see the module docstring.
    """
    if partition_rows < 1:
        raise DataError(f"partition_rows must be >= 1, got {partition_rows}")
    parts: list[Partition] = []
    for file in input_files(path):
        kind = SUFFIXES[file.suffix.lower()]
        if kind == "parquet":
            parts.extend(_parquet_partitions(file, start=len(parts), partition_rows=partition_rows))
        else:
            parts.append(_text_partition(file, index=len(parts), kind=kind))
    return parts


def input_digest(path: str | Path) -> str:
    """SHA-256 over the input files' relative names, sizes and bytes (streamed, bounded memory).

    Byte-level on purpose: it identifies exactly what the job read, and is cheap enough to
    recompute on every resume to prove the input did not change.
    """
    root = Path(path).resolve()
    base = root if root.is_dir() else root.parent
    h = hashlib.sha256(b"trajops-batch-input-v1\n")
    for file in input_files(root):
        h.update(f"{file.relative_to(base)}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as fh:
            while block := fh.read(_HASH_BLOCK):
                h.update(block)
    return h.hexdigest()
