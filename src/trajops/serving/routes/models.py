"""``/v1/models``: the loaded versions, a reload from the registry, the default model."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from trajops.serving.deps import PoolDep
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.serving.schemas import SetDefaultRequest

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", summary="Loaded versions, aliases and load times")
async def list_models(pool: PoolDep) -> Response:
    return OrjsonResponse(pool.snapshot())


@router.post(
    "/reload",
    summary="Re-read aliases from the registry now and swap in moved ones",
    responses=error_responses(503),
)
async def reload_models(pool: PoolDep) -> Response:
    return OrjsonResponse(await pool.refresh())


@router.put(
    "/default",
    summary="Choose the alias or version that serves unrouted traffic (this process)",
    responses=error_responses(404, 422, 503),
)
async def set_default_model(body: SetDefaultRequest, pool: PoolDep) -> Response:
    """The model is loaded and smoke-tested first; a bad reference changes nothing."""
    return OrjsonResponse(await pool.set_default(body.model))
