"""Data tasks of the training pipelines: extract, validate, windows and features.

Each task writes its files into the run's :class:`~trajops.pipelines._workspace.Workspace`
(atomically) and returns a few counts and digests. A rerun for the same run key reuses what
an earlier try extracted, so every later task of the run sees the same data.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trajops.errors import DataError, ValidationError
from trajops.pipelines._workspace import MANIFEST, Workspace, pipeline_settings, seed_of

if TYPE_CHECKING:  # data libraries load when a task runs: DAG files parse fast
    import pandas as pd

    from trajops.data.windows import WindowConfig, WindowSet
    from trajops.tracking.datasets import DataSplits

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
"""The splits (``trajops.data.readers.SPLITS``, repeated here: importing readers loads pandas)."""

VALIDATED = "validated.json"
WINDOWS = "windows.json"
MIN_AGENTS = 2
"""Fewest agents the train and test splits must each hold."""


def _production_splits(ws: Workspace, *, since: str | None, seed: int) -> DataSplits | None:
    """Splits of a harvest of the operational store's realised forecasts (``since`` back,
    e.g. ``30d``; None: all it keeps), written into the workspace; None when the store is
    unreachable or holds too few windows to split (the caller then simulates)."""
    from sqlalchemy.exc import SQLAlchemyError

    from trajops.monitoring.harvest import HarvestFilter, harvest
    from trajops.security._time import parse_past
    from trajops.store import Store
    from trajops.tracking import datasets

    settings = pipeline_settings()
    where = HarvestFilter(since=parse_past(since, field="since") if since else None)
    try:
        store = Store(settings.resolved_database_url)
    except SQLAlchemyError as exc:
        log.warning("no production data (store unreachable: %s): simulating", type(exc).__name__)
        return None
    try:
        manifest = harvest(store, ws.root / "harvest", where)
    except SQLAlchemyError as exc:
        log.warning("no production data (store unreachable: %s): simulating", type(exc).__name__)
        return None
    finally:
        store.dispose()
    try:
        return datasets.harvest_splits(
            ws.root / "harvest", seed=seed, min_windows=settings.harvest_min_split_windows
        )
    except DataError as exc:
        log.warning(
            "%d production windows, too few to train on (%s): simulating",
            manifest["windows"],
            exc.message,
        )
        return None


def _splits(
    request: dict[str, Any], *, seed: int, sim: tuple[int, int, int], ws: Workspace
) -> tuple[DataSplits, str | None]:
    from trajops.data.simulator import SimulationConfig
    from trajops.tracking import datasets

    source, fold = request["source"], request["fold"]
    if source is None:
        harvested = _production_splits(ws, since=request.get("since"), seed=seed)
        if harvested is not None:
            return harvested, None
        config = SimulationConfig(n_scenes=sim[0], n_agents=sim[1], n_steps=sim[2], seed=seed)
        return datasets.simulated_splits(config), None
    path = Path(source)
    if not path.exists():
        raise DataError(
            f"pipeline source {path} does not exist",
            details=[{"loc": ["source"], "msg": "not found"}],
        )
    if datasets.is_eth_ucy_root(path):
        if not fold:
            raise ValidationError(
                f"{path} is an ETH/UCY root: give the fold (held-out scene) to train on",
                details=[{"loc": ["fold"], "msg": "required for an ETH/UCY root"}],
            )
        return datasets.eth_ucy_splits(path, fold), fold
    return datasets.path_splits(path, seed=seed), None


def extract(
    *,
    run_key: str,
    source: str | None = None,
    fold: str | None = None,
    seed: int | None = None,
    sim_scenes: int = 6,
    sim_agents: int = 16,
    sim_steps: int = 160,
    since: str | None = None,
) -> dict[str, Any]:
    """Read (harvest, or simulate) the training tracks and write their train / val / test splits.

    Args:
        run_key: the pipeline run (e.g. ``<dag id>/<Airflow run id>``).
        source: a tracks file or folder, or an ETH/UCY root (with ``fold``); None: the
            production windows the operational store holds (a harvest, split by time or by
            agent), or simulated crowds where there are too few of them.
        since: how far back a harvest reaches (``30d``, an ISO date; None: all it keeps).
        fold: the held-out ETH/UCY scene.
        seed: split (and simulation) seed; None derives one from ``run_key``.
        sim_scenes, sim_agents, sim_steps: size of the simulated crowds.

    Returns:
        ``run_key``, ``workspace``, dataset ``name``, ``seed``, rows per split and the
        data's ``origin`` (``production``, ``simulator`` or ``path``).
    """
    from trajops.data.readers import write_tracks

    ws = Workspace.of(pipeline_settings(), run_key)
    request: dict[str, Any] = {
        "source": source or None,
        "fold": fold or None,
        "seed": seed,
        "since": since or None,
    }
    request["sim"] = [sim_scenes, sim_agents, sim_steps] if not source else None
    if ws.file(MANIFEST).exists():
        done = ws.read(MANIFEST)
        if done["request"] == request and all(ws.split(s).exists() for s in SPLITS):
            return done["summary"]
    used_seed = seed if seed is not None else seed_of(ws.key)
    splits, used_fold = _splits(
        request, seed=used_seed, sim=(sim_scenes, sim_agents, sim_steps), ws=ws
    )
    for split, tracks in splits.items():
        write_tracks(tracks, ws.split(split))
    summary = {
        "run_key": ws.key,
        "workspace": str(ws.root),
        "name": splits.name,
        "seed": used_seed,
        "rows": {split: len(tracks) for split, tracks in splits.items()},
        "origin": _origin(splits),
    }
    ws.write(
        MANIFEST,
        {
            "request": request,
            "summary": summary,
            "source": splits.source,
            "fold": used_fold,
            "lineage": splits.lineage,
        },
    )
    return summary


def _origin(splits: DataSplits) -> str:
    """Where a run's data came from: ``production`` (a harvest), ``simulator`` or ``path``."""
    if splits.name.startswith("harvest-"):
        return "production"
    return "simulator" if splits.source.startswith("simulator:") else "path"


def read_split(ws: Workspace, split: str) -> pd.DataFrame:
    """One extracted split, validated again on read (an empty split is returned as is)."""
    import pandas as pd

    from trajops.data.readers import read_tracks

    path = ws.split(split)
    if not path.exists():
        raise DataError(
            f"{path} is missing: run the extract task of pipeline run {ws.key} first",
            details=[{"loc": ["workspace", split], "msg": "missing"}],
        )
    if ws.read(MANIFEST)["summary"]["rows"].get(split, 1) == 0:
        return pd.read_parquet(path)
    return read_tracks(path)


def load_splits(ws: Workspace) -> DataSplits:
    """The run's splits as :class:`DataSplits` (name, source and fold from the manifest)."""
    from trajops.tracking.datasets import DataSplits

    manifest = ws.read(MANIFEST)
    frames = {split: read_split(ws, split) for split in SPLITS}
    return DataSplits(
        name=manifest["summary"]["name"],
        source=manifest["source"],
        fold=manifest["fold"],
        train=frames["train"],
        val=frames["val"],
        test=frames["test"],
        lineage=manifest.get("lineage", {}),
    )


def validate(*, run_key: str) -> dict[str, Any]:
    """Re-read every split strictly and check it can train and test a model.

    Raises:
        DataError: a malformed file, too few agents in train or test, or a test split equal
            to the training split (a leak).
    """
    from trajops.data.fingerprint import fingerprint

    ws = Workspace.of(pipeline_settings(), run_key)
    fps = {split: fingerprint(read_split(ws, split)) for split in SPLITS}
    for split in ("train", "test"):
        if fps[split].n_agents < MIN_AGENTS:
            raise DataError(
                f"pipeline run {ws.key}: the {split} split has {fps[split].n_agents} agent(s); "
                f"at least {MIN_AGENTS} are needed",
                details=[{"loc": [split], "msg": "too few agents"}],
            )
    if fps["train"].digest == fps["test"].digest:
        raise DataError(
            f"pipeline run {ws.key}: the test split is identical to the training split",
            details=[{"loc": ["test"], "msg": "equals train"}],
        )
    ws.write(VALIDATED, {split: fp.to_dict() for split, fp in fps.items()})
    return {
        "digests": {split: fp.short for split, fp in fps.items()},
        "agents": {split: fp.n_agents for split, fp in fps.items()},
    }


def save_windows(windows: WindowSet, path: Path) -> Path:
    """Write windows to ``.npz`` (ids as strings, so reading needs no pickle)."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(
        tmp,
        traj=windows.traj,
        neighbours=windows.neighbours,
        scene=windows.scene.astype(str),
        agent_id=windows.agent_id.astype(str),
        start_frame=windows.start_frame,
    )
    tmp.replace(path)
    return path


def load_windows(path: Path, config: WindowConfig | None = None) -> WindowSet:
    """Read what :func:`save_windows` wrote."""
    import numpy as np

    from trajops.data.windows import WindowConfig, WindowSet

    if not path.exists():
        raise DataError(f"{path} is missing: run the features task first")
    with np.load(path, allow_pickle=False) as z:
        return WindowSet(
            traj=z["traj"],  # (N, T_obs + T_pred, 2)
            neighbours=z["neighbours"],  # (N, K, T_obs, 2)
            scene=z["scene"].astype(object),
            agent_id=z["agent_id"].astype(object),
            start_frame=z["start_frame"],
            config=config or WindowConfig(),
        )


def build_features(*, run_key: str) -> dict[str, Any]:
    """Cut every split into windows and compute their kinematic features, to files.

    Raises:
        DataError: the train or test split yields no windows.
    """
    from trajops.data.features import kinematic_features
    from trajops.data.windows import WindowConfig, make_windows

    ws = Workspace.of(pipeline_settings(), run_key)
    counts: dict[str, int] = {}
    for split in SPLITS:
        windows = make_windows(read_split(ws, split), WindowConfig())
        if len(windows) == 0 and split != "val":
            raise DataError(
                f"pipeline run {ws.key}: the {split} split yields no windows",
                details=[{"loc": [split], "msg": "no windows"}],
            )
        save_windows(windows, ws.windows(split))
        if len(windows):
            feats = kinematic_features(windows.obs, neighbours=windows.neighbours)
            target = ws.features(split)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            feats.to_parquet(tmp, index=False)
            os.replace(tmp, target)  # a killed task leaves no half-written file
        else:  # a rerun that now finds no windows must not leave an older run's features
            ws.features(split).unlink(missing_ok=True)
        counts[split] = len(windows)
    ws.write(WINDOWS, {"windows": counts})
    return {"windows": counts}
