"""Batch jobs submitted over the API: run in a background thread, tracked in status files.

Inputs and outputs are server-side paths inside ``settings.batch_root`` (anything else is
refused). A job's status is a JSON file ``<batch_root>/.jobs/<id>.json``, rewritten atomically
as the job moves (queued -> running -> succeeded | failed) and after every partition, so any
replica that sees the same ``batch_root`` (a shared volume) answers ``GET`` for any job. The
job's own files (``job.json``, parts, manifest) live in its output folder as for the CLI.

If the replica running a job dies, the status stays ``running`` with a stale ``updated_at``;
resubmitting the same input and output resumes the job where it stopped.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trajops.batch.job import BatchRequest, run_batch
from trajops.batch.predict import PredictConfig
from trajops.batch.state import atomic_write_json
from trajops.batch.worker import PartitionResult
from trajops.errors import NotFoundError, ServiceUnavailable, TrajopsError, ValidationError
from trajops.settings import Settings

log = logging.getLogger(__name__)
_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class BatchJobStatus:
    """What ``GET /v1/batch-jobs/{id}`` answers."""

    id: str
    state: str
    input: str
    output: str
    model: str
    submitted_at: str
    updated_at: str
    partitions_total: int | None = None
    partitions_done: int = 0
    windows: int = 0
    totals: dict[str, int] | None = None
    model_version: int | None = None
    error: dict[str, str] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _StatusProgress:
    """``BatchProgress`` that rewrites the job's status file."""

    def __init__(self, jobs: BatchJobs, job_id: str) -> None:
        self.jobs = jobs
        self.job_id = job_id

    def started(self, *, total: int, completed: int) -> None:
        self.jobs._update(self.job_id, partitions_total=total, partitions_done=completed)

    def advanced(self, result: PartitionResult) -> None:
        if self.jobs.stopping.is_set():  # leaves run_batch, which cancels the rest
            raise ServiceUnavailable(
                "the server stopped during the job; submit it again to resume it",
                details=[{"loc": ["job"], "msg": "interrupted"}],
            )
        status = self.jobs.get(self.job_id)
        self.jobs._update(
            self.job_id,
            partitions_done=status.partitions_done + 1,
            windows=status.windows + result.windows,
        )


class BatchJobs:
    """Submits batch jobs to a background thread and reports their status.

    Args:
        settings: configuration; ``settings.batch_root`` must be set.
        max_running: jobs run at once (the rest wait, ``queued``).
        processes: local Dask workers as processes (False: threads, for tests).
    """

    def __init__(self, settings: Settings, *, max_running: int = 1, processes: bool = True) -> None:
        self.settings = settings
        self.processes = processes
        self._pool = ThreadPoolExecutor(max_running, thread_name_prefix="trajops-batch")
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._futures: dict[str, Future[None]] = {}

    @property
    def root(self) -> Path:
        if self.settings.batch_root is None:
            raise ServiceUnavailable(
                "batch jobs are disabled: set TRAJOPS_BATCH_ROOT to the folder they may use",
                details=[{"loc": ["batch_root"], "msg": "not configured"}],
            )
        return self.settings.batch_root.resolve()

    def _inside(self, value: str, *, field_name: str) -> Path:
        """``value`` resolved under the batch root; errors never name server paths."""
        root = self.root
        if "\x00" in value:
            raise ValidationError(
                f"{field_name} must not contain a NUL byte",
                details=[{"loc": ["body", field_name], "msg": "NUL byte"}],
            )
        try:
            path = (root / value).resolve()  # an absolute value replaces root: checked below
        except (OSError, ValueError, RuntimeError):  # a symlink loop, a name too long
            path = root
        if not path.is_relative_to(root) or path == root:
            raise ValidationError(
                f"{field_name} must be a path inside the batch root",
                details=[{"loc": ["body", field_name], "msg": "outside the batch root"}],
            )
        return path

    def _status_path(self, job_id: str) -> Path:
        return self.root / ".jobs" / f"{job_id}.json"

    def submit(
        self, *, input_path: str, output_path: str, model: str, predict: PredictConfig
    ) -> BatchJobStatus:
        """Queue a job; returns its first status.

        Raises:
            ValidationError: a path outside the batch root (or with a NUL byte), an output that
                overlaps the input, or an input that does not exist.
            ServiceUnavailable: batch jobs are not configured.
        """
        src = self._inside(input_path, field_name="input")
        dst = self._inside(output_path, field_name="output")
        if dst.is_relative_to(src) or src.is_relative_to(dst):
            raise ValidationError(
                "output must be a folder apart from the input (neither inside the other)",
                details=[{"loc": ["body", "output"], "msg": "overlaps the input"}],
            )
        if not src.exists():
            raise ValidationError(
                f"input {input_path!r} does not exist under the batch root",
                details=[{"loc": ["body", "input"], "msg": "not found"}],
            )
        now = _now()
        status = BatchJobStatus(
            id=uuid.uuid4().hex,
            state="queued",
            input=str(src),
            output=str(dst),
            model=model,
            submitted_at=now,
            updated_at=now,
            params=asdict(predict),
        )
        atomic_write_json(self._status_path(status.id), status.to_dict())
        request = BatchRequest(
            input=src, output=dst, model=model, predict=predict, processes=self.processes
        )
        self._futures[status.id] = self._pool.submit(self._run, status.id, request)
        return status

    def get(self, job_id: str) -> BatchJobStatus:
        """The status of a job.

        Raises:
            NotFoundError: no such job.
        """
        path = self._status_path(job_id) if _ID_RE.match(job_id) else None
        if path is None or not path.is_file():
            raise NotFoundError(
                f"no batch job {job_id!r}", details=[{"loc": ["path", "job_id"], "msg": "unknown"}]
            )
        return BatchJobStatus(**json.loads(path.read_text()))

    def _update(self, job_id: str, **changes: Any) -> BatchJobStatus:
        with self._lock:
            status = replace(self.get(job_id), updated_at=_now(), **changes)
            atomic_write_json(self._status_path(job_id), status.to_dict())
        return status

    def _run(self, job_id: str, request: BatchRequest) -> None:
        try:
            self._execute(job_id, request)
        finally:
            self._futures.pop(job_id, None)

    def _execute(self, job_id: str, request: BatchRequest) -> None:
        self._update(job_id, state="running")
        try:
            result = run_batch(self.settings, request, progress=_StatusProgress(self, job_id))
        except TrajopsError as exc:
            self._update(job_id, state="failed", error={"code": exc.code, "message": exc.message})
        except Exception as exc:  # a bug or a worker crash: reported, never lost in a thread
            log.exception("batch job %s failed", job_id)
            self._update(
                job_id,
                state="failed",
                error={"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"},
            )
        else:
            self._update(
                job_id,
                state="succeeded",
                totals=result.totals,
                model_version=int(result.manifest["model"]["version"]),
            )

    def close(self, *, wait: bool = True) -> None:
        """Stop: queued jobs are dropped, a running job stops after its current partitions
        (state ``failed``, code ``service_unavailable``; resubmitting resumes it).

        Args:
            wait: block until the running job has stopped.
        """
        self.stopping.set()
        self._pool.shutdown(wait=wait, cancel_futures=True)
        for job_id, future in self._futures.items():
            if future.cancelled():
                self._update(
                    job_id,
                    state="failed",
                    error={
                        "code": "service_unavailable",
                        "message": "the server stopped before the job started; submit it again",
                    },
                )
