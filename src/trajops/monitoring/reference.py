"""The reference profile logged with each model: served-style features plus their calibration."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from trajops.data.features import FEATURE_NAMES, NEIGHBOUR_FEATURES, missing_neighbours
from trajops.errors import NotFoundError
from trajops.monitoring._calibration import (
    Calibration,
    calibrate,
    null_scores,
    thresholds_from_null,
)
from trajops.monitoring._scores import get_method
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


def upgrade_reference(reference: Reference) -> Reference:
    """A reference whose profile wrote "no neighbour" as a distance, made current.

    Profiles logged before the neighbour features could be missing hold
    ``min_neighbour_dist = NO_NEIGHBOUR_DIST`` for agents without a neighbour; served inputs now
    have NaN there. Those rows become NaN (:func:`trajops.data.features.missing_neighbours`) and
    the neighbour features' thresholds are calibrated again on the converted columns, with the
    calibration's own window size, null draws, seed and quantile level (the other thresholds
    stay as they were). A current reference is returned as it is.
    """
    profile = missing_neighbours(reference.profile)
    cal = reference.calibration
    names = [c for c in NEIGHBOUR_FEATURES if c in cal.thresholds]
    if profile is reference.profile or not names:
        return Reference(profile, cal)
    rng = np.random.default_rng(cal.seed)
    null = null_scores(
        profile[names].to_numpy(dtype=np.float64),
        window_size=cal.window_size,
        n_boot=cal.n_boot,
        method=get_method(cal.method),
        groups=profile["scene"].to_numpy() if "scene" in profile.columns else None,
        holdout_share=cal.holdout_share,
        n_blocks=cal.n_blocks,
        rng=rng,
    )  # (B, len(names))
    null = np.nan_to_num(null, nan=0.0)  # as calibrate(): no value in a null window, no drift
    thresholds, _ = thresholds_from_null(
        null, alarm_rate=cal.alarm_rate, quantile=cal.quantile, min_drifted=1, rng=rng
    )
    quantiles = {
        c: {
            "q50": float(np.quantile(null[:, j], 0.5)),
            "q95": float(np.quantile(null[:, j], 0.95)),
            "max": float(null[:, j].max()),
        }
        for j, c in enumerate(names)
    }
    upgraded = replace(
        cal,
        thresholds={
            **cal.thresholds,
            **{c: float(t) for c, t in zip(names, thresholds, strict=True)},
        },
        null_quantiles={**cal.null_quantiles, **quantiles},
    )
    return Reference(profile, upgraded)


def read_reference(folder: Path) -> Reference:
    """Read what :func:`write_reference` wrote (an older profile through
    :func:`upgrade_reference`)."""
    profile_path, cal_path = folder / PROFILE_PATH, folder / CALIBRATION_PATH
    if not profile_path.exists() or not cal_path.exists():
        raise NotFoundError(f"no reference profile under {folder}")
    return upgrade_reference(
        Reference(pd.read_parquet(profile_path), Calibration.from_json(cal_path.read_text()))
    )


def load_reference(registry: Registry, ref: str | int) -> Reference:
    """The reference of a registered version (``champion``, ``3``...), from its training run
    (an older profile through :func:`upgrade_reference`).

    Raises:
        ModelNotFoundError: unknown version, or a run logged without a reference profile.
    """
    version = registry.resolve(ref)
    with tempfile.TemporaryDirectory(prefix="trajops-ref-") as tmp:
        profile = registry.download_run_artifact(version, PROFILE_PATH, Path(tmp) / "p")
        cal = registry.download_run_artifact(version, CALIBRATION_PATH, Path(tmp) / "c")
        return upgrade_reference(
            Reference(pd.read_parquet(profile), Calibration.from_json(cal.read_text()))
        )
