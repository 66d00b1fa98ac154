"""Training data as train / val / test tracks: from a file or folder, an ETH/UCY fold, a
production harvest, or simulated.

Splits never share a scene when there are enough scenes (windows of one scene are strongly
correlated, so a split by window would leak); with fewer than three scenes each scene is cut in
time instead (first 70 % of its frames train, next 15 % val, last 15 % test). A harvest is split
in time with an embargo, or by agent when it is too short (:func:`harvest_splits`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from trajops import STEP_S, T_OBS, T_PRED
from trajops.data.fingerprint import fingerprint
from trajops.data.harvest import is_harvest, read_harvest
from trajops.data.readers import FRAME_STEP, SCENES, TRACK_COLUMNS, read_eth_ucy_split, read_tracks
from trajops.data.simulator import SimulationConfig, simulate
from trajops.errors import DataError, ValidationError

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
"""Train, val and test shares when splitting by scene or by time."""
MIN_SPLIT_WINDOWS = 50
"""Fewest windows each split of a harvest must hold (fewer scores a model too noisily)."""
EMBARGO_S = (T_OBS + T_PRED) * STEP_S
"""Seconds a harvest's time split leaves between two splits: one window's span, so no observed
or future position is on both sides of a boundary."""
BASE_PREFIX = "base:"
"""Prefix of the scenes that ``--base-data`` adds to a harvest's splits."""
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class DataSplits:
    """Tracks frames of the three splits and where they came from.

    Attributes:
        name: dataset name for lineage (``simulated``, ``eth_ucy-<fold>``, the file stem).
        source: where the data came from (a path, or ``simulator:<config>``).
        train, val, test: tracks frames (``scene, frame, agent_id, x, y``).
        fold: the held-out scene of an ETH/UCY fold.
        lineage: more provenance, logged as run params and tags as is (a harvest's
            fingerprint, time range, split method, windows per split, base data).
    """

    name: str
    source: str
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    fold: str | None = None
    lineage: dict[str, str] = field(default_factory=dict)

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


def path_splits(
    path: Path,
    *,
    seed: int = 0,
    base: DataSplits | None = None,
    min_windows: int = MIN_SPLIT_WINDOWS,
) -> DataSplits:
    """Splits of a harvest folder (:func:`harvest_splits`, with ``base``) or of a tracks file
    or folder (``.txt`` / ``.csv`` / ``.parquet``).

    Raises:
        ValidationError: ``base`` with a path that is not a harvest.
    """
    if is_harvest(path):
        return harvest_splits(path, seed=seed, base=base, min_windows=min_windows)
    if base is not None:
        raise ValidationError(
            f"{path} is not a harvest: base data is added to a harvest's train and val only",
            details=[{"loc": ["base_data"], "msg": "needs a harvest"}],
        )
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


def harvest_splits(
    path: Path,
    *,
    seed: int = 0,
    base: DataSplits | None = None,
    min_windows: int = MIN_SPLIT_WINDOWS,
) -> DataSplits:
    """Splits of the harvest at ``path``; ``base``'s train and val are added to its own.

    A window (an agent with a realised future at one forecast instant) is counted for the
    agent whose future it holds. In time when the harvest is long enough: instants ordered by
    ``t``, the earliest 70 % of windows train, the next 15 % val, the last 15 % test, and every
    instant less than :data:`EMBARGO_S` before the next split's first instant is dropped. Long
    enough means every split keeps at least ``min_windows`` windows. Otherwise by
    agent: agents ordered by a hash of ``(seed, agent_id)`` take 70 / 15 / 15 % of the windows,
    so one agent's windows are never in two splits; a split keeps every instant holding one of
    its windows, with the other agents' observed positions (neighbours) but not their futures.
    Base scenes are renamed ``base:<scene>``; base test data is ignored (test is production's).

    Raises:
        DataError: not a readable harvest, or one too small for ``min_windows``
            windows in val and test (the message gives the counts).
    """
    harvest = read_harvest(path)
    tracks = harvest.tracks
    windows = _harvest_windows(tracks)
    method, parts = "time", _time_split(windows)
    counts = [int((parts == i).sum()) for i in range(3)]
    if min(counts) < min_windows:
        method, parts = "agent", _agent_split(windows, seed=seed)
        counts = [int((parts == i).sum()) for i in range(3)]
    if min(counts) < min_windows:
        raise DataError(
            f"{path}: the harvest is too small to train on: {len(windows)} window(s), split by "
            f"agent into {counts[0]} train / {counts[1]} val / {counts[2]} test; val and test "
            f"need at least {min_windows} windows each (about "
            f"{int(np.ceil(min_windows / SPLIT_FRACTIONS[2]))} windows in all): harvest "
            "a longer period, or lower TRAJOPS_HARVEST_MIN_SPLIT_WINDOWS",
            details=[{"loc": ["data"], "msg": "too few windows", "windows": counts}],
        )
    frames = [_split_frame(tracks, windows, parts, i, by_agent=method == "agent") for i in range(3)]
    fp = harvest.manifest.get("fingerprint") or fingerprint(tracks).digest
    times = tracks["t"].to_numpy(dtype=np.float64)
    lineage = {
        "harvest.fingerprint": str(fp),
        "harvest.time_range": "/".join(_iso(t) for t in (times.min(), times.max())),
        "harvest.split": method,
        **{f"harvest.n_{n}_windows": str(c) for n, c in zip(SPLIT_NAMES, counts, strict=True)},
    }
    fitted = windows["t"].to_numpy(dtype=np.float64)[(parts == 0) | (parts == 1)]
    # The last forecast instant training or validation saw: later ones are held out from the
    # model (the promotion gate scores on them, trajops.monitoring.production_eval).
    lineage["harvest.fit_until"] = _iso(float(fitted.max()))
    if method == "time":
        lineage["harvest.embargo_s"] = f"{EMBARGO_S:g}"
    if base is not None:
        frames[:2] = [_with_base(frames[0], base.train), _with_base(frames[1], base.val)]
        lineage.update(_base_lineage(base))
    return DataSplits(
        name=f"harvest-{str(fp)[:12]}",
        source=str(path.resolve()),
        train=frames[0],
        val=frames[1],
        test=frames[2],
        lineage=lineage,
    )


def _harvest_windows(tracks: pd.DataFrame) -> pd.DataFrame:
    """One row per window (``scene, agent_id, t``): an agent with its full future at an
    instant, sorted by ``t`` then scene."""
    future = tracks[tracks["frame"] > (T_OBS - 1) * FRAME_STEP]
    full = future.groupby(["scene", "agent_id"], sort=False).agg(
        n=("frame", "size"), t=("t", "first")
    )
    out = full[full["n"] >= T_PRED].reset_index()[["scene", "agent_id", "t"]]
    return out.sort_values(["t", "scene", "agent_id"], kind="stable", ignore_index=True)


def _cut(weights: np.ndarray) -> np.ndarray:
    """Split index (0, 1, 2) of each ordered item so the splits hold 70 / 15 / 15 % of the
    total weight (an item goes where its first unit of weight falls)."""
    before = np.cumsum(weights) - weights
    total = max(float(weights.sum()), 1.0)
    edges = np.cumsum(SPLIT_FRACTIONS)[:2] * total
    return np.searchsorted(edges, before, side="right").astype(np.int64)


def _time_split(windows: pd.DataFrame) -> np.ndarray:
    """Split of each window in time, ``-1`` for windows dropped by the embargo."""
    instants = windows.groupby("scene", sort=False).agg(t=("t", "first"), n=("t", "size"))
    part = _cut(instants["n"].to_numpy(dtype=np.float64))
    t = instants["t"].to_numpy(dtype=np.float64)
    for split in (0, 1):  # the next split's first instant is never dropped: use it as it is
        later = t[part == split + 1]
        if len(later):
            part[(part == split) & (t > later.min() - EMBARGO_S)] = -1
    by_scene = dict(zip(instants.index, part, strict=True))
    return windows["scene"].map(by_scene).to_numpy(dtype=np.int64)


def _agent_key(agent: str, seed: int) -> int:
    digest = hashlib.blake2b(f"{seed}\0{agent}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _agent_split(windows: pd.DataFrame, *, seed: int) -> np.ndarray:
    """Split of each window by its agent: agents in hash order take 70 / 15 / 15 % of windows."""
    per_agent = windows.groupby("agent_id", sort=False).size()
    order = sorted(per_agent.index, key=lambda a: _agent_key(str(a), seed))
    part = _cut(per_agent.loc[order].to_numpy(dtype=np.float64))
    by_agent = dict(zip(order, part, strict=True))
    return windows["agent_id"].map(by_agent).to_numpy(dtype=np.int64)


def _split_frame(
    tracks: pd.DataFrame, windows: pd.DataFrame, parts: np.ndarray, split: int, *, by_agent: bool
) -> pd.DataFrame:
    """The tracks of one split: its instants; by agent, without other agents' futures."""
    mine = windows[parts == split]
    rows = tracks["scene"].isin(set(mine["scene"]))
    if by_agent:
        owner = pd.MultiIndex.from_frame(tracks[["scene", "agent_id"]])
        own = owner.isin(pd.MultiIndex.from_frame(mine[["scene", "agent_id"]]))
        rows &= (tracks["frame"] <= (T_OBS - 1) * FRAME_STEP) | own
    return tracks.loc[rows, list(TRACK_COLUMNS)].reset_index(drop=True)


def _with_base(own: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    added = base.loc[:, list(TRACK_COLUMNS)].assign(scene=BASE_PREFIX + base["scene"].astype(str))
    return pd.concat([own, added], ignore_index=True)


def _base_lineage(base: DataSplits) -> dict[str, str]:
    added = pd.concat([base.train, base.val], ignore_index=True)
    if len(added) == 0:
        raise DataError(f"base data {base.source}: its train and val splits hold no tracks")
    return {
        "base_data": base.source,
        "base_data.name": base.name,
        "base_data.fingerprint": fingerprint(added).digest,
    }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(float(t), UTC).isoformat(timespec="seconds")
