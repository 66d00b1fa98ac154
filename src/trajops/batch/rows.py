"""Tolerant row validation for batch jobs: bad rows are set aside and reported, not fatal.

The readers of :mod:`trajops.data.readers` are strict: one bad row fails the whole file, which is
right for training data. A batch job scoring millions of rows should not die on one typo, nor
drop it silently, so a batch partition is validated row by row with the same rules:

========================  =============================================================
rule                      reason written to ``bad_rows.csv``
========================  =============================================================
wrong field count (txt)   ``expected 4 fields (frame agent x y), found N``
agent id not an integer   ``agent id must be an integer, got '<value>'`` (txt)
x, y, frame/timestamp     ``not a finite number: '<value>'``
frame not an integer      ``frame id must be an integer, got <value>``
empty agent id            ``empty agent id``
duplicate observation     ``duplicate observation of agent '<id>' at frame <f>`` (first kept)
irregular frame step      ``irregular frame step: frame <f> is not a multiple of 10 after ...``
irregular time step       ``irregular time step: timestamp <t> is not a multiple of 0.4 s ...``
========================  =============================================================

A bad row is excluded; the windows that would have used it are not produced (windows never
bridge gaps), which the manifest shows as fewer windows for that agent. Structural problems
(missing columns, an unreadable file) are not row problems: they fail the job at planning time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trajops import STEP_S
from trajops.batch.plan import Partition
from trajops.data.readers import FRAME_STEP, validate_tracks
from trajops.errors import DataError

BAD_ROW_COLUMNS = ("file", "line", "column", "value", "reason")
"""Columns of the bad-rows report; ``line`` is the 1-based line (text, CSV) or row (Parquet)."""
TIME_TOLERANCE = 0.05
"""Largest deviation from the 0.4 s grid, in steps, that a timestamp may have."""


@dataclass
class PartitionRows:
    """What one partition's input holds once validated.

    Attributes:
        tracks: the valid rows as a tracks frame (sorted by scene, agent, frame).
        bad: one row per excluded input row, columns :data:`BAD_ROW_COLUMNS`.
        rows_read: input rows seen (valid + bad).
    """

    tracks: pd.DataFrame
    bad: pd.DataFrame
    rows_read: int


class _Rejects:
    """Collects the first reason each row is rejected for."""

    def __init__(self, source: str, lines: np.ndarray) -> None:
        self.source = source
        self.lines = lines
        self.bad = np.zeros(len(lines), bool)
        self.records: list[tuple[str, int, str, str, str]] = []

    def add(
        self, mask: np.ndarray, *, column: str, values: pd.Series, reason: Callable[[int], str]
    ) -> None:
        """Reject the rows of ``mask`` not rejected yet; ``reason(i)`` explains row ``i``."""
        new = mask & ~self.bad
        for i in np.flatnonzero(new):
            self.records.append(
                (self.source, int(self.lines[i]), column, str(values.iloc[i]), reason(int(i)))
            )
        self.bad |= new

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.records, columns=list(BAD_ROW_COLUMNS))
        return df.sort_values("line", kind="stable").reset_index(drop=True)


def _numeric(df: pd.DataFrame, col: str, rejects: _Rejects) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    rejects.add(
        ~np.isfinite(values),
        column=col,
        values=df[col],
        reason=lambda i: f"not a finite number: {df[col].iloc[i]!r}",
    )
    return values


def _frames_from_time(ts: np.ndarray, scenes: np.ndarray, rejects: _Rejects) -> np.ndarray:
    ok = ~rejects.bad
    t0 = pd.Series(np.where(ok, ts, np.inf)).groupby(scenes).transform("min").to_numpy()
    steps = (ts - t0) / STEP_S
    off = ok & (np.abs(steps - np.round(steps)) > TIME_TOLERANCE)
    rejects.add(
        off,
        column="timestamp",
        values=pd.Series(ts),
        reason=lambda i: (
            f"irregular time step: timestamp {ts[i]} is not a multiple of "
            f"{STEP_S} s after the scene start"
        ),
    )
    return np.where(ok & ~off, np.round(steps), 0.0) * FRAME_STEP


def split_bad_rows(
    df: pd.DataFrame, *, source: str, lines: np.ndarray, scene: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Separate the rows of a raw frame that break a tracks rule (see the module docstring).

    Args:
        df: raw rows with ``agent_id, x, y`` and ``frame`` or ``timestamp`` (any dtypes).
        source: file name for the report.
        lines: ``(len(df),)`` 1-based line or row numbers in ``source``.
        scene: scene of rows without a ``scene`` column.

    Returns:
        ``(tracks, bad)``: the valid rows as a validated tracks frame, and the report.
    """
    rejects = _Rejects(source, lines)
    scenes = df["scene"].astype(str) if "scene" in df.columns else pd.Series(scene, df.index)
    scenes_arr = scenes.to_numpy()
    x = _numeric(df, "x", rejects)
    y = _numeric(df, "y", rejects)
    if "frame" in df.columns:
        frame = _numeric(df, "frame", rejects)
        not_int = ~rejects.bad & (frame != np.round(frame))
        rejects.add(
            not_int,
            column="frame",
            values=df["frame"],
            reason=lambda i: f"frame id must be an integer, got {frame[i]!r}",
        )
    else:
        ts = _numeric(df, "timestamp", rejects)
        frame = _frames_from_time(ts, scenes_arr, rejects)
    agent = df["agent_id"]
    empty = agent.isna().to_numpy() | (agent.astype(str).str.strip() == "").to_numpy()
    rejects.add(empty, column="agent_id", values=agent, reason=lambda i: "empty agent id")
    frame_i = np.where(rejects.bad, 0, frame).astype(np.int64)
    keys = pd.DataFrame({"s": scenes_arr, "f": frame_i, "a": agent.astype(str).to_numpy()})
    # Only valid rows take part: a bad row must not shadow a later good one.
    ok_idx = np.flatnonzero(~rejects.bad)
    dup = np.zeros(len(df), bool)
    dup[ok_idx] = keys.iloc[ok_idx].duplicated(keep="first").to_numpy()
    rejects.add(
        dup,
        column="agent_id",
        values=agent,
        reason=lambda i: (
            f"duplicate observation of agent {keys['a'].iloc[i]!r} at frame {frame_i[i]}"
        ),
    )
    ok = ~rejects.bad
    first = (
        pd.Series(np.where(ok, frame_i, np.iinfo(np.int64).max))
        .groupby(scenes_arr)
        .transform("min")
    )
    off = ok & ((frame_i - first.to_numpy()) % FRAME_STEP != 0)
    rejects.add(
        off,
        column="frame",
        values=pd.Series(frame_i),
        reason=lambda i: (
            f"irregular frame step: frame {frame_i[i]} is not a multiple of "
            f"{FRAME_STEP} after the scene's first frame {first.iloc[i]}"
        ),
    )
    keep = ~rejects.bad
    raw = pd.DataFrame(
        {
            "scene": scenes_arr[keep],
            "frame": frame_i[keep],
            "agent_id": agent.astype(str).to_numpy()[keep],
            "x": x[keep],
            "y": y[keep],
        }
    )
    if len(raw) == 0:
        return raw, rejects.frame()
    return validate_tracks(raw, source=source, line_numbers=lines[keep]), rejects.frame()


def _read_text(path: Path) -> tuple[pd.DataFrame, np.ndarray, list[tuple[str, int, str, str, str]]]:
    """ETH/UCY text rows as strings; lines with the wrong field count are rejected here."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[str, int, str, str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens or raw.lstrip().startswith("#"):
            continue
        if len(tokens) != 4:
            reason = f"expected 4 fields (frame agent x y), found {len(tokens)}"
            bad.append((str(path), number, "", raw.strip(), reason))
            continue
        # ETH/UCY agent ids are written as floats ("1.0"); like the strict reader, keep the
        # integer and refuse anything else.
        try:
            agent = float(tokens[1])
        except ValueError:
            agent = math.nan
        if not math.isfinite(agent) or agent != int(agent):
            reason = f"agent id must be an integer, got {tokens[1]!r}"
            bad.append((str(path), number, "agent_id", tokens[1], reason))
            continue
        rows.append([tokens[0], str(int(agent)), tokens[2], tokens[3]])
        lines.append(number)
    df = pd.DataFrame(rows, columns=["frame", "agent_id", "x", "y"])
    return df, np.asarray(lines, dtype=np.int64), bad


def read_partition(part: Partition) -> PartitionRows:
    """Read one partition's rows and validate them row by row.

    Raises:
        DataError: the file cannot be read at all (row problems are reported, not raised).
    """
    path = Path(part.path)
    extra: list[tuple[str, int, str, str, str]] = []
    try:
        if part.kind == "parquet":
            df = pq.ParquetFile(path).read_row_groups(list(part.row_groups)).to_pandas()
            lines = np.arange(len(df), dtype=np.int64) + part.first_row
        elif part.kind == "csv":
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            lines = np.arange(len(df), dtype=np.int64) + 2  # line 1 is the header
        else:
            df, lines, extra = _read_text(path)
    except DataError:
        raise
    except Exception as exc:  # the file changed or broke after planning
        raise DataError(f"{path}: unreadable {part.kind}: {exc}") from None
    if "agent_id" in df.columns and part.kind == "csv":
        df["agent_id"] = df["agent_id"].replace("", np.nan)
    tracks, bad = split_bad_rows(df, source=str(path), lines=lines, scene=part.scene)
    if extra:
        bad = pd.concat([pd.DataFrame(extra, columns=list(BAD_ROW_COLUMNS)), bad])
        bad = bad.sort_values("line", kind="stable").reset_index(drop=True)
    return PartitionRows(tracks=tracks, bad=bad, rows_read=len(df) + len(extra))
