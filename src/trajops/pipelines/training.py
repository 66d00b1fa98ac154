"""Training tasks: candidates, one training per model, evaluation, registration, promotion, A/B.

Idempotency for one run key: a candidate's MLflow run is named ``<run key>/<model>`` and a
finished run of that name is reused; registration finds the version already made from the
winning run; promotion leaves an alias where it already points; an experiment already running
between the same two versions is returned instead of a new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from trajops.errors import ModelNotFoundError, ValidationError
from trajops.pipelines._workspace import MANIFEST, Workspace, pipeline_settings, write_json
from trajops.pipelines.data import load_splits, load_windows
from trajops.settings import Settings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from trajops.registry.adapter import Registry

EVALUATION = "evaluation.json"
ACTOR = "airflow"


def candidates(*, models: Sequence[str]) -> list[str]:
    """The model types to train, checked (the list the training task is mapped over).

    Raises:
        ValidationError: an empty list or an unknown model type.
    """
    from trajops.models import MODEL_NAMES

    chosen = list(dict.fromkeys(str(m).strip() for m in models))
    unknown = [m for m in chosen if m not in MODEL_NAMES]
    if not chosen or unknown:
        raise ValidationError(
            f"models must be a non-empty list of {', '.join(MODEL_NAMES)}; got {list(models)!r}",
            details=[{"loc": ["models"], "msg": f"unknown: {unknown}" if unknown else "empty"}],
        )
    return chosen


def _finished_run(client: MlflowClient, experiment_id: str, name: str) -> str | None:
    # Leftovers of a try killed mid-run (timeout, lost worker) are closed as KILLED.
    found = client.search_runs(
        [experiment_id], filter_string=f"attributes.run_name = '{name}'", max_results=100
    )
    for run in found:
        if run.info.status == "RUNNING":
            client.set_terminated(run.info.run_id, status="KILLED")
    finished = [r for r in found if r.info.status == "FINISHED"]
    return finished[0].info.run_id if finished else None


def _model_uri(client: MlflowClient, run_id: str) -> str:
    outputs = client.get_run(run_id).outputs
    models = outputs.model_outputs if outputs else []
    if not models:
        raise ModelNotFoundError(f"MLflow run {run_id} logged no model")
    return f"models:/{models[0].model_id}"


def train_candidate(*, run_key: str, model: str, epochs: int | None = None) -> dict[str, Any]:
    """Train one model type on the run's splits as one MLflow run (reused on a rerun).

    Returns:
        ``model``, ``run_id``, ``model_uri``, ``test_ade``, ``test_fde`` and ``reused``.
    """
    from trajops.tracking.backend import connect, ensure_experiment, translate_errors
    from trajops.training.run import TrainSpec, train_run

    settings = pipeline_settings()
    ws = Workspace.of(settings, run_key)
    (name,) = candidates(models=[model])
    seed = int(ws.read(MANIFEST)["summary"]["seed"])
    run_name = f"{ws.key}/{name}"
    client = connect(settings)
    experiment_id = ensure_experiment(settings, client)
    with translate_errors(f"tracking store {settings.resolved_tracking_uri}"):
        run_id = _finished_run(client, experiment_id, run_name)
        if run_id is not None:
            metrics = dict(client.get_run(run_id).data.metrics)
            uri = _model_uri(client, run_id)
    reused = run_id is not None
    if run_id is None:
        spec = TrainSpec(
            model=name, epochs=epochs if name == "neural" else None, seed=seed, run_name=run_name
        )
        result = train_run(settings, spec, load_splits(ws))
        run_id, metrics, uri = result.run_id, result.metrics, result.model_uri
    return {
        "model": name,
        "run_id": run_id,
        "model_uri": uri,
        "test_ade": float(metrics["test_ade"]),
        "test_fde": float(metrics["test_fde"]),
        "reused": reused,
    }


def evaluate_candidates(*, run_key: str, trained: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Load each candidate's logged pyfunc and score it on the run's test windows.

    The candidates are ranked by ADE (the logged model is what will be served, so this also
    proves it loads); the full table goes to ``evaluation.json`` in the workspace.

    Returns:
        ``best`` (model, run_id, model_uri, ade, fde) and the ``ranking`` (model, run_id, ade).
    """
    from trajops.models.pyfunc import load_forecaster
    from trajops.registry.promotion import score
    from trajops.tracking.backend import connect

    settings = pipeline_settings()
    ws = Workspace.of(settings, run_key)
    entries = list(trained)
    if not entries:
        raise ValidationError(f"pipeline run {ws.key}: no trained candidate to evaluate")
    windows = load_windows(ws.windows("test"))
    connect(settings)
    scored = []
    for entry in entries:
        ade, fde = score(load_forecaster(entry["model_uri"]), windows)
        scored.append({**dict(entry), "ade": ade, "fde": fde})
    scored.sort(key=lambda e: e["ade"])
    write_json(ws.file(EVALUATION), {"n_windows": len(windows), "candidates": scored})
    best = scored[0]
    return {
        "best": {k: best[k] for k in ("model", "run_id", "model_uri", "ade", "fde")},
        "ranking": [{k: e[k] for k in ("model", "run_id", "ade")} for e in scored],
    }


def _registry() -> tuple[Settings, Registry]:
    from trajops.registry.adapter import Registry

    settings = pipeline_settings()
    return settings, Registry.from_settings(settings)


def register_best(*, run_key: str, evaluation: Mapping[str, Any]) -> dict[str, Any]:
    """Register the evaluation's winner, or return the version already made from its run."""
    from trajops.registry.registration import register
    from trajops.tracking.backend import translate_errors

    settings, registry = _registry()
    best = evaluation["best"]
    existing = [v for v in registry.list_versions() if v.run_id == best["run_id"]]
    if existing:
        return {"version": existing[0].version, "model": best["model"], "created": False}
    with translate_errors(f"tracking store {settings.resolved_tracking_uri}"):
        run = registry.client.get_run(best["run_id"])
    version = register(
        settings,
        model_id=str(best["model_uri"]).removeprefix("models:/"),
        run_id=best["run_id"],
        model=best["model"],
        digest=run.data.tags.get("data.digest", ""),
        metrics=dict(run.data.metrics),
    )
    registry.set_version_tags(
        version, {"trajops.pipeline_run": Workspace.of(settings, run_key).key}
    )
    return {"version": version, "model": best["model"], "created": True}


def promote_candidate(*, run_key: str, registered: Mapping[str, Any]) -> dict[str, Any]:
    """Gated promotion: to ``challenger`` when a champion exists, else to ``champion``.

    The very first model has nothing to be compared with in production, so it becomes the
    champion through the full gate; every later one becomes the challenger.

    Raises:
        PromotionRefused: the gate refused (the model does not load or predicts garbage).
    """
    from trajops.monitoring.production_eval import held_out
    from trajops.registry.promotion import promote

    settings, registry = _registry()
    version = int(registered["version"])
    champion = registry.alias_version("champion")
    if champion is not None and champion.version == version:
        return {"alias": "champion", "version": version, "previous": version, "changed": False}
    alias = "champion" if champion is None else "challenger"
    key = Workspace.of(settings, run_key).key
    result = promote(
        registry,
        version=version,
        alias=alias,
        tolerance=settings.promotion_tolerance,
        reason=f"pipeline run {key}",
        actor=ACTOR,
        held_out=held_out(settings, registry),
    )
    return {
        "alias": alias,
        "version": result.version,
        "previous": result.previous,
        "changed": result.changed,
        "eval": result.eval_source,
    }


def start_experiment(
    *,
    run_key: str,
    promotion: Mapping[str, Any],
    challenger_traffic: float = 10.0,
    auto_promote: bool = False,
) -> dict[str, Any]:
    """Start a split A/B experiment champion vs the new challenger (once per pair of versions).

    A running experiment between other versions is stopped first: its challenger has just
    been replaced. Nothing starts when the run promoted a first champion.

    Returns:
        ``experiment_id`` (None when nothing started), ``versions`` per arm and ``created``.
    """
    from trajops.experiments.config import Arm, ExperimentSpec
    from trajops.experiments.controller import ExperimentController
    from trajops.store.db import Store

    if promotion["alias"] != "challenger":
        return {"experiment_id": None, "versions": {}, "created": False}
    if not 0 < challenger_traffic < 100:
        raise ValidationError(
            f"challenger_traffic must be in (0, 100) percent, got {challenger_traffic}",
            details=[{"loc": ["challenger_traffic"], "msg": "out of range"}],
        )
    settings, registry = _registry()
    champion = registry.resolve("champion").version
    wanted = {"control": champion, "treatment": int(promotion["version"])}
    key = Workspace.of(settings, run_key).key
    store = Store(settings.resolved_database_url)
    try:
        controller = ExperimentController.from_settings(settings, store, registry=registry)
        controller.actor = ACTOR
        running = controller.repo.running()
        if running is not None:
            if running.aliases_at_start.get("versions") == wanted:
                return {"experiment_id": running.id, "versions": wanted, "created": False}
            controller.stop(running.id, reason=f"superseded by pipeline run {key}")
        spec = ExperimentSpec(
            name=f"pipeline {key}"[:200],
            arms=(
                Arm("control", "champion", 100.0 - challenger_traffic),
                Arm("treatment", "challenger", challenger_traffic),
            ),
            auto_promote=auto_promote,
        )
        record = controller.create(spec)
    finally:
        store.dispose()
    return {
        "experiment_id": record.id,
        "versions": record.aliases_at_start.get("versions", {}),
        "created": True,
    }
