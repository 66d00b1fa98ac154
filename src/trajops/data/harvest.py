"""The harvest format: production windows as a tracks dataset with a manifest.

A harvest is a folder with two files:

- ``windows.parquet``: a tracks frame (``scene, frame, agent_id, x, y``) plus ``site`` (the
  pseudonymised scene id the client sent, ``""`` when it sent none), ``t`` (epoch seconds of
  the forecast instant: the last observed position) and ``request_id``. Each *scene* of the
  frame is one served forecast instant (``"<site>/<request_id>"``): every agent the request
  saw has its ``T_obs`` observed positions at frames ``0 .. (T_obs - 1) * FRAME_STEP``, and
  an agent whose realised future arrived also has its ``T_pred`` future positions after them.
  :func:`~trajops.data.windows.make_windows` therefore cuts exactly one window per agent with
  a realised future, with the request's other agents as its neighbours; an agent seen only
  as a neighbour gives no window.
- ``manifest.json``: :data:`FORMAT`, counts, the time range, the filters and the fingerprint.

Agent ids are the service's pseudonyms: a harvest never holds an id a client sent.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trajops.data.fingerprint import fingerprint
from trajops.data.readers import TRACK_COLUMNS, validate_tracks
from trajops.errors import DataError

FORMAT = "trajops-harvest/1"
MANIFEST = "manifest.json"
WINDOWS = "windows.parquet"
EXTRA_COLUMNS = ("site", "t", "request_id")
HARVEST_COLUMNS = (*TRACK_COLUMNS, *EXTRA_COLUMNS)


@dataclass(frozen=True)
class Harvest:
    """A read harvest.

    Attributes:
        tracks: the windows frame (:data:`HARVEST_COLUMNS`), validated, sorted by scene,
            agent and frame.
        manifest: the manifest as written.
        path: the folder it was read from.
    """

    tracks: pd.DataFrame
    manifest: dict[str, Any]
    path: Path

    @property
    def n_windows(self) -> int:
        return int(self.manifest.get("windows", 0))


def scene_name(site: str, request_id: str) -> str:
    """The harvest scene of one forecast instant."""
    return f"{site}/{request_id}"


def is_harvest(path: str | Path) -> bool:
    """Whether ``path`` is a harvest folder (a manifest of :data:`FORMAT`)."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return bool(json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def read_harvest(path: str | Path) -> Harvest:
    """Read a harvest folder.

    Raises:
        DataError: not a harvest, a missing or unreadable file, or windows that do not
            validate (the message names the file).
    """
    path = Path(path)
    if not is_harvest(path):
        raise DataError(
            f"{path}: not a harvest (expected {MANIFEST} with format {FORMAT!r}; "
            "write one with `trajops data harvest`)",
            details=[{"loc": [str(path)], "msg": "not a harvest"}],
        )
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    file = path / WINDOWS
    try:
        df = pd.read_parquet(file)
    except Exception as exc:  # pyarrow raises several unrelated types for a corrupt file
        raise DataError(f"{file}: unreadable Parquet: {exc}") from None
    missing = [c for c in HARVEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{file}: missing column(s) {missing}; expected {list(HARVEST_COLUMNS)}")
    if len(df) == 0:
        return Harvest(tracks=_empty(), manifest=manifest, path=path)
    tracks = validate_tracks(df, source=file)
    times = pd.to_numeric(df["t"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(times).all():
        row = int(np.flatnonzero(~np.isfinite(times))[0])
        raise DataError(
            f"{file}: row {row}: column t is not a finite number: {df['t'].iloc[row]!r}"
        )
    # Key the extra columns the way validate_tracks normalised the keys (str ids, int frames):
    # keyed by the raw dtypes (an int agent id, a float frame) they would not match.
    raw_keys = pd.MultiIndex.from_arrays(
        [
            df["scene"].astype(str).to_numpy(),
            df["agent_id"].astype(str).to_numpy(),
            df["frame"].to_numpy(dtype=np.float64).astype(np.int64),
        ]
    )
    extra = pd.DataFrame(
        {"site": df["site"].to_numpy(), "t": times, "request_id": df["request_id"].to_numpy()},
        index=raw_keys,
    )
    keys = pd.MultiIndex.from_frame(tracks[["scene", "agent_id", "frame"]])
    for col in EXTRA_COLUMNS:
        tracks[col] = extra[col].reindex(keys).to_numpy()
    tracks["site"] = tracks["site"].astype(str)
    tracks["request_id"] = tracks["request_id"].astype(str)
    tracks["t"] = tracks["t"].astype(np.float64)
    return Harvest(tracks=tracks, manifest=manifest, path=path)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scene": pd.Series(dtype=str),
            "frame": pd.Series(dtype=np.int64),
            "agent_id": pd.Series(dtype=str),
            "x": pd.Series(dtype=np.float64),
            "y": pd.Series(dtype=np.float64),
            "site": pd.Series(dtype=str),
            "t": pd.Series(dtype=np.float64),
            "request_id": pd.Series(dtype=str),
        }
    )


def write_harvest(
    tracks: pd.DataFrame, path: str | Path, *, n_windows: int, details: dict[str, Any]
) -> dict[str, Any]:
    """Write ``tracks`` (:data:`HARVEST_COLUMNS`) and its manifest to the folder ``path``,
    all or nothing: both files go to a temporary folder beside ``path`` that replaces it.

    Args:
        tracks: the windows frame.
        n_windows: windows it yields (agents with a realised future).
        details: more manifest fields (filters, sources).

    Returns:
        The manifest written.

    Raises:
        DataError: ``path`` exists and is not a harvest folder (it is never overwritten).
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and (is_harvest(path) or not any(path.iterdir()))):
        raise DataError(
            f"{path}: exists and is not a harvest folder; choose a new path",
            details=[{"loc": ["output"], "msg": "exists"}],
        )
    frame = tracks.loc[:, list(HARVEST_COLUMNS)].reset_index(drop=True)
    times = frame["t"].to_numpy(dtype=np.float64)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "windows": int(n_windows),
        "instants": int(frame["scene"].nunique()),
        "agents": int(frame["agent_id"].nunique()),
        "sites": sorted(str(s) for s in pd.unique(frame["site"])),
        "rows": len(frame),
        "time_range": [float(times.min()), float(times.max())] if len(times) else None,
        "fingerprint": fingerprint(frame).digest if len(frame) else None,
        **details,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        frame.to_parquet(tmp / WINDOWS, index=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        tmp.chmod(0o755)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / path.name)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest
