"""Dataset fingerprints: a content digest plus the counts that identify a dataset in lineage.

The digest is a SHA-256 of a canonical serialisation of a tracks frame: the columns of
``TRACK_COLUMNS`` with fixed dtypes, rows sorted by (scene, agent_id, frame), coordinates
quantised to 1 micrometre. It does not depend on row order, on the file format (txt, CSV,
Parquet) or on how numbers were written ("1.5" and "1.500"), and it changes when any scene,
agent, frame or coordinate does.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trajops.data.readers import TRACK_COLUMNS
from trajops.data.windows import WindowSet
from trajops.errors import DataError

_TRACKS_TAG = b"trajops-tracks-v1\n"
_WINDOWS_TAG = b"trajops-windows-v1\n"
COORD_QUANTUM_M = 1e-6
"""Coordinates are rounded to this many metres before hashing."""
_SCHEMA = {"scene": "str", "frame": "int64", "agent_id": "str", "x": "float64", "y": "float64"}


@dataclass(frozen=True)
class DatasetFingerprint:
    """What identifies a tracks dataset.

    Attributes:
        digest: SHA-256 hex of the canonical serialisation (see the module docstring).
        n_rows: observations.
        n_agents: distinct (scene, agent_id) pairs.
        n_scenes: distinct scenes.
        n_frames: distinct (scene, frame) pairs.
        scenes: scene names, sorted.
        schema: column -> canonical dtype.
    """

    digest: str
    n_rows: int
    n_agents: int
    n_scenes: int
    n_frames: int
    scenes: list[str] = field(default_factory=list)
    schema: dict[str, str] = field(default_factory=dict)

    @property
    def short(self) -> str:
        """The first 12 hex digits of the digest, for display."""
        return self.digest[:12]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (e.g. for MLflow tags and dataset lineage)."""
        out = asdict(self)
        out["scenes"] = list(self.scenes)
        out["schema"] = dict(self.schema)
        return out


def _strings(values: np.ndarray) -> bytes:
    """Length-prefixed UTF-8: unambiguous whatever characters the ids hold."""
    encoded = [str(v).encode("utf-8") for v in values]
    lengths = np.fromiter((len(e) for e in encoded), dtype="<i8", count=len(encoded))
    return lengths.tobytes() + b"".join(encoded)


def _coords(values: np.ndarray) -> bytes:
    quantised = np.round(np.asarray(values, dtype=np.float64) / COORD_QUANTUM_M)
    return (quantised + 0.0).astype("<f8").tobytes()  # + 0.0 turns -0.0 into 0.0


def _canonical(tracks: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in TRACK_COLUMNS if c not in tracks.columns]
    if missing:
        raise DataError(f"cannot fingerprint: missing column(s) {missing}")
    frame = pd.to_numeric(tracks["frame"], errors="coerce")
    if frame.isna().any():
        raise DataError("cannot fingerprint: non-numeric frame ids (validate the tracks first)")
    canon = pd.DataFrame(
        {
            "scene": tracks["scene"].astype(str).to_numpy(),
            "frame": frame.to_numpy(dtype=np.int64),
            "agent_id": tracks["agent_id"].astype(str).to_numpy(),
            "x": tracks["x"].to_numpy(dtype=np.float64),
            "y": tracks["y"].to_numpy(dtype=np.float64),
        }
    )
    # Sort by every column so duplicates (if any) also land in one canonical order.
    return canon.sort_values(list(TRACK_COLUMNS), kind="stable").reset_index(drop=True)


def fingerprint(tracks: pd.DataFrame) -> DatasetFingerprint:
    """Fingerprint a tracks frame.

    Args:
        tracks: a frame with the columns ``scene, frame, agent_id, x, y`` (extra columns are
            ignored).

    Returns:
        The digest and counts; equal for equal content in any row order or file format.

    Raises:
        DataError: a missing column or non-numeric frame ids.
    """
    canon = _canonical(tracks)
    h = hashlib.sha256(_TRACKS_TAG)
    h.update(np.int64(len(canon)).astype("<i8").tobytes())
    h.update(_strings(canon["scene"].to_numpy()))
    h.update(canon["frame"].to_numpy().astype("<i8").tobytes())
    h.update(_strings(canon["agent_id"].to_numpy()))
    h.update(_coords(canon["x"].to_numpy()))
    h.update(_coords(canon["y"].to_numpy()))
    scenes = sorted(canon["scene"].unique().tolist())
    return DatasetFingerprint(
        digest=h.hexdigest(),
        n_rows=len(canon),
        n_agents=int(canon[["scene", "agent_id"]].drop_duplicates().shape[0]),
        n_scenes=len(scenes),
        n_frames=int(canon[["scene", "frame"]].drop_duplicates().shape[0]),
        scenes=scenes,
        schema=dict(_SCHEMA),
    )


def digest_windows(ws: WindowSet) -> str:
    """SHA-256 hex of a window set: positions, neighbours, identities and window config.

    Unlike :func:`fingerprint` this is sensitive to window order (models see windows in order,
    so two orders are two training inputs). NaN neighbour slots hash the same whatever their
    bit pattern.
    """
    h = hashlib.sha256(_WINDOWS_TAG)
    cfg = ws.config
    header = f"{cfg.t_obs},{cfg.t_pred},{cfg.frame_step},{cfg.stride},{len(ws)}\n"
    h.update(header.encode())
    traj = np.ascontiguousarray(ws.traj, dtype="<f4")  # (N, T_obs + T_pred, 2)
    h.update(traj.tobytes())
    nbr = np.asarray(ws.neighbours, dtype="<f4")  # (N, K, T_obs, 2)
    h.update(np.int64(nbr.shape[1]).astype("<i8").tobytes())
    h.update(np.ascontiguousarray(np.where(np.isnan(nbr), np.float32(np.nan), nbr)).tobytes())
    h.update(_strings(np.asarray(ws.scene)))
    h.update(_strings(np.asarray(ws.agent_id)))
    h.update(np.asarray(ws.start_frame, dtype="<i8").tobytes())
    return h.hexdigest()
