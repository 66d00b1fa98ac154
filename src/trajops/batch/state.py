"""A batch job's state, kept as files in its output folder (no database).

Layout::

    OUT/job.json                  what the job is: input, input digest, model, params, partitions
    OUT/parts/part-00000.parquet  forecasts of one partition (lineage in the schema metadata)
    OUT/bad_rows/part-00000.csv   rows a partition excluded, with the reason (only if any)
    OUT/done/part-00000.json      written last: the partition is complete (its counts)
    OUT/bad_rows.csv              every excluded row of the job (written at the end)
    OUT/manifest.json             written at the end: counts, files, lineage, status
    OUT/.lock                     held (flock) while a process runs the job

Every file is written to a temporary name and renamed, so a crash never leaves a partial file
under a final name; a partition counts as complete only once its ``done`` marker exists. A rerun
with the same input, model version and params skips complete partitions; anything else is a
:class:`ConflictError` (a new output folder is the answer).
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from trajops.batch.rows import BAD_ROW_COLUMNS
from trajops.errors import ConflictError

JOB_FILE = "job.json"
MANIFEST_FILE = "manifest.json"
BAD_ROWS_FILE = "bad_rows.csv"
_IDENTITY = ("input", "input_digest", "model", "params", "partitions")
"""Keys of ``job.json`` that must match for a rerun to resume."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def temp_path(path: Path) -> Path:
    """A fresh hidden temp path beside ``path`` (for writers that need a file name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


class JobFolder:
    """The files of one batch job under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def part_path(self, name: str) -> Path:
        return self.root / "parts" / f"{name}.parquet"

    def bad_rows_path(self, name: str) -> Path:
        return self.root / "bad_rows" / f"{name}.csv"

    def done_path(self, name: str) -> Path:
        return self.root / "done" / f"{name}.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the job's lock; another process running the same folder gets a ConflictError."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConflictError(
                    f"{self.root} is in use by another running batch job",
                    details=[{"loc": ["output"], "msg": "locked"}],
                ) from None
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def read_job(self) -> dict[str, Any] | None:
        path = self.root / JOB_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def start(self, job: dict[str, Any]) -> bool:
        """Record ``job`` in a fresh folder, or check it matches the recorded one.

        Returns:
            True when resuming an earlier run of the same job.

        Raises:
            ConflictError: the folder holds another job, or files that are not a batch job's.
        """
        previous = self.read_job()
        if previous is None:
            others = [p.name for p in self.root.iterdir() if p.name != ".lock"]
            if others:
                raise ConflictError(
                    f"{self.root} is not empty and holds no {JOB_FILE}; choose a new output folder",
                    details=[{"loc": ["output"], "msg": f"unexpected {sorted(others)[:3]}"}],
                )
            atomic_write_json(self.root / JOB_FILE, job)
            return False
        changed = [k for k in _IDENTITY if previous.get(k) != job.get(k)]
        if changed:
            raise ConflictError(
                f"{self.root} holds another batch job (different {', '.join(changed)}); "
                "rerun with the same input, model version and options, or use a new output folder",
                details=[{"loc": ["output", k], "msg": "differs from job.json"} for k in changed],
            )
        return True

    def completed(self) -> dict[str, dict[str, Any]]:
        """Counts of every complete partition, by name (a marker without its file is ignored)."""
        out: dict[str, dict[str, Any]] = {}
        folder = self.root / "done"
        if not folder.is_dir():
            return out
        for marker in sorted(folder.glob("part-*.json")):
            if self.part_path(marker.stem).is_file():
                out[marker.stem] = json.loads(marker.read_text())
        return out

    def merge_bad_rows(self) -> int:
        """Concatenate the partitions' bad rows into ``bad_rows.csv``; returns the row count."""
        files = sorted((self.root / "bad_rows").glob("part-*.csv"))
        frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]
        merged = (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=list(BAD_ROW_COLUMNS))
        )
        atomic_write_bytes(self.root / BAD_ROWS_FILE, merged.to_csv(index=False).encode())
        return len(merged)

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        path = self.root / MANIFEST_FILE
        atomic_write_json(path, manifest)
        return path
