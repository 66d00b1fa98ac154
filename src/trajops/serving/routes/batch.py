"""HTTP routes of ``/v1/batch-jobs``: submit a batch prediction over server-side files, poll it.

Thin: validate the body, hand the job to :class:`~trajops.batch.service.BatchJobs` (a background
thread; the job itself runs on Dask), answer with its status. Paths are relative to
``TRAJOPS_BATCH_ROOT``; without it the routes answer 503. Both routes need the ``admin`` scope
(see :mod:`trajops.security.policy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from trajops.errors import ServiceUnavailable
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.settings import Settings

if TYPE_CHECKING:  # Dask loads only where batch jobs are enabled
    from trajops.batch.service import BatchJobs

router = APIRouter(prefix="/v1/batch-jobs", tags=["batch"])


class BatchJobRequest(BaseModel):
    """A batch prediction over files the server can read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str = Field(
        min_length=1,
        max_length=1024,
        description="File or folder (Parquet, CSV, ETH/UCY .txt) relative to the batch root.",
    )
    output: str = Field(
        min_length=1,
        max_length=1024,
        description="Job folder relative to the batch root; reuse it to resume the same job.",
    )
    model: str = Field(
        default="champion",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Registry alias or version number.",
    )
    num_samples: int = Field(default=1, ge=1, le=100, description="Forecasts per window.")
    seed: int = Field(default=0, ge=0, description="Sampling seed.")
    stride: int = Field(default=1, ge=1, le=1000, description="Steps between windows of an agent.")


def open_batch_jobs(settings: Settings) -> BatchJobs | None:
    """The batch job service for the lifespan, or None when ``batch_root`` is not set."""
    if settings.batch_root is None:
        return None
    from trajops.batch.service import BatchJobs

    return BatchJobs(settings)


async def get_batch_jobs(request: Request) -> BatchJobs:
    """The lifespan's batch job service (503 when ``batch_root`` is not set)."""
    jobs: BatchJobs | None = getattr(request.app.state, "batch_jobs", None)
    if jobs is None:
        raise ServiceUnavailable(
            "batch jobs are disabled: set TRAJOPS_BATCH_ROOT to the folder they may use",
            details=[{"loc": ["batch_root"], "msg": "not configured"}],
        )
    return jobs


BatchJobsDep = Annotated["BatchJobs", Depends(get_batch_jobs)]


def _status(status: Any, code: int) -> Response:
    return OrjsonResponse(status.to_dict(), status_code=code)


@router.post(
    "",
    summary="Start a batch prediction over server-side files (runs in the background)",
    status_code=202,
    responses=error_responses(422, 503),
)
async def submit_batch_job(body: BatchJobRequest, jobs: BatchJobsDep) -> Response:
    """Queue the job and answer its status (``queued``); poll ``GET /v1/batch-jobs/{id}``."""
    from trajops.batch.predict import PredictConfig

    predict = PredictConfig(num_samples=body.num_samples, seed=body.seed, stride=body.stride)
    status = await anyio.to_thread.run_sync(
        lambda: jobs.submit(
            input_path=body.input, output_path=body.output, model=body.model, predict=predict
        )
    )
    return _status(status, 202)


@router.get(
    "/{job_id}",
    summary="Status of a batch job: state, progress, totals or error",
    responses=error_responses(404, 503),
)
async def get_batch_job(
    jobs: BatchJobsDep,
    job_id: Annotated[str, Path(max_length=64, description="Id returned by the POST.")],
) -> Response:
    status = await anyio.to_thread.run_sync(jobs.get, job_id)
    return _status(status, 200)
