"""The FastAPI app factory and its lifespan.

``create_app(settings)`` builds an app whose pool, cache and service are opened in the
lifespan and kept on ``app.state``; nothing is created at import. ``app_from_env`` is the
zero-argument factory uvicorn imports in each worker process (``--workers > 1``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trajops import __version__
from trajops.serving.cache import RedisCacheConfig, create_cache
from trajops.serving.errors import install_error_handlers
from trajops.serving.metrics import ServingMetrics
from trajops.serving.middleware import ServingMiddleware
from trajops.serving.pool import ModelPool, PoolConfig
from trajops.serving.prediction import PredictionService, ServiceConfig
from trajops.serving.routes import router
from trajops.serving.schemas import PredictRequest, RequestLimits
from trajops.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppOptions:
    """Tuning that is not configuration (tests and benchmarks pass their own)."""

    pool: PoolConfig = field(default_factory=PoolConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    redis: RedisCacheConfig = field(default_factory=RedisCacheConfig)
    poll: bool = True
    """Run the registry poller (off only in tests that drive ``refresh`` themselves)."""
    freeze_gc: bool = True
    """``gc.freeze()`` after startup (see the lifespan); off when embedding the app in a
    process whose own objects should stay collectable."""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    options: AppOptions = app.state.options
    metrics: ServingMetrics = app.state.metrics
    if not settings.tracking_uri:
        settings.ensure_home()  # the embedded SQLite registry lives under home
    cache = create_cache(
        redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
        cache_size=settings.cache_size,
        ttl_s=settings.cache_ttl_s,
        redis_config=options.redis,
    )
    pool = ModelPool(
        model_name=settings.model_name,
        tracking_uri=settings.resolved_tracking_uri,
        registry_uri=settings.resolved_registry_uri,
        default_ref=settings.default_model,
        poll_interval_s=settings.poll_interval_s,
        metrics=metrics,
        config=options.pool,
    )
    app.state.cache = cache
    app.state.pool = pool
    app.state.service = PredictionService(
        pool=pool, cache=cache, metrics=metrics, limits=app.state.limits, config=options.service
    )
    await pool.start(poll=options.poll)
    # MLflow, pandas and SQLAlchemy leave ~10^6 long-lived objects; without freezing them,
    # every full GC walks them all and stalls the event loop for hundreds of milliseconds.
    if options.freeze_gc:
        gc.collect()
        gc.freeze()
    log.info(
        "trajops serving %s (default %r, cache %s)",
        settings.model_name,
        settings.default_model,
        cache.backend,
    )
    try:
        yield
    finally:
        await pool.stop()
        await cache.close()


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI with the raw-body request schemas added to the components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = PredictRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components[PredictRequest.__name__] = body
    app.openapi_schema = schema
    return schema


def create_app(settings: Settings | None = None, *, options: AppOptions | None = None) -> FastAPI:
    """Build the prediction service.

    Args:
        settings: configuration; built from the environment when omitted.
        options: tuning of the pool, service and cache adapters.

    Returns:
        A FastAPI app; its lifespan loads the models and opens the cache.
    """
    settings = settings or Settings()
    app = FastAPI(
        title="trajops prediction service",
        version=__version__,
        description="Pedestrian trajectory forecasts from registered MLflow models: 8 observed "
        "positions in, 12 predicted positions (4.8 s) out. Every error has the shape "
        '`{"error": {"code", "message", "details": [{"loc", "msg"}]}}`.',
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.options = options or AppOptions()
    app.state.metrics = ServingMetrics()
    app.state.limits = RequestLimits(
        max_agents=settings.max_agents,
        max_coordinate=settings.max_coordinate,
        timestamp_tolerance_s=settings.timestamp_tolerance_s,
    )
    app.include_router(router)
    install_error_handlers(app)
    app.add_middleware(
        ServingMiddleware, metrics=app.state.metrics, max_body_bytes=settings.max_body_bytes
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Zero-argument factory for uvicorn's factory mode: settings from ``TRAJOPS_*``."""
    return create_app(Settings())
