"""The FastAPI app factory and its lifespan.

``create_app(settings)`` builds an app whose pool, cache, service, monitor (store, log writer,
alerts), API keys and rate limiter are opened in the lifespan and kept on ``app.state``;
nothing is created at import. ``app_from_env`` is the zero-argument factory uvicorn imports in
each worker process (``--workers > 1``).

Middleware, outermost first: :class:`ServingMiddleware` (metrics, body limit, audit of every
request after its response) then :class:`AuthMiddleware` (key, scope, rate limit; absent when
``auth_enabled`` is off), then FastAPI's own exception handling and the routes
(:mod:`trajops.serving.routes`).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trajops import __version__
from trajops.experiments.runtime import ExperimentRuntime
from trajops.monitoring.jobs import JobsConfig, MonitoringJobs, OfflineMetrics
from trajops.monitoring.metrics import ServingMetrics
from trajops.monitoring.service import Monitor
from trajops.prediction.batching import BatchConfig
from trajops.prediction.cache import RedisCacheConfig, create_cache
from trajops.prediction.pool import ModelPool, PoolConfig
from trajops.prediction.service import PredictionService, ServiceConfig
from trajops.prediction.streaming import TrackService
from trajops.prediction.tracks import TrackConfig, create_track_store
from trajops.security.keys import ApiKeys, load_or_create_pepper
from trajops.security.oidc import OidcClient
from trajops.security.ratelimit import LocalRateLimiter, RateLimit, rate_limiter_from_settings
from trajops.security.sessions import Sessions
from trajops.security.users import Users
from trajops.serving.auth import AuthMiddleware
from trajops.serving.errors import install_error_handlers
from trajops.serving.middleware import ServingMiddleware
from trajops.serving.predict_path import PATH as PREDICT_PATH
from trajops.serving.predict_path import PredictPath
from trajops.serving.request_log import LogBackpressure, RequestAuditor
from trajops.serving.routes import ROUTERS
from trajops.serving.routes.batch import open_batch_jobs
from trajops.serving.routes.docs import mount_assets
from trajops.serving.routes.tracks import TrackFrame
from trajops.serving.schemas import FeedbackRequest, PredictRequest, RequestLimits
from trajops.settings import Settings
from trajops.store.lifecycle import MigrationConfig, StoreMigrations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppOptions:
    """Tuning that is not configuration (tests and benchmarks pass their own)."""

    pool: PoolConfig = field(default_factory=PoolConfig)
    service: ServiceConfig | None = None
    """None: from the settings (``batching``, ``batch_*``)."""
    redis: RedisCacheConfig = field(default_factory=RedisCacheConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    migrations: MigrationConfig = field(default_factory=MigrationConfig)
    poll: bool = True
    """Run the registry poller (off only in tests that drive ``refresh`` themselves)."""
    freeze_gc: bool = True
    """``gc.freeze()`` after startup (see the lifespan); off when embedding the app in a
    process whose own objects should stay collectable."""


def service_config(settings: Settings) -> ServiceConfig:
    """The prediction service's tuning from the settings."""
    batching = BatchConfig(
        max_batch_agents=settings.batch_max_agents,
        max_wait_ms=settings.batch_max_wait_ms,
        max_queue=settings.batch_max_queue,
    )
    return ServiceConfig(batching=batching if settings.batching else None)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    options: AppOptions = app.state.options
    metrics: ServingMetrics = app.state.metrics
    settings.ensure_home()  # embedded stores, keys and the log spool live under home
    # The store may be down: the monitor starts anyway (its writer spools) and the schema is
    # migrated in the background until the database answers.
    monitor = Monitor.open(settings)
    migrations = StoreMigrations(monitor.store, options.migrations)
    await migrations.start()
    metrics.watch_log_writer(monitor.writer)
    app.state.monitor = monitor
    app.state.migrations = migrations
    app.state.keys = ApiKeys.from_settings(settings, monitor.store)
    app.state.users = users = Users(monitor.store)
    app.state.sessions = Sessions(
        users,
        pepper=load_or_create_pepper(settings),
        ttl_s=settings.session_ttl_s,
        cache_ttl_s=settings.api_key_cache_s,
    )
    app.state.oidc = OidcClient.from_settings(settings) if settings.oidc_enabled else None
    app.state.rate_limiter = rate_limiter_from_settings(
        settings, on_fallback=metrics.ratelimit_fallbacks.inc
    )
    app.state.on_finish = auditor = RequestAuditor(monitor)
    app.state.durable = monitor.writer.wait_durable
    app.state.backpressure = LogBackpressure(monitor.writer, metrics)
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
    app.state.experiments = experiments = ExperimentRuntime(
        settings=settings, monitor=monitor, pool=pool
    )
    app.state.service = PredictionService(
        pool=pool,
        cache=cache,
        metrics=metrics,
        log=monitor,
        experiments=experiments,
        exposed=settings.exposed_models,
        config=options.service or service_config(settings),
    )
    app.state.tracks = TrackService(
        service=app.state.service,
        store=create_track_store(
            redis_url=settings.redis_url.get_secret_value() if settings.redis_url else None,
            ttl_s=settings.tracks_ttl_s,
        ),
        truth=monitor,
        pseudonymise=monitor.pseudonymise,
        on_realised=lambda r, scene_key: metrics.observe_online(
            model_version=r.forecast.model_version,
            variant=r.forecast.variant,
            scene_key=scene_key,
            ade=r.ade,
            fde=r.fde,
            n_steps=int(r.truth.shape[0]),
        ),
        config=TrackConfig(ttl_s=settings.tracks_ttl_s, max_gap_s=settings.tracks_max_gap_s),
    )
    app.state.offline = offline = OfflineMetrics(settings, metrics, options.jobs)
    app.state.jobs = jobs = MonitoringJobs(
        settings=settings,
        monitor=monitor,
        default_version=pool.default_version,
        metrics=metrics,
        offline=offline,
        config=options.jobs,
    )
    app.state.batch_jobs = open_batch_jobs(settings)  # None unless TRAJOPS_BATCH_ROOT is set
    await pool.start(poll=options.poll)
    jobs.start()
    await experiments.start()
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
        # uvicorn has finished in-flight requests by now (SIGTERM drains first): stop the
        # jobs, then flush every queued log and audit row before the process exits.
        await experiments.stop()
        await jobs.stop()
        if app.state.batch_jobs is not None:  # a running batch job stops after its partitions
            await anyio.to_thread.run_sync(app.state.batch_jobs.close)
        await pool.stop()
        await cache.close()
        await app.state.tracks.store.close()
        if app.state.oidc is not None:
            app.state.oidc.close()
        await migrations.stop()
        auditor.flush()  # the last window's failed-authentication counts
        await anyio.to_thread.run_sync(monitor.close)
        app.state.on_finish = app.state.backpressure = app.state.durable = None
        metrics.watch_log_writer(None)
        log.info(
            "trajops serving stopped: %d log rows written, %d spooled",
            monitor.writer.written,
            monitor.writer.spooled,
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    """OpenAPI with the raw-body request schemas added to the components."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (PredictRequest, FeedbackRequest, TrackFrame):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    if app.state.settings.auth_enabled:  # documents what AuthMiddleware enforces
        schema["components"]["securitySchemes"] = {
            "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "BearerKey": {"type": "http", "scheme": "bearer"},
        }
        schema["security"] = [{"ApiKeyHeader": []}, {"BearerKey": []}]
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
        docs_url=None,  # served from local assets (serving.routes.docs)
        redoc_url=None,  # ReDoc loads its script from a CDN
    )
    app.state.settings = settings
    app.state.options = options or AppOptions()
    app.state.metrics = ServingMetrics()
    app.state.limits = RequestLimits(
        max_agents=settings.max_agents,
        max_coordinate=settings.max_coordinate,
        timestamp_tolerance_s=settings.timestamp_tolerance_s,
    )
    for router in ROUTERS:
        app.include_router(router)
    mount_assets(app)
    install_error_handlers(app)
    app.state.on_finish = app.state.backpressure = app.state.durable = None
    predict_route = next(r for r in app.routes if getattr(r, "path", None) == PREDICT_PATH)
    app.add_middleware(PredictPath, app_state=app.state, route=predict_route)  # innermost
    # Failed sign-ins and failed key checks spend one budget per client address.
    app.state.auth_failures = LocalRateLimiter(
        RateLimit(rate_per_s=settings.auth_failure_rate_per_s, burst=settings.auth_failure_burst)
    )
    if settings.auth_enabled:
        app.add_middleware(
            AuthMiddleware,
            routes=app.router.routes,
            app_state=app.state,
            metrics=app.state.metrics,
            metrics_public=settings.metrics_public,
            failures=app.state.auth_failures,
        )
    app.add_middleware(  # added last: the outermost, so it counts and audits auth refusals
        ServingMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=settings.max_body_bytes,
        app_state=app.state,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Zero-argument factory for uvicorn's factory mode: settings from ``TRAJOPS_*``."""
    return create_app(Settings())
