"""Readers for ETH/UCY text files, the ETH/UCY folder layout, CSV and Parquet.

Every reader returns a validated *tracks* frame or raises :class:`DataError` naming the file,
line, column and reason. A bad file never yields partial output.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from trajops import STEP_S
from trajops.errors import DataError

FRAME_STEP = 10
"""Frame ids between two consecutive 0.4 s steps in the ETH/UCY convention."""
SCENES = ("eth", "hotel", "univ", "zara1", "zara2")
"""The five leave-one-scene-out folds of the ETH/UCY benchmark."""
TRACK_COLUMNS = ("scene", "frame", "agent_id", "x", "y")
SPLITS = ("train", "val", "test")
TEXT_COLUMNS = ("frame", "agent", "x", "y")

Split = Literal["train", "val", "test"]


def _err(
    path: Path | str, reason: str, *, line: int | None = None, column: str | None = None
) -> DataError:
    where = str(path)
    if line is not None:
        where += f", line {line}"
    if column is not None:
        where += f", column '{column}'"
    loc: list[str | int] = [str(path)]
    if line is not None:
        loc.append(line)
    if column is not None:
        loc.append(column)
    return DataError(f"{where}: {reason}", details=[{"loc": loc, "msg": reason}])


def _parse_number(token: str, *, path: Path, line: int, column: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise _err(path, f"not a number: {token!r}", line=line, column=column) from None
    if not math.isfinite(value):
        raise _err(path, f"not a finite number: {token!r}", line=line, column=column)
    return value


def read_eth_ucy_file(path: str | Path, *, scene: str | None = None) -> pd.DataFrame:
    """Read one ETH/UCY text file (``frame agent x y``, tab or space separated).

    Args:
        path: the file.
        scene: scene name for the ``scene`` column; the file stem by default.

    Returns:
        A validated tracks frame.

    Raises:
        DataError: a missing file, a malformed line, NaN/inf, a duplicate (frame, agent) or an
            irregular frame step; the message names file, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise _err(path, "file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _err(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    frames: list[int] = []
    agents: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    lines: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens or raw.lstrip().startswith("#"):
            continue
        if len(tokens) != 4:
            raise _err(
                path, f"expected 4 fields (frame agent x y), found {len(tokens)}", line=number
            )
        values = [
            _parse_number(tok, path=path, line=number, column=col)
            for tok, col in zip(tokens, TEXT_COLUMNS, strict=True)
        ]
        for col, value in zip(("frame", "agent"), values[:2], strict=True):
            if value != int(value):
                raise _err(
                    path,
                    f"{col} id must be an integer, got {tokens[TEXT_COLUMNS.index(col)]!r}",
                    line=number,
                    column=col,
                )
        frames.append(int(values[0]))
        agents.append(str(int(values[1])))
        xs.append(values[2])
        ys.append(values[3])
        lines.append(number)
    if not frames:
        raise _err(path, "no observations in file")
    df = pd.DataFrame(
        {
            "scene": scene or path.stem,
            "frame": np.asarray(frames, dtype=np.int64),
            "agent_id": agents,
            "x": np.asarray(xs, dtype=np.float64),
            "y": np.asarray(ys, dtype=np.float64),
        }
    )
    return validate_tracks(df, source=path, line_numbers=np.asarray(lines))


def validate_tracks(
    df: pd.DataFrame,
    *,
    source: str | Path = "<frame>",
    line_numbers: np.ndarray | None = None,
    frame_step: int = FRAME_STEP,
) -> pd.DataFrame:
    """Check a tracks frame and return it normalised (dtypes, sorted by scene, agent, frame).

    Args:
        df: frame with at least the columns of ``TRACK_COLUMNS``.
        source: name used in error messages.
        line_numbers: per-row line numbers in ``source`` (1-based) for error messages;
            row index + 2 (a header line) when omitted.
        frame_step: expected distance between frame ids.

    Raises:
        DataError: naming the first offending line and column.
    """
    missing = [c for c in TRACK_COLUMNS if c not in df.columns]
    if missing:
        raise _err(source, f"missing column(s) {missing}; expected {list(TRACK_COLUMNS)}")
    lines = line_numbers if line_numbers is not None else np.arange(len(df)) + 2
    if len(df) == 0:
        raise _err(source, "no observations")
    for col in ("frame", "x", "y"):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _err(
                source, f"not a finite number: {df[col].iloc[i]!r}", line=int(lines[i]), column=col
            )
    frame_f = df["frame"].to_numpy(dtype=np.float64)
    not_int = frame_f != np.round(frame_f)
    if not_int.any():
        i = int(np.flatnonzero(not_int)[0])
        raise _err(
            source,
            f"frame id must be an integer, got {frame_f[i]!r}",
            line=int(lines[i]),
            column="frame",
        )
    agent = df["agent_id"]
    if agent.isna().any():
        i = int(np.flatnonzero(agent.isna().to_numpy())[0])
        raise _err(source, "empty agent id", line=int(lines[i]), column="agent_id")
    out = pd.DataFrame(
        {
            "scene": df["scene"].astype(str).to_numpy(),
            "frame": frame_f.astype(np.int64),
            "agent_id": agent.astype(str).to_numpy(),
            "x": df["x"].to_numpy(dtype=np.float64),
            "y": df["y"].to_numpy(dtype=np.float64),
        }
    )
    dup = out.duplicated(subset=["scene", "frame", "agent_id"], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise _err(
            source,
            f"duplicate observation of agent {out['agent_id'].iloc[i]!r} at frame {out['frame'].iloc[i]}",
            line=int(lines[i]),
            column="agent_id",
        )
    for scene, idx in out.groupby("scene", sort=False).indices.items():
        frames = out["frame"].to_numpy()[idx]
        offset = (frames - frames.min()) % frame_step
        if offset.any():
            i = int(idx[np.flatnonzero(offset)[0]])
            raise _err(
                source,
                f"irregular frame step in scene {scene!r}: frame {out['frame'].iloc[i]} is not a "
                f"multiple of {frame_step} after the first frame {frames.min()}",
                line=int(lines[i]),
                column="frame",
            )
    return out.sort_values(["scene", "agent_id", "frame"], kind="stable").reset_index(drop=True)


def _frames_from_timestamps(
    df: pd.DataFrame, *, source: Path, step_s: float, tolerance: float = 0.05
) -> pd.DataFrame:
    ts = pd.to_numeric(df["timestamp"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(ts)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _err(
            source,
            f"not a finite number: {df['timestamp'].iloc[i]!r}",
            line=i + 2,
            column="timestamp",
        )
    t0 = pd.Series(ts).groupby(df["scene"].astype(str).to_numpy()).transform("min").to_numpy()
    steps = (ts - t0) / step_s
    off = np.abs(steps - np.round(steps))
    if (off > tolerance).any():
        i = int(np.flatnonzero(off > tolerance)[0])
        raise _err(
            source,
            f"irregular time step: timestamp {ts[i]} is not a multiple of {step_s} s after the scene start",
            line=i + 2,
            column="timestamp",
        )
    out = df.drop(columns=["timestamp"]).copy()
    out["frame"] = np.round(steps).astype(np.int64) * FRAME_STEP
    return out


def read_tracks(
    path: str | Path, *, scene: str | None = None, step_s: float = STEP_S
) -> pd.DataFrame:
    """Read tracks from an ETH/UCY ``.txt``, a ``.csv`` or a ``.parquet`` file, or a folder of them.

    CSV and Parquet need the columns ``scene, frame, agent_id, x, y`` (or ``timestamp`` in
    seconds instead of ``frame``). A folder is read file by file (sorted), each text file its own
    scene, and the whole read fails if any file fails.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.suffix.lower() in {".txt", ".csv", ".parquet"}
        )
        if not files:
            raise _err(path, "folder holds no .txt, .csv or .parquet files")
        frames = [read_tracks(f, step_s=step_s) for f in files]
        return validate_tracks(pd.concat(frames, ignore_index=True), source=path)
    if not path.exists():
        raise _err(path, "file not found")
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return read_eth_ucy_file(path, scene=scene)
    if suffix == ".csv":
        try:
            df = pd.read_csv(path, dtype={"agent_id": str, "scene": str})
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise _err(path, f"unreadable CSV: {exc}") from None
    elif suffix == ".parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
            raise _err(path, f"unreadable Parquet: {exc}") from None
    else:
        raise _err(path, f"unsupported file type {suffix!r}; expected .txt, .csv or .parquet")
    if "scene" not in df.columns:
        df["scene"] = scene or path.stem
    if "frame" not in df.columns and "timestamp" in df.columns:
        df = _frames_from_timestamps(df, source=path, step_s=step_s)
    return validate_tracks(df, source=path)


def read_eth_ucy_split(root: str | Path, fold: str, split: Split) -> pd.DataFrame:
    """Read one split of one leave-one-scene-out fold: ``<root>/<fold>/<split>/*.txt``.

    Each file becomes its own ``scene`` (the file stem): windows never span two files.
    """
    root = Path(root)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {SPLITS}")
    folder = root / fold / split
    if not folder.is_dir():
        raise _err(folder, f"not an ETH/UCY layout folder (expected <root>/{fold}/{split}/*.txt)")
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise _err(folder, "no .txt files")
    return pd.concat([read_eth_ucy_file(f) for f in files], ignore_index=True)


def list_folds(root: str | Path) -> list[str]:
    """Folds present under an ETH/UCY root, in the canonical order."""
    root = Path(root)
    return [s for s in SCENES if (root / s / "test").is_dir()]


def write_tracks(tracks: pd.DataFrame, path: str | Path) -> Path:
    """Write a tracks frame to ``.csv`` or ``.parquet`` atomically (temp file + rename).

    A failed write leaves nothing at ``path`` (nor a stray temp file); an existing file is
    replaced only by a complete new one. Parent folders are created.

    Raises:
        DataError: an unsupported suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise _err(path, f"unsupported output type {suffix!r}; expected .csv or .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = tracks.loc[:, list(TRACK_COLUMNS)]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        tmp.chmod(0o644)  # mkstemp makes the file private; data files are shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def concat_tracks(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(list(frames), ignore_index=True)
