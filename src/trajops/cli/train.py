"""``trajops train``: one tracked MLflow run per training (nested runs per fold with ``--loso``).

``--data HARVEST`` trains on production windows (split in time, or by agent when the harvest is
short: :func:`trajops.tracking.datasets.harvest_splits`), ``--base-data PATH`` adds another
dataset's train and val to it, and ``--init-from champion|VERSION`` fine-tunes a registered
neural version (:mod:`trajops.training.finetune`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trajops.cli._common import JsonOpt, console, emit_json, load_settings, status_console
from trajops.errors import ValidationError
from trajops.settings import Settings

if TYPE_CHECKING:  # MLflow and the models load lazily: `trajops --help` stays fast
    from trajops.tracking.datasets import DataSplits
    from trajops.training.run import OnStep, TrainResult, TrainSpec

SIM_SCENES = 6
SIM_AGENTS = 16
SIM_STEPS = 160


def quiet_mlflow() -> None:
    """Keep MLflow's chatter (table migrations, artifact download bars) out of the CLI output."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextmanager
def step_progress(total: int, *, label: str) -> Iterator[OnStep]:
    """A rich progress bar over the training steps; yields the ``on_step`` callback."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[label]}[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=status_console(),
        transient=False,
    ) as progress:
        task = progress.add_task("starting", total=total, label=label)
        started = [False]

        def on_step(name: str) -> None:
            if started[0]:
                progress.advance(task)
            started[0] = True
            progress.update(task, description=name)

        yield on_step
        progress.update(task, completed=total, description="done")


def results_table(results: list[TrainResult], *, title: str) -> Table:
    """Run id, version and headline test metrics of each training."""
    table = Table(title=title)
    for col in ("model", "fold", "run id", "version", "test ADE", "test FDE", "minADE20"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(
            r.model,
            r.fold or "-",
            r.run_id,
            str(r.version) if r.version is not None else "-",
            f"{r.metrics.get('test_ade', float('nan')):.3f}",
            f"{r.metrics.get('test_fde', float('nan')):.3f}",
            f"{r.metrics.get('test_min_ade_20', float('nan')):.3f}",
        )
    return table


def result_dict(result: TrainResult) -> dict[str, object]:
    """One training for ``--json``: run id, registered version (or null), metrics."""
    return {
        "model": result.model,
        "fold": result.fold,
        "run_id": result.run_id,
        "version": result.version,
        "model_uri": result.model_uri,
        "metrics": dict(result.metrics),
    }


def _check_sources(
    data: Path | None, simulate: bool, fold: str | None, loso: bool, all_scenes: bool = False
) -> None:
    if (data is None) == (not simulate):
        raise ValidationError(
            "give exactly one of --data PATH or --simulate",
            details=[{"loc": ["data"], "msg": "exactly one of --data / --simulate"}],
        )
    if sum((bool(fold), loso, all_scenes)) > 1:
        raise ValidationError("--fold, --loso and --all-scenes exclude each other")
    if (fold or loso or all_scenes) and data is None:
        raise ValidationError(
            "--fold / --loso / --all-scenes need --data pointing at an ETH/UCY root"
        )


def ensemble_params(model: str, ensemble: int | None) -> dict[str, int]:
    """``{"ensemble": N}`` for the neural model (``{}`` when not asked).

    Raises:
        ValidationError: N < 1, or an ensemble of a model other than the neural one.
    """
    if ensemble is None:
        return {}
    if ensemble < 1:
        raise ValidationError(
            "--ensemble must be at least 1", details=[{"loc": ["ensemble"], "msg": "< 1"}]
        )
    if model != "neural":
        raise ValidationError(
            f"--ensemble applies to the neural model, not {model!r}",
            details=[{"loc": ["ensemble"], "msg": "neural only"}],
        )
    return {"ensemble": ensemble}


def base_splits(path: Path, *, seed: int) -> DataSplits:
    """The splits of ``--base-data``: any ``--data`` path; an ETH/UCY root gives every site,
    each recording cut in time (:func:`~trajops.tracking.datasets.eth_ucy_all_sites`)."""
    from trajops.tracking import datasets

    if datasets.is_eth_ucy_root(path):
        return datasets.eth_ucy_all_sites(path)
    return datasets.path_splits(path, seed=seed)


def _check_base(data: Path | None, base_data: Path | None) -> None:
    from trajops.data.harvest import is_harvest

    if base_data is not None and (data is None or not is_harvest(data)):
        raise ValidationError(
            "--base-data adds training data to a harvest: use it with --data HARVEST",
            details=[{"loc": ["base_data"], "msg": "needs --data HARVEST"}],
        )


def run_training(
    settings: Settings,
    spec: TrainSpec,
    *,
    data: Path | None,
    simulate: bool,
    fold: str | None = None,
    loso: bool = False,
    all_scenes: bool = False,
    sim_scenes: int = SIM_SCENES,
    sim_agents: int = SIM_AGENTS,
    sim_steps: int = SIM_STEPS,
    base_data: Path | None = None,
) -> tuple[str | None, list[TrainResult]]:
    """Resolve the data source and train (once, or per fold with ``loso``), with progress;
    ``base_data`` is added to the train and val of a harvest ``data``.

    Returns:
        The parent run of a ``loso`` training (else ``None``) and the trainings.
    """
    from trajops.data.readers import list_folds
    from trajops.data.simulator import SimulationConfig
    from trajops.tracking import datasets
    from trajops.training.run import STEPS, build_model, train_loso, train_run

    _check_sources(data, simulate, fold, loso, all_scenes)
    _check_base(data, base_data)
    build_model(spec, settings)  # an unknown model or bad hyper-parameter fails before any work
    steps = len(STEPS) if spec.register else len(STEPS) - 1
    if data is not None and datasets.is_eth_ucy_root(data):
        if all_scenes:
            with step_progress(steps, label=f"{spec.model} all sites") as on_step:
                return None, [
                    train_run(settings, spec, datasets.eth_ucy_all_sites(data), on_step=on_step)
                ]
        if not (fold or loso):
            raise ValidationError(
                f"{data} is an ETH/UCY root: choose a fold with --fold SCENE, run --loso, or "
                "train on every site with --all-scenes",
                details=[{"loc": ["fold"], "msg": "required for an ETH/UCY root"}],
            )
        folds = [fold] if fold else list_folds(data)
        splits = [datasets.eth_ucy_splits(data, f) for f in folds]
        if loso:
            with step_progress(steps * len(splits), label=f"{spec.model} loso") as on_step:
                parent, results = train_loso(settings, spec, splits, on_step=on_step)
            status_console().print(f"parent run [bold]{parent}[/bold]")
            return parent, results
        only = splits[0]
    elif data is not None:
        if fold or loso or all_scenes:
            raise ValidationError(
                f"{data} is not an ETH/UCY root; --fold / --loso / --all-scenes need one"
            )
        base = None if base_data is None else base_splits(base_data, seed=spec.seed)
        only = datasets.path_splits(
            data, seed=spec.seed, base=base, min_windows=settings.harvest_min_split_windows
        )
    else:
        config = SimulationConfig(
            n_scenes=sim_scenes, n_agents=sim_agents, n_steps=sim_steps, seed=spec.seed
        )
        only = datasets.simulated_splits(config)
    with step_progress(steps, label=spec.model) as on_step:
        return None, [train_run(settings, spec, only, on_step=on_step)]


def train(
    model: Annotated[
        str, typer.Option("--model", "-m", help="Forecaster: cv, linear or neural.")
    ] = "linear",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Tracks file/folder, a harvest folder (`trajops data harvest`), or an ETH/UCY "
            "root (with --fold / --loso / --all-scenes).",
        ),
    ] = None,
    base_data: Annotated[
        Path | None,
        typer.Option(
            "--base-data",
            help="With --data HARVEST: add this dataset's train and val splits (any --data "
            "path; an ETH/UCY root gives every site) to the harvest's; the test split stays "
            "production's.",
        ),
    ] = None,
    fold: Annotated[
        str | None, typer.Option("--fold", help="ETH/UCY fold (held-out scene).")
    ] = None,
    loso: Annotated[
        bool, typer.Option("--loso", help="Every ETH/UCY fold, one nested run each.")
    ] = False,
    all_scenes: Annotated[
        bool,
        typer.Option(
            "--all-scenes",
            help="Every ETH/UCY site in one model: each recording cut in time (70 % train, "
            "15 % validation, 15 % test).",
        ),
    ] = False,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Train on simulated crowds.")
    ] = False,
    sim_scenes: Annotated[
        int, typer.Option(help="Simulated scenes (split by scene).")
    ] = SIM_SCENES,
    sim_agents: Annotated[int, typer.Option(help="Simulated agents per scene.")] = SIM_AGENTS,
    sim_steps: Annotated[int, typer.Option(help="Simulated steps per scene.")] = SIM_STEPS,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: TRAJOPS_EXPERIMENT_NAME).")
    ] = None,
    register: Annotated[
        bool, typer.Option("--register", help="Register the model after a successful run.")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Epochs of the neural model.")] = None,
    ensemble: Annotated[
        int | None,
        typer.Option(
            help="Members of the neural model (seeds seed, seed+1, ...; the forecast is their "
            "mean); registered and served as one version."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: TRAJOPS_SEED).")] = None,
    init_from: Annotated[
        str | None,
        typer.Option(
            "--init-from",
            help="Fine-tune a registered neural version (champion, challenger, 3, v3): start "
            "from its weights; by default 20 epochs at 0.3 x its learning rate.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a forecaster and track it in MLflow.

    One run per training (nested runs per fold with --loso): params, metrics, plots, data
    lineage and the model card.
    """
    from trajops.training.run import TrainSpec

    quiet_mlflow()
    settings = load_settings()
    spec = TrainSpec(
        model=model,
        epochs=epochs,
        seed=settings.seed if seed is None else seed,
        experiment=experiment,
        register=register,
        model_params=ensemble_params(model, ensemble),
        init_from=init_from,
    )
    parent, results = run_training(
        settings,
        spec,
        data=data,
        simulate=simulate,
        fold=fold,
        loso=loso,
        all_scenes=all_scenes,
        sim_scenes=sim_scenes,
        sim_agents=sim_agents,
        sim_steps=sim_steps,
        base_data=base_data,
    )
    if as_json:
        emit_json(
            {
                "tracking_uri": settings.resolved_tracking_uri,
                "model_name": settings.model_name,
                "parent_run_id": parent,
                "runs": [result_dict(r) for r in results],
            }
        )
        return
    console.print(results_table(results, title=f"trained on {settings.resolved_tracking_uri}"))
    for r in results:
        if r.version is not None:
            console.print(
                f"registered [bold]{settings.model_name}[/bold] v{r.version}; "
                f"promote it with `trajops models promote {r.version}`"
            )
