"""``/v1/models``: the loaded versions, a reload from the registry, the default model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from trajops.serving.deps import PoolDep, SettingsDep
from trajops.serving.middleware import KEY_ID_KEY, USER_KEY
from trajops.serving.openapi import error_responses
from trajops.serving.responses import OrjsonResponse
from trajops.serving.schemas import SetDefaultRequest
from trajops.settings import Settings

if TYPE_CHECKING:  # MLflow loads lazily
    from trajops.registry.adapter import Registry

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


class AliasChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = Field(default="champion", description="champion or challenger.")
    force: bool = Field(default=False, description="Promote despite failed gate checks (recorded).")
    reason: str = Field(default="", max_length=500, description="Why, kept in the alias history.")


def _registry(request: Request, settings: Settings) -> Registry:
    """The registry client of this process, built on first use."""
    registry: Registry | None = getattr(request.app.state, "registry", None)
    if registry is None:
        from trajops.registry.adapter import Registry

        registry = request.app.state.registry = Registry.from_settings(settings)
    return registry


def _actor(request: Request) -> str:
    """Who moves an alias, for its history: the person, else the key."""
    user, key = request.scope.get(USER_KEY), request.scope.get(KEY_ID_KEY)
    return f"user:{user}" if user else f"key:{key}" if key else "api"


@router.post(
    "/{version}/promote",
    summary="Point an alias at a version through the promotion gate (recorded, audited)",
    responses=error_responses(404, 409, 422, 503),
)
async def promote_version(
    version: str, request: Request, settings: SettingsDep, pool: PoolDep, body: AliasChange
) -> Response:
    """The gate scores the version on the evaluation set first (recent production forecasts
    it never trained on, when there are enough); a failed check refuses (409) unless
    ``force``. This process re-reads its aliases at once; others at their next poll."""
    from trajops.monitoring.production_eval import held_out
    from trajops.registry.promotion import promote

    registry = _registry(request, settings)
    actor = _actor(request)

    result = await anyio.to_thread.run_sync(
        lambda: promote(
            registry,
            version=version,
            alias=body.alias,
            tolerance=settings.promotion_tolerance,
            force=body.force,
            reason=body.reason or "promoted through the API",
            actor=actor,
            held_out=held_out(settings, registry),
        )
    )
    await pool.refresh()
    return OrjsonResponse(result.to_dict())


@router.post(
    "/rollback",
    summary="Point an alias back at its previous version (recorded, audited)",
    responses=error_responses(404, 409, 422, 503),
)
async def rollback_alias(
    request: Request, settings: SettingsDep, pool: PoolDep, body: AliasChange
) -> Response:
    from trajops.registry.promotion import rollback

    registry = _registry(request, settings)
    actor = _actor(request)
    result = await anyio.to_thread.run_sync(
        lambda: rollback(
            registry,
            alias=body.alias,
            reason=body.reason or "rolled back through the API",
            actor=actor,
        )
    )
    await pool.refresh()
    return OrjsonResponse(result.to_dict())
