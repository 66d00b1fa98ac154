"""Trajectory data: readers, validation, windowing, features, fingerprints, simulator.

A *tracks* frame is a pandas DataFrame with columns ``scene`` (str), ``frame`` (int64),
``agent_id`` (str), ``x``, ``y`` (float64, metres). Frame ids step by ``FRAME_STEP`` (10) per
0.4 s. Agent ids are unique within a scene.
"""

from trajops.data.features import FEATURE_NAMES, kinematic_features
from trajops.data.fingerprint import DatasetFingerprint, digest_windows, fingerprint
from trajops.data.readers import (
    FRAME_STEP,
    SCENES,
    TRACK_COLUMNS,
    read_eth_ucy_file,
    read_eth_ucy_split,
    read_tracks,
    validate_tracks,
    write_tracks,
)
from trajops.data.simulator import PRESETS, SimulationConfig, simulate
from trajops.data.windows import WindowConfig, WindowSet, make_windows, neighbours_from_batch

__all__ = [
    "FEATURE_NAMES",
    "FRAME_STEP",
    "PRESETS",
    "SCENES",
    "TRACK_COLUMNS",
    "DatasetFingerprint",
    "SimulationConfig",
    "WindowConfig",
    "WindowSet",
    "digest_windows",
    "fingerprint",
    "kinematic_features",
    "make_windows",
    "neighbours_from_batch",
    "read_eth_ucy_file",
    "read_eth_ucy_split",
    "read_tracks",
    "simulate",
    "validate_tracks",
    "write_tracks",
]
