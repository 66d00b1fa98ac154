"""Batch prediction on Dask: partitions of tracks -> windows -> the registered pyfunc -> Parquet.

``run_batch(settings, BatchRequest(input=..., output=...))`` is the one entry point; the CLI
(``trajops batch predict``), the API (``POST /v1/batch-jobs``) and DAGs call it.
"""

from trajops.batch.job import BatchProgress, BatchRequest, BatchResult, resolve_model, run_batch
from trajops.batch.plan import Partition, input_digest, plan_partitions
from trajops.batch.predict import OUTPUT_COLUMNS, PredictConfig, predict_tracks
from trajops.batch.rows import BAD_ROW_COLUMNS, read_partition, split_bad_rows
from trajops.batch.worker import LINEAGE_KEY, ModelPlugin, ModelRef, PartitionResult

__all__ = [
    "BAD_ROW_COLUMNS",
    "LINEAGE_KEY",
    "OUTPUT_COLUMNS",
    "BatchProgress",
    "BatchRequest",
    "BatchResult",
    "ModelPlugin",
    "ModelRef",
    "Partition",
    "PartitionResult",
    "PredictConfig",
    "input_digest",
    "plan_partitions",
    "predict_tracks",
    "read_partition",
    "resolve_model",
    "run_batch",
    "split_bad_rows",
]
