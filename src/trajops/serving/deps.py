"""Request dependencies: everything a route needs, read from ``app.state`` (no globals).

They are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from trajops.monitoring.jobs import MonitoringJobs, OfflineMetrics
from trajops.monitoring.metrics import ServingMetrics
from trajops.monitoring.service import Monitor
from trajops.prediction.cache import PredictionCache
from trajops.prediction.pool import ModelPool
from trajops.prediction.service import PredictionService
from trajops.serving.schemas import RequestLimits
from trajops.settings import Settings
from trajops.store.lifecycle import StoreMigrations


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_service(request: Request) -> PredictionService:
    service: PredictionService = request.app.state.service
    return service


async def get_pool(request: Request) -> ModelPool:
    pool: ModelPool = request.app.state.pool
    return pool


async def get_cache(request: Request) -> PredictionCache:
    cache: PredictionCache = request.app.state.cache
    return cache


async def get_metrics(request: Request) -> ServingMetrics:
    metrics: ServingMetrics = request.app.state.metrics
    return metrics


async def get_limits(request: Request) -> RequestLimits:
    limits: RequestLimits = request.app.state.limits
    return limits


async def get_monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


async def get_migrations(request: Request) -> StoreMigrations:
    migrations: StoreMigrations = request.app.state.migrations
    return migrations


async def get_offline(request: Request) -> OfflineMetrics:
    offline: OfflineMetrics = request.app.state.offline
    return offline


async def get_jobs(request: Request) -> MonitoringJobs:
    jobs: MonitoringJobs = request.app.state.jobs
    return jobs


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[PredictionService, Depends(get_service)]
PoolDep = Annotated[ModelPool, Depends(get_pool)]
CacheDep = Annotated[PredictionCache, Depends(get_cache)]
MetricsDep = Annotated[ServingMetrics, Depends(get_metrics)]
LimitsDep = Annotated[RequestLimits, Depends(get_limits)]
MonitorDep = Annotated[Monitor, Depends(get_monitor)]
MigrationsDep = Annotated[StoreMigrations, Depends(get_migrations)]
OfflineDep = Annotated[OfflineMetrics, Depends(get_offline)]
JobsDep = Annotated[MonitoringJobs, Depends(get_jobs)]
