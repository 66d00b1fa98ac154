"""``trajops batch``: batch prediction over files with Dask."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from trajops.cli._common import JsonOpt, console, emit_json, load_settings
from trajops.cli.train import quiet_mlflow

if TYPE_CHECKING:  # Dask and MLflow load lazily: `trajops --help` stays fast
    from trajops.batch import PartitionResult

app = typer.Typer(no_args_is_help=True, help="Batch prediction over files with Dask.")


class _BarProgress:
    """Draws one rich bar over a job's partitions (implements ``BatchProgress``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("partitions", total=None)
        self.windows = 0

    def started(self, *, total: int, completed: int) -> None:
        self.progress.update(self.task, total=total, completed=completed)

    def advanced(self, result: PartitionResult) -> None:
        self.windows += result.windows
        self.progress.update(
            self.task, advance=1, description=f"partitions ({self.windows:,} windows)"
        )


@app.command("predict")
def predict(
    input_path: Annotated[
        Path,
        typer.Option("--input", "-i", help="Parquet, CSV or ETH/UCY .txt file, or a folder."),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Job folder (rerun with the same one to resume)."),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Registry alias or version number.")
    ] = "champion",
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler tcp://HOST:PORT (default TRAJOPS_DASK_SCHEDULER)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Start a local cluster with N worker processes (default: cores)."),
    ] = None,
    partition_rows: Annotated[
        int, typer.Option(help="Most input rows per Parquet partition.", min=1)
    ] = 500_000,
    num_samples: Annotated[int, typer.Option(help="Forecasts per window.", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    stride: Annotated[int, typer.Option(help="Steps between two windows of one agent.", min=1)] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Forecast every window of the input with a registered model.

    The forecasts are written as Parquet into the job folder. Bad rows are excluded and
    listed with their reason in OUTPUT/bad_rows.csv; the job fails (exit 2, nothing written)
    only when a file cannot be read at all.
    """
    from trajops.batch import BatchRequest, PredictConfig, run_batch

    quiet_mlflow()
    settings = load_settings()
    request = BatchRequest(
        input=input_path,
        output=output,
        model=model,
        scheduler=scheduler,
        workers=workers,
        partition_rows=partition_rows,
        predict=PredictConfig(num_samples=num_samples, seed=seed, stride=stride),
    )
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=as_json,
        disable=as_json,
    ) as bar:
        result = run_batch(settings, request, progress=_BarProgress(bar))
    manifest = result.manifest
    if as_json:
        emit_json({k: v for k, v in manifest.items() if k != "files"})
        return
    totals = manifest["totals"]
    table = Table(title=f"batch job {result.output}")
    table.add_column("what")
    table.add_column("value", justify="right")
    model_info = manifest["model"]
    table.add_row("model", f"{model_info['name']} v{model_info['version']}")
    table.add_row("input digest", manifest["input_digest"][:12])
    table.add_row(
        "partitions", f"{len(manifest['files'])} ({manifest['partitions_skipped']} resumed)"
    )
    for key in ("rows_read", "rows_bad", "agents", "windows", "output_rows"):
        table.add_row(key.replace("_", " "), f"{totals[key]:,}")
    table.add_row("seconds", f"{manifest['seconds']:.2f}")
    console.print(table)
    if totals["rows_bad"]:
        console.print(
            f"[yellow]{totals['rows_bad']} bad row(s) excluded: see "
            f"{result.output / manifest['bad_rows_file']}[/yellow]"
        )
