"""Running a batch prediction job end to end (the function the CLI, the API and DAGs call).

Steps: plan the partitions (fails fast on a structurally bad input), resolve the model in the
registry, record or check ``job.json`` in the output folder, register the model on the Dask
workers (loaded once per worker), submit every partition not completed yet, and once all are
done merge the bad-rows report and write ``manifest.json``.
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from distributed import as_completed

from trajops import __version__
from trajops.batch.cluster import dask_client
from trajops.batch.plan import input_digest, plan_partitions
from trajops.batch.predict import PredictConfig
from trajops.batch.state import BAD_ROWS_FILE, JobFolder
from trajops.batch.worker import ModelPlugin, ModelRef, PartitionResult, run_partition
from trajops.errors import ValidationError
from trajops.models.pyfunc import MAX_SAMPLES
from trajops.settings import Settings


@dataclass(frozen=True)
class BatchRequest:
    """One batch prediction job.

    Attributes:
        input: a Parquet, CSV or ETH/UCY text file, or a folder of them.
        output: the job's folder (created; reusing it resumes the same job).
        model: registry alias or version number.
        scheduler: ``tcp://host:port`` of a Dask scheduler (default: ``settings.dask_scheduler``
            or a local cluster).
        workers: local cluster worker processes (default: one per core, at most 8).
        partition_rows: most input rows per Parquet partition.
        predict: sampling and windowing.
        processes: local workers as processes (False: threads, for tests).
    """

    input: Path
    output: Path
    model: str = "champion"
    scheduler: str | None = None
    workers: int | None = None
    partition_rows: int = 500_000
    predict: PredictConfig = field(default_factory=PredictConfig)
    processes: bool = True


@dataclass(frozen=True)
class BatchResult:
    """What a finished job produced (the manifest, summarised)."""

    output: Path
    manifest: dict[str, Any]

    @property
    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = self.manifest["totals"]
        return totals


class BatchProgress(Protocol):
    """Receives progress (the CLI draws a bar; the API updates the job's status)."""

    def started(self, *, total: int, completed: int) -> None: ...

    def advanced(self, result: PartitionResult) -> None: ...


def _check(request: BatchRequest) -> None:
    cfg = request.predict
    if not 1 <= cfg.num_samples <= MAX_SAMPLES:
        raise ValidationError(
            f"num_samples must be between 1 and {MAX_SAMPLES}, got {cfg.num_samples}",
            details=[{"loc": ["num_samples"], "msg": "out of range"}],
        )
    if cfg.stride < 1:
        raise ValidationError(
            f"stride must be >= 1, got {cfg.stride}", details=[{"loc": ["stride"], "msg": "< 1"}]
        )


def resolve_model(settings: Settings, ref: str) -> ModelRef:
    """The registry version behind ``ref`` (alias or number), as the workers load it."""
    from trajops.registry.adapter import Registry

    registry = Registry.from_settings(settings)
    version = registry.resolve(ref)
    download = registry.client.get_model_version_download_uri(version.name, str(version.version))
    return ModelRef(
        name=version.name,
        version=version.version,
        run_id=version.run_id,
        uri=version.uri,
        download_uri=download,
        tracking_uri=settings.resolved_tracking_uri,
    )


def run_batch(
    settings: Settings, request: BatchRequest, *, progress: BatchProgress | None = None
) -> BatchResult:
    """Run (or resume) a batch prediction job.

    Args:
        settings: configuration (registry, default scheduler).
        request: the job.
        progress: optional progress receiver.

    Returns:
        The output folder and its manifest.

    Raises:
        DataError: a missing or structurally bad input (nothing is written).
        ModelNotFoundError: the model reference resolves to nothing.
        ConflictError: the output folder holds another job or is in use.
        ServiceUnavailable: the registry or the Dask scheduler cannot be reached.
    """
    _check(request)
    t0 = time.perf_counter()
    parts = plan_partitions(request.input, partition_rows=request.partition_rows)
    digest = input_digest(request.input)
    ref = resolve_model(settings, request.model)
    folder = JobFolder(request.output)
    params = asdict(request.predict) | {"partition_rows": request.partition_rows}
    job = {
        "input": str(Path(request.input).resolve()),
        "input_digest": digest,
        "model": ref.lineage(),
        "params": params,
        "partitions": [p.describe() for p in parts],
        "trajops_version": __version__,
    }
    lineage = {"input": job["input"], "input_digest": digest, "trajops_version": __version__}
    with folder.locked():
        resumed = folder.start(job)
        done = folder.completed()
        pending = [p for p in parts if p.name not in done]
        if progress is not None:
            progress.started(total=len(parts), completed=len(parts) - len(pending))
        results = {name: PartitionResult(**counts) for name, counts in done.items()}
        scheduler = request.scheduler or (None if request.workers else settings.dask_scheduler)
        if pending:
            with ExitStack() as stack:
                client = stack.enter_context(
                    dask_client(
                        scheduler=scheduler, workers=request.workers, processes=request.processes
                    )
                )
                plugin = ref.plugin_name(uuid.uuid4().hex[:12])
                client.register_plugin(ModelPlugin(ref), name=plugin)
                stack.callback(client.unregister_worker_plugin, plugin)
                futures = [
                    client.submit(
                        run_partition,
                        p,
                        ref=ref,
                        plugin_name=plugin,
                        root=str(folder.root),
                        config=request.predict,
                        lineage=lineage,
                        key=f"trajops-batch-{p.name}-{digest[:12]}",
                        pure=False,
                    )
                    for p in pending
                ]
                for future in as_completed(futures):
                    result: PartitionResult = future.result()
                    results[result.name] = result
                    if progress is not None:
                        progress.advanced(result)
                    future.release()
        bad_rows = folder.merge_bad_rows()
        manifest = _manifest(
            job=job,
            results=[results[p.name] for p in parts],
            folder=folder,
            resumed=resumed,
            skipped=len(done),
            seconds=time.perf_counter() - t0,
            scheduler=scheduler or "local",
        )
        manifest["totals"]["rows_bad_report"] = bad_rows
        folder.write_manifest(manifest)
    return BatchResult(output=folder.root, manifest=manifest)


def _manifest(
    *,
    job: dict[str, Any],
    results: list[PartitionResult],
    folder: JobFolder,
    resumed: bool,
    skipped: int,
    seconds: float,
    scheduler: str,
) -> dict[str, Any]:
    keys = ("rows_read", "rows_bad", "agents", "windows", "output_rows")
    totals = {k: sum(int(getattr(r, k)) for r in results) for k in keys}
    return {
        "status": "complete",
        "finished_at": datetime.now(UTC).isoformat(),
        "input": job["input"],
        "input_digest": job["input_digest"],
        "model": job["model"],
        "params": job["params"],
        "trajops_version": job["trajops_version"],
        "scheduler": scheduler,
        "resumed": resumed,
        "partitions_skipped": skipped,
        "seconds": round(seconds, 3),
        "totals": totals,
        "bad_rows_file": BAD_ROWS_FILE,
        "files": [
            {"path": str(folder.part_path(r.name).relative_to(folder.root)), **r.to_dict()}
            for r in results
        ],
    }
