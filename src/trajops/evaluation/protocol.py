"""The ETH/UCY leave-one-scene-out protocol, in two windowing variants.

Layout: ``<root>/<fold>/{train,val,test}/*.txt`` for each fold in :data:`SCENES`. For each fold
a model is fitted on ``train``, selected on ``val`` and scored on ``test`` (the held-out
scene). Results are tidy rows ``{"model", "scene", "n", "ade", "fde"}`` plus the field's other
metrics (:func:`score` lists them; ``min_ade``, ``min_fde`` and the sample metrics with K > 1)
and one ``"scene": "average"`` row per model: the unweighted mean over the scenes, as the
literature reports it.

Windowing variants:

* ``loso`` (default): :func:`trajops.data.make_windows`, every agent on 20 consecutive
  0.4 s steps, gaps never bridged, neighbours from the same file.
* ``sgan``: the Social-GAN data loader's rule: sequences of 20 consecutive *annotated* frames
  of a file, agents present in all 20, kept when at least two such agents share the sequence.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from trajops.data.readers import SCENES, read_eth_ucy_split
from trajops.data.windows import WindowConfig, WindowSet, make_windows
from trajops.errors import DataError, ValidationError
from trajops.evaluation.metrics import (
    ade,
    coverage,
    displacement,
    fde,
    kde_nll,
    min_ade_fde,
    min_fde_miss_rate,
    miss_rate,
    per_horizon,
)
from trajops.evaluation.scene_metrics import collision_rate, scene_groups
from trajops.evaluation.spread import bootstrap_ci

Protocol = Literal["loso", "sgan"]
PROTOCOLS: tuple[str, ...] = ("loso", "sgan")
AVERAGE = "average"
COVERAGE_LEVELS: tuple[float, ...] = (0.5, 0.9)
"""Levels of the ``coverage_<p>`` keys of :func:`score`."""
PER_STEP = "ade_per_step"
SCALAR_METRICS: tuple[str, ...] = (
    "miss_rate",
    "collision_rate",
    "gt_collision_rate",
    "min_fde_miss_rate",
    "kde_nll",
    *(f"coverage_{round(p * 100)}" for p in COVERAGE_LEVELS),
)
"""The scalar keys :func:`score` adds to ADE/FDE and minADE/minFDE (averaged like them)."""


@dataclass(frozen=True)
class Fold:
    """Windows of one leave-one-scene-out fold."""

    scene: str
    train: WindowSet
    val: WindowSet
    test: WindowSet


@dataclass
class EvaluationResult:
    """Rows per model and scene (averages included) and fit/predict seconds per fold."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    timings: list[dict[str, Any]] = field(default_factory=list)
    histories: dict[str, dict[str, Any]] = field(default_factory=dict)


def sgan_windows(
    tracks: pd.DataFrame, config: WindowConfig | None = None, *, min_agents: int = 2
) -> WindowSet:
    """Windows as the Social-GAN loader cuts them (stride one annotated frame).

    Args:
        tracks: a validated tracks frame; each ``scene`` (file) is windowed on its own.
        config: window lengths and neighbour slots (``frame_step`` is not used: the sequence
            is 20 consecutive *annotated* frames, whatever their spacing).
        min_agents: agents present in all frames needed to keep a sequence.

    Returns:
        One window per (sequence, agent present in all its frames); the neighbours are the
        other such agents of the sequence, nearest at the last observed frame first.
    """
    config = config or WindowConfig()
    length, t_obs, k_max = config.length, config.t_obs, config.max_neighbours
    sets: list[WindowSet] = []
    for scene, group in tracks.groupby("scene", sort=False):
        frames, fi = np.unique(group["frame"].to_numpy(), return_inverse=True)
        agents, ai = np.unique(group["agent_id"].to_numpy(dtype=str), return_inverse=True)
        grid = np.full((len(frames), len(agents), 2), np.nan, np.float32)  # (F, A, 2)
        grid[fi, ai] = group[["x", "y"]].to_numpy(np.float32)
        present = ~np.isnan(grid[..., 0])  # (F, A)
        trajs, nbrs, owners, starts = [], [], [], []
        for idx in range(len(frames) - length + 1):
            who = np.flatnonzero(present[idx : idx + length].all(axis=0))
            if len(who) < min_agents:
                continue
            seq = grid[idx : idx + length, who].transpose(1, 0, 2)  # (P, L, 2)
            last = seq[:, t_obs - 1]  # (P, 2)
            dist = np.linalg.norm(last[:, None] - last[None], axis=-1)  # (P, P)
            np.fill_diagonal(dist, np.inf)
            k = min(k_max, len(who) - 1)
            order = np.argsort(dist, axis=1, kind="stable")[:, :k]  # (P, k)
            nb = np.full((len(who), k_max, t_obs, 2), np.nan, np.float32)
            nb[:, :k] = seq[order, :t_obs]
            trajs.append(seq)
            nbrs.append(nb)
            owners.append(agents[who])
            starts.append(np.full(len(who), frames[idx], np.int64))
        if trajs:
            sets.append(
                WindowSet(
                    traj=np.concatenate(trajs),
                    neighbours=np.concatenate(nbrs),
                    scene=np.full(sum(len(t) for t in trajs), str(scene), dtype=object),
                    agent_id=np.concatenate(owners).astype(object),
                    start_frame=np.concatenate(starts),
                    config=config,
                )
            )
    if not sets:
        return WindowSet.empty(config)
    return WindowSet.concat(sets)


def load_fold(root: str | Path, scene: str, *, protocol: Protocol = "loso") -> Fold:
    """Read and window the train, val and test splits of one fold.

    Raises:
        DataError: a missing folder or file, a bad line, or a split without any window.
    """
    if protocol not in PROTOCOLS:
        raise ValidationError(
            f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}",
            details=[{"loc": ["protocol"], "msg": f"unknown protocol {protocol!r}"}],
        )
    cut = make_windows if protocol == "loso" else sgan_windows
    splits: dict[str, WindowSet] = {}
    for split in ("train", "val", "test"):
        windows = cut(read_eth_ucy_split(root, scene, split))
        if len(windows) == 0:
            raise DataError(
                f"{Path(root) / scene / split}: no complete 20-step window in any file",
                details=[{"loc": [str(Path(root) / scene / split)], "msg": "no windows"}],
            )
        splits[split] = windows
    return Fold(scene=scene, **splits)


def average_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``"average"`` row per model: unweighted mean of each metric over its scene rows."""
    out: list[dict[str, Any]] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and r["scene"] != AVERAGE]
        row: dict[str, Any] = {
            "model": model,
            "scene": AVERAGE,
            "n": int(sum(r["n"] for r in mine)),
        }
        for key in ("ade", "fde", "min_ade", "min_fde", *SCALAR_METRICS):
            if all(key in r for r in mine):
                row[key] = float(np.mean([r[key] for r in mine]))
        if all(PER_STEP in r for r in mine):
            row[PER_STEP] = [float(v) for v in np.mean([r[PER_STEP] for r in mine], axis=0)]
        out.append(row)
    return out


def score(model: Any, windows: WindowSet, *, num_samples: int = 1, seed: int = 0) -> dict[str, Any]:
    """The field's metrics of a fitted forecaster on ``windows``.

    Keys of the deterministic forecast: ``n``, ``ade``, ``fde``, ``miss_rate`` (FDE above
    :data:`~trajops.evaluation.metrics.MISS_THRESHOLD_M`), ``collision_rate`` and, on the true
    futures as the reference, ``gt_collision_rate`` (agents of a scene within
    :data:`~trajops.evaluation.scene_metrics.COLLISION_DISTANCE_M`), ``ade_per_step`` (a list
    of T_pred mean errors). With K > 1 samples also ``min_ade``, ``min_fde``,
    ``min_fde_miss_rate``, ``kde_nll`` and ``coverage_50`` / ``coverage_90``. ``ade_ci`` and
    ``fde_ci``: 95 % percentile-bootstrap intervals of ADE and FDE over the agents.
    """
    pred = model.predict(windows.obs, neighbours=windows.neighbours)  # (N, T_pred, 2)
    fut = windows.fut  # (N, T_pred, 2)
    samples = None
    if num_samples > 1:
        samples = model.predict(
            windows.obs, neighbours=windows.neighbours, num_samples=num_samples, seed=seed
        )  # (N, K, T_pred, 2)
    row: dict[str, Any] = {"n": len(windows), "ade": ade(pred, fut), "fde": fde(pred, fut)}
    if samples is not None:
        row["min_ade"], row["min_fde"] = min_ade_fde(samples, fut)
    row.update(field_metrics(pred, samples, windows))
    row[PER_STEP] = [float(v) for v in per_horizon(pred, fut)]
    err = displacement(pred, fut)  # (N, T_pred)
    row["ade_ci"] = list(bootstrap_ci(err.mean(axis=1), seed=seed))  # 95 %, over agents
    row["fde_ci"] = list(bootstrap_ci(err[:, -1], seed=seed))
    return row


def field_metrics(
    pred: np.ndarray, samples: np.ndarray | None, windows: WindowSet
) -> dict[str, float]:
    """The scalar metrics besides ADE/FDE (:data:`SCALAR_METRICS`) of a forecast of
    ``windows``: from ``pred (N, T_pred, 2)``, and from ``samples (N, K, T_pred, 2)`` when
    given."""
    fut = windows.fut  # (N, T_pred, 2)
    groups = scene_groups(windows)  # (N,)
    out = {
        "miss_rate": miss_rate(pred, fut),
        "collision_rate": collision_rate(pred, groups),
        "gt_collision_rate": collision_rate(fut, groups),
    }
    if samples is not None:
        out["min_fde_miss_rate"] = min_fde_miss_rate(samples, fut)
        out["kde_nll"] = kde_nll(samples, fut)
        for level in COVERAGE_LEVELS:
            out[f"coverage_{round(level * 100)}"] = coverage(samples, fut, level=level)
    return out


def evaluate_models(
    root: str | Path,
    models: Sequence[str],
    *,
    protocol: Protocol = "loso",
    num_samples: int = 1,
    scenes: Sequence[str] = SCENES,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Run the leave-one-scene-out protocol for each model over ``scenes``.

    Args:
        root: ETH/UCY root with ``<fold>/{train,val,test}`` folders.
        models: model names for :func:`trajops.models.create_model`.
        protocol: ``loso`` (default windowing) or ``sgan`` (Social-GAN windowing).
        num_samples: K; with K > 1 rows also carry the sample metrics of :func:`score`.
        scenes: folds to run (all five by default).
        model_params: per-model keyword arguments for ``create_model``.
        seed: seed for the sampled forecasts.
        on_progress: called with a short message after each (fold, model).

    Returns:
        Rows per model and scene followed by one average row per model, fit/predict timings
        and each fit's history keyed ``"<model>/<scene>"``.
    """
    from trajops.models import create_model  # local: keeps torch off this module's import path

    if num_samples < 1:
        raise ValidationError(
            "--samples must be at least 1", details=[{"loc": ["samples"], "msg": "< 1"}]
        )
    missing = [s for s in scenes if not (Path(root) / s).is_dir()]
    if missing:
        raise DataError(
            f"{root}: missing fold folder(s) {', '.join(missing)}; expected <root>/<scene>/{{train,val,test}}",
            details=[{"loc": [str(Path(root) / s)], "msg": "missing"} for s in missing],
        )
    params = model_params or {}
    # Build every model before reading data so an unknown name fails fast.
    for name in models:
        create_model(name, **params.get(name, {}))
    result = EvaluationResult()
    for scene in scenes:
        fold = load_fold(root, scene, protocol=protocol)
        for name in models:
            model = create_model(name, **params.get(name, {}))
            start = time.perf_counter()
            history = model.fit(fold.train, fold.val)
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            row = score(model, fold.test, num_samples=num_samples, seed=seed)
            result.rows.append({"model": name, "scene": scene, **row})
            result.timings.append(
                {
                    "model": name,
                    "scene": scene,
                    "fit_s": fit_s,
                    "predict_s": time.perf_counter() - start,
                }
            )
            result.histories[f"{name}/{scene}"] = history
            if on_progress is not None:
                on_progress(f"{name} on {scene}: ADE {row['ade']:.3f} FDE {row['fde']:.3f}")
    result.rows.extend(average_rows(result.rows))
    return result
