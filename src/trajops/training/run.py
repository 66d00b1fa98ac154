"""One tracked training: fit, evaluate, log everything to one MLflow run, register on success.

The order of a run is fixed so that a failure anywhere leaves a ``FAILED`` run and no model
version: data is read and windowed *before* the run starts (bad input is a user error, not a
failed run), then params, lineage, fit, per-epoch losses, evaluation, artifacts and the pyfunc
are logged inside the run, and only after the run has ended ``FINISHED`` is the model
registered, with the run id, data digest and test metrics as version tags (and, for a
fine-tuning or a harvest, ``init_from`` and the splits' lineage).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from trajops import __version__
from trajops.cards.store import write_cards
from trajops.data.windows import WindowConfig, WindowSet, make_windows
from trajops.errors import DataError, TrackingUnavailable, TrajopsError, ValidationError
from trajops.evaluation.metrics import ade
from trajops.models import create_model
from trajops.models.base import Forecaster
from trajops.models.pyfunc import log_forecaster
from trajops.monitoring.reference import build_reference, write_reference
from trajops.registry.adapter import Registry
from trajops.registry.registration import register
from trajops.settings import Settings
from trajops.tracking import artifacts as art
from trajops.tracking.backend import connect, ensure_experiment, translate_errors
from trajops.tracking.datasets import DataSplits
from trajops.tracking.lineage import log_lineage
from trajops.training.finetune import InitSource, check_fine_tunable, fine_tuned_model, resolve_init

OnStep = Callable[[str], None]
"""Progress callback: called with a short description when each step starts."""
STEPS = ("windows", "params + lineage", "fit", "evaluate", "artifacts", "log model", "register")
"""The steps a training reports through ``on_step``, in order."""


@dataclass(frozen=True)
class TrainSpec:
    """What to train and how.

    Attributes:
        model: ``cv``, ``linear`` or ``neural``.
        epochs: training epochs of the neural model (ignored by closed-form models).
        seed: random seed of the model (and of the sampled metrics).
        experiment: MLflow experiment (default: ``settings.experiment_name``).
        register: register the model as a new version after a successful run.
        window: how tracks are cut into windows.
        run_name: MLflow run name (default ``<model>-<data name>``).
        model_params: extra hyper-parameters for :func:`trajops.models.create_model`.
        init_from: a registered version (``3``, ``v3``) or alias (``champion``) whose weights
            the model starts from (:mod:`trajops.training.finetune`; neural model only).
    """

    model: str
    epochs: int | None = None
    seed: int = 0
    experiment: str | None = None
    register: bool = False
    window: WindowConfig = field(default_factory=WindowConfig)
    run_name: str | None = None
    model_params: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one successful training."""

    run_id: str
    model: str
    metrics: dict[str, float]
    model_uri: str
    version: int | None = None
    fold: str | None = None


def build_model(
    spec: TrainSpec, settings: Settings, *, init: InitSource | None = None
) -> Forecaster:
    """A fresh forecaster for ``spec`` (neural: seed, epochs and device from spec / settings);
    with ``init``, one that starts from that version's weights."""
    check_fine_tunable(spec.model, spec.init_from)
    params = dict(spec.model_params)
    if spec.model == "neural":
        params.setdefault("seed", spec.seed)
        params.setdefault("device", settings.device)
        if spec.epochs is not None:
            params.setdefault("epochs", spec.epochs)
    if spec.epochs is not None and spec.epochs < 1:
        raise ValidationError(
            "--epochs must be at least 1", details=[{"loc": ["epochs"], "msg": "< 1"}]
        )
    if init is not None:
        return fine_tuned_model(init, params)
    return create_model(spec.model, **params)


def git_commit() -> str | None:
    """The commit of the working tree, when trajops runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _windows(splits: DataSplits, config: WindowConfig) -> dict[str, WindowSet]:
    out = {split: make_windows(tracks, config) for split, tracks in splits.items()}
    for split in ("train", "test"):
        if len(out[split]) == 0:
            raise DataError(
                f"{splits.name}: the {split} split yields no windows of {config.length} steps",
                details=[{"loc": [split], "msg": "no windows"}],
            )
    return out


def _params(
    spec: TrainSpec,
    model: Forecaster,
    splits: DataSplits,
    windows: dict[str, WindowSet],
    init: InitSource | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": spec.model,
        "seed": spec.seed,
        "trajops_version": __version__,
    }
    params.update({f"model.{k}": v for k, v in model.params().items()})
    params.update({f"window.{k}": v for k, v in asdict(spec.window).items()})
    params.update({f"data.n_{split}_windows": len(ws) for split, ws in windows.items()})
    params["data.name"] = splits.name
    if splits.fold:
        params["data.fold"] = splits.fold
    params.update(splits.lineage)
    if init is not None:
        params["init_from"] = str(init.version)
    commit = git_commit()
    if commit:
        params["git_commit"] = commit
    return params


def _log_history(run_id: str, history: dict[str, Any]) -> None:
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, epoch)
        for key in ("train_loss", "val_loss")
        for epoch, value in enumerate(history.get(key, []))
        if np.isfinite(value)
    ]
    if metrics:
        mlflow.tracking.MlflowClient().log_batch(run_id, metrics=metrics)
    if "best_epoch" in history:
        mlflow.log_metric("best_epoch", float(history["best_epoch"]))


def _card_metrics(metrics: dict[str, float], history: dict[str, Any]) -> dict[str, float]:
    # The run's metrics as the model card shows them (best_epoch is logged as a metric too).
    if "best_epoch" in history:
        return {**metrics, "best_epoch": float(history["best_epoch"])}
    return metrics


def _run_body(
    *,
    spec: TrainSpec,
    model: Forecaster,
    splits: DataSplits,
    windows: dict[str, WindowSet],
    run_id: str,
    step: OnStep,
    drift_window_size: int,
    init: InitSource | None,
) -> tuple[dict[str, float], str, str]:
    # Returns the test metrics, the logged model's id and the training data digest.
    step(STEPS[1])
    params = _params(spec, model, splits, windows, init)
    mlflow.log_params(params)
    fps = log_lineage(splits)
    step(STEPS[2])
    history = model.fit(windows["train"], windows["val"] if len(windows["val"]) else None)
    _log_history(run_id, history)
    step(STEPS[3])
    evaluation, pred = art.evaluate(model, windows["test"], seed=spec.seed)
    metrics = evaluation.metrics("test")
    if len(windows["val"]):
        val = windows["val"]
        metrics["val_ade"] = ade(model.predict(val.obs, neighbours=val.neighbours), val.fut)
    mlflow.log_metrics(metrics)
    for t, err in enumerate(evaluation.horizon, start=1):
        mlflow.log_metric("test_horizon_error", err, step=t)
    step(STEPS[4])
    data = {
        "name": splits.name,
        "source": splits.source,
        "train_digest": fps["train"].digest,
        "test_digest": fps["test"].digest,
        **{f"n_{s}": len(w) for s, w in windows.items()},
    }
    with tempfile.TemporaryDirectory(prefix="trajops-run-") as tmp:
        folder = Path(tmp)
        evaluation_path = art.write_evaluation(
            evaluation, folder, extra={"run_id": run_id, "model": spec.model, "data": data}
        )
        art.write_plots(model, windows["test"], pred, folder, seed=spec.seed)
        # The drift reference of the training tracks (served-style features + calibration).
        reference = build_reference(splits.train, window_size=drift_window_size, seed=spec.seed)
        write_reference(reference, folder)
        # Model card (replaces art.model_card) + performance card + per-window errors.
        write_cards(
            folder,
            model=spec.model,
            run_id=run_id,
            params=params,
            metrics=_card_metrics(metrics, history),
            evaluation=json.loads(evaluation_path.read_text()),
            windows=windows["test"],
            pred=pred,
        )
        mlflow.log_artifacts(str(folder))
    step(STEPS[5])
    info = log_forecaster(model)
    return metrics, info.model_id, fps["train"].digest


def train_run(
    settings: Settings,
    spec: TrainSpec,
    splits: DataSplits,
    *,
    on_step: OnStep | None = None,
    nested: bool = False,
) -> TrainResult:
    """Train ``spec.model`` on ``splits`` as one MLflow run; register it when asked.

    Raises:
        DataError: a split yields no windows (before any run is created).
        TrackingUnavailable: the tracking backend cannot be reached or written.
        TrajopsError: the training failed; the run is marked ``FAILED``, nothing is registered.
    """
    step = on_step or (lambda _msg: None)
    client = connect(settings)
    experiment_id = ensure_experiment(settings, client, spec.experiment)
    init = resolve_init(settings, model=spec.model, init_from=spec.init_from)
    model = build_model(spec, settings, init=init)
    step(STEPS[0])
    windows = _windows(splits, spec.window)
    run_name = spec.run_name or f"{spec.model}-{splits.name}"
    tags = {"trajops.kind": "training", "trajops.model": spec.model}
    if init is not None:
        tags.update({"init_from": str(init.version), "init_from.ref": init.ref})
    with translate_errors(f"tracking store {settings.resolved_tracking_uri}"):
        run = mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, nested=nested, tags=tags
        )
    run_id = run.info.run_id
    try:
        metrics, model_id, digest = _run_body(
            spec=spec,
            model=model,
            splits=splits,
            windows=windows,
            run_id=run_id,
            step=step,
            drift_window_size=settings.drift_window_size,
            init=init,
        )
    except BaseException as exc:
        mlflow.end_run(status="FAILED")
        if isinstance(exc, TrajopsError):
            raise
        if isinstance(exc, MlflowException | OSError):
            raise TrackingUnavailable(
                f"training run {run_id} failed writing to the tracking backend: {exc}"
            ) from exc
        if isinstance(exc, Exception):
            raise TrajopsError(
                f"training run {run_id} failed: {exc.__class__.__name__}: {exc}"
            ) from exc
        raise
    mlflow.end_run(status="FINISHED")
    version = None
    if spec.register:
        step(STEPS[6])
        version = register(
            settings,
            model_id=model_id,
            run_id=run_id,
            model=spec.model,
            digest=digest,
            metrics=metrics,
        )
        lineage = {**splits.lineage, **({"init_from": str(init.version)} if init else {})}
        if lineage:
            Registry.from_settings(settings).set_version_tags(version, lineage)
    return TrainResult(
        run_id=run_id,
        model=spec.model,
        metrics=metrics,
        model_uri=f"models:/{model_id}",
        version=version,
        fold=splits.fold,
    )


def train_loso(
    settings: Settings,
    spec: TrainSpec,
    folds: Sequence[DataSplits],
    *,
    on_step: OnStep | None = None,
) -> tuple[str, list[TrainResult]]:
    """Leave-one-scene-out: a parent run with one nested run per fold and the mean metrics.

    Returns:
        The parent run id and each fold's result.
    """
    if spec.register:
        raise ValidationError(
            "--register needs one model: use --fold SCENE (or --data/--simulate), not --loso",
            details=[{"loc": ["register"], "msg": "not with --loso"}],
        )
    client = connect(settings)
    experiment_id = ensure_experiment(settings, client, spec.experiment)
    build_model(spec, settings)  # an unknown model fails before any run exists
    with translate_errors(f"tracking store {settings.resolved_tracking_uri}"):
        parent = mlflow.start_run(
            experiment_id=experiment_id,
            run_name=spec.run_name or f"{spec.model}-loso",
            tags={"trajops.kind": "loso", "trajops.model": spec.model},
        )
    results: list[TrainResult] = []
    try:
        mlflow.log_params(
            {
                "model": spec.model,
                "seed": spec.seed,
                "folds": ",".join(f.fold or f.name for f in folds),
            }
        )
        for fold in folds:
            fold_spec = replace(spec, run_name=f"{spec.model}-{fold.name}")
            results.append(train_run(settings, fold_spec, fold, on_step=on_step, nested=True))
        for key in (
            "test_ade",
            "test_fde",
            f"test_min_ade_{art.MIN_OF_K}",
            f"test_min_fde_{art.MIN_OF_K}",
        ):
            values = [r.metrics[key] for r in results if key in r.metrics]
            if values:
                mlflow.log_metric(f"{key}_mean", float(np.mean(values)))
        mlflow.log_dict({r.fold or str(i): r.metrics for i, r in enumerate(results)}, "loso.json")
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")
    return parent.info.run_id, results
