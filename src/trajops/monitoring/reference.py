"""The reference profile logged with each model: served-style features plus their calibration."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from trajops.data.features import FEATURE_NAMES
from trajops.errors import NotFoundError
from trajops.monitoring._calibration import Calibration, calibrate
from trajops.monitoring._served import served_features

if TYPE_CHECKING:
    from trajops.registry.adapter import Registry

PROFILE_PATH = "reference/features.parquet"
CALIBRATION_PATH = "reference/calibration.json"


@dataclass(frozen=True)
class Reference:
    profile: pd.DataFrame
    """Features of the training tracks as the API would see them (columns ``scene``, features)."""
    calibration: Calibration


def build_reference(tracks: pd.DataFrame, *, window_size: int, seed: int = 0) -> Reference:
    """Features of ``tracks`` served the way the API serves them, and their calibrated thresholds.

    A profile built on training windows drifts from served inputs with no change in the world
    (different neighbours, long-staying agents over-represented); see docs/monitoring.md.
    """
    profile = served_features(tracks)
    # ETH/UCY file stems carry the split (students001_train): group by the recording.
    scenes = profile["scene"].astype(str).str.replace(r"_(train|val|test)$", "", regex=True)
    profile = profile.assign(scene=scenes)[["scene", *FEATURE_NAMES]].reset_index(drop=True)
    cal = calibrate(
        profile[list(FEATURE_NAMES)],
        window_size=min(window_size, max(10, len(profile) // 2)),
        groups=profile["scene"].to_numpy(),
        seed=seed,
    )
    return Reference(profile, cal)


def write_reference(reference: Reference, folder: Path) -> list[Path]:
    """Write the profile (Parquet) and calibration (JSON) under ``folder``."""
    profile_path = folder / PROFILE_PATH
    profile_path.parent.mkdir(parents=True, exist_ok=True)
    reference.profile.to_parquet(profile_path, index=False)
    cal_path = folder / CALIBRATION_PATH
    cal_path.write_text(reference.calibration.to_json())
    return [profile_path, cal_path]


def read_reference(folder: Path) -> Reference:
    """Read what :func:`write_reference` wrote."""
    profile_path, cal_path = folder / PROFILE_PATH, folder / CALIBRATION_PATH
    if not profile_path.exists() or not cal_path.exists():
        raise NotFoundError(f"no reference profile under {folder}")
    return Reference(pd.read_parquet(profile_path), Calibration.from_json(cal_path.read_text()))


def load_reference(registry: Registry, ref: str | int) -> Reference:
    """The reference of a registered version (``champion``, ``3``...), from its training run.

    Raises:
        ModelNotFoundError: unknown version, or a run logged without a reference profile.
    """
    version = registry.resolve(ref)
    with tempfile.TemporaryDirectory(prefix="trajops-ref-") as tmp:
        profile = registry.download_run_artifact(version, PROFILE_PATH, Path(tmp) / "p")
        cal = registry.download_run_artifact(version, CALIBRATION_PATH, Path(tmp) / "c")
        return Reference(pd.read_parquet(profile), Calibration.from_json(cal.read_text()))
