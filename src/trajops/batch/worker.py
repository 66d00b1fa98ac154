"""What runs on the Dask workers: the model, loaded once per worker, and the partition task.

:class:`ModelPlugin` is a Dask ``WorkerPlugin``: registering it makes every worker (present and
future) download the registered pyfunc once, load it, and keep its forecaster for the tasks.
:func:`run_partition` reads one partition, validates its rows, forecasts its windows and writes
the output, the bad-rows report and finally the ``done`` marker, each atomically.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from distributed import get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from trajops.batch.plan import Partition
from trajops.batch.predict import PredictConfig, predict_tracks
from trajops.batch.rows import read_partition
from trajops.batch.state import JobFolder, atomic_write_bytes, atomic_write_json, temp_path
from trajops.errors import ModelLoadError
from trajops.models.base import Forecaster
from trajops.models.pyfunc import load_forecaster

LINEAGE_KEY = b"trajops.lineage"
"""Key of the lineage JSON in each output file's Parquet schema metadata."""


@dataclass(frozen=True)
class ModelRef:
    """A registered model version as the workers load it.

    Attributes:
        name: registered model name.
        version: version number.
        run_id: the training run.
        uri: ``models:/<name>/<version>``.
        download_uri: where the artifacts are (resolved by the driver from the registry).
        tracking_uri: the tracking backend (``mlflow-artifacts:`` URIs need it).
    """

    name: str
    version: int
    run_id: str | None
    uri: str
    download_uri: str
    tracking_uri: str

    def plugin_name(self, job: str) -> str:
        """Name of the worker plugin holding this version for one job (``job``: a token).

        One plugin per job, removed when the job ends: two jobs on a shared cluster never
        unload each other's model, and a long-lived cluster does not accumulate versions.
        """
        return f"trajops-model-{self.name}-v{self.version}-{job}"

    def lineage(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "uri": self.uri}


class ModelPlugin(WorkerPlugin):
    """Loads one model version on each worker when registered (``client.register_plugin``)."""

    idempotent = True  # registering the same version twice keeps the loaded model

    def __init__(self, ref: ModelRef) -> None:
        self.ref = ref
        self.forecaster: Forecaster | None = None
        self.loads = 0
        self._dir: str | None = None

    def setup(self, worker: Any) -> None:
        self._dir = tempfile.mkdtemp(prefix="trajops-batch-model-")
        self.forecaster = load_forecaster(
            self.ref.download_uri, dst=Path(self._dir), tracking_uri=self.ref.tracking_uri
        )
        self.loads += 1

    def teardown(self, worker: Any) -> None:
        self.forecaster = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


def worker_forecaster(ref: ModelRef, plugin_name: str) -> tuple[Forecaster, int]:
    """The forecaster the current worker loaded for ``ref``, and how often it loaded it.

    Raises:
        ModelLoadError: the plugin is not registered on this worker or failed to load.
    """
    plugin = get_worker().plugins.get(plugin_name)
    if not isinstance(plugin, ModelPlugin) or plugin.forecaster is None:
        raise ModelLoadError(f"{ref.uri} is not loaded on this worker")
    return plugin.forecaster, plugin.loads


@dataclass(frozen=True)
class PartitionResult:
    """Counts of one completed partition (also its ``done`` marker)."""

    name: str
    rows_read: int
    rows_bad: int
    agents: int
    windows: int
    output_rows: int
    seconds: float
    worker: str
    model_loads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_partition(
    part: Partition,
    *,
    ref: ModelRef,
    plugin_name: str,
    root: str,
    config: PredictConfig,
    lineage: dict[str, Any],
) -> PartitionResult:
    """Forecast one partition and write its files (the Dask task).

    Args:
        part: the partition.
        ref: the model version.
        plugin_name: the job's :class:`ModelPlugin` (which loaded ``ref`` on this worker).
        root: the job's output folder.
        config: sampling and windowing.
        lineage: job-level lineage (input digest...) stored in the output's schema metadata.

    Returns:
        The partition's counts.
    """
    t0 = time.perf_counter()
    folder = JobFolder(root)
    forecaster, loads = worker_forecaster(ref, plugin_name)
    rows = read_partition(part)  # bad rows set aside, never raised
    table, windows = predict_tracks(
        forecaster, rows.tracks, config=config, seed=config.seed + part.index
    )
    meta = {
        **lineage,
        "model": ref.lineage(),
        "partition": part.describe(),
        "num_samples": config.num_samples,
        "seed": config.seed + part.index,
    }
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), LINEAGE_KEY: json.dumps(meta, sort_keys=True).encode()}
    )
    out = folder.part_path(part.name)
    tmp = temp_path(out)
    try:
        pq.write_table(table, tmp, compression="snappy")
        tmp.chmod(0o644)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    if len(rows.bad):
        atomic_write_bytes(folder.bad_rows_path(part.name), rows.bad.to_csv(index=False).encode())
    result = PartitionResult(
        name=part.name,
        rows_read=rows.rows_read,
        rows_bad=len(rows.bad),
        agents=int(rows.tracks[["scene", "agent_id"]].drop_duplicates().shape[0])
        if len(rows.tracks)
        else 0,
        windows=windows,
        output_rows=table.num_rows,
        seconds=round(time.perf_counter() - t0, 4),
        worker=str(get_worker().address),
        model_loads=loads,
    )
    atomic_write_json(folder.done_path(part.name), result.to_dict())  # last: marks completion
    return result
