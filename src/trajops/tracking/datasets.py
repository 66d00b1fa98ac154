"""Training data as train / val / test tracks: from a file or folder, an ETH/UCY fold, or simulated.

Splits never share a scene when there are enough scenes (windows of one scene are strongly
correlated, so a split by window would leak); with fewer than three scenes each scene is cut in
time instead (first 70 % of its frames train, next 15 % val, last 15 % test).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trajops.data.readers import SCENES, read_eth_ucy_split, read_tracks
from trajops.data.simulator import SimulationConfig, simulate
from trajops.errors import DataError, ValidationError

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
"""Train, val and test shares when splitting by scene or by time."""


@dataclass(frozen=True)
class DataSplits:
    """Tracks frames of the three splits and where they came from.

    Attributes:
        name: dataset name for lineage (``simulated``, ``eth_ucy-<fold>``, the file stem).
        source: where the data came from (a path, or ``simulator:<config>``).
        train, val, test: tracks frames (``scene, frame, agent_id, x, y``).
        fold: the held-out scene of an ETH/UCY fold.
    """

    name: str
    source: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    fold: str | None = None

    def items(self) -> list[tuple[str, pd.DataFrame]]:
        """``[("train", df), ("val", df), ("test", df)]``."""
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def split_by_scene(tracks: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, ...]:
    """Split whole scenes into train / val / test (shuffled by ``seed``; at least one each)."""
    scenes = np.asarray(pd.unique(tracks["scene"]), dtype=object)
    if len(scenes) < 3:
        raise DataError(f"splitting by scene needs at least 3 scenes, found {len(scenes)}")
    order = np.random.default_rng(seed).permutation(len(scenes))
    n_val = max(1, round(len(scenes) * SPLIT_FRACTIONS[1]))
    n_test = max(1, round(len(scenes) * SPLIT_FRACTIONS[2]))
    n_train = len(scenes) - n_val - n_test
    parts = np.split(scenes[order], [n_train, n_train + n_val])
    return tuple(tracks[tracks["scene"].isin(set(p))].reset_index(drop=True) for p in parts)


def split_by_time(tracks: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """Cut every scene in time: its first 70 % of frames train, next 15 % val, rest test."""
    lo = tracks.groupby("scene")["frame"].transform("min")
    hi = tracks.groupby("scene")["frame"].transform("max")
    pos = (tracks["frame"] - lo) / (hi - lo).clip(lower=1)
    a, b = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]
    masks = (pos < a, (pos >= a) & (pos < b), pos >= b)
    return tuple(tracks[m].reset_index(drop=True) for m in masks)


def _split(tracks: pd.DataFrame, *, seed: int) -> tuple[pd.DataFrame, ...]:
    if tracks["scene"].nunique() >= 3:
        return split_by_scene(tracks, seed=seed)
    return split_by_time(tracks)


def path_splits(path: Path, *, seed: int = 0) -> DataSplits:
    """Splits of a tracks file or folder (``.txt`` / ``.csv`` / ``.parquet``)."""
    tracks = read_tracks(path)
    train, val, test = _split(tracks, seed=seed)
    return DataSplits(
        name=path.stem or "tracks", source=str(path.resolve()), train=train, val=val, test=test
    )


def is_eth_ucy_root(path: Path) -> bool:
    """Whether ``path`` has the ETH/UCY fold layout (``<scene>/{train,val,test}``)."""
    return path.is_dir() and any((path / s / "test").is_dir() for s in SCENES)


def eth_ucy_splits(root: Path, fold: str) -> DataSplits:
    """The leave-one-scene-out fold ``fold``: train/val on the other scenes, test on ``fold``."""
    if fold not in SCENES:
        raise ValidationError(
            f"unknown fold {fold!r}; expected one of {', '.join(SCENES)}",
            details=[{"loc": ["fold"], "msg": "unknown fold"}],
        )
    return DataSplits(
        name=f"eth_ucy-{fold}",
        source=str((root / fold).resolve()),
        train=read_eth_ucy_split(root, fold, "train"),
        val=read_eth_ucy_split(root, fold, "val"),
        test=read_eth_ucy_split(root, fold, "test"),
        fold=fold,
    )


def eth_ucy_all_sites(root: Path) -> DataSplits:
    """Every ETH/UCY recording once, each cut in time: its first 70 % of frames train, the next
    15 % validation, the last 15 % test (:func:`split_by_time`), so that every site is in every
    split and validation is later in time than training.

    A fold's ``test`` folder holds its recordings whole; recordings that are never a test
    scene (``crowds_zara03``, ``uni_examples``) are the union of their ``train`` and ``val``
    files (frame numbers are the recording's own), read from the first fold that has them.
    """
    from trajops.data.readers import list_folds

    whole: dict[str, pd.DataFrame] = {}
    folds = list_folds(root)
    if not folds:
        raise ValidationError(f"{root} is not an ETH/UCY root")
    for fold in folds:
        for scene, part in read_eth_ucy_split(root, fold, "test").groupby("scene", sort=False):
            whole[str(scene)] = part
    for fold in folds:
        pieces = [read_eth_ucy_split(root, fold, split) for split in ("train", "val")]
        both = pd.concat(pieces, ignore_index=True)
        both["scene"] = both["scene"].str.replace(r"_(train|val)$", "", regex=True)
        for scene, part in both.groupby("scene", sort=False):
            if str(scene) not in whole:
                whole[str(scene)] = part.drop_duplicates(["frame", "agent_id"])
    tracks = pd.concat(whole.values(), ignore_index=True).sort_values(
        ["scene", "frame", "agent_id"], kind="stable", ignore_index=True
    )
    train, val, test = split_by_time(tracks)
    return DataSplits(
        name="eth_ucy-all", source=str(root.resolve()), train=train, val=val, test=test
    )


def simulated_splits(config: SimulationConfig) -> DataSplits:
    """Simulated scenes split by scene (``config.n_scenes`` must be at least 3)."""
    if config.n_scenes < 3:
        raise ValidationError(
            f"--simulate needs at least 3 scenes to split by scene, got {config.n_scenes}"
        )
    tracks = simulate(config)
    train, val, test = split_by_scene(tracks, seed=config.seed)
    source = (
        f"simulator:n_scenes={config.n_scenes},n_agents={config.n_agents},"
        f"n_steps={config.n_steps},seed={config.seed}"
    )
    return DataSplits(name="simulated", source=source, train=train, val=val, test=test)
